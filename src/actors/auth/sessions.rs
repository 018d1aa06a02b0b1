//! Login sessions and their refresh tokens.
//!
//! A refresh token reads `<session>.<generation>.<secret>`. Each refresh
//! spends it and hands out the next generation; only a hash of the current
//! secret is stored. A spent token presented again means someone kept a
//! copy, so the whole session is revoked: the thief and the owner both lose
//! it, and the owner logs in again (rotation with reuse detection).

use std::time::Duration;

use async_nats::jetstream::kv;
use base64::Engine;

use crate::token::{Revocations, unix_now};
use crate::wire::{self, Session};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Malformed, forged, expired, or of a session that has ended.
    #[error("invalid, expired or revoked refresh token")]
    Invalid,
    /// A spent token came back; its session is now revoked.
    #[error("this refresh token was already used; the session is revoked, log in again")]
    Replayed,
    #[error("sessions unavailable: {0}")]
    Unavailable(String),
}

/// A session's next refresh token.
pub struct Issued {
    pub session: String,
    pub refresh_token: String,
    /// Unix time after which the session cannot be refreshed.
    pub expires_at: u64,
}

pub struct Sessions {
    store: kv::Store,
    revocations: Revocations,
    refresh_ttl: Duration,
    /// A revocation must outlive every access token issued before it.
    access_ttl: Duration,
}

/// A refresh token taken apart.
struct Presented<'a> {
    session: &'a str,
    generation: u64,
    secret: &'a str,
}

impl<'a> Presented<'a> {
    fn parse(token: &'a str) -> Option<Self> {
        let mut parts = token.splitn(3, '.');
        let session = parts.next()?;
        let generation = parts.next()?.parse().ok()?;
        let secret = parts.next()?;
        // Session ids are 32 hex digits; anything else cannot be a key.
        let valid = session.len() == 32
            && session.chars().all(|c| c.is_ascii_hexdigit())
            && !secret.is_empty()
            && secret.len() <= 64;
        valid.then_some(Presented {
            session,
            generation,
            secret,
        })
    }
}

impl Sessions {
    pub fn new(
        store: kv::Store,
        revocations: Revocations,
        refresh_ttl: Duration,
        access_ttl: Duration,
    ) -> Self {
        Sessions {
            store,
            revocations,
            refresh_ttl,
            access_ttl,
        }
    }

    /// Starts a session for a user who just logged in.
    pub async fn start(&self, email: &str) -> Result<Issued, SessionError> {
        let session = hex(&random_bytes::<16>()?);
        let secret = secret()?;
        let expires_at = unix_now() + self.refresh_ttl.as_secs();
        let record = Session {
            v: wire::VERSION,
            email: email.to_string(),
            generation: 0,
            secret_sha256: sha256_hex(&secret),
            expires_at,
        };
        self.store
            .create(&session, wire::encode(&record))
            .await
            .map_err(|e| SessionError::Unavailable(e.to_string()))?;
        Ok(Issued {
            refresh_token: format!("{session}.0.{secret}"),
            session,
            expires_at,
        })
    }

    /// Spends a refresh token: returns the email of the session's user and
    /// the session's next token.
    pub async fn rotate(&self, token: &str) -> Result<(String, Issued), SessionError> {
        let presented = Presented::parse(token).ok_or(SessionError::Invalid)?;
        let (mut record, revision) = self
            .record(presented.session)
            .await?
            .ok_or(SessionError::Invalid)?;
        if unix_now() >= record.expires_at {
            return Err(SessionError::Invalid);
        }
        if presented.generation < record.generation {
            self.revoke(presented.session).await?;
            crate::metrics::session_revoked("replay");
            tracing::warn!(
                session = presented.session,
                "a spent refresh token came back; session revoked"
            );
            return Err(SessionError::Replayed);
        }
        if presented.generation > record.generation
            || !same(&sha256_hex(presented.secret), &record.secret_sha256)
        {
            return Err(SessionError::Invalid);
        }
        let secret = secret()?;
        record.generation += 1;
        record.secret_sha256 = sha256_hex(&secret);
        match self
            .store
            .update(presented.session, wire::encode(&record), revision)
            .await
        {
            Ok(_) => {}
            // The same token won a refresh a moment ago: it was used twice.
            Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.revoke(presented.session).await?;
                crate::metrics::session_revoked("replay");
                return Err(SessionError::Replayed);
            }
            Err(err) => return Err(SessionError::Unavailable(err.to_string())),
        }
        let issued = Issued {
            refresh_token: format!("{}.{}.{secret}", presented.session, record.generation),
            session: presented.session.to_string(),
            expires_at: record.expires_at,
        };
        Ok((record.email, issued))
    }

    /// Ends the session of a refresh token (its current one, or a spent one,
    /// which would revoke it anyway) and returns the session and until when
    /// its access tokens are refused. A session that has already ended stays
    /// ended without complaint (until 0).
    pub async fn end(&self, token: &str) -> Result<(String, u64), SessionError> {
        let presented = Presented::parse(token).ok_or(SessionError::Invalid)?;
        let Some((record, _)) = self.record(presented.session).await? else {
            return Ok((presented.session.to_string(), 0));
        };
        let genuine = presented.generation < record.generation
            || (presented.generation == record.generation
                && same(&sha256_hex(presented.secret), &record.secret_sha256));
        if !genuine {
            return Err(SessionError::Invalid);
        }
        let until = self.revoke(presented.session).await?;
        Ok((presented.session.to_string(), until))
    }

    /// The stored record of a session that has not ended, and its revision.
    async fn record(&self, session: &str) -> Result<Option<(Session, u64)>, SessionError> {
        let entry = self
            .store
            .entry(session)
            .await
            .map_err(|e| SessionError::Unavailable(e.to_string()))?
            .filter(|entry| entry.operation == kv::Operation::Put);
        match entry {
            None => Ok(None),
            Some(entry) => wire::decode::<Session>(&entry.value)
                .map(|record| Some((record, entry.revision)))
                .map_err(|_| SessionError::Invalid),
        }
    }

    /// Ends a session: its access tokens stop passing and it cannot be
    /// refreshed again. Returns until when its access tokens are refused.
    pub async fn revoke(&self, session: &str) -> Result<u64, SessionError> {
        // The revocation first: once it is stored, no token of the session
        // passes, whatever happens to the session entry.
        let until = unix_now() + self.access_ttl.as_secs() + 60;
        self.revocations
            .revoke(session, until)
            .await
            .map_err(|e| SessionError::Unavailable(e.to_string()))?;
        self.store
            .purge(session)
            .await
            .map_err(|e| SessionError::Unavailable(e.to_string()))?;
        Ok(until)
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], SessionError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| SessionError::Unavailable(e.to_string()))?;
    Ok(bytes)
}

fn secret() -> Result<String, SessionError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(secret: &str) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Compares in time independent of where the strings differ.
fn same(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_parse_only_in_their_own_shape() {
        let session = "0123456789abcdef0123456789abcdef";
        let token = format!("{session}.7.c2VjcmV0");
        let presented = Presented::parse(&token).expect("a valid token parses");
        assert_eq!(presented.session, session);
        assert_eq!(presented.generation, 7);
        assert_eq!(presented.secret, "c2VjcmV0");
        for bad in [
            "",
            "no dots",
            "0123.1.secret",
            "0123456789abcdef0123456789abcdeg.1.secret",
            "0123456789abcdef0123456789abcdef.x.secret",
            "0123456789abcdef0123456789abcdef.1.",
            "0123456789abcdef0123456789abcdef.-1.secret",
        ] {
            assert!(Presented::parse(bad).is_none(), "{bad:?} parsed");
        }
    }
}
