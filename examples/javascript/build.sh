#!/usr/bin/env bash
# Builds the JavaScript example into OUT_DIR/blocklist.wasm (default: ./build).
# Needs Node.js (18 or later) and `npm install` run once in this folder.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
cd "$HERE"
[ -x node_modules/.bin/componentize-js ] || { echo "build.sh: run 'npm install' in $HERE first" >&2; exit 1; }
# `-d http fetch-event`: without it the component imports wasi:http, which
# Tern does not provide (plugins get no network).
node_modules/.bin/componentize-js blocklist.js --wit ../../sdk/wit --world-name policy-plugin \
    --disable http fetch-event --out "$OUT/blocklist.wasm" >/dev/null
# Only on-rcpt-to does anything: say so, and Tern calls nothing else.
"$HERE/../../sdk/declare-hooks" "$OUT/blocklist.wasm" on-rcpt-to
echo "$OUT/blocklist.wasm"
