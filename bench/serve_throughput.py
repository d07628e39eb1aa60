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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import free_port, reloadsup_binary, stop_group, wait_listening, wrk


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
                rps, p50, errors = wrk(port, path, args.seconds, args.connections, 1)
                results[(label, tool)] = (rps, f"{p50:.2f}ms {errors}".strip())
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
            stop_group(proc, timeout=5)
        shutil.rmtree(site, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
