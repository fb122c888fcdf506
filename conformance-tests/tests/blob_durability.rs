//! Blob bytes are durable on every 2xx and deleted blobs give their space back.
#![allow(clippy::unwrap_used)]

use conformance_tests::target::http_bytes;
use conformance_tests::{account_sas_query, EmulatorProcess, DEV_ACCOUNT, DEV_KEY};

fn sas() -> String {
    account_sas_query(
        DEV_ACCOUNT,
        DEV_KEY,
        "b",
        "sco",
        "rwdlac",
        "2099-01-01T00:00:00Z",
    )
}

fn req(
    e: &EmulatorProcess,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let sep = if path.contains('?') { '&' } else { '?' };
    http_bytes(
        &e.blob_base,
        method,
        &format!("/{DEV_ACCOUNT}{path}{sep}{}", sas()),
        headers,
        body,
    )
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn extent_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("extents"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn committed_blobs_survive_sigkill_and_deletes_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let emu = EmulatorProcess::at(dir.path());
    let block = [("x-ms-blob-type", "BlockBlob")];
    let (s, b) = req(&emu, "PUT", "/cont1?restype=container", &[], b"");
    assert_eq!(s, 201, "{}", String::from_utf8_lossy(&b));
    let big = data(3 * 1024 * 1024 + 17, 1);
    let small = data(1000, 2);
    assert_eq!(req(&emu, "PUT", "/cont1/big.bin", &block, &big).0, 201);
    assert_eq!(
        req(&emu, "PUT", "/cont1/dir/small%20one.txt", &block, &small).0,
        201
    );
    // Built from blocks: one large (a file) and one small (inline).
    let b1 = data(200 * 1024, 3);
    let b2 = data(10, 4);
    assert_eq!(
        req(
            &emu,
            "PUT",
            "/cont1/blocks.bin?comp=block&blockid=AAAA",
            &[],
            &b1
        )
        .0,
        201
    );
    assert_eq!(
        req(
            &emu,
            "PUT",
            "/cont1/blocks.bin?comp=block&blockid=AAAB",
            &[],
            &b2
        )
        .0,
        201
    );
    let list = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>AAAB</Latest><Latest>AAAA</Latest></BlockList>";
    assert_eq!(
        req(&emu, "PUT", "/cont1/blocks.bin?comp=blocklist", &[], list).0,
        201
    );
    assert_eq!(
        req(&emu, "PUT", "/cont1/doomed.bin", &block, &data(500_000, 5)).0,
        201
    );
    assert_eq!(req(&emu, "DELETE", "/cont1/doomed.bin", &[], b"").0, 202);
    emu.kill9();

    let emu = EmulatorProcess::at(dir.path());
    assert_eq!(
        req(&emu, "GET", "/cont1/big.bin", &[], b""),
        (200, big.clone())
    );
    assert_eq!(
        req(&emu, "GET", "/cont1/dir/small%20one.txt", &[], b""),
        (200, small)
    );
    let mut joined = b2.clone();
    joined.extend_from_slice(&b1);
    assert_eq!(
        req(&emu, "GET", "/cont1/blocks.bin", &[], b""),
        (200, joined)
    );
    assert_eq!(
        req(&emu, "GET", "/cont1/doomed.bin", &[], b"").0,
        404,
        "an acknowledged delete stays deleted"
    );
    // A range of the large blob.
    let (status, body) = req(
        &emu,
        "GET",
        "/cont1/big.bin",
        &[("x-ms-range", "bytes=1048576-1048675")],
        b"",
    );
    assert_eq!((status, body.as_slice()), (206, &big[1_048_576..1_048_676]));

    // Only live blobs keep extent files; deleting gives the space back.
    assert_eq!(extent_files(dir.path()), 2, "big.bin and the large block");
    assert_eq!(req(&emu, "DELETE", "/cont1/big.bin", &[], b"").0, 202);
    assert_eq!(
        req(&emu, "DELETE", "/cont1?restype=container", &[], b"").0,
        202
    );
    assert_eq!(extent_files(dir.path()), 0);
}
