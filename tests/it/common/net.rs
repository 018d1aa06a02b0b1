//! Ports and TLS: free loopback ports, waiting for a listener, and
//! certificates made with openssl.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free TCP port on loopback (free when asked; bind it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Waits up to ten seconds until something listens on `port` on loopback.
pub fn wait_for_port(port: u16) {
    wait_for_port_on("127.0.0.1", port);
}

/// Waits up to ten seconds until something listens on `host:port`.
pub fn wait_for_port_on(host: &str, port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect((host, port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl,
/// in `<dir>/tls`: for NATS nodes (clients and routes) and SurrealDB.
pub fn make_certificates(dir: &Path) -> mediajet::nats_server::TlsFiles {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .output()
            .expect("openssl must be installed for the tests");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca-key.pem", "-out", "ca.pem"],
        &["-days", "2", "-subj", "/CN=mediajet test CA"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &["-keyout", "server-key.pem", "-out", "server.csr"],
        &["-subj", "/CN=localhost"],
    ]
    .concat());
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    mediajet::nats_server::TlsFiles {
        cert: tls.join("server.pem"),
        key: tls.join("server-key.pem"),
        ca: tls.join("ca.pem"),
    }
}

/// Messages in a JetStream stream.
pub async fn stream_messages(nats_url: &str, stream: &str) -> u64 {
    let nats = async_nats::connect(nats_url).await.unwrap();
    let mut stream = async_nats::jetstream::new(nats)
        .get_stream(stream)
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

/// A job request over NATS (`mediajet.jobs.submit`) with `token`, and the
/// reply's JSON.
pub async fn submit_over_nats(nats: &async_nats::Client, token: &str, request: &Value) -> Value {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Authorization", format!("Bearer {token}").as_str());
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        nats.request_with_headers(
            mediajet::wire::subject::SUBMIT,
            headers,
            request.to_string().into(),
        ),
    )
    .await
    .expect("Ingest answers within 10 s")
    .expect("a reply");
    serde_json::from_slice(&reply.payload).unwrap()
}
