//! The Python scripts under `tests/` that read what mediajet made with
//! libraries others wrote (mutagen, feedparser and podcastparser, the
//! Standard Webhooks verifiers, the `email` package): run, and their JSON
//! answer read.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `tests/<script>` with `args`; returns what it printed, as JSON.
pub fn python_json(script: &str, args: &[&OsStr]) -> Value {
    let output = Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(script),
        )
        .args(args)
        .output()
        .expect("python3 must be installed for the tests");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "{script} lacks a library: run scripts/test.sh, which installs them\n{stderr}"
    );
    assert!(
        output.status.success(),
        "{script} {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e})"))
}
