//! Presets: named option sets a user saves (`/v1/presets`) and submits
//! with (`preset=<name>`), one SurrealDB row each, keyed by owner and name.

use serde::{Deserialize, Serialize};
use surrealdb::types::RecordId;
use time::OffsetDateTime;

use super::Ingest;
use super::error::ApiError;
use crate::storage::db::{self, Db, DbError};
use crate::wire::{AudioOptions, Format};

const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS preset SCHEMALESS;
DEFINE INDEX IF NOT EXISTS preset_owner ON preset FIELDS owner, name;
"#;

/// Most presets one user may keep.
pub(super) const MAX_PRESETS: u64 = 100;

/// A preset as stored and as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Preset {
    pub name: String,
    pub format: Format,
    #[serde(flatten)]
    pub options: AudioOptions,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A preset's name: 1 to 64 of `a-z`, `0-9`, `-` and `_`, compared
/// without case.
pub(super) fn preset_name(text: &str) -> Result<String, ApiError> {
    let name = text.trim().to_ascii_lowercase();
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    if name.is_empty() || name.len() > 64 || !name.bytes().all(allowed) {
        return Err(ApiError::BadRequest(
            "invalid_preset",
            "a preset's name is 1 to 64 letters, digits, `-` and `_`".into(),
        ));
    }
    Ok(name)
}

#[derive(Clone)]
pub struct Presets {
    db: Db,
}

/// The row of `owner`'s preset `name`. Owners are user ids (no `/`).
fn row(owner: &str, name: &str) -> RecordId {
    RecordId::new("preset", format!("{owner}/{name}"))
}

impl Presets {
    pub async fn open(db: Db) -> Result<Presets, DbError> {
        db::define(&db, SCHEMA).await?;
        Ok(Presets { db })
    }

    pub async fn put(&self, owner: &str, preset: &Preset) -> Result<(), DbError> {
        let mut doc = serde_json::to_value(preset)?;
        if let Some(map) = doc.as_object_mut() {
            map.insert("owner".into(), owner.into());
        }
        db::bounded(
            self.db
                .query("UPSERT $rid CONTENT $doc")
                .bind(("rid", row(owner, &preset.name)))
                .bind(("doc", doc)),
        )
        .await?
        .check()?;
        Ok(())
    }

    pub async fn get(&self, owner: &str, name: &str) -> Result<Option<Preset>, DbError> {
        let mut response = db::bounded(
            self.db
                .query("SELECT * OMIT id, owner FROM $rid")
                .bind(("rid", row(owner, name))),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(rows
            .into_iter()
            .next()
            .map(serde_json::from_value)
            .transpose()?)
    }

    /// The owner's presets by name.
    pub async fn list(&self, owner: &str) -> Result<Vec<Preset>, DbError> {
        let mut response = db::bounded(
            self.db
                .query("SELECT * OMIT id, owner FROM preset WHERE owner = $owner ORDER BY name LIMIT $limit")
                .bind(("owner", owner.to_string()))
                .bind(("limit", MAX_PRESETS as i64)),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(rows
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()?)
    }

    /// How many presets the owner has.
    pub async fn count(&self, owner: &str) -> Result<u64, DbError> {
        let mut response = db::bounded(
            self.db
                .query("SELECT count() AS n FROM preset WHERE owner = $owner GROUP ALL")
                .bind(("owner", owner.to_string())),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(rows.first().and_then(|row| row["n"].as_u64()).unwrap_or(0))
    }

    /// Deletes every preset of `owner`'s.
    pub async fn delete_all(&self, owner: &str) -> Result<(), DbError> {
        db::bounded(
            self.db
                .query("DELETE preset WHERE owner = $owner")
                .bind(("owner", owner.to_string())),
        )
        .await?
        .check()?;
        Ok(())
    }

    /// Deletes the preset; false if there was none.
    pub async fn delete(&self, owner: &str, name: &str) -> Result<bool, DbError> {
        let mut response = db::bounded(
            self.db
                .query("DELETE $rid RETURN BEFORE")
                .bind(("rid", row(owner, name))),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(!rows.is_empty())
    }
}

impl Ingest {
    /// The format and options of the caller's preset `name`, the base a
    /// submission's own options are laid over.
    pub(super) async fn preset(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(Format, AudioOptions), ApiError> {
        let name = preset_name(name)?;
        match self.presets.get(owner, &name).await {
            Ok(Some(preset)) => Ok((preset.format, preset.options)),
            Ok(None) => Err(ApiError::BadRequest(
                "invalid_preset",
                format!("you have no preset `{name}`"),
            )),
            Err(err) => Err(ApiError::unavailable("the database", err)),
        }
    }
}
