#![no_main]
//! Fuzz target `sieve_script`: see `tern::fuzzing::sieve_script` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::sieve_script(data));
