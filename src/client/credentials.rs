//! Where `mediajet login` keeps its token: `credentials.json` in
//! `$XDG_CONFIG_HOME/mediajet` (or `~/.config/mediajet`), readable by the
//! user only.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    /// The access token.
    pub token: String,
    /// Renews the access token; each refresh replaces it.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Unix time at which the access token expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// The client's own directory: `$XDG_CONFIG_HOME/mediajet`, or
/// `~/.config/mediajet`.
fn config_dir() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("mediajet"))
}

fn path() -> Option<PathBuf> {
    config_file("credentials.json").ok()
}

impl Credentials {
    /// The saved credentials, if any can be read.
    pub fn load() -> Option<Credentials> {
        let text = std::fs::read_to_string(path()?).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves the credentials (mode 0600) and returns where.
    pub fn save(&self) -> std::io::Result<PathBuf> {
        let path = path().ok_or_else(no_config_dir)?;
        write_private(&path, self)?;
        Ok(path)
    }
}

fn no_config_dir() -> std::io::Error {
    std::io::Error::other("neither XDG_CONFIG_HOME nor HOME is set")
}

/// Writes `value` as JSON to `path` (in the client's directory, made if
/// need be), readable by the user only.
pub(super) fn write_private(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)
}

/// Where a file of the client's directory is, or why there is none.
pub(super) fn config_file(name: &str) -> std::io::Result<PathBuf> {
    config_dir()
        .map(|dir| dir.join(name))
        .ok_or_else(no_config_dir)
}

/// Reads a password from standard input, without echo when it is a terminal.
pub fn ask_password() -> std::io::Result<String> {
    eprint!("password: ");
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line);
    drop(echo);
    eprintln!();
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off for as long as it lives (a no-op off a terminal).
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr only read and write the termios struct
        // we own, on standard input.
        unsafe {
            let mut original: libc::termios = std::mem::zeroed();
            if libc::isatty(0) != 1 || libc::tcgetattr(0, &mut original) != 0 {
                return EchoOff(None);
            }
            let mut silent = original;
            silent.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &silent);
            EchoOff(Some(original))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(original) = &self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, original);
            }
        }
    }
}
