//! Every operation refuses every request it should: no credentials, a key that is not the
//! account's, an expired SAS, a SAS lacking the operation's permission or resource type, a
//! SAS for the other service, and a service SAS for another queue or container. Nothing
//! stored may change. Anonymous reads of public containers, CORS preflight and the health
//! endpoint are the documented exceptions and are not walked here (they have their own
//! tests). The admin endpoints refuse callers without the account key.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use chrono::{Duration, Utc};
use conformance_tests::raw::{message, seed, snapshot, start, Auth, Server, Svc};
use conformance_tests::{account_sas_query, DEV_ACCOUNT, DEV_KEY};
use storage_client::sas::{container_sas_query, queue_sas_query};

/// One operation: how to call it, and what an account SAS needs for it (resource type and
/// any one of the permission letters; empty = no SAS can do it).
struct Op {
    name: &'static str,
    svc: Svc,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    srt: &'static str,
    perms: &'static str,
}

fn op(
    name: &'static str,
    svc: Svc,
    method: &'static str,
    path: &str,
    srt: &'static str,
    perms: &'static str,
) -> Op {
    Op {
        name,
        svc,
        method,
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        srt,
        perms,
    }
}

impl Op {
    fn h(mut self, k: &'static str, v: &str) -> Op {
        self.headers.push((k, v.to_string()));
        self
    }

    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Op {
        self.body = b.into();
        self
    }
}

/// What the table's operations address on one seeded server: a message (its id and a pop
/// receipt), and a copy source on that server.
struct Fixture {
    message_id: String,
    pop_receipt: String,
    copy_source: String,
}

/// Seeds a server and dequeues one message for Delete and Update Message.
fn fixture(s: &Server) -> Fixture {
    seed(s);
    let got = s.send(
        Svc::Queue,
        "GET",
        "/queue1/messages?visibilitytimeout=1",
        &[],
        b"",
        &Auth::Sas,
    );
    let body = String::from_utf8_lossy(&got.body).into_owned();
    let text = |tag| {
        conformance_tests::xml::text(&body, tag)
            .unwrap()
            .to_string()
    };
    Fixture {
        message_id: text("MessageId"),
        pop_receipt: text("PopReceipt"),
        copy_source: format!("http://{}/{DEV_ACCOUNT}/cont1/b1", s.addr(Svc::Blob)),
    }
}

fn operations(f: &Fixture) -> Vec<Op> {
    use Svc::*;
    let props = "<?xml version=\"1.0\" encoding=\"utf-8\"?><StorageServiceProperties><Cors/></StorageServiceProperties>";
    let receipt = storage_client::sas::encode_query_value(&f.pop_receipt);
    let msg_path = format!("/queue1/messages/{}?popreceipt={receipt}", f.message_id);
    vec![
        op("List Queues", Queue, "GET", "/?comp=list", "s", "l"),
        op(
            "Get Queue Service Properties",
            Queue,
            "GET",
            "/?restype=service&comp=properties",
            "s",
            "r",
        ),
        op(
            "Set Queue Service Properties",
            Queue,
            "PUT",
            "/?restype=service&comp=properties",
            "s",
            "w",
        )
        .body(props),
        op("Create Queue", Queue, "PUT", "/walknew", "c", "cw"),
        op("Delete Queue", Queue, "DELETE", "/queue1", "c", "d"),
        op(
            "Get Queue Metadata",
            Queue,
            "GET",
            "/queue1?comp=metadata",
            "c",
            "r",
        ),
        op(
            "Set Queue Metadata",
            Queue,
            "PUT",
            "/queue1?comp=metadata",
            "c",
            "w",
        )
        .h("x-ms-meta-x", "y"),
        op("Get Queue ACL", Queue, "GET", "/queue1?comp=acl", "c", ""),
        op("Set Queue ACL", Queue, "PUT", "/queue1?comp=acl", "c", "").body("<SignedIdentifiers/>"),
        op("Put Message", Queue, "POST", "/queue1/messages", "o", "a").body(message("intruder")),
        op("Get Messages", Queue, "GET", "/queue1/messages", "o", "p"),
        op(
            "Peek Messages",
            Queue,
            "GET",
            "/queue1/messages?peekonly=true",
            "o",
            "r",
        ),
        op(
            "Clear Messages",
            Queue,
            "DELETE",
            "/queue1/messages",
            "c",
            "d",
        ),
        op("Delete Message", Queue, "DELETE", &msg_path, "o", "p"),
        op(
            "Update Message",
            Queue,
            "PUT",
            &format!("{msg_path}&visibilitytimeout=0"),
            "o",
            "u",
        )
        .body(message("changed")),
        op("List Containers", Blob, "GET", "/?comp=list", "s", "l"),
        op(
            "Get Blob Service Properties",
            Blob,
            "GET",
            "/?restype=service&comp=properties",
            "s",
            "r",
        ),
        op(
            "Set Blob Service Properties",
            Blob,
            "PUT",
            "/?restype=service&comp=properties",
            "s",
            "w",
        )
        .body(props),
        op(
            "Find Blobs by Tags",
            Blob,
            "GET",
            "/?comp=blobs&where=%22k%22%3D%27v%27",
            "s",
            "f",
        ),
        op(
            "Create Container",
            Blob,
            "PUT",
            "/walknew?restype=container",
            "c",
            "cw",
        ),
        op(
            "Get Container Properties",
            Blob,
            "GET",
            "/cont1?restype=container",
            "c",
            "r",
        ),
        op(
            "Get Container Metadata",
            Blob,
            "GET",
            "/cont1?restype=container&comp=metadata",
            "c",
            "r",
        ),
        op(
            "Set Container Metadata",
            Blob,
            "PUT",
            "/cont1?restype=container&comp=metadata",
            "c",
            "w",
        )
        .h("x-ms-meta-x", "y"),
        op(
            "Get Container ACL",
            Blob,
            "GET",
            "/cont1?restype=container&comp=acl",
            "c",
            "",
        ),
        op(
            "Set Container ACL",
            Blob,
            "PUT",
            "/cont1?restype=container&comp=acl",
            "c",
            "",
        )
        .h("x-ms-blob-public-access", "container"),
        op(
            "Lease Container",
            Blob,
            "PUT",
            "/cont1?restype=container&comp=lease",
            "c",
            "w",
        )
        .h("x-ms-lease-action", "acquire")
        .h("x-ms-lease-duration", "-1"),
        op(
            "Delete Container",
            Blob,
            "DELETE",
            "/cont1?restype=container",
            "c",
            "d",
        ),
        op(
            "List Blobs",
            Blob,
            "GET",
            "/cont1?restype=container&comp=list",
            "c",
            "l",
        ),
        op("Put Blob", Blob, "PUT", "/cont1/b1", "o", "cw")
            .h("x-ms-blob-type", "BlockBlob")
            .body("intruder"),
        op("Get Blob", Blob, "GET", "/cont1/b1", "o", "r"),
        op("Get Blob Properties", Blob, "HEAD", "/cont1/b1", "o", "r"),
        op(
            "Set Blob Metadata",
            Blob,
            "PUT",
            "/cont1/b1?comp=metadata",
            "o",
            "w",
        )
        .h("x-ms-meta-x", "y"),
        op(
            "Set Blob Properties",
            Blob,
            "PUT",
            "/cont1/b1?comp=properties",
            "o",
            "w",
        )
        .h("x-ms-blob-content-type", "text/evil"),
        op("Delete Blob", Blob, "DELETE", "/cont1/b1", "o", "d"),
        op(
            "Snapshot Blob",
            Blob,
            "PUT",
            "/cont1/b1?comp=snapshot",
            "o",
            "cw",
        ),
        op("Lease Blob", Blob, "PUT", "/cont1/b1?comp=lease", "o", "w")
            .h("x-ms-lease-action", "acquire")
            .h("x-ms-lease-duration", "-1"),
        op(
            "Put Block",
            Blob,
            "PUT",
            "/cont1/b1?comp=block&blockid=QUFB",
            "o",
            "w",
        )
        .body("x"),
        op(
            "Put Block List",
            Blob,
            "PUT",
            "/cont1/b1?comp=blocklist",
            "o",
            "w",
        )
        .body("<BlockList/>"),
        op(
            "Get Block List",
            Blob,
            "GET",
            "/cont1/b1?comp=blocklist",
            "o",
            "r",
        ),
        op(
            "Append Block",
            Blob,
            "PUT",
            "/cont1/log?comp=appendblock",
            "o",
            "aw",
        )
        .body("intruder"),
        op(
            "Seal Append Blob",
            Blob,
            "PUT",
            "/cont1/log?comp=seal",
            "o",
            "w",
        ),
        op("Copy Blob", Blob, "PUT", "/cont1/copy", "o", "cw")
            .h("x-ms-copy-source", &f.copy_source),
        op("Set Blob Tier", Blob, "PUT", "/cont1/b1?comp=tier", "o", "w")
            .h("x-ms-access-tier", "Cool"),
        op("Put Page", Blob, "PUT", "/cont1/disk?comp=page", "o", "w")
            .h("x-ms-page-write", "update")
            .h("x-ms-range", "bytes=0-511")
            .body(vec![1u8; 512]),
        op("Clear Pages", Blob, "PUT", "/cont1/disk?comp=page", "o", "w")
            .h("x-ms-page-write", "clear")
            .h("x-ms-range", "bytes=512-1023"),
        op(
            "Get Page Ranges",
            Blob,
            "GET",
            "/cont1/disk?comp=pagelist",
            "o",
            "r",
        ),
        op(
            "Resize Page Blob",
            Blob,
            "PUT",
            "/cont1/disk?comp=properties",
            "o",
            "w",
        )
        .h("x-ms-blob-content-length", "512"),
        op(
            "Submit Batch",
            Blob,
            "POST",
            "/cont1?restype=container&comp=batch",
            "c",
            "rwdxylacuptfi",
        )
        .h("Content-Type", "multipart/mixed; boundary=batch_walk")
        .body(format!(
            "--batch_walk\r\nContent-Type: application/http\r\nContent-ID: 0\r\n\r\nDELETE /{DEV_ACCOUNT}/cont1/b1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n\r\n--batch_walk--\r\n"
        )),
        op(
            "Get Blob Tags",
            Blob,
            "GET",
            "/cont1/b1?comp=tags",
            "o",
            "t",
        ),
        op(
            "Set Blob Tags",
            Blob,
            "PUT",
            "/cont1/b1?comp=tags",
            "o",
            "t",
        )
        .body("<Tags><TagSet/></Tags>"),
        op(
            "Undelete Blob",
            Blob,
            "PUT",
            "/cont1/b1?comp=undelete",
            "o",
            "w",
        ),
        op("Set Blob Expiry", Blob, "PUT", "/cont1/b1?comp=expiry", "o", "w")
            .h("x-ms-expiry-option", "NeverExpire"),
    ]
}

fn sas(ss: &str, srt: &str, sp: &str, expiry: &str) -> String {
    account_sas_query(DEV_ACCOUNT, DEV_KEY, ss, srt, sp, expiry)
}

/// Each operation first succeeds with the least credential the table says it needs (on a
/// server of its own, since success changes things): a refusal below then means the
/// credential was wrong, not that the request could never have worked.
#[test]
fn every_operation_succeeds_with_the_credential_it_needs() {
    let count = operations(&fixture(&start(&[]))).len();
    let mut failures = Vec::new();
    for i in 0..count {
        let s = start(&[]);
        let f = fixture(&s);
        let o = &operations(&f)[i];
        let ss = if o.svc == Svc::Queue { "q" } else { "b" };
        let (label, auth) = if o.perms.is_empty() {
            ("Shared Key".to_string(), Auth::Key)
        } else {
            (
                format!("account SAS srt={} sp={}", o.srt, o.perms),
                Auth::Query(sas(ss, o.srt, o.perms, "2099-01-01T00:00:00Z")),
            )
        };
        let r = s.send(o.svc, o.method, &o.path, &o.headers(), &o.body, &auth);
        if !(200..300).contains(&r.status) {
            failures.push(format!(
                "{} with {label}: {} {:?}",
                o.name, r.status, r.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "positive controls failed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_operation_refuses_every_wrong_credential() {
    let s: Server = start(&[]);
    let f = fixture(&s);
    let before = snapshot(&s);
    let key = base64::engine::general_purpose::STANDARD
        .decode(DEV_KEY)
        .unwrap();
    let future = Utc::now() + Duration::days(1);
    let all = "rwdxylacuptfi";
    let ops = operations(&f);
    let mut failures = Vec::new();
    let mut refusals = 0;
    for o in &ops {
        let ss_own = if o.svc == Svc::Queue { "q" } else { "b" };
        let ss_other = if o.svc == Svc::Queue { "b" } else { "q" };
        let mut variants: Vec<(String, Auth)> = vec![
            ("no credentials".into(), Auth::None),
            ("wrong key".into(), Auth::WrongKey),
            (
                "expired SAS".into(),
                Auth::Query(sas(ss_own, "sco", "rwdlacuptf", "2020-01-01T00:00:00Z")),
            ),
            (
                "SAS for the other service".into(),
                Auth::Query(sas(ss_other, "sco", "rwdlacuptf", "2099-01-01T00:00:00Z")),
            ),
        ];
        if !o.perms.is_empty() {
            let lacking: String = all.chars().filter(|c| !o.perms.contains(*c)).collect();
            variants.push((
                "SAS lacking the permission".into(),
                Auth::Query(sas(ss_own, "sco", &lacking, "2099-01-01T00:00:00Z")),
            ));
            let other_types: String = "sco".chars().filter(|c| !o.srt.contains(*c)).collect();
            variants.push((
                "SAS for other resource types".into(),
                Auth::Query(sas(ss_own, &other_types, all, "2099-01-01T00:00:00Z")),
            ));
        } else {
            // Owner-only operations: even an all-permissions account SAS is refused.
            variants.push((
                "all-permissions SAS on an owner-only operation".into(),
                Auth::Sas,
            ));
        }
        variants.push(match o.svc {
            Svc::Queue => (
                "SAS for another queue".into(),
                Auth::Query(queue_sas_query(
                    DEV_ACCOUNT,
                    &key,
                    "otherqueue",
                    "raup",
                    future,
                )),
            ),
            Svc::Blob => (
                "SAS for another container".into(),
                Auth::Query(container_sas_query(
                    DEV_ACCOUNT,
                    &key,
                    "othercont",
                    "racwdlt",
                    future,
                )),
            ),
        });
        for (label, auth) in variants {
            let r = s.send(o.svc, o.method, &o.path, &o.headers(), &o.body, &auth);
            // 404 is a refusal only where Azure answers it: an anonymous request for a
            // private blob resource (Azure does not reveal that it exists).
            let hidden = label == "no credentials"
                && o.svc == Svc::Blob
                && r.status == 404
                && r.code.as_deref() == Some("ResourceNotFound");
            let refused = matches!(r.status, 401 | 403) || hidden;
            if !refused {
                failures.push(format!(
                    "{} with {label}: {} {:?}",
                    o.name, r.status, r.code
                ));
            } else {
                refusals += 1;
            }
            // A refusal must say why in x-ms-error-code (HEAD has no body to carry it).
            if refused && r.code.is_none() {
                failures.push(format!(
                    "{} with {label}: {} without x-ms-error-code",
                    o.name, r.status
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} accepted or unexplained:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ops.len() >= 44 && refusals >= 44 * 6,
        "{} operations, {refusals} refusals",
        ops.len()
    );
    assert_eq!(
        snapshot(&s),
        before,
        "a refused request changed stored data"
    );
}

#[test]
fn admin_endpoints_refuse_callers_without_the_key() {
    let s = start(&[]);
    let q = s.addr(Svc::Queue);
    for (method, path) in [
        ("GET", "/_emulator/clock"),
        ("POST", "/_emulator/clock/advance?seconds=60"),
        ("GET", "/_emulator/features"),
        ("PUT", "/_emulator/features?blobVersioning=true"),
        ("GET", "/_emulator/faults"),
        ("POST", "/_emulator/faults"),
        ("DELETE", "/_emulator/faults"),
        ("DELETE", "/_emulator/faults/1"),
        ("GET", "/_emulator/requests"),
        ("GET", "/_emulator/requests?stream=true"),
        ("POST", "/_emulator/reset"),
        ("GET", "/_emulator/metrics"),
        ("GET", "/_emulator/snapshots"),
        ("GET", "/_emulator/snapshots/s1"),
        ("POST", "/_emulator/snapshots/s1"),
        ("POST", "/_emulator/snapshots/s1/restore"),
        ("DELETE", "/_emulator/snapshots/s1"),
        ("GET", "/_emulator/accounts"),
        ("GET", "/_emulator/events"),
        ("POST", "/_emulator/events"),
        ("GET", "/_emulator/events/e1"),
        ("DELETE", "/_emulator/events"),
        ("DELETE", "/_emulator/events/e1"),
    ] {
        for headers in [
            vec![],
            vec![("x-ms-emulator-key", conformance_tests::raw::OTHER_KEY)],
            vec![("x-ms-emulator-key", "not base64!")],
        ] {
            let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {q}\r\nConnection: close\r\nContent-Length: 0\r\n");
            for (k, v) in &headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            let r = conformance_tests::raw::raw(&q, req.as_bytes());
            assert_eq!(
                r.status, 403,
                "{method} {path} with {headers:?}: {}",
                r.head
            );
        }
    }
    // The clock did not move, and the right key still works.
    let mut req = format!("GET /_emulator/clock HTTP/1.1\r\nHost: {q}\r\nConnection: close\r\nx-ms-emulator-key: {DEV_KEY}\r\n\r\n");
    let r = conformance_tests::raw::raw(&q, req.as_bytes());
    assert_eq!(r.status, 200);
    assert!(
        String::from_utf8_lossy(&r.body).contains("\"offsetSeconds\":0"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    req.clear();
    // No rule was added and versioning was not turned on.
    let with_key = |path: &str| {
        conformance_tests::raw::raw(
            &q,
            format!("GET {path} HTTP/1.1\r\nHost: {q}\r\nConnection: close\r\nx-ms-emulator-key: {DEV_KEY}\r\n\r\n")
                .as_bytes(),
        )
    };
    assert_eq!(
        String::from_utf8_lossy(&with_key("/_emulator/faults").body),
        r#"{"rules":[]}"#
    );
    assert!(
        String::from_utf8_lossy(&with_key("/_emulator/features").body)
            .contains("\"blobVersioning\":false")
    );
    assert_eq!(
        String::from_utf8_lossy(&with_key("/_emulator/snapshots").body),
        r#"{"snapshots":[]}"#,
        "no snapshot was taken"
    );
    assert_eq!(
        String::from_utf8_lossy(&with_key("/_emulator/events").body),
        r#"{"subscriptions":[],"waiting":0}"#,
        "no subscription was added"
    );
    // Health needs nothing.
    let r = conformance_tests::raw::raw(
        &q,
        format!("GET /_emulator/health HTTP/1.1\r\nHost: {q}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn create_permission_writes_new_blobs_but_never_overwrites() {
    let s = start(&[]);
    seed(&s);
    let create_only = Auth::Query(sas("b", "sco", "c", "2099-01-01T00:00:00Z"));
    let put = |path: &str, body: &[u8]| {
        s.send(
            Svc::Blob,
            "PUT",
            path,
            &[("x-ms-blob-type", "BlockBlob")],
            body,
            &create_only,
        )
    };
    assert_eq!(put("/cont1/fresh", b"new").status, 201);
    for (path, what) in [
        ("/cont1/fresh", "the blob it just made"),
        ("/cont1/b1", "an older blob"),
    ] {
        let r = put(path, b"overwrite");
        assert_eq!(
            (r.status, r.code.as_deref()),
            (403, Some("AuthorizationPermissionMismatch")),
            "{what}"
        );
    }
    let r = s.send(
        Svc::Blob,
        "PUT",
        "/cont1/b1?comp=blocklist",
        &[],
        b"<BlockList/>",
        &create_only,
    );
    assert_eq!(
        (r.status, r.code.as_deref()),
        (403, Some("AuthorizationPermissionMismatch"))
    );
    // Staging and committing a new blob is creating it.
    assert_eq!(
        s.send(
            Svc::Blob,
            "PUT",
            "/cont1/staged?comp=block&blockid=QUFB",
            &[],
            b"abc",
            &create_only
        )
        .status,
        201
    );
    let r = s.send(
        Svc::Blob,
        "PUT",
        "/cont1/staged?comp=blocklist",
        &[],
        b"<BlockList><Latest>QUFB</Latest></BlockList>",
        &create_only,
    );
    assert_eq!(r.status, 201);
    let r = s.send(Svc::Blob, "GET", "/cont1/b1", &[], b"", &Auth::Sas);
    assert_eq!(r.body, b"precious");
}

/// Many writers race to create one new blob; exactly one may win. The precondition (a
/// create-only SAS, or `If-None-Match: *`) is checked inside the store's locked step, so
/// no second writer can slip between the check and the write.
#[test]
fn racing_creators_of_one_blob_leave_exactly_one_winner() {
    let s = start(&[]);
    seed(&s);
    let key = base64::engine::general_purpose::STANDARD
        .decode(DEV_KEY)
        .unwrap();
    let create_only = Auth::Query(container_sas_query(
        DEV_ACCOUNT,
        &key,
        "cont1",
        "c",
        Utc::now() + Duration::hours(1),
    ));
    const WRITERS: usize = 16;
    for trial in 0..10 {
        for (what, auth, extra, loser) in [
            (
                "create-only SAS",
                create_only.clone(),
                None,
                (403, "AuthorizationPermissionMismatch"),
            ),
            (
                "If-None-Match: *",
                Auth::Key,
                Some(("If-None-Match", "*")),
                (409, "BlobAlreadyExists"),
            ),
        ] {
            let path = format!("/cont1/race-{trial}-{}", what.len());
            let barrier = std::sync::Barrier::new(WRITERS);
            let results: Vec<(u16, Option<String>, Vec<u8>)> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..WRITERS)
                    .map(|i| {
                        let (s, auth, path, barrier) = (&s, &auth, &path, &barrier);
                        scope.spawn(move || {
                            let body = format!("writer {i}").into_bytes();
                            let mut headers = vec![("x-ms-blob-type", "BlockBlob")];
                            headers.extend(extra);
                            barrier.wait();
                            let r = s.send(Svc::Blob, "PUT", path, &headers, &body, auth);
                            (r.status, r.code, body)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winners: Vec<_> = results.iter().filter(|r| r.0 == 201).collect();
            assert_eq!(winners.len(), 1, "{what}, trial {trial}: {results:?}");
            for r in results.iter().filter(|r| r.0 != 201) {
                assert_eq!(
                    (r.0, r.1.as_deref()),
                    (loser.0, Some(loser.1)),
                    "{what}, trial {trial}"
                );
            }
            // The stored blob is the winner's.
            let got = s.send(Svc::Blob, "GET", &path, &[], b"", &Auth::Sas);
            assert_eq!(got.body, winners[0].2, "{what}, trial {trial}");
        }
    }
}
