#!/usr/bin/env python3
"""Benchmark: static-file throughput of `reloadsup serve` against `python3 -m http.server`.

Both serve the same folder in the same run; `wrk` (Debian package `wrk`) loads each in
turn with the same settings, on a small HTML page and on a 1 MiB file. Prints requests
per second, latency and the ratio reloadsup / python. Not a test: it prints numbers.

    python3 bench/serve_throughput.py [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


def reloadsup_binary() -> Path:
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    target = re.search(r'"target_directory":"([^"]+)"', meta).group(1)
    return Path(target) / "release" / "reloadsup"


def wrk(port: int, path: str, seconds: int, connections: int) -> tuple[float, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}{path}"],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"Latency Distribution\s+50%\s+(\S+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return rps, p50 + (f" ({errors.group(0)})" if errors else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    site = Path(tempfile.mkdtemp(prefix="reloadsup-serve-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        (site / "index.html").write_text("<!doctype html><html><head><title>t</title></head><body>"
                                         + "<p>hello</p>" * 150 + "</body></html>")
        (site / "big.bin").write_bytes(os.urandom(1024 * 1024))
        binary = reloadsup_binary()
        ports = {"reloadsup": free_port(), "python": free_port()}
        procs.append(subprocess.Popen(
            [str(binary), "-q", "serve", str(site), "--listen", f"127.0.0.1:{ports['reloadsup']}"],
            stdin=subprocess.DEVNULL, start_new_session=True))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", str(ports["python"]), "--bind", "127.0.0.1",
             "--directory", str(site)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        for port in ports.values():
            wait_listening(port)
        results = {}
        for path, label in [("/index.html", "small page (2 KiB)"), ("/big.bin", "1 MiB file")]:
            for tool, port in ports.items():
                results[(label, tool)] = wrk(port, path, args.seconds, args.connections)
        print(f"\nwrk -t1 -c{args.connections} -d{args.seconds}s, both servers in this run\n")
        print(f"{'file':<20} {'server':<10} {'req/s':>10} {'p50':>12}")
        for (label, tool), (rps, p50) in results.items():
            print(f"{label:<20} {tool:<10} {rps:>10.0f} {p50:>12}")
        for label in ["small page (2 KiB)", "1 MiB file"]:
            ratio = results[(label, "reloadsup")][0] / results[(label, "python")][0]
            print(f"ratio reloadsup / python, {label}: {ratio:.1f}x")
        return 0
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(site, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
