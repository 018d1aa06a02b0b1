//! The service under test (one nats-server and one `mediajet run`), how its
//! processes are measured, and the baseline: bare ffmpeg.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::common;
use crate::{BIN, EMAIL, PASSWORD};

/// A number from `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds a process has used: its own, and that of its children that
/// have ended (ffmpeg and ffprobe for a transcoder).
pub fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime, stime, cutime and cstime are the 12th to 15th of them.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0;
    let field = |i: usize| fields.get(i).copied().unwrap_or(0.0) / tick;
    (field(11) + field(12), field(13) + field(14))
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One nats-server (with the shipped configuration) and one `mediajet run`
/// process, as on a node.
pub struct Service {
    pub nats: std::process::Child,
    pub mediajet: tokio::process::Child,
    pub base: String,
    pub nats_url: String,
    pub http: reqwest::Client,
    pub _dir: tempfile::TempDir,
}

impl Service {
    pub async fn start(actors: &str, extra: &[&str]) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        // The shipped nats.conf (8 MB payloads; objects travel in 1 MiB chunks), as
        // `mediajet up` and the Nomad jobs use it.
        let conf = dir.path().join("nats.conf");
        let store = dir.path().join("nats");
        std::fs::write(
            &conf,
            mediajet::nats_server::derive_config(&store, false, false, None),
        )
        .unwrap();
        let nats = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        common::wait_for_port(port);
        let nats_url = format!("nats://127.0.0.1:{port}");
        let mut mediajet = tokio::process::Command::new(BIN)
            .args(["run", "--actors", actors, "--nats-url", &nats_url])
            .args(["--http", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--admin-email", EMAIL, "--admin-password", PASSWORD])
            .args(["--max-upload-bytes", &(8u64 << 30).to_string()])
            .args(["--max-unfinished-jobs", "100000"])
            .args(extra)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run mediajet");
        let stdout = mediajet.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let up = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("mediajet did not start")
            .ok()
            .flatten()
            .unwrap_or_default();
        let base = up
            .strip_prefix("mediajet is up: ")
            .unwrap_or_else(|| panic!("mediajet did not start: {up}"))
            .to_string();
        Service {
            nats,
            mediajet,
            base,
            nats_url,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.mediajet.id().unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn token(&self) -> String {
        common::Api::new(&self.base).login(EMAIL, PASSWORD).await
    }

    /// Uploads a file as an mp3 job (192 kbit/s, 44.1 kHz: the defaults)
    /// and returns the job id once the service has answered 202.
    pub async fn upload(&self, token: &str, path: &Path) -> String {
        self.upload_with(token, path, &[]).await
    }

    /// The same with form fields (job options) before the file.
    pub async fn upload_with(&self, token: &str, path: &Path, fields: &[(&str, &str)]) -> String {
        let file = tokio::fs::File::open(path).await.unwrap();
        let size = file.metadata().await.unwrap().len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            1024 * 1024,
        ));
        let part = reqwest::multipart::Part::stream_with_length(body, size).file_name("in.mp4");
        let job = self.upload_part_with(token, part, fields).await;
        job["id"].as_str().unwrap().to_string()
    }

    /// Posts `part` as the file of an mp3 job, `format` first, and returns
    /// the job the service answered with (202).
    pub async fn upload_part(&self, token: &str, part: reqwest::multipart::Part) -> Value {
        self.upload_part_with(token, part, &[]).await
    }

    async fn upload_part_with(
        &self,
        token: &str,
        part: reqwest::multipart::Part,
        fields: &[(&str, &str)],
    ) -> Value {
        let mut form = reqwest::multipart::Form::new().text("format", "mp3");
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let form = form.part("file", part);
        let response = self
            .http
            .post(self.url("/v1/jobs"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "upload refused");
        response.json().await.unwrap()
    }

    pub async fn delete(&self, token: &str, id: &str) {
        let _ = self
            .http
            .delete(self.url(&format!("/v1/jobs/{id}")))
            .bearer_auth(token)
            .send()
            .await;
    }

    /// Peak resident memory so far of mediajet and of nats-server, in KiB.
    pub fn peaks(&self) -> (u64, u64) {
        (
            proc_kib(self.pid(), "VmHWM:"),
            proc_kib(self.nats.id(), "VmHWM:"),
        )
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.nats.kill();
        let _ = self.nats.wait();
    }
}

/// Announces every job that ends, straight from NATS, so waiting for jobs
/// costs the service no requests.
pub struct Endings(async_nats::Subscriber);

impl Endings {
    pub async fn subscribe(service: &Service) -> Endings {
        let client = async_nats::connect(&service.nats_url).await.unwrap();
        let endings = client.subscribe("mediajet.events.job.*.*").await.unwrap();
        Endings(endings)
    }

    /// Waits until every job in `ids` has ended; panics if one failed.
    pub async fn wait_for(&mut self, ids: &[String]) {
        let mut waiting: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        while !waiting.is_empty() {
            let event = tokio::time::timeout(Duration::from_secs(600), self.0.next())
                .await
                .expect("no job ended within ten minutes")
                .expect("event subscription ended");
            let mut parts = event.subject.split('.').skip(3);
            let (Some(id), Some(state)) = (parts.next(), parts.next()) else {
                continue;
            };
            match state {
                "completed" => {
                    waiting.remove(id);
                }
                "failed" | "canceled" if waiting.contains(id) => {
                    panic!(
                        "job {id} {state}: {}",
                        String::from_utf8_lossy(&event.payload)
                    )
                }
                _ => {}
            }
        }
    }
}

/// The static ffmpeg build the PyPI package `imageio-ffmpeg` ships, when it
/// is installed (`scripts/bench.sh` installs it).
pub fn static_ffmpeg() -> Option<std::path::PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = String::from_utf8(output.stdout).ok()?;
    let path = std::path::PathBuf::from(path.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// `<ffmpeg> -nostdin -i in -vn -acodec libmp3lame -ab 192k -ar 44100 out.mp3`.
pub async fn bare_ffmpeg(ffmpeg: &Path, input: &Path, output: &Path) {
    bare_ffmpeg_with(ffmpeg, input, output, &[]).await;
}

/// Two-pass loudness normalization to −16 LUFS by hand, as one would
/// without mediajet: measure with `loudnorm`, then encode with the gain.
pub async fn bare_ffmpeg_normalized(input: &Path, output: &Path) {
    let measured = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-nostdin", "-i"])
        .arg(input)
        .args(["-vn", "-af", "loudnorm=I=-16:TP=-1:print_format=json"])
        .args(["-f", "null", "-"])
        .output()
        .await
        .unwrap();
    assert!(measured.status.success(), "bare ffmpeg could not measure");
    let log = String::from_utf8_lossy(&measured.stderr);
    let json = &log[log.rfind('{').unwrap()..=log.rfind('}').unwrap()];
    let report: Value = serde_json::from_str(json).unwrap();
    let input_i: f64 = report["input_i"].as_str().unwrap().parse().unwrap();
    let gain = format!("volume={:.2}dB", -16.0 - input_i);
    bare_ffmpeg_with(Path::new("ffmpeg"), input, output, &["-af", &gain]).await;
}

async fn bare_ffmpeg_with(ffmpeg: &Path, input: &Path, output: &Path, filters: &[&str]) {
    let status = tokio::process::Command::new(ffmpeg)
        .args(["-v", "error", "-y", "-nostdin", "-i"])
        .arg(input)
        .args(filters)
        .args([
            "-vn",
            "-acodec",
            "libmp3lame",
            "-ab",
            "192k",
            "-ar",
            "44100",
        ])
        .arg(output)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "bare ffmpeg failed");
}
