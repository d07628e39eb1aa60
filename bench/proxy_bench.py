#!/usr/bin/env python3
"""Benchmark: what the proxy costs next to its peers, and what a client sees during
restarts.

1. Throughput and latency with `wrk` (Debian package `wrk`), straight to a dev server
   and through each proxy in the same run: reloadsup, nginx as a reverse proxy (the
   reference for a cheap proxy; Debian package `nginx-light`, optional), HAProxy in
   TCP mode (a relay that copies the bytes each way and does no HTTP at all: the floor
   under any proxy's cost here; Debian package `haproxy`, optional) and browser-sync's
   proxy (the peer tool; `npm ci` in this folder, optional). Three dev
   servers, slowest to fastest: Python's threading `http.server` (the speed of a
   Flask or Django dev server), Node's `http` module, and `reloadsup serve` (a static
   server faster than any dev server: the worst case for a proxy). Three requests: a
   2 KiB page as a browser navigation (the proxies that inject do), a 2 KiB asset, and
   a 1 MiB file.
2. The restart gap: a client requests continuously through the proxy while the dev
   server (Python, binding 300 ms after it starts) is restarted N times; prints the
   number of failed requests (target: 0) and the slowest request.

Each proxy's CPU time per request (user + system, read from /proc) is printed beside
its throughput, and the system (kernel) part of it on its own. With --pin, wrk and the dev server share one CPU and the proxy under
test has another to itself, as on a machine with cores to spare.

Under each request, a budget: the most CPU time a proxy could spend per request and
still reach 80% of direct throughput on this machine. It is what the CPUs offer at
80% of the direct rate, less what wrk and the dev server take at that rate (the whole
machine's busy time per request in the direct runs, read from /proc/stat, so other
load on the machine counts against it too), per request. A proxy whose cpu/req is
above it cannot reach 80% here, however it is built.

    python3 bench/proxy_bench.py [--seconds 3] [--rounds 3] [--restarts 5] [--only node] [--pin]

Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import (busy_seconds, cpu_seconds, descendants, free_port, pin_processes, pinned, reloadsup_binary,
                    system_seconds,
                    stop_group, wait_listening, wrk)

BENCH = Path(__file__).resolve().parent

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

# Dev servers that answer from memory: the 2 KiB page at any path but /big.bin.
PYTHON_APP = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
PAGE = open("site/index.html", "rb").read()
BIG = open("site/big.bin", "rb").read()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        big = self.path == "/big.bin"
        body = BIG if big else PAGE
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream" if big else "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # wrk hanging up at the end of a run
Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

NODE_APP = """
const fs = require("fs");
const page = fs.readFileSync("site/index.html");
const big = fs.readFileSync("site/big.bin");
require("http").createServer((req, res) => {
  const isBig = req.url === "/big.bin";
  res.writeHead(200, {
    "Content-Type": isBig ? "application/octet-stream" : "text/html; charset=utf-8",
    "Content-Length": (isBig ? big : page).length,
  });
  res.end(isBig ? big : page);
}).listen(Number(process.argv[2]), "127.0.0.1");
"""

# A page shaped like a dev server's: a head with a title, a stylesheet and a script,
# then about 2 KiB of body.
PAGE = ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Dev page</title>"
        "<link rel=stylesheet href=/style.css><script src=/app.js defer></script></head><body>"
        + "".join(f"<p class=item>Item {i}: some text for the page.</p>\n" for i in range(40))
        + "</body></html>\n")

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work};
  uwsgi_temp_path {work}; scgi_temp_path {work};
  upstream dev {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://dev; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""

HAPROXY_CONF = """
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend browsers
  bind 127.0.0.1:{listen}
  default_backend dev
backend dev
  server dev 127.0.0.1:{upstream}
"""

# (label, path, navigation): a navigation sends what a browser sends for a page load.
REQUESTS = [("2 KiB page", "/index.html", True), ("2 KiB asset", "/app.css", False),
            ("1 MiB file", "/big.bin", False)]
NAVIGATION = ["Accept: text/html,application/xhtml+xml", "Sec-Fetch-Dest: document"]


@dataclass
class Cpus:
    """Where each side runs: `load` for wrk and the dev server, `proxy` for the proxy
    under test; both None when nothing is pinned."""
    load: set[int] | None = None
    proxy: set[int] | None = None


class Run:
    """A `reloadsup run` in a folder, on `cpus` if given; stopped (with its group) on
    exit."""

    def __init__(self, binary: Path, folder: Path, quiet: bool = False, cpus: set[int] | None = None):
        output = subprocess.DEVNULL if quiet else None
        self.proc = subprocess.Popen([str(binary), "-q", "run"], cwd=folder, stdin=subprocess.DEVNULL,
                                     stdout=output, stderr=output, start_new_session=True,
                                     preexec_fn=pinned(cpus))

    def stop(self) -> None:
        stop_group(self.proc)


@dataclass
class Peer:
    """A proxy besides reloadsup, in front of the same dev server."""
    name: str
    proc: subprocess.Popen
    port: int


def start_nginx(work: Path, upstream: int, cpus: set[int] | None) -> Peer | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not nginx:
        return None
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, upstream=upstream, listen=port))
    proc = subprocess.Popen([nginx, "-c", str(conf)], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=pinned(cpus))
    wait_listening(port)
    return Peer("nginx", proc, port)


def start_haproxy(work: Path, upstream: int, cpus: set[int] | None) -> Peer | None:
    """HAProxy relaying TCP: one thread, as nginx has one worker and reloadsup's proxy one
    runtime thread."""
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if not haproxy:
        return None
    port = free_port()
    conf = work / "haproxy.cfg"
    conf.write_text(HAPROXY_CONF.format(upstream=upstream, listen=port))
    proc = subprocess.Popen([haproxy, "-db", "-f", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=pinned(cpus))
    wait_listening(port)
    return Peer("haproxy (tcp)", proc, port)


def start_browser_sync(upstream: int, cpus: set[int] | None) -> Peer | None:
    tool = BENCH / "node_modules" / ".bin" / "browser-sync"
    if not tool.exists():
        return None
    port = free_port()
    proc = subprocess.Popen([str(tool), "start", "--proxy", f"127.0.0.1:{upstream}", "--port", str(port),
                             "--no-open", "--no-notify", "--no-ui", "--logLevel", "silent"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=pinned(cpus))
    wait_listening(port, timeout=30)
    return Peer("browser-sync", proc, port)


def dev_servers(binary: Path) -> list[tuple[str, list[str]]]:
    """(name, command with {port}) of each dev server this machine can run."""
    servers = [("python http.server", ["python3", "app.py", "{port}"])]
    if shutil.which("node"):
        servers.append(("node http", ["node", "app.js", "{port}"]))
    servers.append(("reloadsup serve", [str(binary), "-q", "serve", "site", "--listen", "127.0.0.1:{port}"]))
    return servers


def toml_list(words: list[str]) -> str:
    return "[" + ", ".join(f'"{w}"' for w in words) + "]"


def throughput(binary: Path, work: Path, seconds: int, rounds: int, only: str | None, cpus: Cpus) -> None:
    site = work / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    (site / "app.css").write_text(PAGE.replace("<", "/* ").replace(">", " */"))
    (site / "big.bin").write_bytes(os.urandom(1024 * 1024))
    (work / "app.py").write_text(PYTHON_APP)
    (work / "app.js").write_text(NODE_APP)
    print(f"\n1. wrk -t2 -c64 -d{seconds}s, and -t1 -c1 for the latency of one client alone; "
          f"every proxy in front of the same dev server; medians of {rounds} rounds")
    if cpus.load is not None:
        print(f"   pinned: wrk and the dev server on CPU {sorted(cpus.load)}, "
              f"the proxy under test on CPU {sorted(cpus.proxy)}")
    print("   cpu/req: the proxy's own CPU time (user + system) per request under -c64")
    for name, command in dev_servers(binary):
        if only and only not in name:
            continue
        measure_server(binary, work, seconds, rounds, name, command, cpus)


def measure_server(binary: Path, work: Path, seconds: int, rounds: int, name: str,
                   command: list[str], cpus: Cpus) -> None:
    upstream, proxy = free_port(), free_port()
    words = [w.replace("{port}", str(upstream)) for w in command]
    (work / "reload.toml").write_text(
        f'[server]\ncommand = {toml_list(words)}\n'
        f'[watch]\nfile_dep = ["nothing"]\n[reload]\nenabled = false\n'
        f'[proxy]\nlisten = "127.0.0.1:{proxy}"\nupstream = "127.0.0.1:{upstream}"\n')
    run = Run(binary, work, quiet=True, cpus=cpus.proxy)
    peers: list[Peer] = []
    try:
        wait_listening(upstream)
        wait_listening(proxy)
        if cpus.load is not None:
            # The dev server (and reloadsup's guard), started on the proxy's CPU.
            pin_processes(descendants(run.proc.pid), cpus.load)
        peers = [p for p in (start_nginx(work, upstream, cpus.proxy), start_haproxy(work, upstream, cpus.proxy),
                             start_browser_sync(upstream, cpus.proxy))
                 if p]
        # (name, port, the processes whose CPU time is the proxy's own)
        targets = [("direct", upstream, []), ("reloadsup", proxy, [run.proc.pid])] + [
            (p.name, p.port, [p.proc.pid, *descendants(p.proc.pid)]) for p in peers]
        print(f"\n   dev server: {name}")
        print(f"   {'request':<12} {'via':<13} {'req/s':>8} {'of direct':>10} {'cpu/req':>9} {'sys/req':>8} "
              f"{'p50 @64':>9} "
              f"{'added':>8} {'p50 @1':>8} {'added':>8}")
        for label, path, navigation in REQUESTS:
            headers = NAVIGATION if navigation else []
            # Each target in turn, `rounds` times over, so a burst of load from
            # elsewhere on the machine lands on all of them alike; medians are shown.
            runs: dict[str, list[tuple[float, float, float, float, float, str]]] = {via: [] for via, _, _ in targets}
            for _ in range(rounds):
                for via, port, pids in targets:
                    # Direct, the machine's busy time: what wrk and the dev server take.
                    before = busy_seconds(cpus.load) if via == "direct" else cpu_seconds(pids)
                    system_before = system_seconds(pids)
                    rps, p50, errors = wrk(port, path, seconds, 64, 2, headers, cpus.load)
                    after = busy_seconds(cpus.load) if via == "direct" else cpu_seconds(pids)
                    requests = max(1.0, rps * seconds)
                    cpu = (after - before) / requests * 1e6
                    system = (system_seconds(pids) - system_before) / requests * 1e6
                    _, p50_one, errors_one = wrk(port, path, max(1, seconds // 2), 1, 1, headers, cpus.load)
                    runs[via].append((rps, cpu, system, p50, p50_one, errors or errors_one))
            direct = [statistics.median(column) for column in list(zip(*runs["direct"]))[:5]]
            for via, _, _ in targets:
                rps, cpu, system, p50, p50_one = (statistics.median(column)
                                                  for column in list(zip(*runs[via]))[:5])
                errors = "; ".join(sorted({r[5] for r in runs[via] if r[5]}))
                if via == "direct":
                    ratio = cpu_text = system_text = added = added_one = ""
                else:
                    ratio = f"{rps / direct[0]:.0%}"
                    cpu_text = f"{cpu:.0f}us"
                    system_text = f"{system:.0f}us"
                    added = f"{p50 - direct[3]:+.2f}"
                    added_one = f"{p50_one - direct[4]:+.2f}"
                flag = f"  ({errors})" if errors else ""
                print(f"   {label:<12} {via:<13} {rps:>8.0f} {ratio:>10} {cpu_text:>9} {system_text:>8} "
                      f"{p50:>7.2f}ms {added:>8} "
                      f"{p50_one:>6.2f}ms {added_one:>8}{flag}")
            print(f"   {'':<12} {'budget (80%)':<13} {'':>8} {'':>10} {budget(direct[0], direct[1], cpus):>9}  "
                  f"(wrk and the server: {direct[1]:.0f}us/req)")
    finally:
        for peer in peers:
            stop_group(peer.proc)
        run.stop()


def budget(direct_rps: float, load_us: float, cpus: Cpus) -> str:
    """The most CPU a proxy may spend per request (see the notes at the top) to relay
    80% of `direct_rps`, when wrk and the dev server took `load_us` per request."""
    rate = 0.8 * direct_rps
    if cpus.proxy is not None:
        # A CPU of its own; the load keeps its own, where it ran the direct rate.
        spare = float(len(cpus.proxy))
    else:
        spare = len(os.sched_getaffinity(0)) - rate * load_us / 1e6
    return f"{max(0.0, spare) / rate * 1e6:.0f}us" if rate > 0 else "-"


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
    parser.add_argument("--seconds", type=int, default=3, help="length of each loaded wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each target, interleaved")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--only", help="only the dev server whose name contains this (python, node, serve)")
    parser.add_argument("--pin", action="store_true",
                        help="wrk and the dev server on one CPU, the proxy under test on another")
    args = parser.parse_args()
    cpus = Cpus()
    if args.pin:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            print("--pin needs two CPUs", file=sys.stderr)
            return 2
        cpus = Cpus(load={available[0]}, proxy={available[1]})
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    # SIGTERM (and SIGHUP) unwind like Ctrl-C, so every server started here is stopped.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.default_int_handler)
    binary = reloadsup_binary()
    work = Path(tempfile.mkdtemp(prefix="reloadsup-proxy-bench-"))
    try:
        (work / "a").mkdir()
        (work / "b").mkdir()
        throughput(binary, work / "a", args.seconds, args.rounds, args.only, cpus)
        restart_gap(binary, work / "b", args.restarts)
    except KeyboardInterrupt:
        print("interrupted; everything started here has been stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
