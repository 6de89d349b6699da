#!/usr/bin/env python3
"""What each shipped plugin costs: compare.py's `plugins` scenario (Tern
forwarding through an alias, so the client is not trusted and every hook
runs; 20 sessions of smtp-source, 5 KB messages) with no plugin, each of
compare.PLUGINS alone, and all of them, alternated --rounds times. Prints the
end-to-end rate and Tern's CPU per 1,000 messages of each run; CPU per
message is the steadier figure on a shared machine. The profile behind
bench/README.md's "3 plugins" row: callgrind cannot run Tern with plugins
(valgrind cannot reserve the address space of wasmtime's pooling allocator),
so --perf samples the all-plugins run with perf's cpu-clock instead, and the
run without plugins into FILE.none to set beside it (those runs' own rates
and CPU then include perf's cost).

--threads splits Tern's CPU per message by thread (tokio workers, sled's
I/O pool, the store's writer and flusher), user and system, with context
switches: where a plugin's cost lands. --calls asks `tern trace --json`
after each run with plugins how long each plugin hook took inside the
server (wall time, so a call preempted on the busy machine counts long):
mean and percentiles (10th to 99th) per hook.

--binary NAME=PATH (given twice or more) runs each set on each of these Tern
binaries in turn, the order reversed every other round, so that two builds
meet the machine's changing speed alike (the A/B of a change; the shipped
plugins are the ones built, the same for every binary). Each run is printed
as it ends; the medians per binary and set, with the share of the rate lost
against the set `none`, close the output.

    python3 bench/plugin_cost.py [--messages 5000] [--rounds 2] [--sets none,all]
                                 [--perf FILE [--flat]] [--threads] [--calls]
                                 [--binary old=/tmp/tern-old --binary new=target/release/tern]
    perf report -i FILE --no-children --sort dso,symbol   # where the time went
"""

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import compare

SETS = [(), *((name,) for name in compare.PLUGINS), tuple(compare.PLUGINS)]


def perf_recorder(path, flat=False):
    """perf record on Tern while the messages run. Software clock sampling:
    this virtual machine has no hardware counters, but cpu-clock works.
    `flat`: no call graphs (DWARF unwinding costs enough to change what
    it measures; flat samples still give each thread's symbols)."""
    graph = [] if flat else ["--call-graph", "dwarf,16384"]

    @contextlib.contextmanager
    def record(pid):
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", *graph,
             "-p", str(pid), "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        try:
            yield
        finally:
            perf.send_signal(signal.SIGINT)
            perf.wait()

    return record


def thread_times(pid):
    """Per thread-name group (digits dropped: sled-io-3 -> sled-io):
    user and system clock ticks, voluntary and involuntary switches."""
    out = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1:stat.rindex(")")].rstrip("0123456789-")
        fields = stat[stat.rindex(")") + 2:].split()
        out[(name, "user")] += int(fields[11])
        out[(name, "sys")] += int(fields[12])
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                out[(name, "vcs")] += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                out[(name, "ncs")] += int(line.split()[1])
    return out


def thread_recorder(messages):
    """Prints Tern's CPU per message by thread group over the run."""
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")

    @contextlib.contextmanager
    def record(pid):
        before = thread_times(pid)
        try:
            yield
        finally:
            after = thread_times(pid)
            for name in sorted({k[0] for k in after}):
                d = {m: after[(name, m)] - before[(name, m)] for m in ("user", "sys", "vcs", "ncs")}
                if not any(d.values()):
                    continue
                print(f"    {name:18} user {d['user'] * tick_us / messages:6.1f} us  sys {d['sys'] * tick_us / messages:6.1f} us"
                      f"  switches {d['vcs'] / messages:5.2f} voluntary {d['ncs'] / messages:5.2f} not", flush=True)

    return record


def call_recorder():
    """After the run, the plugins' hook times from `tern trace --json`
    (every session of the load's client)."""

    @contextlib.contextmanager
    def record(pid):
        try:
            yield
        finally:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            config = argv[argv.index(b"--config") + 1].decode()
            out = subprocess.run([str(compare.mta.TERN), "trace", "--client", "127.0.0.1", "--since", "1h",
                                  "--json", "--config", config], capture_output=True, text=True, check=True)
            took = collections.defaultdict(list)
            for trace in json.loads(out.stdout):
                for e in trace["events"]:
                    if e["by"].startswith("plugin "):
                        took[(e["stage"], e["by"][7:])].append(e["took_us"])
            for (stage, plugin), v in sorted(took.items()):
                v.sort()
                q = {p: v[len(v) * p // 100] for p in (10, 25, 50, 75, 90, 99)}
                print(f"    {plugin:10} {stage:8} {len(v):6} calls  mean {sum(v) / len(v):6.1f} us  "
                      + "  ".join(f"p{p} {t}" for p, t in q.items()) + " us", flush=True)

    return record


def nested(recorders):
    """One recorder running `recorders` (None left out) around the run."""
    recorders = [r for r in recorders if r]
    if not recorders:
        return None

    @contextlib.contextmanager
    def record(pid):
        with contextlib.ExitStack() as stack:
            for r in recorders:
                stack.enter_context(r(pid))
            yield

    return record


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--perf", help="record the all-plugins run with perf (cpu-clock) into this file, "
                                   "and the run without plugins into FILE.none")
    ap.add_argument("--flat", action="store_true", help="with --perf: no call graphs")
    ap.add_argument("--sets", help="which runs, comma-separated: none, a plugin's name, all "
                                   "(default: none, each plugin alone, all)")
    ap.add_argument("--threads", action="store_true", help="Tern's CPU per message by thread, after each run")
    ap.add_argument("--calls", action="store_true", help="each plugin hook's time in the server (tern trace), "
                                                        "after each run with plugins")
    ap.add_argument("--binary", action="append", default=[], metavar="NAME=PATH",
                    help="a Tern binary to run each set on, alternated with the others given")
    args = ap.parse_args()
    binaries = []
    for b in args.binary:
        name, sep, path = b.partition("=")
        if not sep or not name or not Path(path).is_file():
            ap.error(f"--binary {b}: not NAME=PATH of an existing file")
        binaries.append((name, Path(path)))
    if not args.no_build:
        compare.build()
    sets = SETS
    if args.sets:
        named = {"none": (), "all": tuple(compare.PLUGINS), **{n: (n,) for n in compare.PLUGINS}}
        unknown = [s for s in args.sets.split(",") if s.strip() not in named]
        if unknown:
            ap.error(f"--sets: {', '.join(unknown)}: not none, all or one of {', '.join(compare.PLUGINS)}")
        sets = [named[s.strip()] for s in args.sets.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tern-plugin-cost."))
    runner = compare.Runner(args, work)
    results = collections.defaultdict(list)
    try:
        turns = binaries or [("", compare.mta.TERN)]
        for round_ in range(args.rounds):
            for (binary, path), names in [(b, n) for b in (turns if round_ % 2 == 0 else turns[::-1])
                                          for n in sets]:
                compare.mta.TERN = path
                recorder = None
                if args.perf and names == SETS[-1]:
                    recorder = perf_recorder(args.perf, args.flat)
                elif args.perf and not names:
                    recorder = perf_recorder(args.perf + ".none", args.flat)
                which = "tern+plugins" if names else "tern"
                label = run_label(binary, names)
                if args.threads or args.calls:
                    print(label, flush=True)  # heads what the recorders print
                recorder = nested([
                    recorder,
                    thread_recorder(args.messages) if args.threads else None,
                    call_recorder() if args.calls and names else None,
                ])
                r = runner.plugins(which, args.messages, names, recorder)
                results[(binary, names)].append(r)
                print(f"{label:24} {r['e2e']:6.0f} msg/s end-to-end   CPU {r['cpu']:.3f} s/1000 msgs", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.rounds > 1 or binaries:
        summary(results)


def run_label(binary, names):
    """A run's name: the binary's, if several, and the plugin set's."""
    return (f"{binary}: " if binary else "") + ("+".join(names) or "no plugin")


def summary(results):
    """Medians per binary and set, and the share of the rate each set loses
    against no plugin on the same binary."""
    print("medians:")
    for (binary, names), runs in results.items():
        rate = compare.median([r["e2e"] for r in runs])
        cpu = compare.median([r["cpu"] for r in runs])
        base = results.get((binary, ()))
        lost = ""
        if names and base:
            lost = f"   lost {100 * (1 - rate / compare.median([r['e2e'] for r in base])):.1f}%"
        label = run_label(binary, names)
        print(f"  {label:28} {rate:6.0f} msg/s   CPU {cpu:.3f} s/1000 msgs   ({len(runs)} runs){lost}", flush=True)


if __name__ == "__main__":
    main()
