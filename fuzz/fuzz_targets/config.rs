#![no_main]
//! Fuzz target `config`: see `tern::fuzzing::config` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::config(data));
