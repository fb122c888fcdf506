//! Model-based test of the blob service: random sequences of Put Blob (inline and extent
//! sizes), append blobs, Put Block / Put Block List, Delete, Get, List, leases and clock
//! advances, run against the real emulator and a small model of Azure's blob semantics.
//! Contents, existence, listings, and the status of every write (lease conflicts, wrong
//! blob types, unknown blocks) must agree. Whole-second clock steps, as in model_queue.rs.
#![allow(clippy::unwrap_used)]

use conformance_tests::raw::{start, Auth, Server, Svc};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const NAMES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Put {
        name: usize,
        len: usize,
    },
    CreateAppend {
        name: usize,
    },
    Append {
        name: usize,
        len: usize,
    },
    Stage {
        name: usize,
        block: usize,
        len: usize,
    },
    Commit {
        name: usize,
        blocks: Vec<usize>,
    },
    Delete {
        name: usize,
    },
    Get {
        name: usize,
    },
    List,
    Acquire {
        name: usize,
        infinite: bool,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES;
    let len = prop_oneof![0usize..200, 60_000usize..70_000];
    prop_oneof![
        3 => (name.clone(), len.clone()).prop_map(|(name, len)| Op::Put { name, len }),
        1 => name.clone().prop_map(|name| Op::CreateAppend { name }),
        2 => (name.clone(), len.clone()).prop_map(|(name, len)| Op::Append { name, len }),
        2 => (name.clone(), 0usize..3, len).prop_map(|(name, block, len)| Op::Stage { name, block, len }),
        2 => (name.clone(), proptest::collection::vec(0usize..4, 0..4)).prop_map(|(name, blocks)| Op::Commit { name, blocks }),
        1 => name.clone().prop_map(|name| Op::Delete { name }),
        3 => name.clone().prop_map(|name| Op::Get { name }),
        1 => Just(Op::List),
        1 => (name, any::<bool>()).prop_map(|(name, infinite)| Op::Acquire { name, infinite }),
        2 => (0u64..25).prop_map(|secs| Op::Advance { secs }),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Block,
    Append,
}

#[derive(Debug, Clone)]
struct Blob {
    kind: Kind,
    content: Vec<u8>,
    committed: BTreeMap<usize, Vec<u8>>,
    /// Lease end in model seconds (None: infinite), while leased.
    lease: Option<Option<i64>>,
}

#[derive(Default)]
struct Model {
    now: i64,
    blobs: BTreeMap<usize, Blob>,
    /// Staged, uncommitted blocks per name (kept by Azure even before the blob exists).
    staged: BTreeMap<usize, BTreeMap<usize, Vec<u8>>>,
}

impl Model {
    fn leased(&self, name: usize) -> bool {
        match self.blobs.get(&name).and_then(|b| b.lease) {
            Some(None) => true,
            Some(Some(end)) => self.now < end,
            None => false,
        }
    }
}

fn bytes(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7) as u8).collect()
}

fn block_id(b: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(format!("block-{b:02}"))
        .replace('=', "%3D")
}

fn run(s: &Server, ops: &[Op]) -> Result<(), TestCaseError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CASE: AtomicU64 = AtomicU64::new(0);
    let c = format!("model{}", CASE.fetch_add(1, Ordering::Relaxed));
    let send = |method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]| {
        s.send(Svc::Blob, method, path, headers, body, &Auth::Sas)
    };
    prop_assert_eq!(
        send("PUT", &format!("/{c}?restype=container"), &[], b"").status,
        201
    );
    let mut m = Model::default();
    for (step, op) in ops.iter().enumerate() {
        let path = |name: usize| format!("/{c}/b{name}");
        match op {
            Op::Put { name, len } => {
                let data = bytes(step, *len);
                let r = send(
                    "PUT",
                    &path(*name),
                    &[("x-ms-blob-type", "BlockBlob")],
                    &data,
                );
                if m.leased(*name) {
                    prop_assert_eq!(r.status, 412, "Put on a leased blob");
                } else {
                    prop_assert_eq!(r.status, 201, "{:?}: {}", op, r.head);
                    let lease = m.blobs.get(name).and_then(|b| b.lease);
                    m.blobs.insert(
                        *name,
                        Blob {
                            kind: Kind::Block,
                            content: data,
                            committed: BTreeMap::new(),
                            lease,
                        },
                    );
                    m.staged.remove(name);
                }
            }
            Op::CreateAppend { name } => {
                let r = send(
                    "PUT",
                    &path(*name),
                    &[("x-ms-blob-type", "AppendBlob")],
                    b"",
                );
                if m.leased(*name) {
                    prop_assert_eq!(r.status, 412);
                } else {
                    prop_assert_eq!(r.status, 201);
                    let lease = m.blobs.get(name).and_then(|b| b.lease);
                    m.blobs.insert(
                        *name,
                        Blob {
                            kind: Kind::Append,
                            content: Vec::new(),
                            committed: BTreeMap::new(),
                            lease,
                        },
                    );
                    m.staged.remove(name);
                }
            }
            Op::Append { name, len } => {
                let data = bytes(step, *len + 1);
                let r = send(
                    "PUT",
                    &format!("{}?comp=appendblock", path(*name)),
                    &[],
                    &data,
                );
                let leased = m.leased(*name);
                match m.blobs.get_mut(name) {
                    None => prop_assert_eq!(r.status, 404),
                    Some(b) if b.kind == Kind::Block => prop_assert_eq!(r.status, 409),
                    Some(_) if leased => prop_assert_eq!(r.status, 412),
                    Some(b) => {
                        prop_assert_eq!(r.status, 201, "{}", r.head);
                        b.content.extend_from_slice(&data);
                    }
                }
            }
            Op::Stage { name, block, len } => {
                let data = bytes(step, *len);
                let r = send(
                    "PUT",
                    &format!("{}?comp=block&blockid={}", path(*name), block_id(*block)),
                    &[],
                    &data,
                );
                match m.blobs.get(name) {
                    Some(b) if b.kind == Kind::Append => prop_assert_eq!(r.status, 409),
                    _ if m.leased(*name) => prop_assert_eq!(r.status, 412),
                    _ => {
                        prop_assert_eq!(r.status, 201, "{}", r.head);
                        m.staged.entry(*name).or_default().insert(*block, data);
                    }
                }
            }
            Op::Commit { name, blocks } => {
                let list: String = blocks
                    .iter()
                    .map(|b| format!("<Latest>{}</Latest>", block_id(*b).replace("%3D", "=")))
                    .collect();
                let r = send(
                    "PUT",
                    &format!("{}?comp=blocklist", path(*name)),
                    &[],
                    format!("<BlockList>{list}</BlockList>").as_bytes(),
                );
                let staged = m.staged.get(name).cloned().unwrap_or_default();
                let committed = m
                    .blobs
                    .get(name)
                    .map(|b| b.committed.clone())
                    .unwrap_or_default();
                let resolve = |b: &usize| staged.get(b).or(committed.get(b)).cloned();
                match m.blobs.get(name) {
                    Some(b) if b.kind == Kind::Append => prop_assert_eq!(r.status, 409),
                    _ if m.leased(*name) => prop_assert_eq!(r.status, 412),
                    _ if blocks.iter().any(|b| resolve(b).is_none()) => {
                        prop_assert_eq!(
                            (r.status, r.code.as_deref()),
                            (400, Some("InvalidBlockList"))
                        )
                    }
                    _ => {
                        prop_assert_eq!(r.status, 201, "{}", r.head);
                        let mut content = Vec::new();
                        let mut new_committed = BTreeMap::new();
                        for b in blocks {
                            let data = resolve(b).unwrap();
                            content.extend_from_slice(&data);
                            new_committed.insert(*b, data);
                        }
                        let lease = m.blobs.get(name).and_then(|b| b.lease);
                        m.blobs.insert(
                            *name,
                            Blob {
                                kind: Kind::Block,
                                content,
                                committed: new_committed,
                                lease,
                            },
                        );
                        m.staged.remove(name);
                    }
                }
            }
            Op::Delete { name } => {
                let r = send("DELETE", &path(*name), &[], b"");
                if !m.blobs.contains_key(name) {
                    prop_assert_eq!(r.status, 404);
                } else if m.leased(*name) {
                    prop_assert_eq!(r.status, 412);
                } else {
                    prop_assert_eq!(r.status, 202);
                    m.blobs.remove(name);
                    m.staged.remove(name);
                }
            }
            Op::Get { name } => {
                let r = send("GET", &path(*name), &[], b"");
                match m.blobs.get(name) {
                    None => prop_assert_eq!(r.status, 404),
                    Some(b) => {
                        prop_assert_eq!(r.status, 200);
                        prop_assert!(
                            r.body == b.content,
                            "content of b{} differs ({} vs {} bytes)",
                            name,
                            r.body.len(),
                            b.content.len()
                        );
                    }
                }
            }
            Op::List => {
                let r = send(
                    "GET",
                    &format!("/{c}?restype=container&comp=list"),
                    &[],
                    b"",
                );
                let xml = String::from_utf8_lossy(&r.body).into_owned();
                let listed: Vec<String> = conformance_tests::xml::texts(&xml, "Name")
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let want: Vec<String> = m.blobs.keys().map(|n| format!("b{n}")).collect();
                prop_assert_eq!(listed, want);
            }
            Op::Acquire { name, infinite } => {
                let duration = if *infinite { "-1" } else { "15" };
                let r = send(
                    "PUT",
                    &format!("{}?comp=lease", path(*name)),
                    &[
                        ("x-ms-lease-action", "acquire"),
                        ("x-ms-lease-duration", duration),
                    ],
                    b"",
                );
                let leased = m.leased(*name);
                let now = m.now;
                match m.blobs.get_mut(name) {
                    None => prop_assert_eq!(r.status, 404),
                    Some(_) if leased => prop_assert_eq!(r.status, 409),
                    Some(b) => {
                        prop_assert_eq!(r.status, 201, "{}", r.head);
                        b.lease = Some((!infinite).then_some(now + 15));
                    }
                }
            }
            Op::Advance { secs } => {
                if *secs > 0 {
                    s.emu.advance_clock(*secs);
                    m.now += *secs as i64;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
    #[test]
    fn blobs_match_the_model(ops in proptest::collection::vec(op(), 1..25)) {
        thread_local! {
            static SERVER: Server = start(&[]);
        }
        SERVER.with(|s| run(s, &ops))?;
    }
}
