//! File descriptors reloadsup was started with besides stdin, stdout and stderr are
//! not passed on to the processes it starts.
//!
//! A caller's descriptors reach a program through `exec` unless marked close-on-exec:
//! a test harness's pipe (bats keeps its output on descriptor 3), make's jobserver
//! pipe, a shell's `exec 7>file`. A server that held one kept it open for as long as
//! it ran: `reloadsup start 3>&1 | cat` never ended, since `cat` waited for an end of
//! file that only `stop` brought. reloadsup itself never uses such descriptors, so at
//! start-up it marks them all close-on-exec: its server, build steps and guard get the
//! three standard streams only (and what reloadsup opens for them on purpose).
//!
//! Except sockets passed on purpose: with `LISTEN_FDS=N` in the environment (systemd's
//! socket activation, as `systemfd` uses it to keep a dev server's port open across
//! restarts), descriptors 3 to 3 + N - 1 are the server's, and stay inheritable.

use std::os::fd::{BorrowedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// Marks every inherited descriptor above 2 close-on-exec. Must run before any other
/// thread starts (nothing else opens or closes a descriptor meanwhile). Best effort:
/// a descriptor it cannot mark stays as it was.
pub fn keep_inherited_to_ourselves() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<RawFd> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2 && !(3..3 + activated()).contains(&fd))
        .collect();
    // The listing's own descriptor is among them, closed by now: marking it fails
    // harmlessly.
    for fd in inherited {
        // SAFETY: only `fcntl` is called on it, which at worst fails on a descriptor
        // that is no longer open; nothing else runs that could reuse the number.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let Ok(bits) = fcntl(fd, FcntlArg::F_GETFD) else {
            continue;
        };
        let flags = FdFlag::from_bits_truncate(bits) | FdFlag::FD_CLOEXEC;
        let _ = fcntl(fd, FcntlArg::F_SETFD(flags));
    }
}

/// How many sockets socket activation passes (`LISTEN_FDS`), from descriptor 3 on.
fn activated() -> RawFd {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse::<RawFd>().ok())
        .filter(|n| (0..=1024).contains(n))
        .unwrap_or(0)
}
