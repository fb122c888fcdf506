//! `--seed PATH`: data a test or demo starts with, loaded before the ports open.
//!
//! - A folder: each subfolder is a container of the first account, each file under it a
//!   block blob named by its path below the container (content type by extension), and
//!   an optional `seed.json` beside them is a manifest as below.
//! - A JSON file, the manifest:
//!   `{"account": "...", "containers": {"name": {"blob/path.txt": "text"}},
//!     "queues": {"name": ["message", ...]}}` (`account` defaults to the first one).
//!
//! Idempotent across restarts: a container or blob that exists is left alone, and a
//! queue's messages are put only when the seed creates the queue.

use crate::config::Accounts;
use crate::protocol::conditions::{Access, Preconditions};
use crate::store::blob::{BlobName, BlobType, Checksums, ChunkSource, Expect, NewBlob};
use crate::store::Store;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("--seed {path}: {reason}")]
pub struct SeedError {
    path: String,
    reason: String,
}

fn fail(path: &Path, reason: impl std::fmt::Display) -> SeedError {
    SeedError {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    account: Option<String>,
    #[serde(default)]
    containers: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    queues: BTreeMap<String, Vec<String>>,
}

/// What was added (not what already existed).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub containers: usize,
    pub blobs: usize,
    pub queues: usize,
    pub messages: usize,
}

/// A content type for a file name, by its extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("svg") => "image/svg+xml",
        Some("txt" | "log") => "text/plain",
        Some("html" | "htm") => "text/html",
        Some("css") => "text/css",
        Some("js" | "mjs") => "text/javascript",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        Some("csv") => "text/csv",
        Some("md") => "text/markdown",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// A file read in 1 MiB chunks (bounded memory, as uploads are).
struct FileChunks(std::fs::File);

impl ChunkSource for FileChunks {
    async fn next_chunk(&mut self) -> crate::protocol::error::Result<Option<Bytes>> {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 20];
        let n = self
            .0
            .read(&mut buf)
            .map_err(crate::protocol::error::StorageError::internal)?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some(Bytes::from(buf)))
    }
}

struct Bytes1(Option<Bytes>);

impl ChunkSource for Bytes1 {
    async fn next_chunk(&mut self) -> crate::protocol::error::Result<Option<Bytes>> {
        Ok(self.0.take())
    }
}

enum Content {
    File(PathBuf),
    Text(String),
}

async fn put_blob(
    store: &Store,
    account: &str,
    container: &str,
    blob: &str,
    content: Content,
) -> Result<bool, String> {
    if store
        .blobs
        .blob(account, container, blob, "")
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(false);
    }
    let checksums = Checksums {
        md5: true,
        crc64: false,
    };
    let received = match content {
        Content::File(path) => {
            let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            store
                .blobs
                .receive(&mut FileChunks(f), u64::MAX, checksums, &Expect::default())
                .await
        }
        Content::Text(t) => {
            store
                .blobs
                .receive(
                    &mut Bytes1(Some(Bytes::from(t))),
                    u64::MAX,
                    checksums,
                    &Expect::default(),
                )
                .await
        }
    }
    .map_err(|e| e.to_string())?;
    let mut new = NewBlob::new(BlobType::Block);
    new.properties.content_type = Some(content_type(blob).to_string());
    new.properties.content_md5 = received.md5().map(|m| m.to_vec());
    let n = BlobName {
        account,
        container,
        blob,
    };
    store
        .blobs
        .put_blob(n, received, new, &Preconditions::none(Access::Replace))
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

async fn ensure_container(store: &Store, account: &str, name: &str) -> Result<bool, String> {
    if crate::protocol::validate::resource_name(name).is_err() && name != "$root" {
        return Err(format!(
            "'{name}' is not a valid container name (3-63 of a-z, 0-9 and -)"
        ));
    }
    if store
        .blobs
        .container(account, name)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(false);
    }
    store
        .blobs
        .create_container(account, name, Vec::new(), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

/// Files under `dir`, as (path below `dir` with `/`, file path), in name order.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, d)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let meta = e.metadata().map_err(|err| err.to_string())?;
            if meta.is_dir() {
                stack.push((rel, e.path()));
            } else if meta.is_file() {
                out.push((rel, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

async fn apply(
    store: &Store,
    accounts: &Accounts,
    m: Manifest,
    seeded: &mut Seeded,
) -> Result<(), String> {
    let account = match m.account {
        Some(a) if accounts.get(&a).is_some() => a,
        Some(a) => return Err(format!("account '{a}' is not one of the emulator's")),
        None => accounts
            .first()
            .map(|a| a.name.clone())
            .ok_or("no accounts")?,
    };
    for (container, blobs) in m.containers {
        if ensure_container(store, &account, &container).await? {
            seeded.containers += 1;
        }
        for (blob, text) in blobs {
            if put_blob(store, &account, &container, &blob, Content::Text(text)).await? {
                seeded.blobs += 1;
            }
        }
    }
    for (queue, messages) in m.queues {
        if crate::protocol::validate::resource_name(&queue).is_err() {
            return Err(format!("'{queue}' is not a valid queue name"));
        }
        let created = store
            .queues
            .create_queue(&account, &queue, Vec::new())
            .await
            .map_err(|e| format!("queue '{queue}': {e}"))?;
        if created != crate::store::queue::CreateOutcome::Created {
            continue;
        }
        seeded.queues += 1;
        for text in messages {
            store
                .queues
                .put_message(&account, &queue, text, 0, None)
                .await
                .map_err(|e| format!("queue '{queue}': {e}"))?;
            seeded.messages += 1;
        }
    }
    Ok(())
}

/// Loads `path` into `store`.
pub async fn load(store: &Store, accounts: &Accounts, path: &Path) -> Result<Seeded, SeedError> {
    let mut seeded = Seeded::default();
    let manifest = |p: &Path| -> Result<Manifest, SeedError> {
        let text = std::fs::read_to_string(p).map_err(|e| fail(p, e))?;
        serde_json::from_str(&text).map_err(|e| fail(p, e))
    };
    if path.is_file() {
        apply(store, accounts, manifest(path)?, &mut seeded)
            .await
            .map_err(|e| fail(path, e))?;
        return Ok(seeded);
    }
    if !path.is_dir() {
        return Err(fail(path, "no such file or folder"));
    }
    let account = accounts
        .first()
        .map(|a| a.name.clone())
        .ok_or_else(|| fail(path, "no accounts"))?;
    let mut dirs: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| fail(path, e))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    dirs.sort_by_key(|e| e.file_name());
    for d in dirs {
        let container = d.file_name().to_string_lossy().into_owned();
        if ensure_container(store, &account, &container)
            .await
            .map_err(|e| fail(path, e))?
        {
            seeded.containers += 1;
        }
        for (blob, file) in files(&d.path()).map_err(|e| fail(path, e))? {
            if put_blob(store, &account, &container, &blob, Content::File(file))
                .await
                .map_err(|e| fail(path, e))?
            {
                seeded.blobs += 1;
            }
        }
    }
    let json = path.join("seed.json");
    if json.is_file() {
        apply(store, accounts, manifest(&json)?, &mut seeded)
            .await
            .map_err(|e| fail(&json, e))?;
    }
    Ok(seeded)
}
