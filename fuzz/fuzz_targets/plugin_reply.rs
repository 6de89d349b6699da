#![no_main]
//! Fuzz target `plugin_reply`: see `tern::fuzzing::plugin_reply` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| tern::fuzzing::plugin_reply(data));
