//! Status lines on stderr: `[reloadsup]`-prefixed, coloured only on a terminal (or with
//! `--color always`). `-q` silences everything but errors; `-v` adds debug lines (the raw
//! file-system events).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::ops::Bound;
use std::path::Path;
use std::sync::OnceLock;

use crate::cli::ColorChoice;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Errors only.
    Quiet,
    /// Status lines.
    Normal,
    /// Status lines and raw events.
    Verbose,
}

struct Settings {
    level: Level,
    color: bool,
    /// Colour asked for whatever the output is (`--color always`, `FORCE_COLOR`).
    forced: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the level and colour once, at start-up.
pub fn init(level: Level, color: ColorChoice) {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let (color, forced) = match color {
        ColorChoice::Always => (true, true),
        ColorChoice::Never => (false, false),
        ColorChoice::Auto => {
            let color = auto_color(std::io::stderr().is_terminal(), set);
            (color, color && auto_color(false, set))
        }
    };
    let _ = SETTINGS.set(Settings {
        level,
        color,
        forced,
    });
}

/// Colour for `--color auto`, on a terminal or not (`terminal`), from the variables
/// `set` finds set to something: `NO_COLOR` turns it off (an empty one does not, as
/// no-color.org asks), `FORCE_COLOR` or `CLICOLOR_FORCE` on (`FORCE_COLOR=0` or
/// `false` off, as Node's tools take it, and `CLICOLOR=0` off), and a `TERM=dumb`
/// terminal gets none.
fn auto_color(terminal: bool, set: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let off = |value: &std::ffi::OsString| value == "0" || value == "false";
    if set("NO_COLOR").is_some() || set("FORCE_COLOR").is_some_and(|v| off(&v)) {
        return false;
    }
    let forced = ["FORCE_COLOR", "CLICOLOR_FORCE"]
        .iter()
        .any(|name| set(name).is_some_and(|value| !off(&value)));
    let quiet =
        set("CLICOLOR").is_some_and(|v| v == "0") || set("TERM").is_some_and(|term| term == "dumb");
    forced || (terminal && !quiet)
}

/// Whether a server whose output reloadsup relays is told to colour its own (see
/// `supervisor::spawn`): when status lines are coloured and the server's stdout, which
/// goes to reloadsup's, is a terminal too, or colour is asked for whatever the output
/// (`run > server.log` on a terminal got the codes of cargo's and Node's colours).
pub fn colour_relayed() -> bool {
    let s = settings();
    s.color && (s.forced || std::io::stdout().is_terminal())
}

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings {
        level: Level::Normal,
        color: false,
        forced: false,
    })
}

fn emit(min: Level, colour: &str, label: &str, message: &dyn Display) {
    let s = settings();
    if s.level < min {
        return;
    }
    let text = message.to_string();
    let message = escape_controls(&text);
    let line = if s.color {
        format!("\x1b[36m[reloadsup]\x1b[0m {colour}{label}{message}\x1b[0m\n")
    } else {
        format!("[reloadsup] {label}{message}\n")
    };
    crate::console::status(&line);
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`): a status line stays
/// one line, and a file name (or a server's error) cannot move the cursor or recolour
/// the terminal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Writes a command's output (`check`, `status`) to stdout. A reader that went away
/// (`reloadsup check | head`) is not an error: the output simply ends there.
pub fn stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes lines to stderr as they are (no prefix), ignoring a closed stderr.
pub fn stderr_raw(text: &str) {
    crate::console::status(text);
}

/// A normal status line.
pub fn info(message: impl Display) {
    emit(Level::Normal, "", "", &message);
}

/// A status line about something that went right and matters (a server started).
pub fn good(message: impl Display) {
    emit(Level::Normal, "\x1b[32m", "", &message);
}

/// Something the user should look at; the work goes on.
pub fn warn(message: impl Display) {
    emit(Level::Normal, "\x1b[33m", "warning: ", &message);
}

/// A failure; printed even with `-q`.
pub fn error(message: impl Display) {
    emit(Level::Quiet, "\x1b[31m", "error: ", &message);
}

/// Detail for `-v`.
pub fn debug(message: impl Display) {
    emit(Level::Verbose, "\x1b[2m", "", &message);
}

/// At most this many changed paths are named in a status line.
const PATHS_SHOWN: usize = 3;

/// Paths for a status line: `a.py, b.py, c.py (+4 more)`. A folder that went is named
/// by the files it took, not beside them: `sub/a.py, sub/b.py`, not `sub, sub/a.py, …`.
pub fn summary(paths: &[String]) -> String {
    let sorted: std::collections::BTreeSet<&Path> = paths.iter().map(Path::new).collect();
    let holds_another = |path: &Path| {
        sorted
            .range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|next| next.starts_with(path))
    };
    let named: Vec<&String> = paths
        .iter()
        .filter(|path| !holds_another(Path::new(path)))
        .collect();
    let mut text = named
        .iter()
        .take(PATHS_SHOWN)
        .map(|path| path.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if named.len() > PATHS_SHOWN {
        text.push_str(&format!(" (+{} more)", named.len() - PATHS_SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_folder_that_went_is_named_by_its_files() {
        let paths = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            super::summary(&paths(&["sub", "sub/a.py", "sub/b.py"])),
            "sub/a.py, sub/b.py"
        );
        assert_eq!(
            super::summary(&paths(&[
                "app.py",
                "sub",
                "sub/x/a.py",
                "subway.py",
                "z",
                "y"
            ])),
            "app.py, sub/x/a.py, subway.py (+2 more)"
        );
        assert_eq!(super::summary(&paths(&["gone"])), "gone");
    }

    #[test]
    fn auto_colour_follows_the_usual_variables() {
        let with = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, v)| *n == name && !v.is_empty())
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(auto_color(true, with(&[])));
        assert!(!auto_color(false, with(&[])));
        assert!(!auto_color(true, with(&[("NO_COLOR", "1")])));
        assert!(
            auto_color(true, with(&[("NO_COLOR", "")])),
            "empty: not set"
        );
        assert!(auto_color(false, with(&[("FORCE_COLOR", "1")])));
        assert!(auto_color(false, with(&[("CLICOLOR_FORCE", "1")])));
        assert!(!auto_color(false, with(&[("FORCE_COLOR", "0")])));
        assert!(
            !auto_color(true, with(&[("FORCE_COLOR", "0")])),
            "0 turns it off"
        );
        assert!(!auto_color(true, with(&[("CLICOLOR", "0")])));
        assert!(auto_color(
            false,
            with(&[("CLICOLOR_FORCE", "1"), ("CLICOLOR", "0")])
        ));
        assert!(!auto_color(true, with(&[("TERM", "dumb")])));
        assert!(!auto_color(
            false,
            with(&[("FORCE_COLOR", "1"), ("NO_COLOR", "1")])
        ));
    }

    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("changed: a.py"), "changed: a.py");
        assert_eq!(escape_controls("changed: a\nb.py"), "changed: a\\nb.py");
        assert_eq!(escape_controls("x\u{1b}[2Jy"), "x\\u{1b}[2Jy");
    }
}
