//! A `mediajet run` process, started as an operator (or Nomad) would start
//! it: its own data dir, its log kept there, and its HTTP address read from
//! the line it prints once it is up.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::Api;

pub struct MediajetProcess {
    pub child: Child,
    pub api: Api,
    pub data_dir: PathBuf,
}

impl MediajetProcess {
    /// The `mediajet` binary, to be given its arguments and environment.
    pub fn command() -> Command {
        Command::new(env!("CARGO_BIN_EXE_mediajet"))
    }

    /// Starts `command` with its log in `<data_dir>/mediajet.log` and waits
    /// up to a minute for it to be up; `name` names it in a failure.
    pub async fn start(mut command: Command, data_dir: &Path, name: &str) -> MediajetProcess {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = std::fs::File::create(data_dir.join("mediajet.log")).expect("log file");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("run mediajet");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let up = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{name} did not start: {}", log_of(data_dir)));
        let up = up.ok().flatten().unwrap_or_default();
        let Some(base) = up.strip_prefix("mediajet is up: ") else {
            panic!("{name} did not start: {}", log_of(data_dir));
        };
        MediajetProcess {
            child,
            api: Api::new(base),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("running") as i32;
        // SAFETY: kill(2) on a child we own has no memory effects.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        log_of(&self.data_dir)
    }
}

fn log_of(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("mediajet.log")).unwrap_or_default()
}
