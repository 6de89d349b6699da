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

    python3 bench/plugin_cost.py [--messages 5000] [--rounds 2] [--perf FILE]
    perf report -i FILE --no-children --sort dso,symbol   # where the time went
"""

import argparse
import contextlib
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import compare

SETS = [(), *((name,) for name in compare.PLUGINS), tuple(compare.PLUGINS)]


def perf_recorder(path):
    """perf record on Tern while the messages run. Software clock sampling:
    this virtual machine has no hardware counters, but cpu-clock works."""

    @contextlib.contextmanager
    def record(pid):
        perf = subprocess.Popen(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "--call-graph", "dwarf,16384",
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--perf", help="record the all-plugins run with perf (cpu-clock) into this file, "
                                   "and the run without plugins into FILE.none")
    args = ap.parse_args()
    if not args.no_build:
        compare.build()
    runner = compare.Runner(args, Path(tempfile.mkdtemp(prefix="tern-plugin-cost.")))
    for _ in range(args.rounds):
        for names in SETS:
            recorder = None
            if args.perf and names == SETS[-1]:
                recorder = perf_recorder(args.perf)
            elif args.perf and not names:
                recorder = perf_recorder(args.perf + ".none")
            which = "tern+plugins" if names else "tern"
            r = runner.plugins(which, args.messages, names, recorder)
            label = "+".join(names) or "no plugin"
            print(f"{label:24} {r['e2e']:6.0f} msg/s end-to-end   CPU {r['cpu']:.3f} s/1000 msgs", flush=True)


if __name__ == "__main__":
    main()
