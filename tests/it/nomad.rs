//! The Nomad jobs in `nomad/`, checked the way Nomad checks them: evaluated
//! as `nomad job run` evaluates HCL2, held to the rules `nomad job validate`
//! and `nomad job plan` apply, and sized for the flags their tasks pass. No
//! Nomad agent runs here; `nomad_tasks` starts each mediajet task the way
//! the Nomad client would.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::nomad::{blocks, evaluate_job};

const JOBS: [&str; 4] = [
    "mediajet.nomad.hcl",
    "nats.nomad.hcl",
    "prometheus.nomad.hcl",
    "surrealdb.nomad.hcl",
];

fn job(file: &str) -> Value {
    evaluate_job(file, &[("image", "registry.example.com/mediajet:test")])
}

fn duration(value: &Value) -> Duration {
    let text = value.as_str().expect("a duration string");
    mediajet::config::parse_duration(text).unwrap_or_else(|e| panic!("bad duration {text}: {e}"))
}

fn seconds(value: &Value) -> u64 {
    duration(value).as_secs()
}

/// `block[key]` as a duration, or Nomad's default.
fn duration_or(block: &Value, key: &str, default: &str) -> Duration {
    match &block[key] {
        Value::Null => mediajet::config::parse_duration(default).expect("a default"),
        value => duration(value),
    }
}

/// Each (job, group name, group) of every job file.
fn groups() -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for file in JOBS {
        let parsed = job(file);
        for (job_name, job) in parsed["job"].as_object().expect("a job block") {
            for (name, group) in job["group"].as_object().expect("groups") {
                // Job-level update settings apply to groups without their own.
                let mut group = group.clone();
                if group["update"].is_null() && !job["update"].is_null() {
                    group["update"] = job["update"].clone();
                }
                all.push((job_name.clone(), name.clone(), group));
            }
        }
    }
    all
}

/// Each (task name, task) of a group.
fn tasks(group: &Value) -> Vec<(String, Value)> {
    group["task"]
        .as_object()
        .expect("tasks")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every template's text in `task`, joined.
fn templates(task: &Value) -> String {
    blocks(&task["template"])
        .iter()
        .filter_map(|t| t["data"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The port labels of a group's network block.
fn port_labels(group: &Value) -> BTreeSet<String> {
    blocks(&group["network"])
        .iter()
        .filter_map(|n| n["port"].as_object())
        .flat_map(|ports| ports.keys().cloned())
        .collect()
}

#[test]
fn every_group_keeps_the_rules_nomad_job_validate_enforces() {
    for (job, name, group) in groups() {
        let at = format!("{job}.{name}");
        // Scaling: min ≤ count ≤ max (count defaults to min, then to 1).
        let scaling = &group["scaling"];
        let min = scaling["min"].as_u64();
        let count = group["count"].as_u64().or(min).unwrap_or(1);
        if !scaling.is_null() {
            let max = scaling["max"].as_u64().expect("scaling needs max");
            let min = min.unwrap_or(0);
            assert!(
                min <= count && count <= max,
                "{at}: {min} ≤ {count} ≤ {max} fails"
            );
        }
        // Restart: the attempts must fit in the interval (defaults for a
        // service job: 2 attempts, 15 s apart, in 30 min, then fail).
        for restart in std::iter::once(&group["restart"]).chain(
            tasks(&group)
                .iter()
                .map(|(_, t)| &t["restart"])
                .collect::<Vec<_>>(),
        ) {
            let attempts = restart["attempts"].as_u64().unwrap_or(2) as u32;
            let delay = duration_or(restart, "delay", "15s");
            let interval = duration_or(restart, "interval", "30m");
            let mode = restart["mode"].as_str().unwrap_or("fail");
            assert!(
                ["fail", "delay"].contains(&mode),
                "{at}: restart mode {mode}"
            );
            assert!(interval >= Duration::from_secs(5), "{at}: restart interval");
            assert!(
                delay * attempts <= interval,
                "{at}: {attempts} restarts {delay:?} apart do not fit in {interval:?}"
            );
        }
        // Update: min_healthy_time < healthy_deadline < progress_deadline.
        let update = &group["update"];
        let healthy = duration_or(update, "min_healthy_time", "10s");
        let deadline = duration_or(update, "healthy_deadline", "5m");
        let progress = duration_or(update, "progress_deadline", "10m");
        assert!(
            healthy < deadline,
            "{at}: min_healthy_time ≥ healthy_deadline"
        );
        assert!(
            progress.is_zero() || deadline < progress,
            "{at}: healthy_deadline ≥ progress_deadline"
        );
        if update["auto_promote"] == true {
            assert!(
                update["canary"].as_u64().unwrap_or(0) > 0,
                "{at}: auto_promote without canary"
            );
        }
        // Services: unique per group, named as Nomad allows, checked only
        // with http or tcp (the Nomad provider's), on ports that exist.
        let ports = port_labels(&group);
        let mut seen = BTreeSet::new();
        for service in blocks(&group["service"]) {
            let service_name = service["name"].as_str().expect("a service name");
            let port = service["port"].as_str().unwrap_or_default();
            assert!(
                seen.insert((service_name.to_string(), port.to_string())),
                "{at}: duplicate {service_name}"
            );
            assert!(
                service_name.len() <= 63
                    && service_name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{at}: service name {service_name}"
            );
            assert_eq!(service["provider"], "nomad", "{at}: {service_name}");
            assert!(
                ports.contains(port),
                "{at}: {service_name} on port {port}, not in {ports:?}"
            );
            for check in blocks(&service["check"]) {
                let kind = check["type"].as_str().unwrap_or_default();
                assert!(["http", "tcp"].contains(&kind), "{at}: {kind} check");
                if kind == "http" {
                    assert!(
                        check["path"].as_str().is_some_and(|p| p.starts_with('/')),
                        "{at}"
                    );
                }
                assert!(
                    !check["interval"].is_null() && !check["timeout"].is_null(),
                    "{at}"
                );
                if let Some(check_port) = check["port"].as_str() {
                    assert!(
                        ports.contains(check_port),
                        "{at}: check on port {check_port}"
                    );
                }
            }
        }
        for (task_name, task) in tasks(&group) {
            let at = format!("{at}.{task_name}");
            for port in blocks(&task["config"]["ports"]) {
                let port = port.as_str().unwrap_or_default();
                assert!(
                    ports.contains(port),
                    "{at}: config.ports {port} not in {ports:?}"
                );
            }
            let mut destinations = BTreeSet::new();
            for template in blocks(&task["template"]) {
                let destination = template["destination"].as_str().expect("a destination");
                assert!(
                    destinations.insert(destination.to_string()),
                    "{at}: two templates write {destination}"
                );
                assert!(
                    destination.starts_with("local/") || destination.starts_with("secrets/"),
                    "{at}: {destination} outside the task dir"
                );
                if template["change_mode"] == "signal" {
                    assert!(
                        !template["change_signal"].is_null(),
                        "{at}: signal without change_signal"
                    );
                    assert!(
                        template["env"] != true,
                        "{at}: an env template cannot signal"
                    );
                }
            }
            // A task reads only the variables its workload identity may:
            // nomad/jobs/<job>[/<group>[/<task>]].
            let text = templates(&task);
            for path in text
                .split("nomadVar \"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
            {
                let allowed = [
                    format!("nomad/jobs/{job}"),
                    format!("nomad/jobs/{job}/{name}"),
                    format!("nomad/jobs/{job}/{name}/{task_name}"),
                ];
                assert!(
                    allowed.iter().any(|a| a == path),
                    "{at} reads {path}, which its identity cannot"
                );
            }
            assert!(
                task["kill_timeout"].is_null() || seconds(&task["kill_timeout"]) > 0,
                "{at}"
            );
        }
    }
}

#[test]
fn service_names_are_unique_across_the_jobs() {
    let mut names = BTreeMap::new();
    for (job, group, value) in groups() {
        for service in blocks(&value["service"]) {
            let name = service["name"].as_str().unwrap_or_default().to_string();
            if let Some(other) = names.insert(name.clone(), format!("{job}.{group}")) {
                panic!("{name} is registered by {other} and {job}.{group}");
            }
        }
    }
    assert!(names.contains_key("mediajet-transcoder") && names.contains_key("nats"));
}

#[test]
fn every_template_that_reads_a_variable_fails_on_a_missing_key() {
    for (job, name, group) in groups() {
        for (task_name, task) in tasks(&group) {
            for template in blocks(&task["template"]) {
                if template["data"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("nomadVar")
                {
                    assert_eq!(
                        template["error_on_missing_key"], true,
                        "{job}.{name}.{task_name}: {} renders a missing key as <no value>",
                        template["destination"]
                    );
                }
            }
        }
    }
}

#[test]
fn the_transcoder_group_is_sized_for_its_encodes() {
    let file = job("mediajet.nomad.hcl");
    let groups = &file["job"]["mediajet"]["group"];
    let defaults = mediajet::config::Config::for_data_dir(".");
    let env = |group: &str, key: &str| {
        groups[group]["task"][group]["env"][key]
            .as_str()
            .map(str::to_string)
    };
    let number = |group: &str, key: &str, default: u64| {
        env(group, key).map_or(default, |v| {
            v.parse().unwrap_or_else(|e| panic!("{key}={v}: {e}"))
        })
    };
    let slots = number("transcoder", "MEDIAJET_TRANSCODERS", 0);
    assert!(slots > 0, "the transcoder task sets MEDIAJET_TRANSCODERS");
    let encode_memory = number(
        "transcoder",
        "MEDIAJET_FFMPEG_MEMORY_BYTES",
        defaults.transcoder.ffmpeg_memory_bytes,
    );
    const MIB: u64 = 1024 * 1024;
    let memory = groups["transcoder"]["task"]["transcoder"]["resources"]["memory"]
        .as_u64()
        .expect("memory")
        * MIB;
    // mediajet itself, besides its encodes, stays under 256 MiB (B1's peak
    // RSS is 130 MiB).
    assert!(
        memory >= slots * encode_memory + 256 * MIB,
        "{} MiB of memory for {slots} encodes of {} MiB",
        memory / MIB,
        encode_memory / MIB
    );
    let upload = number(
        "ingest",
        "MEDIAJET_MAX_UPLOAD_BYTES",
        defaults.ingest.max_upload_bytes,
    );
    let output = number(
        "transcoder",
        "MEDIAJET_MAX_OUTPUT_BYTES",
        defaults.transcoder.max_output_bytes,
    );
    let disk = groups["transcoder"]["ephemeral_disk"]["size"]
        .as_u64()
        .unwrap_or(300)
        * MIB;
    assert!(
        disk >= slots * (upload + output),
        "{} MiB of disk for {slots} encodes of up to {} MiB in and {} MiB out",
        disk / MIB,
        upload / MIB,
        output / MIB
    );
}

#[test]
fn the_prometheus_job_loads_the_alert_rules_unchanged() {
    let file = job("prometheus.nomad.hcl");
    let task = &file["job"]["prometheus"]["group"]["prometheus"]["task"]["prometheus"];
    let rules = blocks(&task["template"])
        .into_iter()
        .find(|t| t["destination"] == "local/alerts.yml")
        .expect("a template for the rules");
    let cluster = crate::common::nomad::Cluster::default();
    let rendered =
        crate::common::nomad::render(&rules, &cluster, &BTreeMap::new()).expect("renders");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus/alerts.yml"),
    )
    .unwrap();
    assert_eq!(
        rendered, shipped,
        "the rules' own templates were rendered away"
    );
}

#[tokio::test]
async fn the_prometheus_job_renders_a_config_promtool_accepts_and_keeps_only_metrics_services() {
    let file = job("prometheus.nomad.hcl");
    let task = &file["job"]["prometheus"]["group"]["prometheus"]["task"]["prometheus"];
    let dir = tempfile::tempdir().unwrap();
    let cluster = crate::common::nomad::Cluster {
        attributes: BTreeMap::from([(
            "attr.unique.network.ip-address".to_string(),
            "10.0.0.5".to_string(),
        )]),
        ..Default::default()
    };
    let prepared = crate::common::nomad::prepare_task(
        task,
        &BTreeMap::from([("http".to_string(), 9090)]),
        &cluster,
        dir.path(),
    )
    .expect("the task's templates render");
    let config = std::fs::read_to_string(prepared.root.join("local/prometheus.yml")).unwrap();
    // Debian builds Prometheus without Nomad service discovery, so its
    // promtool refuses `nomad_sd_configs`. Each one must ask the node's Nomad
    // agent; it is then checked as the file discovery it stands for, with
    // the same relabelling.
    let servers = config
        .matches(r#"- server: "http://10.0.0.5:4646""#)
        .count();
    assert_eq!(config.matches("nomad_sd_configs:").count(), 2, "{config}");
    assert_eq!(
        servers, 2,
        "every discovery asks the node's agent: {config}"
    );
    let checkable = config
        .replace("nomad_sd_configs:", "file_sd_configs:")
        .replace(
            r#"- server: "http://10.0.0.5:4646""#,
            "- files: [nomad-services.json]",
        );
    let local = prepared.root.join("local");
    // What Nomad's service discovery would give: two mediajet processes and
    // a NATS exporter tagged `metrics`, a NATS client port that is not, and
    // an Alertmanager.
    let service = |address: &str, name: &str, tags: &str| {
        json!({
            "targets": [address],
            "labels": {
                "__meta_nomad_service": name,
                "__meta_nomad_tags": tags,
                "__meta_nomad_node_id": "node-1",
            },
        })
    };
    let services = json!([
        service("127.0.0.1:24001", "mediajet-ingest", ",http,metrics,"),
        service("127.0.0.1:24003", "mediajet-transcoder", ",metrics,"),
        service("127.0.0.1:7777", "nats-exporter", ",metrics,"),
        service("127.0.0.1:4222", "nats", ",client,"),
        service("127.0.0.1:9093", "alertmanager", ",http,"),
    ]);
    std::fs::write(local.join("nomad-services.json"), services.to_string()).unwrap();
    std::fs::write(local.join("checkable.yml"), &checkable).unwrap();
    let (passed, printed) =
        crate::common::promtool(&["check", "config", "checkable.yml"], None, &local);
    assert!(passed, "{printed}\n{checkable}");
    assert!(
        printed.contains("alerts.yml"),
        "the rules are not checked with it: {printed}"
    );
    assert!(!printed.contains("WARNING"), "{printed}");

    // Prometheus itself, on that configuration, scrapes the services tagged
    // `metrics` (each labelled with its service and node), drops the rest,
    // and sends alerts to the Alertmanager.
    let prometheus = crate::common::Prometheus::start(&local, &checkable).await;
    let started = std::time::Instant::now();
    let scraped = loop {
        let targets = prometheus.api("targets", &[]).await.unwrap();
        let active: BTreeMap<String, String> = targets["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t["labels"]["node"], "node-1", "{t}");
                let service = t["labels"]["service"].as_str().unwrap_or_default();
                (
                    service.to_string(),
                    t["scrapeUrl"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if active.len() >= 3 {
            break active;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{targets}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        scraped,
        BTreeMap::from([
            (
                "mediajet-ingest".into(),
                "http://127.0.0.1:24001/metrics".into()
            ),
            (
                "mediajet-transcoder".into(),
                "http://127.0.0.1:24003/metrics".into()
            ),
            (
                "nats-exporter".into(),
                "http://127.0.0.1:7777/metrics".into()
            ),
        ])
    );
    let started = std::time::Instant::now();
    loop {
        let managers = prometheus.api("alertmanagers", &[]).await.unwrap();
        let urls: Vec<&str> = managers["activeAlertmanagers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["url"].as_str())
            .collect();
        if !urls.is_empty() {
            assert_eq!(urls, ["http://127.0.0.1:9093/api/v2/alerts"]);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{managers}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_mediajet_job_runs_one_group_per_actor_with_the_right_flags() {
    let file = job("mediajet.nomad.hcl");
    let groups = &file["job"]["mediajet"]["group"];
    let names: Vec<&String> = groups.as_object().expect("groups").keys().collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let drain = file["variable"]["transcoder_drain_seconds"]["default"]
        .as_u64()
        .expect("a number of seconds");
    for actor in ["auth", "ingest", "transcoder", "mailer"] {
        let group = &groups[actor];
        let task = &group["task"][actor];
        // Nomad's kill_timeout must let the process finish its shutdown, at
        // the default drain and at any other an operator sets.
        for drain in [drain, 1, 600] {
            let file = evaluate_job(
                "mediajet.nomad.hcl",
                &[
                    ("image", "registry.example.com/mediajet:test"),
                    ("transcoder_drain_seconds", &drain.to_string()),
                ],
            );
            let task = &file["job"]["mediajet"]["group"][actor]["task"][actor];
            let budget = mediajet::shutdown::budget(
                std::time::Duration::from_secs(drain),
                actor == "transcoder",
            );
            let kill = seconds(&task["kill_timeout"]);
            assert!(
                kill >= budget.as_secs_f64().ceil() as u64,
                "{actor}: kill_timeout {kill}s is shorter than the shutdown budget {budget:?}"
            );
            if actor == "transcoder" {
                assert_eq!(
                    task["env"]["MEDIAJET_DRAIN_TIMEOUT"],
                    format!("{drain}s"),
                    "the drain the budget was taken for"
                );
            }
        }
        assert_eq!(
            task["config"]["args"],
            serde_json::json!(["run", "--actors", actor]),
            "{actor}"
        );
        assert_eq!(task["env"]["MEDIAJET_NATS_USER"], actor);
        let env = task["env"].as_object().expect("env");
        assert!(
            env.keys().all(|k| !k.contains("PASSWORD")),
            "{actor}: a password in the job file"
        );
        let secrets = templates(task);
        assert!(
            secrets.contains("nomadVar") && secrets.contains("MEDIAJET_NATS_PASSWORD"),
            "{actor}: NATS password not from Nomad Variables"
        );
        assert!(secrets.contains("nomadService \"nats\""), "{actor}");
        assert!(
            secrets.contains("MEDIAJET_REPLICAS=3"),
            "{actor}: streams not replicated"
        );
        assert!(
            secrets.contains("MEDIAJET_UPLOADS_STORE_BYTES")
                && secrets.contains("MEDIAJET_OUTPUTS_STORE_BYTES"),
            "{actor}: media buckets without a bound"
        );
        assert!(
            secrets.contains("tls://") && secrets.contains("MEDIAJET_NATS_TLS_CA"),
            "{actor}: NATS without TLS"
        );
        let service = &group["service"];
        assert!(
            service["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&Value::from("metrics"))),
            "{actor}: not tagged for metrics"
        );
        assert_eq!(service["check"]["type"], "http", "{actor}");
        assert_eq!(service["check"]["path"], "/readyz", "{actor}");
        assert_eq!(group["update"]["auto_revert"], true, "{actor}");
        let needs_db = actor == "auth" || actor == "ingest";
        assert_eq!(
            secrets.contains("MEDIAJET_SURREAL_URL"),
            needs_db,
            "{actor}: SurrealDB access"
        );
        if needs_db {
            assert!(secrets.contains("wss://"), "{actor}: SurrealDB without TLS");
        }
    }
    let transcoder = &groups["transcoder"];
    assert!(transcoder["scaling"]["max"].as_u64().unwrap_or(0) > 1);
    assert!(groups["ingest"]["update"]["canary"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn the_nats_job_runs_three_named_nodes_from_the_repository_config() {
    let file = job("nats.nomad.hcl");
    let group = &file["job"]["nats"]["group"]["nats"];
    assert_eq!(group["count"], 3);
    let task = &group["task"]["nats"];
    assert_eq!(task["kill_signal"], "SIGUSR2", "lame-duck stop");
    assert!(seconds(&task["kill_timeout"]) > 40, "longer than lame duck");
    let args = task["config"]["args"].to_string();
    assert!(args.contains("NOMAD_ALLOC_INDEX"), "stable names: {args}");
    let text = templates(task);
    // The repository's nats.conf, with the store on the volume.
    assert!(
        text.contains("max_payload: 8MB") && text.contains("/data/jetstream"),
        "{text}"
    );
    assert!(text.contains("nomadService \"nats-cluster\""), "{text}");
    assert!(text.contains("nomadVar \"nomad/jobs/nats\""), "{text}");
    // Clients and routes over TLS, routes authenticated.
    assert!(
        text.contains("cert_file") && text.contains("verify: true"),
        "{text}"
    );
    assert!(text.contains("nats-route://route:"), "{text}");
    assert!(text.contains("MEDIAJET_NATS_ROUTE_PASSWORD"), "{text}");
    assert_eq!(group["volume"]["data"]["type"], "host");
}

#[test]
fn surrealdb_gets_its_root_password_from_nomad_variables() {
    let file = job("surrealdb.nomad.hcl");
    let task = &file["job"]["surrealdb"]["group"]["surrealdb"]["task"]["surrealdb"];
    assert!(templates(task).contains("nomadVar \"nomad/jobs/surrealdb\""));
    let args = task["config"]["args"].to_string();
    assert!(
        args.contains("--web-crt") && args.contains("--web-key"),
        "TLS: {args}"
    );
    assert!(task["env"].is_null(), "no credentials in the job file");
}

#[test]
fn prometheus_discovers_every_metrics_service_through_nomad() {
    let file = job("prometheus.nomad.hcl");
    let task = &file["job"]["prometheus"]["group"]["prometheus"]["task"]["prometheus"];
    let config = templates(task);
    assert!(config.contains("nomad_sd_configs"), "{config}");
    assert!(config.contains("metrics"), "{config}");
}

#[test]
fn the_nats_job_renders_a_config_nats_server_accepts() {
    let file = job("nats.nomad.hcl");
    let group = &file["job"]["nats"]["group"]["nats"];
    let task = &group["task"]["nats"];
    let dir = tempfile::tempdir().unwrap();
    let tls = crate::common::make_certificates(dir.path());
    let pem = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    // The actors' users and the nodes' own (`route`).
    let mut items: BTreeMap<String, String> = crate::common::NATS_USERS
        .iter()
        .chain(&["route"])
        .map(|user| (format!("{user}_password"), format!("{user}Password1")))
        .collect();
    items.insert("tls_cert".into(), pem(&tls.cert));
    items.insert("tls_key".into(), pem(&tls.key));
    items.insert("tls_ca".into(), pem(&tls.ca));
    let nodes = (0..3)
        .map(|i| (format!("10.0.0.{}", i + 1), 6222))
        .collect();
    let cluster = crate::common::nomad::Cluster {
        services: BTreeMap::from([("nats-cluster".to_string(), nodes)]),
        variables: BTreeMap::from([("nomad/jobs/nats".to_string(), items)]),
        ..Default::default()
    };
    let ports = any_ports(group);
    let prepared = crate::common::nomad::prepare_task(task, &ports, &cluster, dir.path())
        .expect("the task's templates render");
    let config = prepared.root.join("local/nats.conf");
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(
        text.matches("nats-route://route:routePassword1@10.0.0.")
            .count(),
        3,
        "{text}"
    );
    // nats-server's own check of the file: it parses, every variable it
    // names (the passwords) is in the task's environment, and the TLS files
    // load.
    let output = std::process::Command::new("nats-server")
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&prepared.env)
        .output()
        .expect("nats-server must be installed for the tests");
    assert!(
        output.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    every_key_is_required(task, &ports, &cluster, "nomad/jobs/nats", dir.path());
}

/// Each of the group's port labels, given port 0 (any free one).
fn any_ports(group: &Value) -> BTreeMap<String, u16> {
    port_labels(group)
        .into_iter()
        .map(|label| (label, 0))
        .collect()
}

/// With any one key of the variable at `path` left out, or the whole
/// variable, `task`'s templates fail, so Nomad never starts it without its
/// passwords or certificates.
fn every_key_is_required(
    task: &Value,
    ports: &BTreeMap<String, u16>,
    cluster: &crate::common::nomad::Cluster,
    path: &str,
    dir: &std::path::Path,
) {
    let keys: Vec<String> = cluster.variables[path].keys().cloned().collect();
    assert!(keys.len() >= 3, "{keys:?}");
    for key in keys {
        let mut without = cluster.clone();
        without.variables.get_mut(path).unwrap().remove(&key);
        match crate::common::nomad::prepare_task(task, ports, &without, &dir.join(&key)) {
            Err(err) => assert!(err.contains(&key), "without {key}: {err}"),
            Ok(_) => panic!("the task renders without {key}"),
        }
    }
    let mut without = cluster.clone();
    without.variables.remove(path);
    match crate::common::nomad::prepare_task(task, ports, &without, &dir.join("no-variable")) {
        Err(err) => assert!(err.contains(path), "without {path}: {err}"),
        Ok(_) => panic!("the task renders without {path}"),
    }
}

#[test]
fn the_surrealdb_job_renders_its_secrets_and_needs_every_one() {
    let file = job("surrealdb.nomad.hcl");
    let group = &file["job"]["surrealdb"]["group"]["surrealdb"];
    let task = &group["task"]["surrealdb"];
    let dir = tempfile::tempdir().unwrap();
    let items = BTreeMap::from([
        ("root_password".to_string(), "rootPassword1".to_string()),
        ("tls_cert".to_string(), "CERTIFICATE".to_string()),
        ("tls_key".to_string(), "KEY".to_string()),
    ]);
    let cluster = crate::common::nomad::Cluster {
        variables: BTreeMap::from([("nomad/jobs/surrealdb".to_string(), items)]),
        ..Default::default()
    };
    let ports = any_ports(group);
    let prepared = crate::common::nomad::prepare_task(task, &ports, &cluster, dir.path())
        .expect("the task's templates render");
    assert_eq!(prepared.env["SURREAL_PASS"], "rootPassword1");
    assert_eq!(prepared.env["SURREAL_USER"], "root");
    let key = std::fs::read_to_string(prepared.root.join("secrets/tls/server-key.pem")).unwrap();
    assert_eq!(key, "KEY");
    every_key_is_required(task, &ports, &cluster, "nomad/jobs/surrealdb", dir.path());
}
