//! Each group of `nomad/mediajet.nomad.hcl` started the way the Nomad
//! client starts its task: the job evaluated with an operator's `-var`s, the
//! task's directories made, its templates rendered against sample service
//! registrations (a TLS nats-server with the production users, a TLS
//! SurrealDB server, an SMTP server, all on loopback) and sample Nomad
//! Variables, and the real `mediajet` binary run with exactly the task's
//! arguments and environment. Then its service check and its metrics, a job
//! through all four, and a variable left out or empty, which must keep the
//! task from starting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::common::nomad::{Cluster, PreparedTask, blocks, evaluate_job, prepare_task};
use crate::common::{
    self, ADMIN_EMAIL, ADMIN_PASSWORD, Api, MediajetProcess, ROOT_PASSWORD, SmtpServer,
    SurrealServer, nats_password, promtool,
};
use mediajet::nats_server::{NatsServer, Options};

const GROUPS: [&str; 4] = ["auth", "ingest", "transcoder", "mailer"];
const VARIABLES: &str = "nomad/jobs/mediajet";

/// The services and variables a Nomad cluster would hold for the job.
struct Site {
    dir: tempfile::TempDir,
    cluster: Cluster,
    _nats: NatsServer,
    _surreal: SurrealServer,
    _smtp: SmtpServer,
}

async fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let tls = common::make_certificates(dir.path());
    let options = Options {
        users: Some(
            common::NATS_USERS
                .iter()
                .map(|user| (user.to_string(), nats_password(user)))
                .collect(),
        ),
        tls: Some(tls.clone()),
        ..Default::default()
    };
    let nats = NatsServer::start_with(Path::new("nats-server"), &dir.path().join("nats"), &options)
        .await
        .expect("nats-server must be installed for the tests");
    let nats_port = port_of(nats.url());
    let surreal = SurrealServer::start_tls(&dir.path().join("surreal"), &tls);
    let surreal_port = port_of(&surreal.url);
    let smtp_port = common::free_port();
    let smtp = SmtpServer::start(smtp_port, dir.path());
    let key = dir.path().join("signing-key.pem");
    let made = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .output()
        .expect("openssl must be installed for the tests");
    assert!(made.status.success(), "{made:?}");
    let ca = std::fs::read_to_string(&tls.ca).unwrap();
    let mut items = BTreeMap::new();
    for actor in GROUPS {
        items.insert(format!("{actor}_nats_password"), nats_password(actor));
    }
    items.insert("surreal_password".into(), ROOT_PASSWORD.into());
    items.insert("smtp_url".into(), format!("smtp://127.0.0.1:{smtp_port}"));
    items.insert("admin_email".into(), ADMIN_EMAIL.into());
    items.insert("admin_password".into(), ADMIN_PASSWORD.into());
    items.insert("signing_key".into(), std::fs::read_to_string(&key).unwrap());
    items.insert("nats_tls_ca".into(), ca.clone());
    items.insert("surreal_tls_ca".into(), ca);
    let cluster = Cluster {
        services: BTreeMap::from([
            (
                "nats".to_string(),
                vec![("127.0.0.1".to_string(), nats_port)],
            ),
            (
                "surrealdb".to_string(),
                vec![("127.0.0.1".to_string(), surreal_port)],
            ),
        ]),
        variables: BTreeMap::from([(VARIABLES.to_string(), items)]),
        attributes: BTreeMap::new(),
    };
    Site {
        dir,
        cluster,
        _nats: nats,
        _surreal: surreal,
        _smtp: smtp,
    }
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// The job as `nomad job run -var …` would submit it for a one-node NATS
/// with a small disk.
fn the_job() -> Value {
    evaluate_job(
        "mediajet.nomad.hcl",
        &[
            ("image", "registry.example.com/mediajet:test"),
            ("nats_replicas", "1"),
            ("media_store_bytes", "1073741824"),
            ("public_url", "http://mediajet.example.com"),
        ],
    )
}

fn group(job: &Value, name: &str) -> (Value, Value) {
    let group = job["job"]["mediajet"]["group"][name].clone();
    let task = group["task"][name].clone();
    (group, task)
}

/// A free port for each label of the group's network block.
fn ports(group: &Value) -> BTreeMap<String, u16> {
    blocks(&group["network"])
        .iter()
        .filter_map(|n| n["port"].as_object())
        .flat_map(|ports| ports.keys().cloned())
        .map(|label| (label, common::free_port()))
        .collect()
}

/// The task's command: the image's entrypoint (`mediajet`) with the task's
/// arguments, and the task's environment only (and a PATH, as the image's
/// own environment gives one).
fn command(task: &PreparedTask) -> tokio::process::Command {
    let mut command = MediajetProcess::command();
    command
        .args(&task.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&task.env);
    command
}

/// The task's service check, as Nomad runs it.
async fn service_check(group: &Value, ports: &BTreeMap<String, u16>) -> u16 {
    let service = &group["service"];
    let check = &service["check"];
    let label = check["port"]
        .as_str()
        .or(service["port"].as_str())
        .expect("a port");
    let url = format!(
        "http://127.0.0.1:{}{}",
        ports[label],
        check["path"].as_str().expect("an http check")
    );
    reqwest::get(&url).await.map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn every_mediajet_group_starts_as_nomad_starts_it_and_a_job_goes_through() {
    let site = site().await;
    let job = the_job();
    let mut running = BTreeMap::new();
    for name in GROUPS {
        let (group, task) = group(&job, name);
        let ports = ports(&group);
        let root: PathBuf = site.dir.path().join(format!("alloc-{name}"));
        let prepared = prepare_task(&task, &ports, &site.cluster, &root)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let process = MediajetProcess::start(command(&prepared), &root.join("logs"), name).await;
        // Nomad checks the service until it passes.
        let mut status = 0;
        for _ in 0..100 {
            status = service_check(&group, &ports).await;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "{name}'s service check: {}", process.log());
        let page = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports["http"]))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("mediajet_actor_up"), "{name}: {page}");
        let (passed, printed) = promtool(&["check", "metrics"], Some(page.as_bytes()), &root);
        assert!(passed, "{name}'s metrics: {printed}");
        running.insert(name, (process, ports));
    }

    // The four together are the service: a user's job converts and its
    // email reaches the SMTP server.
    let ingest = Api::new(&format!("http://127.0.0.1:{}", running["ingest"].1["http"]));
    let token = ingest.new_user("ann@example.com").await;
    let video = common::make_video(site.dir.path(), "clip.mp4", 1);
    let id = ingest.submit(&token, &video).await;
    let job = ingest.wait_until_finished(&token, &id).await;
    assert_eq!(job["state"], "completed", "{job}");
    let mut mails = Vec::new();
    for _ in 0..100 {
        mails = SmtpServer::mails(site.dir.path());
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(common::mails_about(&mails, &id), 1, "{mails:?}");
    assert!(
        mails
            .iter()
            .any(|m| m.contains("http://mediajet.example.com")),
        "the email links to the public URL: {mails:?}"
    );
}

/// The keys of the job's variable that `task`'s templates read.
fn keys_read(task: &Value, site: &Site) -> Vec<String> {
    let text: String = blocks(&task["template"])
        .iter()
        .filter_map(|t| t["data"].as_str().map(str::to_string))
        .collect();
    site.cluster.variables[VARIABLES]
        .keys()
        .filter(|key| text.contains(&format!(".{key} ")) || text.contains(&format!(".{key}}}")))
        .cloned()
        .collect()
}

/// Runs the task and waits for it to end: `Some(status)` when it exits
/// within 30 s without coming up, `None` when it came up.
async fn outcome(task: &PreparedTask, logs: &Path) -> (Option<std::process::ExitStatus>, String) {
    let mut command = command(task);
    std::fs::create_dir_all(logs).unwrap();
    let log = logs.join("mediajet.log");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("run mediajet");
    let mut stdout = child.stdout.take().expect("stdout");
    let waited = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    if waited.is_err() {
        let _ = child.start_kill();
    }
    let mut printed = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut printed).await;
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    match waited {
        Ok(Ok(status)) if !printed.contains("mediajet is up") => (Some(status), log),
        _ => (None, format!("{printed}{log}")),
    }
}

#[tokio::test]
async fn a_nomad_variable_left_out_or_empty_keeps_the_task_from_starting() {
    let site = site().await;
    let job = the_job();
    let mut checked = 0;
    for name in GROUPS {
        let (group, task) = group(&job, name);
        let keys = keys_read(&task, &site);
        assert!(
            keys.contains(&format!("{name}_nats_password")),
            "{name} reads {keys:?}"
        );
        for key in keys {
            let root = site.dir.path().join(format!("{name}-{key}"));
            // Left out: the template fails, and with it the task.
            let mut cluster = site.cluster.clone();
            let items = cluster.variables.get_mut(VARIABLES).unwrap();
            items.remove(&key);
            let failed = prepare_task(&task, &ports(&group), &cluster, &root.join("missing"));
            match failed {
                Err(err) => assert!(
                    err.contains("Template failed") && err.contains(&key),
                    "{name} without {key}: {err}"
                ),
                Ok(_) => panic!("{name} renders without {key}"),
            }
            // Empty: the task renders, and mediajet refuses to start.
            let items = cluster.variables.get_mut(VARIABLES).unwrap();
            items.insert(key.clone(), String::new());
            let prepared = prepare_task(&task, &ports(&group), &cluster, &root.join("empty"))
                .unwrap_or_else(|e| panic!("{name} with an empty {key}: {e}"));
            let (status, log) = outcome(&prepared, &root.join("logs")).await;
            match status {
                Some(status) => {
                    assert!(!status.success(), "{name} with an empty {key} exited 0");
                    // Saying what is wrong: before it connects anywhere, or,
                    // for the first admin, as Auth checks the account.
                    assert!(
                        log.contains("refusing to start")
                            || key.starts_with("admin_") && log.contains("auth:"),
                        "{name} with an empty {key}: {log}"
                    );
                }
                None => panic!("{name} started with an empty {key}: {log}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} empty variables checked");
}
