#!/usr/bin/env bash
# Runs the fuzz targets with libFuzzer, growing fuzz/corpus/<target>. Logs
# go to fuzz/logs/<target>.log, crashes to fuzz/artifacts/<target>/.
# cargo-fuzz passes -Z flags, so on a stable toolchain RUSTC_BOOTSTRAP=1 is
# set. No sanitizer (the code under test is safe Rust; without ASan a run
# makes about three times as many executions); debug assertions on
# (overflow checks).
#
# Two budgets:
#   SECONDS_PER_TARGET (default 1800): wall time, one target after another.
#   CPU_SECONDS_PER_TARGET: CPU time instead, for a shared machine: each
#     target runs at nice 19 until it has used that much CPU, then gets
#     SIGINT (libFuzzer prints its final stats); PARALLEL (default 2) at once.
#     Never SIGSTOP a fuzzer: libFuzzer's per-input timeout is wall time,
#     and a stopped run reports a false timeout.
#
#   fuzz/run.sh                                   every target, 30 minutes each
#   SECONDS_PER_TARGET=60 fuzz/run.sh dsn header
#   CPU_SECONDS_PER_TARGET=1800 PARALLEL=2 fuzz/run.sh
set -uo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
mkdir -p logs
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
cargo fuzz build -s none -a --release >logs/build.log 2>&1 || {
    echo "build failed: see fuzz/logs/build.log" >&2
    exit 1
}
bin_dir=target/x86_64-unknown-linux-gnu/release
options=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

summary() {
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*(DONE|pulse|REDUCE|NEW)|ERROR" "logs/$1.log" | tail -2 >&2
}

if [ -z "${CPU_SECONDS_PER_TARGET:-}" ]; then
    seconds=${SECONDS_PER_TARGET:-1800}
    status=0
    for t in "${targets[@]}"; do
        echo "== $t: ${seconds}s" >&2
        nice -n 10 "$bin_dir/$t" "corpus/$t" -max_total_time="$seconds" \
            -artifact_prefix="artifacts/$t/" "${options[@]}" >"logs/$t.log" 2>&1 || status=1
        summary "$t"
    done
    exit $status
fi

# CPU budget: one watcher per target, PARALLEL at once. Arguments: the
# target, then libFuzzer's options.
run_on_cpu_budget() {
    local t=$1 pid ticks=0 start rc
    shift
    mkdir -p "artifacts/$t"
    start=$(date +%s)
    nice -n 19 "$bin_dir/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" "$@" \
        >"logs/$t.log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo "$ticks")
        if [ "$ticks" -ge $((CPU_SECONDS_PER_TARGET * 100)) ]; then
            kill -INT "$pid"
            break
        fi
        sleep 10
    done
    wait "$pid"
    rc=$?
    # 72 is libFuzzer's exit code after SIGINT: the budget was used up.
    echo "$t: exit $rc, $((ticks / 100)) s CPU in $(($(date +%s) - start)) s" >&2
    summary "$t"
    [ "$rc" -eq 0 ] || [ "$rc" -eq 72 ]
}
export -f run_on_cpu_budget summary
export CPU_SECONDS_PER_TARGET bin_dir
printf '%s\n' "${targets[@]}" |
    xargs -P "${PARALLEL:-2}" -I{} bash -c 'run_on_cpu_budget "$@"' _ {} "${options[@]}"
