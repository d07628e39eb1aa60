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

/// Writes `pid` to `path` atomically, creating the folder if needed.
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

/// Removes `path` if it still names `pid`. A missing file is not an error.
pub fn remove_if_ours(path: &Path, pid: i32) -> io::Result<()> {
    if read(path) == Some(pid) {
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
        // A folder where the PID file should be: the write fails, leaving no temp file.
        fs::create_dir_all(path.join("x")).unwrap();
        assert!(write(&path, 4242).is_err());
        assert!(!temp_path(&path).exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
