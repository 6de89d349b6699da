# Shell helpers for the IMAP benchmarks (sourced by imaptest.sh and
# imap_compare.sh, which set $root): imaptest and a scratch folder, peak
# memory of processes, and a private Dovecot
# (Debian's package) on loopback over maildir in $dv, with a passwd-file of
# the users given, each with the password $DOVECOT_PASS (default {PLAIN}pw),
# the extra settings in $DOVECOT_EXTRA, serving $DOVECOT_PROTOCOLS
# (default "imap lmtp"). The caller sets $work and the
# array pids (background processes to clean up).

# The imaptest tools (../shared beside the repository; from a git worktree:
# beside the main one), Debian's Dovecot packages PKGS when missing, and
# imaptest built into /tmp/imaptest unless $I is one already.
imaptest_prepare() { # PKGS...
    tools=${IMAPTEST_TOOLS:-$root/../shared/tools/imaptest}
    if [ ! -d "$tools" ]; then
        tools=$(cd "$(git rev-parse --git-common-dir)/.." && pwd)/../shared/tools/imaptest
    fi
    if [ ! -e /usr/lib/dovecot/libdovecot.so.0 ] || ! command -v dovecot >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    fi
    I=${I:-/tmp/imaptest/src/imaptest}
    if [ ! -x "$I" ] || [ -n "${REBUILD:-}" ]; then
        sh "$tools/build.sh" /tmp/imaptest >/dev/null
        I=/tmp/imaptest/src/imaptest
    fi
}

# A scratch folder $work (removed at exit with every process in pids and
# the private Dovecot) holding imaptest's generated mailbox $mbox.
bench_work() {
    work=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
    (cd "$work" && python3 "$tools/generate_mbox.py" >/dev/null)
    mbox=$work/testmbox
}
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ -f "$work/dovecot/dovecot.conf" ]; then
        dovecot -c "$work/dovecot/dovecot.conf" stop 2>/dev/null || true
    fi
    rm -rf "$work"
}

peak_kib() { # PID...
    local total=0 v
    for p in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Makes the folders in $work/dovecot (dv) and picks the accounts it runs as.
dovecot_setup() {
    dv=$work/dovecot
    mkdir -p "$dv/run" "$dv/mail"
    if [ "$(id -u)" = 0 ]; then
        mail_user=dovecot login_user=dovenull
        chown dovecot:dovecot "$dv/mail"
        chmod 755 "$work" "$dv"
    else
        mail_user=$(id -un) login_user=$(id -un)
    fi
}
dovecot_start() {
    local imap=$(free_port) lmtp=$(free_port)
    : >"$dv/passwd"
    for u in "$@"; do echo "$u:${DOVECOT_PASS:-{PLAIN\}pw}::::::" >>"$dv/passwd"; done
    cat >"$dv/dovecot.conf" <<CONF
base_dir = $dv/run
state_dir = $dv/run
instance_name = imaptest-bench
protocols = ${DOVECOT_PROTOCOLS:-imap lmtp}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $dv/log
default_login_user = $login_user
default_internal_user = $mail_user
first_valid_uid = 0
mail_location = maildir:$dv/mail/%u
mail_privileged_group =
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
passdb {
  driver = passwd-file
  args = $dv/passwd
}
userdb {
  driver = static
  args = uid=$mail_user gid=$mail_user home=$dv/mail/%u
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Spam {
    auto = create
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp
  }
  unix_listener lmtp {
    mode = 0666
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
${DOVECOT_EXTRA:-}
CONF
    rm -rf "${dv:?}/mail/"*
    dovecot -c "$dv/dovecot.conf"
    for _ in $(seq 1 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $imap))" 2>/dev/null && break
        sleep 0.1
    done
    imap_port=$imap lmtp_port=$lmtp
    echo 0 >"$dv/peak"
    sample_dovecot "$(cat "$dv/run/master.pid")" "$dv/peak" &
    sampler=$!
    pids+=("$sampler")
}
# Dovecot runs a process per connection: sample the sum of its processes'
# RSS every 0.2 s and keep the largest sum.
sample_dovecot() { # MASTER_PID OUT
    local max=0 sum p v
    while kill -0 "$1" 2>/dev/null; do
        sum=0
        for p in "$1" $(pgrep -P "$1" || true); do
            v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
            sum=$((sum + ${v:-0}))
        done
        [ "$sum" -gt "$max" ] && max=$sum && echo "$max" >"$2"
        sleep 0.2
    done
}
dovecot_stop() {
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    echo "  Dovecot peak RSS (largest sum over its processes, sampled): $(mib "$(cat "$dv/peak" 2>/dev/null || echo 0)")"
    dovecot -c "$dv/dovecot.conf" stop 2>/dev/null || true
    for _ in $(seq 1 100); do [ -e "$dv/run/master.pid" ] || break; sleep 0.1; done
}
