//! The guard: a tiny helper process that kills the server if the supervisor dies.
//!
//! `PR_SET_PDEATHSIG` on the server's leader covers a server that is exec'd directly,
//! but when the leader is a shell that did not `exec` the real server, the shell dies
//! and the server lives on. No process can act after it is SIGKILLed, so a second
//! process does: the supervisor starts `reloadsup __guard` with a pipe on its stdin and
//! tells it, line by line, which process group to protect. When the pipe reaches
//! end-of-file (the supervisor is gone, however it died), the guard kills that group
//! with SIGKILL, removes the PID file if it still names the server, removes the state
//! file beside it if it still names the dead supervisor (so `status` and the next `run`
//! find nothing left over), and exits.
//!
//! Lines: `state PID_FILE` (once: whose state file to clear), `track PGID [PID_FILE]`
//! and `untrack`.

use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::Pid;

use super::group;
use crate::control::state::{self, Ident};
use crate::pidfile;

/// The supervisor's end of the guard.
pub struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    /// Starts the guard: this same binary, run as `reloadsup __guard`.
    pub fn spawn() -> io::Result<Guard> {
        let mut child = Command::new("/proc/self/exe")
            .arg("__guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin was piped");
        Ok(Guard { child, stdin })
    }

    /// The write end of the guard's pipe, for a child to say its group on (it is
    /// close-on-exec: the server never holds it).
    pub fn fd(&self) -> RawFd {
        self.stdin.as_raw_fd()
    }

    /// The guard's PID (so it is not mistaken for part of the server).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Clears the state file beside `pid_file` when the supervisor dies without doing so.
    pub fn clear_state(&mut self, pid_file: &Path) {
        let line = format!("state {}\n", pid_file.display());
        let _ = self.stdin.write_all(line.as_bytes());
    }

    /// Protects group `pgid` (and its PID file) from now on.
    pub fn track(&mut self, pgid: Pid, pid_file: Option<&Path>) {
        let line = match pid_file {
            Some(path) => format!("track {pgid} {}\n", path.display()),
            None => format!("track {pgid}\n"),
        };
        let _ = self.stdin.write_all(line.as_bytes());
    }

    /// Stops protecting: the group is gone.
    pub fn untrack(&mut self) {
        let _ = self.stdin.write_all(b"untrack\n");
    }
}

/// The guard's own main: read until end-of-file, then kill what is tracked.
pub fn main() -> i32 {
    // The terminal's Ctrl-C reaches the whole foreground group, the guard included; the
    // supervisor handles it, and the guard must outlive the supervisor's graceful stop.
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: SIG_IGN installs no handler code, so nothing can run concurrently.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Taken now, while the parent is the supervisor (after its death it is init).
    let supervisor = Ident::of(std::os::unix::process::parent_id() as i32);
    let mut tracked: Option<(Pid, Option<PathBuf>)> = None;
    let mut state_of: Option<PathBuf> = None;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("track"), Some(pgid), file) => {
                if let Ok(pgid) = pgid.parse::<i32>() {
                    tracked = Some((Pid::from_raw(pgid), file.map(PathBuf::from)));
                }
            }
            (Some("untrack"), _, _) => tracked = None,
            (Some("state"), Some(_), _) => {
                state_of = line.split_once(' ').map(|(_, file)| PathBuf::from(file));
            }
            _ => {}
        }
    }
    if let Some((pgid, pid_file)) = tracked {
        group::signal_group(pgid, Signal::SIGKILL);
        if let Some(path) = pid_file {
            let _ = pidfile::remove_if_ours(&path, pgid.as_raw());
        }
    }
    if let (Some(pid_file), Some(supervisor)) = (state_of, supervisor) {
        forget_supervisor(&pid_file, supervisor);
    }
    0
}

/// Removes the state file beside `pid_file` if it still names `supervisor`, once that
/// is dead; under the lock, so a `start` or `run` that has taken over keeps its own.
fn forget_supervisor(pid_file: &Path, supervisor: Ident) {
    // The pipe closes while the kernel is still tearing the process down, and a
    // supervisor that closed it on its way out removes the file itself.
    let deadline = Instant::now() + Duration::from_secs(2);
    while supervisor.is_alive() {
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Ok(_lock) = state::lock(pid_file) else {
        return;
    };
    if state::read(pid_file).supervisor == Some(supervisor) {
        state::remove(pid_file);
    }
}
