//! Upload benchmark: streams files of growing size through `POST /v1/jobs`
//! into the JetStream object store and prints throughput and the process's
//! peak memory growth, which must stay flat as files grow.
//!
//! `cargo bench --bench upload` (release) uses 64 MiB and 512 MiB files;
//! under `cargo test` it runs as a quick smoke check with small files.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

/// Resident set size of this process in KiB, from /proc.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn write_file(path: &std::path::Path, mib: u64) {
    let mut file = tokio::fs::File::create(path).await.unwrap();
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 + 13) as u8).collect();
    for _ in 0..mib {
        file.write_all(&block).await.unwrap();
    }
    file.flush().await.unwrap();
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[u64] = if full { &[64, 512] } else { &[4, 32] };
    let app = common::spawn_app_with(|config| {
        config.transcoders = Some(1);
        config.max_upload_bytes = 8 * 1024 * 1024 * 1024;
    })
    .await;
    let token = app.new_user("bench@example.com").await;

    println!(
        "upload benchmark ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for &mib in sizes {
        let path = app.dir.path().join(format!("upload-{mib}.bin"));
        write_file(&path, mib).await;

        // Sample the RSS while the upload runs and keep the peak.
        let baseline = rss_kib();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(rss_kib());
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            })
        };
        let file = tokio::fs::File::open(&path).await.unwrap();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            64 * 1024,
        ));
        let part = reqwest::multipart::Part::stream_with_length(body, mib * 1024 * 1024)
            .file_name("upload.bin");
        let form = reqwest::multipart::Form::new().part("file", part);
        let started = Instant::now();
        let response = app
            .http
            .post(app.url("/v1/jobs"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 202, "upload of {mib} MiB refused");
        let job: serde_json::Value = response.json().await.unwrap();
        // The transcoder then copies the upload out of the object store (and
        // rejects it: it is not media). That copy must stay flat too.
        let id = job["id"].as_str().unwrap();
        app.wait_until_finished(&token, id).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.join().unwrap();
        println!(
            "upload {mib:>4} MiB: {:>7.1} MiB/s; peak RSS growth over upload and transcoder read {:>6.1} MiB (baseline {:.1} MiB)",
            mib as f64 / elapsed.as_secs_f64(),
            peak.saturating_sub(baseline) as f64 / 1024.0,
            baseline as f64 / 1024.0,
        );
        let _ = std::fs::remove_file(&path);
    }
}
