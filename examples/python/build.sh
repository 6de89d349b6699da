#!/usr/bin/env bash
# Builds the Python example into OUT_DIR/blocklist.wasm (default: ./build).
# Needs `pip install -r requirements.txt` (componentize-py, which bundles
# the CPython it compiles into the component).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
cd "$HERE"
command -v componentize-py >/dev/null || { echo "build.sh: componentize-py not found; pip install -r $HERE/requirements.txt" >&2; exit 1; }
componentize-py --wit-path ../../sdk/wit --world policy-plugin \
    componentize blocklist --output "$OUT/blocklist.wasm" >/dev/null
# Only on-rcpt-to does anything: say so, and Tern calls nothing else.
"$HERE/../../sdk/declare-hooks" "$OUT/blocklist.wasm" on-rcpt-to
echo "$OUT/blocklist.wasm"
