#!/usr/bin/env bash
# Local delivery throughput: Postfix's smtp-source sends MESSAGES messages of
# SIZE bytes over SESSIONS sessions to local users of a release-built Tern;
# prints messages per second and the server's peak memory (VmHWM).
# Usage: bench/local-delivery.sh [MESSAGES] [SESSIONS] [SIZE]
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-10000}
SESSIONS=${2:-20}
SIZE=${3:-5120}
command -v smtp-source >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq postfix >/dev/null; }
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
cat > "$WORK/tern.toml" <<TOML
hostname = "bench.test"
local_domains = ["bench.test"]
data_dir = "data"
[[listen]]
protocol = "smtp"
address = "127.0.0.1:0"
[limits]
max_connections = 2000
TOML
for i in $(seq 0 9); do echo pw | target/release/tern user add "user$i@bench.test" --password-stdin --config "$WORK/tern.toml" >/dev/null; done
TERN_LOG=warn target/release/tern serve --config "$WORK/tern.toml" 2>"$WORK/tern.log" &
PID=$!
until [ -s "$WORK/data/listeners" ]; do sleep 0.1; done
PORT=$(awk '/^smtp /{split($2,a,":"); print a[2]}' "$WORK/data/listeners")
START=$(date +%s.%N)
smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@outside.test -t user0@bench.test "127.0.0.1:$PORT"
END=$(date +%s.%N)
RSS=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
CPU=$(awk '{print ($14+$15)/100}' /proc/$PID/stat)
python3 - "$MESSAGES" "$START" "$END" "$RSS" "$CPU" <<'PY'
import sys
n, s, e, rss, cpu = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
print(f"messages: {n}  seconds: {e-s:.2f}  rate: {n/(e-s):.0f} msg/s  peak RSS: {rss/1024:.1f} MiB  CPU: {cpu:.2f} s ({cpu/n*1000:.2f} s per 1000 msgs)")
PY
