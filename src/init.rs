//! `reloadsup init`: writes a commented `reload.toml` into the current folder (or the
//! file `-f` names), and never overwrites one that exists. The template is for a Python
//! app, unless a `package.json` beside it says the project is Node's: then the command
//! is its `start` script (or its `main` file) and the globs are JavaScript's — or, for
//! a dev server that updates its pages itself (Vite, Next.js, …), its `dev` script and
//! only the files it reads at start. A `go.mod` makes it Go's: `go run .`; a
//! `Cargo.toml`, Rust's: `cargo run`.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::config::TASK_FILE_NAME;
use crate::error::{EXIT_OK, Error, Result};
use crate::report;

/// The file `init` writes: every key, commented.
const TEMPLATE: &str = include_str!("init_template.toml");

/// Writes `file` (relative to `dir`), or `reload.toml` in `dir`.
pub fn run(dir: &Path, file_arg: Option<&Path>) -> Result<i32> {
    let path = dir.join(file_arg.unwrap_or(Path::new(TASK_FILE_NAME)));
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
    let folder = path.parent().unwrap_or(dir);
    let text = match node_project_to_run(folder) {
        Some(NodeProject::Plain(command)) => with_command(&command, NODE_GLOBS),
        Some(NodeProject::HotReloading { command, server }) => {
            report::info(format!(
                "`package.json` uses `{server}`, which updates its pages itself: \
                 `watch.file_dep` names only what it reads at start (a restart at each \
                 save of a source would lose its hot updates)"
            ));
            with_command(&command, HOT_GLOBS)
        }
        None if folder.join("go.mod").is_file() => {
            report::info(
                "`go.mod`: `go run .` builds and runs the module at each start (a build that \
                 fails is a server that failed, on the terminal and on open pages)",
            );
            with_command("go run .", GO_GLOBS).replacen(STOP_SIGNAL, GO_STOP_SIGNAL, 1)
        }
        None if folder.join("Cargo.toml").is_file() => for_cargo(folder),
        None => for_python(folder),
    };
    file.write_all(text.as_bytes())
        .map_err(|err| Error::io(format!("cannot write `{}`", path.display()), err))?;
    let run = match file_arg {
        Some(name) => format!("reloadsup -f {} run", name.display()),
        None => "reloadsup run".to_string(),
    };
    report::info(format!(
        "wrote `{}`; edit `server.command` and `watch.file_dep`, then `{run}`",
        path.display()
    ));
    if folder.ancestors().any(|d| d.join(".git").exists()) {
        report::info(
            "the server's PID, state, lock and log files are written beside it: add \
             `reloadsup.pid*` and `reloadsup.log` to `.gitignore`",
        );
    }
    Ok(EXIT_OK)
}

/// What `init` learns from a `package.json`.
enum NodeProject {
    /// A server to restart at each save: its command.
    Plain(String),
    /// A dev server that updates its pages itself (`server`, the package that says
    /// so), started with `command`.
    HotReloading {
        command: String,
        server: &'static str,
    },
}

/// Dev servers with a client of their own that hot-updates the page at a save: a
/// restart at each save would only cost a cold start and the page's state.
const HOT_RELOADING: &[&str] = &[
    "vite",
    "next",
    "nuxt",
    "astro",
    "@sveltejs/kit",
    "@remix-run/dev",
    "webpack-dev-server",
    "react-scripts",
];

/// The commands a `dev` or `start` script runs a dev server with, alone or with
/// options (not a production one: `next start`, `vite preview` update no page).
const DEV_COMMANDS: &[&str] = &[
    "vite",
    "vite dev",
    "vite serve",
    "next dev",
    "nuxt dev",
    "nuxi dev",
    "astro dev",
    "remix dev",
    "remix vite:dev",
    "react-router dev",
    "react-scripts start",
    "webpack serve",
    "webpack-dev-server",
];

/// The Node project in `folder` to run, if any: not one whose `package.json` names no
/// server (no script, no entry file that is there) beside a `go.mod` or `Cargo.toml`,
/// as a Rust or Go app keeps one for its CSS tooling (it got `node index.js`, with a
/// warning that there is no `index.js`).
fn node_project_to_run(folder: &Path) -> Option<NodeProject> {
    let manifest = ["go.mod", "Cargo.toml"]
        .into_iter()
        .find(|name| folder.join(name).is_file())
        .filter(|_| folder.join("package.json").is_file());
    if let Some(manifest) = manifest.filter(|_| !names_a_node_server(folder)) {
        report::info(format!(
            "`package.json` names no server to run (no `start` script, no script that \
             runs a dev server, no entry file): going by `{manifest}`"
        ));
        return None;
    }
    node_project(folder)
}

/// Whether the `package.json` in `folder` names a server: a `start` script, a dev
/// server's script (not a `dev` of `tailwindcss --watch`), or an entry file that is
/// there.
fn names_a_node_server(folder: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(folder.join("package.json")) else {
        return false;
    };
    let package: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let main = package["main"]
        .as_str()
        .is_some_and(|main| folder.join(main).is_file());
    package["scripts"]["start"].is_string()
        || hot_dev_server(&package).is_some()
        || main
        || first_file(folder, NODE_ENTRIES).is_some()
}

/// The hot-reloading dev server a package depends on and the script (`dev` or
/// `start`) that runs it, if any.
fn hot_dev_server(package: &serde_json::Value) -> Option<(&'static str, &'static str)> {
    let depends = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|list| package[list].get(name).is_some())
    };
    // A script that runs the dev server itself: a `dev` of `nodemon server.js` beside
    // Vite for the assets is an app server to restart.
    let runs_dev_server = |name: &str| {
        package["scripts"][name].as_str().is_some_and(|text| {
            let text = text.trim();
            DEV_COMMANDS
                .iter()
                .any(|command| text == *command || text.starts_with(&format!("{command} -")))
        })
    };
    let server = HOT_RELOADING.iter().copied().find(|name| depends(name))?;
    let script = ["dev", "start"]
        .into_iter()
        .find(|name| runs_dev_server(name))?;
    Some((server, script))
}

/// The Node project in `folder`, from its `package.json`; `None` when there is none.
fn node_project(folder: &Path) -> Option<NodeProject> {
    let text = std::fs::read_to_string(folder.join("package.json")).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|err| {
        report::warn(format!(
            "`package.json` is not valid JSON ({err}); writing `node index.js`"
        ));
        serde_json::Value::Null
    });
    let script = |name: &str| package["scripts"][name].is_string();
    if let Some((server, name)) = hot_dev_server(&package) {
        let command = if name == "dev" {
            "npm run dev"
        } else {
            "npm start"
        };
        return Some(NodeProject::HotReloading {
            command: command.into(),
            server,
        });
    }
    if script("start") {
        return Some(NodeProject::Plain("npm start".into()));
    }
    Some(NodeProject::Plain(node_command(folder, &package)))
}

/// The command for a Node project with no `start` script: `node MAIN` (`index.js` by
/// default, or the first usual entry file that is there).
fn node_command(folder: &Path, package: &serde_json::Value) -> String {
    let main = match package["main"].as_str() {
        Some(main) if folder.join(main).is_file() => main,
        given => first_file(folder, NODE_ENTRIES).unwrap_or_else(|| {
            let main = given.unwrap_or("index.js");
            report::warn(format!(
                "no `{main}` here (`package.json`'s `main`, or Node's default): edit \
                 `server.command`"
            ));
            main
        }),
    };
    format!("node {}", shell_word(main))
}

/// Where a Node server usually starts, when `package.json` names no file that exists.
const NODE_ENTRIES: &[&str] = &[
    "index.js",
    "server.js",
    "app.js",
    "main.js",
    "src/index.js",
    "src/server.js",
    "src/app.js",
    "src/main.js",
];

/// Where a Python app usually starts.
const PYTHON_ENTRIES: &[&str] = &["app.py", "main.py", "server.py", "wsgi.py"];

/// The first of `names` that is a file in `folder`.
fn first_file(folder: &Path, names: &[&'static str]) -> Option<&'static str> {
    names
        .iter()
        .copied()
        .find(|name| folder.join(name).is_file())
}

/// The template for a Python project in `folder`: Django's development server when a
/// `manage.py` is there (without its own reloader, which would restart it behind
/// reloadsup's back and hide a crash), else the first usual entry file, else
/// `app.py` with a warning that it is not there.
fn for_python(folder: &Path) -> String {
    if folder.join("manage.py").is_file() {
        return TEMPLATE
            .replacen(PYTHON_COMMAND, DJANGO_COMMAND, 1)
            .replacen(PYTHON_GLOBS, DJANGO_GLOBS, 1);
    }
    match first_file(folder, PYTHON_ENTRIES) {
        Some(entry) => {
            TEMPLATE.replacen(PYTHON_COMMAND, &format!("command = \"python3 {entry}\""), 1)
        }
        None => {
            report::warn(
                "no `app.py` here yet: `server.command` runs `python3 app.py`; edit it to \
                 start your app",
            );
            TEMPLATE.to_string()
        }
    }
}

/// The template for a Cargo package in `folder`: `cargo run`, which builds it at each
/// start, its sources and manifests, and a `ready_timeout` long enough for a first
/// build (`start` fails when the server is not ready in time). A workspace with no
/// package of its own is told that `cargo run` may need `-p`.
fn for_cargo(folder: &Path) -> String {
    report::info(
        "`Cargo.toml`: `cargo run` builds and runs the package at each start (a build that \
         fails is a server that failed, on the terminal and on open pages); \
         `server.ready_timeout` is 5m, for a first build",
    );
    let manifest = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap_or_default();
    if let Some(members) = workspace_only(&manifest) {
        report::info(format!(
            "`Cargo.toml` is a workspace with no package of its own ({members}): when more \
             than one member has a binary, `cargo run` needs `-p CRATE` in `server.command`"
        ));
    }
    with_command("cargo run", CARGO_GLOBS).replacen(READY_TIMEOUT, CARGO_READY_TIMEOUT, 1)
}

/// The members a manifest lists when it is a workspace without a `[package]` of its
/// own (a "virtual manifest", where `cargo run` alone cannot tell what to run);
/// `None` for a package, or a manifest that is no valid TOML (cargo will say why).
fn workspace_only(manifest: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(manifest).ok()?;
    if table.contains_key("package") {
        return None;
    }
    let members = table.get("workspace")?.get("members");
    let names: Vec<&str> = members
        .and_then(toml::Value::as_array)
        .map(|list| list.iter().filter_map(toml::Value::as_str).collect())
        .unwrap_or_default();
    Some(match names.as_slice() {
        [] => "no `members`".to_string(),
        names => format!("members: {}", names.join(", ")),
    })
}

/// `word` as one word for `sh`: as it is when it holds only safe characters, else in
/// single quotes.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-/+@:,=".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The template with another project's command and `globs` (a `file_dep` line).
fn with_command(command: &str, globs: &str) -> String {
    TEMPLATE
        .replacen(
            PYTHON_COMMAND,
            &format!("command = {}", toml::Value::String(command.into())),
            1,
        )
        .replacen(PYTHON_GLOBS, globs, 1)
}

/// The template's Python command and globs, and the globs of a Node project.
const PYTHON_COMMAND: &str = "command = \"python3 app.py\"";
const PYTHON_GLOBS: &str = "file_dep = [\"**/*.py\", \"templates/**/*.html\"]";
const DJANGO_COMMAND: &str = "command = \"python3 manage.py runserver --noreload\"";
const DJANGO_GLOBS: &str = "file_dep = [\"**/*.py\", \"**/templates/**/*.html\"]";
const NODE_GLOBS: &str = "file_dep = [\"**/*.js\", \"**/*.mjs\", \"**/*.ts\", \"views/**/*\"]";
/// A Go module's: its sources, its module files, and the templates it parses at start.
const GO_GLOBS: &str =
    "file_dep = [\"**/*.go\", \"go.mod\", \"go.sum\", \"templates/**\", \"**/*.tmpl\"]";
/// A Cargo package's: its sources (`build.rs` too), every crate's manifest in a
/// workspace, and the templates it reads or compiles in. Not `Cargo.lock`: cargo
/// rewrites it itself when a manifest's dependencies change, which would be a second
/// restart after the first.
const CARGO_GLOBS: &str = "file_dep = [\"**/*.rs\", \"**/Cargo.toml\", \"templates/**\"]";
/// The template's `stop_signal` line, and a Go module's: `go run` removes the program
/// it built once the program has ended, which it waits for on SIGINT (passed on to the
/// program, in the same group) but not on SIGTERM, of which it dies at once: each
/// restart left a build of some megabytes in the temporary folder.
const STOP_SIGNAL: &str = "# stop_signal = \"SIGTERM\"           # asks the server's process group to stop (name or number)";
const GO_STOP_SIGNAL: &str = "stop_signal = \"SIGINT\"              # `go run` cleans its build up on SIGINT, not on SIGTERM";
/// The template's `ready_timeout` line, and a Cargo package's.
const READY_TIMEOUT: &str =
    "# ready_timeout = \"30s\"             # how long to wait for readiness before a warning";
const CARGO_READY_TIMEOUT: &str =
    "ready_timeout = \"5m\"                # a first `cargo build` can take minutes";
/// A hot-reloading dev server's: what it reads only at start (its own config it
/// watches itself), not the sources it updates in the page.
const HOT_GLOBS: &str = "file_dep = [\"package.json\", \".env\", \".env.*\"]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_project_gets_its_command_and_globs() {
        assert!(TEMPLATE.contains(PYTHON_COMMAND) && TEMPLATE.contains(PYTHON_GLOBS));
        let text = with_command("npm start", NODE_GLOBS);
        let line = text.lines().find(|l| l.starts_with("command = ")).unwrap();
        assert!(
            line.starts_with("command = \"npm start\" ") && line.contains("# a string runs"),
            "its comment stays: {line}"
        );
        assert!(text.contains(NODE_GLOBS));
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(parsed["server"]["command"].as_str(), Some("npm start"));
        let hot: toml::Value = toml::from_str(&with_command("npm run dev", HOT_GLOBS)).unwrap();
        assert_eq!(
            hot["watch"]["file_dep"].as_array().map(Vec::len),
            Some(3),
            "{hot}"
        );
        assert!(
            TEMPLATE.contains(READY_TIMEOUT),
            "the Cargo template replaces it"
        );
        assert!(
            TEMPLATE.contains(STOP_SIGNAL),
            "the Go template replaces it"
        );
        // Any `main` stays one word for `sh`, in a valid TOML string.
        for main in [
            "my app.js",
            "$(touch pwned).js",
            "it's.js",
            "a\u{301}b\u{7f}.js",
        ] {
            let command = format!("node {}", shell_word(main));
            let parsed: toml::Value = toml::from_str(&with_command(&command, NODE_GLOBS)).unwrap();
            assert_eq!(parsed["server"]["command"].as_str(), Some(command.as_str()));
            let echoed = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_word(main)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&echoed.stdout), main);
        }
    }

    #[test]
    fn a_workspace_without_a_package_is_told_apart() {
        assert_eq!(workspace_only("[package]\nname = \"site\"\n"), None);
        assert_eq!(
            workspace_only("[package]\nname = \"site\"\n[workspace]\nmembers = [\"x\"]\n"),
            None
        );
        assert_eq!(
            workspace_only("[workspace]\nmembers = [\"api\", \"web\"]\n").as_deref(),
            Some("members: api, web")
        );
        assert_eq!(
            workspace_only("[workspace]\n").as_deref(),
            Some("no `members`")
        );
        assert_eq!(workspace_only("not toml ["), None);
    }
}
