//! Presets: a user's named option sets, saved, read, listed and deleted by
//! their owner only; a submission names one with `preset`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use time::OffsetDateTime;

use super::Caller;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::{ErrorAnswer, PresetOptions};
use crate::actors::ingest::presets::{MAX_PRESETS, Preset, preset_name};
use crate::actors::ingest::{Ingest, submission};

fn unavailable(err: impl Into<crate::error::BoxError>) -> ApiError {
    ApiError::unavailable("the database", err)
}

#[utoipa::path(get, path = "/v1/presets", tag = "presets",
    summary = "Your presets, by name",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The presets", body = Vec<Preset>),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 503, description = "The database is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn list_presets(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<Preset>>, ApiError> {
    Ok(Json(
        ingest
            .presets
            .list(&caller.sub)
            .await
            .map_err(unavailable)?,
    ))
}

#[utoipa::path(put, path = "/v1/presets/{name}", tag = "presets",
    summary = "Save a preset",
    description = "The body names the options as a multipart upload's fields would: `format`, \
        `bitrate`, `loudness`, tags and the rest, each checked the same way. Saving over a \
        preset replaces it whole.",
    params(("name" = String, Path, description = "1 to 64 of `a-z`, `0-9`, `-`, `_`")),
    request_body = PresetOptions,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The preset, replaced", body = Preset),
        (status = 201, description = "The preset, new", body = Preset),
        (status = 400, description = "A bad name, option or body", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 409, description = "You have as many presets as allowed", body = ErrorAnswer),
        (status = 503, description = "The database is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn put_preset(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Preset>), ApiError> {
    let name = preset_name(&name)?;
    let body: serde_json::Value = serde_json::from_slice(&body?).map_err(|e| {
        ApiError::BadRequest(
            "bad_json",
            format!("expected a JSON object of options: {e}"),
        )
    })?;
    let object = body.as_object().ok_or_else(|| {
        ApiError::BadRequest("bad_json", "expected a JSON object of options".into())
    })?;
    let base = (crate::wire::Format::Mp3, Default::default());
    let (format, options) = submission::options_from_json(object, base)?;
    let presets = &ingest.presets;
    let existing = presets.get(&caller.sub, &name).await.map_err(unavailable)?;
    if existing.is_none() && presets.count(&caller.sub).await.map_err(unavailable)? >= MAX_PRESETS {
        return Err(ApiError::Conflict(
            "too_many_presets",
            format!("you have {MAX_PRESETS} presets, the most allowed; delete one first"),
        ));
    }
    let preset = Preset {
        name,
        format,
        options,
        updated_at: OffsetDateTime::now_utc(),
    };
    presets
        .put(&caller.sub, &preset)
        .await
        .map_err(unavailable)?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(preset)))
}

#[utoipa::path(get, path = "/v1/presets/{name}", tag = "presets",
    summary = "One preset",
    params(("name" = String, Path, description = "The preset's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The preset", body = Preset),
        (status = 400, description = "Not a preset's name", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "You have no such preset", body = ErrorAnswer),
        (status = 503, description = "The database is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn get_preset(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<Json<Preset>, ApiError> {
    let name = preset_name(&name)?;
    ingest
        .presets
        .get(&caller.sub, &name)
        .await
        .map_err(unavailable)?
        .map(Json)
        .ok_or(ApiError::NoSuchPreset)
}

#[utoipa::path(delete, path = "/v1/presets/{name}", tag = "presets",
    summary = "Delete a preset",
    params(("name" = String, Path, description = "The preset's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a preset's name", body = ErrorAnswer),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 404, description = "You have no such preset", body = ErrorAnswer),
        (status = 503, description = "The database is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn delete_preset(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = preset_name(&name)?;
    match ingest.presets.delete(&caller.sub, &name).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::NoSuchPreset),
        Err(err) => Err(unavailable(err)),
    }
}
