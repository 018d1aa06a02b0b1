//! Where `mediajet submit` keeps the uploads it has not finished:
//! `uploads.json` next to the saved credentials, the upload's URL under a
//! fingerprint of the server, the file (path, size, modification time) and
//! the options, so that the same command for the same file goes on with the
//! same upload, and a changed file or other options start a new one.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::args::SubmitArgs;
use super::credentials::{config_file, write_private};

/// Most unfinished uploads remembered; the oldest go first.
const KEPT: usize = 50;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Unfinished {
    /// Upload URLs by fingerprint, with when they were started (Unix time).
    uploads: BTreeMap<String, (String, u64)>,
}

const FILE: &str = "uploads.json";

fn load() -> Unfinished {
    config_file(FILE)
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn save(unfinished: &Unfinished) -> std::io::Result<()> {
    write_private(&config_file(FILE)?, unfinished)
}

/// What names one upload of one file with one set of options.
pub(super) fn fingerprint(server: &str, args: &SubmitArgs, file: &Path, size: u64) -> String {
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let text = format!(
        "{server}\n{}\n{size}\n{modified}\n{:?}",
        file.display(),
        args.options()
    );
    crate::hex::sha256(text.as_bytes())
}

/// The URL of the unfinished upload `fingerprint` names, if any.
pub(super) fn find(fingerprint: &str) -> Option<String> {
    load().uploads.get(fingerprint).map(|(url, _)| url.clone())
}

/// Remembers `url` as the upload `fingerprint` names. Failing to is only
/// worth a warning: the upload goes on, it just cannot be resumed later.
pub(super) fn remember(fingerprint: &str, url: &str) {
    let mut unfinished = load();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    unfinished
        .uploads
        .insert(fingerprint.to_string(), (url.to_string(), now));
    while unfinished.uploads.len() > KEPT {
        let oldest = unfinished
            .uploads
            .iter()
            .min_by_key(|(_, (_, started))| *started)
            .map(|(key, _)| key.clone());
        if let Some(oldest) = oldest {
            unfinished.uploads.remove(&oldest);
        }
    }
    if let Err(err) = save(&unfinished) {
        eprintln!("warning: cannot remember the upload, so it cannot be resumed: {err}");
    }
}

/// Forgets the upload `fingerprint` names: it is finished, or gone.
pub(super) fn forget(fingerprint: &str) {
    let mut unfinished = load();
    if unfinished.uploads.remove(fingerprint).is_some()
        && let Err(err) = save(&unfinished)
    {
        eprintln!("warning: cannot update the list of unfinished uploads: {err}");
    }
}
