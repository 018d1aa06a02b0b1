//! How ffmpeg and ffprobe are started on an upload: in a process group of
//! their own, under resource limits, with an empty environment but for a
//! short allow-list (they never see NATS or admin secrets), and, where the
//! process may, in a network namespace of their own (no network at all) and
//! as an unprivileged user. Such a user could not reach the work dir, so
//! the tool gets its files already open, as `/proc/self/fd/3` (input),
//! `/proc/self/fd/4` (output) and `/proc/self/fd/5` (a cover picture).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::ffmpeg::MediaPolicy;

/// The user and group a tool runs as when mediajet runs as root: `nobody`.
pub const SANDBOX_ID: u32 = 65534;

/// Variables a tool keeps from mediajet's environment; everything else
/// (passwords, tokens, URLs) is left out.
const KEPT_VARIABLES: &[&str] = &["PATH", "TZ"];

/// Where a tool finds its input (a file, or the pipe of [`Files::piped`])
/// and its output.
pub const INPUT: &str = "file:/proc/self/fd/3";
pub const INPUT_PIPE: &str = "pipe:3";
pub const OUTPUT: &str = "file:/proc/self/fd/4";
/// Where a tool finds the picture of [`Files::with_picture`].
pub const PICTURE: &str = "file:/proc/self/fd/5";
const INPUT_FD: i32 = 3;
const OUTPUT_FD: i32 = 4;
const PICTURE_FD: i32 = 5;

/// The files one tool may touch, open before it starts. Keep them until the
/// tool has been started.
pub struct Files {
    input: OwnedFd,
    output: Option<OwnedFd>,
    picture: Option<OwnedFd>,
}

impl Files {
    /// Opens `input` to read and, if given, creates `output` to write. As
    /// root, both are handed to the sandbox user, the only one that may
    /// then use them besides root.
    pub fn open(input: &Path, output: Option<&Path>) -> std::io::Result<Files> {
        let input = std::fs::File::open(input)?;
        if is_root() {
            std::os::unix::fs::fchown(&input, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
        }
        Files::with_input(input.into(), output)
    }

    /// The read end of a pipe as the input ([`INPUT_PIPE`]): the tool reads
    /// the descriptor it inherits, which needs no permission to open.
    pub fn piped(input: std::io::PipeReader, output: Option<&Path>) -> std::io::Result<Files> {
        Files::with_input(input.into(), output)
    }

    fn with_input(input: OwnedFd, output: Option<&Path>) -> std::io::Result<Files> {
        let output = output
            .map(|path| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
            })
            .transpose()?;
        if is_root()
            && let Some(file) = &output
        {
            std::os::unix::fs::fchown(file, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
        }
        Ok(Files {
            input: above_standard_fds(input)?,
            output: output
                .map(|file| above_standard_fds(file.into()))
                .transpose()?,
            picture: None,
        })
    }

    /// Opens `picture` to read as a second input ([`PICTURE`]).
    pub fn with_picture(mut self, picture: &Path) -> std::io::Result<Files> {
        let file = std::fs::File::open(picture)?;
        if is_root() {
            std::os::unix::fs::fchown(&file, Some(SANDBOX_ID), Some(SANDBOX_ID))?;
        }
        self.picture = Some(above_standard_fds(file.into())?);
        Ok(self)
    }
}

/// A copy of `fd` numbered 10 or above (and closed on exec), so that
/// moving it to 3 or 4 in the child cannot overwrite the other one.
fn above_standard_fds(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor we own; the copy is owned by the result.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if copy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Starts `command` confined: its own process group, the policy's resource
/// limits, the kept variables only, `files` at fds 3 to 5, no network
/// where a namespace can be made, and the sandbox user when root.
pub fn confine(command: &mut std::process::Command, policy: &MediaPolicy, files: &Files) {
    let cpu_seconds = policy
        .encode_timeout
        .as_secs()
        .saturating_mul(u64::from(policy.threads.max(1)))
        .saturating_add(10);
    let limits = [
        (libc::RLIMIT_CPU, cpu_seconds),
        (libc::RLIMIT_FSIZE, policy.max_output_bytes),
        (libc::RLIMIT_AS, policy.memory_bytes),
        (libc::RLIMIT_CORE, 0),
    ];
    command.process_group(0);
    command.env_clear();
    for name in KEPT_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.env("LC_ALL", "C");
    let input = files.input.as_raw_fd();
    let output = files.output.as_ref().map(AsRawFd::as_raw_fd);
    let picture = files.picture.as_ref().map(AsRawFd::as_raw_fd);
    let root = is_root();
    // SAFETY: between fork and exec the child makes raw system calls only
    // (setrlimit, dup2, unshare, setgroups, setgid, setuid), which are
    // async-signal-safe, on values moved into the closure. The id changes
    // are raw syscalls so they touch this thread only, the child's one.
    unsafe {
        command.pre_exec(move || {
            for (resource, value) in limits {
                let limit = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::dup2(input, INPUT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(output) = output
                && libc::dup2(output, OUTPUT_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(picture) = picture
                && libc::dup2(picture, PICTURE_FD) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // No network: a namespace with nothing in it. Root may make one
            // directly; anyone else through a user namespace, where the
            // kernel allows those. Where neither works, the tool runs with
            // the host's network, still without secrets or protocols.
            let namespaces = if root {
                libc::CLONE_NEWNET
            } else {
                libc::CLONE_NEWUSER | libc::CLONE_NEWNET
            };
            let _ = libc::unshare(namespaces);
            if root {
                let id = SANDBOX_ID as libc::c_long;
                let empty: *const libc::gid_t = std::ptr::null();
                if libc::syscall(libc::SYS_setgroups, 0 as libc::c_long, empty) != 0
                    || libc::syscall(libc::SYS_setgid, id) != 0
                    || libc::syscall(libc::SYS_setuid, id) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Kills every process of the group `leader` started.
pub fn kill_group(leader: u32) {
    if let Ok(pid) = i32::try_from(leader) {
        // SAFETY: kill has no memory effects; a group that is gone yields ESRCH.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}
