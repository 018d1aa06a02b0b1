//! The Nomad jobs in `nomad/` parse as HCL and keep the promises the code
//! relies on: one group per actor running the right actors, a kill timeout
//! that covers the transcoders' drain, health checks, secrets only from
//! Nomad Variables, and service discovery everywhere. (No Nomad agent runs
//! here; `nomad job validate` checks the rest where one does.)

use serde_json::Value;

fn job(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("nomad")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read the job file");
    hcl::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid HCL: {e}"))
}

fn seconds(duration: &Value) -> u64 {
    let text = duration.as_str().expect("a duration string");
    mediajet::config::parse_duration(text)
        .unwrap_or_else(|e| panic!("bad duration {text}: {e}"))
        .as_secs()
}

/// Every template's text in `task`, joined; `data = local.x` is looked up
/// in the file's `locals`.
fn templates_with(task: &Value, locals: &Value) -> String {
    let list = match &task["template"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    list.iter()
        .filter_map(|t| t["data"].as_str())
        .map(|data| {
            data.strip_prefix("${local.")
                .and_then(|rest| rest.strip_suffix('}'))
                .and_then(|name| locals[name].as_str())
                .unwrap_or(data)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn templates(task: &Value) -> String {
    templates_with(task, &Value::Null)
}

#[test]
fn the_mediajet_job_runs_one_group_per_actor_with_the_right_flags() {
    let file = job("mediajet.nomad.hcl");
    let groups = &file["job"]["mediajet"]["group"];
    let names: Vec<&String> = groups.as_object().expect("groups").keys().collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let drain = seconds(&file["variable"]["transcoder_drain_timeout"]["default"]);
    for actor in ["auth", "ingest", "transcoder", "mailer"] {
        let group = &groups[actor];
        let task = &group["task"][actor];
        // Nomad's kill_timeout must let the process finish its shutdown.
        let budget = mediajet::shutdown::budget(
            std::time::Duration::from_secs(drain),
            actor == "transcoder",
        );
        let kill = seconds(&task["kill_timeout"]);
        assert!(
            kill >= budget.as_secs_f64().ceil() as u64,
            "{actor}: kill_timeout {kill}s is shorter than the shutdown budget {budget:?}"
        );
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
        let secrets = templates_with(task, &file["locals"]);
        assert!(
            secrets.contains("nomadVar") && secrets.contains("MEDIAJET_NATS_PASSWORD"),
            "{actor}: NATS password not from Nomad Variables"
        );
        assert!(secrets.contains("nomadService \"nats\""), "{actor}");
        assert!(secrets.contains("MEDIAJET_REPLICAS=3"), "{actor}");
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
    assert!(text.contains("file(\"nats.conf\")"), "{text}");
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
