//! Mail: the outbox mediajet writes without SMTP, and a real SMTP server
//! (aiosmtpd) for the tests that deliver.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::wait_for_port;

/// The emails in `<data_dir>/outbox`, waiting up to ten seconds for `expected`.
pub async fn read_outbox(data_dir: &Path, expected: usize) -> Vec<String> {
    read_outbox_within(data_dir, expected, Duration::from_secs(10)).await
}

/// The same, waiting up to `patience`.
pub async fn read_outbox_within(
    data_dir: &Path,
    expected: usize,
    patience: Duration,
) -> Vec<String> {
    outbox_files(data_dir, expected, patience)
        .await
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .collect()
}

/// The email files in `<data_dir>/outbox`, waiting up to `patience` for
/// `expected` of them.
async fn outbox_files(data_dir: &Path, expected: usize, patience: Duration) -> Vec<PathBuf> {
    let dir = data_dir.join("outbox");
    let started = Instant::now();
    loop {
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|path| path.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if files.len() >= expected || started.elapsed() > patience {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many of `mails` mention `id` (quoted-printable soft line breaks undone).
pub fn mails_about(mails: &[String], id: &str) -> usize {
    mails
        .iter()
        .filter(|m| m.replace("=\r\n", "").replace("=\n", "").contains(id))
        .count()
}

/// The emails in `<data_dir>/outbox` as Python's `email` package reads
/// them (`tests/mail/read.py`: headers, text and HTML parts decoded, the
/// links of the text), waiting up to ten seconds for `expected`.
pub async fn read_outbox_parsed(data_dir: &Path, expected: usize) -> Vec<serde_json::Value> {
    let files = outbox_files(data_dir, expected, Duration::from_secs(10)).await;
    files.iter().map(|path| parse_mail(path)).collect()
}

/// One email file as `tests/mail/read.py` reads it.
pub fn parse_mail(path: &Path) -> serde_json::Value {
    super::python_json("mail/read.py", &[path.as_os_str()])
}

/// A real SMTP server (aiosmtpd) delivering into `<dir>/mail` (a maildir);
/// stopped when dropped, pass or fail.
pub struct SmtpServer(std::process::Child);

impl SmtpServer {
    pub fn start(port: u16, dir: &Path) -> SmtpServer {
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("mail"))
            .args(["-l", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd must be installed for the tests");
        let server = SmtpServer(child);
        wait_for_port(port);
        server
    }

    /// The mails delivered into `<dir>/mail` so far.
    pub fn mails(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir.join("mail/new"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|mail| mail.replace("=\r\n", "").replace("=\n", ""))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
