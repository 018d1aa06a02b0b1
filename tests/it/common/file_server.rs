//! The file server URL imports are fetched from (`tests/import/server.py`,
//! Python's `http.server` with byte ranges, a transfer cut half-way, a slow
//! one, redirects).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use serde_json::Value;

/// The file server, killed when dropped.
pub struct FileServer {
    child: Child,
    pub base: String,
    record: PathBuf,
}

impl FileServer {
    pub fn start(root: &Path) -> FileServer {
        FileServer::start_on(root, "127.0.0.1")
    }

    /// A server on another loopback address, `host`, recording apart.
    pub fn start_on(root: &Path, host: &str) -> FileServer {
        let port = super::free_port();
        let record = root.join(format!("requests-{host}.jsonl"));
        let child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/import/server.py"
            ))
            .arg(port.to_string())
            .arg(root)
            .arg(&record)
            .arg(host)
            .spawn()
            .expect("python3 must be installed for the tests");
        super::wait_for_port_on(host, port);
        FileServer {
            child,
            base: format!("http://{host}:{port}"),
            record,
        }
    }

    /// The requests it got, in order.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
