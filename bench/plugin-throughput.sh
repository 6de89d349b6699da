#!/usr/bin/env bash
# SMTP throughput with three plugins loaded (a policy on every RCPT, a
# filter reading the headers of every message, a router asked for every
# recipient) against none: Postfix's smtp-source sends MESSAGES messages of
# SIZE bytes over SESSIONS sessions to a local user of a release-built Tern,
# alternating the two setups ROUNDS times (the machine may be shared: the
# best run of each is reported); prints both rates and the share lost.
# Usage: bench/plugin-throughput.sh [MESSAGES] [SESSIONS] [SIZE] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${1:-5000}
SESSIONS=${2:-20}
SIZE=${3:-5120}
ROUNDS=${4:-3}
command -v smtp-source >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq postfix >/dev/null; }
cargo build --release --quiet -p tern -p test-plugins
WASM=target/test-plugins/wasm32-wasip2/release
WORK=$(mktemp -d)
PID=
trap 'if [ -n "$PID" ]; then kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

run() { # $1: label, $2: extra config
    local dir
    dir=$(mktemp -d "$WORK/$1.XXXX")
    cat > "$dir/tern.toml" <<TOML
hostname = "bench.test"
local_domains = ["bench.test"]
data_dir = "data"
[[listen]]
protocol = "smtp"
address = "127.0.0.1:0"
[limits]
max_connections = 2000
$2
TOML
    echo pw | target/release/tern user add "user0@bench.test" --password-stdin --config "$dir/tern.toml" >/dev/null
    TERN_LOG=warn target/release/tern serve --config "$dir/tern.toml" 2>"$dir/tern.log" &
    PID=$!
    until [ -s "$dir/data/listeners" ]; do sleep 0.1; done
    local port
    port=$(awk '/^smtp /{split($2,a,":"); print a[2]}' "$dir/data/listeners")
    local start end
    start=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@outside.test -t user0@bench.test "127.0.0.1:$port"
    end=$(date +%s.%N)
    kill $PID; wait $PID 2>/dev/null || true; PID=
    python3 -c "import sys; print(sys.argv[1], int(sys.argv[2]) / (float(sys.argv[4]) - float(sys.argv[3])))" "$1" "$MESSAGES" "$start" "$end" >> "$WORK/rates"
}

THREE="
[[plugin]]
name = \"policy\"
path = \"$PWD/$WASM/no_nobody.wasm\"
[[plugin]]
name = \"filter\"
path = \"$PWD/$WASM/add_header.wasm\"
[[plugin]]
name = \"router\"
path = \"$PWD/$WASM/smarthost_router.wasm\"
config = { domain = \"elsewhere.test\", smarthost = \"127.0.0.1:1\" }
"
for _ in $(seq "$ROUNDS"); do
    run none ""
    run three "$THREE"
done
python3 - "$WORK/rates" "$MESSAGES" "$SESSIONS" "$SIZE" <<'PY'
import sys
rates = {}
for line in open(sys.argv[1]):
    label, rate = line.split()
    rates.setdefault(label, []).append(float(rate))
none, three = max(rates["none"]), max(rates["three"])
print("runs (msg/s):", {k: [round(r) for r in v] for k, v in rates.items()})
print(f"{sys.argv[2]} messages of {sys.argv[4]} bytes over {sys.argv[3]} sessions")
print(f"no plugins:    {none:.0f} msg/s")
print(f"three plugins: {three:.0f} msg/s  ({(1 - three / none) * 100:.1f}% lost)")
PY
