#![no_main]
//! Fuzz target `smtp_command`: see `tern::fuzzing::smtp_command` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::smtp_command(data));
