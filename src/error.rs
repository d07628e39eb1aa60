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

/// The most characters of one quoted value (between backticks, or double quotes as
/// the TOML parser quotes a value of the wrong type) an error line shows: a megabyte of
/// value in a task file made a megabyte of line.
const QUOTED_MAX: usize = 200;

/// `message` with each quoted value longer than [`QUOTED_MAX`] characters cut short,
/// ending in `…`: between backticks, then between double quotes.
fn shortened(message: &str) -> String {
    cut_quoted(&cut_quoted(message, '`'), '"')
}

/// `message` with each run between two `quote`s longer than [`QUOTED_MAX`] characters
/// cut short.
fn cut_quoted(message: &str, quote: char) -> String {
    message
        .split(quote)
        .enumerate()
        .map(|(i, part)| match part.char_indices().nth(QUOTED_MAX) {
            Some((cut, _)) if i % 2 == 1 => format!("{}…", &part[..cut]),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&quote.to_string())
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
