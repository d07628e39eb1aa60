//! `reloadsup init`: writes a commented `reload.toml` into the current folder (or the
//! file `-f` names), and never overwrites one that exists.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::config::TASK_FILE_NAME;
use crate::error::{EXIT_OK, Error, Result};
use crate::report;

/// The file `init` writes: every key, commented.
const TEMPLATE: &str = include_str!("init_template.toml");

/// Writes `file` (relative to `dir`), or `reload.toml` in `dir`.
pub fn run(dir: &Path, file: Option<&Path>) -> Result<i32> {
    let path = dir.join(file.unwrap_or(Path::new(TASK_FILE_NAME)));
    let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            return Err(Error::Runtime(format!(
                "`{}` already exists; not overwriting it",
                path.display()
            )));
        }
        Err(err) => {
            return Err(Error::io(
                format!("cannot create `{}`", path.display()),
                err,
            ));
        }
    };
    file.write_all(TEMPLATE.as_bytes())
        .map_err(|err| Error::io(format!("cannot write `{}`", path.display()), err))?;
    report::info(format!(
        "wrote `{}`; edit `server.command` and `watch.file_dep`, then `reloadsup run`",
        path.display()
    ));
    Ok(EXIT_OK)
}
