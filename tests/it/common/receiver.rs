//! A webhook receiver (`tests/webhooks/receiver.py`, Python's
//! `http.server`) whose requests are verified by the official
//! `standardwebhooks` and `svix` libraries (`tests/webhooks/verify.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A receiver on its own port, killed when dropped.
pub struct Receiver {
    child: Child,
    pub url: String,
    pub record: PathBuf,
}

impl Receiver {
    pub fn start(dir: &Path, name: &str, plan: &str) -> Receiver {
        let port = super::free_port();
        let record = dir.join(format!("{name}.jsonl"));
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/webhooks/receiver.py"
            ))
            .arg(port.to_string())
            .arg(&record)
            .arg(plan)
            .spawn()
            .expect("python3 must be installed for the tests");
        super::wait_for_port(port);
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}/hook/{name}"),
            record,
        }
    }

    /// What it received, verified with `secret` by both libraries, once it
    /// has received `count` requests (waiting up to `patience`).
    pub async fn received(&self, secret: &str, count: usize, patience: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let lines = std::fs::read_to_string(&self.record).unwrap_or_default();
            if lines.lines().count() >= count {
                break;
            }
            assert!(started.elapsed() < patience, "{} got {lines}", self.url);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let verified = super::python_json(
            "webhooks/verify.py",
            &[self.record.as_os_str(), secret.as_ref()],
        );
        verified.as_array().cloned().unwrap_or_default()
    }
}

impl Receiver {
    /// How many requests it has received so far.
    pub fn requests(&self) -> usize {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
