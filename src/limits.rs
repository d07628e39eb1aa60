//! The open-file limit. reloadsup holds a descriptor for every browser socket and
//! proxied connection (two, with the dev server's side), and the usual soft limit of
//! 1024 was reached by about a thousand open tabs or idle connections: the next restart
//! then failed with "Too many open files" and the dev server stayed down. So reloadsup
//! raises its own soft limit to the hard one (at most [`MOST`]), as Go programs do,
//! and gives every process it starts the limit it was given itself: a server that
//! still uses `select()` breaks above 1024.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The most the soft limit is raised to.
const MOST: u64 = 65_536;

/// The limits reloadsup was started with (soft, hard), once [`raise`] has read them.
static GIVEN: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft open-file limit to the hard one (at most [`MOST`]). Failing to
/// read or raise it changes nothing.
pub fn raise() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let _ = GIVEN.set((soft, hard));
    let wanted = hard.min(MOST);
    if wanted > soft {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted, hard);
    }
}

/// The soft open-file limit in force now.
pub fn open_files() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Gives the process `command` starts the open-file limit reloadsup was given.
pub fn as_given(command: &mut Command) {
    let Some(&(soft, hard)) = GIVEN.get() else {
        return;
    };
    // SAFETY: `setrlimit` is a system call: async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
            Ok(())
        });
    }
}
