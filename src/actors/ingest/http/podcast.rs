//! The user's podcast feed: made (a new address each time, the old one
//! ended), looked at, turned off; and the feed itself, at an address that
//! needs no token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::Caller;
use crate::actors::ingest::Ingest;
use crate::actors::ingest::error::ApiError;
use crate::actors::ingest::openapi::ErrorAnswer;

/// The feed just made: its address, shown this once.
#[derive(Serialize, ToSchema)]
pub(super) struct NewFeed {
    /// Subscribe to it in a podcast app; anyone with it can listen.
    url: String,
}

/// The caller's feed, without its address.
#[derive(Serialize, ToSchema)]
pub(super) struct FeedView {
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[utoipa::path(post, path = "/v1/feed", tag = "feed",
    summary = "Make the caller's podcast feed",
    description = "A private RSS 2.0 feed of the caller's completed audio, each episode's \
        enclosure a signed link. Its address is in the answer this once; asking again makes a \
        new one and ends the old.",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The feed's address", body = NewFeed),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key cannot make a feed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn enable_feed(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<(StatusCode, Json<NewFeed>), ApiError> {
    let url = ingest.enable_feed(&caller.sub, &caller.email).await?;
    Ok((StatusCode::CREATED, Json(NewFeed { url })))
}

#[utoipa::path(get, path = "/v1/feed", tag = "feed",
    summary = "Whether the caller has a podcast feed",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The feed", body = FeedView),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key", body = ErrorAnswer),
        (status = 404, description = "No feed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn get_feed(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<Json<FeedView>, ApiError> {
    let feed = ingest.feed_of(&caller.sub).await?.ok_or(ApiError::NoFeed)?;
    Ok(Json(FeedView {
        created_at: feed.created_at,
    }))
}

#[utoipa::path(delete, path = "/v1/feed", tag = "feed",
    summary = "Turn the caller's podcast feed off",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Its address opens nothing any more"),
        (status = 401, description = "No valid token", body = ErrorAnswer),
        (status = 403, description = "An API key", body = ErrorAnswer),
        (status = 404, description = "No feed", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn disable_feed(
    State(ingest): State<Arc<Ingest>>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    match ingest.disable_feed(&caller.sub).await? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(ApiError::NoFeed),
    }
}

#[utoipa::path(get, path = "/feeds/{file}", tag = "feed",
    summary = "A podcast feed",
    params(("file" = String, Path, description = "`<token>.xml`, as the feed's address says")),
    security(()),
    responses(
        (status = 200, description = "The feed", content_type = "application/rss+xml"),
        (status = 404, description = "No such feed (or it was turned off)", body = ErrorAnswer),
        (status = 503, description = "NATS is unavailable", body = ErrorAnswer),
    ))]
pub(super) async fn podcast(
    State(ingest): State<Arc<Ingest>>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let token = file.strip_suffix(".xml").ok_or(ApiError::NoFeed)?;
    let feed = ingest
        .feed_for_token(token)
        .await?
        .ok_or(ApiError::NoFeed)?;
    let xml = ingest.podcast(&feed, token).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/rss+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        xml,
    )
        .into_response())
}
