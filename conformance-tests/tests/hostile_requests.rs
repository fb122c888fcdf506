//! Malformed and hostile requests, each with the exact answer Azure gives (status and
//! `x-ms-error-code`, from `shared/docs/azure-storage-rest.md` and Microsoft's REST pages),
//! and a check afterwards that nothing stored changed. Sent over raw sockets: most of these
//! cannot be produced through an SDK.
//!
//! Rows marked `[ours]` have no documented Azure answer (path tricks that Azure's front end
//! rewrites before storage sees them); for those the assertion is what this emulator does:
//! stay inside the addressed container and change nothing.
#![allow(clippy::unwrap_used)]

use conformance_tests::raw::{message, parse, raw, seed, snapshot, start, Auth, Svc};
use conformance_tests::DEV_ACCOUNT;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Row {
    name: &'static str,
    svc: Svc,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    auth: Auth,
    status: u16,
    code: Option<&'static str>,
}

fn row(
    name: &'static str,
    svc: Svc,
    method: &'static str,
    path: &str,
    status: u16,
    code: Option<&'static str>,
) -> Row {
    Row {
        name,
        svc,
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        auth: Auth::Sas,
        status,
        code,
    }
}

impl Row {
    fn h(mut self, k: &'static str, v: &str) -> Row {
        self.headers.push((k, v.to_string()));
        self
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Row {
        self.body = b.into();
        self
    }
    fn auth(mut self, a: Auth) -> Row {
        self.auth = a;
        self
    }
}

fn table() -> Vec<Row> {
    use Svc::*;
    let long_id = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode([b'a'; 65])
            .replace('=', "%3D")
    };
    let six_ids: String = (0..6)
        .map(|i| format!("<SignedIdentifier><Id>id{i}</Id><AccessPolicy><Permission>r</Permission></AccessPolicy></SignedIdentifier>"))
        .collect();
    vec![
        // Names.
        row("queue name with capitals", Queue, "PUT", "/BadQueue", 400, Some("InvalidResourceName")),
        row("queue name too short", Queue, "PUT", "/ab", 400, Some("OutOfRangeInput")),
        row("queue name with --", Queue, "PUT", "/a--b", 400, Some("InvalidResourceName")),
        row("queue name of 64 chars", Queue, "PUT", &format!("/{}", "a".repeat(64)), 400, Some("OutOfRangeInput")),
        row("queue name with unicode", Queue, "PUT", "/qu%C3%A9ue", 400, Some("InvalidResourceName")),
        row("container name with capitals", Blob, "PUT", "/Bad?restype=container", 400, Some("InvalidResourceName")),
        row("container name of 64 chars", Blob, "PUT", &format!("/{}?restype=container", "c".repeat(64)), 400, Some("OutOfRangeInput")),
        row("blob name of 1025 chars", Blob, "PUT", &format!("/cont1/{}", "n".repeat(1025)), 400, Some("OutOfRangeInput")).h("x-ms-blob-type", "BlockBlob").body("x"),
        // Queue bodies and parameters.
        row("truncated message XML", Queue, "POST", "/queue1/messages", 400, Some("InvalidXmlDocument")).body("<QueueMessage><MessageText>abc"),
        row("message body not XML", Queue, "POST", "/queue1/messages", 400, Some("InvalidXmlDocument")).body("hello"),
        row("message without MessageText", Queue, "POST", "/queue1/messages", 400, Some("InvalidXmlDocument")).body("<QueueMessage></QueueMessage>"),
        row("message of 70,000 chars", Queue, "POST", "/queue1/messages", 413, Some("RequestBodyTooLarge")).body(message(&"a".repeat(70_000))),
        row("message body of 10 MiB", Queue, "POST", "/queue1/messages", 413, Some("RequestBodyTooLarge")).body(vec![b'x'; 10 << 20]),
        row("visibilitytimeout not a number", Queue, "POST", "/queue1/messages?visibilitytimeout=abc", 400, Some("InvalidQueryParameterValue")).body(message("x")),
        row("visibilitytimeout negative", Queue, "POST", "/queue1/messages?visibilitytimeout=-1", 400, Some("OutOfRangeQueryParameterValue")).body(message("x")),
        row("visibilitytimeout beyond 7 days", Queue, "POST", "/queue1/messages?visibilitytimeout=604801", 400, Some("OutOfRangeQueryParameterValue")).body(message("x")),
        row("numofmessages 33", Queue, "GET", "/queue1/messages?numofmessages=33", 400, Some("OutOfRangeQueryParameterValue")),
        row("numofmessages 0", Queue, "GET", "/queue1/messages?numofmessages=0", 400, Some("OutOfRangeQueryParameterValue")),
        row("numofmessages huge", Queue, "GET", "/queue1/messages?numofmessages=99999999999999999999", 400, Some("InvalidQueryParameterValue")),
        row("delete message without popreceipt", Queue, "DELETE", "/queue1/messages/00000000-0000-0000-0000-000000000001", 400, Some("MissingRequiredQueryParameter")),
        row("update of a message that does not exist", Queue, "PUT", "/queue1/messages/00000000-0000-0000-0000-000000000001?popreceipt=AAAAAAAAAAAAAAAAAAAAAA%3D%3D&visibilitytimeout=0", 404, Some("MessageNotFound")),
        row("unknown comp on a queue", Queue, "GET", "/queue1?comp=bogus", 400, Some("InvalidQueryParameterValue")),
        row("PATCH on a queue", Queue, "PATCH", "/queue1", 405, Some("UnsupportedHttpVerb")),
        row("metadata name starting with a digit", Queue, "PUT", "/queue1?comp=metadata", 400, Some("InvalidMetadata")).h("x-ms-meta-1bad", "v"),
        row("duplicate metadata names", Queue, "PUT", "/queue1?comp=metadata", 400, Some("InvalidMetadata")).h("x-ms-meta-a", "v").h("x-ms-meta-A", "w"),
        row("queue ACL through a SAS", Queue, "PUT", "/queue1?comp=acl", 403, Some("AuthorizationFailure")).body("<SignedIdentifiers/>"),
        row("queue ACL with broken XML", Queue, "PUT", "/queue1?comp=acl", 400, Some("InvalidXmlDocument")).body("<SignedIdentifiers><SignedIdentifier>").auth(Auth::Key),
        row("queue ACL with six identifiers", Queue, "PUT", "/queue1?comp=acl", 400, Some("InvalidXmlDocument")).body(format!("<SignedIdentifiers>{six_ids}</SignedIdentifiers>")).auth(Auth::Key),
        row("x-ms-version that is not a date", Queue, "GET", "/queue1?comp=metadata", 400, Some("InvalidHeaderValue")).h("x-ms-version", "banana").auth(Auth::Key),
        row("x-ms-version before 2009-09-19", Queue, "GET", "/queue1?comp=metadata", 400, Some("InvalidHeaderValue")).h("x-ms-version", "2008-01-01").auth(Auth::Key),
        // Authentication.
        row("no credentials on a queue", Queue, "GET", "/queue1/messages", 403, Some("AuthenticationFailed")).auth(Auth::None),
        row("no credentials on a private blob", Blob, "GET", "/cont1/b1", 404, Some("ResourceNotFound")).auth(Auth::None),
        row("no credentials on a private container listing", Blob, "GET", "/cont1?restype=container&comp=list", 404, Some("ResourceNotFound")).auth(Auth::None),
        row("malformed Authorization", Blob, "GET", "/cont1/b1", 400, Some("InvalidAuthenticationInfo")).h("Authorization", "SharedKey nocolon").auth(Auth::None),
        row("signature by another key", Blob, "GET", "/cont1/b1", 403, Some("AuthenticationFailed")).h("Authorization", "SharedKey devstoreaccount1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").h("x-ms-date", "Thu, 26 Nov 2026 00:00:00 GMT").auth(Auth::None),
        row("tampered SAS signature", Blob, "GET", "/cont1/b1?sv=2021-12-02&ss=b&srt=o&sp=r&se=2099-01-01T00%3A00%3A00Z&sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D", 403, Some("AuthenticationFailed")).auth(Auth::None),
        // Blob headers and bodies.
        row("Put Blob without x-ms-blob-type", Blob, "PUT", "/cont1/b2", 400, Some("MissingRequiredHeader")).body("x"),
        row("unknown x-ms-blob-type", Blob, "PUT", "/cont1/b2", 400, Some("InvalidHeaderValue")).h("x-ms-blob-type", "Bogus").body("x"),
        row("Content-MD5 that does not match", Blob, "PUT", "/cont1/b1", 400, Some("Md5Mismatch")).h("x-ms-blob-type", "BlockBlob").h("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==").body("overwrite?"),
        row("Content-MD5 that is not base64", Blob, "PUT", "/cont1/b1", 400, Some("InvalidMd5")).h("x-ms-blob-type", "BlockBlob").h("Content-MD5", "nope").body("overwrite?"),
        row("block id that is not base64", Blob, "PUT", "/cont1/b1?comp=block&blockid=!!!", 400, Some("InvalidQueryParameterValue")).body("x"),
        row("block id over 64 bytes", Blob, "PUT", &format!("/cont1/b1?comp=block&blockid={long_id}"), 400, Some("OutOfRangeInput")).body("x"),
        row("block list naming an unknown block", Blob, "PUT", "/cont1/b1?comp=blocklist", 400, Some("InvalidBlockList")).body("<BlockList><Latest>QUFB</Latest></BlockList>"),
        row("block list with broken XML", Blob, "PUT", "/cont1/b1?comp=blocklist", 400, Some("InvalidXmlDocument")).body("<BlockList><Latest>"),
        row("range past the end", Blob, "GET", "/cont1/b1", 416, Some("InvalidRange")).h("x-ms-range", "bytes=100-200"),
        row("duplicate blob metadata names", Blob, "PUT", "/cont1/b1?comp=metadata", 400, Some("InvalidMetadata")).h("x-ms-meta-a", "v").h("x-ms-meta-A", "w"),
        row("empty metadata name", Blob, "PUT", "/cont1/b1?comp=metadata", 400, Some("EmptyMetadataKey")).h("x-ms-meta-", "v"),
        row("metadata name with a dash", Blob, "PUT", "/cont1/b1?comp=metadata", 400, Some("InvalidMetadata")).h("x-ms-meta-a-b", "v"),
        row("unknown comp on a blob", Blob, "GET", "/cont1/b1?comp=nonsense", 400, Some("InvalidQueryParameterValue")),
        row("lease duration of 10 s", Blob, "PUT", "/cont1/b1?comp=lease", 400, Some("InvalidHeaderValue")).h("x-ms-lease-action", "acquire").h("x-ms-lease-duration", "10"),
        row("proposed lease id not a GUID", Blob, "PUT", "/cont1/b1?comp=lease", 400, Some("InvalidHeaderValue")).h("x-ms-lease-action", "acquire").h("x-ms-lease-duration", "15").h("x-ms-proposed-lease-id", "not-a-guid"),
        row("unknown lease action", Blob, "PUT", "/cont1/b1?comp=lease", 400, Some("InvalidHeaderValue")).h("x-ms-lease-action", "steal"),
        row("Append Block on a block blob", Blob, "PUT", "/cont1/b1?comp=appendblock", 409, Some("InvalidBlobType")).body("x"),
        row("Put Block on an append blob", Blob, "PUT", "/cont1/log?comp=block&blockid=QUFB", 409, Some("InvalidBlobType")).body("x"),
        row("Put Blob into a missing container", Blob, "PUT", "/nocontainer/b", 404, Some("ContainerNotFound")).h("x-ms-blob-type", "BlockBlob").body("x"),
        row("container ACL with an invalid public access", Blob, "PUT", "/cont1?restype=container&comp=acl", 400, Some("InvalidHeaderValue")).h("x-ms-blob-public-access", "everyone").auth(Auth::Key),
        row("container ACL through a SAS", Blob, "PUT", "/cont1?restype=container&comp=acl", 403, Some("AuthorizationFailure")),
        row("bearer token over plain HTTP", Blob, "PUT", "/newcont?restype=container", 403, Some("AuthenticationFailed")).h("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln").auth(Auth::None),
        row("bearer token without a token", Queue, "PUT", "/newqueue", 403, Some("AuthenticationFailed")).h("authorization", "Bearer ").auth(Auth::None),
        row("Copy Blob from a malformed URL", Blob, "PUT", "/cont1/b1", 400, Some("InvalidHeaderValue")).h("x-ms-copy-source", "not a url"),
        // Path tricks: nothing outside the addressed container is reached.
        row("[ours] blob name with %00", Blob, "PUT", "/cont1/a%00b", 400, Some("InvalidResourceName")).h("x-ms-blob-type", "BlockBlob").body("x"),
        row("[ours] blob name with invalid UTF-8", Blob, "GET", "/cont1/%FF%FE", 400, Some("InvalidUri")),
        row("[ours] .. segment", Blob, "GET", "/cont1/x/../b1", 404, Some("BlobNotFound")),
        row("[ours] %2e%2e segments", Blob, "GET", "/cont1/%2e%2e/%2e%2e/etc/passwd", 404, Some("BlobNotFound")),
        row("[ours] backslashes", Blob, "GET", "/cont1\\..\\..\\b1", 404, Some("ContainerNotFound")),
        row("[ours] unicode name that does not exist", Blob, "GET", "/cont1/%E5%90%8D%E5%89%8D.txt", 404, Some("BlobNotFound")),
    ]
}

#[test]
fn hostile_requests_get_exact_errors_and_change_nothing() {
    let s = start(&[]);
    seed(&s);
    let before = snapshot(&s);
    let rows = table();
    assert!(rows.len() >= 50, "{} rows", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = s.send(r.svc, r.method, &r.path, &headers, &r.body, &r.auth);
        if resp.status != r.status || resp.code.as_deref() != r.code {
            failures.push(format!(
                "{}: got {} {:?}, want {} {:?}",
                r.name, resp.status, resp.code, r.status, r.code
            ));
        } else if r.status >= 400 && r.method != "HEAD" {
            // Error answers carry the XML body with the same code.
            let body = String::from_utf8_lossy(&resp.body);
            if let Some(code) = r.code {
                if !body.contains(&format!("<Code>{code}</Code>")) {
                    failures.push(format!(
                        "{}: body lacks <Code>{code}</Code>: {body}",
                        r.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert_eq!(snapshot(&s), before, "stored data changed");
}

#[test]
fn broken_framing_is_refused_and_changes_nothing() {
    let s = start(&[]);
    seed(&s);
    let before = snapshot(&s);
    let q = s.addr(Svc::Queue);
    let b = s.addr(Svc::Blob);
    let put = |path: &str| format!("/{DEV_ACCOUNT}{path}?{}", s.sas);

    // Content-Length shorter than the body: the XML is cut off, and the rest is not a request.
    let body = message("abcdef");
    let mut bytes = format!(
        "POST {} HTTP/1.1\r\nHost: {q}\r\nx-ms-version: 2025-11-05\r\nContent-Length: 20\r\nConnection: close\r\n\r\n",
        put("/queue1/messages")
    )
    .into_bytes();
    bytes.extend_from_slice(&body);
    let r = raw(&q, &bytes);
    assert_eq!(
        (r.status, r.code.as_deref()),
        (400, Some("InvalidXmlDocument"))
    );

    // Content-Length longer than the body, then the client stops sending: no 2xx.
    let mut c = TcpStream::connect(&q).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST {} HTTP/1.1\r\nHost: {q}\r\nx-ms-version: 2025-11-05\r\nContent-Length: 500\r\n\r\n",
        put("/queue1/messages")
    )
    .unwrap();
    c.write_all(&body).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let r = parse(&out);
    assert!(
        r.status == 0 || r.status >= 400,
        "truncated body answered {}",
        r.status
    );

    // Content-Length that is not a number, and two of them that disagree.
    for cl in [
        "Content-Length: abc\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
    ] {
        let req = format!(
            "PUT {} HTTP/1.1\r\nHost: {b}\r\nx-ms-version: 2025-11-05\r\nx-ms-blob-type: BlockBlob\r\n{cl}Connection: close\r\n\r\nhello",
            put("/cont1/b1")
        );
        let r = raw(&b, req.as_bytes());
        assert_eq!(r.status, 400, "{cl:?}: {}", r.head);
    }

    // A 1 MiB header and 20,000 headers: refused before any handler runs.
    let huge = format!(
        "GET {} HTTP/1.1\r\nHost: {b}\r\nx-ms-version: 2025-11-05\r\nx-ms-meta-big: {}\r\nConnection: close\r\n\r\n",
        put("/cont1/b1"),
        "v".repeat(1 << 20)
    );
    let r = raw(&b, huge.as_bytes());
    assert!(matches!(r.status, 0 | 400 | 431), "huge header: {}", r.head);
    let many: String = (0..20_000)
        .map(|i| format!("x-ms-meta-h{i}: v\r\n"))
        .collect();
    let req = format!(
        "PUT {}&comp=metadata HTTP/1.1\r\nHost: {b}\r\nx-ms-version: 2025-11-05\r\n{many}Content-Length: 0\r\nConnection: close\r\n\r\n",
        put("/cont1/b1")
    );
    let r = raw(&b, req.as_bytes());
    assert!(
        matches!(r.status, 0 | 400 | 431),
        "many headers: {}",
        r.head
    );

    // A request line that is not HTTP.
    let r = raw(&q, b"HELLO WORLD\r\n\r\n");
    assert!(matches!(r.status, 0 | 400), "garbage: {}", r.head);

    assert_eq!(snapshot(&s), before, "stored data changed");
}

#[test]
fn slow_and_idle_clients_are_cut_off_and_do_not_block_others() {
    let s = start(&["--headerTimeoutSecs", "1", "--bodyTimeoutSecs", "1"]);
    seed(&s);
    let before = snapshot(&s);
    let q = s.addr(Svc::Queue);

    // A head that never finishes.
    let mut slow_head = TcpStream::connect(&q).unwrap();
    slow_head
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    slow_head
        .write_all(b"GET /devstoreaccount1/queue1?comp=metadata HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A body that never finishes.
    let mut slow_body = TcpStream::connect(&q).unwrap();
    slow_body
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(
        slow_body,
        "POST /{DEV_ACCOUNT}/queue1/messages?{} HTTP/1.1\r\nHost: x\r\nx-ms-version: 2025-11-05\r\nContent-Length: 100\r\n\r\n<QueueMessage>",
        s.sas
    )
    .unwrap();
    // Thousands of connections that send nothing at all.
    let idle: Vec<TcpStream> = (0..2000).map(|_| TcpStream::connect(&q).unwrap()).collect();

    // Others are served meanwhile.
    let t = Instant::now();
    let r = s.send(
        Svc::Queue,
        "GET",
        "/queue1?comp=metadata",
        &[],
        b"",
        &Auth::Sas,
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(5));

    // The slow ones are closed by the server (read returns, no hang until our timeout).
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = slow_head.read_to_end(&mut out);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "slow head held for {:?}",
        t.elapsed()
    );
    let mut out = Vec::new();
    let _ = slow_body.read_to_end(&mut out);
    let r = parse(&out);
    assert!(
        r.status == 0 || (r.status == 500 && r.code.as_deref() == Some("OperationTimedOut")),
        "slow body: {}",
        r.head
    );
    let mut closed = 0;
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        if c.read(&mut buf).is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 2000, "idle connections closed by the server");
    assert_eq!(snapshot(&s), before);
}
