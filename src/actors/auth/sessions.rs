//! Login sessions and their refresh tokens.
//!
//! A refresh token reads `<session>.<generation>.<secret>`. Each refresh
//! spends it and hands out the next generation; only hashes of the current
//! and the previous secret are stored. The previous token presented again
//! means someone kept a copy, so the whole session is revoked: the thief and
//! the owner both lose it, and the owner logs in again (rotation with reuse
//! detection). Within a few seconds of a refresh the previous token is
//! instead taken as a client retrying a refresh whose answer was lost, and
//! renewed once more. A token whose secret matches neither hash was never
//! issued: it is refused and changes nothing, so knowing a session's id
//! (every access token carries it) is not enough to end the session.

use std::time::Duration;

use async_nats::jetstream::kv;
use base64::Engine;

use crate::error::BoxError;
use crate::storage::buckets;
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
    #[error("sessions unavailable")]
    Unavailable(#[source] BoxError),
}

/// A session's next refresh token.
pub struct NextToken {
    pub session: String,
    pub refresh_token: String,
    /// Unix time after which the session cannot be refreshed.
    pub expires_at: u64,
}

/// Spent secrets remembered per session: older ones are no longer told
/// from made-up ones, and are refused without ending the session.
const SPENT_REMEMBERED: usize = 8;

pub struct Sessions {
    store: kv::Store,
    revocations: Revocations,
    refresh_ttl: Duration,
    /// A revocation must outlive every access token issued before it.
    access_ttl: Duration,
    /// How long after a refresh the token it spent may be spent once more
    /// (the client did not get the answer and asks again).
    retry_grace: Duration,
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
        let session = Presented::session_id(parts.next()?)?;
        let generation = parts.next()?.parse().ok()?;
        let secret = parts.next()?;
        let valid = !secret.is_empty() && secret.len() <= 64;
        valid.then_some(Presented {
            session,
            generation,
            secret,
        })
    }

    /// `text` if it has the form of a session id (32 hex digits); anything
    /// else cannot be a key.
    fn session_id(text: &str) -> Option<&str> {
        (text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit())).then_some(text)
    }
}

impl Sessions {
    pub fn new(
        store: kv::Store,
        revocations: Revocations,
        refresh_ttl: Duration,
        access_ttl: Duration,
        retry_grace: Duration,
    ) -> Self {
        Sessions {
            store,
            revocations,
            refresh_ttl,
            access_ttl,
            retry_grace,
        }
    }

    /// Starts a session for a user who just logged in.
    pub async fn start(&self, user: &str, email: &str) -> Result<NextToken, SessionError> {
        let session = crate::hex::encode(&random_bytes::<16>()?);
        let secret = secret()?;
        let expires_at = unix_now() + self.refresh_ttl.as_secs();
        let record = Session {
            v: wire::VERSION,
            email: email.to_string(),
            generation: 0,
            secret_sha256: sha256_hex(&secret),
            spent_sha256: Vec::new(),
            rotated_at: unix_now(),
            expires_at,
        };
        self.store
            .create(&session, wire::encode(&record))
            .await
            .map_err(|e| SessionError::Unavailable(e.into()))?;
        self.note_user(user, &session).await?;
        Ok(NextToken {
            refresh_token: format!("{session}.0.{secret}"),
            session,
            expires_at,
        })
    }

    /// Checks a refresh token without spending it: the caller reads what it
    /// needs (the user) first, then spends it with [`Sessions::rotate`], so
    /// a failure in between leaves the token good. A replayed token revokes
    /// its session here.
    pub async fn check(&self, token: &str) -> Result<Renewal, SessionError> {
        let presented = Presented::parse(token).ok_or(SessionError::Invalid)?;
        let (record, revision) = self
            .record(presented.session)
            .await?
            .ok_or(SessionError::Invalid)?;
        if unix_now() >= record.expires_at {
            return Err(SessionError::Invalid);
        }
        let retry = match issued_as(&presented, &record) {
            Some(Issued::Current) => false,
            Some(Issued::Previous)
                if unix_now() < record.rotated_at + self.retry_grace.as_secs() =>
            {
                tracing::info!(
                    session = presented.session,
                    "a refresh token spent a moment ago came back; taken as a retry"
                );
                true
            }
            Some(Issued::Previous | Issued::Older) => {
                self.revoke(presented.session).await?;
                crate::metrics::session_revoked("replay");
                tracing::warn!(
                    session = presented.session,
                    "a spent refresh token came back; session revoked"
                );
                return Err(SessionError::Replayed);
            }
            None => return Err(SessionError::Invalid),
        };
        Ok(Renewal {
            session: presented.session.to_string(),
            record,
            revision,
            retry,
        })
    }

    /// Spends a checked refresh token and returns the session's next one.
    /// Two refreshes with the same token at once both get an answer: the
    /// second finds the token just spent, within the grace.
    pub async fn rotate(&self, token: &str, renewal: Renewal) -> Result<NextToken, SessionError> {
        let mut renewal = renewal;
        for _ in 0..2 {
            let Renewal {
                session,
                mut record,
                revision,
                retry,
            } = renewal;
            let secret = secret()?;
            // A retried token renews from the generation it was, and stays
            // the previous one: a copy of it still revokes the session once
            // the grace has passed, which is not extended.
            if !retry {
                record.spent_sha256.push(record.secret_sha256.clone());
                let forget = record.spent_sha256.len().saturating_sub(SPENT_REMEMBERED);
                record.spent_sha256.drain(..forget);
                record.rotated_at = unix_now();
            }
            record.generation += 1;
            record.secret_sha256 = sha256_hex(&secret);
            match self
                .store
                .update(&session, wire::encode(&record), revision)
                .await
            {
                Ok(_) => {
                    return Ok(NextToken {
                        refresh_token: format!("{session}.{}.{secret}", record.generation),
                        session,
                        expires_at: record.expires_at,
                    });
                }
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    renewal = self.check(token).await?;
                }
                Err(err) => return Err(SessionError::Unavailable(err.into())),
            }
        }
        Err(SessionError::Unavailable(
            "the session kept changing while it was refreshed".into(),
        ))
    }

    /// Ends the session of a refresh token (its current one, or the one just
    /// spent) and returns the session and until when its access tokens are
    /// refused. A session that has already ended stays ended without
    /// complaint (until 0). A token that was never issued is refused.
    pub async fn end(&self, token: &str) -> Result<(String, u64), SessionError> {
        let presented = Presented::parse(token).ok_or(SessionError::Invalid)?;
        let Some((record, _)) = self.record(presented.session).await? else {
            return Ok((presented.session.to_string(), 0));
        };
        if issued_as(&presented, &record).is_none() {
            return Err(SessionError::Invalid);
        }
        let until = self.revoke(presented.session).await?;
        Ok((presented.session.to_string(), until))
    }

    /// Notes that `session` is `user`'s, so that it can be ended with the
    /// user's other sessions. Every session is noted as it starts, and
    /// again at each refresh (which notes the sessions started before
    /// sessions were noted at all).
    pub async fn note_user(&self, user: &str, session: &str) -> Result<(), SessionError> {
        self.store
            .put(user_key(user, session), bytes::Bytes::new())
            .await
            .map_err(|e| SessionError::Unavailable(e.into()))?;
        Ok(())
    }

    /// Ends every session of `user` but `except`; returns how many ended.
    pub async fn end_all(&self, user: &str, except: Option<&str>) -> Result<usize, SessionError> {
        let unavailable = |e: BoxError| SessionError::Unavailable(e);
        let noted = buckets::keys_matching(&self.store, &user_key(user, "*"))
            .await
            .map_err(unavailable)?;
        let mut ended = 0;
        for key in noted {
            let session = key.rsplit('.').next().unwrap_or_default();
            if Some(session) == except || Presented::session_id(session).is_none() {
                continue;
            }
            if self.record(session).await?.is_some() {
                self.revoke(session).await?;
                ended += 1;
            }
            self.store
                .purge(&key)
                .await
                .map_err(|e| unavailable(e.into()))?;
        }
        Ok(ended)
    }

    /// The stored record of a session that has not ended, and its revision.
    async fn record(&self, session: &str) -> Result<Option<(Session, u64)>, SessionError> {
        let entry = self
            .store
            .entry(session)
            .await
            .map_err(|e| SessionError::Unavailable(e.into()))?
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
            .map_err(|e| SessionError::Unavailable(e.into()))?;
        self.store
            .purge(session)
            .await
            .map_err(|e| SessionError::Unavailable(e.into()))?;
        Ok(until)
    }
}

/// A refresh token checked and not yet spent.
pub struct Renewal {
    session: String,
    record: Session,
    revision: u64,
    /// The token is the one the last refresh spent, back within the grace.
    retry: bool,
}

impl Renewal {
    /// The email of the session's user.
    pub fn email(&self) -> &str {
        &self.record.email
    }

    pub fn session(&self) -> &str {
        &self.session
    }
}

/// Which of a session's tokens a presented one really is.
enum Issued {
    Current,
    /// The one the last refresh spent.
    Previous,
    /// One spent before that.
    Older,
}

/// Which token of the session `presented` is, or `None` for one never
/// issued (or spent too long ago to tell).
fn issued_as(presented: &Presented<'_>, record: &Session) -> Option<Issued> {
    let hash = sha256_hex(presented.secret);
    if presented.generation == record.generation && same(&hash, &record.secret_sha256) {
        return Some(Issued::Current);
    }
    if presented.generation >= record.generation {
        return None;
    }
    let spent = record
        .spent_sha256
        .iter()
        .rposition(|spent| same(&hash, spent))?;
    Some(if spent + 1 == record.spent_sha256.len() {
        Issued::Previous
    } else {
        Issued::Older
    })
}

/// The key that notes `session` as `user`'s (`u.<user>.<session>`);
/// `u.<user>.*` lists the user's sessions.
fn user_key(user: &str, session: &str) -> String {
    format!("u.{user}.{session}")
}

fn random_bytes<const N: usize>() -> Result<[u8; N], SessionError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| SessionError::Unavailable(e.to_string().into()))?;
    Ok(bytes)
}

fn secret() -> Result<String, SessionError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

fn sha256_hex(secret: &str) -> String {
    crate::hex::sha256(secret.as_bytes())
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
