#!/usr/bin/env bash
# Web mail with 10,000 messages in one folder (issue 12): starts a private
# Tern on loopback with http and imap listeners, fills INBOX over IMAP,
# then times the first list page, opening a message, a later page and a
# search over HTTP, and reports the server's memory. Not part of CI.
# Usage: bench/webmail.sh [COUNT] (builds the release binary first).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
cargo build --release --quiet
bin=target/release/tern
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
cat > "$dir/tern.toml" <<TOML
hostname = "bench.example.test"
local_domains = ["example.test"]
data_dir = "data"
[[listen]]
protocol = "imap"
address = "127.0.0.1:0"
[[listen]]
protocol = "http"
address = "127.0.0.1:0"
[tls]
allow_plaintext_auth = true
TOML
echo pw | $bin user add bench@example.test --password-stdin --config "$dir/tern.toml" >/dev/null
$bin serve --config "$dir/tern.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 1 600); do [ -s "$dir/data/listeners" ] && break; sleep 0.1; done
imap=$(sed -n 's/^imap .*:\([0-9]*\)$/\1/p' "$dir/data/listeners")
http=$(sed -n 's/^http .*:\([0-9]*\)$/\1/p' "$dir/data/listeners")
python3 bench/webmail_10k.py "$imap" "$http" "$pid" "$count"
