//! The task file and the commands that need no server: `check`, `init`, and every kind
//! of bad input, each a one-line error naming the problem, exit code 2, never a panic.

use crate::util::Project;

/// Runs `reloadsup run` on a task file and returns (exit code, stderr).
fn run_with(toml: &str) -> (Option<i32>, String) {
    let p = Project::new();
    p.write("reload.toml", toml);
    let out = p.output(&["run"]);
    (out.status.code(), out.stderr)
}

#[track_caller]
fn assert_task_file_error(toml: &str, expected: &str) {
    let (code, stderr) = run_with(toml);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
}

#[test]
fn syntax_error() {
    assert_task_file_error("[server\ncommand = \"x\"\n", "reload.toml:1: ");
}

#[test]
fn unknown_key() {
    assert_task_file_error(
        "[server]\ncommand = \"x\"\ncolour = \"red\"\n",
        "reload.toml:3: unknown field `colour`",
    );
    assert_task_file_error(
        "[sever]\ncommand = \"x\"\n",
        "reload.toml:1: unknown field `sever`",
    );
}

#[test]
fn missing_command() {
    assert_task_file_error(
        "[server]\ncwd = \".\"\n",
        "reload.toml:1: missing `server.command`",
    );
    assert_task_file_error(
        "[watch]\nfile_dep = [\"*.py\"]\n",
        "reload.toml: missing `[server]` table with a `command` (or a `[serve]` table, for a \
         static site, or a `[proxy]` in front of a server run elsewhere)",
    );
    assert_task_file_error(
        "[server]\ncommand = \"  \"\n",
        "reload.toml:2: `server.command` must be",
    );
}

#[test]
fn bad_glob() {
    assert_task_file_error(
        "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"*.py\", \"src/[a.py\"]\n",
        "reload.toml:4: bad glob `src/[a.py` in `watch.file_dep`: unclosed character class",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\n[reload]\nassets = [\"a/{b\"]\n",
        "reload.toml:4: bad glob `a/{b` in `reload.assets`",
    );
}

/// A long value of the wrong type, quoted by the TOML parser in double quotes, is cut
/// out of the line's middle (the line held all 100,000 characters), which keeps the
/// key at its end; so is a path in an error of `run`'s.
#[test]
fn long_values_in_errors_are_cut_short() {
    let long = "x".repeat(100_000);
    let (code, stderr) = run_with(&format!("[server]\ncommand = \"a\"\nenv = \"{long}\"\n"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("reload.toml:3: invalid type: string \"xxxxxxxxxx")
            && stderr
                .trim_end()
                .ends_with("x\", expected a table, for `server.env`"),
        "{stderr}"
    );
    assert!(stderr.len() < 1000, "{} bytes", stderr.len());
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = \"true\"\npid_file = \"{long}\"\n[reload]\nenabled = false\n"
        ),
    );
    let out = p.output(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("File name too long"), "{}", out.stderr);
    assert!(out.stderr.len() < 1000, "{} bytes", out.stderr.len());
}

/// A `-f` naming a file far larger than a task file (a disk image, a log) is refused
/// before it is read: a 2 GiB one took 4 GiB of memory and 30 s to say its first line
/// was no TOML.
#[test]
fn a_huge_task_file_is_refused_unread() {
    let p = Project::new();
    let big = std::fs::File::create(p.path("big.toml")).unwrap();
    big.set_len(2 << 30).unwrap();
    let out = p.output(&["-f", "big.toml", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("big.toml: the task file is larger than 8 MiB: is it the right file?"),
        "{}",
        out.stderr
    );
}

/// globset takes each glob alone but matches a list as one regular expression, which
/// has limits: a glob nested too deeply, or too many globs, are errors, not a panic.
#[test]
fn globs_too_complex_to_match_together() {
    let deep = format!("{}a{}", "{".repeat(250), "}".repeat(250));
    assert_task_file_error(
        &format!("[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"*.py\",\n  \"{deep}\"]\n"),
        // (The glob is shown cut short, at 200 characters.)
        &format!(
            "reload.toml:5: glob `{}…` in `watch.file_dep` is too complex to match",
            &deep[..200]
        ),
    );
    assert_task_file_error(
        &format!("[server]\ncommand = \"x\"\n[watch]\nignore = [\"{deep}\"]\n"),
        "reload.toml:4: glob `{{{{",
    );
    let many: Vec<String> = (0..10_000)
        .map(|i| format!("\"d{i}/**/[a-z]*[0-9]*{{py,html,css,js,ts,tsx,jsx}}\""))
        .collect();
    assert_task_file_error(
        &format!(
            "[server]\ncommand = \"x\"\n[[task]]\nname = \"t\"\nactions = [\"true\"]\nfile_dep = [\n{}]\n",
            many.join(",\n")
        ),
        "reload.toml:7: the 10000 globs of `task.file_dep` are too many to match together",
    );
    let p = Project::new();
    let out = p.output(&[
        "run",
        "--no-reload",
        "-w",
        "*.py",
        "-i",
        &deep,
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("in `--ignore` is too complex to match"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_duration() {
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nstop_timeout = \"5 parsecs\"\n",
        "reload.toml:3: bad duration `5 parsecs` for `server.stop_timeout`",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nstop_timeout = 5\n",
        "reload.toml:3: invalid type: integer `5`, expected a string",
    );
    // A date is no table to the user, and the reader's integer type is no word of theirs.
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nstop_timeout = 1979-05-27\n",
        "reload.toml:3: invalid type: a date or time, expected a string, for `server.stop_timeout`",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nready = { port = 99999999999999999999999 }\n",
        "reload.toml:3: invalid type: integer `99999999999999999999999`, expected a number",
    );
    // Nor do the reader's own names show: its name for a date, its word for an integer
    // past 64 bits where any value may go.
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nenv = 1979-05-27\n",
        "reload.toml:3: invalid type: a date or time, for `server.env`",
    );
    let deep = vec!["b"; 120].join(".");
    assert_task_file_error(
        &format!("[{deep}]\nx = 1\n"),
        "reload.toml: tables nested too deeply",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nready = 07:32:00\n",
        "reload.toml:3: invalid type: a date or time, expected one of `port`",
    );
    assert_task_file_error(
        "[server]\ncommand = [\"x\", 99999999999999999999]\n",
        "reload.toml:2: invalid type: integer `99999999999999999999`, past the largest integer \
         TOML holds, for `server.command`",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\n[watch]\npoll = \"fast\"\n",
        "reload.toml:4: bad duration `fast` for `watch.poll`",
    );
}

#[test]
fn bad_signal_and_ready() {
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nstop_signal = \"SIGSTOPPLEASE\"\n",
        "reload.toml:3: unknown signal `SIGSTOPPLEASE` for `server.stop_signal`",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nready = { port = 80, url = \"http://x\" }\n",
        "reload.toml:3: `server.ready` needs exactly one of",
    );
    assert_task_file_error(
        "[server]\ncommand = \"x\"\nready = { log = \"(unclosed\" }\n",
        "reload.toml:3: bad regex `(unclosed` for `server.ready.log`",
    );
    // A signal that pauses a process would make every stop wait for SIGKILL.
    for signal in ["SIGSTOP", "ttin", "20"] {
        assert_task_file_error(
            &format!("[server]\ncommand = \"x\"\nstop_signal = \"{signal}\"\n"),
            &format!("reload.toml:3: `{signal}` for `server.stop_signal` "),
        );
    }
    let p = Project::new();
    let out = p.output(&["run", "--stop-signal", "TSTP", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`TSTP` for `--stop-signal` pauses a process rather than ending it"),
        "{}",
        out.stderr
    );
    // One ignored by default, which a server may ask for, is the user's to choose
    // (Apache stops gracefully on SIGWINCH).
    let apache = Project::new();
    apache.write(
        "reload.toml",
        "[server]\ncommand = \"true\"\nstop_signal = \"SIGWINCH\"\n",
    );
    assert_eq!(apache.output(&["check"]).status.code(), Some(0));
    // A pattern any line matches is no readiness check.
    for pattern in ["", ".*", "^"] {
        assert_task_file_error(
            &format!("[server]\ncommand = \"x\"\nready = {{ log = \"{pattern}\" }}\n"),
            &format!("reload.toml:3: `server.ready.log` `{pattern}` matches an empty line"),
        );
    }
    // A huge value is shown cut short, whichever key it is for.
    let huge = "x".repeat(5000);
    for line in [
        format!("stop_signal = \"{huge}\""),
        format!("ready = {{ url = \"http://{huge}\" }}"),
        format!("ready = {{ log = \"({huge}\" }}"),
    ] {
        let p = Project::new();
        p.write(
            "reload.toml",
            &format!("[server]\ncommand = \"x\"\n{line}\n"),
        );
        let out = p.output(&["check"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stderr.len() < 700, "{}", out.stderr);
        assert!(out.stderr.contains("xxx…`"), "{}", out.stderr);
    }
}

#[test]
fn bad_flags_and_missing_files() {
    let p = Project::new();
    let out = p.output(&["run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr
            .contains("no `reload.toml` here or in any parent folder"),
        "{}",
        out.stderr
    );

    let out = p.output(&["-f", "nope.toml", "run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("task file") && out.stderr.contains("nope.toml` not found"));
    let out = p.output(&["-f", ".", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.contains("` is not a file"), "{}", out.stderr);

    let out = p.output(&["run", "--stop-timeout", "soon", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr
            .contains("bad duration `soon` for `--stop-timeout` (write e.g. `250ms`"),
        "{}",
        out.stderr
    );

    // Too long for any deadline: refused, where it made every stop panic.
    p.write(
        "reload.toml",
        "[server]\ncommand = 'true'\nstop_timeout = '18446744073709551615s'\n",
    );
    for command in ["check", "stop"] {
        let out = p.output(&[command]);
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        assert!(
            out.stderr.contains("reload.toml:3: bad duration") && !out.stderr.contains("panic"),
            "{}",
            out.stderr
        );
    }
    std::fs::remove_file(p.path("reload.toml")).unwrap();

    let out = p.output(&["run", "-w", "[", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("bad glob `[` for `--watch`"),
        "{}",
        out.stderr
    );

    let out = p.output(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn task_file_found_in_a_parent_folder() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"src/*.py\"]\n",
    );
    p.write("src/a.py", "");
    p.write("src/deeper/b.py", "");
    let out = std::process::Command::new(crate::util::BIN)
        .arg("check")
        .current_dir(p.path("src/deeper"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("watch.file_dep `src/*.py`: 1 file(s)\n  src/a.py\n"),
        "{stdout}"
    );
    // A `reload.toml` nearer that cannot be used is an error, not passed over for the
    // parent's: `stop` there would stop another project's server.
    std::os::unix::fs::symlink("gone.toml", p.path("src/deeper/reload.toml")).unwrap();
    std::fs::create_dir(p.path("src/reload.toml")).unwrap();
    for (dir, why) in [
        ("src/deeper", "is a link to nothing"),
        ("src", "is not a file"),
    ] {
        let out = std::process::Command::new(crate::util::BIN)
            .arg("stop")
            .current_dir(p.path(dir))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{dir}/reload.toml` {why}; name the task file with `-f`"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn check_lists_matches_after_ignores() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"**/*.py\"]\nignore = [\"**/migrations/**\"]\n\
         [reload]\nassets = [\"static/*.css\", \"img/*.png\"]\n\
         [[task]]\nname = \"css\"\nfile_dep = [\"sass/*.scss\"]\nactions = [\"true\"]\n\
         [[task]]\nname = \"bundle\"\nfile_dep = [\"dist/\"]\nactions = [\"true\"]\n",
    );
    p.write("app.py", "");
    p.write("pkg/models.py", "");
    p.write("pkg/migrations/0001.py", "");
    p.write("__pycache__/app.py", "");
    p.write(".gitignore", "gen/\n");
    p.write("gen/out.py", "");
    p.write("static/site.css", "");
    p.write("img/README", "");
    // Names with control characters are listed escaped, one line each.
    p.write("odd/a\nb.py", "");
    p.write("odd/c\u{1b}[31mred.py", "");
    let out = p.output(&["check"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("\n  odd/a\\nb.py\n  odd/c\\u{1b}[31mred.py\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("watch.file_dep `**/*.py`: 4 file(s)\n  app.py\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\n  pkg/models.py\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("reload.assets `static/*.css`: 1 file(s)\n  static/site.css\n")
    );
    assert!(
        out.stdout
            .contains("reload.assets `img/*.png`: 0 file(s) (none yet)\n"),
        "beside a glob of its key that matches, one matching none is not doubted: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "task `css` file_dep `sass/*.scss`: 0 file(s) (none yet: `sass/` is not there yet)\n"
        ),
        "{}",
        out.stdout
    );
    p.write("sass/.keep", "");
    let out = p.output(&["check"]);
    assert!(
        out.stdout.contains(
            "task `css` file_dep `sass/*.scss`: 0 file(s) (none yet: is the glob right?)\n"
        ) && out.stdout.contains(
            "task `bundle` file_dep `dist/`: 0 file(s) (none yet: `dist/` is not there yet)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("ready: default (the server's process group listens on a port)\n")
    );
}

/// A PID file, state file or log file that would overwrite the user's files (a source
/// file, `package.json` beside a PID file named `package`, the task file) is refused
/// by every command, and the file is left as it was; so is one that is a folder.
#[test]
fn pid_and_log_files_never_take_the_users_files() {
    let p = Project::new();
    p.write("app.py", "x = 1\n");
    p.write("package.json", "{\"name\": \"site\"}\n");
    std::fs::create_dir(p.dir.join("run")).unwrap();
    // Names reloadsup writes beside a PID file `server` while it writes it whole.
    p.write(".server.tmp", "user data\n");
    p.write(".api.json.tmp", "user json\n");
    p.write("blank.pid", "  \n\n");
    p.write("huge.pid", "999999999999\n");
    nix::unistd::mkfifo(&p.dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    for (key, value, command, said) in [
        ("pid_file", "app.py", "start", "its PID file"),
        ("pid_file", "server", "start", "its temporary PID file"),
        ("pid_file", "api", "start", "its temporary state file"),
        ("pid_file", "blank.pid", "stop", "holds something else"),
        ("pid_file", "huge.pid", "status", "holds something else"),
        (
            "log_file",
            ".reloadsup.pid.tmp",
            "start",
            "also the PID file's temporary PID file",
        ),
        (
            "log_file",
            "reloadsup.pid.json",
            "start",
            "also the PID file's state file",
        ),
        ("log_file", "fifo", "start", "is a FIFO"),
        (
            "log_file",
            "app.py/x.log",
            "start",
            "is a file, not a folder",
        ),
        (
            "pid_file",
            "app.py/x.pid",
            "start",
            "is a file, not a folder",
        ),
        ("pid_file", "package", "stop", "its state file"),
        ("pid_file", "reload.toml", "run", "is the task file"),
        ("log_file", "reload.toml", "start", "is the task file"),
        ("pid_file", "run", "start", "is a folder"),
        ("log_file", "run", "start", "is a folder"),
        ("pid_file", "later/", "start", "names a folder"),
    ] {
        let toml = format!(
            "[server]\ncommand = 'sleep {}'\n{key} = \"{value}\"\n",
            p.token
        );
        p.write("reload.toml", &toml);
        for args in [&["check"][..], &[command]] {
            let out = p.output(args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?} {key}={value}: {}",
                out.stderr
            );
            assert!(
                out.stderr
                    .contains(&format!("reload.toml:3: `server.{key}`: "))
                    && out.stderr.contains(said),
                "{}",
                out.stderr
            );
        }
        assert_eq!(p.read("reload.toml"), toml);
        assert!(p.servers().is_empty());
    }
    assert_eq!(p.read("app.py"), "x = 1\n");
    assert_eq!(p.read("package.json"), "{\"name\": \"site\"}\n");
    // A stream named on purpose is fine, whatever it is now: `/dev/stdout` is a pipe
    // here, as under CI, `| tee`, docker or systemd.
    for stream in ["/dev/stdout", "/dev/null"] {
        p.write(
            "reload.toml",
            &format!("[server]\ncommand = 'sleep 1'\nlog_file = \"{stream}\"\n"),
        );
        let out = p.output(&["check"]);
        assert_eq!(out.status.code(), Some(0), "{stream}: {}", out.stderr);
    }
    assert_eq!(p.read(".server.tmp"), "user data\n");
    assert_eq!(p.read(".api.json.tmp"), "user json\n");
    assert_eq!(p.read("huge.pid"), "999999999999\n");
    assert!(
        !p.dir.join("run.lock").exists(),
        "nothing left beside the folder"
    );
    assert!(
        !p.dir.join("later").exists(),
        "no file named for the folder"
    );
}

/// A mistyped flag is one status line, as every other error, with clap's tip.
#[test]
fn usage_errors_are_one_line() {
    let p = Project::new();
    let out = p.output(&["run", "--wach", "*.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stderr,
        "[reloadsup] error: unexpected argument '--wach' found (a similar argument exists: \
         '--watch'; to pass '--wach' as a value, use '-- --wach'); see `reloadsup run --help`\n"
    );
    // Not UTF-8: still one line, not a panic.
    let out = std::process::Command::new(crate::util::BIN)
        .arg(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff"))
        .current_dir(&p.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let help = p.output(&["run", "--help"]);
    assert!(help.status.success());
    assert!(
        help.stdout.contains("Usage: reloadsup run"),
        "{}",
        help.stdout
    );
}

/// A working folder that is missing, or a file, fails `check` at its line (and `start`
/// by its key), instead of passing and failing at every start.
#[test]
fn check_and_start_name_a_working_folder_that_is_not_there() {
    let p = Project::new();
    p.write("notes.txt", "");
    for (cwd, why) in [("web", "does not exist"), ("notes.txt", "is not a folder")] {
        p.write(
            "reload.toml",
            &format!("[server]\ncommand = \"true\"\ncwd = \"{cwd}\"\n"),
        );
        let out = p.output(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "reload.toml:3: `server.cwd` `{}` {why}",
                p.path(cwd).display()
            )),
            "{}",
            out.stderr
        );
        let out = p.output(&["start"]);
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("(`server.cwd`) {why}")),
            "{}",
            out.stderr
        );
        assert!(
            !p.path("reloadsup.log").exists(),
            "no empty log left by a server that never started"
        );
    }
}

#[test]
fn init_writes_a_valid_file_and_never_overwrites() {
    let p = Project::new();
    let out = p.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    let written = p.read("reload.toml");
    assert!(written.contains("[server]") && written.contains("file_dep"));
    assert!(
        p.output(&["check"]).status.success(),
        "the template is valid"
    );
    p.write("reload.toml", "# mine\n");
    let out = p.output(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("already exists; not overwriting it"),
        "{}",
        out.stderr
    );
    assert_eq!(p.read("reload.toml"), "# mine\n");
}

/// `-f` names the file `init` writes; `serve`, which reads none, refuses it.
#[test]
fn init_writes_the_file_named_by_f_and_serve_refuses_one() {
    let p = Project::new();
    let out = p.output(&["-f", "dev/site.toml", "init"]);
    assert_eq!(out.status.code(), Some(1), "no such folder: {}", out.stderr);
    std::fs::create_dir(p.path("dev")).unwrap();
    let out = p.output(&["-f", "dev/site.toml", "init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(p.read("dev/site.toml").contains("[server]"));
    assert!(
        out.stderr.contains("then `reloadsup -f dev/site.toml run`"),
        "{}",
        out.stderr
    );
    assert!(!p.path("reload.toml").exists());
    let out = p.output(&["-f", "dev/site.toml", "serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("`[serve]` table"), "{}", out.stderr);
}

/// In a Node project (a `package.json`), `init` writes its start command and
/// JavaScript globs; in a git repository it says which files to ignore.
#[test]
fn init_fits_a_node_project() {
    let p = Project::new();
    std::fs::create_dir(p.path(".git")).unwrap();
    p.write(
        "package.json",
        "{\"name\": \"site\", \"scripts\": {\"start\": \"node server.js\"}}",
    );
    p.write("server.js", "");
    let out = p.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("add `reloadsup.pid*` and `reloadsup.log` to `.gitignore`")
    );
    let written = p.read("reload.toml");
    assert!(written.contains("command = \"npm start\""), "{written}");
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("watch.file_dep `**/*.js`: 1 file(s)\n  server.js\n"),
        "{}",
        check.stdout
    );
}

/// In a Go module, `init` runs it with `go run .` and watches its sources, not a
/// Python app that is not there.
#[test]
fn init_fits_a_go_module() {
    let p = Project::new();
    p.write("go.mod", "module example.com/site\n\ngo 1.21\n");
    p.write("main.go", "package main\n\nfunc main() {}\n");
    p.write("templates/index.tmpl", "");
    let out = p.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("`go run .` builds and runs"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("app.py"), "{}", out.stderr);
    let written = p.read("reload.toml");
    assert!(written.contains("command = \"go run .\""), "{written}");
    // `go run` removes its build on SIGINT; SIGTERM left it in the temporary folder.
    assert!(written.contains("\nstop_signal = \"SIGINT\""), "{written}");
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    for listed in [
        "watch.file_dep `**/*.go`: 1 file(s)\n  main.go\n",
        "watch.file_dep `go.mod`: 1 file(s)\n",
        "watch.file_dep `templates/**`: 1 file(s)\n  templates/index.tmpl\n",
    ] {
        assert!(check.stdout.contains(listed), "{listed}: {}", check.stdout);
    }
}

/// `check` follows links to folders as the watcher does (a package linked into the
/// project: it listed the link as a file and none of the files in it), listing a
/// folder's files under each path that leads to it, as the watcher names their changes
/// (a link back up the tree is not walked again).
#[test]
fn check_lists_what_a_link_to_a_folder_holds() {
    let p = Project::new();
    let outside = Project::new();
    outside.write("lib/x.py", "1");
    p.write("real/a.py", "1");
    p.write(
        "reload.toml",
        "[server]\ncommand = 'x'\n[watch]\nfile_dep = ['**/*.py']\n",
    );
    std::os::unix::fs::symlink(outside.path("lib"), p.path("linked")).unwrap();
    std::os::unix::fs::symlink(p.path("real"), p.path("again")).unwrap();
    std::os::unix::fs::symlink(&p.dir, p.path("real/up")).unwrap();
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check.stdout.contains(
            "watch.file_dep `**/*.py`: 3 file(s)\n  again/a.py\n  linked/x.py\n  real/a.py\n"
        ),
        "{}",
        check.stdout
    );
    // Links that lead to folders with links to the next ones (two in each of 16) make
    // 2^16 paths: each folder is listed under a few of them, not all.
    let chain = Project::new();
    for n in 0..=16 {
        chain.write(&format!("d{n}/f.txt"), "");
    }
    for n in 0..16 {
        for link in ["a", "b"] {
            std::os::unix::fs::symlink(
                format!("../d{}", n + 1),
                chain.path(&format!("d{n}/{link}")),
            )
            .unwrap();
        }
    }
    chain.write(
        "reload.toml",
        "[server]\ncommand = 'x'\n[watch]\nfile_dep = ['**/*.txt']\n",
    );
    let check = chain.output(&["check"]);
    let listed: usize = check
        .stdout
        .split("`**/*.txt`: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .expect("a count");
    assert!(
        (17..=17 * 8).contains(&listed),
        "{listed}: {}",
        check.stdout
    );
}

/// A glob that names a file or folder that is there in parts glob syntax reads
/// otherwise (a Next.js route, `pages/[id].js`; a SvelteKit folder, `routes/[slug]/`)
/// is read as a glob, and `check` and `run` say how to name it (it matched
/// `pages/i.js`, and saves of the route restarted nothing, with no word why); the
/// escaped form names it. In a project whose own folder's name holds glob syntax, an
/// absolute glob keeps that path as it is, and is pointed out only for its own parts.
#[test]
fn a_glob_that_is_also_a_files_name_is_pointed_out() {
    let p = Project::new();
    p.write("pages/[id].js", "1");
    p.write("pages/i.js", "1");
    p.write("routes/[slug]/+page.svelte", "1");
    p.write(
        "reload.toml",
        "[server]\ncommand = 'exec sleep 1000'\n[watch]\n\
         file_dep = ['pages/[id].js', 'routes/[slug]/**', 'pages/*.js']\n",
    );
    let check = p.output(&["check"]);
    for hint in [
        "`pages/[id].js` names a file or folder that is there, read as a glob: write \
         `pages/\\[id\\].js` to name it",
        "`routes/[slug]/**` names a file or folder that is there, read as a glob: write \
         `routes/\\[slug\\]/**` to name it",
    ] {
        assert!(check.stdout.contains(hint), "{hint}: {}", check.stdout);
    }
    assert!(
        !check.stdout.contains("`pages/*.js` names"),
        "{}",
        check.stdout
    );
    let run = p.start(&["run", "--no-reload"]);
    run.wait_for(
        "`pages/[id].js` names a file or folder that is there, read as a glob: write \
         `pages/\\[id\\].js` to name it",
    );
    drop(run);
    p.write(
        "reload.toml",
        "[server]\ncommand = 'x'\n[watch]\n\
         file_dep = ['pages/\\[id\\].js', 'routes/\\[slug\\]/**']\n",
    );
    let check = p.output(&["check"]);
    assert!(
        check.stdout.contains("1 file(s)\n  pages/[id].js\n")
            && check
                .stdout
                .contains("1 file(s)\n  routes/[slug]/+page.svelte\n")
            && !check.stdout.contains("names a file"),
        "{}",
        check.stdout
    );

    // The project in `my[app]/`, named by absolute globs.
    p.write("my[app]/pages/[id].js", "1");
    p.write("my[app]/pages/i.js", "1");
    let project = p.path("my[app]").display().to_string();
    p.write(
        "my[app]/reload.toml",
        &format!(
            "[server]\ncommand = 'x'\n[watch]\n\
             file_dep = ['{project}/pages/i.js', '{project}/pages/[id].js']\n"
        ),
    );
    let out = std::process::Command::new(crate::util::BIN)
        .arg("check")
        .current_dir(p.path("my[app]"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hint = format!("write `{project}/pages/\\[id\\].js` to name it");
    assert!(stdout.contains(&hint), "{hint}: {stdout}");
    assert_eq!(
        stdout.matches("names a file or folder").count(),
        1,
        "{stdout}"
    );
}

/// In a Cargo package, `init` runs it with `cargo run`, watches its sources and
/// manifests (not `target/`), and gives a first build time to finish; a workspace
/// with no package of its own is told that `cargo run` needs `-p`.
#[test]
fn init_fits_a_cargo_package() {
    let p = Project::new();
    p.write(
        "Cargo.toml",
        "[package]\nname = \"site\"\nversion = \"0.1.0\"\n",
    );
    p.write("src/main.rs", "fn main() {}\n");
    p.write("build.rs", "fn main() {}\n");
    p.write("target/debug/build/site-1/out/gen.rs", "");
    p.write("templates/index.html", "");
    let out = p.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("`cargo run` builds and runs"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("app.py"), "{}", out.stderr);
    assert!(!out.stderr.contains("workspace"), "{}", out.stderr);
    let written = p.read("reload.toml");
    assert!(written.contains("command = \"cargo run\""), "{written}");
    let parsed: toml::Value = toml::from_str(&written).unwrap();
    assert_eq!(parsed["server"]["ready_timeout"].as_str(), Some("5m"));
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    for listed in [
        "watch.file_dep `**/*.rs`: 2 file(s)\n  build.rs\n  src/main.rs\n",
        "watch.file_dep `**/Cargo.toml`: 1 file(s)\n  Cargo.toml\n",
        "watch.file_dep `templates/**`: 1 file(s)\n  templates/index.html\n",
    ] {
        assert!(check.stdout.contains(listed), "{listed}: {}", check.stdout);
    }

    // Beside a `package.json` for CSS tooling alone (no script, no entry file), the
    // package is Rust's; one with a `start` script runs that.
    let both = Project::new();
    both.write(
        "Cargo.toml",
        "[package]\nname = \"site\"\nversion = \"0.1.0\"\n",
    );
    both.write(
        "package.json",
        "{\"devDependencies\": {\"tailwindcss\": \"3\"}}",
    );
    let out = both.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("`package.json` names no server to run")
            && !out.stderr.contains("index.js"),
        "{}",
        out.stderr
    );
    assert!(both.read("reload.toml").contains("command = \"cargo run\""));
    // A `dev` script that is tooling, not a dev server, names no server either.
    std::fs::remove_file(both.path("reload.toml")).unwrap();
    both.write(
        "package.json",
        "{\"scripts\": {\"dev\": \"tailwindcss -i in.css -o out.css --watch\"}, \
         \"devDependencies\": {\"tailwindcss\": \"3\"}}",
    );
    let out = both.output(&["init"]);
    assert!(out.status.success());
    assert!(both.read("reload.toml").contains("command = \"cargo run\""));
    // The message does not say there is no `dev` script: there is one.
    assert!(
        out.stderr
            .contains("(no `start` script, no script that runs a dev server, no entry file)"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(both.path("reload.toml")).unwrap();
    both.write(
        "package.json",
        "{\"scripts\": {\"start\": \"node server.js\"}}",
    );
    assert!(both.output(&["init"]).status.success());
    assert!(both.read("reload.toml").contains("command = \"npm start\""));

    let workspace = Project::new();
    workspace.write("Cargo.toml", "[workspace]\nmembers = [\"api\"]\n");
    let out = workspace.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "a workspace with no package of its own (members: api): when more than one \
             member has a binary, `cargo run` needs `-p CRATE`"
        ),
        "{}",
        out.stderr
    );
}

/// In a project whose dev server updates its pages itself (Vite here), `init` runs its
/// `dev` script and watches only what it reads at start: a restart at each save of a
/// source would cost its hot updates.
#[test]
fn init_leaves_a_hot_reloading_dev_servers_sources_to_it() {
    let p = Project::new();
    p.write(
        "package.json",
        "{\"scripts\": {\"dev\": \"vite\", \"start\": \"vite preview\"}, \
         \"devDependencies\": {\"vite\": \"^8.0.0\"}}",
    );
    p.write("src/main.js", "");
    p.write(".env", "API=1\n");
    let out = p.output(&["init"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`package.json` uses `vite`, which updates its pages itself"),
        "{}",
        out.stderr
    );
    let written = p.read("reload.toml");
    assert!(written.contains("command = \"npm run dev\""), "{written}");
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("watch.file_dep `.env`: 1 file(s)\n  .env\n")
            && !check.stdout.contains("src/main.js"),
        "{}",
        check.stdout
    );
    // A `start` that runs the production server (`next start`) updates no page: the
    // plain template, its sources watched.
    for (start, hot) in [
        ("next start", false),
        ("vite preview", false),
        ("vite --port 3000", true),
        // An app server beside Vite for the assets: restarted at its sources' saves.
        ("nodemon server.js", false),
    ] {
        let p = Project::new();
        p.write(
            "package.json",
            &format!(
                "{{\"scripts\": {{\"start\": \"{start}\"}}, \
                 \"dependencies\": {{\"next\": \"14\", \"vite\": \"8\"}}}}"
            ),
        );
        let out = p.output(&["init"]);
        assert!(out.status.success(), "{}", out.stderr);
        let written = p.read("reload.toml");
        assert!(written.contains("command = \"npm start\""), "{written}");
        assert_eq!(written.contains("\"**/*.js\""), !hot, "{start}: {written}");
    }
}

/// `init` starts what is there: a Node project's entry file when `package.json`
/// names none that exists, Django's `manage.py` without its own reloader, a Python
/// project's usual entry file; and says so when it finds none.
#[test]
fn init_starts_the_entry_file_that_is_there() {
    let command = |p: &Project| {
        let out = p.output(&["init"]);
        assert!(out.status.success(), "{}", out.stderr);
        let written = p.read("reload.toml");
        let line = written
            .lines()
            .find(|l| l.starts_with("command = "))
            .expect("a command line")
            .to_string();
        (line, out.stderr)
    };
    let node = Project::new();
    node.write("package.json", "{\"name\": \"x\", \"main\": \"index.js\"}");
    node.write("server.js", "");
    let (line, _) = command(&node);
    assert!(line.starts_with("command = \"node server.js\""), "{line}");
    let django = Project::new();
    django.write("manage.py", "");
    let (line, _) = command(&django);
    assert!(
        line.starts_with("command = \"python3 manage.py runserver --noreload\""),
        "{line}"
    );
    assert!(
        django
            .read("reload.toml")
            .contains("\"**/templates/**/*.html\"")
    );
    let flask = Project::new();
    flask.write("main.py", "");
    let (line, said) = command(&flask);
    assert!(line.starts_with("command = \"python3 main.py\""), "{line}");
    assert!(!said.contains("warning"), "{said}");
    let empty = Project::new();
    let (line, said) = command(&empty);
    assert!(line.starts_with("command = \"python3 app.py\""), "{line}");
    assert!(said.contains("no `app.py` here yet"), "{said}");
}

#[test]
fn the_shipped_example_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/reload.toml.example");
    let p = Project::new();
    let out = p.output(&["-f", example, "check"]);
    assert!(out.status.success(), "{}", out.stderr);
    for key in [
        "command",
        "cwd",
        "env",
        "pid_file",
        "log_file",
        "stop_signal",
        "stop_timeout",
        "ready",
        "ready_timeout",
        "file_dep",
        "ignore",
        "poll",
        "port",
        "host",
        "assets",
        "[proxy]",
        "listen",
        "upstream",
        "[[task]]",
        "name",
        "actions",
        "gitignore",
        "allow_origins",
        "allowed_hosts",
        "[serve]",
        "root",
    ] {
        let text = std::fs::read_to_string(example).unwrap();
        assert!(text.contains(key), "the example shows `{key}`");
    }
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let p = Project::new();
    p.write("reload.toml", "[server]\ncommand = \"x\"\n");
    p.write("a.py", "");
    for args in [&["check"][..], &["status"][..], &["status", "--json"][..]] {
        let mut child = std::process::Command::new(crate::util::BIN)
            .args(args)
            .current_dir(&p.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Like `reloadsup check | head -0`: the reader is gone before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{args:?}: {:?}",
            out.status
        );
    }
}

/// Runs `reloadsup check` on a task file and asserts the one-line error, exit 2. (`check`,
/// not `run`: a bad address used to pass, and `run` would then supervise forever.)
#[track_caller]
fn assert_check_error(toml: &str, expected: &str) {
    let p = Project::new();
    p.write("reload.toml", toml);
    let out = p.output(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(
        out.stderr.contains(expected),
        "expected {expected:?} in: {}",
        out.stderr
    );
}

#[test]
fn bad_addresses() {
    let proxy = |listen: &str, upstream: &str| {
        format!(
            "[server]\ncommand = \"x\"\n[proxy]\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n"
        )
    };
    let cases = [
        (
            proxy("127.0.0.1:5000", "http://127.0.0.1:8000"),
            "reload.toml:5: bad address `http://127.0.0.1:8000` for `proxy.upstream`: \
             write host:port, e.g. `127.0.0.1:8000`, not a URL",
        ),
        (
            proxy("127.0.0.1:5000", "http://localhost:8000/"),
            "reload.toml:5: bad address `http://localhost:8000/` for `proxy.upstream`: \
             write host:port, e.g. `localhost:8000`, not a URL",
        ),
        (
            proxy("127.0.0.1:5000", "localhost"),
            "reload.toml:5: bad address `localhost` for `proxy.upstream`: \
             no port; write host:port, e.g. `localhost:8000`",
        ),
        (
            proxy("127.0.0.1:5000", "127.0.0.1:0"),
            "reload.toml:5: bad address `127.0.0.1:0` for `proxy.upstream`: \
             port 0 is out of range (1–65535)",
        ),
        (
            proxy("127.0.0.1", "127.0.0.1:8000"),
            "reload.toml:4: bad address `127.0.0.1` for `proxy.listen`: \
             no port; write host:port, e.g. `127.0.0.1:5000`",
        ),
        (
            proxy("::1:5000", "127.0.0.1:8000"),
            "reload.toml:4: bad address `::1:5000` for `proxy.listen`: \
             put an IPv6 address in brackets, e.g. `[::1]:5000`",
        ),
        (
            proxy("127.0.0.1:5000", "127.0.0.1:8000")
                + "allowed_hosts = [\"dev.test\",\n  \"http://foo.test\"]\n",
            "reload.toml:7: bad address `http://foo.test` for `proxy.allowed_hosts`: \
             write a host or host:port, e.g. `foo.test`, not a URL",
        ),
        (
            proxy("127.0.0.1:5000", "127.0.0.1:8000") + "allowed_hosts = [\"*.ngrok.test\"]\n",
            "reload.toml:6: bad address `*.ngrok.test` for `proxy.allowed_hosts`: \
             no wildcards; write `.ngrok.test` for `ngrok.test` and all its subdomains",
        ),
        (
            "[serve]\nlisten = \"localhost:http\"\n".to_string(),
            "reload.toml:2: bad address `localhost:http` for `serve.listen`: \
             port `http` is not a number",
        ),
        (
            "[server]\ncommand = \"x\"\n[reload]\nhost = \"127.0.0.1:35729\"\n".to_string(),
            "reload.toml:4: bad address `127.0.0.1:35729` for `reload.host`: \
             write the host alone, e.g. `127.0.0.1`; the port is `reload.port`",
        ),
        (
            "[server]\ncommand = \"x\"\n[reload]\nallow_origins = [\"http://lan.test:5000\",\n  \"lan.test\"]\n"
                .to_string(),
            "reload.toml:5: bad origin `lan.test` in `reload.allow_origins`: write \
             scheme://host[:port] as browsers send it, e.g. `http://192.168.1.5:5000`",
        ),
    ];
    for (toml, expected) in cases {
        assert_check_error(&toml, expected);
    }
}

/// `check` shows a readiness check as the task file writes it.
#[test]
fn check_shows_readiness_as_written() {
    let p = Project::new();
    for (ready, shown) in [
        ("{ port = 8000 }", "ready: { port = 8000 } (timeout 30s)"),
        (
            "{ log = \"^Serving\" }",
            "ready: { log = \"^Serving\" } (timeout 30s)",
        ),
        (
            "{ delay = \"300ms\" }",
            "ready: { delay = \"300ms\" } (timeout 30s)",
        ),
    ] {
        p.write(
            "reload.toml",
            &format!("[server]\ncommand = \"x\"\nready = {ready}\n"),
        );
        let out = p.output(&["check"]);
        assert!(out.stdout.contains(shown), "{}", out.stdout);
    }
}

#[test]
fn good_addresses_pass_check() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[reload]\nhost = \"::1\"\n\
         allow_origins = [\"http://[::1]:3000\", \"chrome-extension://abc\", \"null\", \"https://Dev.Example/\"]\n\
         [proxy]\nlisten = \"[::1]:0\"\nupstream = \"localhost:8000\"\n\
         [serve]\nlisten = \"0.0.0.0\"\n",
    );
    let out = p.output(&["check"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("proxy: [::1]:0 -> localhost:8000"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(" on 0.0.0.0:5000\n"),
        "a host alone is port 5000: {}",
        out.stdout
    );
}

#[test]
fn two_listeners_on_one_address_are_refused_naming_both_keys_and_a_line() {
    assert_check_error(
        "[server]\ncommand = \"x\"\n[reload]\nport = 5000\n\
         [proxy]\nlisten = \"127.0.0.1:5000\"\nupstream = \"127.0.0.1:8000\"\n",
        "reload.toml:6: `reload.port`/`reload.host` (127.0.0.1:5000) and `proxy.listen` \
         (127.0.0.1:5000) are the same address: reloadsup cannot listen there twice; \
         give one of them another port",
    );
    assert_check_error(
        "[serve]\nlisten = \"0.0.0.0:7000\"\n[reload]\nport = 7001\n\
         [proxy]\nlisten = \"localhost:7000\"\nupstream = \"127.0.0.1:8000\"\n",
        "reload.toml:6: `serve.listen` (0.0.0.0:7000) and `proxy.listen` (localhost:7000) are \
         the same address",
    );
    let p = Project::new();
    // Flags too, before anything is bound or started.
    let out = p.output(&[
        "run",
        "--proxy",
        "localhost:35729",
        "--upstream",
        "127.0.0.1:8000",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "`reload.port`/`reload.host` (127.0.0.1:35729) and `--proxy` (localhost:35729) \
             are the same address"
        ),
        "{}",
        out.stderr
    );
}

/// A readiness port or an upstream that is one of reloadsup's own listeners: the check
/// passed at once, before the server listened (with a warning that "something else"
/// listened there), and an upstream there sent requests to reloadsup itself.
#[test]
fn a_ready_port_or_upstream_on_reloadsups_own_listener_is_refused() {
    assert_check_error(
        "[server]\ncommand = \"x\"\nready = { port = 5000 }\n[reload]\nport = 6000\n\
         [proxy]\nlisten = \"127.0.0.1:5000\"\nupstream = \"127.0.0.1:8000\"\n",
        "reload.toml:3: `server.ready.port` (127.0.0.1:5000) is reloadsup's own `proxy.listen` \
         (127.0.0.1:5000), not the server's: give the address the dev server listens on",
    );
    assert_check_error(
        "[server]\ncommand = \"x\"\n[reload]\nport = 6000\n\
         [proxy]\nlisten = \"127.0.0.1:5000\"\nupstream = \"localhost:6000\"\n",
        "reload.toml:7: `proxy.upstream` (localhost:6000) is reloadsup's own \
         `reload.port`/`reload.host` (127.0.0.1:6000)",
    );
}

#[test]
fn type_errors_and_duplicates_name_the_key() {
    let cases = [
        (
            "[server]\ncommand = \"x\"\nstop_timeout = 5\n",
            "reload.toml:3: invalid type: integer `5`, expected a string, for `server.stop_timeout`",
        ),
        (
            "[server]\ncommand = \"x\"\n[proxy]\nlisten = \"127.0.0.1:5000\"\n\
             upstream = \"127.0.0.1:8000\"\n[proxy]\n",
            "reload.toml:6: duplicate key: `[proxy]`",
        ),
        (
            "[server]\ncommand = \"x\"\ncommand = \"y\"\n",
            "reload.toml:3: duplicate key: `command`",
        ),
        (
            "[server]\ncommand = \"x\"\n[server.env]\nA = \"1\"\n[[task]] # one\n\
             name = \"a\"\n[server.env] # again\n",
            "reload.toml:7: duplicate key: `[server.env]`",
        ),
        (
            "[server]\ncommand = \"x\"\n[reload]\nport = 70000\n",
            "reload.toml:4: invalid value: integer `70000`, expected a number from 0 to 65535, \
             for `reload.port`",
        ),
        (
            "server = 3\n",
            "reload.toml:1: invalid type: integer `3`, expected a table, for `server`",
        ),
        (
            "[server]\ncommand = \"x\"\nenv = { A = 1 }\n",
            "reload.toml:3: invalid type: integer `1`, expected a string, for `server.env.A`",
        ),
    ];
    for (toml, expected) in cases {
        assert_check_error(toml, expected);
    }
}

#[test]
fn bad_address_flags() {
    let p = Project::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "run",
                "--proxy",
                "127.0.0.1",
                "--upstream",
                "127.0.0.1:8000",
                "--",
                "true",
            ],
            "bad address `127.0.0.1` for `--proxy`: no port; write host:port, e.g. `127.0.0.1:5000`",
        ),
        (
            &[
                "run",
                "--proxy",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:8000",
                "--",
                "true",
            ],
            "bad address `http://127.0.0.1:8000` for `--upstream`: \
             write host:port, e.g. `127.0.0.1:8000`, not a URL",
        ),
        (
            &[
                "run",
                "--proxy",
                "127.0.0.1:0",
                "--upstream",
                "localhost:8000/app",
                "--",
                "true",
            ],
            "bad address `localhost:8000/app` for `--upstream`: \
             write host:port, e.g. `localhost:8000`, without a path",
        ),
        (
            &["serve", "--listen", "http://127.0.0.1:5000/"],
            "bad address `http://127.0.0.1:5000/` for `--listen`: \
             write host:port, e.g. `127.0.0.1:5000`, not a URL",
        ),
    ];
    for (args, expected) in cases {
        // Started and waited for with a deadline: before addresses were checked, some of
        // these ran (and supervised) instead of failing.
        let mut sup = p.start(args);
        let status = sup.wait_exit();
        let stderr = sup.stderr();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in: {stderr}"
        );
    }
}

#[test]
fn a_task_file_that_is_not_utf8_is_a_task_file_error_naming_the_line() {
    let p = Project::new();
    let cases: [(&[u8], &str); 3] = [
        (
            b"\xff\xfe",
            "reload.toml:1: the task file is not UTF-8: byte 0xFF at column 1 (save it as UTF-8)",
        ),
        (
            // Latin-1 on the third line, after a character of two bytes on the first.
            b"# \xc3\xa9\n[server]\ncommand = \"caf\xe9\"\n",
            "reload.toml:3: the task file is not UTF-8: byte 0xE9 at column 15",
        ),
        (
            // A byte-order mark is no column an editor shows.
            b"\xef\xbb\xbf# \xe9\n[server]\ncommand = \"x\"\n",
            "reload.toml:1: the task file is not UTF-8: byte 0xE9 at column 3",
        ),
    ];
    for (bytes, expected) in cases {
        std::fs::write(p.path("reload.toml"), bytes).unwrap();
        let out = p.output(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{}", out.stderr);
    }
}

#[test]
fn a_polling_interval_below_10ms_is_refused() {
    // `0ms` used to poll in a busy loop.
    assert_check_error(
        "[server]\ncommand = \"x\"\n[watch]\npoll = \"0ms\"\n",
        "reload.toml:4: `watch.poll` must be at least 10ms, got `0ms` \
         (polling more often keeps a CPU busy)",
    );
    let p = Project::new();
    // Ad hoc, and over a task file that is itself fine.
    for with_file in [false, true] {
        if with_file {
            p.write("reload.toml", "[server]\ncommand = \"x\"\n");
        }
        let mut sup = p.start(&["run", "--poll", "9ms", "--", "true"]);
        let status = sup.wait_exit();
        let stderr = sup.stderr();
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains("`--poll` must be at least 10ms, got `9ms`"),
            "{stderr}"
        );
    }
    let ok = Project::new();
    ok.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[watch]\npoll = \"10ms\"\n",
    );
    assert!(ok.output(&["check"]).status.success());
}

#[test]
fn values_that_could_never_run_are_refused_at_load() {
    // Each used to pass `check`, and then failed at every start of the server.
    let nul = "contains a NUL character (`\\u0000`), which no command, path or \
               environment variable can hold";
    let cases = [
        (
            "[server]\ncommand = [\"\", \"app.py\"]\n".to_string(),
            "reload.toml:2: `server.command` names no program: its first word is empty".to_string(),
        ),
        (
            "[server]\ncommand = \"x\"\npid_file = \"\"\n".to_string(),
            "reload.toml:3: `server.pid_file` must not be empty (leave it out for the default)"
                .to_string(),
        ),
        (
            "[server]\ncommand = \"x\\u0000y\"\n".to_string(),
            format!("reload.toml:2: `server.command` {nul}"),
        ),
        (
            "[server]\ncommand = [\"python3\", \"a\\u0000.py\"]\n".to_string(),
            format!("reload.toml:2: `server.command` {nul}"),
        ),
        (
            "[server]\ncommand = \"x\"\n[server.env]\nA = \"1\"\n\"\" = \"2\"\n".to_string(),
            "reload.toml:5: `server.env` has an empty name".to_string(),
        ),
        (
            "[server]\ncommand = \"x\"\nenv = { \"A=B\" = \"1\" }\n".to_string(),
            "reload.toml:3: `server.env` name `A=B` contains `=`, which ends a variable's name"
                .to_string(),
        ),
        (
            "[server]\ncommand = \"x\"\nenv = { \"A\\u0000\" = \"1\" }\n".to_string(),
            format!("reload.toml:3: a `server.env` name {nul}"),
        ),
        (
            "[server]\ncommand = \"x\"\n[server.env]\nA = \"1\\u0000\"\n".to_string(),
            format!("reload.toml:4: `server.env.A` {nul}"),
        ),
        (
            "[server]\ncommand = \"x\"\n[[task]]\nname = \"a\"\nfile_dep = []\n\
             actions = [\"true\",\n  \"make\\u0000\"]\n"
                .to_string(),
            format!("reload.toml:7: `task.actions` {nul}"),
        ),
        (
            "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"a\\u0000b\"]\n".to_string(),
            format!("reload.toml:4: `watch.file_dep` {nul}"),
        ),
        (
            "[serve]\nroot = \"a\\u0000b\"\n".to_string(),
            format!("reload.toml:2: `serve.root` {nul}"),
        ),
    ];
    for (toml, expected) in cases {
        assert_check_error(&toml, &expected);
    }

    let p = Project::new();
    for (args, expected) in [
        (&["run", "--", ""][..], "the command after `--` is empty"),
        (
            &["run", "--", "", "app.py"][..],
            "the command after `--` names no program: its first word is empty",
        ),
    ] {
        let mut sup = p.start(args);
        let status = sup.wait_exit();
        let stderr = sup.stderr();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_serve_root_that_is_not_a_folder_is_refused() {
    assert_check_error(
        "[serve]\nlisten = \"127.0.0.1:0\"\nroot = \"site\"\n",
        "reload.toml:3: `serve.root` folder `",
    );
    assert_check_error("[serve]\nroot = \"site\"\n", "/site` does not exist");
    // A file used to be accepted, and served as if it were a folder.
    assert_check_error(
        "[serve]\nroot = \"reload.toml\"\n",
        "/reload.toml` is not a folder",
    );
}

#[test]
fn a_table_of_the_wrong_shape_or_a_missing_key_is_named() {
    let cases = [
        (
            // Was "invalid length 1, expected a table with 9 elements".
            "[[server]]\ncommand = \"x\"\n",
            "reload.toml:1: `server` must be a table, not an array of tables",
        ),
        (
            "[server]\ncommand = \"x\"\n[[proxy]]\nlisten = \"127.0.0.1:5000\"\n",
            "reload.toml:3: `proxy` must be a table, not an array of tables",
        ),
        (
            "[server]\ncommand = \"x\"\nready = [1]\n",
            "reload.toml:3: `server.ready` must be a table, not an array",
        ),
        (
            "[server]\ncommand = \"x\"\n[task]\nname = \"css\"\n",
            "reload.toml:3: `task` must be an array of tables (`[[task]]`), not a table",
        ),
        (
            // Was "missing field `upstream`".
            "[server]\ncommand = \"x\"\n[proxy]\nlisten = \"127.0.0.1:5000\"\n",
            "reload.toml:3: missing `proxy.upstream`",
        ),
        (
            "[server]\ncommand = \"x\"\n[[task]]\nname = \"css\"\nactions = []\n",
            "reload.toml:3: missing `task.file_dep`",
        ),
    ];
    for (toml, expected) in cases {
        assert_check_error(toml, expected);
    }
}

/// `check` names each task's globs by the task, and says which folder it could not
/// read (it said the glob matched nothing: "is the glob right?"). The second part
/// needs root, to run `check` as another user; it is skipped otherwise.
#[test]
fn check_names_each_tasks_globs_and_the_folders_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[[task]]\nname = \"css\"\n\
         file_dep = [\"src/locked/*.js\"]\nactions = [\"true\"]\n",
    );
    p.write("src/locked/a.js", "");
    let out = p.output(&["check"]);
    assert!(
        out.stdout
            .contains("task `css` file_dep `src/locked/*.js`: 1 file(s)\n  src/locked/a.js\n"),
        "{}",
        out.stdout
    );
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(&p.dir, 0o755);
    mode(&p.path("src"), 0o755);
    mode(&p.path("src/locked"), 0o000);
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            crate::util::BIN,
            "check",
        ])
        .current_dir(&p.dir)
        .output()
        .unwrap();
    mode(&p.path("src/locked"), 0o755);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "task `css` file_dep `src/locked/*.js`: 0 file(s) (none that could be read)\n  \
             cannot read `src/locked`: Permission denied"
        ),
        "{stdout}"
    );
}

/// `check` lists the first 20 files of a glob and counts the rest (a broad `**` in a
/// large project printed 70,000 lines, its count out of sight); `--all` lists them all.
#[test]
fn check_lists_the_first_files_and_counts_the_rest() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"src/*.py\"]\n",
    );
    for n in 0..25 {
        p.write(&format!("src/m{n:02}.py"), "");
    }
    let out = p.output(&["check"]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("`src/*.py`: 25 file(s)\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("\n  src/m").count(),
        20,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  … and 5 more (`reloadsup check --all` lists every one)\n"),
        "{}",
        out.stdout
    );
    let all = p.output(&["check", "--all"]);
    assert_eq!(
        all.stdout.matches("\n  src/m").count(),
        25,
        "{}",
        all.stdout
    );
    assert!(!all.stdout.contains("more ("), "{}", all.stdout);
}
