#!/usr/bin/env python3
"""Benchmark: what the proxy costs, and what a client sees during restarts.

1. Throughput and latency, proxied vs direct, with `wrk` (Debian package `wrk`), 64
   connections, on a small page and a 1 MiB file. The dev server behind the proxy is
   `reloadsup serve` itself (a fast static server), so the proxy's own cost shows.
2. The restart gap: a client requests continuously through the proxy while the dev
   server (Python, binding 300 ms after it starts) is restarted N times; prints the
   number of failed requests (target: 0) and the slowest request.

    python3 bench/proxy_bench.py [--seconds 5] [--restarts 5]

Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import free_port, reloadsup_binary, wait_listening, wrk

SLOW_APP = """
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
time.sleep(0.3)
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"pid %d" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class Run:
    """A `reloadsup run` in a folder; stopped (with its group) on exit."""

    def __init__(self, binary: Path, folder: Path):
        self.proc = subprocess.Popen([str(binary), "-q", "run"], cwd=folder, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def throughput(binary: Path, work: Path, seconds: int) -> None:
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>t</title>" + "<p>hello</p>" * 150)
    (site / "big.bin").write_bytes(os.urandom(1024 * 1024))
    upstream, proxy = free_port(), free_port()
    (work / "reload.toml").write_text(
        f'[server]\ncommand = ["{binary}", "-q", "serve", "site", "--listen", "127.0.0.1:{upstream}"]\n'
        f'[watch]\nfile_dep = ["nothing"]\n[reload]\nenabled = false\n'
        f'[proxy]\nlisten = "127.0.0.1:{proxy}"\nupstream = "127.0.0.1:{upstream}"\n')
    run = Run(binary, work)
    try:
        wait_listening(upstream)
        wait_listening(proxy)
        print(f"\n1. wrk -t2 -c64 -d{seconds}s; direct = the dev server, proxied = through reloadsup\n")
        print(f"{'file':<12} {'direct req/s':>13} {'proxied req/s':>14} {'ratio':>7} "
              f"{'direct p50':>11} {'proxied p50':>12} {'added':>8}")
        for path, label in [("/index.html", "2 KiB page"), ("/big.bin", "1 MiB file")]:
            d_rps, d_p50, d_err = wrk(upstream, path, seconds, 64, 2)
            p_rps, p_p50, p_err = wrk(proxy, path, seconds, 64, 2)
            print(f"{label:<12} {d_rps:>13.0f} {p_rps:>14.0f} {p_rps / d_rps:>6.0%} "
                  f"{d_p50:>9.2f}ms {p_p50:>10.2f}ms {p_p50 - d_p50:>6.2f}ms {d_err} {p_err}")
    finally:
        run.stop()


def restart_gap(binary: Path, work: Path, restarts: int) -> None:
    (work / "app.py").write_text(SLOW_APP)
    upstream, proxy = free_port(), free_port()
    (work / "reload.toml").write_text(
        f'[server]\ncommand = ["python3", "app.py", "{upstream}"]\n'
        f'[watch]\nfile_dep = ["app.py"]\n[reload]\nenabled = false\n'
        f'[proxy]\nlisten = "127.0.0.1:{proxy}"\nupstream = "127.0.0.1:{upstream}"\n')
    run = Run(binary, work)
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=30)
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
                conn.close()
                if response.status != 200 or not body.startswith(b"pid "):
                    errors.append(f"{response.status} {body[:60]!r}")
            except OSError as err:
                errors.append(str(err))
            latencies.append((time.perf_counter() - began) * 1000)

    try:
        wait_listening(proxy)
        wait_listening(upstream)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for n in range(restarts):
            time.sleep(0.5)
            (work / "app.py").write_text(SLOW_APP + f"\n# {n}\n")
            time.sleep(0.1)
            wait_listening(upstream)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        latencies.sort()
        print(f"\n2. restart gap: 4 clients through the proxy, {restarts} restarts of a server "
              f"that binds 300 ms after it starts")
        print(f"   requests: {len(latencies)}, failed: {len(errors)} (target 0)"
              f"{' ' + repr(errors[:3]) if errors else ''}")
        print(f"   latency: median {latencies[len(latencies) // 2]:.1f} ms, "
              f"max {latencies[-1]:.0f} ms (a request held across a restart)")
    finally:
        stop.set()
        run.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    binary = reloadsup_binary()
    work = Path(tempfile.mkdtemp(prefix="reloadsup-proxy-bench-"))
    try:
        (work / "a").mkdir()
        (work / "b").mkdir()
        throughput(binary, work / "a", args.seconds)
        restart_gap(binary, work / "b", args.restarts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
