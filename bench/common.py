"""Helpers the benchmarks share: free ports, waiting for a listener, the release
binary, stopping a process group, the process tree and CPU time from /proc, pinning
processes to CPUs, and reading wrk's report."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 15.0) -> None:
    """Waits until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def reloadsup_binary() -> Path:
    """Builds the release binary and returns its path."""
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return Path(re.search(r'"target_directory":"([^"]+)"', meta).group(1)) / "release" / "reloadsup"


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT to `proc`'s process group (started with `start_new_session=True`), then
    SIGKILL if it has not gone within `timeout` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pinned(cpus: set[int] | None):
    """A `preexec_fn` that keeps a child on `cpus` (None: no pinning)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def pin_processes(pids: list[int], cpus: set[int]) -> None:
    """Moves every thread of the processes `pids` onto `cpus`."""
    for process in pids:
        try:
            threads = [int(task.name) for task in Path(f"/proc/{process}/task").iterdir()]
        except OSError:
            continue  # a process that has just ended
        for thread in threads:
            try:
                os.sched_setaffinity(thread, cpus)
            except OSError:
                pass  # a thread that has just ended


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the `(comm)` field (index 0 = state), or None
    if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> int | None:
    """User plus system CPU time used so far by `pid` (its own threads, not its
    children), in clock ticks, or None if it is gone."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    # stat fields 14 (utime) and 15 (stime); fields[0] is field 3 (state).
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time used so far by the processes `pids` (gone ones count
    nothing), in seconds."""
    return sum(cpu_ticks(pid) or 0 for pid in pids) / os.sysconf("SC_CLK_TCK")


def system_seconds(pids: list[int]) -> float:
    """System (kernel) CPU time used so far by the processes `pids` (gone ones count
    nothing), in seconds: the part of `cpu_seconds` spent in system calls and the
    network stack on their behalf."""
    fields = [proc_stat(pid) for pid in pids]
    return sum(int(f[12]) for f in fields if f is not None) / os.sysconf("SC_CLK_TCK")


def busy_seconds(cpus: set[int] | None = None) -> float:
    """CPU time the machine has spent busy so far (everything but idle and I/O wait),
    over all CPUs or only `cpus`, in seconds: what every process together used."""
    total = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        wanted = name == "cpu" if cpus is None else name in {f"cpu{c}" for c in cpus}
        if wanted:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total / os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (state, ppid, pgid, sid) for every live process."""
    table = {}
    for name in os.listdir("/proc"):
        fields = proc_stat(int(name)) if name.isdigit() else None
        if fields is not None:
            table[int(name)] = (fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def descendants(root: int) -> list[int]:
    """Every live process below `root`: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in process_table().items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def to_ms(text: str) -> float:
    """`1.52ms`, `830.00us` or `1.01s` in milliseconds."""
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, path: str, seconds: int, connections: int, threads: int,
        headers: list[str] | None = None, cpus: set[int] | None = None) -> tuple[float, float, str]:
    """Runs wrk against 127.0.0.1:`port``path`, sending `headers` ("Name: value"), on
    `cpus` if given; returns requests/s, the median latency in ms, and wrk's line about
    errors (empty when there were none)."""
    extra = [arg for header in headers or [] for arg in ("-H", header)]
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra,
         f"http://127.0.0.1:{port}{path}"],
        check=True, capture_output=True, text=True, preexec_fn=pinned(cpus)).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"Latency Distribution\s+50%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return rps, p50, errors.group(0) if errors else ""
