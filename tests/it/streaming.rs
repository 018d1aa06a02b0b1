//! Jobs converted while their upload arrives: a streamable container whose
//! form fields come before the file is queued at its first chunk, and a
//! transcoder follows the chunks as they are stored.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::{self, TestApp, spawn_app, stream_messages};

/// A video of `seconds` whose picture is noise, so its file (about 1 MB a
/// second) spans several object chunks; `args` pick the container.
fn make_large_video(dir: &Path, name: &str, seconds: u32, args: &[&str]) -> PathBuf {
    let mut codecs = vec![
        "-vf",
        "noise=alls=100:allf=t",
        "-c:v",
        "mpeg4",
        "-q:v",
        "12",
        "-c:a",
        "aac",
    ];
    codecs.extend_from_slice(args);
    common::lavfi_video(dir, name, seconds, "size=320x240:rate=25", &codecs)
}

/// An upload of `path` (with `format` and `fields` before the file) whose
/// body is sent
/// as the test says: `send(n)` releases the next `n` bytes, `cut()` breaks
/// the body off.
struct HeldUpload {
    bytes: Bytes,
    sent: usize,
    body: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    response: tokio::task::JoinHandle<Result<reqwest::Response, reqwest::Error>>,
}

impl HeldUpload {
    fn start(app: &TestApp, token: &str, path: &Path) -> HeldUpload {
        HeldUpload::start_with(app, token, path, &[])
    }

    fn start_with(app: &TestApp, token: &str, path: &Path, fields: &[(&str, &str)]) -> HeldUpload {
        let bytes = Bytes::from(std::fs::read(path).expect("the video"));
        let (body, queued) = mpsc::channel(64);
        let stream = futures::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|part| (part, queued))
        });
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(stream),
            bytes.len() as u64,
        )
        .file_name(path.file_name().unwrap().to_string_lossy().to_string());
        let mut form = reqwest::multipart::Form::new().text("format", "mp3");
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let form = form.part("file", part);
        let client = common::Api::new(&app.base);
        let token = token.to_string();
        let response = tokio::spawn(async move { client.post_form(&token, form).await });
        HeldUpload {
            bytes,
            sent: 0,
            body: Some(body),
            response,
        }
    }

    async fn send(&mut self, n: usize) {
        let end = (self.sent + n).min(self.bytes.len());
        for piece in self.bytes.slice(self.sent..end).chunks(64 * 1024) {
            let piece = Bytes::copy_from_slice(piece);
            self.body.as_ref().unwrap().send(Ok(piece)).await.unwrap();
        }
        self.sent = end;
    }

    async fn finish(mut self) -> reqwest::Response {
        self.send(usize::MAX / 2).await;
        self.body = None;
        self.response.await.unwrap().expect("the upload request")
    }

    async fn cut(mut self) {
        let body = self.body.take().unwrap();
        let _ = body
            .send(Err(std::io::Error::other("the client went away")))
            .await;
        drop(body);
        let _ = self.response.await;
    }
}

/// Waits until the caller's only job is listed as running, and returns it.
async fn running_job(app: &TestApp, token: &str) -> Value {
    let started = Instant::now();
    loop {
        let jobs = app.list_jobs(token).await;
        if let Some(job) = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["state"] == "running")
        {
            return job.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no job started while its upload arrived: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_streamable_upload_is_converted_while_it_arrives() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (name, args) in [
        ("clip.mkv", &[][..]),
        ("faststart.mp4", &["-movflags", "+faststart"][..]),
    ] {
        let video = make_large_video(app.dir.path(), name, 10, args);
        let size = std::fs::metadata(&video).unwrap().len();
        let mut upload = HeldUpload::start(&app, &token, &video);
        // Two chunks' worth, then nothing until a transcoder has started.
        upload.send(2 * 1024 * 1024 + 1).await;
        let running = running_job(&app, &token).await;
        assert_eq!(running["streamed"], true, "{running}");
        let response = upload.finish().await;
        assert_eq!(response.status(), 202, "{name}");
        let id = response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(id, running["id"].as_str().unwrap());
        let job = app.wait_until_finished(&token, &id).await;
        assert_eq!(job["state"], "completed", "{name}: {job}");
        assert_eq!(job["streamed"], true);
        assert_eq!(job["input_bytes"], size, "{name}: {job}");
        let seconds = job["output"]["duration_seconds"].as_f64().unwrap();
        assert!((seconds - 10.0).abs() < 0.5, "{name}: {seconds} s of audio");
    }
}

#[tokio::test]
async fn a_streamed_job_with_several_outputs_makes_the_first_as_the_upload_arrives() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let video = make_large_video(app.dir.path(), "clip.mkv", 6, &[]);
    let outputs = r#"[{"format":"mp3"},{"format":"opus","bitrate":48}]"#;
    let mut upload = HeldUpload::start_with(&app, &token, &video, &[("outputs", outputs)]);
    upload.send(2 * 1024 * 1024 + 1).await;
    let running = running_job(&app, &token).await;
    assert_eq!(running["streamed"], true, "{running}");
    let response = upload.finish().await;
    assert_eq!(response.status(), 202);
    let id = running["id"].as_str().unwrap();
    let job = app.wait_until_finished(&token, id).await;
    assert_eq!(job["state"], "completed", "{job}");
    // The later output reads the copy the first one's pass wrote.
    for (n, ext) in ["mp3", "opus"].into_iter().enumerate() {
        let url = job["outputs"][n]["audio"]["url"].as_str().unwrap();
        let path = app.dir.path().join(format!("streamed.{ext}"));
        let audio = app.get(&token, url).await.bytes().await.unwrap();
        std::fs::write(&path, audio).unwrap();
        let seconds = common::decoded_seconds(&path);
        assert!((seconds - 6.0).abs() < 0.2, "{ext}: {seconds} s");
    }
}

#[tokio::test]
async fn an_upload_cut_off_mid_encode_stops_its_job_and_leaves_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let video = make_large_video(app.dir.path(), "clip.mkv", 10, &[]);
    let mut upload = HeldUpload::start(&app, &token, &video);
    upload.send(2 * 1024 * 1024 + 1).await;
    let running = running_job(&app, &token).await;
    upload.cut().await;
    let id = running["id"].as_str().unwrap();
    let started = Instant::now();
    loop {
        let status = app.job(&token, id).await.status();
        let listed = app.listed_ids(&token).await;
        let messages = stream_messages(&app.ready.nats_url, "OBJ_mediajet_uploads").await;
        if status == 404 && listed.is_empty() && messages == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the cut-off job stayed: {status}, listed {listed:?}, {messages} upload messages"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outputs = stream_messages(&app.ready.nats_url, "OBJ_mediajet_outputs").await;
    assert_eq!(outputs, 0, "audio was stored for a cut-off upload");
    // Nothing else is affected: the next upload converts.
    let clip = common::make_video(app.dir.path(), "next.mp4", 1);
    let next = app.submit_with(&token, &clip, &[("format", "mp3")]).await;
    assert_eq!(
        app.wait_until_finished(&token, &next).await["state"],
        "completed"
    );
}

#[tokio::test]
async fn an_mp4_with_its_index_last_waits_for_the_whole_upload() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let video = make_large_video(app.dir.path(), "camera.mp4", 10, &[]);
    let mut upload = HeldUpload::start(&app, &token, &video);
    upload.send(2 * 1024 * 1024 + 1).await;
    // The first chunks are stored (the uploads bucket holds them), and yet
    // no job is listed: it is made once the upload is whole.
    let started = Instant::now();
    while stream_messages(&app.ready.nats_url, "OBJ_mediajet_uploads").await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the chunks were not stored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.listed_ids(&token).await.is_empty());
    let response = upload.finish().await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = app.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["streamed"], false);
}
