//! Debian's Prometheus, run for a test with a scrape configuration of its
//! own and asked through its HTTP API, and promtool, its checker.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use super::free_port;

pub struct Prometheus {
    _child: Child,
    url: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) written to `<dir>/prometheus.yml`
    /// (rule files it names are read relative to `dir`) and waits until it
    /// is ready.
    pub async fn start(dir: &Path, config: &str) -> Prometheus {
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus must be installed for the tests (Debian package prometheus)");
        let prometheus = Prometheus {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            let ready = prometheus
                .http
                .get(format!("{}/-/ready", prometheus.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus did not get ready: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /api/v1/<path>` with `query`, its `data` when the status is
    /// success, or the error Prometheus gave.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// The instant vector `expr` evaluates to now: each series' labels and
    /// value.
    pub async fn query(&self, expr: &str) -> Vec<(Value, f64)> {
        let data = self
            .api("query", &[("query", expr)])
            .await
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        data["result"]
            .as_array()
            .map(|series| {
                series
                    .iter()
                    .map(|s| {
                        let value = s["value"][1].as_str().and_then(|v| v.parse().ok());
                        (s["metric"].clone(), value.unwrap_or(f64::NAN))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The single value of `expr`, once it satisfies `done`, waiting up to a
    /// minute (scrapes and samples take seconds to arrive).
    pub async fn wait_for(&self, expr: &str, done: impl Fn(f64) -> bool) -> f64 {
        let started = Instant::now();
        loop {
            let result = self.query(expr).await;
            if let [(_, value)] = result[..]
                && done(value)
            {
                return value;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{expr} is still {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until `expr` is the single value `want`.
    pub async fn wait_for_value(&self, expr: &str, want: f64) {
        self.wait_for(expr, |v| (v - want).abs() < 1e-9).await;
    }
}

/// Runs `promtool` with `args` (and `stdin`, if given) and returns whether it
/// passed and what it printed.
pub fn promtool(args: &[&str], stdin: Option<&[u8]>, dir: &Path) -> (bool, String) {
    let mut child = std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed for the tests (Debian package prometheus)");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::io::Write::write_all(&mut pipe, input).expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool output");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}
