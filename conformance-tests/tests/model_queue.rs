//! Model-based test of the queue service: random sequences of Put, Get, Peek, Update,
//! Delete, Clear, count reads and clock advances, run against the real emulator (its clock
//! moved through the admin endpoint) and against a small in-memory model of Azure's queue
//! semantics. Every observable result must agree: which messages are visible, their text
//! and dequeue counts, the approximate count, and the status of Delete and Update (including
//! after TTL expiry).
//!
//! Times in the model are whole seconds; the emulator's clock moves in whole seconds too,
//! plus the few milliseconds each case really takes, so every check lands strictly after
//! the boundaries it tests (a 2 ms pause follows each operation) and well before the next.
#![allow(clippy::unwrap_used)]

use conformance_tests::raw::{message, start, Auth, Server, Svc};
use proptest::prelude::*;
use std::time::Duration;
use storage_client::sas::encode_query_value as enc;

#[derive(Debug, Clone)]
enum Op {
    Put { vis: i64, ttl: Option<i64> },
    Get { n: usize, vis: i64 },
    Peek { n: usize },
    Update { pick: usize, vis: i64 },
    Delete { pick: usize },
    Advance { secs: i64 },
    Clear,
    Count,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0i64..3, proptest::option::of(1i64..6))
            .prop_map(|(vis, ttl)| Op::Put { vis, ttl: ttl.map(|t| t + vis) }),
        3 => (1usize..5, 1i64..4).prop_map(|(n, vis)| Op::Get { n, vis }),
        2 => (1usize..6).prop_map(|n| Op::Peek { n }),
        2 => (0usize..8, 0i64..3).prop_map(|(pick, vis)| Op::Update { pick, vis }),
        2 => (0usize..8).prop_map(|pick| Op::Delete { pick }),
        3 => (0i64..5).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Clear),
        2 => Just(Op::Count),
    ]
}

#[derive(Debug, Clone)]
struct Msg {
    id: String,
    text: String,
    visible_at: i64,
    expires_at: Option<i64>,
    dequeues: i64,
    /// The latest pop receipt (all Gets are ours, so it is never stale).
    receipt: Option<String>,
}

struct Model {
    now: i64,
    msgs: Vec<Msg>,
}

impl Model {
    fn expired(&self, m: &Msg) -> bool {
        m.expires_at.is_some_and(|e| self.now >= e)
    }
    fn visible(&self) -> Vec<&Msg> {
        self.msgs
            .iter()
            .filter(|m| !self.expired(m) && self.now >= m.visible_at)
            .collect()
    }
    fn live(&self) -> usize {
        self.msgs.iter().filter(|m| !self.expired(m)).count()
    }
}

fn tags(xml: &str, tag: &str) -> Vec<String> {
    conformance_tests::xml::texts(xml, tag)
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn run(s: &Server, ops: &[Op]) -> Result<(), TestCaseError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CASE: AtomicU64 = AtomicU64::new(0);
    let name = format!("modelq{}", CASE.fetch_add(1, Ordering::Relaxed));
    let q = |method: &str, path: &str, body: &[u8]| {
        let path = path.replacen("/modelq", &format!("/{name}"), 1);
        s.send(Svc::Queue, method, &path, &[], body, &Auth::Sas)
    };
    let r = q("PUT", "/modelq", b"");
    prop_assert_eq!(r.status, 201);
    let mut m = Model {
        now: 0,
        msgs: Vec::new(),
    };
    let mut n = 0;
    for op in ops {
        n += 1;
        match op {
            Op::Put { vis, ttl } => {
                let text = format!("m{n}");
                let ttl_q = ttl.map(|t| format!("&messagettl={t}")).unwrap_or_default();
                let r = q(
                    "POST",
                    &format!("/modelq/messages?visibilitytimeout={vis}{ttl_q}"),
                    &message(&text),
                );
                prop_assert_eq!(r.status, 201, "{:?}", op);
                let id = tags(&String::from_utf8_lossy(&r.body), "MessageId").remove(0);
                m.msgs.push(Msg {
                    id,
                    text,
                    visible_at: m.now + vis,
                    expires_at: ttl.map(|t| m.now + t),
                    dequeues: 0,
                    receipt: None,
                });
            }
            Op::Get { n: want, vis } => {
                let r = q(
                    "GET",
                    &format!("/modelq/messages?numofmessages={want}&visibilitytimeout={vis}"),
                    b"",
                );
                prop_assert_eq!(r.status, 200);
                let xml = String::from_utf8_lossy(&r.body).into_owned();
                let ids = tags(&xml, "MessageId");
                let expected = (*want).min(m.visible().len());
                prop_assert_eq!(
                    ids.len(),
                    expected,
                    "Get {} with {} visible: {}",
                    want,
                    m.visible().len(),
                    xml
                );
                let (texts, receipts, counts) = (
                    tags(&xml, "MessageText"),
                    tags(&xml, "PopReceipt"),
                    tags(&xml, "DequeueCount"),
                );
                let now = m.now;
                for (i, id) in ids.iter().enumerate() {
                    let visible = m.visible().iter().any(|x| &x.id == id);
                    prop_assert!(visible, "Get returned {} which the model does not see", id);
                    let msg = m.msgs.iter_mut().find(|x| &x.id == id).unwrap();
                    msg.dequeues += 1;
                    prop_assert_eq!(&texts[i], &msg.text);
                    prop_assert_eq!(counts[i].parse::<i64>().unwrap(), msg.dequeues);
                    msg.visible_at = now + vis;
                    msg.receipt = Some(receipts[i].clone());
                }
            }
            Op::Peek { n: want } => {
                let r = q(
                    "GET",
                    &format!("/modelq/messages?peekonly=true&numofmessages={want}"),
                    b"",
                );
                prop_assert_eq!(r.status, 200);
                let xml = String::from_utf8_lossy(&r.body).into_owned();
                let ids = tags(&xml, "MessageId");
                prop_assert_eq!(ids.len(), (*want).min(m.visible().len()), "Peek: {}", xml);
                let counts = tags(&xml, "DequeueCount");
                for (i, id) in ids.iter().enumerate() {
                    let found = m.visible().into_iter().find(|x| &x.id == id).cloned();
                    prop_assert!(
                        found.is_some(),
                        "Peek returned {} which the model does not see",
                        id
                    );
                    prop_assert_eq!(counts[i].parse::<i64>().unwrap(), found.unwrap().dequeues);
                }
            }
            Op::Update { pick, .. } | Op::Delete { pick }
                if m.msgs.iter().any(|x| x.receipt.is_some()) =>
            {
                let held: Vec<usize> = (0..m.msgs.len())
                    .filter(|i| m.msgs[*i].receipt.is_some())
                    .collect();
                let i = held[pick % held.len()];
                let msg = m.msgs[i].clone();
                let receipt = enc(msg.receipt.as_deref().unwrap());
                let expired = m.expired(&msg);
                if let Op::Update { vis, .. } = op {
                    let r = q(
                        "PUT",
                        &format!(
                            "/modelq/messages/{}?popreceipt={receipt}&visibilitytimeout={vis}",
                            msg.id
                        ),
                        &message(&format!("{}u", msg.text)),
                    );
                    if expired {
                        prop_assert_eq!(r.status, 404, "Update of an expired message");
                        m.msgs.remove(i);
                    } else {
                        prop_assert_eq!(r.status, 204, "Update: {}", r.head);
                        let new_receipt = r
                            .head
                            .lines()
                            .find_map(|l| l.strip_prefix("x-ms-popreceipt: "))
                            .unwrap()
                            .to_string();
                        let now = m.now;
                        let msg = &mut m.msgs[i];
                        msg.text.push('u');
                        msg.visible_at = now + vis;
                        msg.receipt = Some(new_receipt);
                    }
                } else {
                    let r = q(
                        "DELETE",
                        &format!("/modelq/messages/{}?popreceipt={receipt}", msg.id),
                        b"",
                    );
                    prop_assert_eq!(
                        r.status,
                        if expired { 404 } else { 204 },
                        "Delete (expired: {}): {}",
                        expired,
                        r.head
                    );
                    m.msgs.remove(i);
                }
            }
            Op::Update { .. } | Op::Delete { .. } => {}
            Op::Advance { secs } => {
                if *secs > 0 {
                    s.emu.advance_clock(*secs as u64);
                    m.now += secs;
                }
            }
            Op::Clear => {
                prop_assert_eq!(q("DELETE", "/modelq/messages", b"").status, 204);
                m.msgs.clear();
            }
            Op::Count => {
                let r = q("GET", "/modelq?comp=metadata", b"");
                let count: usize = r
                    .head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-ms-approximate-messages-count: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                prop_assert_eq!(count, m.live(), "approximate count");
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    prop_assert_eq!(q("DELETE", "/modelq", b"").status, 204);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn queue_matches_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        thread_local! {
            static SERVER: Server = start(&[]);
        }
        SERVER.with(|s| run(s, &ops))?;
    }
}
