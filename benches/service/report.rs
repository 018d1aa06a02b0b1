//! The results table written to `bench/results.md`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::{Scale, median};

/// One line of the results table.
pub struct Row {
    pub id: &'static str,
    pub what: String,
    pub mediajet: String,
    pub baseline: String,
    pub ratio: String,
    pub target: &'static str,
    pub met: bool,
}

impl Row {
    /// A row of seconds taken, `ours` against bare ffmpeg's `bare` (the
    /// runs of each; medians are compared), met at a ratio of `at_most`.
    pub fn against_bare_ffmpeg(
        id: &'static str,
        what: String,
        (ours, bare): (Vec<f64>, Vec<f64>),
        (target, at_most): (&'static str, f64),
    ) -> Row {
        let (ours, bare) = (median(ours), median(bare));
        let ratio = ours / bare;
        Row {
            id,
            what,
            mediajet: format!("{ours:.2} s"),
            baseline: format!("{bare:.2} s (bare ffmpeg)"),
            ratio: format!("{ratio:.3}"),
            target,
            met: ratio <= at_most,
        }
    }
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

pub fn version(tool: &str, flag: &str) -> String {
    Command::new(tool)
        .arg(flag)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .map(|line| {
            line.split(" Copyright")
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0.0, |kib| kib as f64 / 1048576.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {memory:.0} GiB RAM, Linux {}; {}; {}",
        kernel.trim(),
        version("ffmpeg", "-version"),
        version("nats-server", "--version"),
    )
}

pub fn render(report: &Report, scale: &Scale, elapsed: Duration) -> String {
    let mut text = String::new();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let _ = writeln!(text, "# Benchmark results\n");
    let _ = writeln!(
        text,
        "Latest `just bench` ({profile} build, {} runs per figure, medians; took {:.0} s). \
         Method and how to reproduce: [BENCHMARKS.md](../BENCHMARKS.md).\n",
        scale.runs,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(text, "Machine: {}.\n", machine());
    let _ = writeln!(
        text,
        "| id | what | mediajet | baseline (same run) | ratio | target | met |"
    );
    let _ = writeln!(text, "|---|---|---|---|---|---|---|");
    for row in &report.rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.id,
            row.what,
            row.mediajet,
            row.baseline,
            row.ratio,
            row.target,
            if row.met { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(text);
    for note in &report.notes {
        let _ = writeln!(text, "- {note}");
    }
    let missed: Vec<&Row> = report.rows.iter().filter(|row| !row.met).collect();
    if !missed.is_empty() {
        let _ = writeln!(text, "\n## Targets not met\n");
        for row in missed {
            let _ = writeln!(
                text,
                "- **{}** (ratio {}, target {}): why, and what would meet it, in \
                 [BENCHMARKS.md](../BENCHMARKS.md#{}).\n",
                row.id,
                row.ratio,
                row.target,
                row.id.to_lowercase()
            );
        }
    }
    text
}
