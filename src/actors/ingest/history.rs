//! Job history in SurrealDB: one row per job, written when the job is
//! created and again when its terminal event is projected. Users list and
//! query their jobs from here; the jobs bucket only holds live state.

use surrealdb::types::RecordId;

use crate::storage::db::{self, Db, DbError};
use crate::wire::Job;

const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS job SCHEMALESS;
DEFINE INDEX IF NOT EXISTS job_owner ON job FIELDS owner, jid;
"#;

#[derive(Clone)]
pub struct History {
    db: Db,
}

impl History {
    pub async fn open(db: Db) -> Result<History, DbError> {
        db::define(&db, SCHEMA).await?;
        Ok(History { db })
    }

    /// Writes the job's current state. Record ids are the job ids, so a
    /// repeated write (a redelivered event) changes nothing.
    pub async fn upsert(&self, job: &Job) -> Result<(), DbError> {
        let mut doc = serde_json::to_value(job)?;
        if let Some(map) = doc.as_object_mut() {
            // `id` is SurrealDB's record id; the job id is kept as `jid`.
            if let Some(id) = map.remove("id") {
                map.insert("jid".to_string(), id);
            }
        }
        self.db
            .query("UPSERT $rid CONTENT $doc")
            .bind(("rid", RecordId::new("job", job.id.as_str())))
            .bind(("doc", doc))
            .await?
            .check()?;
        Ok(())
    }

    pub async fn delete(&self, job_id: &str) -> Result<(), DbError> {
        self.db
            .query("DELETE $rid")
            .bind(("rid", RecordId::new("job", job_id)))
            .await?
            .check()?;
        Ok(())
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<Job>, DbError> {
        let mut response = self
            .db
            .query("SELECT * OMIT id FROM $rid")
            .bind(("rid", RecordId::new("job", job_id)))
            .await?
            .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        rows.into_iter().next().map(from_row).transpose()
    }

    /// The owner's jobs, newest first (job ids are time-ordered UUIDv7).
    pub async fn list(&self, owner: &str, limit: u32) -> Result<Vec<Job>, DbError> {
        let mut response = self
            .db
            .query("SELECT * OMIT id FROM job WHERE owner = $owner ORDER BY jid DESC LIMIT $limit")
            .bind(("owner", owner.to_string()))
            .bind(("limit", i64::from(limit)))
            .await?
            .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        rows.into_iter().map(from_row).collect()
    }
}

fn from_row(mut row: serde_json::Value) -> Result<Job, DbError> {
    if let Some(map) = row.as_object_mut()
        && let Some(jid) = map.remove("jid")
    {
        map.insert("id".to_string(), jid);
    }
    Ok(serde_json::from_value(row)?)
}
