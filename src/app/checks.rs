//! What start-up checks and waits for: settings that come in pairs or
//! name files, the tools a transcoder runs, the local nats-server's
//! password, the NATS credentials to use, and the actors' services and
//! workers coming up.

use std::path::Path;
use std::time::Duration;

use super::StartError;
use crate::actors::Health;
use crate::config::Config;
use crate::storage::jetstream::NatsAuth;

/// Refuses settings that cannot work, before anything connects: a user
/// without a password, an empty SMTP URL, a named file that is empty or
/// unreadable. Secrets come from deployment templates (Nomad Variables): one
/// that is missing there arrives empty, and must stop the process rather
/// than let it run half-configured.
pub(super) fn settings(config: &Config) -> Result<(), StartError> {
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    let shared = &config.shared;
    if shared.nats_user.is_some() && shared.nats_creds.is_none() && !given(&shared.nats_password) {
        return Err(StartError::Setting(
            "--nats-user (MEDIAJET_NATS_USER) is set without a password (MEDIAJET_NATS_PASSWORD)"
                .into(),
        ));
    }
    if shared.surreal_user.is_some() && !given(&shared.surreal_password) {
        return Err(StartError::Setting(
            "--surreal-user (MEDIAJET_SURREAL_USER) is set without a password (MEDIAJET_SURREAL_PASSWORD)"
                .into(),
        ));
    }
    if config.mailer.smtp_url.is_some() && !given(&config.mailer.smtp_url) {
        return Err(StartError::Setting(
            "--smtp-url (MEDIAJET_SMTP_URL) is empty".into(),
        ));
    }
    // The signing key is made on first start when its file does not exist;
    // an empty one is a template that rendered nothing.
    let files = [
        ("--nats-tls-ca", &shared.nats_tls_ca, false),
        ("--surreal-tls-ca", &shared.surreal_tls_ca, false),
        ("--jwt-key-file", &config.auth.jwt_key_file, true),
    ];
    for (flag, path, may_be_made) in files {
        let Some(path) = path else { continue };
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > 0 => {}
            Err(err) if may_be_made && err.kind() == std::io::ErrorKind::NotFound => {}
            Ok(_) => {
                return Err(StartError::Setting(format!(
                    "{flag} {} is empty",
                    path.display()
                )));
            }
            Err(err) => {
                return Err(StartError::Setting(format!(
                    "{flag} {}: {err}",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// The password of the local nats-server in `dir`, made on first use and
/// readable by this OS user only (`nats --user mediajet --password
/// "$(cat <data-dir>/nats/password)"` reaches the server).
pub(super) fn local_nats_password(dir: &Path) -> Result<String, StartError> {
    let path = dir.join("password");
    let failed = |e| StartError::DataDir(path.clone(), e);
    match std::fs::read_to_string(&path) {
        Ok(password) if usable_nats_password(password.trim()) => {
            return Ok(password.trim().to_string());
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(failed(err)),
    }
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| failed(std::io::Error::other(e.to_string())))?;
    // nats-server reads a variable's value as configuration: a value that
    // starts with a digit is taken for a number and refused.
    let password = format!("mj{}", crate::hex::encode(&bytes));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(
        &mut options.open(&path).map_err(failed)?,
        password.as_bytes(),
    )
    .map_err(failed)?;
    Ok(password)
}

/// Whether nats-server takes `password` as a variable's value: letters and
/// digits, starting with a letter.
fn usable_nats_password(password: &str) -> bool {
    password.starts_with(|c: char| c.is_ascii_alphabetic())
        && password.chars().all(|c| c.is_ascii_alphanumeric())
}

pub(super) fn nats_auth(config: &Config) -> NatsAuth {
    match (
        &config.shared.nats_creds,
        &config.shared.nats_user,
        &config.shared.nats_password,
    ) {
        (Some(path), _, _) => NatsAuth::CredsFile(path.clone()),
        (None, Some(user), Some(password)) => {
            NatsAuth::UserPassword(user.clone(), password.clone())
        }
        _ => NatsAuth::None,
    }
}

/// Waits until a NATS micro service answers `$SRV.PING.<name>`.
pub(super) async fn wait_for_service(
    client: &async_nats::Client,
    name: &'static str,
) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ping = client.request(format!("$SRV.PING.{name}"), bytes::Bytes::new());
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), ping).await {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(StartError::NotServing(name));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every actor's worker runs, so that readiness, once
/// announced, holds.
pub(super) async fn wait_for_workers(health: &Health) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let actors = health.actors();
        match actors.iter().find(|(_, running)| !**running) {
            None => return Ok(()),
            Some((actor, _)) if tokio::time::Instant::now() > deadline => {
                return Err(StartError::NotServing(actor));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Fails start-up with install instructions when a system binary is missing.
pub(super) async fn check_tool(
    tool: &'static str,
    path: &Path,
    hint: &'static str,
) -> Result<(), StartError> {
    let runs = tokio::process::Command::new(path)
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if runs {
        Ok(())
    } else {
        Err(StartError::MissingTool {
            tool,
            path: path.display().to_string(),
            hint,
        })
    }
}
