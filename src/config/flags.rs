//! The command line's side of the configuration: the flags that override the task
//! file (`Overrides`), ad-hoc mode (`run -w GLOB -- COMMAND`, no task file), and
//! `reloadsup serve [DIR]`. Flag errors name the flag and exit 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::address::{self, Kind};
use super::pattern::{self, Pattern, normalize};
use super::resolve::{
    MIN_POLL, check_command, default_reload, parse_duration, parse_signal, poll_too_short,
};
use super::{CommandSpec, Config, Listen, Proxy, Serve, Server, TASK_FILE_NAME, Watch};
use crate::error::{Error, Result};

/// Command-line values that override the task file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `-w`: replaces `watch.file_dep`.
    pub watch: Vec<String>,
    /// `-i`: replaces `watch.ignore`.
    pub ignore: Vec<String>,
    /// `--poll`.
    pub poll: Option<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<String>,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--no-reload`.
    pub no_reload: bool,
    /// `--reload-port`: replaces `reload.port`.
    pub reload_port: Option<u16>,
    /// `--asset`: replaces `reload.assets`.
    pub assets: Vec<String>,
    /// `--proxy`: replaces `proxy.listen`.
    pub proxy: Option<String>,
    /// `--upstream`: replaces `proxy.upstream`.
    pub upstream: Option<String>,
    /// The command after `--`.
    pub command: Vec<String>,
}

/// `run -w GLOB... -- COMMAND` with no task file, or `run --proxy ADDR --upstream ADDR
/// -w GLOB...` in front of a server run elsewhere (no command).
pub(super) fn resolve_ad_hoc(cwd: &Path, ov: &Overrides) -> Result<Config> {
    let fronting = ov.command.is_empty() && ov.proxy.is_some();
    if ov.command.is_empty() && !fronting {
        return Err(Error::Usage(format!(
            "no `{TASK_FILE_NAME}` here or in any parent folder; use `-f FILE`, \
             `reloadsup init`, or `reloadsup run -w GLOB -- COMMAND`"
        )));
    }
    let root = cwd.to_path_buf();
    // In front of a server run elsewhere, only what is named: its own logs and
    // databases in the folder would reload the pages without end.
    let file_dep = match ov.watch.is_empty() {
        true if fronting => Vec::new(),
        true => vec!["**".to_string()],
        false => ov.watch.clone(),
    };
    let watch = Watch {
        file_dep: flag_patterns("--watch", &file_dep, &root)?,
        ignore: flag_patterns("--ignore", &ov.ignore, &root)?,
        poll: ov.poll.as_deref().map(flag_poll).transpose()?,
        gitignore: true,
    };
    let pid_file = ov
        .pid_file
        .as_deref()
        .map(|p| flag_pid_file(p, &root))
        .transpose()?;
    let log_file = root.join("reloadsup.log");
    if let Err((_, why)) = super::own_files::check(pid_file.as_deref(), &log_file, None) {
        return Err(Error::Usage(format!("`--pid-file`: {why}")));
    }
    let server = match fronting {
        true => None,
        false => Some(Server {
            command: command_from_args(&ov.command)?,
            cwd: root.clone(),
            cwd_line: None,
            env: Vec::new(),
            pid_file,
            log_file,
            stop_signal: flag_signal(ov.stop_signal.as_deref())?.unwrap_or(Signal::SIGTERM),
            stop_timeout: flag_duration("--stop-timeout", ov.stop_timeout.as_deref())?
                .unwrap_or(Duration::from_secs(5)),
            ready: None,
            ready_line: None,
            ready_timeout: Duration::from_secs(30),
        }),
    };
    let reload = with_reload_flags(default_reload(ov.no_reload), ov, &root)?;
    Ok(Config {
        task_file: None,
        root,
        server,
        watch,
        reload,
        proxy: flag_proxy(None, ov)?,
        serve: None,
        tasks: Vec::new(),
    })
}

/// `reload` with `--reload-port` and `--asset` on top.
pub(super) fn with_reload_flags(
    mut reload: super::Reload,
    ov: &Overrides,
    root: &Path,
) -> Result<super::Reload> {
    if let Some(port) = ov.reload_port {
        reload.port = port;
        reload.set_by = "`--reload-port`";
    }
    if !ov.assets.is_empty() {
        reload.assets = flag_patterns("--asset", &ov.assets, root)?;
    }
    Ok(reload)
}

/// The proxy from the task file's `[proxy]` (if any) with `--proxy`/`--upstream` on top.
pub(super) fn flag_proxy(file: Option<Proxy>, ov: &Overrides) -> Result<Option<Proxy>> {
    if ov.proxy.is_none() && ov.upstream.is_none() {
        return Ok(file);
    }
    let listen = match &ov.proxy {
        Some(text) => Some(flag_listen(text, "--proxy", Kind::Listen)?),
        None => file.as_ref().map(|p| p.listen.clone()),
    };
    let upstream = match &ov.upstream {
        Some(text) => Some((flag_address(text, "--upstream", Kind::Connect)?, None)),
        None => file.as_ref().map(|p| (p.upstream.clone(), p.upstream_line)),
    };
    match (listen, upstream) {
        (Some(listen), Some((upstream, upstream_line))) => Ok(Some(Proxy {
            listen,
            upstream,
            upstream_line,
            allowed_hosts: file.map(|p| p.allowed_hosts).unwrap_or_default(),
        })),
        (None, _) => Err(Error::Usage(
            "`--upstream` needs `--proxy ADDR` (or a `[proxy]` table)".into(),
        )),
        (_, None) => Err(Error::Usage(
            "`--proxy` needs `--upstream ADDR` (or a `[proxy]` table)".into(),
        )),
    }
}

/// `reloadsup serve [DIR]`: a static site with live reload and no task file. Every file
/// under `dir` is an asset: a stylesheet or image is swapped in place, anything else
/// reloads the page. The reload socket lives on the site's own origin, so the
/// LiveReload port is not opened.
pub fn serve_folder(
    cwd: &Path,
    dir: Option<&Path>,
    listen: Option<String>,
    open: bool,
) -> Result<Config> {
    let listen = listen
        .map(|text| flag_listen(&text, "--listen", Kind::ListenOr(Serve::DEFAULT_PORT)))
        .transpose()?;
    let dir = normalize(&cwd.join(dir.unwrap_or(Path::new("."))));
    let root = dir
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            let why = if dir.exists() {
                "is not a folder"
            } else {
                "not found"
            };
            Error::Usage(format!("`{}` {why}", dir.display()))
        })?;
    let mut reload = default_reload(true);
    reload.assets = vec![Pattern::new("**", &root).expect("`**` is a valid glob")];
    let config = Config {
        task_file: None,
        root: root.clone(),
        server: None,
        watch: Watch {
            file_dep: Vec::new(),
            ignore: Vec::new(),
            poll: None,
            gitignore: true,
        },
        reload,
        proxy: None,
        serve: Some(Serve {
            root,
            listen,
            allowed_hosts: Vec::new(),
            open,
        }),
        tasks: Vec::new(),
    };
    super::listeners::check(&config)?;
    Ok(config)
}

/// One argument is a shell line; several are an argument vector. An empty program
/// (`-- ""`) is a usage error.
pub(super) fn command_from_args(args: &[String]) -> Result<CommandSpec> {
    let spec = match args {
        [line] => CommandSpec::Shell(line.clone()),
        _ => CommandSpec::Exec(args.to_vec()),
    };
    check_command(&spec, "the command after `--`").map_err(Error::Usage)?;
    Ok(spec)
}

/// A flag's address, checked as the task file's are (exit 2, naming the flag).
fn flag_address(text: &str, flag: &str, kind: Kind) -> Result<String> {
    address::check(text, flag, kind).map_err(Error::Usage)
}

/// A flag's address to listen on, remembering that `flag` set it.
fn flag_listen(text: &str, flag: &'static str, kind: Kind) -> Result<Listen> {
    Ok(Listen {
        addr: flag_address(text, flag, kind)?,
        set_by: flag,
        line: None,
    })
}

/// `--pid-file`, relative to `root`; one written as a folder (`run/`) is refused,
/// before normalizing drops its slash.
pub(super) fn flag_pid_file(written: &Path, root: &Path) -> Result<PathBuf> {
    if super::own_files::written_as_folder(written) {
        return Err(Error::Usage(
            "`--pid-file` names a folder: name a file in it".into(),
        ));
    }
    Ok(normalize(&root.join(written)))
}

/// `--stop-signal`: a signal name or number, if given, that ends a process.
pub(super) fn flag_signal(text: Option<&str>) -> Result<Option<Signal>> {
    text.map(|t| {
        let signal = parse_signal(t).ok_or_else(|| {
            Error::Usage(format!(
                "unknown signal `{t}` for `--stop-signal` (write e.g. `SIGTERM`, `INT`, `15`)"
            ))
        })?;
        match super::resolve::ends_nothing(signal) {
            Some(why) => Err(Error::Usage(format!("`{t}` for `--stop-signal` {why}"))),
            None => Ok(signal),
        }
    })
    .transpose()
}

/// A duration flag (`--stop-timeout`), if given; `flag` names it in the error.
pub(super) fn flag_duration(flag: &str, text: Option<&str>) -> Result<Option<Duration>> {
    text.map(|t| parse_duration(t, &format!("`{flag}`")).map_err(Error::Usage))
        .transpose()
}

/// `--poll`: a duration of at least [`MIN_POLL`].
pub(super) fn flag_poll(text: &str) -> Result<Duration> {
    let interval = parse_duration(text, "`--poll`").map_err(Error::Usage)?;
    if interval < MIN_POLL {
        return Err(Error::Usage(poll_too_short("`--poll`", text)));
    }
    Ok(interval)
}

/// `-w`/`-i`/`--asset` globs, relative to `root`; `flag` names them in an error.
/// All matchable together, with the built-in ignores beside `--ignore`'s.
pub(super) fn flag_patterns(flag: &str, globs: &[String], root: &Path) -> Result<Vec<Pattern>> {
    let patterns = globs
        .iter()
        .map(|g| {
            let compiled = if flag == "--ignore" {
                Pattern::ignore(g, root)
            } else {
                Pattern::new(g, root)
            };
            compiled.map_err(|why| Error::Usage(format!("bad glob `{g}` for `{flag}`: {why}")))
        })
        .collect::<Result<Vec<Pattern>>>()?;
    let extra = if flag == "--ignore" {
        crate::filter::builtin_ignores()
    } else {
        Vec::new()
    };
    match pattern::unmatchable(&patterns, &extra) {
        None => Ok(patterns),
        Some(culprit) => Err(Error::Usage(pattern::unmatchable_message(
            &patterns, culprit, flag,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_say_how_to_write_one() {
        let err = flag_duration("--stop-timeout", Some("5")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad duration `5` for `--stop-timeout` (write e.g. `250ms`, `5s`, `1m`)"
        );
        let err = flag_poll("584542046090y").unwrap_err();
        assert!(err.to_string().contains("at most a day"), "{err}");
    }

    fn file_proxy() -> Proxy {
        Proxy {
            listen: Listen {
                addr: "127.0.0.1:5000".into(),
                set_by: "proxy.listen",
                line: Some(3),
            },
            upstream: "127.0.0.1:8000".into(),
            upstream_line: Some(4),
            allowed_hosts: vec!["dev.test".into()],
        }
    }

    #[test]
    fn proxy_flags_override_and_say_so() {
        let ov = Overrides {
            proxy: Some(" 0.0.0.0:5001 ".into()),
            ..Overrides::default()
        };
        let proxy = flag_proxy(Some(file_proxy()), &ov).unwrap().unwrap();
        assert_eq!(
            proxy.listen,
            Listen {
                addr: "0.0.0.0:5001".into(),
                set_by: "--proxy",
                line: None,
            }
        );
        assert_eq!(proxy.upstream, "127.0.0.1:8000");
        assert_eq!(proxy.allowed_hosts, ["dev.test"]);

        let ov = Overrides {
            upstream: Some("localhost:9000".into()),
            ..Overrides::default()
        };
        let proxy = flag_proxy(Some(file_proxy()), &ov).unwrap().unwrap();
        assert_eq!(proxy.listen, file_proxy().listen, "still set by the key");
        assert_eq!(proxy.upstream, "localhost:9000");
    }

    #[test]
    fn bad_proxy_flags_name_the_flag() {
        let cases = [
            (
                Overrides {
                    proxy: Some("5000".into()),
                    ..Overrides::default()
                },
                "bad address `5000` for `--proxy`: a port alone; write host:port, e.g. `127.0.0.1:5000`",
            ),
            (
                Overrides {
                    upstream: Some("http://[::1]:8000/".into()),
                    ..Overrides::default()
                },
                "bad address `http://[::1]:8000/` for `--upstream`: \
                 write host:port, e.g. `[::1]:8000`, not a URL",
            ),
        ];
        for (ov, expected) in cases {
            let err = flag_proxy(Some(file_proxy()), &ov).unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
            assert_eq!(err.to_string(), expected);
        }
    }
}
