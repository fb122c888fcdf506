//! The routing tables: every queue and blob operation from method, host, path and query.

use super::*;

fn req(service: Service, method: &str, host: &str, target: &str) -> RequestParts {
    RequestParts::for_test(service, method, target, &[("host", host)])
}

#[test]
fn queue_routing_table() {
    use QueueOp::*;
    let cases: &[(&str, &str, &str, Result<QueueOp, ErrorCode>)] = &[
        (
            "GET",
            "127.0.0.1:10001",
            "/devstoreaccount1?comp=list",
            Ok(ListQueues),
        ),
        (
            "GET",
            "127.0.0.1:10001",
            "/devstoreaccount1/?comp=list&prefix=a",
            Ok(ListQueues),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/?restype=service&comp=properties",
            Ok(GetServiceProperties),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/?restype=service&comp=properties",
            Ok(SetServiceProperties),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1-secondary/?restype=service&comp=stats",
            Ok(GetServiceStats),
        ),
        (
            "DELETE",
            "localhost",
            "/devstoreaccount1/?comp=list",
            Err(ErrorCode::UnsupportedHttpVerb),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/?comp=bogus",
            Err(ErrorCode::InvalidQueryParameterValue),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/",
            Err(ErrorCode::MissingRequiredQueryParameter),
        ),
        ("PUT", "localhost", "/devstoreaccount1/q1", Ok(CreateQueue)),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1?timeout=30",
            Ok(CreateQueue),
        ),
        (
            "DELETE",
            "localhost",
            "/devstoreaccount1/q1",
            Ok(DeleteQueue),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1?comp=metadata",
            Ok(GetQueueMetadata),
        ),
        (
            "HEAD",
            "localhost",
            "/devstoreaccount1/q1?comp=metadata",
            Ok(GetQueueMetadata),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1?comp=metadata",
            Ok(SetQueueMetadata),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1?comp=acl",
            Ok(GetQueueAcl),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1?comp=acl",
            Ok(SetQueueAcl),
        ),
        (
            "POST",
            "localhost",
            "/devstoreaccount1/q1?comp=acl",
            Err(ErrorCode::UnsupportedHttpVerb),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1?comp=weird",
            Err(ErrorCode::InvalidQueryParameterValue),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1",
            Err(ErrorCode::UnsupportedHttpVerb),
        ),
        (
            "POST",
            "localhost",
            "/devstoreaccount1/q1/messages?messagettl=-1",
            Ok(PutMessage),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/messages?numofmessages=32",
            Ok(GetMessages),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/messages?peekonly=true",
            Ok(PeekMessages),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/messages?peekonly=TRUE",
            Ok(PeekMessages),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/messages?peekonly=false",
            Ok(GetMessages),
        ),
        (
            "DELETE",
            "localhost",
            "/devstoreaccount1/q1/messages",
            Ok(ClearMessages),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1/messages",
            Err(ErrorCode::UnsupportedHttpVerb),
        ),
        (
            "DELETE",
            "localhost",
            "/devstoreaccount1/q1/messages/abc?popreceipt=x",
            Ok(DeleteMessage),
        ),
        (
            "PUT",
            "localhost",
            "/devstoreaccount1/q1/messages/abc?popreceipt=x&visibilitytimeout=0",
            Ok(UpdateMessage),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/messages/abc",
            Err(ErrorCode::UnsupportedHttpVerb),
        ),
        (
            "GET",
            "localhost",
            "/devstoreaccount1/q1/other/abc/def",
            Err(ErrorCode::InvalidUri),
        ),
        ("GET", "localhost", "/", Err(ErrorCode::InvalidUri)),
        // Host-style: the account is the first DNS label and not in the path.
        (
            "PUT",
            "devstoreaccount1.queue.localhost:10001",
            "/q1",
            Ok(CreateQueue),
        ),
        (
            "GET",
            "myacct.queue.core.windows.net",
            "/?comp=list",
            Ok(ListQueues),
        ),
        (
            "POST",
            "myacct.queue.core.windows.net",
            "/q1/messages",
            Ok(PutMessage),
        ),
    ];
    for (method, host, target, expected) in cases {
        let got = route(&req(Service::Queue, method, host, target));
        match (got, expected) {
            (Ok(r), Ok(op)) => assert_eq!(
                r.op,
                Operation::Queue(op.clone()),
                "{method} {host}{target}"
            ),
            (Err(e), Err(code)) => assert_eq!(e.code, *code, "{method} {host}{target}"),
            (got, expected) => {
                panic!("{method} {host}{target}: got {got:?}, expected {expected:?}")
            }
        }
    }
}

#[test]
fn resolves_accounts_and_names() {
    let r = route(&req(
        Service::Queue,
        "GET",
        "127.0.0.1:10001",
        "/devstoreaccount1-secondary/?restype=service&comp=stats",
    ))
    .expect("route");
    assert_eq!(
        (r.account.as_str(), r.secondary, r.path_style),
        ("devstoreaccount1", true, true)
    );
    let r = route(&req(
        Service::Queue,
        "DELETE",
        "acct2.queue.localhost",
        "/my-queue/messages/a%2Fb?popreceipt=1",
    ))
    .expect("route");
    assert_eq!(r.account, "acct2");
    assert!(!r.path_style);
    assert_eq!(r.queue.as_deref(), Some("my-queue"));
    assert_eq!(r.message_id.as_deref(), Some("a/b"));
    let r = route(&req(
        Service::Queue,
        "OPTIONS",
        "localhost",
        "/devstoreaccount1/q1/messages",
    ))
    .expect("route");
    assert_eq!(r.op, Operation::Preflight);
    let r = route(&req(
        Service::Blob,
        "GET",
        "localhost",
        "/devstoreaccount1/c/b",
    ))
    .expect("route");
    assert_eq!(r.op, Operation::Blob(BlobOp::GetBlob));
}

#[test]
fn host_styles() {
    for h in [
        "127.0.0.1",
        "127.0.0.1:10001",
        "localhost",
        "localhost:1",
        "[::1]:10001",
        "emulator:10001",
        "host.docker.internal:10001",
    ] {
        assert!(is_path_style_host(h), "{h}");
    }
    for h in ["acct.queue.localhost", "acct.queue.core.windows.net:443"] {
        assert!(!is_path_style_host(h), "{h}");
    }
}
