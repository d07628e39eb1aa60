//! The server's processes: its process group, and any descendant that left the group.
//!
//! The server runs as the leader of its own process group, so one `kill(-pgid)` reaches
//! the shell, the real server the shell started, and their workers alike. A process that
//! calls `setsid` (a daemonizing server) leaves the group; because the supervisor is a
//! *child subreaper*, such a process is re-parented to it rather than to init when its
//! parent dies, so it stays findable as a descendant of the supervisor and is stopped
//! with the rest.

use std::collections::HashMap;
use std::fs;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

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
/// of `except` (the supervisor's own helpers). Read from `/proc`.
pub fn escaped_descendants(ancestor: Pid, pgid: Pid, except: &[Pid]) -> Vec<Pid> {
    let table = process_table();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (&pid, info) in &table {
        children.entry(info.ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut stack = vec![ancestor.as_raw()];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if except.iter().any(|e| e.as_raw() == child) {
                continue;
            }
            stack.push(child);
            let info = &table[&child];
            if info.pgid != pgid.as_raw() && info.state != 'Z' {
                found.push(Pid::from_raw(child));
            }
        }
    }
    found
}

struct ProcInfo {
    ppid: i32,
    pgid: i32,
    state: char,
}

fn process_table() -> HashMap<i32, ProcInfo> {
    let mut table = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(info) = fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
        {
            table.insert(pid, info);
        }
    }
    table
}

/// Parses `/proc/PID/stat`: the command name is in parentheses and may itself contain
/// spaces and parentheses, so the fields are read after the last `)`.
fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcInfo { ppid, pgid, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let info = parse_stat("123 (a) b (c)) S 1 456 456 0 -1").unwrap();
        assert_eq!((info.state, info.ppid, info.pgid), ('S', 1, 456));
    }
}
