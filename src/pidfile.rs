//! The PID file: the server group leader's PID, decimal, on one line.
//!
//! It is written when the server starts, atomically (a temp file beside it, then a
//! rename), so a reader never sees a half-written number; and it is removed when the
//! server ends, but only while it still names that server, so a PID file written since
//! by someone else is never removed by mistake.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temp file used for the atomic write: `.NAME.tmp` in the same folder (a rename is
/// only atomic within one file system).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `pid` to `path` atomically, making its folder if needed (a `run/` that a
/// `make clean` removed). Called as a server starts, which happens only while the
/// project's folder is there: made again, a folder gone with the project would stand
/// in the project's place.
pub fn write(path: &Path, pid: i32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = temp_path(path);
    let mut file = fs::File::create(&temp)?;
    writeln!(file, "{pid}")?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// The PID in `path`, if it holds one.
pub fn read(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A PID file larger than this is no damaged PID file of ours (see [`remove_if_ours`]).
const DAMAGED_MAX: u64 = 4096;

/// Removes `path` if it still names `pid`, or names no process at all (a PID file
/// edited by hand or cut short while the server ran: left behind, it said "holds
/// something else" to the next start). One naming another process is kept. A missing
/// file is not an error.
pub fn remove_if_ours(path: &Path, pid: i32) -> io::Result<()> {
    let small = fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= DAMAGED_MAX);
    let text = if small { fs::read(path).ok() } else { None };
    let names = |text: &[u8]| std::str::from_utf8(text).ok()?.trim().parse::<i32>().ok();
    let ours = text
        .as_deref()
        .is_some_and(|text| names(text).is_none_or(|named| named == pid || named <= 0));
    if ours {
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove() {
        let dir = std::env::temp_dir().join(format!("reloadsup-pid-{}", std::process::id()));
        let path = dir.join("sub/app.pid");
        write(&path, 4242).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242\n");
        assert!(!temp_path(&path).exists());
        remove_if_ours(&path, 1).unwrap();
        assert!(path.exists(), "a PID file naming another process stays");
        remove_if_ours(&path, 4242).unwrap();
        assert!(!path.exists());
        remove_if_ours(&path, 4242).unwrap();
        for damaged in ["abc\n", "", "-1\n", "12 34\n", "99999999999999999999\n"] {
            fs::write(&path, damaged).unwrap();
            remove_if_ours(&path, 4242).unwrap();
            assert!(!path.exists(), "a PID file holding {damaged:?} is removed");
        }
        // A folder where the PID file should be: the write fails, leaving no temp file.
        fs::create_dir_all(path.join("x")).unwrap();
        assert!(write(&path, 4242).is_err());
        assert!(!temp_path(&path).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
