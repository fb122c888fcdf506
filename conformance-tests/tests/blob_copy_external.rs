//! Copy Blob from a URL outside the emulator: the source is fetched over HTTP and mirrored
//! failures come back as CannotVerifyCopySource with the source's status.
#![allow(clippy::unwrap_used)]

use conformance_tests::target::http_bytes;
use conformance_tests::{account_sas_query, EmulatorProcess, DEV_ACCOUNT, DEV_KEY};
use std::io::{Read, Write};
use std::net::TcpListener;

/// Serves `count` requests: `/ok` gets `body`, anything else 404.
fn serve(body: &'static [u8], count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let ok = head.starts_with("GET /ok");
            let (status, payload): (&str, &[u8]) = if ok {
                ("200 OK", body)
            } else {
                ("404 Not Found", b"")
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/x-source\r\nx-ms-meta-Origin: far\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = s.write_all(reply.as_bytes());
            let _ = s.write_all(payload);
        }
    });
    port
}

#[test]
fn copies_from_an_http_url() {
    let emu = EmulatorProcess::in_memory();
    let sas = account_sas_query(
        DEV_ACCOUNT,
        DEV_KEY,
        "b",
        "sco",
        "rwdlac",
        "2099-01-01T00:00:00Z",
    );
    let req = |method: &str, path: &str, headers: &[(&str, &str)]| {
        let sep = if path.contains('?') { '&' } else { '?' };
        http_bytes(
            &emu.blob_base,
            method,
            &format!("/{DEV_ACCOUNT}{path}{sep}{sas}"),
            headers,
            b"",
        )
    };
    assert_eq!(req("PUT", "/dest?restype=container", &[]).0, 201);
    let port = serve(b"fetched from elsewhere", 2);
    let source = format!("http://127.0.0.1:{port}/ok");
    assert_eq!(
        req("PUT", "/dest/copied.txt", &[("x-ms-copy-source", &source)]).0,
        202
    );
    assert_eq!(
        req("GET", "/dest/copied.txt", &[]),
        (200, b"fetched from elsewhere".to_vec())
    );
    let missing = format!("http://127.0.0.1:{port}/missing");
    assert_eq!(
        req("PUT", "/dest/never.txt", &[("x-ms-copy-source", &missing)]).0,
        404
    );
    assert_eq!(req("GET", "/dest/never.txt", &[]).0, 404);
}
