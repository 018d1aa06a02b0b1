//! Job history in SurrealDB: one row per job, written when the job is
//! created and again when its terminal event is projected. Users list and
//! query their jobs from here; the jobs bucket only holds live state.

use surrealdb::types::RecordId;

use crate::storage::db::{self, Db, DbError};
use crate::wire::{Job, JobState};

/// `job_owner` orders a user's list. `job_state` answers the checks every
/// submission makes (unfinished jobs, stored bytes) from the rows they
/// count, not from all of the owner's rows: without it a submission cost
/// grew with its owner's history.
const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS job SCHEMALESS;
DEFINE INDEX IF NOT EXISTS job_owner ON job FIELDS owner, jid;
DEFINE INDEX IF NOT EXISTS job_state ON job FIELDS owner, state, finished_at;
"#;

/// Counts the owner's unfinished jobs. The history holds a job's first state
/// (queued) and its last (projected from terminal events only), so an
/// unfinished job's row says `queued`; an equality, unlike `NOT IN`, is
/// answered from the `job_state` index.
const UNFINISHED: &str =
    "SELECT count() AS n FROM job WHERE owner = $owner AND state = 'queued' GROUP ALL";

/// The uploads of the owner's unfinished jobs, then the audio of their
/// completed jobs still kept: two ranges of the `job_state` index.
const STORED_BYTES: &str = "\
    SELECT math::sum(input_bytes) AS n FROM job WHERE owner = $owner \
    AND state = 'queued' GROUP ALL; \
    SELECT math::sum(output_bytes ?? output.bytes) AS n FROM job WHERE owner = $owner \
    AND state = 'completed' AND finished_at > $since GROUP ALL;";

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
            // What all the job's outputs take, which the quota counts.
            map.insert("output_bytes".to_string(), job.stored_bytes().into());
        }
        // Writes of different jobs touch the same owner index and may
        // conflict; each is idempotent, so it is simply run again.
        db::retry_conflicts(|| async {
            db::bounded(
                self.db
                    .query("UPSERT $rid CONTENT $doc")
                    .bind(("rid", RecordId::new("job", job.id.as_str())))
                    .bind(("doc", doc.clone())),
            )
            .await?
            .check()?;
            Ok(())
        })
        .await
    }

    pub async fn delete(&self, job_id: &str) -> Result<(), DbError> {
        db::retry_conflicts(|| async {
            db::bounded(
                self.db
                    .query("DELETE $rid")
                    .bind(("rid", RecordId::new("job", job_id))),
            )
            .await?
            .check()?;
            Ok(())
        })
        .await
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<Job>, DbError> {
        let mut response = db::bounded(
            self.db
                .query("SELECT * OMIT id FROM $rid")
                .bind(("rid", RecordId::new("job", job_id))),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        rows.into_iter().next().map(from_row).transpose()
    }

    /// A page of the owner's jobs, newest first (job ids are time-ordered
    /// UUIDv7): at most `limit` jobs older than `before`, only finished ones
    /// in `finished` or only unfinished ones, as `filter` says.
    pub async fn list(
        &self,
        owner: &str,
        filter: StateFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Job>, DbError> {
        let mut conditions = vec!["owner = $owner"];
        match filter {
            StateFilter::Any => {}
            StateFilter::Finished(_) => conditions.push("state = $state"),
            StateFilter::Unfinished => {
                conditions.push("state NOT IN ['completed', 'failed', 'canceled']")
            }
        }
        if before.is_some() {
            conditions.push("jid < $before");
        }
        let query = format!(
            "SELECT * OMIT id FROM job WHERE {} ORDER BY jid DESC LIMIT $limit",
            conditions.join(" AND ")
        );
        let state = match filter {
            StateFilter::Finished(state) => state.as_str(),
            _ => "",
        };
        let mut response = db::bounded(
            self.db
                .query(query)
                .bind(("owner", owner.to_string()))
                .bind(("state", state))
                .bind(("before", before.unwrap_or_default().to_string()))
                .bind(("limit", i64::from(limit))),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        rows.into_iter().map(from_row).collect()
    }
}

impl History {
    /// How many of the owner's jobs have not ended.
    pub async fn unfinished(&self, owner: &str) -> Result<u64, DbError> {
        let mut response =
            db::bounded(self.db.query(UNFINISHED).bind(("owner", owner.to_string())))
                .await?
                .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(rows.first().and_then(|row| row["n"].as_u64()).unwrap_or(0))
    }
}

impl History {
    /// Bytes the owner keeps stored: the uploads of unfinished jobs and the
    /// audio of completed jobs that finished after `kept_since` (older
    /// audio has been removed at the end of the retention period).
    pub async fn stored_bytes(
        &self,
        owner: &str,
        kept_since: time::OffsetDateTime,
    ) -> Result<u64, DbError> {
        // Job times are stored as RFC 3339 text, which orders as time does.
        // (Formatting a clock reading cannot fail; if it did, every kept
        // output would count, which errs on the safe side.)
        let since = kept_since
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut response = db::bounded(
            self.db
                .query(STORED_BYTES)
                .bind(("owner", owner.to_string()))
                .bind(("since", since)),
        )
        .await?
        .check()?;
        let mut total = 0u64;
        for statement in 0..2 {
            let rows: Vec<serde_json::Value> = response.take(statement)?;
            total =
                total.saturating_add(rows.first().and_then(|row| row["n"].as_u64()).unwrap_or(0));
        }
        Ok(total)
    }
}

/// Which jobs a history page holds. The history records only the first and
/// the last state of a job, so queued and running jobs are found together
/// and told apart by their live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Any,
    Finished(JobState),
    Unfinished,
}

fn from_row(mut row: serde_json::Value) -> Result<Job, DbError> {
    if let Some(map) = row.as_object_mut()
        && let Some(jid) = map.remove("jid")
    {
        map.insert("id".to_string(), jid);
    }
    Ok(serde_json::from_value(row)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The access path SurrealDB's planner picks for each statement of
    /// `query`, from its `EXPLAIN`.
    async fn plans(db: &Db, query: &str) -> Vec<String> {
        let mut plans = Vec::new();
        for statement in query.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let mut response = db
                .query(format!("{statement} EXPLAIN"))
                .bind(("owner", "u"))
                .bind(("since", "2026-01-01T00:00:00Z"))
                .await
                .expect("explain");
            let plan: Vec<serde_json::Value> = response.take(0).expect("a plan");
            plans.push(serde_json::to_string(&plan).expect("json"));
        }
        plans
    }

    #[tokio::test]
    async fn the_submission_checks_read_only_the_rows_they_count() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = db::connect(None, None, None, dir.path()).await.expect("db");
        let history = History::open(db.clone()).await.expect("schema");
        for (i, state) in ["queued", "completed", "failed", "completed"]
            .iter()
            .enumerate()
        {
            let finished = (*state != "queued").then_some("2026-06-01T00:00:00Z");
            db.query("CREATE job CONTENT { owner: 'u', jid: $jid, state: $state, input_bytes: 10, output: { bytes: 3 }, finished_at: $finished }")
                .bind(("jid", format!("j{i}")))
                .bind(("state", state.to_string()))
                .bind(("finished", finished))
                .await
                .expect("a row")
                .check()
                .expect("a row");
        }
        assert_eq!(history.unfinished("u").await.expect("count"), 1);
        let since = time::OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            history.stored_bytes("u", since).await.expect("sum"),
            10 + 3 + 3
        );
        for plan in plans(&db, UNFINISHED)
            .await
            .iter()
            .chain(&plans(&db, STORED_BYTES).await)
        {
            assert!(
                plan.contains("\"index\":\"job_state\"") || plan.contains("IndexCountScan"),
                "{plan}"
            );
            assert!(
                !plan.contains("\"Filter\""),
                "rows are filtered after they are read: {plan}"
            );
        }
    }
}
