#!/usr/bin/env python3
"""Benchmark: how fast do reloadsup and watchexec restart a server after a save?

For each tool this measures, in one run:

1. save -> new server process started, over N vim-style saves of `app.py`
   (median, p95, min, max in ms), plus how many restarts each save caused;
2. the tool's idle CPU (utime+stime clock ticks) over a quiet period;
3. the tool's resident memory (VmRSS) in MiB.

The server is `sh -c 'date +%s%N >> "$STARTS"; exec python3 -c ...'`: every
start appends its own wall-clock time (ns) to a log file, then listens on a
free port like a dev server. One save's latency
is (first new line in that log after t0) - t0, where t0 = time.time_ns()
right before the save's first file-system call.

Linux only (it reads /proc). Standard library only. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_ticks, descendants, proc_stat, process_table

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent

# The server stamps its start, then listens on $PORT like a dev server would (so a
# tool that waits for readiness sees it ready, as in real use).
SERVER_SCRIPT = (
    'date +%s%N >> "$STARTS"; exec python3 -c "import os, socket, time; '
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
    "s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(); time.sleep(1000)\""
)
START_TIMEOUT_S = 10.0  # first server start after launching the tool
SAVE_TIMEOUT_S = 5.0  # a save must cause a restart within this time
QUIET_S = 0.300  # no new start for this long => the save's restarts are over
SETTLE_S = 0.500  # pause before the idle-CPU window
STOP_TIMEOUT_S = 5.0  # SIGINT -> wait this long -> SIGKILL the group
POLL_S = 0.001  # how often starts.log is polled

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Everything started or created, so that `finally` can undo it.
_LIVE_PROCS: list[subprocess.Popen] = []
_TEMP_DIRS: list[Path] = []


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Finding the binaries
# --------------------------------------------------------------------------


def cargo_target_dir() -> Path:
    """`target_directory` from `cargo metadata`, else ../target."""
    cargo = shutil.which("cargo")
    if cargo:
        try:
            out = subprocess.run(
                [cargo, "metadata", "--format-version", "1", "--no-deps"],
                cwd=PROJECT_DIR,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            return Path(json.loads(out)["target_directory"])
        except (subprocess.SubprocessError, OSError, ValueError, KeyError):
            pass
    return PROJECT_DIR / "target"


def find_reloadsup(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("RELOADSUP_BIN"):
        return Path(os.environ["RELOADSUP_BIN"])
    path = cargo_target_dir() / "release" / "reloadsup"
    return path if path.is_file() else None


def find_watchexec(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    found = shutil.which("watchexec")
    if found:
        return Path(found)
    cargo_home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    candidate = cargo_home / "bin" / "watchexec"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def warn_if_stale(binary: Path) -> None:
    """Warns when a source file is newer than the reloadsup binary."""
    try:
        built = binary.stat().st_mtime
        sources = [PROJECT_DIR / "Cargo.toml", *(PROJECT_DIR / "src").rglob("*")]
        newer = [p for p in sources if p.is_file() and p.stat().st_mtime > built]
    except OSError:
        return
    if newer:
        log(
            f"note: {len(newer)} source file(s) are newer than {binary.name}; "
            "run `cargo build --release` to measure the current code"
        )


def tool_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
        ).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (subprocess.SubprocessError, OSError):
        return "?"


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace"
        )
    except OSError:
        return ""


def guard_pids(tool_pid: int) -> list[int]:
    return [p for p in descendants(tool_pid) if "__guard" in cmdline(p)]


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid` (the tool's own session)."""
    return [
        pid
        for pid, (state, _, _, s) in process_table().items()
        if s == sid and state != "Z"
    ]


# --------------------------------------------------------------------------
# Starting and stopping a tool
# --------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tool(argv: list[str], workdir: Path, starts: Path) -> subprocess.Popen:
    env = dict(os.environ, STARTS=str(starts), PORT=str(free_port()))
    out = open(workdir / "tool-output.log", "wb")
    try:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()
    _LIVE_PROCS.append(proc)
    return proc


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_tool(proc: subprocess.Popen) -> list[str]:
    """SIGINT, wait up to 5 s, then SIGKILL every group of the tool's session.

    The tool is its own session leader (start_new_session), and the servers it
    starts (each in its own process group) stay in that session unless they call
    setsid, so the session id finds every leftover server. Returns
    problems worth reporting (empty when the stop was clean).
    """
    problems = []
    sid = proc.pid
    # Remember the groups now: once the tool exits, its children are reparented.
    pgids = {sid}
    for pid in descendants(proc.pid):
        fields = proc_stat(pid)
        if fields is not None:
            pgids.add(int(fields[2]))
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            problems.append(f"did not exit within {STOP_TIMEOUT_S:.0f} s of SIGINT")
    # SIGKILL whatever is left: the recorded groups, then anything still in the session.
    for _ in range(50):
        left = session_members(sid)
        for pgid in pgids | {int(proc_stat(p)[2]) for p in left if proc_stat(p)}:
            _kill_group(pgid, signal.SIGKILL)
        if proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is not None and not session_members(sid):
            break
    else:
        problems.append(f"processes still alive in session {sid}: {session_members(sid)}")
    if proc in _LIVE_PROCS:
        _LIVE_PROCS.remove(proc)
    return problems


# --------------------------------------------------------------------------
# The measurement
# --------------------------------------------------------------------------


def read_starts(path: Path) -> list[int]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    # Ignore a trailing partial line (the shell may be mid-write).
    lines = text.split("\n")[:-1]
    return [int(x) for x in lines if x.strip().isdigit()]


def wait_for_count(
    path: Path, count: int, timeout: float, proc: subprocess.Popen | None = None
) -> list[int] | None:
    """Waits until `path` has `count` start lines; None on timeout or if `proc` exits."""
    deadline = time.monotonic() + timeout
    while True:
        starts = read_starts(path)
        if len(starts) >= count:
            return starts
        if time.monotonic() >= deadline or (proc is not None and proc.poll() is not None):
            return None
        time.sleep(POLL_S)


def wait_quiet(path: Path, quiet: float, cap: float) -> list[int]:
    """Waits until no new start has been logged for `quiet` s (at most `cap` s)."""
    deadline = time.monotonic() + cap
    starts = read_starts(path)
    last_change = time.monotonic()
    while time.monotonic() - last_change < quiet and time.monotonic() < deadline:
        time.sleep(0.01)
        now = read_starts(path)
        if len(now) != len(starts):
            starts, last_change = now, time.monotonic()
    return starts


def vim_save(workdir: Path, content: bytes) -> None:
    """What vim (with default 'backupcopy'/'writebackup') does on `:w`."""
    app = workdir / "app.py"
    backup = workdir / "app.py~"
    probe = workdir / "4913"  # vim's "can I create files here?" probe
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
    os.write(fd, b"")
    os.close(fd)
    os.unlink(probe)
    os.rename(app, backup)
    fd = os.open(app, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.chmod(app, 0o644)
    os.unlink(backup)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def app_source(n: int) -> bytes:
    return f"# save {n}\nprint('hello from save {n}')\n".encode()


def measure(name: str, argv_for, args) -> dict:
    """Runs one tool through the whole benchmark; returns its results."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-bench-"))
    _TEMP_DIRS.append(workdir)
    starts_log = workdir / "starts.log"  # *.log: outside the watched *.py
    (workdir / "app.py").write_bytes(app_source(0))
    argv = argv_for(workdir)
    result: dict = {"tool": name, "argv": argv, "ok": False}
    log(f"[{name}] {' '.join(argv)}")

    proc = start_tool(argv, workdir, starts_log)
    try:
        if wait_for_count(starts_log, 1, START_TIMEOUT_S, proc) is None:
            why = (
                f"exited with status {proc.returncode}"
                if proc.poll() is not None
                else f"the server did not start within {START_TIMEOUT_S:.0f} s"
            )
            raise RuntimeError(
                f"{name}: {why}"
                + tool_output_tail(workdir)
            )
        # The tool is up and watching; let any start-up events drain.
        starts = wait_quiet(starts_log, QUIET_S, SAVE_TIMEOUT_S)

        latencies: list[float] = []
        restarts: list[int] = []
        missed = 0
        total = args.warmup + args.saves
        for i in range(total):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited early (status {proc.returncode})"
                    + tool_output_tail(workdir)
                )
            before = len(starts)
            content = app_source(i + 1)
            t0 = time.time_ns()
            vim_save(workdir, content)
            seen = wait_for_count(starts_log, before + 1, SAVE_TIMEOUT_S, proc)
            warm = i < args.warmup
            if seen is None:
                log(f"[{name}] save {i + 1}: no restart within {SAVE_TIMEOUT_S:.0f} s")
                starts = read_starts(starts_log)
                if not warm:
                    missed += 1
                    restarts.append(len(starts) - before)
                continue
            latency_ms = (seen[before] - t0) / 1e6
            starts = wait_quiet(starts_log, QUIET_S, SAVE_TIMEOUT_S)
            if not warm:
                latencies.append(latency_ms)
                restarts.append(len(starts) - before)
            if args.verbose:
                tag = " (warm-up)" if warm else ""
                log(
                    f"[{name}] save {i + 1}: {latency_ms:7.2f} ms, "
                    f"{len(starts) - before} restart(s){tag}"
                )

        # Idle CPU: nothing changes for idle_seconds.
        time.sleep(SETTLE_S)
        guards = guard_pids(proc.pid) if name == "reloadsup" else []
        watched = [proc.pid, *guards]
        ticks0 = {p: cpu_ticks(p) for p in watched}
        log(f"[{name}] idle for {args.idle_seconds:g} s ...")
        time.sleep(args.idle_seconds)
        ticks1 = {p: cpu_ticks(p) for p in watched}
        idle_after = read_starts(starts_log)
        tool_ticks = (ticks1[proc.pid] or 0) - (ticks0[proc.pid] or 0)
        guard_ticks = sum(
            (ticks1[g] or 0) - (ticks0[g] or 0)
            for g in guards
            if ticks0[g] is not None and ticks1[g] is not None
        )

        rss_tool = rss_mib(proc.pid)
        rss_guard = sum(filter(None, (rss_mib(g) for g in guards))) if guards else None

        deviations = {
            f"save {args.warmup + k + 1}": n for k, n in enumerate(restarts) if n != 1
        }
        lat_sorted = sorted(latencies)
        result.update(
            ok=True,
            version=tool_version(Path(argv[0])),
            samples=len(latencies),
            missed=missed,
            latency_ms={
                "median": statistics.median(lat_sorted) if lat_sorted else None,
                "p95": percentile(lat_sorted, 95) if lat_sorted else None,
                "min": lat_sorted[0] if lat_sorted else None,
                "max": lat_sorted[-1] if lat_sorted else None,
                "all": [round(x, 3) for x in latencies],
            },
            restarts_per_save=(sum(restarts) / len(restarts)) if restarts else None,
            restart_deviations=deviations,
            idle_seconds=args.idle_seconds,
            idle_cpu_ticks=tool_ticks + guard_ticks,
            idle_cpu_ticks_tool=tool_ticks,
            idle_cpu_ticks_guard=guard_ticks if guards else None,
            idle_restarts=len(idle_after) - len(starts),
            clk_tck=CLK_TCK,
            rss_mib=rss_tool,
            guard_rss_mib=rss_guard,
            guard_pids=len(guards),
        )
    finally:
        problems = stop_tool(proc)
        result["stop_problems"] = problems
        for problem in problems:
            log(f"[{name}] stop: {problem}")
    return result


def tool_output_tail(workdir: Path, lines: int = 20) -> str:
    try:
        text = (workdir / "tool-output.log").read_text(errors="replace")
    except OSError:
        return ""
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\n--- tool output (last {lines} lines) ---\n{tail}" if tail else ""


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def fmt(value, spec: str = "7.1f") -> str:
    return format(value, spec) if value is not None else format("-", ">" + spec.split(".")[0])


def print_table(results: dict, notes: list[str], args) -> None:
    idle_hdr = f"idle CPU ticks ({args.idle_seconds:g} s)"
    print()
    print(
        f"{'tool':<10} {'median':>7} {'p95':>7} {'min':>7} {'max':>7}   "
        f"{'restarts/save':<14} {idle_hdr:<22} RSS MiB"
    )
    for name, r in results.items():
        if not r.get("ok"):
            print(f"{name:<10} {r.get('error', 'not measured')}")
            continue
        lat = r["latency_ms"]
        rss = fmt(r["rss_mib"], ".1f")
        if r["guard_rss_mib"] is not None:
            rss += f" (+{r['guard_rss_mib']:.1f} guard)"
        rps = fmt(r["restarts_per_save"], ".2f")
        print(
            f"{name:<10} {fmt(lat['median'])} {fmt(lat['p95'])} {fmt(lat['min'])} "
            f"{fmt(lat['max'])}   {rps:<14} {r['idle_cpu_ticks']:<22} {rss}"
        )
    ratio = ratio_of(results)
    if ratio is not None:
        print(f"ratio (watchexec / reloadsup median): {ratio:.1f}x")
    print(
        f"latencies in ms over {args.saves} saves each "
        f"(after {args.warmup} warm-up saves); 1 tick = {1000 // CLK_TCK} ms CPU"
    )
    for name, r in results.items():
        if not r.get("ok"):
            continue
        extra = []
        if r["missed"]:
            extra.append(f"{r['missed']} save(s) caused no restart within 5 s")
        if r["restart_deviations"]:
            devs = ", ".join(f"{k}: {v}" for k, v in r["restart_deviations"].items())
            extra.append(f"restarts != 1 for {devs}")
        if r["idle_restarts"]:
            extra.append(f"{r['idle_restarts']} restart(s) while idle")
        if r["stop_problems"]:
            extra.append("; ".join(r["stop_problems"]))
        if r["idle_cpu_ticks_guard"] is not None:
            extra.append(
                f"idle ticks: {r['idle_cpu_ticks_tool']} supervisor + "
                f"{r['idle_cpu_ticks_guard']} guard"
            )
        print(f"  {name} ({r['version']}): " + ("; ".join(extra) if extra else "ok"))
    for note in notes:
        print(f"note: {note}")


def ratio_of(results: dict) -> float | None:
    try:
        a = results["watchexec"]["latency_ms"]["median"]
        b = results["reloadsup"]["latency_ms"]["median"]
    except (KeyError, TypeError):
        return None
    if a is None or not b:
        return None
    return a / b


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def cleanup() -> None:
    # A second Ctrl-C must not cut the cleanup short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for proc in list(_LIVE_PROCS):
        try:
            stop_tool(proc)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            log(f"cleanup: {exc}")
    for d in list(_TEMP_DIRS):
        shutil.rmtree(d, ignore_errors=True)
        _TEMP_DIRS.remove(d)


def start_busy(count: int) -> subprocess.Popen | None:
    """`count` sleeping processes in a session of their own (a machine's other
    processes: a supervisor that reads all of /proc at each restart pays for each)."""
    if count <= 0:
        return None
    proc = subprocess.Popen(["sh", "-c", f'for i in $(seq {count}); do sleep 3600 & done; wait'],
                            start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.time() + 30
    while len(descendants(proc.pid)) < count and time.time() < deadline:
        time.sleep(0.1)
    log(f"{len(descendants(proc.pid))} busy processes running")
    return proc


def stop_busy(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        _kill_group(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Save -> restart latency, idle CPU and RSS of reloadsup vs watchexec."
    )
    parser.add_argument("--saves", type=int, default=40, help="measured saves per tool (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="extra warm-up saves, discarded (default 3)")
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="idle-CPU window (default 10)"
    )
    parser.add_argument("--tool", choices=["reloadsup", "watchexec", "both"], default="both")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--reloadsup", metavar="PATH", help="reloadsup binary (default: cargo target dir)")
    parser.add_argument("--watchexec", metavar="PATH", help="watchexec binary (default: PATH, ~/.cargo/bin)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every save on stderr")
    parser.add_argument(
        "--busy", type=int, default=0, metavar="N",
        help="run N idle processes meanwhile, as a desktop with a browser and an editor does (default 0)",
    )
    args = parser.parse_args()
    if args.saves < 1 or args.warmup < 0 or args.idle_seconds < 0:
        parser.error("--saves must be >= 1, --warmup and --idle-seconds >= 0")
    if not sys.platform.startswith("linux"):
        parser.error("this benchmark reads /proc and needs Linux")

    # Explicitly: a background job of a non-interactive shell starts with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)

    tools = ["reloadsup", "watchexec"] if args.tool == "both" else [args.tool]
    results: dict = {}
    notes: list[str] = []
    status = 0
    busy = start_busy(args.busy)
    try:
        for name in tools:
            if name == "reloadsup":
                binary = find_reloadsup(args.reloadsup)
                if binary is None or not binary.is_file():
                    msg = "reloadsup binary not found; run `cargo build --release` in the project"
                    results[name] = {"tool": name, "ok": False, "error": msg}
                    notes.append(msg)
                    status = 1
                    continue
                if not args.reloadsup and not os.environ.get("RELOADSUP_BIN"):
                    warn_if_stale(binary)

                def argv_for(_workdir, b=binary):
                    return [str(b), "-q", "run", "--no-reload", "-w", "*.py", "--", "sh", "-c", SERVER_SCRIPT]

            else:
                binary = find_watchexec(args.watchexec)
                if binary is None or not binary.is_file():
                    msg = (
                        "watchexec not found on PATH or in ~/.cargo/bin "
                        "(`cargo install watchexec-cli`); measured reloadsup only"
                    )
                    results[name] = {"tool": name, "ok": False, "error": "not installed"}
                    notes.append(msg)
                    log(f"note: {msg}")
                    continue

                # -n (--shell=none): exec the argv as given; by default watchexec
                # would join it into one string for $SHELL, which breaks `sh -c '...'`.
                def argv_for(workdir, b=binary):
                    return [
                        str(b), "-r", "-n", "-w", str(workdir), "-e", "py",
                        "--", "sh", "-c", SERVER_SCRIPT,
                    ]

            try:
                results[name] = measure(name, argv_for, args)
            except RuntimeError as exc:
                log(f"error: {exc}")
                results[name] = {"tool": name, "ok": False, "error": str(exc).splitlines()[0]}
                status = 1
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        status = 130
    finally:
        stop_busy(busy)
        cleanup()

    if status == 130:
        return status
    if args.json:
        out = {
            "saves": args.saves,
            "warmup": args.warmup,
            "idle_seconds": args.idle_seconds,
            "clk_tck": CLK_TCK,
            "tools": results,
            "ratio_watchexec_over_reloadsup_median": ratio_of(results),
            "notes": notes,
        }
        print(json.dumps(out, indent=2))
    else:
        print_table(results, notes, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
