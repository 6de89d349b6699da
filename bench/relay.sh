#!/usr/bin/env bash
# Relay throughput, Tern beside Postfix in the same run: Postfix's
# smtp-source sends MESSAGES messages of SIZE bytes over SESSIONS sessions to
# the MTA, which relays everything to a smarthost, Postfix's smtp-sink.
# Prints accept rate (until smtp-source is done), end-to-end rate (until the
# sink has every message), CPU seconds and peak RSS for each MTA.
# Usage: bench/relay.sh [MESSAGES] [SESSIONS] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-10000}
SESSIONS=${2:-20}
SIZE=${3:-5120}
command -v smtp-source >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq postfix >/dev/null; }
cargo build --release --quiet
WORK=$(mktemp -d /tmp/tern-bench.XXXXXX)
chmod 755 "$WORK" # Postfix's daemons run as postfix and must reach their queue
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -d "$WORK/pf/etc" ] && postfix -c "$WORK/pf/etc" stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The sink counts what arrives: one line per message in its dump file.
start_sink() {
    local port=$1 count=$2
    : > "$count"
    smtp-sink -c -u postfix "127.0.0.1:$port" 1000 >"$count" 2>/dev/null &
    PIDS+=($!)
}

# Waits until the sink has received N messages (its -c counter: "mesg=N").
wait_sink() {
    local count=$1 n=$2 got
    while :; do
        got=$( (tr '\r' '\n' < "$count" | grep -Eo 'mesg=[0-9]+' | tail -1 | cut -d= -f2) || true)
        [ "${got:-0}" -ge "$n" ] && break
        sleep 0.05
    done
}

report() {
    python3 - "$@" <<'PY'
import sys
name, n, t0, t1, t2, cpu, rss = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6]), float(sys.argv[6]), int(sys.argv[7])
print(f"{name:8} accept {n/(t1-t0):7.0f} msg/s   end-to-end {n/(t2-t0):7.0f} msg/s   CPU {cpu/n*1000:6.2f} s/1000 msgs   peak RSS {rss/1024:7.1f} MiB")
PY
}

# --- Tern ---
SINK1=$(free_port)
start_sink "$SINK1" "$WORK/count1"
mkdir -p "$WORK/tern"
cat > "$WORK/tern/tern.toml" <<TOML
hostname = "relay.bench.test"
local_domains = ["relay.bench.test"]
data_dir = "data"
[[listen]]
protocol = "smtp"
address = "127.0.0.1:0"
[relay]
trusted_networks = ["127.0.0.0/8"]
smarthost = "127.0.0.1:$SINK1"
[limits]
max_connections = 2000
TOML
TERN_LOG=warn target/release/tern serve --config "$WORK/tern/tern.toml" 2>"$WORK/tern.log" &
TPID=$!
PIDS+=($TPID)
until [ -s "$WORK/tern/data/listeners" ]; do sleep 0.1; done
TPORT=$(awk '/^smtp /{split($2,a,":"); print a[2]}' "$WORK/tern/data/listeners")
T0=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@bench.test -t rcpt@sink.test "127.0.0.1:$TPORT"
T1=$(date +%s.%N)
wait_sink "$WORK/count1" "$MESSAGES"
T2=$(date +%s.%N)
TCPU=$(awk '{print ($14+$15)/100}' /proc/$TPID/stat)
TRSS=$(awk '/VmHWM/{print $2}' /proc/$TPID/status)
report tern "$MESSAGES" "$T0" "$T1" "$T2" "$TCPU" "$TRSS"

# --- Postfix, default fsync behaviour, relaying to its own sink ---
SINK2=$(free_port)
start_sink "$SINK2" "$WORK/count2"
PPORT=$(free_port)
P="$WORK/pf"
mkdir -p "$P/etc" "$P/queue" "$P/data"
chown postfix "$P/data"
sed "s/^smtp      inet/127.0.0.1:$PPORT      inet/" /etc/postfix/master.cf > "$P/etc/master.cf"
cat > "$P/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $P/queue
data_directory = $P/data
maillog_file_prefixes = /tmp
maillog_file = $P/maillog
mail_owner = postfix
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.bench.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK2
default_process_limit = 200
smtpd_client_connection_count_limit = 0
CF
postfix -c "$P/etc" start >/dev/null
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PPORT), 1)" 2>/dev/null; do sleep 0.1; done
T0=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@bench.test -t rcpt@sink.test "127.0.0.1:$PPORT"
T1=$(date +%s.%N)
wait_sink "$WORK/count2" "$MESSAGES"
T2=$(date +%s.%N)
# Postfix is many processes: sum CPU over the instance's processes, RSS as the sum of peaks.
read -r PCPU PRSS < <(python3 - "$P" <<'PY'
import os, sys
cpu = rss = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        if b"postfix" not in cmd and b"smtpd" not in cmd and b"cleanup" not in cmd:
            continue
        env = open(f"/proc/{pid}/environ", "rb").read()
        if sys.argv[1].encode() not in env and sys.argv[1].encode() not in cmd:
            continue
        st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cpu += (int(st[11]) + int(st[12])) / 100
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM"):
                rss += int(line.split()[1])
    except OSError:
        pass
print(cpu, rss)
PY
)
report postfix "$MESSAGES" "$T0" "$T1" "$T2" "$PCPU" "$PRSS"
echo "(Postfix CPU and RSS cover its processes still running at the end; exited ones are not counted.)"
