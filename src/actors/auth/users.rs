//! Users in SurrealDB: unique email, argon2id hash, role.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::storage::db::{self, Db, DbError};
use crate::wire::Role;

const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS user SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS uid ON user TYPE string;
DEFINE FIELD IF NOT EXISTS email ON user TYPE string;
DEFINE FIELD IF NOT EXISTS password_hash ON user TYPE string;
DEFINE FIELD IF NOT EXISTS role ON user TYPE string ASSERT $value IN ["user", "admin"];
DEFINE FIELD IF NOT EXISTS created_at ON user TYPE string;
DEFINE INDEX IF NOT EXISTS user_email ON user FIELDS email UNIQUE;
DEFINE INDEX IF NOT EXISTS user_uid ON user FIELDS uid UNIQUE;
"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub uid: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user with this email already exists")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("password hashing failed")]
    Hash(#[source] BoxError),
}

impl From<surrealdb::Error> for UserError {
    fn from(err: surrealdb::Error) -> Self {
        UserError::Db(DbError::from(err))
    }
}

#[derive(Clone)]
pub struct UserStore {
    db: Db,
}

impl UserStore {
    pub async fn open(db: Db) -> Result<UserStore, DbError> {
        db::define(&db, SCHEMA).await?;
        Ok(UserStore { db })
    }

    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserError> {
        let mut response = db::bounded(
            self.db
                .query("SELECT uid, email, password_hash, role, created_at FROM user WHERE email = $email LIMIT 1")
                .bind(("email", email.to_string())),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        match rows.into_iter().next() {
            Some(row) => Ok(Some(serde_json::from_value(row).map_err(DbError::from)?)),
            None => Ok(None),
        }
    }

    pub async fn count(&self) -> Result<u64, UserError> {
        let mut response = db::bounded(self.db.query("SELECT count() AS n FROM user GROUP ALL"))
            .await?
            .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        Ok(rows
            .first()
            .and_then(|row| row.get("n"))
            .and_then(|n| n.as_u64())
            .unwrap_or(0))
    }

    /// Creates a user; the unique index on email settles races between
    /// concurrent creations.
    pub async fn create(&self, email: &str, password: &str, role: Role) -> Result<User, UserError> {
        if self.find_by_email(email).await?.is_some() {
            return Err(UserError::Duplicate);
        }
        let user = User {
            uid: uuid::Uuid::now_v7().to_string(),
            email: email.to_string(),
            password_hash: hash_password(password).await?,
            role,
            created_at: OffsetDateTime::now_utc(),
        };
        let row = serde_json::to_value(&user).map_err(DbError::from)?;
        let result = db::bounded(self.db.query("CREATE user CONTENT $row").bind(("row", row)))
            .await?
            .check();
        match result {
            Ok(_) => Ok(user),
            Err(err) if err.to_string().contains("already contains") => Err(UserError::Duplicate),
            Err(err) => Err(err.into()),
        }
    }

    /// Sets the password and role of an existing user.
    pub async fn update(&self, email: &str, password: &str, role: Role) -> Result<(), UserError> {
        let hash = hash_password(password).await?;
        db::bounded(
            self.db
                .query("UPDATE user SET password_hash = $hash, role = $role WHERE email = $email")
                .bind(("hash", hash))
                .bind(("role", role.as_str().to_string()))
                .bind(("email", email.to_string())),
        )
        .await?
        .check()?;
        Ok(())
    }
}

/// Hashes with argon2id on a blocking thread: it is deliberately slow.
pub async fn hash_password(password: &str) -> Result<String, UserError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| UserError::Hash(e.into()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.into()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| UserError::Hash(e.into()))
    })
    .await
    .map_err(|e| UserError::Hash(e.into()))?
}

/// Checks a password on a blocking thread; a malformed hash never matches.
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let password = password.to_string();
    let hash = hash.to_string();
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}
