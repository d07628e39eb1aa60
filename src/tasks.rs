//! `[[task]]` build steps: shell lines run in the task file's folder, in order, when the
//! task's own `file_dep` changes (and once at start-up, so outputs are fresh before the
//! server first starts). A failing step is reported and stops that task; supervising
//! goes on.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::config::Task;
use crate::report;

/// Runs every action of `task`; returns whether all succeeded.
pub fn run(task: &Task, root: &Path) -> bool {
    let began = Instant::now();
    for action in &task.actions {
        report::info(format!("task `{}`: {action}", task.name));
        let status = Command::new("sh")
            .arg("-c")
            .arg(action)
            .current_dir(root)
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
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
