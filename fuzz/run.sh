#!/usr/bin/env bash
# Runs the fuzz targets with libFuzzer, one after another (never two at
# once: the machine is shared), each for SECONDS (default 1800), growing
# fuzz/corpus/<target>. Logs go to fuzz/logs/<target>.log, crashes to
# fuzz/artifacts/<target>/. cargo-fuzz passes -Z flags, so on a stable
# toolchain RUSTC_BOOTSTRAP=1 is set. No sanitizer (the code under test is
# safe Rust; without ASan a run makes about three times as many executions);
# debug assertions on (overflow checks).
#
#   fuzz/run.sh                 every target, 30 minutes each
#   SECONDS_PER_TARGET=60 fuzz/run.sh dsn header
set -uo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
seconds=${SECONDS_PER_TARGET:-1800}
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
status=0
for t in "${targets[@]}"; do
    echo "== $t: ${seconds}s" >&2
    nice -n 10 cargo fuzz run -s none -a --release "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"logs/$t.log" 2>&1 || status=1
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE|cov:" "logs/$t.log" | tail -3 >&2
done
exit $status
