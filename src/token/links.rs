//! Signed links: downloads that work without a bearer header, from an
//! email, a shared address or an `<audio>` element. A link names one
//! output of a job (or one track of it) and when it expires, and carries an
//! HMAC-SHA256 of those and of the job's link generation, under a key that
//! every Ingest and Mailer reads from the links bucket (the first process
//! to need it makes it). Revoking a job's links raises its generation, so
//! every link made before stops matching; deleting the job ends them too,
//! as the job is then not found.

use std::time::Duration;

use async_nats::jetstream::kv;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::wire::{Job, JobState};

/// The key of the secret in the links bucket.
const SECRET: &str = "secret";
/// Bytes of the secret.
const SECRET_BYTES: usize = 32;
/// Longest signature read: a SHA-256 tag in unpadded base64url.
const SIGNATURE_CHARS: usize = 43;

/// The key links are signed with.
pub struct LinkKey(hmac::Key);

#[derive(Debug, thiserror::Error)]
pub enum LinkKeyError {
    #[error("cannot read or store the link key")]
    Bucket(#[source] BoxError),
    #[error("the link key in the bucket is not {SECRET_BYTES} bytes")]
    Malformed,
}

impl LinkKey {
    /// The service's link key from `bucket`, made and stored there by the
    /// first process to ask; two asking at once agree on the one stored.
    pub async fn load_or_create(bucket: &kv::Store) -> Result<LinkKey, LinkKeyError> {
        let unreadable = |err: BoxError| LinkKeyError::Bucket(err);
        loop {
            if let Some(secret) = bucket.get(SECRET).await.map_err(|e| unreadable(e.into()))? {
                return LinkKey::new(&secret);
            }
            let mut secret = [0u8; SECRET_BYTES];
            getrandom::getrandom(&mut secret).map_err(|e| unreadable(e.into()))?;
            match bucket.create(SECRET, secret.to_vec().into()).await {
                Ok(_) => return LinkKey::new(&secret),
                // Another process stored one first: read that one.
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                Err(err) => return Err(unreadable(err.into())),
            }
        }
    }

    fn new(secret: &[u8]) -> Result<LinkKey, LinkKeyError> {
        if secret.len() != SECRET_BYTES {
            return Err(LinkKeyError::Malformed);
        }
        Ok(LinkKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// A key of its own, for tests.
    #[cfg(test)]
    fn random() -> LinkKey {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut secret).expect("random bytes");
        LinkKey(hmac::Key::new(hmac::HMAC_SHA256, &secret))
    }

    fn message(link: &Link, generation: u32) -> String {
        let track = link.track.map_or("-".to_string(), |k| k.to_string());
        format!(
            "mediajet-link-v1\n{}\n{}\n{track}\n{}\n{generation}",
            link.job, link.output, link.expires
        )
    }

    /// The signature of `message`, in unpadded base64url.
    fn sign(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, message.as_bytes()).as_ref())
    }

    /// Whether `signature` is this key's for `message`; compared in
    /// constant time.
    fn signs(&self, message: &str, signature: &str) -> bool {
        if signature.len() > SIGNATURE_CHARS {
            return false;
        }
        let Ok(tag) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        hmac::verify(&self.0, message.as_bytes(), &tag).is_ok()
    }

    /// The link's path and query: `/d/<job>/<output>[/<track>]?exp=…&sig=…`.
    pub fn path(&self, link: &Link, generation: u32) -> String {
        let signature = self.sign(&LinkKey::message(link, generation));
        let track = link.track.map_or(String::new(), |k| format!("/{k}"));
        format!(
            "/d/{}/{}{track}?exp={}&sig={signature}",
            link.job, link.output, link.expires
        )
    }

    /// Whether `signature` is this key's for the link, at the job's
    /// `generation`; compared in constant time.
    pub fn verify(&self, link: &Link, generation: u32, signature: &str) -> bool {
        self.signs(&LinkKey::message(link, generation), signature)
    }

    /// What a link to `job`'s cover picture signs: no output's number is
    /// `cover`, so it opens nothing else.
    fn cover_message(job: &str, expires: u64, generation: u32) -> String {
        format!("mediajet-link-v1\n{job}\ncover\n-\n{expires}\n{generation}")
    }

    /// The path of a link to `job`'s cover picture:
    /// `/d/<job>/cover.jpg?exp=…&sig=…`.
    pub fn cover_path(&self, job: &str, expires: u64, generation: u32) -> String {
        let signature = self.sign(&LinkKey::cover_message(job, expires, generation));
        format!("/d/{job}/cover.jpg?exp={expires}&sig={signature}")
    }

    /// Whether `signature` is that of a link to `job`'s cover picture.
    pub fn verify_cover(&self, job: &str, expires: u64, generation: u32, signature: &str) -> bool {
        self.signs(&LinkKey::cover_message(job, expires, generation), signature)
    }

    /// The path that turns `user`'s notification emails off, as each of
    /// their emails carries it: `/u/<user>?sig=…`. It does not expire: an
    /// old email's link still works.
    pub fn unsubscribe_path(&self, user: &str) -> String {
        let signature = self.sign(&format!("mediajet-unsubscribe-v1\n{user}"));
        format!("/u/{user}?sig={signature}")
    }

    /// Whether `signature` is that of `user`'s unsubscribe link.
    pub fn verify_unsubscribe(&self, user: &str, signature: &str) -> bool {
        self.signs(&format!("mediajet-unsubscribe-v1\n{user}"), signature)
    }
}

/// What a link opens: output `output` of job `job`, or track `track` of
/// it, until `expires` (seconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub job: String,
    pub output: usize,
    pub track: Option<usize>,
    pub expires: u64,
}

/// What links are made with: the key, the address they start with, and
/// how long they last.
pub struct Links {
    key: LinkKey,
    /// The service's public address, without a trailing slash.
    base: String,
    ttl: Duration,
}

impl Links {
    /// Links under `base` lasting `ttl` from the job's end, never longer
    /// than `retention`, which is how long its audio is kept.
    pub fn new(key: LinkKey, base: &str, ttl: Duration, retention: Duration) -> Links {
        Links {
            key,
            base: base.trim_end_matches('/').to_string(),
            ttl: ttl.min(retention),
        }
    }

    /// The key, to check a link with.
    pub fn key(&self) -> &LinkKey {
        &self.key
    }

    /// The address of `user`'s unsubscribe link.
    pub fn unsubscribe_url(&self, user: &str) -> String {
        format!("{}{}", self.base, self.key.unsubscribe_path(user))
    }

    /// The address of output `output` of a completed job (or of track
    /// `track` of it); `None` for a job that is not completed. The same
    /// job and generation always give the same address: its expiry counts
    /// from the job's end.
    pub fn url(&self, job: &Job, output: usize, track: Option<usize>) -> Option<String> {
        if job.state != JobState::Completed {
            return None;
        }
        let finished = job.finished_at?;
        let link = Link {
            job: job.id.to_string(),
            output,
            track,
            expires: expiry(finished, self.ttl),
        };
        Some(format!(
            "{}{}",
            self.base,
            self.key.path(&link, job.link_generation)
        ))
    }

    /// The address of a completed job's cover picture, if it has one;
    /// it expires with the job's other links.
    pub fn cover_url(&self, job: &Job) -> Option<String> {
        if job.state != JobState::Completed || job.artwork_bytes.is_none() {
            return None;
        }
        let expires = expiry(job.finished_at?, self.ttl);
        let path = self
            .key
            .cover_path(job.id.as_str(), expires, job.link_generation);
        Some(format!("{}{path}", self.base))
    }
}

/// When links to a job that ended at `finished` expire.
fn expiry(finished: OffsetDateTime, ttl: Duration) -> u64 {
    let seconds = finished.unix_timestamp().max(0) as u64;
    seconds.saturating_add(ttl.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(track: Option<usize>) -> Link {
        Link {
            job: "01a2".into(),
            output: 1,
            track,
            expires: 1_900_000_000,
        }
    }

    fn signature(path: &str) -> &str {
        path.rsplit_once("sig=").unwrap().1
    }

    #[test]
    fn a_link_verifies_only_as_signed_and_at_its_generation() {
        let key = LinkKey::random();
        let path = key.path(&link(None), 0);
        assert!(path.starts_with("/d/01a2/1?exp=1900000000&sig="), "{path}");
        let sig = signature(&path);
        assert!(key.verify(&link(None), 0, sig));
        assert!(!key.verify(&link(None), 1, sig), "revoked");
        assert!(!key.verify(&link(Some(0)), 0, sig), "another track");
        let later = Link {
            expires: 1_900_000_001,
            ..link(None)
        };
        assert!(!key.verify(&later, 0, sig), "a later expiry");
        assert!(
            !LinkKey::random().verify(&link(None), 0, sig),
            "another key"
        );
        assert!(!key.verify(&link(None), 0, "!!"));
        assert!(!key.verify(&link(None), 0, &"A".repeat(5000)));
        let track = key.path(&link(Some(2)), 0);
        assert!(track.starts_with("/d/01a2/1/2?exp="), "{track}");
        let unsubscribe = key.unsubscribe_path("ann");
        let sig = unsubscribe.rsplit_once("sig=").unwrap().1;
        assert!(key.verify_unsubscribe("ann", sig));
        assert!(!key.verify_unsubscribe("bob", sig));
        assert!(!key.verify(&link(None), 0, sig), "not a download link");
        let cover = key.cover_path("01a2", 1_900_000_000, 0);
        assert!(cover.starts_with("/d/01a2/cover.jpg?exp=1900000000&sig="));
        let sig = signature(&cover);
        assert!(key.verify_cover("01a2", 1_900_000_000, 0, sig));
        assert!(!key.verify_cover("01a2", 1_900_000_000, 1, sig), "revoked");
        assert!(!key.verify(&link(None), 0, sig), "not an output's link");
    }

    #[test]
    fn links_last_their_time_from_the_job_s_end_but_never_past_the_audio() {
        let key = LinkKey::random();
        let links = Links::new(
            key,
            "https://example.com/",
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(86_400),
        );
        assert_eq!(links.ttl, Duration::from_secs(86_400));
        let finished = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(expiry(finished, links.ttl), 1_800_086_400);
    }
}
