//! A three-node NATS cluster on loopback, R3 streams and buckets, and every
//! actor in its own `mediajet run` process under its own NATS user: the
//! deployment of `nomad/`, on one machine.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, MediajetProcess};
use futures::TryStreamExt;
use mediajet::nats_server::{ClusterOptions, NatsServer, Options};
use mediajet::storage::objects;
use mediajet::wire::names;
use tempfile::TempDir;

use crate::common::NATS_USERS as USERS;

fn password(user: &str) -> String {
    format!("{user}-cluster-password")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One cluster at a time: each runs eight processes, and two cores shared by
/// several clusters make encodes slow enough to trip ack waits.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    nodes: Vec<Option<NatsServer>>,
    /// Client URLs of every node, comma-separated.
    urls: String,
    /// The CA of the nodes' certificates: clients and routes speak TLS.
    ca: PathBuf,
    /// Kept (and printed) when a test fails, for its logs.
    dir: Option<TempDir>,
    /// Declared last so that it is released after the nodes have stopped.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Cluster {
    /// Starts three nodes routed to each other and waits until JetStream
    /// can place a three-replica stream.
    async fn start() -> Cluster {
        let turn = ONE_AT_A_TIME.lock().await;
        // This process speaks TLS to the nodes itself; several crates bring
        // rustls with different back ends, so it picks one, as mediajet does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = common::make_certificates(dir.path());
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, port) in route_ports.iter().enumerate() {
            let options = Options {
                port: 0,
                users: Some(USERS.iter().map(|u| (u.to_string(), password(u))).collect()),
                cluster: Some(ClusterOptions {
                    server_name: format!("n{i}"),
                    port: *port,
                    routes: route_ports
                        .iter()
                        .filter(|p| *p != port)
                        .map(|p| format!("127.0.0.1:{p}"))
                        .collect(),
                    route_password: "route-secret-password".into(),
                }),
                tls: Some(tls.clone()),
                ..Default::default()
            };
            let node = NatsServer::start_with(
                Path::new("nats-server"),
                &dir.path().join(format!("n{i}")),
                &options,
            )
            .await
            .expect("nats-server must be installed for the tests");
            nodes.push(Some(node));
        }
        let urls = nodes
            .iter()
            .flatten()
            .map(|n| n.url().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let cluster = Cluster {
            nodes,
            urls,
            ca: tls.ca,
            dir: Some(dir),
            _turn: turn,
        };
        cluster.wait_for_jetstream().await;
        cluster
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("cluster dir").path()
    }

    async fn operator(&self) -> async_nats::jetstream::Context {
        let client = async_nats::ConnectOptions::with_user_and_password(
            "operator".into(),
            password("operator"),
        )
        .add_root_certificates(self.ca.clone())
        .require_tls(true)
        .connect(mediajet::storage::jetstream::server_addrs(&self.urls).expect("urls"))
        .await
        .expect("operator connects");
        async_nats::jetstream::new(client)
    }

    async fn wait_for_jetstream(&self) {
        let js = self.operator().await;
        let started = Instant::now();
        loop {
            let probe = async_nats::jetstream::stream::Config {
                name: "CLUSTER_READY".into(),
                subjects: vec!["cluster.ready".into()],
                num_replicas: 3,
                ..Default::default()
            };
            if js.get_or_create_stream(probe).await.is_ok() {
                let _ = js.delete_stream("CLUSTER_READY").await;
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the JetStream cluster did not form"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Kills node `i` at once, as a crashed machine would go.
    async fn kill_node(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.kill().await;
        }
    }

    /// Lines of the nodes' logs where the server refused an actor something.
    fn permission_violations(&self) -> Vec<String> {
        (0..self.nodes.len())
            .flat_map(|i| {
                let log = self.path().join(format!("n{i}/nats-server.log"));
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("Violation - "))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Names of the objects in the outputs bucket, from the stream's subject
    /// counts: listing through the object store would need a consumer, which
    /// may land on a killed node (see `storage::objects`).
    async fn outputs(&self) -> Vec<String> {
        use base64::Engine;
        let js = self.operator().await;
        let stream = js
            .get_stream(format!("OBJ_{}", names::OUTPUTS_BUCKET))
            .await
            .expect("outputs stream");
        let meta = format!("$O.{}.M.>", names::OUTPUTS_BUCKET);
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(meta)
            .await
            .expect("stream info")
            .try_collect()
            .await
            .expect("subjects");
        subjects
            .into_iter()
            .map(|(subject, _)| {
                let encoded = subject.rsplit('.').next().unwrap_or_default();
                let name = base64::engine::general_purpose::URL_SAFE
                    .decode(encoded)
                    .expect("base64 object name");
                String::from_utf8(name).expect("UTF-8 object name")
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("cluster logs kept in {}", dir.keep().display());
        }
    }
}

/// One `mediajet run` process of the cluster's deployment.
type Actor = MediajetProcess;

async fn spawn_actor(cluster: &Cluster, actor: &str, extra: &[&str]) -> Actor {
    let data_dir = cluster.path().join(format!("{actor}-{}", free_port()));
    let mut command = MediajetProcess::command();
    command
        .args(["run", "--actors", actor, "--replicas", "3"])
        .args(["--http", "127.0.0.1:0", "--transcoders", "1"])
        .args(["--nats-url", &cluster.urls, "--nats-user", actor])
        .arg("--nats-tls-ca")
        .arg(&cluster.ca)
        .arg("--data-dir")
        .arg(&data_dir)
        .args(extra)
        .env("MEDIAJET_NATS_PASSWORD", password(actor))
        .env("MEDIAJET_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("MEDIAJET_ADMIN_PASSWORD", ADMIN_PASSWORD);
    MediajetProcess::start(command, &data_dir, actor).await
}

/// The five processes of a split deployment.
struct Deployment {
    auth: Actor,
    ingest: Actor,
    transcoders: Vec<Actor>,
    mailer: Actor,
}

async fn deploy(cluster: &Cluster, transcoder_args: &[&str]) -> Deployment {
    let auth = spawn_actor(cluster, "auth", &[]).await;
    let ingest = spawn_actor(cluster, "ingest", &[]).await;
    let mailer = spawn_actor(cluster, "mailer", &[]).await;
    let mut transcoders = Vec::new();
    for _ in 0..2 {
        transcoders.push(spawn_actor(cluster, "transcoder", transcoder_args).await);
    }
    Deployment {
        auth,
        ingest,
        transcoders,
        mailer,
    }
}

/// Every accepted job completed, with exactly one output, its waveform
/// and one email.
async fn assert_each_job_done_once(cluster: &Cluster, deployment: &Deployment, ids: &[String]) {
    let (waveforms, outputs): (Vec<String>, Vec<String>) = cluster
        .outputs()
        .await
        .into_iter()
        .partition(|name| name.contains(".waveform."));
    assert_eq!(outputs.len(), ids.len(), "outputs: {outputs:?}");
    assert_eq!(waveforms.len(), 2 * ids.len(), "waveforms: {waveforms:?}");
    // An event delivered to the mailer through a NATS node that was then
    // killed comes again only after the consumer's 30 s ack wait.
    let patience = Duration::from_secs(45);
    let mails = common::read_outbox_within(&deployment.mailer.data_dir, ids.len(), patience).await;
    assert_eq!(mails.len(), ids.len(), "one email per job");
    for id in ids {
        let with_id = outputs
            .iter()
            .filter(|o| o.starts_with(id.as_str()))
            .count();
        assert_eq!(with_id, 1, "job {id} has {with_id} outputs");
        let about = common::mails_about(&mails, id);
        assert_eq!(about, 1, "job {id} has {about} emails");
    }
    let violations = cluster.permission_violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test]
async fn a_batch_of_jobs_completes_once_on_a_three_node_cluster() {
    let cluster = Cluster::start().await;
    let deployment = deploy(&cluster, &[]).await;
    let api = &deployment.ingest.api;

    // Auth runs in its own process, and only there: Ingest reaches it over NATS.
    let ready = deployment.auth.api.readiness().await;
    assert_eq!(ready["status"], "ready", "{ready}");

    let token = api.new_user("ann@example.com").await;
    let video = common::make_video(cluster.path(), "clip.mp4", 2);
    let ids = api.submit_many(&token, &video, 6).await;
    for id in &ids {
        let job = api.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
    }
    assert_each_job_done_once(&cluster, &deployment, &ids).await;

    // Clients must speak TLS: a plain connection is refused.
    let plain =
        async_nats::ConnectOptions::with_user_and_password("operator".into(), password("operator"))
            .connect(mediajet::storage::jetstream::server_addrs(&cluster.urls).unwrap())
            .await;
    assert!(plain.is_err(), "a client without TLS got in");

    // The streams and buckets really are replicated three times.
    let js = cluster.operator().await;
    let mut work = js.get_stream(names::WORK_STREAM).await.unwrap();
    assert_eq!(work.info().await.unwrap().config.num_replicas, 3);
}

#[tokio::test]
async fn every_job_completes_once_when_a_transcoder_and_a_nats_node_are_killed() {
    let mut cluster = Cluster::start().await;
    let ffmpeg = common::realtime_ffmpeg(cluster.path());
    let ffmpeg = ffmpeg.to_str().unwrap();
    let mut deployment = deploy(&cluster, &["--ffmpeg", ffmpeg]).await;
    let api = &deployment.ingest.api;
    let token = api.new_user("ann@example.com").await;
    let video = common::make_video(cluster.path(), "clip.mp4", 4);
    let ids = api.submit_many(&token, &video, 6).await;

    // Both transcoders are mid-encode: kill one of them, and a NATS node.
    let started = Instant::now();
    while deployment.transcoders[0].api.encodes_in_flight().await < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "never busy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    deployment.transcoders[0].signal(libc::SIGKILL);
    cluster.kill_node(0).await;

    // The API stays up through it.
    let health = api.http.get(api.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut attempts = Vec::new();
    for id in &ids {
        let job = api.wait_until_finished(&token, id).await;
        assert_eq!(job["state"], "completed", "{job}");
        attempts.push(job["attempts"].as_u64().unwrap_or(0));
    }
    assert!(
        attempts.iter().any(|a| *a >= 2),
        "the killed transcoder's job was never redelivered: {attempts:?}"
    );
    assert_each_job_done_once(&cluster, &deployment, &ids).await;
    let status = deployment.transcoders[0].child.wait().await.unwrap();
    assert!(!status.success(), "the transcoder was killed");
}

#[tokio::test]
async fn a_transcoder_stopped_mid_encode_hands_its_job_to_another_at_once() {
    let cluster = Cluster::start().await;
    let ffmpeg = common::realtime_ffmpeg(cluster.path());
    let args = [
        "--ffmpeg",
        ffmpeg.to_str().unwrap(),
        "--drain-timeout",
        "1s",
    ];
    let mut deployment = deploy(&cluster, &args).await;
    let api = &deployment.ingest.api;
    let token = api.new_user("ann@example.com").await;
    let video = common::make_video(cluster.path(), "long.mp4", 20);
    let id = api.submit(&token, &video).await;

    // Find the transcoder that took the job, and stop it.
    let started = Instant::now();
    let busy = loop {
        let mut busy = None;
        for (i, transcoder) in deployment.transcoders.iter().enumerate() {
            if transcoder.api.encodes_in_flight().await >= 1.0 {
                busy = Some(i);
            }
        }
        if let Some(i) = busy {
            break i;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never busy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping = &mut deployment.transcoders[busy];
    stopping.signal(libc::SIGTERM);
    let stopped = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(20), stopping.child.wait())
        .await
        .expect("the transcoder drains and exits")
        .unwrap();
    assert!(status.success(), "exit status {status}");

    // The job was handed back (nak), not left to the 30-second ack wait: the
    // other transcoder is encoding it within seconds.
    let other = &deployment.transcoders[1 - busy];
    while other.api.encodes_in_flight().await < 1.0 {
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "the other transcoder did not pick the job up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = api.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_each_job_done_once(&cluster, &deployment, &[id]).await;
}

#[tokio::test]
async fn every_object_stays_readable_after_a_nats_node_is_lost() {
    let mut cluster = Cluster::start().await;
    let js = cluster.operator().await;
    let bucket = objects::outputs_bucket(&js, 3, std::time::Duration::from_secs(7 * 24 * 3600), 0)
        .await
        .unwrap();
    // Each object takes several batches of chunks, and the four are written
    // at once so that their chunks interleave in the stream.
    let bodies: Vec<Vec<u8>> = (0..4u8)
        .map(|i| (0..300_000u32).map(|n| (n % 251) as u8 ^ i).collect())
        .collect();
    let puts = bodies.iter().enumerate().map(|(i, body)| {
        let bucket = bucket.clone();
        async move {
            objects::put_object(
                &bucket,
                &format!("o{i}"),
                &body[..],
                8 * 1024,
                Default::default(),
            )
            .await
        }
    });
    for put in futures::future::join_all(puts).await {
        put.unwrap();
    }
    cluster.kill_node(0).await;
    // Clients of the lost node reconnect to another one first, and the
    // stream may elect a new leader; on two busy cores (the other tests run
    // beside this one) that can take a while.
    let started = Instant::now();
    while let Err(err) = bucket.read("o0").await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never readable: {}",
            mediajet::error::chain(&err)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Then every read succeeds at once, whichever replicas are left.
    for round in 0..12 {
        let read = async {
            let (info, chunks) = bucket.read(&format!("o{}", round % 4)).await.unwrap();
            let parts: Vec<bytes::Bytes> = chunks.try_collect().await.unwrap();
            (info.size, parts.concat())
        };
        let (size, bytes) = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .unwrap_or_else(|_| panic!("read {round} hung"));
        let body = &bodies[round % 4];
        assert_eq!(size, body.len());
        assert!(bytes == *body, "object o{} came back different", round % 4);
    }
}
