#![no_main]
//! Fuzz target `dsn`: see `tern::fuzzing::dsn` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::dsn(data));
