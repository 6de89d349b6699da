//! Paths of the guest plugins in `tests/plugins/` and of the plugins
//! shipped in `plugins/`, built for `wasm32-wasip2` by this crate's build
//! script so that `cargo test` alone has real components to load. One
//! constant per plugin, named after its folder in upper case (`NO_NOBODY`,
//! `shipped::RATE_LIMIT`).

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

/// The shipped plugins' shared config parsing, compiled natively here so
/// that `cargo test --workspace` runs its unit tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../plugins/support/src/lib.rs"]
mod shipped_support;

/// The `virtual` plugin's alias map (standard library only), likewise.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../plugins/virtual/src/map.rs"]
mod shipped_virtual_map;

/// The `sieve` plugin's vacation reply writer, likewise.
#[cfg(test)]
#[path = "../../../plugins/sieve/src/reply.rs"]
mod shipped_sieve_reply;
