//! Each user's private podcast feed: an RSS 2.0 document (with the
//! iTunes tags podcast apps read) of their completed audio, newest first,
//! each episode's enclosure a signed link. The feed's address carries a
//! random token, kept only as a hash (like an API key): making a new one
//! ends the old, and it can be turned off.

use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::Ingest;
use super::error::ApiError;
use super::history::StateFilter;
use crate::markup::escape;
use crate::storage::buckets;
use crate::wire::{self, Job, JobState};

/// Most episodes a feed lists.
const EPISODES: u32 = 100;
/// Characters of a feed token (32 random bytes, base64url).
const TOKEN_CHARS: usize = 43;

/// A user's feed, under `u.<user>`, and the way back from its token, under
/// `t.<token hash>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FeedRecord {
    pub v: u32,
    pub user: String,
    pub email: String,
    pub token_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn user_key(user: &str) -> String {
    format!("u.{user}")
}

fn token_key(hash: &str) -> String {
    format!("t.{hash}")
}

impl Ingest {
    /// Makes `user` a new feed token, ending any earlier one; returns the
    /// feed's address.
    pub(super) async fn enable_feed(&self, user: &str, email: &str) -> Result<String, ApiError> {
        let unavailable = |e: crate::error::BoxError| ApiError::unavailable("the feeds", e);
        self.disable_feed(user).await?;
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| unavailable(e.into()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let record = FeedRecord {
            v: wire::VERSION,
            user: user.to_string(),
            email: email.to_string(),
            token_sha256: crate::hex::sha256(token.as_bytes()),
            created_at: OffsetDateTime::now_utc(),
        };
        // The way back from the token first: a feed listed under its user is
        // always one that opens.
        for key in [token_key(&record.token_sha256), user_key(user)] {
            self.podcast_feeds
                .put(key, wire::encode(&record))
                .await
                .map_err(|e| unavailable(e.into()))?;
        }
        Ok(self.feed_url(&token))
    }

    /// `user`'s feed, if they have one.
    pub(super) async fn feed_of(&self, user: &str) -> Result<Option<FeedRecord>, ApiError> {
        self.feed_record(&user_key(user)).await
    }

    /// Ends `user`'s feed: its address opens nothing any more.
    pub(super) async fn disable_feed(&self, user: &str) -> Result<bool, ApiError> {
        let Some(record) = self.feed_of(user).await? else {
            return Ok(false);
        };
        for key in [token_key(&record.token_sha256), user_key(user)] {
            self.podcast_feeds
                .purge(key)
                .await
                .map_err(|e| ApiError::unavailable("the feeds", e))?;
        }
        Ok(true)
    }

    /// The feed a token opens, if any (and its owner is not disabled).
    pub(super) async fn feed_for_token(&self, token: &str) -> Result<Option<FeedRecord>, ApiError> {
        let well_formed = token.len() == TOKEN_CHARS
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Ok(None);
        }
        let record = self
            .feed_record(&token_key(&crate::hex::sha256(token.as_bytes())))
            .await?;
        Ok(record.filter(|record| !self.verifier.disabled().is_disabled(&record.user)))
    }

    async fn feed_record(&self, key: &str) -> Result<Option<FeedRecord>, ApiError> {
        let read = buckets::read_entry(&self.podcast_feeds, key)
            .await
            .map_err(|e| ApiError::unavailable("the feeds", e))?;
        Ok(read.map(|(record, _)| record))
    }

    fn feed_url(&self, token: &str) -> String {
        format!("{}/feeds/{token}.xml", self.public_url)
    }

    /// The RSS document of `feed`, opened at `token`.
    pub(super) async fn podcast(&self, feed: &FeedRecord, token: &str) -> Result<String, ApiError> {
        let jobs = self
            .history
            .list(
                &feed.user,
                StateFilter::Finished(JobState::Completed),
                None,
                EPISODES,
            )
            .await
            .map_err(|e| ApiError::unavailable("the job history", e))?;
        let mut items = String::new();
        for listed in jobs {
            // The live job: its links are signed at its generation now.
            let Some(job) = self.job(listed.id.as_str()).await? else {
                continue;
            };
            if let Some(item) = self.episode(&job) {
                items.push_str(&item);
            }
        }
        let email = escape(&feed.email);
        Ok(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\" \
             xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n\
             <title>mediajet · {email}</title>\n<link>{base}/</link>\n\
             <description>The audio {email} converted with mediajet.</description>\n\
             <language>en</language>\n<itunes:author>{email}</itunes:author>\n\
             <itunes:explicit>false</itunes:explicit>\n\
             <atom:link href=\"{self_url}\" rel=\"self\" type=\"application/rss+xml\"/>\n\
             {items}</channel>\n</rss>\n",
            base = escape(&self.public_url),
            self_url = escape(&self.feed_url(token)),
        ))
    }

    /// One job as an episode: its first output that is one audio file (not
    /// a split output's zip), if it has one.
    fn episode(&self, job: &Job) -> Option<String> {
        let (n, output) = job
            .results()
            .enumerate()
            .find(|(_, output)| output.tracks.is_empty())?;
        let url = self.links.url(job, n, None)?;
        let title = job.options.tags.title.clone().unwrap_or_else(|| {
            job.filename
                .rsplit_once('.')
                .map_or(job.filename.clone(), |(stem, _)| stem.to_string())
        });
        let published = job
            .finished_at
            .and_then(|at| at.format(&Rfc2822).ok())
            .unwrap_or_default();
        let seconds = output.duration_seconds.round() as u64;
        let duration = format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        // The job's cover picture, where it has one, is the episode's.
        let image = self.links.cover_url(job).map_or(String::new(), |url| {
            format!("<itunes:image href=\"{}\"/>\n", escape(&url))
        });
        Some(format!(
            "<item>\n<title>{}</title>\n<guid isPermaLink=\"false\">mediajet:{}</guid>\n\
             <pubDate>{published}</pubDate>\n\
             <enclosure url=\"{}\" length=\"{}\" type=\"{}\"/>\n\
             <itunes:duration>{duration}</itunes:duration>\n{image}\
             <description>{}, converted to {}</description>\n</item>\n",
            escape(&title),
            job.id,
            escape(&url),
            output.bytes,
            escape(&output.content_type),
            escape(&job.filename),
            job.format.name(),
        ))
    }
}
