#![no_main]
//! Fuzz target `header`: see `tern::fuzzing::header` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::header(data));
