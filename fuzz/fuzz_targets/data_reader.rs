#![no_main]
//! Fuzz target `data_reader`: see `tern::fuzzing::data_reader` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::data_reader(data));
