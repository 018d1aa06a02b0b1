//! B1 to B5 and B7, each against its baseline within the same run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::inputs::*;
use crate::report::{Report, Row};
use crate::service::*;
use crate::{Scale, median};

/// B1: upload complete → completed for a long video, against bare ffmpeg.
pub async fn b1(scale: &Scale, inputs: &Path, report: &mut Report) -> Service {
    let video = video_720p(inputs, scale.video_seconds);
    let size = std::fs::metadata(&video).unwrap().len();
    let service = Service::start("auth,ingest,transcoder,mailer", &["--transcoders", "2"]).await;
    let token = service.token().await;
    let mut endings = Endings::subscribe(&service).await;
    let out = tempfile::tempdir().unwrap();
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for run in 0..scale.runs {
        let started = Instant::now();
        let bare_out = out.path().join(format!("bare-{run}.mp3"));
        bare_ffmpeg(Path::new("ffmpeg"), &video, &bare_out).await;
        bare.push(started.elapsed().as_secs_f64());

        let id = service.upload(&token, &video).await;
        let uploaded = Instant::now();
        endings.wait_for(std::slice::from_ref(&id)).await;
        ours.push(uploaded.elapsed().as_secs_f64());
        service.delete(&token, &id).await;
    }
    report.rows.push(Row::against_bare_ffmpeg(
        "B1",
        format!(
            "{} s 720p H.264 + stereo ({:.0} MiB) → mp3 192k: upload complete → `completed`",
            scale.video_seconds,
            size as f64 / 1048576.0
        ),
        (ours, bare),
        ("≤ 1.05", 1.05),
    ));
    let (mediajet_peak, nats_peak) = service.peaks();
    report.notes.push(format!(
        "Peak RSS during B1: mediajet {:.1} MiB, nats-server {:.1} MiB.",
        mib(mediajet_peak),
        mib(nats_peak)
    ));
    b1_loudness(scale, &video, &service, &token, report).await;
    service
}

/// B1L: B1's video normalized to `podcast` loudness (two ffmpeg passes),
/// against the same two passes by hand; and what the second pass costs
/// next to B1's single one.
async fn b1_loudness(
    scale: &Scale,
    video: &Path,
    service: &Service,
    token: &str,
    report: &mut Report,
) {
    let mut endings = Endings::subscribe(service).await;
    let out = tempfile::tempdir().unwrap();
    let (mut ours, mut bare, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..scale.runs {
        let started = Instant::now();
        bare_ffmpeg(Path::new("ffmpeg"), video, &out.path().join("plain.mp3")).await;
        plain.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        bare_ffmpeg_normalized(video, &out.path().join(format!("bare-{run}.mp3"))).await;
        bare.push(started.elapsed().as_secs_f64());

        let id = service
            .upload_with(token, video, &[("loudness", "podcast")])
            .await;
        let uploaded = Instant::now();
        endings.wait_for(std::slice::from_ref(&id)).await;
        ours.push(uploaded.elapsed().as_secs_f64());
        service.delete(token, &id).await;
    }
    let ours_median = median(ours.clone());
    report.rows.push(Row::against_bare_ffmpeg(
        "B1L",
        "B1's video → mp3 192k with `loudness=podcast` (measure, then encode): \
         upload complete → `completed`, against both passes by hand"
            .to_string(),
        (ours, bare),
        ("≤ 1.05", 1.05),
    ));
    report.notes.push(format!(
        "Normalizing costs a second pass: B1L takes {:.2}× bare ffmpeg's single-pass mp3 \
         ({:.2} s against {:.2} s in the same run).",
        ours_median / median(plain.clone()),
        ours_median,
        median(plain)
    ));
}

/// B2 and B3: a large upload over HTTP against a direct object store put,
/// and how much the process grows meanwhile.
pub async fn b2_b3(scale: &Scale, inputs: &Path, report: &mut Report) {
    let file = blob(inputs, scale.upload_mib).await;
    let bytes = (scale.upload_mib * 1024 * 1024) as f64;
    // No transcoder: the upload is not media, and a transcoder reading it
    // back would compete with the next measurement.
    let service = Service::start("auth,ingest,mailer", &[]).await;
    let token = service.token().await;
    let client = async_nats::connect(&service.nats_url).await.unwrap();
    let chunk = mediajet::storage::objects::chunk_size(&client);
    let js = async_nats::jetstream::new(client);
    let direct = js
        .create_object_store(async_nats::jetstream::object_store::Config {
            bucket: "bench".to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut http, mut baseline, mut growth) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..scale.runs {
        let pid = service.pid();
        let before = proc_kib(pid, "VmRSS:");
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !done.load(Ordering::Relaxed) {
                    peak = peak.max(proc_kib(pid, "VmRSS:"));
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            })
        };
        let started = Instant::now();
        let id = service.upload(&token, &file).await;
        http.push(bytes / 1048576.0 / started.elapsed().as_secs_f64());
        done.store(true, Ordering::Relaxed);
        let peak = sampler.join().unwrap();
        growth.push(peak.saturating_sub(before));
        service.delete(&token, &id).await;

        let name = format!("run-{run}");
        let reader =
            tokio::io::BufReader::with_capacity(chunk, tokio::fs::File::open(&file).await.unwrap());
        let mut reader = reader;
        let started = Instant::now();
        direct
            .put(
                async_nats::jetstream::object_store::ObjectMetadata {
                    name: name.clone(),
                    chunk_size: Some(chunk),
                    ..Default::default()
                },
                &mut reader,
            )
            .await
            .unwrap();
        baseline.push(bytes / 1048576.0 / started.elapsed().as_secs_f64());
        direct.delete(&name).await.unwrap();
    }
    let (http, baseline) = (median(http), median(baseline));
    let ratio = http / baseline;
    report.rows.push(Row {
        id: "B2",
        what: format!(
            "HTTP upload of {} MiB (multipart, streamed)",
            scale.upload_mib
        ),
        mediajet: format!("{http:.0} MiB/s"),
        baseline: format!("{baseline:.0} MiB/s (async-nats put)"),
        ratio: format!("{ratio:.3}"),
        target: "≥ 0.95",
        met: ratio >= 0.95,
    });
    let worst = growth.iter().copied().max().unwrap_or(0);
    report.rows.push(Row {
        id: "B3",
        what: format!(
            "mediajet RSS growth during that upload (worst of {})",
            scale.runs
        ),
        mediajet: format!("{:.1} MiB", mib(worst)),
        baseline: "—".to_string(),
        ratio: "—".to_string(),
        target: "≤ 16 MiB",
        met: mib(worst) <= 16.0,
    });
    let (mediajet_peak, nats_peak) = service.peaks();
    report.notes.push(format!(
        "Peak RSS during B2: mediajet {:.1} MiB, nats-server {:.1} MiB.",
        mib(mediajet_peak),
        mib(nats_peak)
    ));
}

/// B4 once more with the static ffmpeg build, in a service of its own that
/// runs it, against the same binary bare.
pub async fn b4_static(scale: &Scale, inputs: &Path, report: &mut Report) {
    let Some(ffmpeg) = static_ffmpeg() else {
        report.notes.push(
            "B4 with a static ffmpeg not measured: imageio-ffmpeg is not installed \
             (scripts/bench.sh installs it)."
                .into(),
        );
        return;
    };
    // As root the transcoder runs ffmpeg as `nobody`, which must be able to
    // reach the binary: a copy in a directory anyone may enter.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("ffmpeg");
    std::fs::copy(&ffmpeg, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = copy.to_string_lossy().into_owned();
    let args = ["--transcoders", "2", "--ffmpeg", path.as_str()];
    let service = Service::start("auth,ingest,transcoder,mailer", &args).await;
    b4(scale, inputs, &service, report, &copy).await;
}

/// B4: many one-second jobs with two transcoder slots, against bare
/// `ffmpeg` (the binary the service runs) two at a time; and, for the
/// system's ffmpeg, the end-to-end time of one such job.
pub async fn b4(
    scale: &Scale,
    inputs: &Path,
    service: &Service,
    report: &mut Report,
    ffmpeg: &Path,
) {
    let system = ffmpeg == Path::new("ffmpeg");
    let input = one_second(inputs);
    let token = service.token().await;
    let mut endings = Endings::subscribe(service).await;
    let out = tempfile::tempdir().unwrap();

    // The latency floor first, with the queue empty.
    let mut floor = Vec::new();
    for _ in 0..scale.runs.max(5) {
        let started = Instant::now();
        let id = service.upload(&token, &input).await;
        endings.wait_for(std::slice::from_ref(&id)).await;
        floor.push(started.elapsed().as_secs_f64());
    }
    let floor = median(floor);

    let (mut ours, mut bare, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..scale.runs {
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..2 {
            let (next, input, out) = (next.clone(), input.clone(), out.path().to_path_buf());
            let ffmpeg = ffmpeg.to_path_buf();
            let jobs = scale.jobs;
            workers.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= jobs {
                        break;
                    }
                    bare_ffmpeg(&ffmpeg, &input, &out.join(format!("{n}.mp3"))).await;
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
        bare.push(scale.jobs as f64 / started.elapsed().as_secs_f64());

        // Uploads go four at a time, as several clients would send them.
        let (own_before, children_before) = cpu_seconds(service.pid());
        let (nats_before, _) = cpu_seconds(service.nats.id());
        let started = Instant::now();
        let ids: Vec<String> = futures::stream::iter(0..scale.jobs)
            .map(|_| service.upload(&token, &input))
            .buffer_unordered(4)
            .collect()
            .await;
        endings.wait_for(&ids).await;
        ours.push(scale.jobs as f64 / started.elapsed().as_secs_f64());
        let (own, children) = cpu_seconds(service.pid());
        let (nats, _) = cpu_seconds(service.nats.id());
        let per_job = |seconds: f64| seconds / scale.jobs as f64 * 1000.0;
        cpu.push(format!(
            "mediajet {:.0} ms, its ffmpeg {:.0} ms, nats-server {:.0} ms",
            per_job(own - own_before),
            per_job(children - children_before),
            per_job(nats - nats_before)
        ));
    }
    let (ours, bare) = (median(ours), median(bare));
    let ratio = ours / bare;
    let (id, which) = if system {
        ("B4", "")
    } else {
        ("B4s", ", static ffmpeg 7.0.2 (imageio-ffmpeg)")
    };
    report.rows.push(Row {
        id,
        what: format!(
            "{} one-second jobs, submit → `completed`, 2 transcoder slots{which}",
            scale.jobs
        ),
        mediajet: format!("{ours:.2} jobs/s"),
        baseline: format!("{bare:.2} jobs/s (bare ffmpeg, 2 at a time)"),
        ratio: format!("{ratio:.3}"),
        target: "≥ 0.85",
        met: ratio >= 0.85,
    });
    report.notes.push(format!(
        "CPU time per {id} job, by run: {}.",
        cpu.join("; ")
    ));
    let floor_ms = floor * 1000.0;
    if system {
        report.rows.push(Row {
            id: "B7",
            what: "one-second job, upload start → `completed`, empty queue (latency floor)"
                .to_string(),
            mediajet: format!("{floor_ms:.0} ms"),
            baseline: "—".to_string(),
            ratio: "—".to_string(),
            target: "≤ 80 ms",
            met: floor_ms <= 80.0,
        });
    } else {
        report
            .notes
            .push(format!("B7 with the static ffmpeg: {floor_ms:.0} ms."));
    }
}

/// Requests per second `wrk` gets from `url`, or `None` without wrk.
pub fn wrk(url: &str, token: Option<&str>, seconds: u32) -> Option<f64> {
    let mut command = Command::new("wrk");
    command.args(["-t", "1", "-c", "16", "-d", &format!("{seconds}s")]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let non_2xx = text.contains("Non-2xx");
    assert!(!non_2xx, "wrk saw errors from {url}:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|n| n.trim().parse().ok())
}

/// B5: authenticated job lookups against an unauthenticated health check.
pub async fn b5(scale: &Scale, service: &Service, inputs: &Path, report: &mut Report) {
    let token = service.token().await;
    let id = service.upload(&token, &one_second(inputs)).await;
    let mut endings = Endings::subscribe(service).await;
    endings.wait_for(std::slice::from_ref(&id)).await;
    let (job, health) = (
        service.url(&format!("/v1/jobs/{id}")),
        service.url("/healthz"),
    );
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..scale.runs {
        let (Some(h), Some(j)) = (
            wrk(&health, None, scale.load_seconds),
            wrk(&job, Some(&token), scale.load_seconds),
        ) else {
            report
                .notes
                .push("B5 not measured: wrk is not installed (apt-get install wrk).".into());
            return;
        };
        bare.push(h);
        ours.push(j);
    }
    let (ours, bare) = (median(ours), median(bare));
    let ratio = ours / bare;
    report.rows.push(Row {
        id: "B5",
        what: "authenticated `GET /v1/jobs/{id}` (wrk, 16 connections, loopback)".to_string(),
        mediajet: format!("{ours:.0} req/s"),
        baseline: format!("{bare:.0} req/s (`GET /healthz`)"),
        ratio: format!("{ratio:.3}"),
        target: "≥ 0.6",
        met: ratio >= 0.6,
    });
}
