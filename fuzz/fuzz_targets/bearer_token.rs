#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| emulator::fuzz_entry::bearer_token(data));
