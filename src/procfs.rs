//! Reading the process table from `/proc`: who is whose parent, which process group and
//! state each process is in, when it started, and which sockets it holds.
//!
//! Used to find a server's processes (its group, and descendants that left it), to tell
//! a recycled PID from the server a PID file named (by start time), and to find the
//! ports a server listens on.

use std::collections::HashSet;
use std::fs;

use nix::unistd::Pid;

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (zombie), ...
    pub state: char,
    /// The parent's PID.
    pub ppid: i32,
    /// The process group ID.
    pub pgid: i32,
    /// The session ID.
    pub sid: i32,
    /// When the process started, in clock ticks since boot: with the PID, an identity
    /// that a recycled PID does not share.
    pub start_ticks: u64,
}

impl Stat {
    /// Whether the process has ended (a zombie waiting to be reaped counts as ended).
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

/// Whether `pid` is stopped (by SIGSTOP, or by the terminal: state `T`), so that it
/// acts on no signal but SIGKILL until continued.
pub fn is_stopped(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state == 'T')
}

/// Reads the stat of `pid`, if it exists.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The PID namespace of `pid` (`"self"` for this process), by its inode: PIDs are
/// numbers within one (a container's), and mean other processes outside it.
pub fn pid_namespace(pid: &str) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// The first PID namespace, the host's (the kernel's `PROC_PID_INIT_INO`): from it,
/// every process of every container can be seen.
pub const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// Whether a process this one can see lives in PID namespace `namespace` (one of a
/// container's, seen from the host): `Some(true)` or `Some(false)`, or `None` when
/// some process's namespace may not be read (another user's).
pub fn namespace_in_use(namespace: u64) -> Option<bool> {
    let wanted = format!("pid:[{namespace}]");
    let mut unreadable = false;
    // PID 1 is the init of the namespace `/proc` shows, never another's, and may be
    // unreadable even to root (a virtual machine's agent).
    for pid in pids().into_iter().filter(|&pid| pid != 1) {
        match fs::read_link(format!("/proc/{pid}/ns/pid")) {
            Ok(link) if link.to_str() == Some(wanted.as_str()) => {
                return Some(true);
            }
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => unreadable = true,
            _ => {}
        }
    }
    (!unreadable).then_some(false)
}

/// Every PID in `/proc`.
pub fn pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Every process with its stat.
pub fn table() -> Vec<(i32, Stat)> {
    pids()
        .into_iter()
        .filter_map(|pid| stat(pid).map(|s| (pid, s)))
        .collect()
}

/// The living (non-zombie) members of process group `pgid`: those below this process
/// when there are any (a server's, under `run` or while `start` waits for it: all of
/// them, reloadsup being a subreaper), found without reading every process; else those
/// the whole table holds (a server `status` or `stop` looks at).
pub fn group_members(pgid: Pid) -> Vec<i32> {
    let in_group = |(pid, stat): (i32, Stat)| (stat.pgid == pgid.as_raw()).then_some(pid);
    if children_listed() {
        let below: Vec<i32> = descendants(Pid::this(), &[])
            .into_iter()
            .filter_map(in_group)
            .collect();
        if !below.is_empty() {
            return below;
        }
    }
    table()
        .into_iter()
        .filter(|(_, s)| !s.is_zombie())
        .filter_map(in_group)
        .collect()
}

/// Whether the kernel lists each thread's children (`/proc/PID/task/TID/children`,
/// `CONFIG_PROC_CHILDREN`, on in Debian's and most kernels).
fn children_listed() -> bool {
    static LISTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTED.get_or_init(|| std::path::Path::new("/proc/thread-self/children").exists())
}

/// The living descendants of `ancestor` (not `ancestor` itself), skipping the subtrees
/// of `except`. Found from the kernel's lists of children where it keeps them: reading
/// every process instead cost about 12 ms on a machine running a thousand, three times
/// a restart, which took reloadsup's restart from 12 ms to 49 ms.
pub fn descendants(ancestor: Pid, except: &[Pid]) -> Vec<(i32, Stat)> {
    if !children_listed() {
        return descendants_in_table(ancestor, except);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut parents = vec![ancestor.as_raw()];
    while let Some(parent) = parents.pop() {
        for pid in children(parent) {
            if except.iter().any(|e| e.as_raw() == pid) || !seen.insert(pid) {
                continue;
            }
            let Some(stat) = stat(pid) else {
                continue;
            };
            parents.push(pid);
            if !stat.is_zombie() {
                found.push((pid, stat));
            }
        }
    }
    found
}

/// [`descendants`], from every process's parent, for a kernel that lists no children.
fn descendants_in_table(ancestor: Pid, except: &[Pid]) -> Vec<(i32, Stat)> {
    let table = table();
    let mut found = Vec::new();
    let mut parents = vec![ancestor.as_raw()];
    while let Some(parent) = parents.pop() {
        for &(pid, stat) in &table {
            if stat.ppid != parent || except.iter().any(|e| e.as_raw() == pid) {
                continue;
            }
            parents.push(pid);
            if !stat.is_zombie() {
                found.push((pid, stat));
            }
        }
    }
    found
}

/// The inodes of the sockets that process `pid` holds open.
pub fn socket_inodes(pid: i32, into: &mut HashSet<u64>) {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    for fd in fds.flatten() {
        let Ok(target) = fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
        {
            into.insert(inode);
        }
    }
}

/// When a process started, in seconds since the Unix epoch: the boot time (`btime` in
/// `/proc/stat`) plus its start time in clock ticks.
pub fn started_at_unix(stat: &Stat) -> Option<u64> {
    let boot: u64 = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)? as u64;
    Some(boot + stat.start_ticks / ticks)
}

/// Whether `pid`'s environment holds a variable named `name` (readable for our own
/// processes only).
pub fn has_env(pid: i32, name: &str) -> bool {
    let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let prefix = format!("{name}=");
    environ
        .split(|&b| b == 0)
        .any(|entry| entry.starts_with(prefix.as_bytes()))
}

/// The signals this process ignores (`SigIgn` in `/proc/self/status`): bit `n - 1`
/// set for signal `n`.
pub fn ignored_signals() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))?;
    u64::from_str_radix(mask.trim(), 16).ok()
}

/// The descriptors `pid` holds, each with what it leads to (`/proc/PID/fd`).
fn descriptors(pid: i32) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let target = fs::read_link(entry.path()).ok()?;
            Some((entry.file_name().to_str()?.to_string(), target))
        })
        .collect()
}

/// The access mode `pid` opened descriptor `fd` with (`O_RDONLY` 0, `O_WRONLY` 1,
/// `O_RDWR` 2), from `/proc/PID/fdinfo`.
fn access_mode(pid: i32, fd: &str) -> Option<u32> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = info.lines().find_map(|line| line.strip_prefix("flags:"))?;
    u32::from_str_radix(flags.trim(), 8).ok().map(|f| f & 3)
}

/// The pipe this process's descriptor `fd` is (`pipe:[INODE]`, as `/proc` names it),
/// if it is one.
pub fn own_pipe(fd: i32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .filter(|target| is_pipe(target))
}

/// Whether a descriptor's target, as `/proc/PID/fd` names it, is a pipe.
fn is_pipe(target: &std::path::Path) -> bool {
    target.to_string_lossy().starts_with("pipe:")
}

/// The processes that read what this process writes to the descriptors `fds` through
/// a pipe (`| tee run.log`), or further down a pipeline (`| grep . | tee run.log`),
/// from the reader's standard output on; none when `fds` are no pipes. Only this
/// session's processes are looked at, as a shell's pipeline shares it: reading every
/// process's descriptors would cost a moment on a busy machine.
pub fn output_readers(fds: &[i32]) -> Vec<i32> {
    let mut pipes: Vec<std::path::PathBuf> = fds.iter().filter_map(|&fd| own_pipe(fd)).collect();
    if pipes.is_empty() {
        return Vec::new();
    }
    let me = std::process::id() as i32;
    let Some(session) = stat(me).map(|s| s.sid) else {
        return Vec::new();
    };
    let others: Vec<i32> = table()
        .into_iter()
        .filter(|(pid, stat)| *pid != me && stat.sid == session)
        .map(|(pid, _)| pid)
        .collect();
    let mut readers = Vec::new();
    // A pipeline a few programs long; each step reads the pipe the one before writes.
    for _ in 0..4 {
        let mut next = Vec::new();
        for &pid in &others {
            if readers.contains(&pid) {
                continue;
            }
            let held = descriptors(pid);
            let reads = held
                .iter()
                .any(|(fd, target)| pipes.contains(target) && access_mode(pid, fd) == Some(0));
            if !reads {
                continue;
            }
            readers.push(pid);
            next.extend(
                held.into_iter()
                    .filter(|(fd, target)| fd == "1" && is_pipe(target))
                    .map(|(_, target)| target),
            );
        }
        if next.is_empty() {
            break;
        }
        pipes = next;
    }
    readers
}

/// The children of `pid` (every thread's, from `/proc/PID/task/TID/children`).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// A regular file a process holds open for writing: its name, to pass over most paths
/// without a look at the disk, and its device and inode, which tell the very file from
/// one of the name put in its place since (a save by rename).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFile {
    /// The last part of its path when it was opened.
    pub name: std::ffi::OsString,
    /// Its device and inode numbers.
    pub id: (u64, u64),
}

/// The regular files `pid` has open for writing: one look at each descriptor's file.
pub fn files_written_by(pid: i32) -> Vec<HeldFile> {
    use std::os::unix::fs::MetadataExt;
    descriptors(pid)
        .into_iter()
        .filter(|(fd, _)| access_mode(pid, fd).is_some_and(|m| m != 0))
        .filter_map(|(fd, target)| {
            let meta = fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
            let name = target.file_name()?.to_os_string();
            meta.is_file().then(|| HeldFile {
                name,
                id: (meta.dev(), meta.ino()),
            })
        })
        .collect()
}

/// The working folder of `pid` (`/proc/PID/cwd`, readable for our own processes only).
pub fn cwd(pid: i32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Parses `/proc/PID/stat`: the command name is in parentheses and may itself contain
/// spaces and parentheses, so the fields are read after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descendants found from the kernel's lists of children are those every
    /// process's parent says: a shell, its two children, not the subtree skipped.
    #[test]
    fn descendants_by_children_lists_match_the_table() {
        let mut tree = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .expect("sh runs");
        let shell = tree.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while children(shell).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pids = |found: Vec<(i32, Stat)>| {
            let mut pids: Vec<i32> = found.into_iter().map(|(pid, _)| pid).collect();
            pids.sort_unstable();
            pids
        };
        // Below the shell alone: other tests start processes of their own meanwhile.
        let shell_pid = Pid::from_raw(shell);
        let listed = pids(descendants(shell_pid, &[]));
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed, pids(descendants_in_table(shell_pid, &[])));
        assert!(pids(descendants(Pid::this(), &[])).contains(&shell));
        let skipped = pids(descendants(shell_pid, &[Pid::from_raw(listed[0])]));
        assert_eq!(skipped, vec![listed[1]]);
        for child in children(shell) {
            let _ = nix::sys::signal::kill(Pid::from_raw(child), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = tree.kill();
        let _ = tree.wait();
    }

    #[test]
    fn stat_with_odd_command_name() {
        let line =
            "123 (a) b (c)) S 1 456 456 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgid, s.sid, s.start_ticks),
            ('S', 1, 456, 456, 98765)
        );
    }

    #[test]
    fn own_process() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("our own stat");
        assert_eq!(s.pgid, nix::unistd::getpgrp().as_raw());
        assert_eq!(Some(s.sid), nix::unistd::getsid(None).ok().map(Pid::as_raw));
        assert!(!s.is_zombie());
        assert_eq!(cwd(me), std::env::current_dir().ok());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let started = started_at_unix(&s).expect("a start time");
        assert!(started <= now && now - started < 600, "{started} vs {now}");
    }
}
