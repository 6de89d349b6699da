"""The servers a comparison run starts: a release-built Tern, a private
Postfix instance (Debian's postfix, configured under the work directory,
never the system one), Postfix's smtp-sink as the relays' next hop, and the
test DNS server. Each knows how to start, how to say what it has done
(messages received or delivered), what it cost (CPU seconds, memory) and how
to stop, leaving no process behind.

CPU accounting: Tern is one process (utime + stime of /proc/PID/stat).
Postfix is a master and short-lived children: the master's cutime + cstime
hold every child it has reaped, and the children still alive are read
directly, so a snapshot before and after a run gives the instance's whole
CPU, exited processes included. Memory: Tern's VmHWM and VmRSS; Postfix's
sum of PSS (/proc/PID/smaps_rollup) over its processes, since an RSS sum
counts the shared pages (the binary, libraries) once per process.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
TERN = Path(os.environ.get("TERN_BIN", TARGET / "release" / "tern"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what, limit=60.0, step=0.05):
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def raise_fd_limit():
    """In a child before exec: as many descriptors as the hard limit allows."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in seconds, or None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (
        int(fields[1]),
        (int(fields[11]) + int(fields[12])) / CLK_TCK,
        (int(fields[13]) + int(fields[14])) / CLK_TCK,
    )


def status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root):
    """root and every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children.setdefault(st[0], []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


class Sink:
    """Postfix's smtp-sink, counting the messages it receives (-c)."""

    def __init__(self, work):
        self.port = free_port()
        self.out = work / f"sink-{self.port}.out"
        self.proc = subprocess.Popen(
            ["smtp-sink", "-c", "-u", "postfix", f"127.0.0.1:{self.port}", "1000"],
            stdout=open(self.out, "wb"),
            stderr=subprocess.DEVNULL,
            preexec_fn=raise_fd_limit,
        )
        wait_until(lambda: port_open(self.port), "smtp-sink")

    def received(self):
        """Messages received so far (the last `mesg=N` of its counter)."""
        try:
            with open(self.out, "rb") as f:
                f.seek(max(0, os.path.getsize(self.out) - 256))
                tail = f.read().replace(b"\r", b"\n").split(b"\n")
        except OSError:
            return 0
        for line in reversed(tail):
            if b"mesg=" in line:
                return int(line.split(b"mesg=")[1].split()[0])
        return 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class DnsServer:
    """tests/fixtures/dns_server.py (dnslib): NXDOMAIN for everything not in `zone`."""

    def __init__(self, work, zone):
        import json

        zone_file, port_file = work / "zone.json", work / "dns.port"
        zone_file.write_text(json.dumps(zone))
        port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/fixtures/dns_server.py"), str(zone_file), str(port_file)],
            stdout=subprocess.DEVNULL,
        )
        self.port = int(wait_until(lambda: port_file.exists() and port_file.read_text().strip(), "DNS server"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Tern:
    """A release-built Tern with its own data directory."""

    name = "tern"

    def __init__(self, work, config, users=(), protocols=("smtp",), wrapper=(), binary=None):
        binary = binary or TERN
        self.dir = work
        self.dir.mkdir(parents=True)
        cfg = self.dir / "tern.toml"
        listen = "".join(f'[[listen]]\nprotocol = "{p}"\naddress = "127.0.0.1:0"\n' for p in protocols)
        cfg.write_text('hostname = "mx.bench.test"\ndata_dir = "data"\n' + config + listen)
        for user in users:
            subprocess.run(
                [binary, "user", "add", user, "--password-stdin", "--config", cfg],
                input=b"pw\n",
                check=True,
                stdout=subprocess.DEVNULL,
            )
        env = dict(os.environ, TERN_LOG=os.environ.get("TERN_LOG", "info"))
        self.log = open(self.dir / "tern.log", "wb")
        self.proc = subprocess.Popen(
            [*wrapper, binary, "serve", "--config", cfg], stderr=self.log, env=env, preexec_fn=raise_fd_limit
        )
        listeners = self.dir / "data" / "listeners"
        try:
            wait_until(
                lambda: (listeners.exists() and listeners.stat().st_size > 0) or self.proc.poll() is not None,
                "Tern to listen",
                limit=300,
            )
            if self.proc.poll() is not None:
                raise RuntimeError("exited")
        except RuntimeError:
            self.stop()
            raise RuntimeError("Tern did not start: " + (self.dir / "tern.log").read_text()[-2000:])
        self.ports = {}
        for line in listeners.read_text().splitlines():
            proto, addr = line.split()
            self.ports[proto] = int(addr.rsplit(":", 1)[1])
        self.port = self.ports["smtp"]
        self.pid = self.proc.pid

    def cpu(self):
        st = proc_stat(self.pid)
        return st[1] + st[2] if st else 0.0

    def memory(self):
        """(current, peak) in KiB: VmRSS and VmHWM."""
        return status_kib(self.pid, "VmRSS"), status_kib(self.pid, "VmHWM")

    def counters(self):
        """Cumulative counters a run reports per message: `io_wakeups`, the
        context switches of sled's I/O pool threads (`sled-io-N`: each
        switch is a wake-up and a sleep of a pool thread)."""
        total = 0
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            tasks = []
        for tid in tasks:
            try:
                if not Path(f"/proc/{self.pid}/task/{tid}/comm").read_text().startswith("sled-io"):
                    continue
                for line in Path(f"/proc/{self.pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
            except OSError:
                pass
        return {"io_wakeups": total}

    def stop(self, timeout=30):
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Postfix:
    """A private Postfix instance: its own config, queue and data directory
    under `work`, listening on an ephemeral loopback port; fsync before 250
    as Postfix does by default."""

    name = "postfix"

    def __init__(self, work, settings, process_limit=200):
        self.dir = work
        etc, queue, data = work / "etc", work / "queue", work / "data"
        for d in (etc, queue, data):
            d.mkdir(parents=True)
        # Postfix's daemons run as postfix and must reach their queue.
        for d in [work, *work.parents]:
            if d == Path("/"):
                break
            if d.stat().st_mode & 0o005 != 0o005:
                d.chmod(d.stat().st_mode | 0o755)
        shutil.chown(data, "postfix")
        self.port = free_port()
        master = Path("/etc/postfix/master.cf").read_text()
        master = master.replace("\nsmtp      inet", f"\n127.0.0.1:{self.port}      inet", 1)
        (etc / "master.cf").write_text(master)
        main = f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file_prefixes = /tmp
maillog_file = {work}/maillog
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.bench.test
mydestination =
mynetworks = 127.0.0.0/8
default_process_limit = {process_limit}
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
"""
        (etc / "main.cf").write_text(main + settings)
        subprocess.run(["postfix", "-c", etc, "start"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid_file = queue / "pid" / "master.pid"
        self.pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), "Postfix master"))
        wait_until(lambda: port_open(self.port), "Postfix smtpd")

    def processes(self):
        return descendants(self.pid)

    def cpu(self):
        """CPU seconds of the instance so far, reaped children included."""
        total = 0.0
        for pid in self.processes():
            st = proc_stat(pid)
            if st:
                total += st[1] + st[2]
        return total

    def memory(self):
        """(current, current) in KiB: the sum of PSS over the instance."""
        pss = sum(pss_kib(p) for p in self.processes())
        return pss, pss

    def stop(self):
        pids = self.processes()
        subprocess.run(["postfix", "-c", self.dir / "etc", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(proc_stat(p) for p in pids):
            time.sleep(0.1)
        for p in pids:
            if proc_stat(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass


class Postgres:
    """A private PostgreSQL cluster (Debian's postgresql-15, `initdb` under
    `work`, run as the postgres user, an ephemeral loopback port) with its
    defaults for durability (fsync, synchronous_commit: a commit is on disk
    before Tern's 250, as Postfix's and sled's are) and pg_stat_statements,
    so a run can count the statements (round trips) Tern sends."""

    def __init__(self, work):
        self.dir = work / "postgres"
        self.dir.mkdir(parents=True)
        for d in [self.dir, *self.dir.parents]:
            if d == Path("/"):
                break
            if d.stat().st_mode & 0o005 != 0o005:
                d.chmod(d.stat().st_mode | 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
        self.port = free_port()
        self.data = self.dir / "data"
        self._as_postgres(["initdb", "-D", self.data, "-U", "tern", "--auth=trust", "-E", "UTF8", "--no-instructions"])
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
        )
        self._as_postgres(["pg_ctl", "-D", self.data, "-l", self.dir / "server.log", "-o", options, "-w", "start"])
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.databases = 0
        self.psql("CREATE EXTENSION pg_stat_statements", "postgres")

    def _as_postgres(self, argv):
        subprocess.run(["runuser", "-u", "postgres", "--", self.bin / argv[0], *argv[1:]], check=True,
                       cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql, db="postgres"):
        out = subprocess.run([self.bin / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "tern", "-d", db,
                              "-Atq", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def database(self):
        """A new empty database for one Tern; its URL."""
        self.databases += 1
        name = f"tern{self.databases}"
        self.psql(f"CREATE DATABASE {name}")
        return f"postgresql://tern@127.0.0.1:{self.port}/{name}"

    def cpu(self):
        """CPU seconds of the cluster so far (backends reaped included)."""
        total = 0.0
        for pid in descendants(self.pid):
            st = proc_stat(pid)
            if st:
                total += st[1] + st[2]
        return total

    def counters(self):
        """Statements executed (pg_stat_statements' calls, BEGIN and
        COMMIT included: each is a round trip), transactions committed (a
        statement outside BEGIN is one too) over every database, and WAL
        fsyncs (the durability cost)."""
        calls = self.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements")
        commits = self.psql("SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database")
        syncs = self.psql("SELECT wal_sync FROM pg_stat_wal")
        return {"db_statements": int(float(calls)), "db_commits": int(commits), "db_wal_syncs": int(syncs)}

    def top_statements(self, n=15):
        """The statements run most often: (calls, text)."""
        out = self.psql(f"SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
                        f"ORDER BY calls DESC LIMIT {n}")
        return [line.split("|", 1) for line in out.splitlines()]

    def stop(self):
        self._as_postgres(["pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


def postfix_uid():
    entry = pwd.getpwnam("postfix")
    return entry.pw_uid, entry.pw_gid
