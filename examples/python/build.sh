#!/usr/bin/env bash
# Builds the Python example into OUT_DIR/blocklist.wasm (default: ./build).
# Needs `pip install -r requirements.txt` (componentize-py, which bundles
# the CPython it compiles into the component), the repository's Rust
# toolchain with the wasm32-wasip2 target (`rustup toolchain install` in
# the repository root) and `cargo install --locked wac-cli@0.12.0`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
WAC_VERSION=0.12.0
cd "$HERE"
command -v componentize-py >/dev/null || { echo "build.sh: componentize-py not found; pip install -r $HERE/requirements.txt" >&2; exit 1; }
if ! wac --version 2>/dev/null | grep -qF "$WAC_VERSION"; then
    echo "build.sh: wac $WAC_VERSION not found; cargo install --locked wac-cli@$WAC_VERSION --no-default-features" >&2
    exit 1
fi
componentize-py --wit-path ../../sdk/wit --world policy-plugin \
    componentize blocklist --output "$OUT/blocklist.cpython.wasm" >/dev/null
# CPython imports wasi:sockets whether or not the plugin uses them, and Tern
# refuses a component that imports sockets without a `connect` grant. This
# plugin needs no network: sdk/no-network (sockets that refuse everything)
# answers those imports, so the component imports none.
cargo build --quiet --release --locked --target wasm32-wasip2 \
    --manifest-path ../../sdk/no-network/Cargo.toml --target-dir "$OUT/no-network-target"
wac plug "$OUT/blocklist.cpython.wasm" \
    --plug "$OUT/no-network-target/wasm32-wasip2/release/no_network.wasm" \
    -o "$OUT/blocklist.wasm"
# Only on-rcpt-to does anything: say so, and Tern calls nothing else.
"$HERE/../../sdk/declare-hooks" "$OUT/blocklist.wasm" on-rcpt-to
echo "$OUT/blocklist.wasm"
