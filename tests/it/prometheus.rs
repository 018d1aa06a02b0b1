//! Operated for real: Debian's Prometheus scrapes a split deployment (Auth,
//! Ingest, two Transcoders and Mailer, each its own `mediajet run` process
//! under its production NATS user) with the shipped alert rules loaded, and
//! everything is asserted through Prometheus' own HTTP API. The same
//! Prometheus then checks every query of the shipped dashboard.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::common::{
    self, ADMIN_EMAIL, ADMIN_PASSWORD, Api, MediajetProcess, Prometheus, nats_password, promtool,
    start_nats_with_users,
};

const JOBS: usize = 3;
const CLIP_SECONDS: u32 = 2;

fn repository_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Starts `actor` as its own `mediajet run` process under its production
/// NATS user, as its Nomad group does; `index` tells two of a kind apart.
async fn run(dir: &Path, nats_url: &str, actor: &str, index: usize) -> MediajetProcess {
    let name = format!("{actor}-{index}");
    let mut command = command(dir, nats_url, actor, &name);
    command
        .args(["--nats-user", actor])
        .env("MEDIAJET_NATS_PASSWORD", nats_password(actor));
    MediajetProcess::start(command, &dir.join(&name), &name).await
}

/// `mediajet run` for `actors` on a free port, its data dir `dir/name`.
fn command(dir: &Path, nats_url: &str, actors: &str, name: &str) -> tokio::process::Command {
    let mut command = MediajetProcess::command();
    command
        .args(["run", "--actors", actors, "--http", "127.0.0.1:0"])
        .args(["--nats-url", nats_url])
        .arg("--data-dir")
        .arg(dir.join(name))
        .env("MEDIAJET_TRANSCODERS", "1")
        .env("MEDIAJET_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("MEDIAJET_ADMIN_PASSWORD", ADMIN_PASSWORD);
    command
}

/// A scrape job that finds its targets in `targets.json` (rewritten as
/// processes start), every second.
const SCRAPE_CONFIG: &str = "global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
scrape_configs:
  - job_name: mediajet
    file_sd_configs:
      - files: [targets.json]
        refresh_interval: 1s
";

/// Writes the processes as Prometheus' targets, each labelled as the Nomad
/// job's relabelling labels it (`service`).
fn write_targets(dir: &Path, processes: &[(&str, MediajetProcess)]) {
    let targets: Vec<Value> = processes
        .iter()
        .map(|(actor, process)| {
            let address = process.api.url("").replace("http://", "");
            serde_json::json!({"targets": [address], "labels": {"service": format!("mediajet-{actor}")}})
        })
        .collect();
    let written = dir.join("targets.json.new");
    std::fs::write(&written, serde_json::to_vec(&targets).unwrap()).unwrap();
    // Whole or not at all: Prometheus may read the file at any moment.
    std::fs::rename(&written, dir.join("targets.json")).unwrap();
}

/// Every `expr` in a Grafana dashboard, with Grafana's interval variables
/// given a value Prometheus takes.
fn dashboard_queries(dashboard: &Value, found: &mut Vec<String>) {
    match dashboard {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => found.push(
                        expr.replace("$__rate_interval", "1m")
                            .replace("$__interval", "15s")
                            .replace("$__range", "1h"),
                    ),
                    _ => dashboard_queries(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, found)),
        _ => {}
    }
}

/// The metric names an expression mentions: mediajet's own, `up` and the
/// NATS exporter's.
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| {
            word.starts_with("mediajet_") || word.starts_with("gnatsd_") || *word == "up"
        })
        .map(str::to_string)
        .collect()
}

/// The prometheus-nats-exporter series the rules and the dashboard use. The
/// exporter is not packaged for Debian, so no test here scrapes it: these
/// are the names its `-varz` collector gives nats-server's
/// `jetstream.stats.storage` and `jetstream.config.max_storage` under its
/// default `gnatsd` prefix, as the NATS Nomad job runs it.
const NATS_EXPORTER_METRICS: [&str; 2] = [
    "gnatsd_varz_jetstream_stats_storage",
    "gnatsd_varz_jetstream_config_max_storage",
];

#[tokio::test]
async fn prometheus_scrapes_every_actor_of_a_split_deployment_and_sees_the_jobs_go_through() {
    let dir = tempfile::tempdir().unwrap();
    let nats = start_nats_with_users(dir.path()).await;
    let url = nats.url().to_string();
    let prometheus_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prometheus_dir).unwrap();
    std::fs::copy(
        repository_file("ops/prometheus/alerts.yml"),
        prometheus_dir.join("alerts.yml"),
    )
    .unwrap();
    write_targets(&prometheus_dir, &[]);
    let prometheus = Prometheus::start(&prometheus_dir, SCRAPE_CONFIG).await;
    // The transcoders start later, once the queue has been seen waiting.
    let mut processes = Vec::new();
    for actor in ["auth", "ingest", "mailer"] {
        processes.push((actor, run(dir.path(), &url, actor, 0).await));
        write_targets(&prometheus_dir, &processes);
    }

    // Jobs wait while no transcoder runs: the queue's gauges show them, and
    // the alert for a deployment without transcoders is on its way.
    let api = Api::new(&processes[1].1.api.url(""));
    let token = api.new_user("ann@example.com").await;
    let video = common::make_video(dir.path(), "clip.mp4", CLIP_SECONDS);
    let video_bytes = std::fs::metadata(&video).unwrap().len();
    let ids = api.submit_many(&token, &video, JOBS).await;
    prometheus
        .wait_for(r#"max(mediajet_queue_jobs{state="waiting"})"#, |v| {
            v == JOBS as f64
        })
        .await;
    prometheus
        .wait_for("max(mediajet_queue_oldest_waiting_age_seconds)", |v| {
            v > 0.0
        })
        .await;
    let no_transcoder = r#"count(ALERTS{alertname="MediajetNoTranscoder"}) or vector(0)"#;
    prometheus.wait_for(no_transcoder, |v| v == 1.0).await;

    for index in 0..2 {
        processes.push((
            "transcoder",
            run(dir.path(), &url, "transcoder", index).await,
        ));
        write_targets(&prometheus_dir, &processes);
    }
    for id in &ids {
        let job = api.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
    }
    assert_eq!(
        common::read_outbox(&processes[2].1.data_dir, JOBS)
            .await
            .len(),
        JOBS
    );

    // Every process is a target, up, under its service label.
    prometheus
        .wait_for_value(r#"count(up{job="mediajet"} == 1)"#, processes.len() as f64)
        .await;
    let scraped = prometheus.api("targets", &[]).await.unwrap();
    let active = scraped["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), processes.len(), "{scraped}");
    for target in active {
        assert_eq!(target["health"], "up", "{target}");
    }
    let services: BTreeSet<&str> = active
        .iter()
        .filter_map(|t| t["labels"]["service"].as_str())
        .collect();
    assert_eq!(
        services,
        BTreeSet::from([
            "mediajet-auth",
            "mediajet-ingest",
            "mediajet-mailer",
            "mediajet-transcoder"
        ])
    );

    // The jobs, counted by the actors that handled them; the queue drained,
    // nothing was given up on, and every actor and readiness check is up.
    let n = JOBS as f64;
    let uploaded = (JOBS as u64 * video_bytes) as f64;
    let expected = [
        (r#"sum(mediajet_jobs_finished_total{state="completed"})"#, n),
        (r#"sum(mediajet_jobs_finished_total{state="failed"})"#, 0.0),
        (r#"sum(mediajet_jobs_submitted_total{format="mp3"})"#, n),
        ("sum(mediajet_transcode_duration_seconds_count)", n),
        (
            r#"sum(mediajet_transcode_duration_seconds_bucket{le="+Inf"})"#,
            n,
        ),
        (r#"sum(mediajet_emails_total{outcome="sent"})"#, n),
        (r#"sum(mediajet_emails_total{outcome="error"})"#, 0.0),
        ("sum(mediajet_upload_bytes_total)", uploaded),
        (r#"max(mediajet_queue_jobs{state="waiting"})"#, 0.0),
        ("max(mediajet_queue_oldest_waiting_age_seconds)", 0.0),
        ("max(mediajet_dead_letters)", 0.0),
        ("count(mediajet_actor_up == 1)", processes.len() as f64),
        (r#"count(mediajet_actor_up{actor="transcoder"} == 1)"#, 2.0),
        ("min(mediajet_readiness_check_ok)", 1.0),
        // Nothing was imported or sent to a webhook, and the series say so.
        (r#"sum(mediajet_imports_total{outcome="failed"})"#, 0.0),
        ("sum(mediajet_webhook_attempts_total)", 0.0),
        ("sum(mediajet_webhook_attempt_duration_seconds_count)", 0.0),
    ];
    for (expr, want) in expected {
        prometheus.wait_for_value(expr, want).await;
    }
    // Two-second clips, give or take what ffmpeg reports of their length.
    prometheus
        .wait_for("sum(mediajet_transcoded_audio_duration_seconds_sum)", |v| {
            (v - n * f64::from(CLIP_SECONDS)).abs() < 0.2 * n
        })
        .await;
    prometheus
        .wait_for(r#"max(mediajet_bucket_bytes{bucket="outputs"})"#, |v| {
            v > 0.0
        })
        .await;
    prometheus
        .wait_for("max(mediajet_jetstream_storage_bytes)", |v| v > 0.0)
        .await;
    prometheus
        .wait_for("sum(mediajet_transcode_duration_seconds_sum)", |v| v > 0.0)
        .await;
    // Labels stay a small fixed set: no route, endpoint or other label
    // carries a job id, an email or a path the jobs made.
    let series = prometheus
        .api("series", &[("match[]", r#"{__name__=~"mediajet_.*"}"#)])
        .await
        .unwrap();
    let series = series.as_array().unwrap();
    assert!(series.len() > 50, "{series:?}");
    for labels in series {
        for (label, value) in labels.as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert!(
                !(value.contains('@')
                    || value.len() > 40 && label != "__name__"
                    || value.matches('-').count() >= 4),
                "{label}={value} looks like a per-job or per-user value"
            );
        }
    }
    prometheus.wait_for(no_transcoder, |v| v == 0.0).await;

    // Every alert rule evaluates without error against real series.
    let rules = prometheus.api("rules", &[]).await.unwrap();
    let rules: Vec<&Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert!(rules.len() >= 9, "{rules:?}");
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule}");
    }

    // Every process's page passes promtool's lint.
    for (actor, process) in &processes {
        let page = process
            .api
            .http
            .get(process.api.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (passed, printed) = promtool(&["check", "metrics"], Some(page.as_bytes()), dir.path());
        assert!(passed, "{actor}'s /metrics: {printed}\n{page}");
    }

    // The dashboard's queries and the alerts' expressions parse, and name
    // only metrics this deployment exports.
    let exported: BTreeSet<String> = prometheus
        .api("label/__name__/values", &[])
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_file("ops/grafana/mediajet.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let alert_exprs: Vec<String> = rules
        .iter()
        .filter_map(|r| r["query"].as_str().map(str::to_string))
        .collect();
    for expr in queries.iter().chain(&alert_exprs) {
        if let Err(err) = prometheus.api("query", &[("query", expr)]).await {
            panic!("{expr} does not run: {err}");
        }
        for name in metric_names(expr) {
            assert!(
                exported.contains(&name) || NATS_EXPORTER_METRICS.contains(&name.as_str()),
                "{expr} names {name}, which nothing exports"
            );
        }
    }
}

/// Waits until this process's page shows `series` at `want`.
async fn wait_for_metric(api: &Api, series: &str, want: f64) {
    let started = std::time::Instant::now();
    loop {
        let value = api.metric(series).await;
        if value == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{series} is {value:?}, not {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_queue_gauges_tell_waiting_from_running_jobs_and_count_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let nats = common::start_nats(dir.path()).await;
    let mut front = command(dir.path(), nats.url(), "auth,ingest", "front");
    front.env("MEDIAJET_UPLOADS_STORE_BYTES", "500000000");
    let front = MediajetProcess::start(front, &dir.path().join("front"), "front").await;
    let api = &front.api;

    // The transcoders' consumer, as a transcoder makes it, with no
    // transcoder behind it: what it takes is the test's to hold.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let work = mediajet::storage::jetstream::work_stream(&js, 1)
        .await
        .unwrap();
    let consumer = mediajet::storage::jetstream::transcoders_consumer(&work)
        .await
        .unwrap();
    let token = api.new_user("ann@example.com").await;
    let video = common::make_video(dir.path(), "clip.mp4", 1);
    api.submit_many(&token, &video, 3).await;
    wait_for_metric(api, r#"mediajet_queue_jobs{state="waiting"}"#, 3.0).await;

    // One is taken and runs; the other two wait, the older of them first.
    let mut taken = consumer.fetch().max_messages(1).messages().await.unwrap();
    let first = futures::StreamExt::next(&mut taken)
        .await
        .expect("a work item")
        .unwrap();
    wait_for_metric(api, r#"mediajet_queue_jobs{state="waiting"}"#, 2.0).await;
    wait_for_metric(api, r#"mediajet_queue_jobs{state="running"}"#, 1.0).await;
    let oldest = api
        .metric("mediajet_queue_oldest_waiting_age_seconds")
        .await
        .expect("the oldest waiting job's age");
    let first_age =
        (time::OffsetDateTime::now_utc() - first.info().unwrap().published).as_seconds_f64();
    assert!(
        oldest > 0.0 && oldest <= first_age,
        "the oldest waiting job is {oldest} s old, the taken one {first_age} s"
    );
    first.double_ack().await.unwrap();
    wait_for_metric(api, r#"mediajet_queue_jobs{state="running"}"#, 0.0).await;

    // A work item given up on lands in the dead-letter stream.
    mediajet::storage::jetstream::dead_letter_stream(&js, 1)
        .await
        .unwrap();
    js.publish(mediajet::wire::subject::DEAD_TRANSCODE, "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    wait_for_metric(api, "mediajet_dead_letters", 1.0).await;
    // The uploads bucket reports its bound and what it holds.
    wait_for_metric(api, r#"mediajet_bucket_limit_bytes{bucket="uploads"}"#, 5e8).await;
    let held = api
        .metric(r#"mediajet_bucket_bytes{bucket="uploads"}"#)
        .await
        .unwrap_or(0.0);
    let uploaded = 3.0 * std::fs::metadata(&video).unwrap().len() as f64;
    assert!(
        held >= uploaded,
        "{held} bytes held for {uploaded} uploaded"
    );
}
