//! Replays the fuzz corpus (`fuzz/corpus/<target>`, grown by `cargo fuzz run` and kept in
//! the repository) through the same entry points the fuzz targets call. Every input that
//! once crashed a parser is in the corpus, so this is also the crash regression test, and
//! it runs on stable Rust in every test run.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn request_corpus_never_panics() {
    assert!(replay("request", emulator::fuzz_entry::request) > 0);
}

#[test]
fn xml_body_corpus_never_panics() {
    assert!(replay("xml_bodies", emulator::fuzz_entry::xml_bodies) > 0);
}

#[test]
fn bearer_token_corpus_never_panics() {
    assert!(replay("bearer_token", emulator::fuzz_entry::bearer_token) > 0);
}
