#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = storage_client::StorageAccount::parse(s);
        let _ = storage_client::job::JobMessage::parse(s);
    }
});
