//! The command line, as clap types, and clap's errors as one status line. Nothing here
//! is interpreted: `config::resolve` turns these raw flags and the task file into one
//! `Config`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A file-change process supervisor with browser live reload.
#[derive(Debug, Parser)]
#[command(name = "reloadsup", version, about, propagate_version = true)]
pub struct Cli {
    /// The task file; default: `reload.toml` here or in the nearest parent folder
    /// (`serve` reads none).
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Print no status lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Also print every raw file-system event, and each path ignored.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// When to colour status lines.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// Whether status lines are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Supervise in the foreground: start the server, restart it when watched files
    /// change; Ctrl-C stops everything.
    Run(RunArgs),
    /// Start the server in the background; exit 0 only once it is ready.
    Start,
    /// Stop the server (or the running supervisor and its server).
    Stop,
    /// Stop if running, then start; beside a running `run`, ask it to restart.
    Restart,
    /// Print whether the server runs and its PID; exit 3 when it does not.
    Status {
        /// Print one JSON object (running, pid, supervisor_pid, started_at, uptime_secs,
        /// command, ready).
        #[arg(long)]
        json: bool,
    },
    /// Serve a folder as a static site with live reload; reads no task file (`-f` is
    /// refused).
    Serve {
        /// The folder to serve (default: the current folder).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The address to listen on (default: 127.0.0.1:5000, or the next free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Open the site in the default browser (`xdg-open`).
        #[arg(long)]
        open: bool,
    },
    /// Write a commented `reload.toml` in the current folder, or FILE with `-f` (never
    /// overwrites).
    Init,
    /// Validate the task file and list the files each glob matches.
    Check {
        /// List every file each glob matches (by default the first 20, then a count).
        #[arg(long)]
        all: bool,
    },
    /// Internal: the watchdog that kills the server if the supervisor dies.
    #[command(name = "__guard", hide = true)]
    Guard,
}

/// Flags of `reloadsup run`; each overrides the task file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch files matching GLOB (replaces `watch.file_dep`); repeatable.
    #[arg(
        short = 'w',
        long = "watch",
        value_name = "GLOB",
        help_heading = "Watching"
    )]
    pub watch: Vec<String>,

    /// Ignore files matching GLOB (replaces `watch.ignore`); repeatable.
    #[arg(
        short = 'i',
        long = "ignore",
        value_name = "GLOB",
        help_heading = "Watching"
    )]
    pub ignore: Vec<String>,

    /// Poll every DURATION (e.g. `500ms`) instead of using inotify.
    #[arg(long, value_name = "DURATION", help_heading = "Watching")]
    pub poll: Option<String>,

    /// Signal that asks the server to stop (name or number).
    #[arg(long, value_name = "SIGNAL", help_heading = "Server")]
    pub stop_signal: Option<String>,

    /// Grace period after the stop signal before SIGKILL (e.g. `5s`).
    #[arg(long, value_name = "DURATION", help_heading = "Server")]
    pub stop_timeout: Option<String>,

    /// Where to write the server's PID (default: `reloadsup.pid` beside the task file;
    /// none in ad-hoc mode).
    #[arg(long, value_name = "PATH", help_heading = "Server")]
    pub pid_file: Option<PathBuf>,

    /// Do not serve browser reloads on the LiveReload port.
    #[arg(long, help_heading = "Browser", conflicts_with = "reload_port")]
    pub no_reload: bool,

    /// Serve browser reloads on PORT instead of 35729 (sets `reload.port`; 0 picks a
    /// free one, which the start-up line names).
    #[arg(long, value_name = "PORT", help_heading = "Browser")]
    pub reload_port: Option<u16>,

    /// Reload browsers when files matching GLOB change, with no restart: a stylesheet
    /// or image is swapped in place, anything else reloads the page (replaces
    /// `reload.assets`); repeatable.
    #[arg(
        long = "asset",
        visible_alias = "assets",
        value_name = "GLOB",
        help_heading = "Browser"
    )]
    pub assets: Vec<String>,

    /// Serve a proxy to the dev server at ADDR (`host:port`, e.g. `127.0.0.1:5000`),
    /// injecting the reload script (sets `proxy.listen`; needs `--upstream` unless the
    /// task file has one).
    #[arg(long, value_name = "ADDR", help_heading = "Browser")]
    pub proxy: Option<String>,

    /// The dev server's address behind the proxy, e.g. `127.0.0.1:8000` (sets
    /// `proxy.upstream`).
    #[arg(long, value_name = "ADDR", help_heading = "Browser")]
    pub upstream: Option<String>,

    /// The server command; one argument is run by `sh -c`, several are exec'd directly.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// A clap usage error as one line, like every other error: the problem, clap's tips and
/// the possible values in brackets, and where to read more (`reloadsup run --help`, for
/// the first of `args` that names a command). clap's own rendering spreads it over up
/// to eight lines with the usage.
pub fn one_line(err: &clap::Error, args: &[String]) -> String {
    let text = err.render().to_string();
    let mut lines = text.lines();
    let mut problem = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    if err.kind() == clap::error::ErrorKind::InvalidUtf8 {
        // clap says "one or more arguments"; `args` shows the bytes that are no UTF-8
        // as U+FFFD, so the one at fault can be named.
        if let Some(arg) = args.iter().find(|arg| arg.contains('\u{FFFD}')) {
            problem = format!(
                "the argument `{}` is not UTF-8 (its other bytes shown as \u{FFFD}), \
                 and reloadsup takes its arguments, the command's too, in UTF-8",
                arg.escape_debug()
            );
        }
    }
    let mut notes = Vec::new();
    let commands = <Cli as clap::CommandFactory>::command();
    let name = args
        .iter()
        .find(|arg| commands.find_subcommand(arg.as_str()).is_some());
    let command = match name {
        Some(name) => format!("reloadsup {name}"),
        None => "reloadsup".to_string(),
    };
    let peer = peer_hint(err, name.is_some_and(|name| name == "serve"));
    if let Some(hint) = peer {
        // In place of clap's tips, which suggest a flag of a similar name that does
        // something else (`--files` → `--file`, the task file).
        notes.push(hint.to_string());
    }
    for line in lines.map(str::trim) {
        if let Some(tip) = line.strip_prefix("tip: ").filter(|_| peer.is_none()) {
            notes.push(tip.to_string());
        } else if let Some(values) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            notes.push(without_internal(values));
        }
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    format!("{problem}{notes}; see `{command} --help`")
}

/// The flags of the tools users come from (nodemon, watchexec, air, browser-sync) that
/// reloadsup has no flag of that name for, each with what to use instead: under
/// `serve`, which watches all of its folder and listens where `--listen` says, the
/// second hint when there is one.
const PEER_FLAGS: &[(&[&str], &str, Option<&str>)] = &[
    (
        &["-e", "--ext", "--exts", "--extensions", "--include"],
        "watch with `-w GLOB`, repeatable, naming extensions in the glob: \
         `-w '**/*.{py,html}'` (in a task file, `watch.file_dep`)",
        Some("`serve DIR` watches all of DIR"),
    ),
    (
        &["--files"],
        "browser-sync's `--files` is `--asset GLOB`, repeatable: a change reloads the \
         pages, or swaps a stylesheet, with no restart (`-w GLOB` restarts the server)",
        Some("`serve DIR` watches all of DIR"),
    ),
    (
        &["-d", "--delay", "--debounce"],
        "there is no delay to set: a save settles in 5 ms, and a burst of changes \
         (a checkout) is one restart",
        None,
    ),
    (
        &["-s", "--signal"],
        "`run --stop-signal SIGNAL`, or `server.stop_signal` in a task file",
        None,
    ),
    (
        &["--kill-delay", "--grace"],
        "`run --stop-timeout DURATION`, or `server.stop_timeout` in a task file",
        None,
    ),
    (
        &["-r", "--restart"],
        "`run` restarts the server at each change; nothing to ask for",
        None,
    ),
    (
        &["-x", "--exec", "--cmd"],
        "give the command after `--`: `reloadsup run -w GLOB -- COMMAND ARGS`",
        None,
    ),
    (
        &["--shell"],
        "one argument after `--` runs with `sh -c`; several run as they are",
        None,
    ),
    (
        &["-c", "--config"],
        "`-f FILE` names the task file (there is no option to clear the screen)",
        None,
    ),
    (
        &["--clear", "--postpone"],
        "no such option: the server starts at once, and the screen is left as it is",
        None,
    ),
    (
        &["-p", "--port"],
        "the reload port is `--reload-port PORT` (`reload.port` in a task file)",
        Some("`--listen ADDR` sets where the site listens: `--listen 127.0.0.1:8080`"),
    ),
    (
        &["--server", "--serveStatic", "--ss"],
        "`reloadsup serve DIR` serves a folder, or `[serve] root` in a task file",
        None,
    ),
];

/// What to use instead of an unknown flag that another tool has, if it is one;
/// `serve`: the command is `reloadsup serve`.
fn peer_hint(err: &clap::Error, serve: bool) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue};
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--ext=py` and `-epy` name the flag too.
    let flag = arg.split('=').next().unwrap_or(arg);
    PEER_FLAGS.iter().find_map(|(flags, hint, for_serve)| {
        flags
            .iter()
            .any(|f| *f == flag || (f.len() == 2 && flag.starts_with(f) && !flag.starts_with("--")))
            .then_some(if serve {
                for_serve.unwrap_or(hint)
            } else {
                hint
            })
    })
}

/// clap's list of values without the internal `__guard` command.
fn without_internal(values: &str) -> String {
    match values.split_once(": ") {
        Some((what, list)) => {
            let shown: Vec<&str> = list.split(", ").filter(|v| !v.starts_with("__")).collect();
            format!("{what}: {}", shown.join(", "))
        }
        None => values.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(args: &[&str]) -> String {
        let err = Cli::try_parse_from(std::iter::once("reloadsup").chain(args.iter().copied()))
            .expect_err("a usage error");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        one_line(&err, &args)
    }

    #[test]
    fn no_reload_and_a_reload_port_contradict_each_other() {
        // The port was ignored without a word.
        assert!(
            error_of(&["run", "--no-reload", "--reload-port", "35730"]).starts_with(
                "the argument '--no-reload' cannot be used with '--reload-port <PORT>'"
            ),
            "{}",
            error_of(&["run", "--no-reload", "--reload-port", "35730"])
        );
    }

    #[test]
    fn usage_errors_are_one_line_with_their_tips() {
        assert_eq!(
            error_of(&["status", "--jsn"]),
            "unexpected argument '--jsn' found (a similar argument exists: '--json'); \
             see `reloadsup status --help`"
        );
        assert_eq!(
            error_of(&["--color", "sometimes", "run"]),
            "invalid value 'sometimes' for '--color <COLOR>' \
             (possible values: auto, always, never); see `reloadsup run --help`"
        );
        assert_eq!(
            error_of(&["run", "--proxy"]),
            "a value is required for '--proxy <ADDR>' but none was supplied; \
             see `reloadsup run --help`"
        );
        assert_eq!(
            error_of(&["-q"]),
            "'reloadsup' requires a subcommand but one was not provided (subcommands: run, \
             start, stop, restart, status, serve, init, check, help); see `reloadsup --help`"
        );
        assert_eq!(
            error_of(&["rn"]),
            "unrecognized subcommand 'rn'; see `reloadsup --help`"
        );
        let err = Cli::try_parse_from([
            std::ffi::OsStr::new("reloadsup"),
            "run".as_ref(),
            "-w".as_ref(),
            std::os::unix::ffi::OsStrExt::from_bytes(b"src/\xff*.py"),
        ])
        .expect_err("a usage error");
        let args = ["run".to_string(), "-w".into(), "src/\u{FFFD}*.py".into()];
        assert_eq!(
            one_line(&err, &args),
            "the argument `src/\u{FFFD}*.py` is not UTF-8 (its other bytes shown as \u{FFFD}), \
             and reloadsup takes its arguments, the command's too, in UTF-8; \
             see `reloadsup run --help`"
        );
        // Another tool's flag: what to use instead, without clap's tips (which pointed
        // `--files` at `--file`, the task file, and offered `-- --files`).
        assert_eq!(
            error_of(&["serve", "--files", "public/**"]),
            "unexpected argument '--files' found (`serve DIR` watches all of DIR); see \
             `reloadsup serve --help`"
        );
        assert!(error_of(&["run", "--files", "a/**"]).contains("`--files` is `--asset GLOB`"));
        assert!(error_of(&["run", "--ext", "py"]).contains("watch with `-w GLOB`"));
        assert!(error_of(&["serve", "-p", "8080"]).contains("`--listen ADDR`"));
        assert!(error_of(&["run", "-p", "8080"]).contains("`--reload-port PORT`"));
        assert!(error_of(&["run", "-c", "air.toml"]).contains("`-f FILE` names the task file"));
        assert!(error_of(&["--config", "x", "run"]).contains("`-f FILE` names the task file"));
        assert!(
            error_of(&["run", "-e", "py,html", "--", "x"])
                .contains("naming extensions in the glob: `-w '**/*.{py,html}'`"),
        );
        assert!(error_of(&["run", "--ext=py"]).contains("`-w '**/*.{py,html}'`"));
        assert!(error_of(&["run", "--delay", "1"]).contains("there is no delay to set"));
        assert!(error_of(&["run", "--clear"]).contains("no such option"));
        for args in [&["run", "--wach"][..], &["serve", "a", "b"], &["run", "-w"]] {
            assert!(!error_of(args).contains('\n'), "{args:?}");
        }
    }
}
