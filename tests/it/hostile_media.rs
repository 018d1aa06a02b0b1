//! Uploads are untrusted input to ffmpeg. A corpus the tests make
//! themselves (not media at all, truncated, playlists and concat lists that
//! point at other files, lying headers, too many streams, too large
//! pictures, and a few hundred mutations of a valid file) must each end
//! `failed` with a reason (or, for mutations that still decode, completed
//! with sound audio), while the service stays up and no byte of any other
//! file ever appears in an output.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A deterministic pseudo-random sequence (xorshift64*), so a failing
/// mutation can be reproduced from its index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A secret the service must never hand out: one second of 16-bit PCM
/// noise in a WAV file, the format jobs here are converted to, so a copy of
/// its samples would show in an output byte for byte.
fn make_canary(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut rng = Rng(0x5eed_cafe);
    let samples: Vec<u8> = (0..88_200).map(|_| rng.next() as u8).collect();
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&44_100u32.to_le_bytes());
    wav.extend_from_slice(&88_200u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    let path = dir.join("secret.wav");
    std::fs::write(&path, wav).unwrap();
    (path, samples)
}

/// Whether `output` holds any 32-byte run of the canary's samples.
fn leaks(output: &[u8], canary: &[u8]) -> bool {
    let windows: HashSet<&[u8]> = canary.chunks_exact(32).collect();
    output.windows(32).any(|w| windows.contains(w))
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg must be installed for the tests");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// Submits every file as WAV and waits for all jobs to end; returns the
/// jobs, or the upload's refusal, by file name.
async fn convert_all(
    app: &common::TestApp,
    token: &str,
    files: &[PathBuf],
) -> Vec<(String, Result<Value, Value>)> {
    let mut submitted = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let response = app.upload(token, file, Some("wav")).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        submitted.push((name, status, body));
    }
    let mut results = Vec::new();
    for (name, status, body) in submitted {
        if status != 202 {
            assert!(
                status == 400 && body["error"]["message"].is_string(),
                "{name}: {status} {body}"
            );
            results.push((name, Err(body)));
            continue;
        }
        let id = body["id"].as_str().unwrap();
        let job = app.wait_until_finished(token, id).await;
        results.push((name, Ok(job)));
    }
    results
}

#[tokio::test]
async fn disguised_lying_and_oversized_uploads_fail_with_a_reason_and_read_nothing_else() {
    let app = common::spawn_app_with(|config| config.transcoder.max_video_pixels = 100 * 100).await;
    let token = app.new_user("eve@example.com").await;
    let dir = app.dir.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    let (canary_path, _) = make_canary(&dir);
    let canary_path = canary_path.display().to_string();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    let valid = common::make_video(&dir, "valid.mp4", 2);
    let whole = std::fs::read(&valid).unwrap();
    // An MP4 whose header claims about 50 days (the movie header's
    // duration at its timescale of 1000), while its tracks hold 2 s.
    let mut lying = whole.clone();
    let header = lying
        .windows(4)
        .position(|w| w == b"mvhd")
        .expect("an mp4 has a movie header");
    assert_eq!(lying[header + 4], 0, "a version 0 movie header");
    lying[header + 20..header + 24].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    let many = dir.join("many-streams.mkv");
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-filter_complex",
        "[0:a]asplit=20[a0][a1][a2][a3][a4][a5][a6][a7][a8][a9][a10][a11][a12][a13][a14][a15][a16][a17][a18][a19]",
    ];
    let labels: Vec<String> = (0..20).map(|i| format!("[a{i}]")).collect();
    for label in &labels {
        args.extend(["-map", label.as_str()]);
    }
    args.push(many.to_str().unwrap());
    ffmpeg(&args);

    let corpus = vec![
        write("notes.mp4", b"This is a text file, not a video.\n"),
        write("empty.mp4", b""),
        write("truncated.mp4", &whole[..whole.len() * 2 / 5]),
        write(
            "concat.mp4",
            format!("ffconcat version 1.0\nfile '{canary_path}'\n").as_bytes(),
        ),
        write(
            "playlist.mp4",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{canary_path}\n\
                 #EXTINF:1.0,\nfile://{canary_path}\n#EXT-X-ENDLIST\n"
            )
            .as_bytes(),
        ),
        write("lying-header.mp4", &lying),
        many,
        // 160×120 pictures, over this service's limit of 100×100.
        valid,
    ];
    let results = convert_all(&app, &token, &corpus).await;
    let data_dir = app.data_dir().display().to_string();
    for (name, result) in &results {
        match result {
            Err(refusal) => assert_eq!(name, "empty.mp4", "{name} refused: {refusal}"),
            Ok(job) => {
                assert_eq!(job["state"], "failed", "{name}: {job}");
                let reason = job["error"].as_str().unwrap_or_default();
                assert!(!reason.is_empty(), "{name} failed without a reason");
                // Reasons are for the user: no paths of the service's disk.
                assert!(!reason.contains(&data_dir), "{name}: {reason}");
                println!("{name}: {reason}");
            }
        }
    }
    let reason_of = |wanted: &str| {
        results
            .iter()
            .find(|(name, _)| name == wanted)
            .and_then(|(_, r)| r.as_ref().ok())
            .map(|job| job["error"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    let lying = reason_of("lying-header.mp4");
    assert!(lying.contains("4294967 seconds"), "{lying}");
    assert!(reason_of("many-streams.mkv").contains("20 streams"));
    assert!(reason_of("valid.mp4").contains("pixels"));
    assert_eq!(app.readiness().await["status"], "ready");
}

#[tokio::test]
async fn hundreds_of_mutated_videos_fail_cleanly_or_convert_soundly() {
    let app = common::spawn_app_with(|config| config.ingest.max_unfinished_jobs = 500).await;
    let token = app.new_user("eve@example.com").await;
    let dir = app.dir.path().join("fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    let (_, canary) = make_canary(&dir);
    let base = dir.join("base.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=330:duration=1",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        base.to_str().unwrap(),
    ]);
    let original = std::fs::read(&base).unwrap();

    let mut rng = Rng(0x0dd_f00d);
    let mut files = Vec::new();
    for index in 0..200 {
        let mut bytes = original.clone();
        match index % 5 {
            // A few flipped bytes anywhere.
            0 => {
                for _ in 0..1 + rng.below(20) {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
            }
            // Cut off anywhere.
            1 => bytes.truncate(1 + rng.below(bytes.len() - 1)),
            // A run of random bytes over the start, where the boxes are.
            2 => {
                let at = rng.below(bytes.len().min(2048));
                for byte in bytes.iter_mut().skip(at).take(1 + rng.below(64)) {
                    *byte = rng.next() as u8;
                }
            }
            // A chunk repeated.
            3 => {
                let at = rng.below(bytes.len());
                let len = 1 + rng.below(512);
                let chunk: Vec<u8> = bytes[at..(at + len).min(bytes.len())].to_vec();
                let to = rng.below(bytes.len());
                bytes.splice(to..to, chunk);
            }
            // A range zeroed, or lengths set huge.
            _ => {
                let at = rng.below(bytes.len());
                let fill = if rng.below(2) == 0 { 0x00 } else { 0xff };
                for byte in bytes.iter_mut().skip(at).take(1 + rng.below(16)) {
                    *byte = fill;
                }
            }
        }
        let path = dir.join(format!("mutant-{index:03}.mp4"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }

    let started = Instant::now();
    let results = convert_all(&app, &token, &files).await;
    let (mut completed, mut failed, mut refused) = (0, 0, 0);
    for (name, result) in results {
        let job = match result {
            Ok(job) => job,
            Err(_) => {
                refused += 1;
                continue;
            }
        };
        match job["state"].as_str() {
            Some("failed") => {
                assert!(
                    !job["error"].as_str().unwrap_or_default().is_empty(),
                    "{name}"
                );
                failed += 1;
            }
            Some("completed") => {
                // Still decodable: then the audio must be sound, about as
                // long as the original, and nothing but its own.
                let id = job["id"].as_str().unwrap();
                let audio = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
                assert_eq!(audio.status(), 200, "{name}");
                let bytes = audio.bytes().await.unwrap();
                assert!(!leaks(&bytes, &canary), "{name} leaked another file");
                let saved = dir.join(format!("{name}.wav"));
                std::fs::write(&saved, &bytes).unwrap();
                let probed = common::probe(&saved);
                assert!(probed.duration <= 2.5, "{name}: {} s", probed.duration);
                completed += 1;
            }
            other => panic!("{name} ended {other:?}: {job}"),
        }
    }
    println!(
        "200 mutations: {completed} completed, {failed} failed with a reason, {refused} refused \
         at upload, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(completed + failed + refused, 200);
    assert!(failed > 0, "no mutation failed: the corpus is not hostile");
    assert_eq!(app.readiness().await["status"], "ready");
}

#[tokio::test]
async fn an_encode_past_its_limits_is_stopped_and_fails_with_the_reason() {
    let app = common::spawn_app_with(|config| {
        config.transcoder.max_output_bytes = 100_000;
        config.transcoder.max_input_duration = Duration::from_secs(20);
    })
    .await;
    let token = app.new_user("eve@example.com").await;

    // WAV of 5 s is about 440 kB: over the output file size limit.
    let video = common::make_video(app.dir.path(), "five.mp4", 5);
    let id = app.submit_with(&token, &video, &[("format", "wav")]).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("100000 bytes"),
        "{job}"
    );

    // Longer than the input limit: refused before any encode, not retried.
    let video = common::make_video(app.dir.path(), "long.mp4", 30);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("at most 20"),
        "{job}"
    );
    assert_eq!(job["attempts"], 1, "{job}");
}

#[tokio::test]
async fn an_input_that_breaks_the_policy_stops_the_encode_as_soon_as_ffmpeg_describes_it() {
    // ffmpeg here reads at the pace of playback: converting the whole input
    // would take its full minute, so a job that fails sooner was stopped
    // on ffmpeg's description of the input, before its audio was decoded.
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = common::realtime_ffmpeg(dir.path());
    let app = common::spawn_app_with(move |config| {
        config.transcoder.ffmpeg = ffmpeg;
        config.transcoder.max_input_duration = Duration::from_secs(20);
    })
    .await;
    let token = app.new_user("eve@example.com").await;
    let video = common::make_video(dir.path(), "minute.mp4", 60);
    let started = Instant::now();
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    let took = started.elapsed();
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["error"].as_str().unwrap_or_default();
    assert!(reason.contains("lasts 60 seconds"), "{reason}");
    assert!(
        took < Duration::from_secs(20),
        "stopped only after {took:?}"
    );
}

#[tokio::test]
async fn an_encode_past_its_time_is_killed_with_its_whole_process_group() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_with(|config| {
        config.transcoder.ffmpeg = slow;
        config.transcoder.encode_timeout = Duration::from_secs(2);
    })
    .await;
    let token = app.new_user("eve@example.com").await;
    // Ten seconds at real time against a limit of two.
    let video = common::make_video(app.dir.path(), "ten.mp4", 10);
    let id = app.submit(&token, &video).await;
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("longer than"),
        "{job}"
    );
    assert_eq!(job["attempts"], 1, "{job}");
    assert!(
        !common::process_mentions(&id),
        "an ffmpeg of the job still runs"
    );
}

#[tokio::test]
#[ignore = "needs root, which ffmpeg's user and namespace are checked against; scripts/test.sh runs it when root"]
async fn ffmpeg_runs_without_the_services_secrets_network_or_privileges() {
    use mediajet::config::ActorKind;
    let front = common::spawn_app_with(|config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let data = tempfile::tempdir().unwrap();
    // A transcoder process holding secrets in its environment, as a
    // deployment gives them.
    let _transcoder = tokio::process::Command::new(env!("CARGO_BIN_EXE_mediajet"))
        .args(["run", "--actors", "transcoder", "--http", "127.0.0.1:0"])
        .args(["--nats-url", &front.ready.nats_url])
        .arg("--ffmpeg")
        .arg(&slow)
        .arg("--data-dir")
        .arg(data.path())
        .env("MEDIAJET_ADMIN_PASSWORD", "secret-admin-password-4711")
        .env(
            "MEDIAJET_NATS_TRANSCODER_PASSWORD",
            "secret-nats-password-4711",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run mediajet");
    let token = front.new_user("eve@example.com").await;
    let video = common::make_video(front.dir.path(), "long.mp4", 20);
    let id = front.submit(&token, &video).await;
    front.wait_until_running(&token, &id).await;
    let tools_of_the_job = common::processes_mentioning(&id);
    assert!(!tools_of_the_job.is_empty(), "no ffmpeg runs for the job");
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    assert!(root, "this test needs root");
    let our_network = std::fs::read_link("/proc/self/ns/net").unwrap();
    for pid in tools_of_the_job {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        let environ =
            String::from_utf8_lossy(&std::fs::read(proc.join("environ")).unwrap()).into_owned();
        assert!(!environ.contains("4711"), "ffmpeg sees a secret: {environ}");
        assert!(
            !environ.contains("MEDIAJET"),
            "ffmpeg sees mediajet's settings: {environ}"
        );
        let status = std::fs::read_to_string(proc.join("status")).unwrap();
        let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            uid.split_whitespace().skip(1).all(|id| id == "65534"),
            "{uid}"
        );
        let network = std::fs::read_link(proc.join("ns/net")).unwrap();
        assert_ne!(network, our_network, "ffmpeg shares the host's network");
    }
    let done = front.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
}
