#!/usr/bin/env python3
"""Benchmark: what a burst of saves costs reloadsup and watchexec.

A program that writes many files at once (`git checkout`, `rsync`, a formatter, a code
generator) should cause one restart, soon after it ends, for little CPU. For each tool
and each burst, in a fresh folder of 10,000 watched `.py` files (100 folders of 100):

- restarts: how many the burst caused (the server logs each start; counted once no
  new start has come for 2 s);
- first / last: when the first and the last of them came, in ms after the burst's
  last write (negative: before it ended, onto a half-written tree);
- cpu: the tool's own CPU time (user + system) from the burst's start until it is
  quiet again, in ms.

Bursts: N files rewritten in place, and N files saved through a temp file renamed
over them (`.fK.py.tmp`, as rsync and many tools do). And a tree of M watched folders
removed at once (`rm -rf vendor`, a `git checkout` of a branch without a vendored
tree), each folder with one `.py` file, beside the 10,000 files.

    python3 bench/burst.py [--sizes 1000,10000] [--trees 10000] [--tool reloadsup|watchexec|both]

Not a test: it prints numbers. watchexec (`cargo install watchexec-cli`) is looked up
as `restart_latency.py` does; without it, reloadsup is measured alone.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_ticks, reloadsup_binary
from restart_latency import (CLK_TCK, cleanup, find_watchexec, read_starts, start_tool, stop_tool,
                             wait_for_count, wait_quiet)

SERVER = 'date +%s%N >> "$STARTS"; exec sleep 1000'
FOLDERS, FILES = 100, 100
QUIET_S = 2.0


def make_tree(root: Path) -> None:
    for d in range(FOLDERS):
        folder = root / "src" / f"d{d}"
        folder.mkdir(parents=True)
        for f in range(FILES):
            (folder / f"f{f}.py").write_text("v = 1\n")


def make_vendor_tree(root: Path, folders: int) -> None:
    """`folders` folders under `vendor/`, a hundred to a parent, each with one file."""
    for n in range(folders):
        folder = root / "vendor" / f"a{n // 100}" / f"b{n % 100}"
        folder.mkdir(parents=True)
        (folder / "m.py").write_text("v = 1\n")


def remove_vendor_tree(root: Path) -> None:
    shutil.rmtree(root / "vendor")


def burst(root: Path, count: int, through_temp: bool) -> None:
    for i in range(count):
        d, f = divmod(i, FILES)
        path = root / "src" / f"d{d}" / f"f{f}.py"
        if through_temp:
            temp = path.with_name(f".f{f}.py.tmp")
            temp.write_text("v = 2\n")
            os.replace(temp, path)
        else:
            with open(path, "a") as file:
                file.write("# 2\n")


def measure(argv_for, act, prepare=None) -> str:
    """Runs the tool on a fresh tree (`make_tree`, then `prepare` if given), then
    `act` on it, and says what the tool did."""
    root = Path(tempfile.mkdtemp(prefix="reloadsup-burst-"))
    try:
        make_tree(root)
        if prepare is not None:
            prepare(root)
        starts = root / "starts.log"
        proc = start_tool(argv_for(root), root, starts)
        try:
            if wait_for_count(starts, 1, 10.0, proc) is None:
                return "did not start its server"
            # The initial scan's own work is over before the burst begins.
            wait_quiet(starts, 1.0, 10.0)
            before = len(read_starts(starts))
            ticks = cpu_ticks(proc.pid) or 0
            act(root)
            ended = time.time_ns()
            after = wait_quiet(starts, QUIET_S, 60.0)[before:]
            cpu_ms = ((cpu_ticks(proc.pid) or 0) - ticks) * 1000 / CLK_TCK
        finally:
            problems = stop_tool(proc)
        if problems:
            return "; ".join(problems)
        if not after:
            return f"{0:>8} {'-':>9} {'-':>9} {cpu_ms:>8.0f}"
        first, last = ((t - ended) / 1e6 for t in (after[0], after[-1]))
        return f"{len(after):>8} {first:>9.0f} {last:>9.0f} {cpu_ms:>8.0f}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="burst sizes, comma-separated")
    parser.add_argument("--trees", default="10000",
                        help="sizes of the folder trees removed, comma-separated (0: none)")
    parser.add_argument("--tool", choices=["reloadsup", "watchexec", "both"], default="both")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    trees = [int(s) for s in args.trees.split(",") if int(s) > 0]

    tools = []
    if args.tool in ("reloadsup", "both"):
        binary = reloadsup_binary()
        tools.append(("reloadsup", lambda root, b=binary: [
            str(b), "-q", "run", "--no-reload", "-w", "**/*.py", "--", "sh", "-c", SERVER]))
    if args.tool in ("watchexec", "both"):
        binary = find_watchexec(None)
        if binary is None:
            print("watchexec not found (`cargo install watchexec-cli`); measuring reloadsup alone",
                  file=sys.stderr)
        else:
            tools.append(("watchexec", lambda root, b=binary: [
                str(b), "-r", "-n", "-w", str(root), "-e", "py", "--", "sh", "-c", SERVER]))

    print(f"{FOLDERS * FILES:,} watched files; times in ms after the burst's last write\n")
    print(f"{'burst':<24} {'tool':<10} {'restarts':>8} {'first':>9} {'last':>9} {'cpu ms':>8}")
    try:
        for count in sizes:
            for through_temp in (False, True):
                label = f"{count:,} {'via temp files' if through_temp else 'in place'}"
                for name, argv_for in tools:
                    act = functools.partial(burst, count=count, through_temp=through_temp)
                    print(f"{label:<24} {name:<10} {measure(argv_for, act)}", flush=True)
        for folders in trees:
            label = f"{folders:,} folders removed"
            for name, argv_for in tools:
                prepare = functools.partial(make_vendor_tree, folders=folders)
                result = measure(argv_for, remove_vendor_tree, prepare)
                print(f"{label:<24} {name:<10} {result}", flush=True)
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
