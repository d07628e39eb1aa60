//! The files reloadsup writes and deletes beside the server — the PID file, its state
//! (`PIDFILE.json`) and lock (`PIDFILE.lock`) files, and the log `start` appends to —
//! must not be files of the user's. A `pid_file` naming `app.py`, `package` (whose state
//! file is `package.json`) or the task file itself would have it overwritten, then
//! deleted when the server ends; a `log_file` naming the task file would fill it with
//! the server's output. Such a setting is refused when the task file is read.

use std::path::{Path, PathBuf};

use crate::control::state;

/// Which setting is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    /// `server.pid_file` (or `--pid-file`).
    PidFile,
    /// `server.log_file`.
    LogFile,
    /// The two, naming one file: the one the user wrote is at fault.
    Both,
}

/// The most bytes a file reloadsup wrote may hold: a PID file holds a number, a state
/// file a few records (with the server's command, which a shell takes up to 128 KiB).
const OWN_FILE_MAX: u64 = 1024 * 1024;

/// Refuses a PID file or log file that would overwrite the task file, each other, or
/// a file of the user's; the error names the setting at fault and why.
pub fn check(
    pid_file: Option<&Path>,
    log_file: &Path,
    task_file: Option<&Path>,
) -> Result<(), (Culprit, String)> {
    if task_file.is_some_and(|task| same_file(task, log_file)) {
        return Err((
            Culprit::LogFile,
            format!(
                "`{}` is the task file: the server's output would be written into it",
                log_file.display()
            ),
        ));
    }
    if let Some(why) = no_log(log_file) {
        return Err((Culprit::LogFile, why));
    }
    let Some(pid_file) = pid_file else {
        return Ok(());
    };
    if let Some(file) = through_file(pid_file) {
        return Err((
            Culprit::PidFile,
            format!("`{}` is a file, not a folder", file.display()),
        ));
    }
    for (own, what) in beside(pid_file) {
        if task_file.is_some_and(|task| same_file(task, &own)) {
            return Err((
                Culprit::PidFile,
                format!(
                    "its {what} `{}` is the task file, which reloadsup would overwrite and delete",
                    own.display()
                ),
            ));
        }
        if same_file(&own, log_file) {
            let whose = if what == "PID file" {
                String::new()
            } else {
                "PID file's ".to_string()
            };
            return Err((
                Culprit::Both,
                format!(
                    "the log file `{}` is also the {whose}{what}, which reloadsup \
                     overwrites and deletes: name two files",
                    own.display()
                ),
            ));
        }
        // A folder at a temporary name only makes the write fail (and `start` stops
        // its server then): it holds nothing reloadsup would overwrite.
        if is_folder(&own) && !what.starts_with("temporary") {
            return Err((
                Culprit::PidFile,
                format!(
                    "its {what} `{}` is a folder: name a file of its own",
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

/// Whether `a` and `b` are one file: the same path, or, when both exist, the same file
/// reached by two paths (a symbolic link to the task file).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether `path` is a folder (through links): nothing reloadsup could write there,
/// and a start that found out only then would leave its lock file behind.
fn is_folder(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether a path as the user wrote it names a folder (`run/`, made or not): checked
/// before the path is normalized, which drops the slash (a file named `run` was
/// written, with `run.json` and `run.lock` beside it).
pub fn written_as_folder(written: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    written.as_os_str().as_bytes().ends_with(b"/")
}

/// Why `log_file` cannot take the server's output, if it cannot: a folder, a path
/// through a file, or something that is no file to append to (a FIFO would hold `start`
/// up until a reader came). Anything under `/dev` or `/proc` is taken as named on
/// purpose (`/dev/null`, `/dev/stdout` on a pipe).
fn no_log(log_file: &Path) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(file) = through_file(log_file) {
        return Some(format!("`{}` is a file, not a folder", file.display()));
    }
    if log_file.starts_with("/dev") || log_file.starts_with("/proc") {
        // A stream named on purpose (`/dev/stdout` is a pipe under CI, `| tee`, docker
        // or systemd): the user's choice, whatever it is now.
        return None;
    }
    let kind = std::fs::metadata(log_file).ok()?.file_type();
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        return None;
    };
    Some(format!(
        "`{}` is {what}: name a file for the server's output",
        log_file.display()
    ))
}

/// The nearest existing folder above `path` that is no folder but a file, if there is
/// one (`app.py` of `app.py/x.pid`): nothing can be made below it.
fn through_file(path: &Path) -> Option<PathBuf> {
    let above = path.ancestors().skip(1).find(|a| a.exists())?;
    (!above.is_dir()).then(|| above.to_path_buf())
}

/// The PID file and the files kept beside it, each with what it is.
fn beside(pid_file: &Path) -> [(PathBuf, &'static str); 5] {
    let state = state::state_path(pid_file);
    [
        (pid_file.to_path_buf(), "PID file"),
        (crate::pidfile::temp_path(pid_file), "temporary PID file"),
        (crate::pidfile::temp_path(&state), "temporary state file"),
        (state, "state file"),
        (state::lock_path(pid_file), "lock file"),
    ]
}

/// Why the existing file at `path` cannot be reloadsup's own `what`, if it cannot:
/// something large, empty (reloadsup writes its files whole, by renaming), or content
/// reloadsup never writes there. A symbolic link is no danger: writing replaces the
/// link, and removing removes the link (a folder is refused before this is asked).
fn foreign(path: &Path, what: &str) -> Option<String> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if metadata.is_symlink() || (metadata.is_dir() && what.starts_with("temporary")) {
        return None;
    }
    if !metadata.is_file() || metadata.len() > OWN_FILE_MAX {
        return Some("exists and is not one reloadsup wrote".into());
    }
    // A file of the default name is one made for reloadsup, whatever it holds: empty
    // (`touch`), or damaged (edited by hand, a disk that filled); refusing it left a
    // started server that `stop` would not stop.
    let default_name = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(super::DEFAULT_PID_FILE));
    if default_name {
        return None;
    }
    let text = std::fs::read(path).ok()?;
    // A temporary file is cut short when a write is (a full disk, a kill).
    let may_be_empty = what == "lock file" || what.starts_with("temporary");
    if text.is_empty() && !may_be_empty {
        return Some("exists and is empty (reloadsup writes it whole)".into());
    }
    let ours = match what {
        _ if text.is_empty() => true,
        "PID file" | "temporary PID file" => is_pid_text(&text),
        "state file" => is_state_text(&text),
        "temporary state file" => is_state_text(&text) || is_state_start(&text),
        _ => false,
    };
    (!ours).then(|| "exists and holds something else".into())
}

/// A PID file's content: a decimal number a process ID can be, and a newline (or
/// blanks around it, as another writer may leave them).
fn is_pid_text(text: &[u8]) -> bool {
    let text = text.trim_ascii();
    !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(text).is_ok_and(|t| t.parse::<i32>().is_ok())
}

/// The start of a state file as reloadsup writes it (`{` and its first key,
/// `"supervisor"`), which a write cut short (a kill, a full disk) leaves in the
/// temporary file.
fn is_state_start(text: &[u8]) -> bool {
    const FIRST: &[u8] = b"\"supervisor\"";
    let Some(rest) = text.trim_ascii_start().strip_prefix(b"{") else {
        return false;
    };
    let rest = rest.trim_ascii_start();
    let n = rest.len().min(FIRST.len());
    rest[..n] == FIRST[..n]
}

/// A state file's content: a JSON object with reloadsup's two records, whatever else a
/// newer reloadsup adds.
fn is_state_text(text: &[u8]) -> bool {
    if text.trim_ascii().is_empty() {
        return true;
    }
    match serde_json::from_slice::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => {
            fields.contains_key("supervisor") && fields.contains_key("server")
        }
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
        std::fs::write(dir.join("__init__.py"), "").unwrap();
        std::os::unix::fs::symlink(&task, dir.join("alias.toml")).unwrap();
        let refused = |pid: &str| check(Some(&dir.join(pid)), &log, Some(&task)).unwrap_err();
        assert_eq!(refused("reload.toml").0, Culprit::PidFile);
        assert!(refused("app.py").1.contains("holds something else"));
        assert!(refused("package").1.contains("state file"));
        assert!(refused("__init__.py").1.contains("is empty"));
        let (culprit, _) = check(
            Some(&dir.join("x.pid")),
            &dir.join("alias.toml"),
            Some(&task),
        )
        .unwrap_err();
        assert_eq!(culprit, Culprit::LogFile, "the task file through a link");
        let (culprit, why) = check(Some(&dir.join("x.pid")), &task, Some(&task)).unwrap_err();
        assert_eq!(culprit, Culprit::LogFile);
        assert!(why.contains("is the task file"), "{why}");
        let (culprit, why) = check(Some(&log), &log, Some(&task)).unwrap_err();
        assert_eq!(culprit, Culprit::Both);
        assert!(why.contains("is also the PID file, which"), "{why}");
        let state = dir.join("x.pid.json");
        let (_, why) = check(Some(&dir.join("x.pid")), &state, Some(&task)).unwrap_err();
        assert!(why.contains("is also the PID file's state file"), "{why}");
        std::fs::create_dir(dir.join("run")).unwrap();
        let (culprit, why) = check(Some(&dir.join("run")), &log, Some(&task)).unwrap_err();
        assert_eq!(culprit, Culprit::PidFile);
        assert!(
            why.contains("PID file") && why.contains("is a folder"),
            "{why}"
        );
        assert!(written_as_folder(Path::new("new/")));
        assert!(!written_as_folder(Path::new("new/app.pid")));
        let (culprit, why) = check(Some(&dir.join("x.pid")), &dir.join("run"), None).unwrap_err();
        assert_eq!(culprit, Culprit::LogFile);
        assert!(why.contains("is a folder"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn its_own_files_pass() {
        let dir = folder();
        let pid = dir.join("reloadsup.pid");
        let log = dir.join("reloadsup.log");
        assert_eq!(check(Some(&pid), &log, None), Ok(()), "none there yet");
        // Writes a kill cut short: the temporary files hold the start of what is written.
        std::fs::write(
            dir.join(".reloadsup.pid.json.tmp"),
            "{\n  \"supervisor\": {\"pi",
        )
        .unwrap();
        std::fs::write(dir.join(".reloadsup.pid.tmp"), "12").unwrap();
        assert_eq!(check(Some(&pid), &log, None), Ok(()), "cut-short writes");
        std::fs::write(dir.join(".reloadsup.pid.json.tmp"), "{\"name\": 1}").unwrap();
        assert!(
            check(Some(&pid), &log, None).is_err(),
            "another JSON is not ours"
        );
        std::fs::remove_file(dir.join(".reloadsup.pid.json.tmp")).unwrap();
        std::fs::write(&pid, "12345\n").unwrap();
        std::fs::write(
            dir.join("reloadsup.pid.json"),
            "{\"supervisor\": null, \"server\": {\"command\": \"x\"}, \"added\": 1}",
        )
        .unwrap();
        std::fs::write(dir.join("reloadsup.pid.lock"), "").unwrap();
        assert_eq!(check(Some(&pid), &log, None), Ok(()));
        std::fs::remove_file(&pid).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &pid).unwrap();
        assert_eq!(check(Some(&pid), &log, None), Ok(()), "a link is replaced");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
