//! The files reloadsup writes and deletes beside the server — the PID file, its state
//! (`PIDFILE.json`) and lock (`PIDFILE.lock`) files, and the log `start` appends to —
//! must not be files of the user's. A `pid_file` naming `app.py`, `package` (whose state
//! file is `package.json`) or the task file itself would have it overwritten, then
//! deleted when the server ends; a `log_file` naming the task file would fill it with
//! the server's output. Such a setting is refused when the task file is read.

use std::path::{Path, PathBuf};

/// Which setting is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    /// `server.pid_file` (or `--pid-file`).
    PidFile,
    /// `server.log_file`.
    LogFile,
}

/// The most bytes a file reloadsup wrote may hold: a PID file holds a number, a state
/// file a few records.
const OWN_FILE_MAX: u64 = 64 * 1024;

/// Refuses a PID file or log file that would overwrite the task file, each other, or
/// a file of the user's; the error names the setting at fault and why.
pub fn check(
    pid_file: Option<&Path>,
    log_file: &Path,
    task_file: Option<&Path>,
) -> Result<(), (Culprit, String)> {
    if task_file == Some(log_file) {
        return Err((
            Culprit::LogFile,
            format!(
                "`{}` is the task file: the server's output would be written into it",
                log_file.display()
            ),
        ));
    }
    let Some(pid_file) = pid_file else {
        return Ok(());
    };
    for (own, what) in beside(pid_file) {
        let clash = if task_file == Some(own.as_path()) {
            Some("the task file")
        } else if own == log_file {
            Some("the log file (`server.log_file`)")
        } else {
            None
        };
        if let Some(clash) = clash {
            return Err((
                Culprit::PidFile,
                format!(
                    "its {what} `{}` is {clash}, which reloadsup would overwrite and delete",
                    own.display()
                ),
            ));
        }
        if let Some(why) = foreign(&own, what) {
            return Err((
                Culprit::PidFile,
                format!(
                    "its {what} `{}` {why}: reloadsup would overwrite it and delete it when \
                     the server ends; name a file of its own",
                    own.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The PID file and the files kept beside it, each with what it is.
fn beside(pid_file: &Path) -> [(PathBuf, &'static str); 3] {
    let with = |suffix: &str| {
        let mut name = pid_file.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [
        (pid_file.to_path_buf(), "PID file"),
        (with(".json"), "state file"),
        (with(".lock"), "lock file"),
    ]
}

/// Why the existing file at `path` cannot be reloadsup's own `what`, if it cannot:
/// something large, or content reloadsup never writes there.
fn foreign(path: &Path, what: &str) -> Option<String> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if metadata.is_dir() {
        // Nothing is lost: writing or removing a file there fails, and says so.
        return None;
    }
    if !metadata.is_file() || metadata.len() > OWN_FILE_MAX {
        return Some("exists and is not one reloadsup wrote".into());
    }
    let text = std::fs::read(path).ok()?;
    let ours = match what {
        "PID file" => is_pid_text(&text),
        "state file" => is_state_text(&text),
        _ => text.is_empty(),
    };
    (!ours).then(|| "exists and holds something else".into())
}

/// A PID file's content: a decimal number and a newline (or nothing, or a stale
/// number of another writer's, with blanks around it).
fn is_pid_text(text: &[u8]) -> bool {
    let text = text.trim_ascii();
    text.len() <= 20 && text.iter().all(u8::is_ascii_digit)
}

/// A state file's content: a JSON object of reloadsup's records (or nothing: a write
/// cut short).
fn is_state_text(text: &[u8]) -> bool {
    if text.trim_ascii().is_empty() {
        return true;
    }
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => fields
            .keys()
            .all(|key| crate::control::state::FIELDS.contains(&key.as_str())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "reloadsup-own-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn files_of_the_user_are_refused() {
        let dir = folder();
        let task = dir.join("reload.toml");
        let log = dir.join("reloadsup.log");
        std::fs::write(&task, "[server]\n").unwrap();
        std::fs::write(dir.join("app.py"), "print()\n").unwrap();
        std::fs::write(dir.join("package.json"), "{\"name\": \"x\"}").unwrap();
        let refused = |pid: &str| check(Some(&dir.join(pid)), &log, Some(&task)).unwrap_err();
        assert_eq!(refused("reload.toml").0, Culprit::PidFile);
        assert!(refused("app.py").1.contains("holds something else"));
        assert!(refused("package").1.contains("state file"));
        let (culprit, why) = check(Some(&dir.join("x.pid")), &task, Some(&task)).unwrap_err();
        assert_eq!(culprit, Culprit::LogFile);
        assert!(why.contains("is the task file"), "{why}");
        assert_eq!(
            check(Some(&log), &log, Some(&task)).unwrap_err().0,
            Culprit::PidFile
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn its_own_files_pass() {
        let dir = folder();
        let pid = dir.join("reloadsup.pid");
        let log = dir.join("reloadsup.log");
        assert_eq!(check(Some(&pid), &log, None), Ok(()), "none there yet");
        std::fs::write(&pid, "12345\n").unwrap();
        std::fs::write(
            dir.join("reloadsup.pid.json"),
            "{\"supervisor\": null, \"server\": {\"command\": \"x\"}}",
        )
        .unwrap();
        std::fs::write(dir.join("reloadsup.pid.lock"), "").unwrap();
        assert_eq!(check(Some(&pid), &log, None), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
