//! Starting the server: its own process group, tied to the supervisor's life — or, for
//! `reloadsup start`, its own session, detached, with its output in the log file.

use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, mpsc};

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getpid, getppid};

use super::output::Relay;
use super::pipes::{self, Streams};
use crate::config::{CommandSpec, Server};

/// How the server's life and output are tied to reloadsup.
pub enum Mode {
    /// `reloadsup run`: a process group of its own, killed if the supervisor dies;
    /// output on the terminal, or relayed line by line through `relay`. `guard` is the
    /// guard's pipe, on which the child itself says which group to protect before it
    /// runs the command (see [`tie_to_supervisor`]).
    Supervised {
        relay: Option<Relay>,
        guard: Option<RawFd>,
    },
    /// `reloadsup start`: a session of its own that outlives the command, with stdout
    /// and stderr appended to `log`.
    Detached { log: File },
}

/// A started server.
pub struct Spawned {
    /// The leader's PID, which is also the process group ID.
    pub pid: Pid,
    /// Set once a relayed output line matched the readiness regex.
    pub ready_flag: Option<Arc<AtomicBool>>,
    /// Holds relayed output back until dropped (see [`Spawned::release_output`]).
    output_gate: Option<mpsc::Sender<()>>,
}

impl Spawned {
    /// Lets relayed output through: until then (or until this is dropped) the relay
    /// holds it, so the line saying the server started comes before the server's first
    /// line, not after it.
    pub fn release_output(&mut self) {
        self.output_gate = None;
    }
}

/// The most bytes `RELOADSUP_CHANGED` holds. Linux refuses to start a program given
/// one environment string longer than 128 KiB (`MAX_ARG_STRLEN`, "Argument list too
/// long"), which a `git checkout` or `rm -rf` of a few thousand files reaches; half of
/// that leaves room for the rest of the environment.
pub const CHANGED_LIMIT: usize = 64 * 1024;

/// `changed` (newline-separated paths) cut after its last whole path that fits in
/// [`CHANGED_LIMIT`] bytes, and whether anything was cut.
pub fn cap_changed(changed: &str) -> (&str, bool) {
    if changed.len() <= CHANGED_LIMIT {
        return (changed, false);
    }
    // The newline that ends the last whole path within the limit (none: not even the
    // first path fits).
    // (Bytes, not `str`: the limit may fall inside a character; a newline never does.)
    let end = changed.as_bytes()[..=CHANGED_LIMIT]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap_or(0);
    (&changed[..end], true)
}

/// The status line for a server that could not be started: the program (the whole line
/// for a shell command), and a working folder that is missing or not a folder by its
/// key (the OS error alone, "No such file or directory", would blame the program).
pub fn start_error(spec: &Server, err: &io::Error) -> String {
    let program = match &spec.command {
        CommandSpec::Shell(line) => line.as_str(),
        CommandSpec::Exec(args) => args[0].as_str(),
    };
    match spec.cwd_problem() {
        Some(why) => format!(
            "cannot start `{program}`: its working folder `{}` (`server.cwd`) {why}",
            spec.cwd.display()
        ),
        None if err.raw_os_error() == Some(nix::libc::EMFILE) => format!(
            "cannot start `{program}`: {err}: reloadsup holds as many as it may, {} (its \
             browsers' and proxied connections count; `ulimit -n` raises the limit)",
            crate::limits::open_files()
        ),
        None => format!("cannot start `{program}`: {err}"),
    }
}

/// The script `sh -c` is given for `line`: `exec LINE` when `line` is one simple
/// command, so the server replaces the shell and is the group's leader itself. dash,
/// Debian's `sh`, stays as the parent of even a lone command: the PID file then named
/// `sh`, and a `kill $(cat reloadsup.pid)` ended the shell and left the server serving.
/// Anything else (a list, a pipeline, a leading assignment, a builtin) runs as written,
/// and so does a command whose program is not found, for `sh`'s own words about it
/// (`sh: 1: flask: not found`, where `exec` would add an `exec:` the user never wrote).
fn shell_script(line: &str, spec: &Server) -> String {
    let found = || first_word(line).is_some_and(|program| is_program(program, spec));
    match is_simple_command(line) && found() {
        true => format!("exec {line}"),
        false => line.to_string(),
    }
}

/// The first word of `line` as `sh` splits it: at spaces and tabs (a no-break space
/// copied from a web page is part of a word).
fn first_word(line: &str) -> Option<&str> {
    line.split([' ', '\t']).find(|word| !word.is_empty())
}

/// Whether `word`, as the first word of a command, names an executable file: a path
/// (from the server's folder), or a name on the `PATH` the server gets. A word the
/// shell would expand first (`$SERVER`, `~/bin/app`, a quoted or glob name) is taken
/// for none.
fn is_program(word: &str, spec: &Server) -> bool {
    let executable = |path: &std::path::Path| {
        path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if word.contains(['$', '~', '\'', '"', '\\', '*', '?', '[']) {
        return false;
    }
    if word.contains('/') {
        return executable(&spec.cwd.join(word));
    }
    let path = match spec.env.iter().rev().find(|(key, _)| key == "PATH") {
        Some((_, value)) => Some(std::ffi::OsString::from(value)),
        None => std::env::var_os("PATH"),
    };
    path.is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| executable(&spec.cwd.join(dir).join(word)))
    })
}

/// Whether `exec` can be put before `line` without changing what it does: no `;`, `&`
/// (but in a redirection, `2>&1`), `|`, parenthesis, backquote or newline outside
/// quotes, and a first word that is a program: not an assignment (`PORT=8000 node`),
/// a reserved word or a builtin that has no program behind it (`cd`, `.`, `exec`).
fn is_simple_command(line: &str) -> bool {
    let mut quote = None;
    let mut escaped = false;
    let mut previous = ' ';
    for c in line.chars() {
        if escaped {
            escaped = false;
        } else {
            match (quote, c) {
                (Some('\''), '\'') | (Some('"'), '"') => quote = None,
                (Some('\''), _) => {}
                (_, '\\') => escaped = true,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '&') if matches!(previous, '>' | '<') => {}
                (None, ';' | '&' | '|' | '(' | ')' | '`' | '\n') => return false,
                _ => {}
            }
        }
        previous = c;
    }
    let Some(first) = first_word(line) else {
        return false;
    };
    const NOT_PROGRAMS: &[&str] = &[
        "!", "{", "}", "[[", "if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
        "while", "until", "for", "in", "function", "select", "time", ".", ":", "source", "break",
        "continue", "eval", "exec", "exit", "export", "readonly", "return", "set", "shift",
        "times", "trap", "unset", "cd", "alias", "unalias", "bg", "fg", "jobs", "read", "ulimit",
        "umask", "wait", "command", "type", "getopts", "hash", "local",
        // Builtins of `sh` that are programs too, which do not always agree: `/bin/echo`
        // prints `\t` as it is, dash's `echo` a tab.
        "echo", "printf", "test", "[", "kill", "pwd", "true", "false",
    ];
    quote.is_none() && !escaped && !first.contains('=') && !NOT_PROGRAMS.contains(&first)
}

/// Starts `spec`'s command with `changed` (newline-separated) in `RELOADSUP_CHANGED`:
/// when it is longer than [`CHANGED_LIMIT`], the list ends early, at a whole path, and
/// `RELOADSUP_CHANGED_TRUNCATED=1` says so (otherwise the variable is removed, so that
/// the server never inherits one).
///
/// In supervised mode this must be called from the thread that lives as long as the
/// supervisor (the main thread): `PR_SET_PDEATHSIG` fires when the *thread* that forked
/// the child exits.
pub fn spawn(spec: &Server, changed: &str, mode: Mode) -> io::Result<Spawned> {
    let mut command = match &spec.command {
        CommandSpec::Shell(line) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(shell_script(line, spec));
            c
        }
        CommandSpec::Exec(args) => {
            let mut c = Command::new(&args[0]);
            c.args(&args[1..]);
            c
        }
    };
    let (capped, truncated) = cap_changed(changed);
    if truncated {
        command.env(TRUNCATED, "1");
    } else {
        command.env_remove(TRUNCATED);
    }
    crate::limits::as_given(&mut command);
    signals_as_default(&mut command);
    command
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env("RELOADSUP_CHANGED", capped)
        // A server in a background process group that reads the terminal would be
        // stopped by SIGTTIN; it gets no terminal input.
        .stdin(Stdio::null());
    let relayed = match mode {
        Mode::Supervised { relay, guard } => {
            command.process_group(0);
            keep_terminal_output(&mut command);
            tie_to_supervisor(&mut command, guard, b"track ");
            match relay {
                Some(relay) => Some((relay, pipe_output(&mut command, spec)?)),
                None => None,
            }
        }
        Mode::Detached { log } => {
            command.stdout(log.try_clone()?).stderr(log);
            // SAFETY: `setsid` is async-signal-safe and allocates nothing.
            unsafe {
                command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
            }
            None
        }
    };
    let child = command.spawn()?;
    // The command holds copies of the pipes' write ends: the relay sees the end of the
    // output only once they are closed along with the server's.
    drop(command);
    let pid = Pid::from_raw(child.id() as i32);
    let (output_gate, gate) = mpsc::channel();
    let ready_flag = relayed.and_then(|(relay, streams)| {
        relay.start(streams, gate);
        relay.regex.is_some().then_some(relay.matched)
    });
    // The child is reaped through `waitpid`, not through `Child`.
    Ok(Spawned {
        pid,
        ready_flag,
        output_gate: Some(output_gate),
    })
}

/// Lets a server in its own (background) process group write to the terminal and set
/// it up: with `stty tostop`, or for a program that calls `tcsetattr` on it, the
/// kernel would stop the whole group with SIGTTOU at its first line, and a stopped
/// server answers nothing. An ignored signal stays ignored across `exec`.
fn keep_terminal_output(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only installs SIG_IGN, which
    // is async-signal-safe and runs no handler code.
    unsafe {
        command.pre_exec(|| {
            nix::sys::signal::signal(Signal::SIGTTOU, nix::sys::signal::SigHandler::SigIgn)
                .map(drop)
                .map_err(io::Error::from)
        });
    }
}

/// Gives the server every signal's default action but SIGTTOU's, and none blocked (see
/// [`keep_terminal_output`]), as a service manager does. An ignored signal
/// stays ignored across `exec`, and reloadsup is often started with some ignored: SIGHUP
/// under `nohup`, SIGINT and SIGQUIT as a background job of a script (`reloadsup run &`
/// in a container's entry point, `make serve &`). A server whose `stop_signal` was one
/// of those (`QUIT`, the graceful stop of nginx, php-fpm and unicorn; `HUP`) then never
/// stopped before SIGKILL. Its own process group hears no terminal hangup in any case.
fn signals_as_default(command: &mut Command) {
    // Read before the fork: the real-time signals' range is the C library's.
    let real_time = nix::libc::SIGRTMIN()..=nix::libc::SIGRTMAX();
    // SAFETY: the closure runs between fork and exec and only installs SIG_DFL and sets
    // the signal mask, which are async-signal-safe and run no handler code.
    unsafe {
        command.pre_exec(move || {
            for signal in Signal::iterator() {
                if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGTTOU) {
                    continue;
                }
                nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl)
                    .map_err(io::Error::from)?;
            }
            for number in real_time.clone() {
                nix::libc::signal(number, nix::libc::SIG_DFL);
            }
            crate::signals::unblock_all();
            Ok(())
        });
    }
}

/// Set to `1` when `RELOADSUP_CHANGED` was cut short.
const TRUNCATED: &str = "RELOADSUP_CHANGED_TRUNCATED";

/// Gives the server pipes for stdout and stderr (see [`pipes`]), and returns the ends
/// the relay reads.
fn pipe_output(command: &mut Command, spec: &Server) -> io::Result<Streams> {
    let (ends, streams) = pipes::open()?;
    command.stdout(ends.stdout).stderr(ends.stderr);
    unbuffer_python(command, spec);
    if crate::report::colour_relayed() {
        keep_colours(command, spec);
    }
    Ok(streams)
}

/// Tells the server to colour its output although it goes to a pipe, when
/// [`crate::report::colour_relayed`] says reloadsup's output is a terminal (or colour
/// is forced): without the relay it would write to that terminal, and cargo's and rustc's errors, Node's tools (Vite,
/// chalk, picocolors) and others went plain behind a proxy. Each variable is left as
/// the environment or the task file sets it. `FORCE_COLOR` gets the colour depth the
/// terminal says it has, as Node's tools read it (1: 16 colours, 2: 256, 3: 24-bit).
fn keep_colours(command: &mut Command, spec: &Server) {
    let depth = match (std::env::var("COLORTERM"), std::env::var("TERM")) {
        (Ok(colorterm), _) if colorterm == "truecolor" || colorterm == "24bit" => "3",
        (_, Ok(term)) if term.contains("256") => "2",
        _ => "1",
    };
    for (name, value) in [
        ("CARGO_TERM_COLOR", "always"),
        ("CLICOLOR_FORCE", "1"),
        ("FORCE_COLOR", depth),
    ] {
        set_unless_given(command, spec, name, value);
    }
}

/// Sets `name` for the server unless the environment or `[server] env` sets it.
fn set_unless_given(command: &mut Command, spec: &Server, name: &str, value: &str) {
    let set = std::env::var_os(name).is_some() || spec.env.iter().any(|(k, _)| k == name);
    if !set {
        command.env(name, value);
    }
}

/// Sets `PYTHONUNBUFFERED=1` unless the environment or the task file sets it. Python
/// buffers its output in 8 KiB blocks when it goes to a pipe, as it does when reloadsup
/// relays it: a `ready = { log }` line would not be seen until the block filled, and
/// a crash's last log lines would come after its traceback (they are flushed at exit).
/// On a terminal, where the server writes when reloadsup does not relay, Python
/// flushes every line.
fn unbuffer_python(command: &mut Command, spec: &Server) {
    set_unless_given(command, spec, "PYTHONUNBUFFERED", "1");
}

/// Kills the child if the supervisor dies first: the child itself by
/// `PR_SET_PDEATHSIG`, and what it starts through the guard, which the child tells
/// about itself (`SAY PID` on the guard's pipe `guard`: `track ` for a server's group,
/// `step ` for a build step) before the command runs. Told by the supervisor after the
/// spawn instead, a SIGKILL in between (a few ms, at start-up or at any restart) left a
/// shell's children running.
pub fn tie_to_supervisor(command: &mut Command, guard: Option<RawFd>, say: &'static [u8]) {
    let supervisor = getpid();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid, and getpid and write in `tell_from_child`); it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The supervisor may have died before the prctl took effect.
            if getppid() != supervisor {
                return Err(io::Error::other("the supervisor is gone"));
            }
            if let Some(fd) = guard {
                super::guard::tell_from_child(fd, say)?;
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server spec running `command` in the temp folder, with short timeouts.
    fn spec(command: CommandSpec) -> Server {
        Server {
            command,
            cwd: std::env::temp_dir(),
            cwd_line: None,
            env: Vec::new(),
            pid_file: None,
            log_file: std::env::temp_dir().join("unused.log"),
            stop_signal: Signal::SIGTERM,
            stop_timeout: std::time::Duration::from_secs(1),
            ready: None,
            ready_line: None,
            ready_timeout: std::time::Duration::from_secs(1),
        }
    }

    /// The child names its group on the guard's pipe itself, before its command runs:
    /// a supervisor killed right after the fork leaves nothing the guard does not know.
    #[test]
    fn the_child_tells_the_guard_its_group_before_it_runs() {
        use std::io::Read;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let spec = spec(CommandSpec::Exec(vec!["true".into()]));
        let guard = Some(std::os::fd::AsRawFd::as_raw_fd(&write));
        let spawned = spawn(&spec, "", Mode::Supervised { relay: None, guard }).unwrap();
        drop(write);
        let mut said = String::new();
        std::fs::File::from(read).read_to_string(&mut said).unwrap();
        assert_eq!(said, format!("track {}\n", spawned.pid));
        let _ = nix::sys::wait::waitpid(spawned.pid, None);

        // A guard that has died (no reader): the server starts all the same, not
        // killed by SIGPIPE.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(read);
        let guard = Some(std::os::fd::AsRawFd::as_raw_fd(&write));
        let spawned = spawn(&spec, "", Mode::Supervised { relay: None, guard }).unwrap();
        let status = nix::sys::wait::waitpid(spawned.pid, None).unwrap();
        assert_eq!(status, nix::sys::wait::WaitStatus::Exited(spawned.pid, 0));
    }

    /// Out of descriptors, the error says whose limit, and how large it is ("Too many
    /// open files" alone left the server down with no word of reloadsup's own sockets).
    #[test]
    fn a_start_out_of_descriptors_names_the_limit() {
        let spec = spec(CommandSpec::Shell("python3 app.py".into()));
        let message = start_error(&spec, &io::Error::from_raw_os_error(nix::libc::EMFILE));
        let limit = crate::limits::open_files();
        assert!(
            message.starts_with("cannot start `python3 app.py`: Too many open files")
                && message.contains(&format!("as many as it may, {limit} (")),
            "{message}"
        );
        let other = start_error(&spec, &io::Error::from_raw_os_error(nix::libc::EACCES));
        assert!(!other.contains("ulimit"), "{other}");
    }

    /// A lone command replaces the shell, so the leader (whose PID the PID file
    /// holds) is the server itself; anything more runs as written, under `sh`.
    #[test]
    fn a_lone_shell_command_is_the_leader_itself() {
        let comm = |line: &str| {
            let spec = spec(CommandSpec::Shell(line.into()));
            let mode = Mode::Supervised {
                relay: None,
                guard: None,
            };
            let spawned = spawn(&spec, "", mode).unwrap();
            let pid = spawned.pid;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let mut name = String::new();
            while std::time::Instant::now() < deadline {
                name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if name.trim() == "sleep" || line.contains(';') {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            name.trim().to_string()
        };
        assert_eq!(comm("sleep 30"), "sleep");
        assert_eq!(comm("sleep 30 > /dev/null 2>&1"), "sleep");
        assert_eq!(comm("sleep 30; true"), "sh");
    }

    #[test]
    fn exec_goes_only_before_one_simple_command() {
        let shell = spec(CommandSpec::Shell(String::new()));
        for simple in [
            "python3 app.py",
            "sleep $SECONDS --x",
            "python3 -c 'import a; a.run()'",
            "env > out.log 2>&1",
            "/bin/sh -c 'x; y'",
        ] {
            assert_eq!(shell_script(simple, &shell), format!("exec {simple}"));
        }
        for compound in [
            "npm run build && npm start",
            "cd web; python3 app.py",
            "echo \"a && b\" | x",
            "server &",
            "(cd web && serve)",
            "PORT=8000 node app.js",
            "cd web",
            ". venv/bin/activate",
            "exec node app.js",
            "if true; then x; fi",
            "x `date`",
            "a\nb",
            "echo 'unclosed",
            "",
            "no-such-program-xyz --port 1",
            "./no-such-script.sh",
            "$SERVER --port 1",
            "echo 'a\\tb'",
            "sleep\u{a0}100",
        ] {
            assert_eq!(shell_script(compound, &shell), compound, "{compound:?}");
        }
    }

    #[test]
    fn changed_paths_are_capped_at_a_whole_path() {
        assert_eq!(cap_changed("a.py\nb.py"), ("a.py\nb.py", false));
        let path = format!("{}.py", "x".repeat(96)); // 99 bytes, 100 with its newline
        let many = vec![path.as_str(); 3000].join("\n");
        let (capped, truncated) = cap_changed(&many);
        assert!(truncated);
        assert!(capped.len() <= CHANGED_LIMIT);
        assert_eq!(
            capped.len(),
            (CHANGED_LIMIT / 100) * 100 - 1,
            "as many as fit"
        );
        assert!(capped.split('\n').all(|p| p == path), "whole paths only");
        // Exactly at the limit: kept whole.
        let exact = &many[..CHANGED_LIMIT / 100 * 100 - 1];
        assert_eq!(cap_changed(exact), (exact, false));
        // A newline right at the limit ends a path that fits.
        let mut at = "y".repeat(CHANGED_LIMIT);
        at.push_str("\nz");
        assert_eq!(cap_changed(&at).0.len(), CHANGED_LIMIT);
        // The limit inside a character of two bytes.
        let wide = vec!["é"; CHANGED_LIMIT].join("\n");
        let (capped, truncated) = cap_changed(&wide);
        assert!(truncated && capped.len() <= CHANGED_LIMIT && capped.ends_with('é'));
        // Not even the first path fits.
        let long = "z".repeat(CHANGED_LIMIT + 1);
        assert_eq!(cap_changed(&long), ("", true));
    }
}
