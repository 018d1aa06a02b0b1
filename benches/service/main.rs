//! The benchmarks of BENCHMARKS.md (B1–B7): mediajet against the physical
//! limit on the same machine. The service runs as it does in production, a
//! `mediajet run` process against its own nats-server, on random ports; each
//! figure is the median of several runs and each ratio is taken within one
//! run of this program.
//!
//! `cargo bench --bench service` (release, `just bench`) uses the full
//! inputs and writes the table to `bench/results.md`. Under `cargo test` it
//! is a quick smoke run with small inputs that writes nothing.
//!
//! - `inputs`: the videos and blobs the runs upload, made once and cached
//! - `service`: the service under test, how it is measured, bare ffmpeg
//! - `runs`: B1 to B5 and B7
//! - `streamed`: B6, an upload converted while it arrives
//! - `report`: the results table

// The bench shares the integration tests' harness, of which it uses a part.
#[allow(dead_code, unused_imports)]
#[path = "../../tests/it/common/mod.rs"]
mod common;
mod inputs;
mod report;
mod runs;
mod service;
mod streamed;

use std::path::Path;
use std::time::Instant;

use report::Report;

const BIN: &str = env!("CARGO_BIN_EXE_mediajet");
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench password";

/// How big the inputs are and how often each measurement is repeated.
struct Scale {
    full: bool,
    /// B1: length of the 720p video.
    video_seconds: u32,
    /// B2, B3: size of the upload.
    upload_mib: u64,
    /// B4: number of one-second jobs.
    jobs: usize,
    /// Repetitions of every measurement; the median is reported.
    runs: usize,
    /// B5: seconds of load per measurement.
    load_seconds: u32,
}

impl Scale {
    fn new(full: bool) -> Scale {
        if full {
            Scale {
                full,
                video_seconds: 600,
                upload_mib: 1024,
                jobs: 200,
                runs: 3,
                load_seconds: 10,
            }
        } else {
            Scale {
                full,
                video_seconds: 10,
                upload_mib: 16,
                jobs: 20,
                runs: 1,
                load_seconds: 1,
            }
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() {
    let scale = Scale::new(std::env::args().any(|a| a == "--bench"));
    let inputs = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    let started = Instant::now();
    let mut report = Report::default();

    let service = runs::b1(&scale, &inputs, &mut report).await;
    streamed::b6(&scale, &inputs, &service, &mut report).await;
    runs::b4(&scale, &inputs, &service, &mut report, Path::new("ffmpeg")).await;
    runs::b5(&scale, &service, &inputs, &mut report).await;
    drop(service);
    runs::b4_static(&scale, &inputs, &mut report).await;
    runs::b2_b3(&scale, &inputs, &mut report).await;
    report.rows.sort_by_key(|row| row.id);

    let text = report::render(&report, &scale, started.elapsed());
    println!("{text}");
    if scale.full {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results.md");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        println!("written to {}", path.display());
    }
}
