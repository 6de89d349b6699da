#![no_main]
//! Fuzz target `managesieve_command`: see `tern::fuzzing::managesieve_command` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::managesieve_command(data));
