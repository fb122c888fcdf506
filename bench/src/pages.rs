//! Page blob and batch rows of the side-by-side table: Put Page 4 MiB (MiB/s), Get Page
//! Ranges on a 1 GiB page blob with 10,000 ranges (latency), a batch of 256 deletes (ms),
//! and how much a 1 TiB page blob with 1 MiB written adds to the data folder.

use crate::endpoint::Endpoint;
use crate::load::{percentile, run_load, Stats};
use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::Method;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const RANGES: u64 = 10_000;
const BATCH: usize = 256;

/// What the page scenarios measured besides their rows.
pub(crate) struct Sparse {
    /// Data folder growth for a 1 TiB page blob with 1 MiB written, bytes.
    pub(crate) folder_growth: u64,
}

async fn expect(ep: &Endpoint, what: &str, want: u16, got: Result<(u16, u64)>) -> Result<()> {
    let (status, _) = got?;
    if status != want {
        bail!("{}: {what}: {status}", ep.name);
    }
    Ok(())
}

async fn create_page_blob(ep: &Endpoint, path: &str, size: u64) -> Result<()> {
    let size = size.to_string();
    let (status, text) = ep
        .call_text(
            Method::PUT,
            path,
            &[
                ("x-ms-blob-type", "PageBlob"),
                ("x-ms-blob-content-length", &size),
                // hyper sends no length for an empty body; Azurite needs to see the 0.
                ("content-length", "0"),
            ],
            Bytes::new(),
        )
        .await?;
    if status != 201 {
        bail!("{}: create page blob {path}: {status} {text}", ep.name);
    }
    Ok(())
}

async fn put_page(ep: &Endpoint, path: &str, offset: u64, body: Bytes) -> Result<()> {
    let range = format!("bytes={offset}-{}", offset + body.len() as u64 - 1);
    let r = ep
        .call_bytes(
            Method::PUT,
            &format!("{path}?comp=page"),
            &[("x-ms-page-write", "update"), ("x-ms-range", &range)],
            body,
        )
        .await;
    expect(ep, "put page", 201, r).await
}

/// Runs the page rows; `folder` is the server's data folder (for the sparse size).
pub(crate) async fn scenarios(
    ep: &Endpoint,
    seconds: u64,
    concurrency: &[usize],
    folder: Option<&Path>,
    mut record: impl FnMut(String, Stats),
) -> Result<Option<Sparse>> {
    let r = ep
        .call_bytes(Method::PUT, "/pages?restype=container", &[], Bytes::new())
        .await;
    expect(ep, "create container", 201, r).await?;

    // Put Page 4 MiB into a 1 GiB page blob, 256 distinct offsets.
    create_page_blob(ep, "/pages/disk", GIB).await?;
    let four = Bytes::from(vec![0xA5u8; 4 * MIB as usize]);
    for &c in concurrency {
        let (e, b) = (ep.clone(), four.clone());
        let s = run_load(c, seconds, 256 * c as u64, move |i| {
            let (e, b) = (e.clone(), b.clone());
            async move {
                put_page(&e, "/pages/disk", (i % 256) * 4 * MIB, b).await?;
                Ok(4)
            }
        })
        .await;
        record(format!("Put Page 4 MiB, c={c} (MiB/s)"), s);
    }

    // Get Page Ranges over 10,000 separate 512-byte ranges of a 1 GiB blob.
    create_page_blob(ep, "/pages/ranges", GIB).await?;
    let stride = (GIB / RANGES) / 512 * 512;
    let page = Bytes::from(vec![1u8; 512]);
    let (e, p) = (ep.clone(), page.clone());
    let filled = run_load(16, 3600, RANGES, move |i| {
        let (e, p) = (e.clone(), p.clone());
        async move {
            put_page(&e, "/pages/ranges", i * stride, p).await?;
            Ok(1)
        }
    })
    .await;
    if filled.ops < RANGES {
        bail!("{}: wrote only {} of {RANGES} ranges", ep.name, filled.ops);
    }
    let e = ep.clone();
    let s = run_load(1, seconds, u64::MAX, move |_| {
        let e = e.clone();
        async move {
            let (status, len) = e
                .call_bytes(
                    Method::GET,
                    "/pages/ranges?comp=pagelist",
                    &[],
                    Bytes::new(),
                )
                .await?;
            // About 60 bytes of XML per range.
            if status != 200 || len < RANGES * 50 {
                bail!("get page ranges: {status} {len}");
            }
            Ok(1)
        }
    })
    .await;
    record("Get Page Ranges, 10,000 ranges, c=1".to_string(), s);

    record(
        "Batch of 256 deletes".to_string(),
        batch_deletes(ep, seconds).await?,
    );

    // A 1 TiB page blob with 1 MiB written: what it adds to the data folder.
    let sparse = match folder {
        None => None,
        Some(dir) => {
            let before = crate::process::dir_size(dir);
            create_page_blob(ep, "/pages/tera", 1 << 40).await?;
            put_page(
                ep,
                "/pages/tera",
                512 * GIB,
                Bytes::from(vec![7u8; MIB as usize]),
            )
            .await?;
            let after = crate::process::settled_size(dir, Duration::from_secs(20));
            Some(Sparse {
                folder_growth: after.saturating_sub(before),
            })
        }
    };
    ep.call_bytes(
        Method::DELETE,
        "/pages?restype=container",
        &[],
        Bytes::new(),
    )
    .await?;
    Ok(sparse)
}

/// Rounds of: 256 small blobs put (not timed), then one Submit Batch deleting them
/// (timed), for about `seconds` or 50 rounds.
async fn batch_deletes(ep: &Endpoint, seconds: u64) -> Result<Stats> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut timed = Duration::ZERO;
    for round in 0..50u64 {
        if Instant::now() >= deadline {
            break;
        }
        let e = ep.clone();
        let made = run_load(16, 60, BATCH as u64, move |i| {
            let e = e.clone();
            async move {
                let (s, _) = e
                    .call_bytes(
                        Method::PUT,
                        &format!("/pages/batch-{round}-{i}"),
                        &[("x-ms-blob-type", "BlockBlob")],
                        Bytes::from_static(b"x"),
                    )
                    .await?;
                if s != 201 {
                    bail!("put blob: {s}");
                }
                Ok(1)
            }
        })
        .await;
        if made.ops < BATCH as u64 {
            bail!("{}: made only {} blobs for a batch", ep.name, made.ops);
        }
        let boundary = format!("batch_{round}");
        let host = ep
            .base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        let account = conformance_tests::DEV_ACCOUNT;
        let key = conformance_tests::DEV_KEY;
        let version = [("x-ms-version", "2025-11-05")];
        // Shared Key, outer request and each subrequest: Azurite 3.37.0 answers 500 to a
        // batch authorized by a SAS.
        let mut body = String::new();
        for i in 0..BATCH {
            let path = format!("/{account}/pages/batch-{round}-{i}");
            let url = format!("http://{host}{path}");
            let signed =
                conformance_tests::shared_key::sign(account, key, "DELETE", &url, &version, 0);
            body.push_str(&format!(
                "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {i}\r\n\r\nDELETE {path} HTTP/1.1\r\nx-ms-version: 2025-11-05\r\nx-ms-date: {}\r\nAuthorization: {}\r\nContent-Length: 0\r\n\r\n\r\n",
                signed[0].1, signed[1].1
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let content_type = format!("multipart/mixed; boundary={boundary}");
        let url = format!("http://{host}/{account}/pages?restype=container&comp=batch");
        let outer = [
            ("x-ms-version", "2025-11-05"),
            ("content-type", content_type.as_str()),
        ];
        let signed =
            conformance_tests::shared_key::sign(account, key, "POST", &url, &outer, body.len());
        let headers = [
            ("content-type", content_type.as_str()),
            (signed[0].0, signed[0].1.as_str()),
            (signed[1].0, signed[1].1.as_str()),
        ];
        let t = Instant::now();
        let r = ep
            .call_unsigned(
                Method::POST,
                "/pages?restype=container&comp=batch",
                &headers,
                Bytes::from(body),
            )
            .await;
        let took = t.elapsed();
        match r {
            Ok((202, text)) if text.matches("HTTP/1.1 202").count() == BATCH => {
                timed += took;
                lat.push(took.as_micros() as u64);
            }
            _ => errors += 1,
        }
    }
    lat.sort_unstable();
    Ok(Stats {
        ops: lat.len() as u64,
        per_sec: lat.len() as f64 / timed.as_secs_f64().max(1e-9),
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        errors,
    })
}
