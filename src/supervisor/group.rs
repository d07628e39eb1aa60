//! The server's processes: its process group, and any descendant that left the group.
//!
//! The server runs as the leader of its own process group, so one `kill(-pgid)` reaches
//! the shell, the real server the shell started, and their workers alike. A process that
//! calls `setsid` (a daemonizing server) leaves the group; because the supervisor is a
//! *child subreaper*, such a process is re-parented to it rather than to init when its
//! parent dies, so it stays findable as a descendant of the supervisor and is stopped
//! with the rest.

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::procfs;

/// Sends `signal` to the whole group `pgid`. A group already gone is not an error.
pub fn signal_group(pgid: Pid, signal: Signal) {
    let _ = killpg(pgid, signal);
}

/// Whether any process of group `pgid` is still alive (zombies that are ours are reaped
/// first by the caller; a group with only a zombie left whose parent is not us counts as
/// alive until that parent reaps it).
pub fn group_alive(pgid: Pid) -> bool {
    !matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// Sends SIGCONT to the stopped processes of group `pgid` and of `others`.
pub fn continue_stopped(pgid: Pid, others: &[Pid]) {
    let members = procfs::group_members(pgid).into_iter().map(Pid::from_raw);
    for pid in members.chain(others.iter().copied()) {
        if procfs::is_stopped(pid.as_raw()) {
            let _ = kill(pid, Signal::SIGCONT);
        }
    }
}

/// Sends `signal` to each of `pids`.
pub fn signal_each(pids: &[Pid], signal: Signal) {
    for &pid in pids {
        let _ = kill(pid, signal);
    }
}

/// Reaps every child that has ended, returning each PID and how it ended.
pub fn reap_all() -> Vec<(Pid, WaitStatus)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    reaped.push((pid, status));
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    reaped
}

/// The living descendants of `ancestor` that are not in group `pgid` and not below any
/// of `except` (the supervisor's own helpers), nor in the supervisor's own group: what
/// is there is not the server's but a build step's background job (`npx tailwindcss
/// --watch &`) or a browser `xdg-open` started, re-parented to the supervisor when its
/// parent ended; stopped with the server, such a job died at the first restart.
pub fn escaped_descendants(ancestor: Pid, pgid: Pid, except: &[Pid]) -> Vec<Pid> {
    let own = nix::unistd::getpgrp().as_raw();
    procfs::descendants(ancestor, except)
        .into_iter()
        .filter(|(_, stat)| stat.pgid != pgid.as_raw() && stat.pgid != own)
        .map(|(pid, _)| Pid::from_raw(pid))
        .collect()
}
