#!/usr/bin/env bash
# Builds the C example into OUT_DIR/blocklist.wasm (default: ./build).
# Needs Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32,
# `cargo install --locked wit-bindgen-cli@0.51.0`, and for the last step
# either `cargo install --locked wasm-tools@1.244.0` or, if that is not
# installed, jco (the same `component new` code, prebuilt) from
# `npm install` in ../javascript. scripts/install-test-deps sets up the latter.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WIT="$HERE/../../sdk/wit"
OUT="$(mkdir -p "${1:-$HERE/build}" && cd "${1:-$HERE/build}" && pwd)"
WIT_BINDGEN_VERSION=0.51.0
WASM_TOOLS_VERSION=1.244.0

need() { # $1: command, $2: version it must report, $3: how to get it
    command -v "$1" >/dev/null || { echo "build.sh: $1 not found; $3" >&2; exit 1; }
    if [ -n "$2" ] && ! "$1" --version | grep -qF "$2"; then
        echo "build.sh: $1 is not version $2 ($("$1" --version)); $3" >&2
        exit 1
    fi
}
need clang "" "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"
need wit-bindgen "$WIT_BINDGEN_VERSION" "cargo install --locked wit-bindgen-cli@$WIT_BINDGEN_VERSION"
JCO="$HERE/../javascript/node_modules/.bin/jco"
if command -v wasm-tools >/dev/null && wasm-tools --version | grep -qF "$WASM_TOOLS_VERSION"; then
    component_new() { wasm-tools component new "$@"; }
elif [ -x "$JCO" ]; then
    component_new() { "$JCO" new "$@" >/dev/null; }
else
    echo "build.sh: neither wasm-tools $WASM_TOOLS_VERSION (cargo install --locked wasm-tools@$WASM_TOOLS_VERSION) nor jco (npm install in examples/javascript) found" >&2
    exit 1
fi

# 1. C bindings for the world `policy-plugin`: policy_plugin.{h,c} and an
#    object file carrying the component type.
wit-bindgen c "$WIT" --world policy-plugin --out-dir "$OUT/gen" >/dev/null

# 2. A core WebAssembly module (WASI preview 1, reactor: no main).
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wno-unused-parameter \
    -I "$OUT/gen" -o "$OUT/blocklist.core.wasm" \
    "$HERE/blocklist.c" "$OUT/gen/policy_plugin.c" "$OUT/gen/policy_plugin_component_type.o"

# 3. The adapter from WASI preview 1 to 0.2, from the crate that matches
#    Tern's wasmtime, then the component.
cargo run --quiet --release --locked --manifest-path "$HERE/adapter/Cargo.toml" \
    --target-dir "$OUT/adapter-target" -- "$OUT/wasi_snapshot_preview1.reactor.wasm"
component_new "$OUT/blocklist.core.wasm" \
    --adapt "wasi_snapshot_preview1=$OUT/wasi_snapshot_preview1.reactor.wasm" \
    -o "$OUT/blocklist.wasm"
# Only on-rcpt-to does anything: say so, and Tern calls nothing else.
"$HERE/../../sdk/declare-hooks" "$OUT/blocklist.wasm" on-rcpt-to
echo "$OUT/blocklist.wasm"
