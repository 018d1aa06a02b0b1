//! Faults injected into a running service: each test pushes jobs, breaks
//! one dependency, heals it, lets the system settle, and then counts every
//! job it was told was accepted as completed, failed with a reason, lost or
//! duplicated, with outputs and emails. Lost and duplicated must be zero.

use crate::common;

use std::time::{Duration, Instant};

use mediajet::config::ActorKind;

/// How the jobs a test was told were accepted ended, once the system has
/// settled: what every fault test is judged by.
#[derive(Debug, Default)]
struct Tally {
    completed: usize,
    failed_with_reason: usize,
    /// Accepted, but gone, never finished, failed without a reason, or
    /// completed with less audio than the video had.
    lost: Vec<String>,
    /// Listed or emailed more than once.
    duplicated: Vec<String>,
    /// Finished without an email.
    unmailed: Vec<String>,
}

impl Tally {
    /// Waits (two minutes at most) for every job to finish, then counts.
    /// `seconds` is the length of the videos; `mails` what the owner got.
    async fn of(
        app: &common::Api,
        token: &str,
        ids: &[String],
        seconds: f64,
        mails: &[String],
    ) -> Tally {
        let mut tally = Tally::default();
        let listed = app.listed_ids(token).await;
        let started = Instant::now();
        for id in ids {
            let job = loop {
                let response = app.job(token, id).await;
                let job: serde_json::Value = response.json().await.unwrap_or_default();
                let state = job["state"].as_str().unwrap_or_default();
                if ["completed", "failed", "canceled"].contains(&state)
                    || started.elapsed() > Duration::from_secs(120)
                {
                    break job;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let whole = job["output"]["duration_seconds"]
                .as_f64()
                .is_some_and(|d| (d - seconds).abs() < 0.3);
            match job["state"].as_str() {
                Some("completed") if whole => tally.completed += 1,
                Some("failed") if job["error"].as_str().is_some_and(|e| !e.is_empty()) => {
                    tally.failed_with_reason += 1
                }
                _ => tally.lost.push(format!("{id}: {job}")),
            }
            if listed.iter().filter(|l| *l == id).count() > 1 || common::mails_about(mails, id) > 1
            {
                tally.duplicated.push(id.clone());
            }
            if common::mails_about(mails, id) == 0 {
                tally.unmailed.push(id.clone());
            }
        }
        println!("{tally:?}");
        tally
    }

    /// Nothing lost, nothing twice, every owner told once.
    fn assert_sound(&self) {
        assert!(self.lost.is_empty(), "lost: {self:?}");
        assert!(self.duplicated.is_empty(), "duplicated: {self:?}");
        assert!(self.unmailed.is_empty(), "not mailed: {self:?}");
    }
}

#[tokio::test]
async fn mail_held_up_by_an_smtp_outage_goes_out_once_after_recovery() {
    let maildir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // The SMTP server is down from the start.
    let app = common::spawn_app_with(|config| {
        config.mailer.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let ids = app.submit_many(&token, &video, 4).await;
    for id in &ids {
        let job = app.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
    }
    // The mailer has failed to send and is retrying.
    app.wait_for_consumer(
        mediajet::wire::names::EVENTS_STREAM,
        mediajet::wire::names::MAILER_CONSUMER,
        |info| info.num_redelivered > 0,
    )
    .await;

    let _smtp = common::SmtpServer::start(port, maildir.path());
    let started = Instant::now();
    while common::SmtpServer::mails(maildir.path()).len() < ids.len() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "mail did not go out after the SMTP server came back: {} of {}",
            common::SmtpServer::mails(maildir.path()).len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Once the mailer has settled every event, nothing more can arrive.
    app.wait_until_mail_settled().await;
    let mails = common::SmtpServer::mails(maildir.path());
    assert_eq!(mails.len(), ids.len(), "duplicated mail");
    let tally = Tally::of(&app, &token, &ids, 1.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, ids.len());
}

#[tokio::test]
async fn a_nats_crash_during_an_upload_burst_loses_no_accepted_job() {
    let mut app = common::spawn_app_with(|config| config.ingest.max_unfinished_jobs = 100).await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);

    // Twenty uploads in flight, and NATS killed in the middle of them.
    let mut uploads = Vec::new();
    for i in 0..20 {
        if i == 10 {
            app.kill_test_nats().await;
        }
        let api = common::Api::new(&app.base);
        let (token, video) = (token.clone(), video.clone());
        uploads.push(tokio::spawn(async move {
            let response = api.upload(&token, &video, None).await;
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body)
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for upload in uploads {
        let (status, body) = upload.await.unwrap();
        match status {
            202 => accepted.push(body["id"].as_str().unwrap().to_string()),
            // While NATS is down: a clear 503, never a 202.
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                refused += 1;
            }
            other => panic!("upload answered {other}: {body}"),
        }
    }
    // Uploads made while it is down are refused, not accepted.
    let down = app.upload(&token, &video, None).await;
    assert_eq!(down.status(), 503);

    app.restart_test_nats().await;
    for id in &accepted {
        app.wait_until_finished(&token, id).await;
    }
    let mails = app.outbox(accepted.len()).await;
    let tally = Tally::of(&app, &token, &accepted, 1.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, accepted.len());
    println!("{} accepted, {refused} refused with 503", accepted.len());
}

#[tokio::test]
async fn a_job_that_keeps_failing_for_transient_reasons_is_dead_lettered_failed_and_mailed() {
    let app = common::spawn_app().await;
    // The transcoder's work dir cannot be created (a file is in its way): a
    // fault of the machine, not of the upload, so it is retried.
    std::fs::write(app.data_dir().join("transcode"), b"in the way").unwrap();
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let id = app.submit(&token, &video).await;

    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    let reason = job["error"].as_str().unwrap();
    // The owner hears what happened; the cause (a path) stays in the log
    // and in the dead letter.
    assert!(reason.contains("failed 5 times"), "{reason}");
    assert!(!reason.contains("transcode"), "{reason}");
    assert_eq!(job["attempts"], 5, "{job}");

    // A copy of the work item waits in the dead-letter stream, with why.
    let client = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let dead = js.get_stream("MEDIAJET_DEAD").await.unwrap();
    let copy = dead
        .get_last_raw_message_by_subject("mediajet.dead.transcode")
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&copy.payload).contains(&id));
    let headers = copy.headers;
    assert!(
        headers.get("Mediajet-Dead-Reason").is_some(),
        "no reason on the dead letter"
    );
    // Its owner hears about it once.
    let mails = app.outbox(1).await;
    assert_eq!(common::mails_about(&mails, &id), 1);
}

/// A small tmpfs mounted for the test and unmounted when it ends.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// `None` where this process may not mount (not root, no privileges).
    fn mount(at: &std::path::Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
#[ignore = "needs root to mount a tmpfs; scripts/test.sh runs it when root"]
async fn a_full_work_disk_is_a_transient_error_and_the_jobs_complete_once_space_frees() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 4 * 1024 * 1024)
        .expect("mount a tmpfs (this test needs root)");
    // Nearly full: a little room, not enough for the upload.
    let filler = disk.0.join("filler");
    std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024 - 64 * 1024]).ok();
    let app = common::spawn_app().await;
    std::os::unix::fs::symlink(&disk.0, app.data_dir().join("transcode")).unwrap();
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 8);
    assert!(std::fs::metadata(&video).unwrap().len() > 64 * 1024);
    let ids = app.submit_many(&token, &video, 2).await;

    // The jobs are retried, saying why, and serve no partial audio.
    for id in &ids {
        let started = Instant::now();
        loop {
            let job: serde_json::Value = app.job(&token, id).await.json().await.unwrap();
            let error = job["error"].as_str().unwrap_or_default();
            // The full disk is the only fault here; the job says it is being
            // retried, without the cause.
            if error.starts_with("retrying") {
                assert!(!error.contains("No space left"), "{job}");
                assert_ne!(job["state"], "failed", "{job}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no disk error seen: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
        assert_eq!(output.status(), 409);
    }

    // Space frees: the next attempts succeed, with all of the audio.
    std::fs::remove_file(&filler).unwrap();
    for id in &ids {
        let job = app.wait_until_finished(&token, id).await;
        assert!(job["attempts"].as_u64().unwrap() >= 2, "{job}");
    }
    let mails = app.outbox(ids.len()).await;
    let tally = Tally::of(&app, &token, &ids, 8.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, ids.len());
}

/// A `mediajet run --actors transcoder` process, as a separate node would
/// run it (inside the network namespace `netns`, if given, serving HTTP on
/// every address there); `kill_on_drop` ends it with the test. Returns it
/// and its HTTP base URL.
async fn transcoder_process(
    nats_url: &str,
    ffmpeg: &std::path::Path,
    data_dir: &std::path::Path,
    netns: Option<&str>,
    slots: u32,
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let bin = env!("CARGO_BIN_EXE_mediajet");
    let http = netns.map_or("127.0.0.1:0", |_| "0.0.0.0:0");
    let mut command = match netns {
        Some(name) => {
            let mut command = tokio::process::Command::new("ip");
            command.args(["netns", "exec", name, bin]);
            command
        }
        None => tokio::process::Command::new(bin),
    };
    let mut child = command
        .args(["run", "--actors", "transcoder"])
        .args(["--transcoders", &slots.to_string()])
        .args(["--http", http, "--nats-url", nats_url])
        .arg("--ffmpeg")
        .arg(ffmpeg)
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run mediajet");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let up = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the transcoder did not start")
        .ok()
        .flatten()
        .unwrap_or_default();
    let address = up
        .strip_prefix("mediajet is up: ")
        .unwrap_or_else(|| panic!("the transcoder did not start: {up}"))
        .to_string();
    (child, address)
}

#[tokio::test]
async fn a_transcoder_killed_mid_encode_leaves_its_jobs_to_be_done_once_elsewhere() {
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let front = common::spawn_app_with(|config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 6);

    // Two jobs encoding on the first node and one waiting when it dies.
    let url = &front.ready.nats_url;
    let (mut first, _) = transcoder_process(url, &slow, &tools.path().join("a"), None, 2).await;
    let ids = front.submit_many(&token, &video, 3).await;
    front.wait_until_running(&token, &ids[0]).await;
    front.wait_until_running(&token, &ids[1]).await;
    first.kill().await.unwrap();

    // Another node takes the jobs once their ack wait has run out.
    let _second = transcoder_process(url, &slow, &tools.path().join("b"), None, 2).await;
    for id in &ids {
        front.wait_until_finished(&token, id).await;
    }
    // Once the work and the mail have settled, count: no second
    // completion, no second email.
    front.wait_until_work_settled().await;
    front.wait_until_mail_settled().await;
    let mails = front.outbox(ids.len()).await;
    let tally = Tally::of(&front, &token, &ids, 6.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, ids.len());
    for id in &ids[..2] {
        let job: serde_json::Value = front.job(&token, id).await.json().await.unwrap();
        assert_eq!(job["attempts"], 2, "the killed attempt and one more: {job}");
    }
}

/// A network namespace joined to the host by a veth pair, whose traffic with
/// the host an nftables rule can drop and let through again. Removed (with
/// its veth pair and rules) when dropped.
struct Netns {
    name: String,
    /// The host's end of the pair, reachable from inside.
    host_ip: String,
    /// The namespace's end, reachable from the host.
    inside_ip: String,
}

impl Netns {
    /// `None` where this process may not create namespaces.
    fn create() -> Option<Netns> {
        let id = std::process::id();
        let name = format!("mediajet-{id}");
        let run = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !run(&["netns", "add", &name]) {
            return None;
        }
        let netns = Netns {
            name,
            host_ip: format!("10.231.{}.1", id % 250),
            inside_ip: format!("10.231.{}.2", id % 250),
        };
        let inside_ip = format!("{}/30", netns.inside_ip);
        let (host_end, inside_end) = (format!("mjh{id}"), format!("mjn{id}"));
        let ns = netns.name.as_str();
        let steps: [&[&str]; 7] = [
            &[
                "link",
                "add",
                &host_end,
                "type",
                "veth",
                "peer",
                "name",
                &inside_end,
            ],
            &["link", "set", &inside_end, "netns", ns],
            &[
                "addr",
                "add",
                &format!("{}/30", netns.host_ip),
                "dev",
                &host_end,
            ],
            &["link", "set", &host_end, "up"],
            &["-n", ns, "addr", "add", &inside_ip, "dev", &inside_end],
            &["-n", ns, "link", "set", &inside_end, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            assert!(
                run(step),
                "cannot set up the namespace: ip {}",
                step.join(" ")
            );
        }
        Some(netns)
    }

    fn nft(&self, script: &str) {
        let status = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", script])
            .status()
            .expect("run nft (scripts/test.sh installs nftables)");
        assert!(status.success(), "nft {script}");
    }

    /// Drops every packet between the namespace and the host, both ways,
    /// so connections hang rather than fail (as when a cable is cut).
    fn cut(&self) {
        let host = &self.host_ip;
        self.nft(&format!(
            "add table inet partition; \
             add chain inet partition out {{ type filter hook output priority 0; }}; \
             add chain inet partition in {{ type filter hook input priority 0; }}; \
             add rule inet partition out ip daddr {host} drop; \
             add rule inet partition in ip saddr {host} drop"
        ));
    }

    fn heal(&self) {
        self.nft("delete table inet partition");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and so the pair.
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[tokio::test]
#[ignore = "needs root to make a network namespace; scripts/test.sh runs it when root"]
async fn a_transcoder_cut_off_from_nats_longer_than_the_ack_wait_loses_and_duplicates_nothing() {
    use mediajet::storage::jetstream::WORK_ACK_WAIT;
    use mediajet::wire::names;
    let netns = Netns::create().expect("make a network namespace (this test needs root)");
    // A NATS server on the host's end of the pair, so the namespace reaches
    // it and the partition can cut it off.
    let store = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let _nats = KillOnDrop(
        std::process::Command::new("nats-server")
            .args(["-js", "-a", &netns.host_ip, "-p", &port.to_string()])
            .arg("-sd")
            .arg(store.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server must be installed for the tests"),
    );
    common::wait_for_port_on(&netns.host_ip, port);
    let url = format!("nats://{}:{port}", netns.host_ip);
    let front = common::spawn_app_on(&url, |config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "clip.mp4", 20);

    // The transcoder in the namespace takes both jobs and encodes in real
    // time, so both are mid-encode when the cable is cut.
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let (_cut_off, cut_off_http) =
        transcoder_process(&url, &slow, &tools.path().join("a"), Some(&netns.name), 2).await;
    let inside = cut_off_http.replace("0.0.0.0", &netns.inside_ip);
    let ids = front.submit_many(&token, &video, 2).await;
    for id in &ids {
        front.wait_until_running(&token, id).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    netns.cut();

    // Past the ack wait, the jobs go to a transcoder on the host side.
    let _host = common::spawn_app_on(&url, |config| {
        config.shared.actors = vec![ActorKind::Transcoder];
    })
    .await;
    let cut_at = Instant::now();
    for id in &ids {
        let job = front.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
    }
    assert!(
        cut_at.elapsed() + Duration::from_secs(3) > WORK_ACK_WAIT,
        "the jobs finished before the ack wait ran out"
    );
    // What the finished jobs look like in NATS: the late transcoder must
    // change none of it.
    let nats = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let jobs = js.get_key_value(names::JOBS_BUCKET).await.unwrap();
    let outputs = js.get_object_store(names::OUTPUTS_BUCKET).await.unwrap();
    let mut finished = Vec::new();
    for id in &ids {
        let entry = jobs.entry(id.as_str()).await.unwrap().unwrap();
        let job: serde_json::Value = serde_json::from_slice(&entry.value).unwrap();
        let object = job["output"]["object"].as_str().unwrap().to_string();
        let stored = outputs.info(&object).await.unwrap();
        finished.push((entry.revision, object, stored.nuid));
    }

    // Heal, and wait until the cut-off transcoder talks to NATS again (its
    // readiness checks that) and has ended the encodes it held.
    netns.heal();
    let readiness = format!("{inside}/readyz");
    let healed = Instant::now();
    loop {
        let ready = front.http.get(&readiness).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(120),
            "the cut-off transcoder never reached NATS again"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Its metrics say when: an answer without the gauge at 0 is no answer.
    let metrics = format!("{inside}/metrics");
    loop {
        let text = match front.http.get(&metrics).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let in_flight = text
            .lines()
            .find_map(|l| l.strip_prefix("mediajet_transcodes_in_flight "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if in_flight == Some(0.0) {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(180),
            "the cut-off transcoder never let go of its encodes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    front.wait_until_work_settled().await;
    front.wait_until_mail_settled().await;

    // Every job completed once, by the host transcoder (attempt 2), with
    // all of its audio and one email; nothing was written over it.
    let mails = front.outbox(ids.len()).await;
    for (id, (revision, object, nuid)) in ids.iter().zip(&finished) {
        let entry = jobs.entry(id.as_str()).await.unwrap().unwrap();
        assert_eq!(
            entry.revision, *revision,
            "job {id} was written after it finished"
        );
        let stored = outputs.info(object).await.unwrap();
        assert_eq!(&stored.nuid, nuid, "the audio of job {id} was replaced");
        let job: serde_json::Value = front.job(&token, id).await.json().await.unwrap();
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["attempts"], 2, "{job}");
        assert_eq!(common::mails_about(&mails, id), 1, "job {id}");
        let audio = front.get(&token, &format!("/v1/jobs/{id}/output")).await;
        assert_eq!(audio.status(), 200);
        let path = front.dir.path().join(format!("{id}.mp3"));
        std::fs::write(&path, audio.bytes().await.unwrap()).unwrap();
        let duration = common::probe(&path).duration;
        assert!(
            (duration - 20.0).abs() < 0.3,
            "job {id}: {duration} s of audio"
        );
    }
    assert_eq!(mails.len(), ids.len(), "duplicated mail");
    let tally = Tally::of(&front, &token, &ids, 20.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, ids.len());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fills what is left of a filesystem; the space comes back when dropped.
struct Filler(std::path::PathBuf);

impl Filler {
    fn fill(dir: &std::path::Path) -> Filler {
        use std::io::Write;
        let path = dir.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for size in [1 << 20, 4096, 1] {
            let block = vec![0u8; size];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        Filler(path)
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
#[ignore = "needs root to mount a tmpfs; scripts/test.sh runs it when root"]
async fn a_full_jetstream_disk_refuses_uploads_with_503_and_delays_audio_until_space_frees() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), 64 * 1024 * 1024)
        .expect("mount a tmpfs (this test needs root)");
    // A NATS server whose JetStream store is the small disk.
    let port = common::free_port();
    let log = dir.path().join("nats.log");
    let _nats = KillOnDrop(
        std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .arg("-sd")
            .arg(disk.0.join("store"))
            .arg("-l")
            .arg(&log)
            .spawn()
            .expect("nats-server must be installed for the tests"),
    );
    common::wait_for_port(port);
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    let app = common::spawn_app_on(&format!("nats://127.0.0.1:{port}"), |config| {
        config.transcoder.ffmpeg = slow;
    })
    .await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 6);
    let ids = app.submit_many(&token, &video, 2).await;
    for id in &ids {
        app.wait_until_running(&token, id).await;
    }

    // The disk fills while the jobs encode: storing their audio fails.
    let filler = Filler::fill(&disk.0);
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.contains("OBJ_mediajet_outputs") && l.contains("no space left"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the audio was never refused by the full disk"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // While it is full: no partial audio, and a new upload gets a 503 with a
    // JSON reason (never a 202), and nothing of it stays.
    for id in &ids {
        let job: serde_json::Value = app.job(&token, id).await.json().await.unwrap();
        assert_ne!(job["state"], "completed", "{job}");
        let output = app.get(&token, &format!("/v1/jobs/{id}/output")).await;
        assert_eq!(output.status(), 409);
    }
    let refused = app.upload(&token, &video, None).await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let login = app
        .try_login("ann@example.com", common::USER_PASSWORD)
        .await;
    // Small writes may still fit the server's write buffer: a login either
    // works or is unavailable, never an internal error.
    assert!([200, 503].contains(&login.status().as_u16()), "{login:?}");
    let mut listed = app.listed_ids(&token).await;
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected, "the refused upload left a job behind");

    // Space frees: the jobs are retried and complete with all of their
    // audio, once, and uploads are taken again.
    drop(filler);
    for id in &ids {
        let job = app.wait_until_finished(&token, id).await;
        assert!(job["attempts"].as_u64().unwrap() >= 2, "{job}");
    }
    let mails = app.outbox(ids.len()).await;
    let tally = Tally::of(&app, &token, &ids, 6.0, &mails).await;
    tally.assert_sound();
    assert_eq!(tally.completed, ids.len());
    let again = app.upload(&token, &video, None).await;
    assert_eq!(again.status(), 202);
}

#[tokio::test]
async fn a_job_handed_back_ten_times_by_stopping_transcoders_still_completes_and_is_mailed() {
    let front = common::spawn_app_with(|config| {
        config.shared.actors = vec![ActorKind::Auth, ActorKind::Ingest, ActorKind::Mailer];
    })
    .await;
    let token = front.new_user("ann@example.com").await;
    let video = common::make_video(front.dir.path(), "long.mp4", 30);
    let id = front.submit(&token, &video).await;
    let tools = tempfile::tempdir().unwrap();
    let slow = common::realtime_ffmpeg(tools.path());
    for round in 1..=10u64 {
        // A scale-in or a rolling update: the encode outlives the drain.
        let mut transcoder = common::spawn_app_on(&front.ready.nats_url, |config| {
            config.shared.actors = vec![ActorKind::Transcoder];
            config.transcoder.ffmpeg = slow.clone();
            config.transcoder.drain_timeout = Duration::from_secs(1);
        })
        .await;
        wait_for_job(&front, &token, &id, |job| {
            job["state"] == "running" && job["attempts"].as_u64() == Some(round)
        })
        .await;
        transcoder.stop().await;
        wait_for_job(&front, &token, &id, |job| job["state"] == "queued").await;
    }
    let _healthy = common::spawn_app_on(&front.ready.nats_url, |config| {
        config.shared.actors = vec![ActorKind::Transcoder];
    })
    .await;
    let done = front.wait_until_finished(&token, &id).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["attempts"], 11, "{done}");
    let mails = front.outbox(1).await;
    assert_eq!(common::mails_about(&mails, &id), 1);
}

/// Polls the job until `done` says so (a minute at most).
async fn wait_for_job(
    app: &common::Api,
    token: &str,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let job: serde_json::Value = app.job(token, id).await.json().await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deleted_durable_consumers_are_made_again_and_their_work_goes_on() {
    let app = common::spawn_app().await;
    let token = app.new_user("ann@example.com").await;
    let video = common::make_video(app.dir.path(), "clip.mp4", 1);
    let first = app.submit(&token, &video).await;
    app.wait_until_finished(&token, &first).await;
    app.outbox(1).await;

    // Readiness, watched from before the consumers go: a worker between its
    // failure and its restart makes the process unready.
    let unready = {
        let http = app.http.clone();
        let url = app.url("/readyz");
        tokio::spawn(async move {
            loop {
                if let Ok(response) = http.get(&url).send().await
                    && response.status() == 503
                {
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    let actors = body["checks"]["actors"].as_object().cloned();
                    if actors.is_some_and(|a| a.values().any(|running| running == false)) {
                        return body;
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    let nats = async_nats::connect(&app.ready.nats_url).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    for (stream, consumer) in [
        ("MEDIAJET_WORK", "transcoders"),
        ("MEDIAJET_EVENTS", "mailer"),
        ("MEDIAJET_EVENTS", "history"),
    ] {
        js.get_stream(stream)
            .await
            .unwrap()
            .delete_consumer(consumer)
            .await
            .unwrap_or_else(|e| panic!("delete {consumer}: {e}"));
    }
    let unready = tokio::time::timeout(Duration::from_secs(30), unready)
        .await
        .expect("readiness never showed a restarting actor")
        .unwrap();
    assert_eq!(unready["status"], "unavailable", "{unready}");
    let second = app.submit(&token, &video).await;
    let done = app.wait_until_finished(&token, &second).await;
    assert_eq!(done["state"], "completed", "{done}");
    let mails = app.outbox(2).await;
    assert_eq!(common::mails_about(&mails, &second), 1);
    assert_eq!(common::mails_about(&mails, &first), 1, "mailed twice");
    assert_eq!(app.readiness().await["status"], "ready");
    // The history recorded the end, too.
    let started = Instant::now();
    loop {
        let listed = app.get(&token, "/v1/jobs?state=completed").await;
        let listed: serde_json::Value = listed.json().await.unwrap();
        if listed
            .as_array()
            .unwrap()
            .iter()
            .any(|job| job["id"] == second.as_str())
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn work_files_left_by_a_crash_are_cleared_when_the_transcoder_starts() {
    let mut app = common::spawn_app().await;
    app.stop().await;
    let left = app
        .data_dir()
        .join("transcode/0193aa8e-8c1e-7000-8000-000000000000");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(left.join("input"), vec![0u8; 1024 * 1024]).unwrap();
    app.restart().await;
    let started = Instant::now();
    while left.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the work file stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
