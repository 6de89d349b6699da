#!/usr/bin/env python3
"""Tern beside Postfix, in one run, interleaved: the same scenarios on each
(fresh instances every time), each figure the median of `--runs` runs, and
one table with the ratio Tern/Postfix per row.

    bench/compare.py                       # everything, 10,000 messages, 3 runs
    bench/compare.py --messages 1000 --runs 1 --only relay-20,local

Scenarios (smtp-source sends one message per session, as it does by default):
  relay-20, relay-200  smtp-source -> MTA -> smtp-sink, 5 KB, 20 / 200 sessions
  local                smtp-source -> MTA -> mailboxes (Postfix: virtual(8)
                       into a Maildir, done when the file is in new/; Tern: a
                       local user, done at the 250, checked over POP3)
  plugins              Tern relaying with three plugins (greylist, dnsbl
                       against the test DNS server, a content filter) and
                       without, interleaved; Postfix's plain relay beside it
  big                  relay-20 with 100 KB messages
  latency              accept latency (end of data -> 250) at a fixed rate
  idle                 memory with N idle connections (greeting and EHLO done)

Storage engines (`--engines`): relay-20, relay-200 and local also run on
  sled               the default engine (the "Tern" column), always
  before             another Tern binary (`--before BIN`, e.g. a release
                     build of the commit before the storage seam) on sled
  postgres           Tern on a private PostgreSQL (one cluster for the run,
                     a fresh database per instance; fsync on), with the
                     cluster's CPU and its statements/commits per message
and a second table puts them side by side with Postfix, with the sled I/O
pool's wake-ups per message.

Both MTAs fsync before the 250. Tern logs at its default level (info) to a
file and Postfix to its maillog, as each does in service. Tern's SPF/DKIM
checks of mail from outside (`[auth] verify`) are off, since Postfix does
none out of the box. The work directory is removed at the end (kept, with
every instance's logs, when TERN_BENCH_KEEP is set).
"""

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import load
import mta
from mta import ROOT, Postfix, Tern, wait_until

SIZE = 5120
SENDER = "sender@outside.test"

# The plugins of the `plugins` scenario, as shipped in plugins/ (the
# test-plugins package's build script builds them into
# target/shipped-plugins), each with the config it runs with here.
PLUGINS = {
    "greylist": 'allow_networks = "127.0.0.0/8"',
    "dnsbl": 'zones = "bl.bench.test"',
    "content": 'refuse_extensions = "exe, scr, js", subject_contains = "lottery winner"',
}
PLUGIN_WASM = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "shipped-plugins/wasm32-wasip2/release"

# The blocklist's zone: nothing listed, and NXDOMAIN answers carry the SOA
# (negative TTL 300 s), as real DNSBLs' do, so the resolver may cache them.
DNSBL_ZONE = {"bl.bench.test": {"SOA": 300}}


def build():
    """Tern, and the shipped plugins (built by the test-plugins package)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tern", "-p", "test-plugins"], cwd=ROOT,
                   check=True)


def plugin_config(dns_port, names=tuple(PLUGINS)):
    """TOML loading `names` of PLUGINS, resolving through the test DNS server."""
    toml = f'[dns]\nnameservers = ["127.0.0.1:{dns_port}"]\n'
    for name in names:
        toml += (
            f'[[plugin]]\nname = "{name}"\npath = "{PLUGIN_WASM / (name + ".wasm")}"\n'
            f'config = {{ {PLUGINS[name]} }}\ntimeout = "5s"\n'
        )
    return toml


TERN_COMMON = '[auth]\nverify = false\n[limits]\nmax_connections = 12000\nmax_connections_per_client = 12000\n'


def tern_relay(sink_port):
    return (
        'local_domains = ["bench.test"]\n'
        f'[relay]\ntrusted_networks = ["127.0.0.0/8"]\nsmarthost = "127.0.0.1:{sink_port}"\n' + TERN_COMMON
    )


def postfix_relay(sink_port):
    return f"relayhost = [127.0.0.1]:{sink_port}\n"


class Runner:
    def __init__(self, args, work):
        self.args, self.work, self.seq = args, work, 0

    def dir(self, label):
        self.seq += 1
        return self.work / f"{self.seq:03}-{label}"

    # --- throughput -----------------------------------------------------

    def throughput(self, server, count, sessions, size, rcpt, delivered, baseline=0, db=None):
        """Sends `count` messages; returns the figures once `delivered()`
        reaches `count` (+ baseline). With `db` (a Postgres), its CPU and
        counters per message too; every server's own `counters()` per
        message."""
        sampler = load.PeakMemory(server)
        cpu0 = server.cpu()
        counters0 = counters(server, db)
        db_cpu0 = db.cpu() if db else 0.0
        t0 = time.perf_counter()
        load.smtp_source(server.port, count, sessions, size, SENDER, rcpt)
        t1 = time.perf_counter()
        wait_until(lambda: delivered() >= count + baseline, "every message delivered", limit=1800, step=0.02)
        t2 = time.perf_counter()
        # Let the instance settle (Postfix's daemons finish their bookkeeping).
        time.sleep(0.5)
        cpu = server.cpu() - cpu0
        peak = sampler.stop()
        figures = {
            "accept": count / (t1 - t0),
            "e2e": count / (t2 - t0),
            "cpu": cpu / count * 1000,
            "mem": peak / 1024,
        }
        if db:
            # PostgreSQL's backends publish their transaction counts when
            # idle, at most once a second.
            time.sleep(1.5)
            figures["db_cpu"] = (db.cpu() - db_cpu0) / count * 1000
        for key, value in counters(server, db).items():
            figures[key] = (value - counters0.get(key, 0)) / count
        return figures

    def tern(self, which, label, config, **kw):
        """A Tern for variant `which`: "tern" (this build, sled), "tern-before"
        (`--before`'s binary, sled) or "tern-pg" (this build on PostgreSQL)."""
        if which == "tern-before":
            kw["binary"] = self.args.before
        if which == "tern-pg":
            config += f'[store]\nbackend = "postgres"\nurl = "{self.pg.database()}"\nsslmode = "disable"\n'
        return Tern(self.dir(f"{which}-{label}"), config, **kw)

    @property
    def pg(self):
        if not hasattr(self, "_pg"):
            self._pg = mta.Postgres(self.work)
        return self._pg

    def db(self, which):
        return self.pg if which == "tern-pg" else None

    def relay(self, which, sessions, size, count):
        sink = mta.Sink(self.work)
        try:
            if which.startswith("tern"):
                server = self.tern(which, "relay", tern_relay(sink.port))
            else:
                server = Postfix(self.dir("pf-relay"), postfix_relay(sink.port), process_limit=max(200, sessions + 50))
            try:
                return self.throughput(server, count, sessions, size, "rcpt@sink.test", sink.received,
                                       db=self.db(which))
            finally:
                server.stop()
        finally:
            sink.stop()

    def local(self, which, count):
        if which.startswith("tern"):
            server = self.tern(
                which,
                "local",
                'local_domains = ["bench.test"]\n' + TERN_COMMON + "[tls]\nallow_plaintext_auth = true\n",
                users=["user0@bench.test"],
                protocols=("smtp", "pop3"),
            )
            try:
                # Tern delivers to the mailbox before its 250; POP3 checks the count after.
                result = self.throughput(server, count, 20, SIZE, "user0@bench.test", lambda: count,
                                         db=self.db(which))
                got = pop3_count(server.ports["pop3"])
                if got != count:
                    raise RuntimeError(f"Tern's mailbox holds {got} messages, not {count}")
                return result
            finally:
                server.stop()
        d = self.dir("pf-local")
        uid, gid = mta.postfix_uid()
        mail = d / "mail"
        new = mail / "user0" / "new"
        mail.mkdir(parents=True)
        shutil.chown(mail, uid, gid)
        server = Postfix(
            d,
            f"virtual_mailbox_domains = bench.test\nvirtual_mailbox_base = {mail}\n"
            f"virtual_mailbox_maps = static:user0/\nvirtual_uid_maps = static:{uid}\n"
            f"virtual_gid_maps = static:{gid}\nvirtual_minimum_uid = {uid}\n",
        )
        try:
            return self.throughput(
                server, count, 20, SIZE, "user0@bench.test", lambda: len(os.listdir(new)) if new.exists() else 0
            )
        finally:
            server.stop()

    def plugins(self, which, count, names=tuple(PLUGINS), recorder=None):
        """Tern forwarding to the sink through an alias (so the client is
        not trusted and the plugins do their work), with `names` of PLUGINS
        ("tern+plugins") or none ("tern"). `recorder(pid)`, if given, is a
        context manager around the measured part (bench/plugin_cost.py's
        perf)."""
        sink = mta.Sink(self.work)
        dns = mta.DnsServer(self.work, DNSBL_ZONE)
        try:
            config = (
                'local_domains = ["bench.test"]\n[aliases]\n"fwd@bench.test" = ["rcpt@sink.test"]\n'
                f'[relay]\nsmarthost = "127.0.0.1:{sink.port}"\n' + TERN_COMMON
            )
            if which == "tern+plugins":
                config += plugin_config(dns.port, names)
            server = Tern(self.dir(which.replace("+", "-")), config)
            try:
                baseline = sink.received()
                with recorder(server.pid) if recorder else contextlib.nullcontext():
                    return self.throughput(server, count, 20, SIZE, "fwd@bench.test", sink.received, baseline)
            finally:
                server.stop()
        finally:
            dns.stop()
            sink.stop()

    # --- latency and memory ---------------------------------------------

    def latency(self, which):
        a = self.args
        sink = mta.Sink(self.work)
        try:
            if which == "tern":
                server = Tern(self.dir("tern-latency"), tern_relay(sink.port))
            else:
                server = Postfix(self.dir("pf-latency"), postfix_relay(sink.port))
            try:
                times = load.latency(
                    server.port, a.rate, a.latency_connections, int(a.rate * a.latency_seconds), SIZE,
                    SENDER, "rcpt@sink.test",
                )
            finally:
                server.stop()
        finally:
            sink.stop()
        times.sort()
        return {
            "p50": times[len(times) // 2] * 1000,
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        }

    def idle(self, which):
        n = self.args.idle
        sink = mta.Sink(self.work)
        try:
            if which == "tern":
                server = Tern(self.dir("tern-idle"), tern_relay(sink.port))
            else:
                server = Postfix(self.dir("pf-idle"), postfix_relay(sink.port), process_limit=n + 100)
            try:
                time.sleep(1)
                idle_kib = server.memory()[0]
                t0 = time.perf_counter()
                conns = load.IdleConnections(server.port, n)
                conns.wait()
                opened_in = time.perf_counter() - t0
                time.sleep(2)
                held_kib = server.memory()[0]
                opened = conns.opened
                conns.close()
            finally:
                server.stop()
        finally:
            sink.stop()
        return {
            "idle_mem": idle_kib / 1024,
            "conn_mem": held_kib / 1024,
            "opened": opened,
            "open_s": opened_in,
        }


def counters(server, db):
    out = dict(server.counters()) if hasattr(server, "counters") else {}
    if db:
        out.update(db.counters())
    return out


def pop3_count(port):
    import poplib

    pop = poplib.POP3("127.0.0.1", port, timeout=60)
    try:
        pop.user("user0@bench.test")
        pop.pass_("pw")
        return pop.stat()[0]
    finally:
        pop.quit()


# --- the table ---------------------------------------------------------------

ROWS = [
    # (scenario, label, metric, unit, better)
    ("relay-20", "relay 5 KB, 20 sessions", "accept", "msg/s", "higher"),
    ("relay-20", "", "e2e", "msg/s end-to-end", "higher"),
    ("relay-20", "", "cpu", "CPU s/1000 msgs", "lower"),
    ("relay-20", "", "mem", "peak memory MiB", "lower"),
    ("relay-200", "relay 5 KB, 200 sessions", "accept", "msg/s", "higher"),
    ("relay-200", "", "e2e", "msg/s end-to-end", "higher"),
    ("relay-200", "", "cpu", "CPU s/1000 msgs", "lower"),
    ("relay-200", "", "mem", "peak memory MiB", "lower"),
    ("local", "local delivery 5 KB, 20 sessions", "accept", "msg/s", "higher"),
    ("local", "", "e2e", "msg/s end-to-end", "higher"),
    ("local", "", "cpu", "CPU s/1000 msgs", "lower"),
    ("local", "", "mem", "peak memory MiB", "lower"),
    ("plugins", "relay (alias), 3 plugins, 20 sessions", "accept", "msg/s", "higher"),
    ("plugins", "", "e2e", "msg/s end-to-end", "higher"),
    ("plugins", "", "cpu", "CPU s/1000 msgs", "lower"),
    ("big", "relay 100 KB, 20 sessions", "accept", "msg/s", "higher"),
    ("big", "", "e2e", "msg/s end-to-end", "higher"),
    ("big", "", "cpu", "CPU s/1000 msgs", "lower"),
    ("big", "", "mem", "peak memory MiB", "lower"),
    ("latency", "accept latency", "p50", "p50 ms", "lower"),
    ("latency", "", "p99", "p99 ms", "lower"),
    ("idle", "idle connections", "idle_mem", "server idle, MiB", "lower"),
    ("idle", "", "opened", "connections held", "higher"),
    ("idle", "", "conn_mem", "memory holding them, MiB", "lower"),
    ("idle", "", "open_s", "seconds to open them", "lower"),
]


def median(values):
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(results, args, scenarios, loads):
    """results[scenario][mta] = list of dicts, one per run."""
    lines = []
    head = f"{'scenario':38} {'figure':26} {'Tern':>9} {'Postfix':>9} {'Tern/Postfix':>13}"
    lines += [head, "-" * len(head)]
    for scenario, label, metric, unit, better in ROWS:
        if scenario not in scenarios:
            continue
        tern_key = "tern+plugins" if scenario == "plugins" else "tern"
        pf_runs = results.get("relay-20" if scenario == "plugins" else scenario, {}).get("postfix", [])
        t = median([r[metric] for r in results.get(scenario, {}).get(tern_key, [])])
        p = median([r[metric] for r in pf_runs])
        ratio = f"{t / p:.2f}x" if t is not None and p else "-"
        lines.append(f"{label:38} {unit:26} {fmt(t):>9} {fmt(p):>9} {ratio:>13}")
    if "plugins" in scenarios:
        with_p = median([r["e2e"] for r in results["plugins"]["tern+plugins"]])
        without = median([r["e2e"] for r in results["plugins"]["tern"]])
        acc_with = median([r["accept"] for r in results["plugins"]["tern+plugins"]])
        acc_without = median([r["accept"] for r in results["plugins"]["tern"]])
        lines.append("")
        lines.append(
            f"plugins (shipped set): Tern without {fmt(acc_without)} msg/s accepted, {fmt(without)} end-to-end; "
            f"with three {fmt(acc_with)} / {fmt(with_p)}: cost {100 * (1 - acc_with / acc_without):.1f}% "
            f"accepted, {100 * (1 - with_p / without):.1f}% end-to-end"
        )
        # Runs alternate (without, with): each pair ran in the same phase of
        # the machine, so the pairs' spread shows how far one reading goes.
        pairs = list(zip(results["plugins"]["tern"], results["plugins"]["tern+plugins"]))
        if len(pairs) > 1:
            shares = ", ".join(f"{100 * (1 - w['accept'] / n['accept']):.1f}" for n, w in pairs if n["accept"])
            added = median([(w["cpu"] - n["cpu"]) * 1000 for n, w in pairs])
            lines.append(
                f"each alternated pair (accepted): {shares}% lost; "
                f"Tern's CPU added a message, median of the pairs: {added:.0f} us"
            )
        lines.append("(the plugins row's Postfix column is its plain relay-20 run: Postfix has no plugins here)")
    lines.append("")
    lines.append(
        f"{args.messages} messages ({args.big_messages} of 100 KB), median of {args.runs} run(s); "
        f"latency: {args.rate:g} msg/s over {args.latency_connections} connections for {args.latency_seconds:g} s; "
        f"idle: {args.idle} connections"
    )
    lines.append(f"load average: before {loads[0]}, after {loads[1]}")
    return "\n".join(lines)


ENGINE_SCENARIOS = ("relay-20", "relay-200", "local")
ENGINE_ROWS = [
    ("accept", "msg/s"),
    ("e2e", "msg/s end-to-end"),
    ("cpu", "MTA CPU s/1000 msgs"),
    ("db_cpu", "PostgreSQL CPU s/1000 msgs"),
    ("io_wakeups", "sled I/O pool wake-ups/msg"),
    ("db_statements", "DB statements/msg"),
    ("db_commits", "DB transactions/msg"),
    ("db_wal_syncs", "WAL fsyncs/msg"),
]
COLUMNS = [("tern", "sled"), ("tern-before", "before"), ("tern-pg", "PostgreSQL"), ("postfix", "Postfix")]


def engine_table(results, scenarios, variants):
    """The storage engines side by side: results[scenario][variant]."""
    cols = [(k, name) for k, name in COLUMNS if k in ("tern", "postfix") or k in variants]
    head = f"{'scenario':34} {'figure':28}" + "".join(f" {name:>11}" for _, name in cols)
    lines = [head, "-" * len(head)]
    for scenario in ENGINE_SCENARIOS:
        if scenario not in scenarios:
            continue
        label = scenario
        for metric, unit in ENGINE_ROWS:
            cells = [median([r[metric] for r in results.get(scenario, {}).get(k, []) if metric in r]) for k, _ in cols]
            if all(c is None for c in cells):
                continue
            lines.append(f"{label:34} {unit:28}" + "".join(f" {fmt(c):>11}" for c in cells))
            label = ""
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--big-messages", type=int, default=None, help="messages of 100 KB (default: messages / 5)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="relay-20,relay-200,local,plugins,big,latency,idle")
    ap.add_argument("--idle", type=int, default=5000, help="idle connections to hold")
    ap.add_argument("--rate", type=float, default=200, help="latency: messages per second offered")
    ap.add_argument("--latency-connections", type=int, default=20)
    ap.add_argument("--latency-seconds", type=float, default=10)
    ap.add_argument("--engines", default="sled",
                    help="sled,before,postgres: the variants relay-20, relay-200 and local run on (see above)")
    ap.add_argument("--before", help="the Tern binary of the `before` variant")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args()
    args.big_messages = args.big_messages or max(1, args.messages // 5)
    scenarios = [s for s in args.only.split(",") if s]
    engines = [e for e in args.engines.split(",") if e]
    if "before" in engines and not args.before:
        raise SystemExit("--engines before needs --before BIN")
    variants = [v for e, v in (("before", "tern-before"), ("postgres", "tern-pg")) if e in engines]

    if not shutil.which("smtp-source"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "postfix"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not args.no_build:
        build()

    work = Path(tempfile.mkdtemp(prefix="tern-compare."))
    runner = Runner(args, work)
    results = {}
    loads = [Path("/proc/loadavg").read_text().split()[:3], None]
    try:
        for run in range(args.runs):
            for scenario in scenarios:
                mtas = ["tern", "tern+plugins"] if scenario == "plugins" else ["tern", "postfix"]
                if scenario in ENGINE_SCENARIOS:
                    mtas[1:1] = variants
                if run % 2:
                    mtas.reverse()
                for which in mtas:
                    print(f"run {run + 1}/{args.runs}: {scenario} on {which}", file=sys.stderr, flush=True)
                    r = run_one(runner, scenario, which, args)
                    print(f"    {', '.join(f'{k} {fmt(v)}' for k, v in r.items())}", file=sys.stderr, flush=True)
                    results.setdefault(scenario, {}).setdefault(which, []).append(r)
    finally:
        if hasattr(runner, "_pg"):
            runner._pg.stop()
        if os.environ.get("TERN_BENCH_KEEP"):
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    loads[1] = Path("/proc/loadavg").read_text().split()[:3]
    text = table(results, args, scenarios, [" ".join(x) for x in loads])
    if variants:
        text += "\n\n" + engine_table(results, scenarios, variants)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def run_one(runner, scenario, which, args):
    n = args.messages
    if scenario == "relay-20":
        return runner.relay(which, 20, SIZE, n)
    if scenario == "relay-200":
        return runner.relay(which, 200, SIZE, n)
    if scenario == "big":
        return runner.relay(which, 20, 100 * 1024, args.big_messages)
    if scenario == "local":
        return runner.local(which, n)
    if scenario == "plugins":
        return runner.plugins(which, n)
    if scenario == "latency":
        return runner.latency(which)
    if scenario == "idle":
        return runner.idle(which)
    raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
