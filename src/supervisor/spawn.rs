//! Starting the server: its own process group, tied to the supervisor's life.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use crate::config::{CommandSpec, Server};

/// Starts `spec`'s command with `changed` (newline-separated) in `RELOADSUP_CHANGED`.
/// Returns the leader's PID, which is also the process group ID.
///
/// Must be called from the thread that lives as long as the supervisor (the main
/// thread): `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits.
pub fn spawn(spec: &Server, changed: &str) -> io::Result<Pid> {
    let mut command = match &spec.command {
        CommandSpec::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(line);
            c
        }
        CommandSpec::Exec(args) => {
            let mut c = Command::new(&args[0]);
            c.args(&args[1..]);
            c
        }
    };
    command
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env("RELOADSUP_CHANGED", changed)
        // A server in a background process group that reads the terminal would be
        // stopped by SIGTTIN; it gets no terminal input.
        .stdin(Stdio::null())
        .process_group(0);
    let supervisor = getpid();
    // SAFETY: the closure runs between fork and exec and only makes two system calls
    // (prctl, getppid), both async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The supervisor may have died before the prctl took effect.
            if getppid() != supervisor {
                return Err(io::Error::other("the supervisor is gone"));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The child is reaped by the supervisor's SIGCHLD handling, not through `Child`.
    Ok(Pid::from_raw(child.id() as i32))
}
