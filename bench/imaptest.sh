#!/usr/bin/env bash
# Dovecot's imaptest against Tern (issue 11), and against a private Dovecot
# for comparison when Debian's dovecot can be started: the 71 scripted test
# groups, the stress mode (5 clients, random commands, state checking) and
# the profile mode (users receiving mail over LMTP, reading over IMAP).
# Prints imaptest's summary lines, its totals, the number of lines on
# stderr (errors), and each server's peak RSS (VmHWM; for Dovecot the sum
# over its processes). Not part of CI.
#
# Usage: bench/imaptest.sh            (STRESS_SECS=60 PROFILE_SECS=60
#                                      PROFILE_USERS=20 DOVECOT=0 to skip it)
# imaptest is built into /tmp/imaptest by ../shared/tools/imaptest/build.sh
# (it apt-installs dovecot-dev; this script adds dovecot-core, whose
# libdovecot imaptest links, and dovecot-imapd/-lmtpd for the comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stress_secs=${STRESS_SECS:-60}
profile_secs=${PROFILE_SECS:-60}
profile_users=${PROFILE_USERS:-20}

# shellcheck source=bench/dovecot.sh
. "$root/bench/dovecot.sh"
I=/tmp/imaptest/src/imaptest
imaptest_prepare dovecot-core dovecot-imapd dovecot-lmtpd
tests=/tmp/imaptest/src/tests

cargo build --release --quiet
bin=$root/target/release/tern
bench_work

# The profile: few users, short ramp-up, no "+Spam" deliveries (Tern has
# no recipient delimiter; Dovecot would file them into a Spam folder).
profile() { # LMTP_PORT OUT
    sed -e "s/^lmtp_port = .*/lmtp_port = $1/" \
        -e "s/^total_user_count = .*/total_user_count = $profile_users/" \
        -e "s/^rampup_time = .*/rampup_time = 5s/" \
        -e "s/^\( *\)username_format = test%n$/\1username_format = test%n@example.test/" \
        -e "s/^\( *\)mail_spam_delivery_interval = .*/\1mail_spam_delivery_interval = 0/" \
        /tmp/imaptest/profile.conf >"$2"
}

# One imaptest run; prints a labelled summary. ARGS... are imaptest's.
run_imaptest() { # LABEL KIND ARGS...
    local label=$1 kind=$2
    shift 2
    local out=$work/$label.$kind.out err=$work/$label.$kind.err
    (cd "$work" && "$I" "$@" >"$out" 2>"$err") || true
    case $kind in
    scripted) sed -n '1,3p' "$out" | sed "s/^/  /" ;;
    *)
        sed -n '/^Totals:/,$p' "$out" | sed "s/^/  /"
        echo "  stderr: $(grep -vc 'throttling' "$err" || true) lines"
        ;;
    esac
    if [ -s "$err" ] && [ "$kind" != scripted ]; then
        sort "$err" | uniq -c | sort -rn | head -5 | sed "s/^/    /"
    fi
}

# --- Tern ---------------------------------------------------------------
start_tern() { # DIR USERS...
    local dir=$1
    shift
    mkdir -p "$dir"
    cat >"$dir/tern.toml" <<TOML
hostname = "mx.example.test"
local_domains = ["example.test"]
data_dir = "data"
[[listen]]
protocol = "imap"
address = "127.0.0.1:0"
[[listen]]
protocol = "lmtp"
address = "127.0.0.1:0"
[tls]
allow_plaintext_auth = true
TOML
    for u in "$@"; do
        echo pw | "$bin" user add "$u" --password-stdin --config "$dir/tern.toml" >/dev/null
    done
    "$bin" serve --config "$dir/tern.toml" 2>"$dir/log" &
    tern_pid=$!
    pids+=("$tern_pid")
    for _ in $(seq 1 600); do [ -s "$dir/data/listeners" ] && break; sleep 0.1; done
    imap_port=$(sed -n 's/^imap .*:\([0-9]*\)$/\1/p' "$dir/data/listeners")
    lmtp_port=$(sed -n 's/^lmtp .*:\([0-9]*\)$/\1/p' "$dir/data/listeners")
}
stop_tern() {
    echo "  Tern peak RSS: $(mib "$(peak_kib "$tern_pid")")"
    kill "$tern_pid"
    wait "$tern_pid" 2>/dev/null || true
}

echo "== Tern $(git -C "$root" rev-parse --short HEAD)"
echo "scripted groups:"
start_tern "$work/t1" bob@example.test
run_imaptest tern scripted host=127.0.0.1 port="$imap_port" user=bob@example.test pass=pw test="$tests"
stop_tern
echo "stress (5 clients, ${stress_secs} s):"
start_tern "$work/t2" bob@example.test
run_imaptest tern stress host=127.0.0.1 port="$imap_port" user=bob@example.test pass=pw \
    mbox="$mbox" clients=5 secs="$stress_secs"
stop_tern
echo "profile ($profile_users users, LMTP delivery, ${profile_secs} s):"
users=()
for i in $(seq 1 "$profile_users"); do users+=("test$i@example.test"); done
start_tern "$work/t3" "${users[@]}"
profile "$lmtp_port" "$work/tern-profile.conf"
run_imaptest tern profile host=127.0.0.1 port="$imap_port" user=test%d@example.test pass=pw \
    mbox="$mbox" profile="$work/tern-profile.conf" secs="$profile_secs"
stop_tern

# --- Dovecot (Debian's package, private instance on loopback) ----------
[ "${DOVECOT:-1}" = 0 ] && exit 0
if ! command -v dovecot >/dev/null; then
    echo "== Dovecot: not installed, skipped"
    exit 0
fi
dovecot_setup
if ! dovecot_start bob@example.test 2>"$dv/start.err"; then
    echo "== Dovecot: could not be started privately: $(head -c 300 "$dv/start.err")"
    exit 0
fi
echo "== Dovecot $(dovecot --version)"
echo "scripted groups:"
run_imaptest dovecot scripted host=127.0.0.1 port="$imap_port" user=bob@example.test pass=pw test="$tests"
dovecot_stop
echo "stress (5 clients, ${stress_secs} s):"
dovecot_start bob@example.test
run_imaptest dovecot stress host=127.0.0.1 port="$imap_port" user=bob@example.test pass=pw \
    mbox="$mbox" clients=5 secs="$stress_secs"
dovecot_stop
echo "profile ($profile_users users, LMTP delivery, ${profile_secs} s):"
dovecot_start "${users[@]}"
profile "$lmtp_port" "$work/dovecot-profile.conf"
run_imaptest dovecot profile host=127.0.0.1 port="$imap_port" user=test%d@example.test pass=pw \
    mbox="$mbox" profile="$work/dovecot-profile.conf" secs="$profile_secs"
dovecot_stop
