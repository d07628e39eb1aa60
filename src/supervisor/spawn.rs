//! Starting the server: its own process group, tied to the supervisor's life — or, for
//! `reloadsup start`, its own session, detached, with its output in the log file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};
use regex::Regex;

use crate::config::{CommandSpec, Server};

/// How the server's life and output are tied to reloadsup.
pub enum Mode {
    /// `reloadsup run`: a process group of its own, killed if the supervisor dies;
    /// output on the terminal, or relayed line by line when `relay` watches it for
    /// the readiness regex.
    Supervised { relay: Option<Regex> },
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
    let relay = match mode {
        Mode::Supervised { relay } => {
            command.process_group(0);
            tie_to_supervisor(&mut command);
            if relay.is_some() {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            relay
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
    let mut child = command.spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    let ready_flag = relay.map(|regex| {
        let flag = Arc::new(AtomicBool::new(false));
        let regex = Arc::new(regex);
        if let Some(out) = child.stdout.take() {
            relay_lines(out, io::stdout(), Arc::clone(&regex), Arc::clone(&flag));
        }
        if let Some(err) = child.stderr.take() {
            relay_lines(err, io::stderr(), regex, Arc::clone(&flag));
        }
        flag
    });
    // The child is reaped through `waitpid`, not through `Child`.
    Ok(Spawned { pid, ready_flag })
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

/// Copies `from` to `to` line by line, setting `flag` at the first line matching `regex`.
fn relay_lines(
    from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    regex: Arc<Regex>,
    flag: Arc<AtomicBool>,
) {
    let spawned = thread::Builder::new().name("relay".into()).spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            let _ = to.write_all(&line);
            let _ = to.flush();
            if !flag.load(Ordering::Relaxed) && regex.is_match(&String::from_utf8_lossy(&line)) {
                flag.store(true, Ordering::Release);
            }
            line.clear();
        }
    });
    if let Err(err) = spawned {
        crate::report::warn(format!("cannot relay the server's output: {err}"));
    }
}
