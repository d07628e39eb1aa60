//! `[[task]]` build steps: shell lines run in the task file's folder, in order, when the
//! task's own `file_dep` changes (and once at start-up, so outputs are fresh before the
//! server first starts). A failing step is reported and stops that task; supervising
//! goes on.
//!
//! A stop signal that arrives while a step runs (Ctrl-C, a SIGTERM from docker or
//! systemd) ends the step and every process under it at once: reloadsup does not sit
//! out a long build before it stops. The step stays in reloadsup's own process group,
//! so in a terminal it can still prompt and set terminal modes (a group of its own
//! would be a background one there, stopped by SIGTTIN at its first read), and a Ctrl-C
//! reaches it directly.

use std::io;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::Task;
use crate::report;

/// How often a running step is checked for its end, or for a stop signal.
const POLL: Duration = Duration::from_millis(10);
/// How long a step may take to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Runs every action of `task`; returns whether all succeeded (not when a stop signal
/// cut it short).
pub fn run(task: &Task, root: &Path) -> bool {
    let began = Instant::now();
    for action in &task.actions {
        if crate::signals::stop_requested() {
            return false;
        }
        report::info(format!("task `{}`: {action}", task.name));
        let status = Command::new("sh")
            .arg("-c")
            .arg(action)
            .current_dir(root)
            .spawn()
            .and_then(wait_or_stop);
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

/// Waits for a step to end: its status, or `None` when a stop signal came first (the
/// step and its descendants are then sent SIGTERM, and SIGKILL after [`STOP_GRACE`]).
fn wait_or_stop(mut child: Child) -> io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if crate::signals::stop_requested() {
            break;
        }
        std::thread::sleep(POLL);
    }
    let step = Pid::from_raw(child.id() as i32);
    signal_tree(step, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            signal_tree(step, Signal::SIGKILL);
            child.wait()?;
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(None)
}

/// Sends `signal` to `step` and every process under it (found before any is signalled,
/// so none is missed as the tree falls apart).
fn signal_tree(step: Pid, signal: Signal) {
    let below = crate::procfs::descendants(step, &[]);
    let _ = kill(step, signal);
    for (pid, _) in below {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}
