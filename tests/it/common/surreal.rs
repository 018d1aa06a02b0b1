//! A real SurrealDB server: `tools/surreal-server`, built from the server
//! crate of the same version as the SDK (`scripts/test.sh` builds it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub const ROOT_PASSWORD: &str = "root-test-password";

/// The server binary: `MEDIAJET_TEST_SURREAL_SERVER`, else next to the
/// mediajet binary in the shared target dir.
fn server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("MEDIAJET_TEST_SURREAL_SERVER") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_BIN_EXE_mediajet")).with_file_name("surreal-server");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --manifest-path tools/surreal-server/Cargo.toml` \
         (scripts/test.sh does) or set MEDIAJET_TEST_SURREAL_SERVER",
        path.display()
    );
    path
}

pub struct SurrealServer {
    child: Child,
    pub url: String,
}

impl SurrealServer {
    /// Starts a server that speaks TLS only (`wss://`).
    pub fn start_tls(store: &Path, tls: &mediajet::nats_server::TlsFiles) -> SurrealServer {
        let port = free_port();
        let mut server = SurrealServer::launch(store, port, Some(tls));
        server.url = format!("wss://127.0.0.1:{port}");
        server
    }

    pub fn start_on(store: &Path, port: u16) -> SurrealServer {
        SurrealServer::launch(store, port, None)
    }

    fn launch(
        store: &Path,
        port: u16,
        tls: Option<&mediajet::nats_server::TlsFiles>,
    ) -> SurrealServer {
        let log = std::fs::File::create(store.with_extension("log")).expect("log file");
        let mut command = Command::new(server_binary());
        if let Some(tls) = tls {
            command
                .arg("start")
                .arg("--web-crt")
                .arg(&tls.cert)
                .arg("--web-key")
                .arg(&tls.key);
        } else {
            command.arg("start");
        }
        let child = command
            .args(["--log", "warn", "--user", "root", "--pass", ROOT_PASSWORD])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg(format!("surrealkv:{}", store.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start surreal-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "surreal-server did not listen: {}",
                std::fs::read_to_string(store.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        SurrealServer {
            child,
            url: format!("ws://127.0.0.1:{port}"),
        }
    }
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
