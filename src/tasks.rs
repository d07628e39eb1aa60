//! `[[task]]` build steps: shell lines run in the task file's folder, in order, when the
//! task's own `file_dep` changes (and once at start-up, so outputs are fresh before the
//! server first starts). A failing step is reported and stops that task; supervising
//! goes on.
//!
//! A stop signal that arrives while a step runs (Ctrl-C, a SIGTERM from docker or
//! systemd) ends the step and every process under it at once: reloadsup does not sit
//! out a long build before it stops. If reloadsup is killed, even by SIGKILL, the guard
//! kills what a step started (see `supervisor::spawn::tie_to_supervisor`). The step
//! stays in reloadsup's own process group, so in a terminal it can still prompt and set
//! terminal modes (a group of its own would be a background one there, stopped by
//! SIGTTIN at its first read), and a Ctrl-C reaches it directly.

use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::Task;
use crate::report;
use crate::supervisor::Guard;
use crate::supervisor::spawn::tie_to_supervisor;

/// How often a running step is checked for its end, or for a stop signal.
const POLL: Duration = Duration::from_millis(10);
/// How long a step may take to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Runs every action of `task`; returns whether all succeeded (not when a stop signal
/// cut it short).
pub fn run(task: &Task, root: &Path, guard: Option<&Guard>) -> bool {
    let began = Instant::now();
    for action in &task.actions {
        if crate::signals::stop_requested() {
            return false;
        }
        report::info(format!("task `{}`: {action}", task.name));
        let mut command = Command::new("sh");
        command.arg("-c").arg(action).current_dir(root);
        crate::limits::as_given(&mut command);
        if let Some(guard) = guard {
            // Its shell dies with reloadsup, and the guard kills what it started.
            tie_to_supervisor(&mut command, Some(guard.fd()), b"step ");
        }
        let status = command.spawn().and_then(wait_or_stop);
        if let Some(guard) = guard {
            guard.step_done();
        }
        match status {
            Ok(None) => {
                report::warn(format!(
                    "task `{}` stopped: reloadsup is stopping",
                    task.name
                ));
                return false;
            }
            Ok(Some(status)) if status.success() => {}
            Ok(Some(status)) => {
                report::error(format!("task `{}` failed: `{action}` {status}", task.name));
                return false;
            }
            Err(err) => {
                report::error(format!(
                    "task `{}`: cannot run `{action}`: {err}",
                    task.name
                ));
                return false;
            }
        }
    }
    report::info(format!(
        "task `{}` done in {} ms",
        task.name,
        began.elapsed().as_millis()
    ));
    true
}

/// Waits for a step to end: its status, or `None` when a stop signal came first. Then
/// the step and whatever it started are sent SIGTERM, and what is left of them SIGKILL
/// after [`STOP_GRACE`] — the shell may be gone already (a Ctrl-C reaches it first)
/// while jobs it put in the background (`a & b & wait`) live on.
fn wait_or_stop(mut child: Child) -> io::Result<Option<ExitStatus>> {
    let step = Pid::from_raw(child.id() as i32);
    let began = crate::procfs::stat(step.as_raw()).map(|s| s.start_ticks);
    loop {
        if let Some(status) = child.try_wait()? {
            if !crate::signals::stop_requested() {
                return Ok(Some(status));
            }
            break;
        }
        if crate::signals::stop_requested() {
            break;
        }
        std::thread::sleep(POLL);
    }
    signal_all(&started_by(step, began), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let _ = child.try_wait()?;
        let left = started_by(step, began);
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            signal_all(&left, Signal::SIGKILL);
            break;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.wait();
    Ok(None)
}

/// The step (while it lives) and the processes it started that still live: those under
/// it, and those re-parented to reloadsup (a child subreaper) when their parent ended,
/// in reloadsup's process group (a server has one of its own) and started since the
/// step (`began`, in clock ticks since boot).
fn started_by(step: Pid, began: Option<u64>) -> Vec<Pid> {
    let Some(began) = began else {
        return vec![step];
    };
    let group = nix::unistd::getpgrp().as_raw();
    crate::procfs::descendants(Pid::this(), &[])
        .into_iter()
        .filter(|(_, stat)| stat.pgid == group && stat.start_ticks >= began)
        .map(|(pid, _)| Pid::from_raw(pid))
        .collect()
}

/// Sends `signal` to each of `pids`.
fn signal_all(pids: &[Pid], signal: Signal) {
    for &pid in pids {
        let _ = kill(pid, signal);
    }
}
