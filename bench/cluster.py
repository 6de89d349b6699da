#!/usr/bin/env python3
"""One Tern node beside three, on one private PostgreSQL, in one run:
smtp-source -> Tern node(s) -> smtp-sink (relay, 5 KB, one message per
session), the load split evenly over the nodes, each figure the median of
`--runs` runs (interleaved, a fresh database each time).

    bench/cluster.py                        # 10,000 messages, 20 sessions, 3 runs
    bench/cluster.py --messages 2000 --runs 1 --nodes 1,2,3

Per layout it reports end-to-end throughput; Tern's CPU per message (all
nodes together, and per node); PostgreSQL's CPU per message; the database
round trips per message (statements, BEGIN/COMMIT included, from
pg_stat_statements) and transactions per message; the bytes between the
nodes and the database per message (both directions, from the kernel's
per-socket counters, `ss -ti`, summed over every node's connections to the
database just before the nodes stop); and the lease overhead, as the
statements per message beyond `--baseline` (the figure measured on the
same relay before delivery leases existed: every statement a lease costs
is the same key-value SQL as the rest, so it cannot be told apart by
pg_stat_statements).

CLUSTER_EXTRA (TOML) is added to every node's config, e.g. `[queue]\nlease =
"6s"` (then set LEASE_S to match).

Everything runs on this machine, so the nodes and the database share its
cores: the throughput of N nodes here is not N machines' throughput. The
projection at the end says, from the measured per-message costs, how many
nodes (each on its own machine with the cores of this one) one database
server (also with this machine's cores) could feed before it is the limit.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import load
import mta
from compare import TERN_COMMON
from mta import Sink, Tern, wait_until

SIZE = 5000
# `[queue] lease` (its default, unless CLUSTER_EXTRA sets another).
LEASE_S = float(os.environ.get("LEASE_S", 60))
SENDER = "bench@client.test"


def node_config(n, url, sink_port):
    return (
        f'node_id = "bench-n{n}"\nlocal_domains = ["bench.test"]\n'
        f'[relay]\ntrusted_networks = ["127.0.0.0/8"]\nsmarthost = "127.0.0.1:{sink_port}"\n'
        + TERN_COMMON
        + os.environ.get("CLUSTER_EXTRA", "")
        + f'[store]\nbackend = "postgres"\nurl = "{url}"\nsslmode = "disable"\n'
    )


def db_socket_bytes(pids, db_port):
    """Bytes sent and received on the TCP connections of `pids` to the
    database's port (the kernel's tcp_info: bytes_acked + bytes_received)."""
    out = subprocess.run(["ss", "-tinpH", "dport", f"= :{db_port}"], capture_output=True, text=True).stdout
    total, mine = 0, False
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            mine = any(f"pid={p}," in line for p in pids)
            continue
        if not mine:
            continue
        for field in line.split():
            if field.startswith(("bytes_acked:", "bytes_received:")):
                total += int(field.split(":", 1)[1])
    return total


def run(pg, work, nodes, count, sessions):
    sink = Sink(work)
    url = pg.database()
    servers = []
    try:
        for n in range(1, nodes + 1):
            servers.append(Tern(work / f"{url.rsplit('/', 1)[1]}-n{n}", node_config(n, url, sink.port)))
        if nodes > 1:
            # A node that joins others delivers only after a third of a
            # lease (until every node has counted it): measure the steady
            # state, not that start.
            time.sleep(LEASE_S / 3 + 1)
        cpu0 = [s.cpu() for s in servers]
        db_cpu0 = pg.cpu()
        c0 = pg.counters()
        bytes0 = db_socket_bytes([s.pid for s in servers], pg.port)
        t0 = time.perf_counter()
        share = [count // nodes + (1 if i < count % nodes else 0) for i in range(nodes)]
        threads = [
            threading.Thread(
                target=load.smtp_source,
                args=(s.port, share[i], max(1, sessions // nodes), SIZE, SENDER, "rcpt@sink.test"),
            )
            for i, s in enumerate(servers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until(lambda: sink.received() >= count, "every message relayed", limit=1800, step=0.02)
        t1 = time.perf_counter()
        time.sleep(1.5)  # backends publish their counts when idle
        cpu = [s.cpu() - c for s, c in zip(servers, cpu0)]
        c1 = pg.counters()
        moved = db_socket_bytes([s.pid for s in servers], pg.port) - bytes0
        return {
            "e2e": count / (t1 - t0),
            "cpu": sum(cpu) / count * 1000,
            "cpu_node": max(cpu) / (count / nodes) * 1000,
            "db_cpu": (pg.cpu() - db_cpu0) / count * 1000,
            "stmts": (c1["db_statements"] - c0["db_statements"]) / count,
            "tx": (c1["db_commits"] - c0["db_commits"]) / count,
            "bytes": moved / count,
        }
    finally:
        for s in servers:
            s.stop()
        sink.stop()


def build_tern():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "tern"], cwd=mta.ROOT, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", default="1,3")
    ap.add_argument("--baseline", type=float, default=17.2,
                    help="statements per message before leases (bench/README, 2026-12-05 run)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    if not args.no_build:
        build_tern()
    layouts = [int(n) for n in args.nodes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="tern-cluster-bench-"))
    pg = mta.Postgres(work)
    results = {n: [] for n in layouts}
    try:
        for r in range(args.runs):
            for n in layouts:
                print(f"run {r + 1}/{args.runs}: {n} node(s)", flush=True)
                results[n].append(run(pg, work, n, args.messages, args.sessions))
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {n: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for n, rs in results.items()}
    rows = [
        ("end-to-end msg/s", "e2e", "{:.0f}"),
        ("Tern CPU s / 1000 msgs, all nodes", "cpu", "{:.2f}"),
        ("Tern CPU s / 1000 msgs, busiest node's share", "cpu_node", "{:.2f}"),
        ("PostgreSQL CPU s / 1000 msgs", "db_cpu", "{:.2f}"),
        ("round trips (statements) / msg", "stmts", "{:.1f}"),
        ("transactions / msg", "tx", "{:.1f}"),
        ("bytes to and from the database / msg", "bytes", "{:.0f}"),
    ]
    lines = [
        f"{args.messages} messages, {args.sessions} sessions split over the nodes, median of {args.runs}",
        "",
        "| figure | " + " | ".join(f"{n} node(s)" for n in layouts) + " |",
        "|---|" + "---:|" * len(layouts),
    ]
    for label, key, f in rows:
        lines.append(f"| {label} | " + " | ".join(f.format(med[n][key]) for n in layouts) + " |")
    one = med[layouts[0]]
    lines.append("")
    lines.append(
        f"lease overhead: {one['stmts'] - args.baseline:+.1f} statements per message over the "
        f"{args.baseline} measured before leases"
    )
    cores = os.cpu_count() or 1
    node_rate = cores / (one["cpu"] / 1000)
    db_rate = cores / (one["db_cpu"] / 1000)
    lines.append(
        f"projection ({cores} cores per machine): one node's CPU caps it at {node_rate:.0f} msg/s, "
        f"the database's CPU at {db_rate:.0f} msg/s, so the database becomes the limit at about "
        f"{db_rate / node_rate:.1f} nodes; a database server with K times these cores feeds about "
        f"{db_rate / node_rate:.1f}×K such nodes (one round trip costs the database more CPU than the "
        f"node spends on the whole message)"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
