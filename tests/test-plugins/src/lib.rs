//! Paths of the guest plugins in `tests/plugins/`, built for
//! `wasm32-wasip2` by this crate's build script so that `cargo test` alone
//! has real components to load. One constant per plugin, named after its
//! crate in upper case (`NO_NOBODY`).

include!(concat!(env!("OUT_DIR"), "/plugins.rs"));
