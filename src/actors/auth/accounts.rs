//! Accounts: one's own (read it, change one's password) and, for an admin,
//! anyone's (list, change, remove). Disabling or removing a user marks
//! them in the disabled bucket first, which every verifier mirrors, so
//! their tokens stop passing everywhere at once; then their sessions end,
//! so no refresh brings a token back.

use bytes::Bytes;

use super::admin::check_password;
use super::error::AuthError;
use super::users::{self, Changes, User};
use super::{Auth, MAX_PASSWORD_BYTES};
use crate::token::Claims;
use crate::wire::{self, AccountOp, AccountRequest, Role, UserPage, UserReply};

/// Most users one page lists.
const MAX_PAGE: u32 = 500;

impl Auth {
    /// Serves an account request; the reply's type depends on its
    /// operation (see [`AccountOp`]).
    pub async fn account(&self, request: AccountRequest) -> Result<Bytes, AuthError> {
        let caller = self
            .verifier
            .verify(&request.token)
            .await
            .map_err(|_| AuthError::InvalidToken)?;
        match request.op {
            AccountOp::Me => Ok(wire::encode(&reply(self.caller(&caller).await?))),
            AccountOp::ChangePassword {
                current_password,
                new_password,
            } => {
                let user = self.caller(&caller).await?;
                check_password(&new_password)?;
                if current_password.len() > MAX_PASSWORD_BYTES
                    || !users::verify_password(&current_password, &user.password_hash).await
                {
                    return Err(AuthError::WrongPassword);
                }
                let changes = Changes {
                    password_hash: Some(users::hash_password(&new_password).await?),
                    ..Changes::default()
                };
                let user = self.change(&user.uid, changes).await?;
                let ended = self
                    .sessions
                    .end_all(&user.uid, caller.sid.as_deref())
                    .await?;
                tracing::info!(ended, "password changed; the other sessions ended");
                Ok(wire::encode(&reply(user)))
            }
            AccountOp::List { after, limit } => {
                admin(&caller)?;
                let limit = limit.clamp(1, MAX_PAGE);
                let users = self.users.list(after.as_deref(), limit).await?;
                let next = (users.len() == limit as usize)
                    .then(|| users.last().map(|user| user.uid.clone()))
                    .flatten();
                let page = UserPage {
                    v: wire::VERSION,
                    users: users.into_iter().map(reply).collect(),
                    next,
                };
                Ok(wire::encode(&page))
            }
            AccountOp::Update {
                id,
                role,
                disabled,
                password,
            } => {
                admin(&caller)?;
                if id == caller.sub && (disabled == Some(true) || role == Some(Role::User)) {
                    return Err(AuthError::BadRequest(
                        "an admin cannot disable or demote themselves; ask another admin".into(),
                    ));
                }
                let password_hash = match &password {
                    Some(password) => {
                        check_password(password)?;
                        Some(users::hash_password(password).await?)
                    }
                    None => None,
                };
                let reset = password_hash.is_some();
                let changes = Changes {
                    role,
                    disabled,
                    password_hash,
                };
                let user = self.change(&id, changes).await?;
                let disabled_users = self.verifier.disabled();
                match disabled {
                    Some(true) => disabled_users.disable(&user.uid, false).await,
                    Some(false) => disabled_users.enable(&user.uid).await,
                    None => Ok(()),
                }
                .map_err(|e| AuthError::Unavailable(e.into()))?;
                // A disabled user's sessions end; so do those of a user whose
                // password an admin reset (it may have leaked).
                if disabled == Some(true) || reset {
                    self.sessions.end_all(&user.uid, None).await?;
                }
                Ok(wire::encode(&reply(user)))
            }
            AccountOp::Delete { id } => {
                admin(&caller)?;
                if id == caller.sub {
                    return Err(AuthError::BadRequest(
                        "an admin cannot remove themselves; ask another admin".into(),
                    ));
                }
                let user = self
                    .users
                    .find_by_id(&id)
                    .await?
                    .ok_or(AuthError::NoSuchUser)?;
                self.verifier
                    .disabled()
                    .disable(&user.uid, true)
                    .await
                    .map_err(|e| AuthError::Unavailable(e.into()))?;
                self.sessions.end_all(&user.uid, None).await?;
                self.users.delete(&user.uid).await?;
                tracing::info!(user = %user.uid, "user removed");
                Ok(wire::encode(&reply(user)))
            }
        }
    }

    /// The caller's own account.
    async fn caller(&self, caller: &Claims) -> Result<User, AuthError> {
        self.users
            .find_by_id(&caller.sub)
            .await?
            .ok_or(AuthError::InvalidToken)
    }

    async fn change(&self, id: &str, changes: Changes) -> Result<User, AuthError> {
        self.users
            .change(id, changes)
            .await?
            .ok_or(AuthError::NoSuchUser)
    }
}

fn admin(caller: &Claims) -> Result<(), AuthError> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::User => Err(AuthError::Forbidden),
    }
}

/// A user as the API shows them.
pub(super) fn reply(user: User) -> UserReply {
    UserReply {
        v: wire::VERSION,
        id: user.uid,
        email: user.email,
        role: user.role,
        disabled: user.disabled,
        created_at: user.created_at,
    }
}
