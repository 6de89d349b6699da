#!/usr/bin/env bash
# Tern beside Dovecot with the same password scheme, in one run (issue 23):
#
# 1. imaptest's stress mode (random commands with state checking, CLIENTS
#    clients for SECS seconds, ROUNDS times, the servers taking turns so
#    they see the same load) against
#      - Tern with auth_cache_size = 10000 (its login cache on),
#      - Tern with auth_cache_size = 0 (its default: every login checks argon2),
#      - Dovecot, passwd-file with an {ARGON2ID} hash of Tern's parameters
#        (m=19456 KiB, t=2, p=1: argon2's defaults, which Tern uses), without
#        its auth cache (auth_cache_size = 0, Dovecot's default),
#      - the same Dovecot with auth_cache_size = 10M,
#      - Dovecot with {PLAIN} passwords (no hashing at all: what its other
#        commands cost),
#      - and TERN_BASELINE (an older tern binary), when given.
#    Prints the totals per command, LOGIN's ms/cmd avg, logins / selects /
#    fetches / appends per second, imaptest's error lines and peak memory
#    (Tern: VmHWM; Dovecot: the largest sum of its processes' RSS, sampled).
# 2. One folder of COUNT messages (the same generated ones for both):
#    SORT by date and by subject, THREAD=REFERENCES, and a QRESYNC SELECT
#    after 100 flag changes and 10 expunges (bench/imap_folder_ops.py), for
#    Tern and Dovecot.
#
# Usage: bench/imap_compare.sh   (CLIENTS=5 SECS=20 ROUNDS=1 COUNT=10000
#   TERN_BIN=target/release/tern (built when unset) TERN_BASELINE=PATH
#   FOLDER=0 to skip part 2, STRESS=0 to skip part 1). Not part of CI.
# Needs Debian's dovecot-core/-imapd, libargon2-1 (for the hash) and
# imaptest (built by ../shared/tools/imaptest/build.sh into /tmp/imaptest).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=bench/dovecot.sh
. "$root/bench/dovecot.sh"
clients=${CLIENTS:-5}
secs=${SECS:-20}
rounds=${ROUNDS:-1}
count=${COUNT:-10000}

I=${IMAPTEST:-}
imaptest_prepare dovecot-core dovecot-imapd libargon2-1
if [ -z "${TERN_BIN:-}" ]; then
    cargo build --release --quiet
    TERN_BIN=$root/target/release/tern
fi

bench_work

# An argon2id hash of "pw" with Tern's parameters, by the reference library.
argon2_hash() {
    python3 - <<'PY'
import ctypes, os
lib = ctypes.CDLL("libargon2.so.1")
f = lib.argon2id_hash_encoded
f.argtypes = [ctypes.c_uint32] * 3 + [ctypes.c_char_p, ctypes.c_size_t] * 2 + [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
out = ctypes.create_string_buffer(256)
assert f(2, 19456, 1, b"pw", 2, os.urandom(16), 16, 32, out, 256) == 0
print(out.value.decode())
PY
}
DOVECOT_PASS="{ARGON2ID}$(argon2_hash)"
doveadm pw -t "$DOVECOT_PASS" -p pw >/dev/null
DOVECOT_PROTOCOLS=imap
dovecot_setup

# --- the servers ----------------------------------------------------------
start_tern() { # BIN DIR LIMITS-LINES USERS...
    local bin=$1 dir=$2 limits=$3
    shift 3
    mkdir -p "$dir"
    cat >"$dir/tern.toml" <<TOML
hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"
[[listen]]
protocol = "imap"
address = "127.0.0.1:0"
[tls]
allow_plaintext_auth = true
[limits]
$limits
TOML
    for u in "$@"; do
        echo pw | "$bin" user add "$u" --password-stdin --config "$dir/tern.toml" >/dev/null
    done
    "$bin" serve --config "$dir/tern.toml" 2>"$dir/log" &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 1 600); do [ -s "$dir/data/listeners" ] && break; sleep 0.1; done
    imap_port=$(sed -n 's/^imap .*:\([0-9]*\)$/\1/p' "$dir/data/listeners")
}
stop_tern() {
    peak=$(peak_kib "$server_pid")
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
}
stop_dovecot() {
    dovecot_stop >/dev/null
    peak=$(cat "$dv/peak" 2>/dev/null || echo 0)
}

# Starts the server LABEL stands for (sets imap_port; stop with stop_LABEL's).
start() { # LABEL USERS...
    local label=$1
    shift
    case $label in
    tern) start_tern "$TERN_BIN" "$work/$label" "auth_cache_size = 10000" "$@" ;;
    tern-nocache) start_tern "$TERN_BIN" "$work/$label" "auth_cache_size = 0" "$@" ;;
    tern-baseline) start_tern "$TERN_BASELINE" "$work/$label" "" "$@" ;;
    dovecot-nocache) DOVECOT_EXTRA="auth_cache_size = 0" dovecot_start "$@" >/dev/null ;;
    dovecot-cache) DOVECOT_EXTRA="auth_cache_size = 10M" dovecot_start "$@" >/dev/null ;;
    dovecot-plain) DOVECOT_PASS="{PLAIN}pw" dovecot_start "$@" >/dev/null ;;
    esac
}
stop() { case $1 in tern*) stop_tern ;; *) stop_dovecot ;; esac; }

# --- 1. stress --------------------------------------------------------------
stress() { # LABEL ROUND
    local label=$1 out=$work/$1.$2.out err=$work/$1.$2.err
    rm -rf "${work:?}/$label"
    start "$label" bob@example.test
    (cd "$work" && "$I" host=127.0.0.1 port="$imap_port" user=bob@example.test pass=pw \
        mbox="$mbox" clients="$clients" secs="$secs" >"$out" 2>"$err") || true
    stop "$label"
    # The Totals block: names, then counts; LOGIN's ms/cmd avg is the first
    # figure of the "ms/cmd avg" line.
    awk -v label="$label" -v secs="$secs" -v errors="$(grep -vc throttling "$err" || true)" \
        -v peak="$peak" -v hdr="${header_done:-}" '
        /ms\/cmd avg/ { login_ms = $1 }
        /^Totals:/ { totals = 1; next }
        totals && /^Logi/ { for (i = 1; i <= NF; i++) name[i] = $i; n = NF; next }
        totals && /^ *[0-9]+( +[0-9]+)+ *$/ { for (i = 1; i <= NF; i++) v[name[i]] = $i }
        END {
            if (hdr == "") printf "%-16s %5s %5s %5s %5s %5s  %8s %8s %8s %8s  %6s %7s %10s\n", "", "Logi", "Sele", "Fetc", "Appe", "Logo", "logins/s", "selects", "fetches", "appends", "errors", "LOGINms", "peak RSS"
            printf "%-16s %5d %5d %5d %5d %5d  %8.1f %8.1f %8.1f %8.1f  %6d %7s %6.1f MiB\n", label, v["Logi"], v["Sele"], v["Fetc"], v["Appe"], v["Logo"], v["Logi"] / secs, v["Sele"] / secs, v["Fetc"] / secs, v["Appe"] / secs, errors, login_ms, peak / 1024
        }' "$out"
    header_done=1
    if [ -s "$err" ]; then
        grep -v throttling "$err" | sort | uniq -c | sort -rn | head -3 | sed "s/^/    /" || true
    fi
}

servers=(tern tern-nocache dovecot-nocache dovecot-cache dovecot-plain)
[ -n "${TERN_BASELINE:-}" ] && servers+=(tern-baseline)
if [ "${STRESS:-1}" != 0 ]; then
    echo "== imaptest stress: $clients clients x $secs s, $rounds round(s); Tern $(git -C "$root" rev-parse --short HEAD), Dovecot $(dovecot --version | cut -d' ' -f1)"
    echo "   (argon2id m=19456 t=2 p=1 for both but dovecot-plain; the servers take turns)"
    for r in $(seq 1 "$rounds"); do
        for s in "${servers[@]}"; do stress "$s" "$r"; done
    done
fi

# --- 2. one folder of $count messages ----------------------------------------
if [ "${FOLDER:-1}" != 0 ]; then
    echo "== one folder of $count messages: ms (first run / best of the next two)"
    for s in tern dovecot-nocache; do
        rm -rf "${work:?}/$s"
        start "$s" bench@example.test
        python3 "$root/bench/imap_folder_ops.py" "$imap_port" bench@example.test pw "$count" \
            | sed "s/^/  $s  /"
        stop "$s"
        echo "  $s  peak RSS $(mib "$peak")"
    done
fi
