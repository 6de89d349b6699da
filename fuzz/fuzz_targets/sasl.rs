#![no_main]
//! Fuzz target `sasl`: see `tern::fuzzing::sasl` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::sasl(data));
