//! Starting the server: its own process group, tied to the supervisor's life — or, for
//! `reloadsup start`, its own session, detached, with its output in the log file.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use super::output::Relay;
use super::pipes::{self, Streams};
use crate::config::{CommandSpec, Server};

/// How the server's life and output are tied to reloadsup.
pub enum Mode {
    /// `reloadsup run`: a process group of its own, killed if the supervisor dies;
    /// output on the terminal, or relayed line by line through `relay`.
    Supervised { relay: Option<Relay> },
    /// `reloadsup start`: a session of its own that outlives the command, with stdout
    /// and stderr appended to `log`.
    Detached { log: File },
}

/// A started server.
pub struct Spawned {
    /// The leader's PID, which is also the process group ID.
    pub pid: Pid,
    /// Set once a relayed output line matched the readiness regex.
    pub ready_flag: Option<Arc<AtomicBool>>,
}

/// Starts `spec`'s command with `changed` (newline-separated) in `RELOADSUP_CHANGED`.
///
/// In supervised mode this must be called from the thread that lives as long as the
/// supervisor (the main thread): `PR_SET_PDEATHSIG` fires when the *thread* that forked
/// the child exits.
pub fn spawn(spec: &Server, changed: &str, mode: Mode) -> io::Result<Spawned> {
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
        .stdin(Stdio::null());
    let relayed = match mode {
        Mode::Supervised { relay } => {
            command.process_group(0);
            tie_to_supervisor(&mut command);
            match relay {
                Some(relay) => Some((relay, pipe_output(&mut command, spec)?)),
                None => None,
            }
        }
        Mode::Detached { log } => {
            command.stdout(log.try_clone()?).stderr(log);
            // SAFETY: `setsid` is async-signal-safe and allocates nothing.
            unsafe {
                command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
            }
            None
        }
    };
    let child = command.spawn()?;
    // The command holds copies of the pipes' write ends: the relay sees the end of the
    // output only once they are closed along with the server's.
    drop(command);
    let pid = Pid::from_raw(child.id() as i32);
    let ready_flag = relayed.and_then(|(relay, streams)| {
        relay.start(streams);
        relay.regex.is_some().then_some(relay.matched)
    });
    // The child is reaped through `waitpid`, not through `Child`.
    Ok(Spawned { pid, ready_flag })
}

/// Gives the server pipes for stdout and stderr (see [`pipes`]), and returns the ends
/// the relay reads.
fn pipe_output(command: &mut Command, spec: &Server) -> io::Result<Streams> {
    let (ends, streams) = pipes::open()?;
    command.stdout(ends.stdout).stderr(ends.stderr);
    unbuffer_python(command, spec);
    Ok(streams)
}

/// Sets `PYTHONUNBUFFERED=1` unless the environment or the task file sets it. Python
/// buffers its output in 8 KiB blocks when it goes to a pipe, as it does when reloadsup
/// relays it: a `ready = { log }` line would not be seen until the block filled, and
/// a crash's last log lines would come after its traceback (they are flushed at exit).
/// On a terminal, where the server writes when reloadsup does not relay, Python
/// flushes every line.
fn unbuffer_python(command: &mut Command, spec: &Server) {
    const NAME: &str = "PYTHONUNBUFFERED";
    let set = std::env::var_os(NAME).is_some() || spec.env.iter().any(|(k, _)| k == NAME);
    if !set {
        command.env(NAME, "1");
    }
}

/// Kills the child if the supervisor dies first.
fn tie_to_supervisor(command: &mut Command) {
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
}
