#![no_main]
//! Fuzz target `address`: see `tern::fuzzing::address` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::address(data));
