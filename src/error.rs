//! The one error type of the program, and the exit code each kind of error maps to.
//!
//! Only start-up failures and explicit command failures become an `Error`; failures
//! while supervising (a server that crashes, a command that cannot be started) are
//! reported as status lines and the loop goes on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a runtime failure: a server that did not start, a stop that failed.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code for a usage or task-file error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code after SIGINT (Ctrl-C), as shells expect (128 + 2).
pub const EXIT_SIGINT: i32 = 130;

/// Everything that can end a command early.
#[derive(Debug)]
pub enum Error {
    /// A problem in the task file, located by file and (when known) line.
    TaskFile {
        file: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A bad combination of flags or a missing task file.
    Usage(String),
    /// A failure while doing the work: the message says what could not be done.
    Runtime(String),
    /// An I/O failure, with what was being done when it happened.
    Io { context: String, source: io::Error },
}

impl Error {
    /// A task-file error at a known line.
    pub fn task_file(file: &Path, line: Option<usize>, message: impl Into<String>) -> Error {
        Error::TaskFile {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An I/O error with context, e.g. ``io("cannot read `reload.toml`", err)``.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code this error maps to (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::TaskFile { .. } | Error::Usage(_) => EXIT_USAGE,
            Error::Runtime(_) | Error::Io { .. } => EXIT_RUNTIME,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TaskFile {
                file,
                line: Some(line),
                message,
            } => write!(f, "{}:{line}: {}", file.display(), shortened(message)),
            Error::TaskFile {
                file,
                line: None,
                message,
            } => write!(f, "{}: {}", file.display(), shortened(message)),
            Error::Usage(message) => f.write_str(&shortened(message)),
            Error::Runtime(message) => f.write_str(&shortened(message)),
            Error::Io { context, source } => write!(f, "{}: {source}", shortened(context)),
        }
    }
}

impl std::error::Error for Error {}

/// The most characters of one quoted value (between backticks) an error line shows: a
/// megabyte of value in a task file made a megabyte of line.
const QUOTED_MAX: usize = 200;

/// The most characters of an error line, past the cutting of quoted values (a long value
/// quoted otherwise, by the TOML reader in double quotes, or a long path in an error
/// of the system's): the line keeps its start and its end, which names the key.
const LINE_MAX: usize = 600;

/// How much of its end a line cut to [`LINE_MAX`] keeps.
const LINE_END_KEPT: usize = 150;

/// `message` with each quoted value (between backticks) longer than [`QUOTED_MAX`]
/// characters cut short, ending in `…`; then, if still longer than [`LINE_MAX`], its
/// middle cut out.
fn shortened(message: &str) -> String {
    let quoted_cut = message
        .split('`')
        .enumerate()
        .map(|(i, part)| match part.char_indices().nth(QUOTED_MAX) {
            Some((cut, _)) if i % 2 == 1 => format!("{}…", &part[..cut]),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("`");
    let length = quoted_cut.chars().count();
    if length <= LINE_MAX {
        return quoted_cut;
    }
    let head: String = quoted_cut.chars().take(LINE_MAX - LINE_END_KEPT).collect();
    let tail: String = quoted_cut.chars().skip(length - LINE_END_KEPT).collect();
    format!("{head}…{tail}")
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_short_lines_kept() {
        let value = "x".repeat(1000);
        assert_eq!(
            shortened(&format!("bad glob `{value}` in `watch.file_dep`")),
            format!("bad glob `{}…` in `watch.file_dep`", &value[..200])
        );
        // A value in double quotes (a quote inside it too): the line keeps its start and
        // the key at its end.
        let line = shortened(&format!(
            "invalid type: string \"a\\\"{value}\", expected a table, for `server.env`"
        ));
        assert!(line.chars().count() <= LINE_MAX + 1, "{line}");
        assert!(line.starts_with("invalid type: string \"a"), "{line}");
        assert!(
            line.ends_with("\", expected a table, for `server.env`"),
            "{line}"
        );
        // A short line with a stray double quote is left whole.
        let short = "`/tmp/q\"xx/reload.toml` is in use by `/tmp/q\"xx/a.toml` (pid 7)";
        assert_eq!(shortened(short), short);
    }
}
