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
//! and `untrack`; a path goes as the hex digits of its bytes, so that any path a
//! folder may have (not UTF-8, a newline in it) comes through as it is (shown as text,
//! a Latin-1 folder's became another path, and its files were left behind).

use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction, signal};
use nix::unistd::Pid;

use super::group;
use crate::control::state::{self, Ident};
use crate::{pidfile, procfs};

/// The supervisor's end of the guard.
pub struct Guard {
    child: Child,
    stdin: ChildStdin,
}

impl Guard {
    /// Starts the guard: this same binary, run as `reloadsup __guard`.
    pub fn spawn() -> io::Result<Guard> {
        // A process group of its own: a signal to reloadsup's whole group (`kill -9
        // -PGID`, `timeout -k`, Ctrl-\\ on the terminal) must not take the guard with
        // it, or nothing would be left to stop the server.
        let mut child = Command::new("/proc/self/exe")
            .arg("__guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
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
    pub fn clear_state(&self, pid_file: &Path) {
        self.say(&format!("state {}\n", hex_path(pid_file)));
    }

    /// Protects group `pgid` (and its PID file) from now on.
    pub fn track(&self, pgid: Pid, pid_file: Option<&Path>) {
        self.say(&match pid_file {
            Some(path) => format!("track {pgid} {}\n", hex_path(path)),
            None => format!("track {pgid}\n"),
        });
    }

    /// Stops protecting: the group is gone.
    pub fn untrack(&self) {
        self.say("untrack\n");
    }

    /// The build step that named itself (`step PID`, see [`tell_from_child`]) has ended.
    pub fn step_done(&self) {
        self.say("step-done\n");
    }

    fn say(&self, line: &str) {
        let _ = (&self.stdin).write_all(line.as_bytes());
    }
}

/// The guard's own main: read until end-of-file, then kill what is tracked.
pub fn main() -> i32 {
    // The guard must outlive the supervisor's graceful stop, whatever is signalled
    // (it has a group of its own, but a `kill` may name it); in a background group it
    // must not be stopped for touching the terminal (`stty tostop`) either.
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGTTOU,
        Signal::SIGTTIN,
    ] {
        // SAFETY: SIG_IGN installs no handler code, so nothing can run concurrently.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Taken now, while the parent is the supervisor (after its death it is init).
    let supervisor = Ident::of(std::os::unix::process::parent_id() as i32);
    let mut tracked: Option<(Pid, Option<PathBuf>)> = None;
    let mut state_of: Option<PathBuf> = None;
    let mut step: Option<(i32, u64)> = None;
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("track"), Some(pgid), file) => {
                if let Ok(pgid) = pgid.parse::<i32>() {
                    tracked = Some((Pid::from_raw(pgid), file.and_then(path_of_hex)));
                }
            }
            (Some("untrack"), _, _) => tracked = None,
            (Some("step"), Some(pid), _) => {
                // Read now, while the step runs: its group and when it started.
                step = pid
                    .parse()
                    .ok()
                    .and_then(procfs::stat)
                    .map(|stat| (stat.pgid, stat.start_ticks));
            }
            (Some("step-done"), _, _) => step = None,
            (Some("state"), Some(file), _) => state_of = path_of_hex(file),
            _ => {}
        }
    }
    if let Some((pgid, pid_file)) = tracked {
        group::signal_group(pgid, Signal::SIGKILL);
        if let Some(path) = pid_file {
            let _ = pidfile::remove_if_ours(&path, pgid.as_raw());
        }
    }
    if let Some((pgid, since)) = step {
        kill_step(pgid, since);
    }
    if let (Some(pid_file), Some(supervisor)) = (state_of, supervisor) {
        forget_supervisor(&pid_file, supervisor);
    }
    0
}

/// A path as the hex digits of its bytes (see the module's lines).
fn hex_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The path [`hex_path`] wrote; `None` for anything else.
fn path_of_hex(hex: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    if hex.is_empty() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Kills what a build step left running: the processes of its group (the supervisor's
/// own, which a step stays in so it can use the terminal) started since it did; not the
/// guard itself, nor what the group held before (a `tee` the supervisor's output goes
/// to).
fn kill_step(pgid: i32, since: u64) {
    let me = std::process::id() as i32;
    for (pid, stat) in procfs::table() {
        if stat.pgid == pgid && stat.start_ticks >= since && pid != me {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Says `PREFIX PID` on the guard's pipe `fd`, from a child between fork and exec, so the
/// guard knows the child before it runs anything: `track` for a server (its group),
/// `step` for a build step. Async-signal-safe: a few system calls (getpid, sigaction,
/// write) and no allocation; the line is put together on the stack, and written whole
/// (it is shorter than `PIPE_BUF`).
pub fn tell_from_child(fd: RawFd, prefix: &[u8]) -> io::Result<()> {
    let mut line = [0u8; 32];
    let len = pid_line(prefix, nix::unistd::getpid().as_raw(), &mut line);
    // SAFETY: `fd` is the guard's pipe, open in this process until its exec.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    // A guard that has died (its end closed) must not kill the child with SIGPIPE: the
    // server starts unguarded, as it would without a guard. SIGPIPE is ignored for the
    // write only, and put back as the command expects it.
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_IGN runs no handler code; the old action is put back.
    let old = unsafe { sigaction(Signal::SIGPIPE, &ignore) }.map_err(io::Error::from)?;
    let _ = nix::unistd::write(fd, &line[..len]);
    // SAFETY: as above.
    unsafe { sigaction(Signal::SIGPIPE, &old) }.map_err(io::Error::from)?;
    Ok(())
}

/// Writes `PREFIX PID\n` into `buf` without allocating; returns its length. `prefix`
/// ends with its space and is at most 16 bytes.
fn pid_line(prefix: &[u8], pid: i32, buf: &mut [u8; 32]) -> usize {
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 12];
    let mut n = pid.unsigned_abs();
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut len = prefix.len();
    for &digit in digits[..count].iter().rev() {
        buf[len] = digit;
        len += 1;
    }
    buf[len] = b'\n';
    len + 1
}

/// Removes the state file beside `pid_file` if it still names `supervisor`, once that
/// is dead, and the temporary files of writes its death cut short; under the lock, so
/// a `start` or `run` that has taken over keeps its own.
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
    // A folder gone (the project's, moved or deleted) holds nothing to clear, and
    // taking the lock would make it again, empty, in the project's place.
    if !pid_file.parent().is_some_and(Path::is_dir) {
        return;
    }
    let Ok(_lock) = state::lock(pid_file) else {
        return;
    };
    let recorded = state::read(pid_file).supervisor;
    if recorded.is_some_and(|other| other != supervisor && other.is_alive()) {
        // Another `run` took over: its files, its writes.
        return;
    }
    if recorded == Some(supervisor) {
        let _ = state::remove(pid_file);
    }
    // Writes the supervisor's death cut short (a PID file is synced before its
    // rename): under the lock, and with no other `run` recorded, no one else is
    // writing these names now.
    let _ = std::fs::remove_file(pidfile::temp_path(pid_file));
    let _ = std::fs::remove_file(pidfile::temp_path(&state::state_path(pid_file)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_lines_are_written_without_allocating() {
        let mut buf = [0u8; 32];
        for pid in [1, 42, 4_194_304, i32::MAX] {
            let len = pid_line(b"track ", pid, &mut buf);
            assert_eq!(&buf[..len], format!("track {pid}\n").as_bytes());
        }
    }

    #[test]
    fn any_path_goes_through_as_it_is() {
        use std::os::unix::ffi::OsStrExt;
        for bytes in [&b"/tmp/lat\xe9/reloadsup.pid"[..], b"/a b/new\nline", b"/"] {
            let path = Path::new(std::ffi::OsStr::from_bytes(bytes));
            let hex = hex_path(path);
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
            assert_eq!(path_of_hex(&hex).as_deref(), Some(path));
        }
        for bad in ["", "abc", "zz", "/tmp/x"] {
            assert_eq!(path_of_hex(bad), None, "{bad}");
        }
    }
}
