#!/usr/bin/env python3
"""What each shipped plugin costs: Tern forwarding through an alias (the
client is not trusted, so every hook runs), 20 sessions of smtp-source, 5 KB
messages, with no plugin, each of greylist / dnsbl / content alone, and all
three (the set of compare.py), alternated --rounds times. Prints the
end-to-end rate and Tern's CPU per 1,000 messages of each run; CPU per
message is the steadier figure on a shared machine. The profile behind
bench/README.md's "3 plugins" row: callgrind cannot run Tern with plugins
(valgrind cannot reserve the address space of wasmtime's pooling allocator).

    python3 bench/plugin_cost.py [--messages 5000] [--rounds 2] [--perf FILE]
    perf report -i FILE --no-children --sort dso,symbol   # where the time went
"""

import argparse
import signal
import subprocess
import time
import tempfile
from pathlib import Path

import compare
import mta
from compare import SIZE, TERN_COMMON

WASM = compare.ROOT / "target/shipped-plugins/wasm32-wasip2/release"
PLUGINS = {
    "greylist": 'allow_networks = "127.0.0.0/8"',
    "dnsbl": 'zones = "bl.bench.test"',
    "content": 'refuse_extensions = "exe, scr, js", subject_contains = "lottery winner"',
}
SETS = [[], ["greylist"], ["dnsbl"], ["content"], ["greylist", "dnsbl", "content"]]


def run(runner, names, messages, perf=None):
    sink = mta.Sink(runner.work)
    dns = mta.DnsServer(runner.work, compare.DNSBL_ZONE)
    try:
        config = (
            'local_domains = ["bench.test"]\n[aliases]\n"fwd@bench.test" = ["rcpt@sink.test"]\n'
            f'[relay]\nsmarthost = "127.0.0.1:{sink.port}"\n' + TERN_COMMON
            + f'[dns]\nnameservers = ["127.0.0.1:{dns.port}"]\n'
        )
        for name in names:
            config += (
                f'[[plugin]]\nname = "{name}"\npath = "{WASM / (name + ".wasm")}"\n'
                f"config = {{ {PLUGINS[name]} }}\ntimeout = \"5s\"\n"
            )
        server = mta.Tern(runner.dir("+".join(names) or "none"), config)
        recorder = None
        if perf:
            # Software clock sampling: this virtual machine has no hardware
            # counters, but cpu-clock works; call graphs from frame pointers
            # are not available in a release build, so flat profile plus DWARF.
            recorder = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "--call-graph", "dwarf,16384",
                 "-p", str(server.pid), "-o", str(perf)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        try:
            base = sink.received()
            return runner.throughput(server, messages, 20, SIZE, "fwd@bench.test", sink.received, base)
        finally:
            if recorder:
                recorder.send_signal(signal.SIGINT)
                recorder.wait()
            server.stop()
    finally:
        dns.stop()
        sink.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--perf", help="record the all-three run with perf (cpu-clock) into this file")
    args = ap.parse_args()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tern", "-p", "test-plugins"],
                       cwd=compare.ROOT, check=True)
    runner = compare.Runner(args, Path(tempfile.mkdtemp(prefix="tern-plugin-cost.")))
    for _ in range(args.rounds):
        for names in SETS:
            perf = args.perf if args.perf and len(names) == 3 else None
            r = run(runner, names, args.messages, perf)
            label = "+".join(names) or "no plugin"
            print(f"{label:24} {r['e2e']:6.0f} msg/s end-to-end   CPU {r['cpu']:.3f} s/1000 msgs", flush=True)


if __name__ == "__main__":
    main()
