//! Replays `fuzz/corpus/connection_string` (see emulator/tests/fuzz_corpus.rs).
#![allow(clippy::unwrap_used)]

#[test]
fn connection_string_corpus_never_panics() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/connection_string");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = storage_client::StorageAccount::parse(s);
            let _ = storage_client::job::JobMessage::parse(s);
        }
        n += 1;
    }
    assert!(n > 0);
}
