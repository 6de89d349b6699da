#!/usr/bin/env bash
# Large messages and large mailboxes on a release-built Tern: sends one
# message of BIG_MB megabytes over SMTP and reads it back over POP3, then
# fills a mailbox with COUNT messages and lists and retrieves them all.
# Prints times and the server's peak memory (VmHWM) after each phase.
# Usage: bench/mailbox.sh [BIG_MB] [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_MB=${1:-100}
COUNT=${2:-1000}
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
[[listen]]
protocol = "pop3"
address = "127.0.0.1:0"
[tls]
allow_plaintext_auth = true
[limits]
max_message_size = "$((BIG_MB * 2))MiB"
TOML
echo pw | target/release/tern user add big@bench.test --password-stdin --config "$WORK/tern.toml" >/dev/null
echo pw | target/release/tern user add many@bench.test --password-stdin --config "$WORK/tern.toml" >/dev/null
TERN_LOG=warn target/release/tern serve --config "$WORK/tern.toml" 2>"$WORK/tern.log" &
PID=$!
until [ -s "$WORK/data/listeners" ]; do sleep 0.1; done
SMTP=$(awk '/^smtp /{split($2,a,":"); print a[2]}' "$WORK/data/listeners")
POP=$(awk '/^pop3 /{split($2,a,":"); print a[2]}' "$WORK/data/listeners")
python3 - "$SMTP" "$POP" "$BIG_MB" "$COUNT" "$PID" <<'PY'
import hashlib, poplib, smtplib, sys, time
smtp, pop, big_mb, count, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def hwm():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
body = b"Subject: big\r\n\r\n" + line * (big_mb * 1024 * 1024 // len(line))
t = time.time(); s = smtplib.SMTP("127.0.0.1", smtp); s.sendmail("a@outside.test", ["big@bench.test"], body); s.quit()
print(f"send {len(body)/1e6:.0f} MB: {time.time()-t:.2f} s, server peak RSS {hwm():.1f} MiB")
t = time.time(); p = poplib.POP3("127.0.0.1", pop); p.user("big@bench.test"); p.pass_("pw")
got = b"\r\n".join(p.retr(1)[1]) + b"\r\n"; p.quit()
assert got.endswith(body), "message changed"
print(f"RETR {len(got)/1e6:.0f} MB: {time.time()-t:.2f} s, server peak RSS {hwm():.1f} MiB")
s = smtplib.SMTP("127.0.0.1", smtp)
t = time.time()
for i in range(count):
    s.sendmail("a@outside.test", ["many@bench.test"], b"Subject: n%d\r\n\r\n" % i + b"x" * 2000 + b"\r\n")
s.quit()
print(f"deliver {count} messages: {time.time()-t:.2f} s")
t = time.time(); p = poplib.POP3("127.0.0.1", pop); p.user("many@bench.test"); p.pass_("pw")
n = len(p.list()[1]); t_list = time.time() - t
for i in range(1, n + 1):
    p.retr(i)
p.quit()
print(f"POP3 login+LIST of {n}: {t_list*1000:.0f} ms; RETR all: {time.time()-t:.2f} s; server peak RSS {hwm():.1f} MiB")
PY
