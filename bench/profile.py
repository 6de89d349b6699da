#!/usr/bin/env python3
"""Instruction counts and allocations per message, under valgrind (counts
instructions, so the figures repeat on a loaded machine where timings do not).

    bench/profile.py callgrind [--messages 2000] [--scenario relay|local]
        Tern (release build) under callgrind; the counters are zeroed once it
        listens and dumped once every message has arrived, so start-up and
        shutdown are left out. Prints instructions per message and the top
        inclusive costs (callgrind_annotate); keeps the profile (--keep DIR).
    bench/profile.py dhat [--messages 2000]
        Tern under dhat twice (N/4 and N messages); the difference of the
        totals over the difference of messages is the allocations (blocks and
        bytes) per message, start-up excluded.

The relay scenario is smtp-source -> Tern -> smtp-sink (5 KB, 20 sessions,
one message per session); local is smtp-source -> a local user. Tern with
plugins cannot run under valgrind (wasmtime's pooling allocator reserves
more address space than it allows): bench/plugin_cost.py profiles plugins
with perf instead.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import load
import mta
from mta import ROOT, Tern, wait_until

TERN_CONFIG = '[auth]\nverify = false\n[limits]\nmax_connections = 2000\n'


def run_tern(work, scenario, messages, sessions, size, wrapper, between=None):
    """Runs `messages` through Tern started under `wrapper`; `between(pid,
    phase)` is called with "start" once it listens and "end" once all arrived."""
    sink = mta.Sink(work) if scenario != "local" else None
    try:
        if scenario == "relay":
            config = (
                'local_domains = ["bench.test"]\n'
                f'[relay]\ntrusted_networks = ["127.0.0.0/8"]\nsmarthost = "127.0.0.1:{sink.port}"\n'
            )
            users, rcpt = (), "rcpt@sink.test"
        else:
            config, users, rcpt = 'local_domains = ["bench.test"]\n', ["user0@bench.test"], "user0@bench.test"
        config += TERN_CONFIG
        server = Tern(work / f"tern-{messages}", config, users=users, wrapper=wrapper)
        try:
            baseline = sink.received() if sink else 0
            if between:
                between(server.pid, "start")
            t0 = time.perf_counter()
            load.smtp_source(server.port, messages, sessions, size, "sender@outside.test", rcpt)
            if sink:
                wait_until(lambda: sink.received() >= messages + baseline, "the sink", limit=3600, step=0.2)
            seconds = time.perf_counter() - t0
            if between:
                between(server.pid, "end")
        finally:
            server.stop(timeout=300)
        return seconds
    finally:
        if sink:
            sink.stop()


def callgrind(args, work):
    out = work / "callgrind.out"
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]

    def control(pid, phase):
        time.sleep(1)
        # Tern's own pid is valgrind's: callgrind_control finds it by pid.
        flag = "-z" if phase == "start" else "--dump=messages"
        subprocess.run(["callgrind_control", flag, str(pid)], check=True, stdout=subprocess.DEVNULL)
        time.sleep(1)

    seconds = run_tern(work, args.scenario, args.messages, args.sessions, args.size, wrapper, control)
    dumps = sorted(work.glob("callgrind.out.*"), key=lambda p: p.stat().st_mtime)
    dump = next(p for p in dumps if "messages" in p.read_text(errors="replace")[:4000])
    total = 0
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    print(f"{args.messages} messages ({args.scenario}, {args.size} bytes, {args.sessions} sessions) "
          f"in {seconds:.1f} s under callgrind")
    print(f"instructions: {total:,} total, {total // args.messages:,} per message")
    annotate = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", f"--threshold={args.threshold}", str(dump)],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = [l for l in annotate.splitlines() if l.strip()]
    start = next((i for i, l in enumerate(lines) if "file:function" in l), 0)
    for l in lines[start : start + args.top + 1]:
        print(l[:200])
    if args.keep:
        shutil.copy(dump, args.keep)
        print(f"profile kept in {args.keep} (callgrind_annotate --inclusive=yes {args.keep})")


def dhat(args, work):
    counts = [max(1, args.messages // 4), args.messages]
    totals = []
    for n in counts:
        out = work / f"dhat-{n}.json"
        wrapper = ["valgrind", "--tool=dhat", f"--dhat-out-file={out}"]
        run_tern(work, args.scenario, n, args.sessions, args.size, wrapper)
        data = json.loads(out.read_text())
        # dhat's JSON: "tbk" total blocks, "tb" total bytes, per program point.
        blocks = sum(pp["tbk"] for pp in data["pps"])
        size = sum(pp["tb"] for pp in data["pps"])
        totals.append((blocks, size))
        print(f"{n} messages: {blocks:,} allocations, {size:,} bytes allocated in all", file=sys.stderr)
    dn = counts[1] - counts[0]
    blocks = (totals[1][0] - totals[0][0]) / dn
    size = (totals[1][1] - totals[0][1]) / dn
    print(f"per message ({args.scenario}, {args.size} bytes): {blocks:.0f} allocations, {size / 1024:.0f} KiB allocated")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=["callgrind", "dhat"])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--scenario", choices=["relay", "local"], default="relay")
    ap.add_argument("--top", type=int, default=40, help="lines of callgrind_annotate to show")
    ap.add_argument("--threshold", type=float, default=99)
    ap.add_argument("--keep", help="copy the callgrind profile here")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("smtp-source"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind", "postfix"], check=True,
                       env=dict(__import__("os").environ, DEBIAN_FRONTEND="noninteractive"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tern"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="tern-profile."))
    try:
        (callgrind if args.tool == "callgrind" else dhat)(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
