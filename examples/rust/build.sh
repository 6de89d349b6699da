#!/usr/bin/env bash
# Builds the Rust example into OUT_DIR/blocklist.wasm (default: ./build).
# Needs the repository's Rust toolchain with the wasm32-wasip2 target
# (`rustup toolchain install` in the repository root installs both).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
cd "$HERE"
cargo build --quiet --release --locked --target wasm32-wasip2 --target-dir "$OUT/target"
cp "$OUT/target/wasm32-wasip2/release/blocklist.wasm" "$OUT/blocklist.wasm"
echo "$OUT/blocklist.wasm"
