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
DEFINE FIELD IF NOT EXISTS disabled ON user TYPE option<bool>;
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
    /// Users made before accounts could be disabled have no such field.
    #[serde(default, deserialize_with = "null_is_false")]
    pub disabled: bool,
}

fn null_is_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// The columns a user is read with.
const COLUMNS: &str = "uid, email, password_hash, role, created_at, disabled";

/// What an admin may change of a user; `None` leaves it as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// The new password's argon2id hash.
    pub password_hash: Option<String>,
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
        self.find_one("email", email).await
    }

    pub async fn find_by_id(&self, uid: &str) -> Result<Option<User>, UserError> {
        self.find_one("uid", uid).await
    }

    /// The user whose `column` (a unique one) is `value`.
    async fn find_one(&self, column: &str, value: &str) -> Result<Option<User>, UserError> {
        let query = format!("SELECT {COLUMNS} FROM user WHERE {column} = $value LIMIT 1");
        let mut response = db::bounded(self.db.query(query).bind(("value", value.to_string())))
            .await?
            .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        match rows.into_iter().next() {
            Some(row) => Ok(Some(serde_json::from_value(row).map_err(DbError::from)?)),
            None => Ok(None),
        }
    }

    /// At most `limit` users in the order of their ids (time-ordered),
    /// after the id `after`.
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, UserError> {
        let query =
            format!("SELECT {COLUMNS} FROM user WHERE uid > $after ORDER BY uid LIMIT $limit");
        let mut response = db::bounded(
            self.db
                .query(query)
                .bind(("after", after.unwrap_or_default().to_string()))
                .bind(("limit", i64::from(limit))),
        )
        .await?
        .check()?;
        let rows: Vec<serde_json::Value> = response.take(0)?;
        rows.into_iter()
            .map(|row| serde_json::from_value(row).map_err(|e| DbError::from(e).into()))
            .collect()
    }

    /// Applies `changes` to the user `uid`; returns the user as changed,
    /// or `None` when there is no such user.
    pub async fn change(&self, uid: &str, changes: Changes) -> Result<Option<User>, UserError> {
        let Some(mut user) = self.find_by_id(uid).await? else {
            return Ok(None);
        };
        if let Some(role) = changes.role {
            user.role = role;
        }
        if let Some(disabled) = changes.disabled {
            user.disabled = disabled;
        }
        if let Some(hash) = changes.password_hash {
            user.password_hash = hash;
        }
        db::bounded(
            self.db
                .query(
                    "UPDATE user SET role = $role, disabled = $disabled, \
                     password_hash = $hash WHERE uid = $uid",
                )
                .bind(("role", user.role.as_str().to_string()))
                .bind(("disabled", user.disabled))
                .bind(("hash", user.password_hash.clone()))
                .bind(("uid", uid.to_string())),
        )
        .await?
        .check()?;
        Ok(Some(user))
    }

    /// Removes the user `uid`.
    pub async fn delete(&self, uid: &str) -> Result<(), UserError> {
        db::bounded(
            self.db
                .query("DELETE user WHERE uid = $uid")
                .bind(("uid", uid.to_string())),
        )
        .await?
        .check()?;
        Ok(())
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
            disabled: false,
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
