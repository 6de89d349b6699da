#![no_main]
//! Fuzz target `next_hop_reply`: see `tern::fuzzing::next_hop_reply` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::next_hop_reply(data));
