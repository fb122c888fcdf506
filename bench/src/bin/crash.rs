//! Crash harness: mixed queue and blob load against the real `emulator` binary, SIGKILL at
//! a random moment, restart on the same data folder, and check the store against the log of
//! acknowledged operations:
//!
//! - the store opens after every kill;
//! - no acknowledged message or blob is missing;
//! - no blob differs from its acknowledged content (or, for a write in flight at the kill,
//!   from the one it was replacing);
//! - no acknowledged delete is undone;
//! - no message id appears twice, ever;
//! - with `--protection` (blob versioning and a one-day soft delete on): every acknowledged
//!   version stays readable with its bytes until it is deleted by id, and none deleted by
//!   id comes back; retention purges run across the kills (each restart moves the clock
//!   an hour per cycle). At the end the data folder is measured before and after
//!   deleting everything, after the retention purge, and after a restart (compaction).
//!
//! Bounded: `--cycles` kills or `--max-seconds`, whichever comes first. Loopback only.
//!
//!   target/release/crash --cycles 500                       # the long run
//!   target/debug/crash --cycles 50 --emulator target/debug/emulator   # CI's short run

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Parser;
use conformance_tests::raw::{exchange, request_bytes, Resp};
use conformance_tests::xml::texts as tags;
use conformance_tests::{account_sas_query, EmulatorProcess, DEV_ACCOUNT, DEV_KEY};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "kill -9 the emulator under load, again and again, and check what it kept")]
struct Args {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 50)]
    cycles: u32,
    /// Stop after this many seconds even if cycles remain.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// The emulator binary.
    #[arg(long, default_value = "target/release/emulator")]
    emulator: PathBuf,
    /// Concurrent load threads (each owns one queue and one container).
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Longest load phase before the kill, in milliseconds.
    #[arg(long, default_value_t = 300)]
    max_load_ms: u64,
    /// Random seed (printed, so a failing run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Data folder (default: a fresh temporary one).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Extra emulator argument (repeatable). `--emulator-arg=--inMemoryPersistence` shows
    /// the harness catching lost writes.
    #[arg(long = "emulator-arg", allow_hyphen_values = true)]
    emulator_args: Vec<String>,
    /// Blob versioning and soft delete on (see the module comment).
    #[arg(long)]
    protection: bool,
}

/// Acknowledged versions a lane keeps before it deletes the oldest by id.
const KEEP_VERSIONS: usize = 6;

/// xorshift64*: deterministic per seed, no dependency.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    fn text(&mut self, n: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

// ---------------------------------------------------------------- HTTP (one request per
// connection: the kill must be able to cut any of them)

#[derive(Clone)]
struct Http {
    addr: String,
    account: String,
    sas: String,
}

impl Http {
    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Resp> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let target = format!("/{}{path}{sep}{}", self.account, self.sas);
        let bytes = request_bytes(method, &self.addr, &target, headers, body);
        exchange(&self.addr, &bytes, Duration::from_secs(20))
    }
}

use storage_client::sas::encode_query_value as enc;

// ---------------------------------------------------------------- the model

#[derive(Clone, Debug, PartialEq)]
enum BlobState {
    Absent,
    Block(Vec<u8>),
    Append(Vec<u8>),
    /// All `PAGE_BLOB` bytes, zeros where nothing was written.
    Page(Vec<u8>),
}

/// The size of the page blobs the harness writes: page writes up to 128 KiB land on both
/// sides of the 64 KiB inline limit.
const PAGE_BLOB: usize = 512 * 1024;

impl BlobState {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            BlobState::Absent => None,
            BlobState::Block(b) | BlobState::Append(b) | BlobState::Page(b) => Some(b),
        }
    }
}

/// What one thread knows about its own queue and container. Each key has at most one
/// operation in flight, so after a kill a key is in its confirmed state or in the state
/// its in-flight operation would have produced.
#[derive(Default)]
struct Model {
    /// message id -> confirmed text (present, not deleted).
    messages: HashMap<String, String>,
    /// message id -> text an in-flight Update would set.
    updating: HashMap<String, String>,
    /// message id with a Delete in flight.
    deleting: HashSet<String>,
    /// texts of Puts in flight (their ids were never learned).
    putting: Vec<String>,
    blobs: HashMap<String, BlobState>,
    /// blob name -> state an in-flight write would produce.
    blob_pending: HashMap<String, BlobState>,
    /// `--protection`: acknowledged block blob versions, oldest first: (blob, id, bytes).
    versions: Vec<(String, String, [u8; 32])>,
    /// Versions deleted by id (acknowledged): never readable again.
    versions_gone: Vec<(String, String)>,
    /// A version delete in flight.
    version_deleting: Option<(String, String, [u8; 32])>,
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    puts: u64,
    deletes: u64,
    updates: u64,
    gets: u64,
    put_blobs: u64,
    block_lists: u64,
    appends: u64,
    page_writes: u64,
    page_clears: u64,
    blob_deletes: u64,
    version_deletes: u64,
    versions_checked: u64,
    in_flight_at_kill: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.puts += o.puts;
        self.deletes += o.deletes;
        self.updates += o.updates;
        self.gets += o.gets;
        self.put_blobs += o.put_blobs;
        self.block_lists += o.block_lists;
        self.appends += o.appends;
        self.page_writes += o.page_writes;
        self.page_clears += o.page_clears;
        self.blob_deletes += o.blob_deletes;
        self.version_deletes += o.version_deletes;
        self.versions_checked += o.versions_checked;
        self.in_flight_at_kill += o.in_flight_at_kill;
    }
}

struct Lane {
    queue: String,
    container: String,
    model: Model,
    rng: Rng,
    counts: Counts,
}

/// A 2xx or a violation; connection errors end the load phase (the kill).
enum Step {
    Ok,
    Killed,
}

fn violation(msg: String) -> anyhow::Error {
    anyhow::anyhow!("VIOLATION: {msg}")
}

impl Lane {
    fn run(&mut self, http: &Split, stop: &AtomicBool) -> Result<()> {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            match self.step(http, n)? {
                Step::Ok => {}
                Step::Killed => {
                    self.counts.in_flight_at_kill += 1;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, split: &Split, n: u64) -> Result<Step> {
        macro_rules! call {
            ($http:expr, $($arg:expr),*) => {
                match $http.call($($arg),*) {
                    Ok(r) => r,
                    Err(_) => return Ok(Step::Killed),
                }
            };
        }
        let q = self.queue.clone();
        let c = self.container.clone();
        match self.rng.below(10) {
            0..=2 => {
                let len = self.rng.below(1500) as usize;
                let text = format!("{q}-{n}-{}", self.rng.text(len));
                self.model.putting.push(text.clone());
                let body =
                    format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
                let r = call!(
                    split.q,
                    "POST",
                    &format!("/{q}/messages"),
                    &[],
                    body.as_bytes()
                );
                if r.status != 201 {
                    bail!(violation(format!("Put Message answered {}", r.status)));
                }
                let xml = String::from_utf8_lossy(&r.body).into_owned();
                let id = tags(&xml, "MessageId")
                    .first()
                    .map(|s| s.to_string())
                    .context("no MessageId")?;
                self.model.putting.pop();
                self.model.messages.insert(id, text);
                self.counts.puts += 1;
            }
            3..=4 => {
                let r = call!(
                    split.q,
                    "GET",
                    &format!("/{q}/messages?numofmessages=1&visibilitytimeout=1"),
                    &[],
                    b""
                );
                if r.status != 200 {
                    bail!(violation(format!("Get Messages answered {}", r.status)));
                }
                self.counts.gets += 1;
                let xml = String::from_utf8_lossy(&r.body).into_owned();
                let (Some(id), Some(receipt), Some(text)) = (
                    tags(&xml, "MessageId").first().map(|s| s.to_string()),
                    tags(&xml, "PopReceipt").first().map(|s| s.to_string()),
                    tags(&xml, "MessageText").first().map(|s| s.to_string()),
                ) else {
                    return Ok(Step::Ok);
                };
                match self.model.messages.get(&id) {
                    Some(t) if *t == text => {}
                    other => bail!(violation(format!(
                        "Get returned {id} with {text:?}; model has {other:?}"
                    ))),
                }
                if self.rng.below(2) == 0 {
                    self.model.deleting.insert(id.clone());
                    let r = call!(
                        split.q,
                        "DELETE",
                        &format!("/{q}/messages/{id}?popreceipt={}", enc(&receipt)),
                        &[],
                        b""
                    );
                    if r.status != 204 {
                        bail!(violation(format!("Delete Message answered {}", r.status)));
                    }
                    self.model.deleting.remove(&id);
                    self.model.messages.remove(&id);
                    self.counts.deletes += 1;
                } else {
                    let new = format!("{q}-{n}-upd-{}", self.rng.text(40));
                    self.model.updating.insert(id.clone(), new.clone());
                    let body =
                        format!("<QueueMessage><MessageText>{new}</MessageText></QueueMessage>");
                    let r = call!(
                        split.q,
                        "PUT",
                        &format!(
                            "/{q}/messages/{id}?popreceipt={}&visibilitytimeout=0",
                            enc(&receipt)
                        ),
                        &[],
                        body.as_bytes()
                    );
                    if r.status != 204 {
                        bail!(violation(format!("Update Message answered {}", r.status)));
                    }
                    self.model.updating.remove(&id);
                    self.model.messages.insert(id, new);
                    self.counts.updates += 1;
                }
            }
            _ => {
                let name = format!("b{}", self.rng.below(12));
                let current = self
                    .model
                    .blobs
                    .get(&name)
                    .cloned()
                    .unwrap_or(BlobState::Absent);
                let path = format!("/{c}/{name}");
                // Put Block on an append or page blob is refused (409 InvalidBlobType):
                // overwrite it with Put Blob instead.
                let op = match (self.rng.below(5), &current) {
                    (1, BlobState::Append(_) | BlobState::Page(_)) => 0,
                    (op, _) => op,
                };
                match op {
                    0 => {
                        // Sizes on both sides of the 64 KiB inline limit.
                        let size = [0, 100, 70_000, 200_000][self.rng.below(4) as usize]
                            + self.rng.below(5000) as usize;
                        let data = self.rng.bytes(size);
                        self.model
                            .blob_pending
                            .insert(name.clone(), BlobState::Block(data.clone()));
                        let r = call!(
                            split.b,
                            "PUT",
                            &path,
                            &[("x-ms-blob-type", "BlockBlob")],
                            &data
                        );
                        if r.status != 201 {
                            bail!(violation(format!("Put Blob answered {}", r.status)));
                        }
                        self.model.blob_pending.remove(&name);
                        self.note_version(&name, &r, &data);
                        self.model.blobs.insert(name, BlobState::Block(data));
                        self.counts.put_blobs += 1;
                    }
                    1 => {
                        let blocks = 1 + self.rng.below(3);
                        let mut all = Vec::new();
                        let mut ids = Vec::new();
                        for i in 0..blocks {
                            let len = self.rng.below(90_000) as usize + 1;
                            let data = self.rng.bytes(len);
                            let id = format!("{n:010}-{i:04}");
                            let id64 =
                                base64::engine::general_purpose::STANDARD.encode(id.as_bytes());
                            // Staging changes nothing visible: no pending state needed.
                            let r = call!(
                                split.b,
                                "PUT",
                                &format!("{path}?comp=block&blockid={}", enc(&id64)),
                                &[],
                                &data
                            );
                            if r.status != 201 {
                                bail!(violation(format!("Put Block answered {}", r.status)));
                            }
                            all.extend_from_slice(&data);
                            ids.push(id64);
                        }
                        let list: String = ids
                            .iter()
                            .map(|i| format!("<Latest>{i}</Latest>"))
                            .collect();
                        let body = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>");
                        self.model
                            .blob_pending
                            .insert(name.clone(), BlobState::Block(all.clone()));
                        let r = call!(
                            split.b,
                            "PUT",
                            &format!("{path}?comp=blocklist"),
                            &[],
                            body.as_bytes()
                        );
                        if r.status != 201 {
                            bail!(violation(format!("Put Block List answered {}", r.status)));
                        }
                        self.model.blob_pending.remove(&name);
                        self.note_version(&name, &r, &all);
                        self.model.blobs.insert(name, BlobState::Block(all));
                        self.counts.block_lists += 1;
                    }
                    2 => {
                        let base = match &current {
                            BlobState::Append(b) if b.len() < 1_000_000 => b.clone(),
                            _ => {
                                self.model
                                    .blob_pending
                                    .insert(name.clone(), BlobState::Append(Vec::new()));
                                let r = call!(
                                    split.b,
                                    "PUT",
                                    &path,
                                    &[("x-ms-blob-type", "AppendBlob")],
                                    b""
                                );
                                if r.status != 201 {
                                    bail!(violation(format!(
                                        "Create append blob answered {}",
                                        r.status
                                    )));
                                }
                                self.model.blob_pending.remove(&name);
                                self.model
                                    .blobs
                                    .insert(name.clone(), BlobState::Append(Vec::new()));
                                Vec::new()
                            }
                        };
                        let len = self.rng.below(80_000) as usize + 1;
                        let chunk = self.rng.bytes(len);
                        let mut next = base;
                        next.extend_from_slice(&chunk);
                        self.model
                            .blob_pending
                            .insert(name.clone(), BlobState::Append(next.clone()));
                        let r = call!(
                            split.b,
                            "PUT",
                            &format!("{path}?comp=appendblock"),
                            &[],
                            &chunk
                        );
                        if r.status != 201 {
                            bail!(violation(format!("Append Block answered {}", r.status)));
                        }
                        self.model.blob_pending.remove(&name);
                        self.model.blobs.insert(name, BlobState::Append(next));
                        self.counts.appends += 1;
                    }
                    4 => {
                        let mut pages = match &current {
                            BlobState::Page(b) => b.clone(),
                            _ => {
                                let zeros = vec![0u8; PAGE_BLOB];
                                self.model
                                    .blob_pending
                                    .insert(name.clone(), BlobState::Page(zeros.clone()));
                                let size = PAGE_BLOB.to_string();
                                let r = call!(
                                    split.b,
                                    "PUT",
                                    &path,
                                    &[
                                        ("x-ms-blob-type", "PageBlob"),
                                        ("x-ms-blob-content-length", &size)
                                    ],
                                    b""
                                );
                                if r.status != 201 {
                                    bail!(violation(format!(
                                        "Create page blob answered {}",
                                        r.status
                                    )));
                                }
                                self.model.blob_pending.remove(&name);
                                self.model
                                    .blobs
                                    .insert(name.clone(), BlobState::Page(zeros.clone()));
                                zeros
                            }
                        };
                        let count = PAGE_BLOB as u64 / 512;
                        let first = self.rng.below(count);
                        let len = 1 + self.rng.below(256.min(count - first));
                        let (start, end) = (first * 512, (first + len) * 512);
                        let range = format!("bytes={start}-{}", end - 1);
                        let clear = self.rng.below(3) == 0;
                        let data = if clear {
                            vec![0u8; (end - start) as usize]
                        } else {
                            self.rng.bytes((end - start) as usize)
                        };
                        pages[start as usize..end as usize].copy_from_slice(&data);
                        self.model
                            .blob_pending
                            .insert(name.clone(), BlobState::Page(pages.clone()));
                        let (write, body): (&str, &[u8]) = if clear {
                            ("clear", b"")
                        } else {
                            ("update", &data)
                        };
                        let r = call!(
                            split.b,
                            "PUT",
                            &format!("{path}?comp=page"),
                            &[("x-ms-page-write", write), ("x-ms-range", &range)],
                            body
                        );
                        if r.status != 201 {
                            bail!(violation(format!(
                                "Put Page ({write}) answered {}",
                                r.status
                            )));
                        }
                        self.model.blob_pending.remove(&name);
                        self.model.blobs.insert(name, BlobState::Page(pages));
                        if clear {
                            self.counts.page_clears += 1;
                        } else {
                            self.counts.page_writes += 1;
                        }
                    }
                    _ => {
                        self.model
                            .blob_pending
                            .insert(name.clone(), BlobState::Absent);
                        let r = call!(split.b, "DELETE", &path, &[], b"");
                        let expected = if current == BlobState::Absent {
                            404
                        } else {
                            202
                        };
                        if r.status != expected {
                            bail!(violation(format!(
                                "Delete Blob {name} answered {}, model expects {expected}",
                                r.status
                            )));
                        }
                        self.model.blob_pending.remove(&name);
                        self.model.blobs.insert(name, BlobState::Absent);
                        self.counts.blob_deletes += 1;
                    }
                }
            }
        }
        if self.model.versions.len() > KEEP_VERSIONS {
            let (name, id, hash) = self.model.versions.remove(0);
            self.model.version_deleting = Some((name.clone(), id.clone(), hash));
            let r = call!(
                split.b,
                "DELETE",
                &format!("/{c}/{name}?versionid={}", enc(&id)),
                &[],
                b""
            );
            self.model.version_deleting = None;
            match r.status {
                202 => {
                    self.model.versions_gone.push((name, id));
                    self.counts.version_deletes += 1;
                }
                // Still the current version: kept, tried again later.
                403 if r.header("x-ms-error-code") == Some("OperationNotAllowedOnRootBlob") => {
                    self.model.versions.push((name, id, hash))
                }
                s => bail!(violation(format!("Delete version {id} answered {s}"))),
            }
        }
        Ok(Step::Ok)
    }

    /// A block blob write's version, when versioning is on.
    fn note_version(&mut self, name: &str, r: &Resp, data: &[u8]) {
        if let Some(v) = r.header("x-ms-version-id") {
            self.model
                .versions
                .push((name.to_string(), v.to_string(), sha(data)));
        }
    }

    /// Every acknowledged version reads back its bytes; none deleted by id is back.
    fn verify_versions(&mut self, http: &Http) -> Result<()> {
        let c = self.container.clone();
        if let Some((name, id, hash)) = self.model.version_deleting.take() {
            // Deleted or not: either is right for a delete in flight at the kill.
            let r = http.call(
                "GET",
                &format!("/{c}/{name}?versionid={}", enc(&id)),
                &[],
                b"",
            )?;
            match r.status {
                200 if sha(&r.body) == hash => self.model.versions.insert(0, (name, id, hash)),
                404 => self.model.versions_gone.push((name, id)),
                s => bail!(violation(format!(
                    "{c}/{name}: version {id} in flight answered {s}"
                ))),
            }
        }
        for (name, id, hash) in &self.model.versions {
            let r = http.call(
                "GET",
                &format!("/{c}/{name}?versionid={}", enc(id)),
                &[],
                b"",
            )?;
            if r.status != 200 || sha(&r.body) != *hash {
                bail!(violation(format!(
                    "{c}/{name}: acknowledged version {id} answered {} ({} bytes)",
                    r.status,
                    r.body.len()
                )));
            }
            self.counts.versions_checked += 1;
        }
        for (name, id) in &self.model.versions_gone {
            let r = http.call(
                "GET",
                &format!("/{c}/{name}?versionid={}", enc(id)),
                &[],
                b"",
            )?;
            if r.status != 404 {
                bail!(violation(format!(
                    "{c}/{name}: version {id} deleted by id answered {}",
                    r.status
                )));
            }
        }
        // Version ids are unique per blob, and exactly one is current.
        let mut seen = HashSet::new();
        for v in list_versions(http, &c)? {
            if !seen.insert((v.name.clone(), v.version.clone())) {
                bail!(violation(format!(
                    "{c}: version {:?} of {} listed twice",
                    v.version, v.name
                )));
            }
        }
        // Bounded: the oldest deleted ids need no more checks once they are many.
        let n = self.model.versions_gone.len();
        if n > 64 {
            self.model.versions_gone.drain(..n - 64);
        }
        Ok(())
    }

    /// After a restart: everything the model says must hold. Resolves in-flight operations
    /// to what is observed, then drains the queue (so the next cycle starts from a known
    /// state) remembering every id ever seen.
    fn verify(&mut self, split: &Split, dead_ids: &mut HashSet<String>) -> Result<(u64, u64)> {
        let http = &split.q;
        let q = self.queue.clone();
        let c = self.container.clone();
        // Queue: drain everything (the clock was moved past every visibility timeout).
        let mut found: HashMap<String, String> = HashMap::new();
        loop {
            let r = http.call(
                "GET",
                &format!("/{q}/messages?numofmessages=32&visibilitytimeout=3600"),
                &[],
                b"",
            )?;
            if r.status != 200 {
                bail!(violation(format!(
                    "{q}: Get Messages after restart answered {}",
                    r.status
                )));
            }
            let xml = String::from_utf8_lossy(&r.body).into_owned();
            let ids = tags(&xml, "MessageId");
            if ids.is_empty() {
                break;
            }
            let receipts = tags(&xml, "PopReceipt");
            let texts = tags(&xml, "MessageText");
            for ((id, receipt), text) in ids.iter().zip(&receipts).zip(&texts) {
                if dead_ids.contains(*id) || found.contains_key(*id) {
                    bail!(violation(format!(
                        "{q}: message id {id} seen twice (deleted or duplicated)"
                    )));
                }
                found.insert(id.to_string(), text.to_string());
                let r = http.call(
                    "DELETE",
                    &format!("/{q}/messages/{id}?popreceipt={}", enc(receipt)),
                    &[],
                    b"",
                )?;
                if r.status != 204 {
                    bail!(violation(format!(
                        "{q}: draining delete answered {}",
                        r.status
                    )));
                }
            }
        }
        let checked = found.len() as u64;
        for (id, text) in &self.model.messages {
            match found.remove(id) {
                Some(t) if t == *text || self.model.updating.get(id) == Some(&t) => {}
                Some(t) => bail!(violation(format!(
                    "{q}: message {id} has {t:?}, acknowledged {text:?}"
                ))),
                None if self.model.deleting.contains(id) => {}
                None => bail!(violation(format!(
                    "{q}: acknowledged message {id} is missing"
                ))),
            }
        }
        // What is left must come from Puts that were in flight at the kill.
        for (id, text) in found {
            match self.model.putting.iter().position(|t| *t == text) {
                Some(i) => {
                    self.model.putting.remove(i);
                }
                None => bail!(violation(format!(
                    "{q}: unknown message {id} {text:?} appeared"
                ))),
            }
        }
        dead_ids.extend(self.model.messages.keys().cloned());
        self.model.messages.clear();
        self.model.updating.clear();
        self.model.deleting.clear();
        self.model.putting.clear();

        // Blobs: every name in the model, plus a listing for strays.
        let http = &split.b;
        let r = http.call(
            "GET",
            &format!("/{c}?restype=container&comp=list"),
            &[],
            b"",
        )?;
        if r.status != 200 {
            bail!(violation(format!(
                "{c}: List Blobs after restart answered {}",
                r.status
            )));
        }
        let listed: HashSet<String> = tags(&String::from_utf8_lossy(&r.body), "Name")
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut names: HashSet<String> = self.model.blobs.keys().cloned().collect();
        names.extend(self.model.blob_pending.keys().cloned());
        for stray in &listed {
            if !names.contains(stray) {
                bail!(violation(format!("{c}: unknown blob {stray} appeared")));
            }
        }
        let mut blobs_checked = 0;
        for name in names {
            let confirmed = self
                .model
                .blobs
                .get(&name)
                .cloned()
                .unwrap_or(BlobState::Absent);
            let pending = self.model.blob_pending.remove(&name);
            let r = http.call("GET", &format!("/{c}/{name}"), &[], b"")?;
            let observed = match r.status {
                404 => BlobState::Absent,
                200 => {
                    let kind = r.header("x-ms-blob-type").unwrap_or("");
                    match kind {
                        "AppendBlob" => BlobState::Append(r.body),
                        "PageBlob" => BlobState::Page(r.body),
                        _ => BlobState::Block(r.body),
                    }
                }
                s => bail!(violation(format!(
                    "{c}/{name}: Get Blob after restart answered {s}"
                ))),
            };
            if listed.contains(&name) != (observed != BlobState::Absent) {
                bail!(violation(format!(
                    "{c}/{name}: listing and Get Blob disagree"
                )));
            }
            let matches = |s: &BlobState| s == &observed;
            if !matches(&confirmed) && !pending.as_ref().is_some_and(matches) {
                let show = |s: &BlobState| match s {
                    BlobState::Absent => "absent".to_string(),
                    BlobState::Block(b) => format!("block {} bytes {:x?}", b.len(), &sha(b)[..4]),
                    BlobState::Append(b) => format!("append {} bytes {:x?}", b.len(), &sha(b)[..4]),
                    BlobState::Page(b) => format!("page {} bytes {:x?}", b.len(), &sha(b)[..4]),
                };
                bail!(violation(format!(
                    "{c}/{name}: observed {}, acknowledged {}{}",
                    show(&observed),
                    show(&confirmed),
                    pending
                        .map(|p| format!(", in flight {}", show(&p)))
                        .unwrap_or_default()
                )));
            }
            if observed.bytes().is_some() {
                blobs_checked += 1;
            }
            self.model.blobs.insert(name, observed);
        }
        self.verify_versions(http)?;
        Ok((checked, blobs_checked))
    }
}

fn http_for(e: &EmulatorProcess, queue: bool, sas: &str) -> Http {
    let base = if queue { &e.queue_base } else { &e.blob_base };
    Http {
        addr: base.trim_start_matches("http://").to_string(),
        account: DEV_ACCOUNT.to_string(),
        sas: sas.to_string(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1
    });
    let tmp = tempfile::tempdir()?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let location = data.display().to_string();
    println!(
        "crash harness: seed {seed}, {} cycles, {} threads, data {location}, emulator {}",
        args.cycles,
        args.threads,
        args.emulator.display()
    );
    let mut emu_args: Vec<&str> = vec!["--location", &location];
    if args.protection {
        emu_args.push("--blobVersioning");
    }
    emu_args.extend(args.emulator_args.iter().map(String::as_str));
    let sas = account_sas_query(
        DEV_ACCOUNT,
        DEV_KEY,
        "bq",
        "sco",
        "rwdxlacup",
        "2099-01-01T00:00:00Z",
    );
    let mut rng = Rng(seed);
    let mut lanes: Vec<Lane> = (0..args.threads)
        .map(|t| Lane {
            queue: format!("crashq{t}"),
            container: format!("crashc{t}"),
            model: Model::default(),
            rng: Rng(seed.wrapping_add(0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t as u64 + 1)) | 1),
            counts: Counts::default(),
        })
        .collect();
    let mut dead_ids: HashSet<String> = HashSet::new();
    let started = Instant::now();
    let (mut cycles, mut messages_checked, mut blobs_checked) = (0u32, 0u64, 0u64);

    // Create the resources once; they must survive every kill too.
    {
        let e = EmulatorProcess::start_bin(&args.emulator, &emu_args);
        for lane in &lanes {
            let r = http_for(&e, true, &sas).call("PUT", &format!("/{}", lane.queue), &[], b"")?;
            anyhow::ensure!(matches!(r.status, 201 | 204), "create queue: {}", r.status);
            let r = http_for(&e, false, &sas).call(
                "PUT",
                &format!("/{}?restype=container", lane.container),
                &[],
                b"",
            )?;
            anyhow::ensure!(
                matches!(r.status, 201 | 409),
                "create container: {}",
                r.status
            );
        }
        if args.protection {
            let policy = "<StorageServiceProperties><DeleteRetentionPolicy><Enabled>true</Enabled><Days>1</Days></DeleteRetentionPolicy></StorageServiceProperties>";
            let r = http_for(&e, false, &sas).call(
                "PUT",
                "/?restype=service&comp=properties",
                &[],
                policy.as_bytes(),
            )?;
            anyhow::ensure!(r.status == 202, "soft delete policy: {}", r.status);
        }
        e.kill9();
    }

    while cycles < args.cycles && started.elapsed() < Duration::from_secs(args.max_seconds) {
        cycles += 1;
        let t_start = Instant::now();
        let e = EmulatorProcess::start_bin(&args.emulator, &emu_args);
        let open_ms = t_start.elapsed().as_millis();
        // Every visibility timeout of earlier cycles is over. The clock offset is not kept
        // across restarts, and earlier cycles ran with their own offsets, so it grows.
        e.advance_clock(3600 * u64::from(cycles));
        let qh = http_for(&e, true, &sas);
        let bh = http_for(&e, false, &sas);
        let split = Split { q: qh, b: bh };
        for lane in lanes.iter_mut() {
            let (m, b) = lane
                .verify(&split, &mut dead_ids)
                .with_context(|| format!("cycle {cycles} verification (seed {seed})"))?;
            messages_checked += m;
            blobs_checked += b;
        }
        // Load, then the kill at a random moment while requests are in flight.
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(Mutex::new(Vec::<String>::new()));
        let load_ms = 20 + rng.below(args.max_load_ms.max(21) - 20);
        let handles: Vec<_> = lanes
            .drain(..)
            .map(|mut lane| {
                let stop = stop.clone();
                let failures = failures.clone();
                let http = split.clone();
                std::thread::spawn(move || {
                    if let Err(e) = lane.run(&http, &stop) {
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("{e:#}"));
                        }
                    }
                    lane
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(load_ms));
        e.kill9();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            lanes.push(
                h.join()
                    .map_err(|_| anyhow::anyhow!("load thread panicked"))?,
            );
        }
        let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
        if !failures.is_empty() {
            bail!("cycle {cycles} (seed {seed}): {}", failures.join("; "));
        }
        if cycles % 10 == 0 || cycles == args.cycles {
            println!(
                "cycle {cycles}: store opened in {open_ms} ms, load {load_ms} ms, {messages_checked} messages and {blobs_checked} blobs checked so far"
            );
        }
    }
    // A last restart checks the final kill.
    let e = EmulatorProcess::start_bin(&args.emulator, &emu_args);
    e.advance_clock(3600 * u64::from(cycles + 1));
    let split = Split {
        q: http_for(&e, true, &sas),
        b: http_for(&e, false, &sas),
    };
    for lane in lanes.iter_mut() {
        let (m, b) = lane
            .verify(&split, &mut dead_ids)
            .context("final verification")?;
        messages_checked += m;
        blobs_checked += b;
    }
    if args.protection {
        space_after_purge(e, &args, &emu_args, &sas, &data, &lanes)?;
    } else {
        drop(e);
    }
    let mut total = Counts::default();
    for lane in &lanes {
        total.add(&lane.counts);
    }
    println!(
        "OK: {cycles} kill -9 cycles in {:.1} s, 0 violations. Acknowledged: {} Put Message, {} Get, {} Update, {} Delete Message, {} Put Blob, {} Put Block List, {} Append Block, {} Put Page, {} Clear Pages, {} Delete Blob, {} Delete Blob version; {} operations in flight at a kill; {} messages, {} blobs and {} versions verified after restarts; {} distinct message ids never resurrected.",
        started.elapsed().as_secs_f64(),
        total.puts,
        total.gets,
        total.updates,
        total.deletes,
        total.put_blobs,
        total.block_lists,
        total.appends,
        total.page_writes,
        total.page_clears,
        total.blob_deletes,
        total.version_deletes,
        total.in_flight_at_kill,
        messages_checked,
        blobs_checked,
        total.versions_checked,
        dead_ids.len()
    );
    Ok(())
}

/// One entry of a List Blobs `include=versions`.
struct Listed {
    name: String,
    version: Option<String>,
    current: bool,
}

/// Every blob and version of container `c` (one page: the harness keeps few).
fn list_versions(http: &Http, c: &str) -> Result<Vec<Listed>> {
    let r = http.call(
        "GET",
        &format!("/{c}?restype=container&comp=list&include=versions"),
        &[],
        b"",
    )?;
    let xml = String::from_utf8_lossy(&r.body).into_owned();
    Ok(xml
        .split("<Blob>")
        .skip(1)
        .filter_map(|entry| {
            Some(Listed {
                name: tags(entry, "Name").first()?.to_string(),
                version: tags(entry, "VersionId").first().map(|s| s.to_string()),
                current: entry.contains("<IsCurrentVersion>true</IsCurrentVersion>"),
            })
        })
        .collect())
}

/// Bytes under `dir`.
fn folder_bytes(dir: &std::path::Path) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    walk(dir)
}

/// `--protection`'s last phase: the data folder with everything kept, after deleting every
/// blob and version (soft delete keeps them), after the retention purge, and after a
/// restart (which compacts).
fn space_after_purge(
    e: EmulatorProcess,
    args: &Args,
    emu_args: &[&str],
    sas: &str,
    data: &std::path::Path,
    lanes: &[Lane],
) -> Result<()> {
    let mib = |b: u64| b as f64 / 1_048_576.0;
    let http = http_for(&e, false, sas);
    let kept = folder_bytes(data);
    let mut deleted = 0u64;
    for lane in lanes {
        let c = &lane.container;
        for Listed {
            name,
            version,
            current,
        } in list_versions(&http, c)?
        {
            let path = match (&version, current) {
                (Some(v), false) => format!("/{c}/{name}?versionid={}", enc(v)),
                _ => format!("/{c}/{name}"),
            };
            let r = http.call("DELETE", &path, &[], b"")?;
            anyhow::ensure!(r.status == 202, "delete {path}: {}", r.status);
            deleted += 1;
            if current {
                // The current version is a previous one now: delete it by id too.
                if let Some(v) = &version {
                    let r = http.call(
                        "DELETE",
                        &format!("/{c}/{name}?versionid={}", enc(v)),
                        &[],
                        b"",
                    )?;
                    anyhow::ensure!(r.status == 202, "delete version {v}: {}", r.status);
                    deleted += 1;
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let soft_deleted = folder_bytes(data);
    // Past the one-day retention (the clock is an hour per cycle ahead already).
    e.advance_clock(2 * 86_400 + 60);
    std::thread::sleep(Duration::from_millis(500));
    let purged = folder_bytes(data);
    drop(e);
    let e = EmulatorProcess::start_bin(&args.emulator, emu_args);
    let restarted = folder_bytes(data);
    drop(e);
    println!(
        "space: {deleted} blobs and versions deleted; data folder {:.1} MiB with everything kept, {:.1} MiB soft-deleted, {:.1} MiB after the retention purge, {:.1} MiB after a restart (compaction)",
        mib(kept),
        mib(soft_deleted),
        mib(purged),
        mib(restarted)
    );
    Ok(())
}

/// Queue and blob services listen on different ports.
#[derive(Clone)]
struct Split {
    q: Http,
    b: Http,
}
