#![no_main]
//! Fuzz target `pop3_command`: see `tern::fuzzing::pop3_command` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::pop3_command(data));
