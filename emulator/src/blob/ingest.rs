//! What a handler tells the store about incoming bytes: the size limit, the checksums the
//! client sent (request body or copy source range), and which checksums to compute. The
//! streaming itself is the store's (`BlobStore::receive`).

use crate::http::body::{Body, ByteStream};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::state::Ctx;
use crate::store::blob::{Checksums, ChunkSource, Expect, Received};
use base64::Engine;
use bytes::Bytes;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl ChunkSource for ByteStream {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>>> + Send {
        self.next()
    }
}

fn header<'a>(ctx: &'a Ctx<'_>, name: &str) -> Option<&'a str> {
    ctx.req.header(name).filter(|v| !v.is_empty())
}

pub fn decode_md5(name: &str, v: &str) -> Result<Vec<u8>> {
    match B64.decode(v.trim()) {
        Ok(b) if b.len() == 16 => Ok(b),
        _ => Err(StorageError::new(ErrorCode::InvalidMd5)
            .with_detail("HeaderName", name)
            .with_detail("HeaderValue", v)),
    }
}

fn expect(ctx: &Ctx<'_>, md5_header: &str, crc_header: &str) -> Result<Expect> {
    let md5 = header(ctx, md5_header)
        .map(|v| decode_md5(md5_header, v))
        .transpose()?;
    let crc64 = match header(ctx, crc_header) {
        Some(v) => match B64.decode(v.trim()) {
            Ok(b) if b.len() == 8 => Some(b),
            _ => return Err(StorageError::invalid_header(crc_header, v)),
        },
        None => None,
    };
    Ok(Expect { md5, crc64 })
}

/// `Content-MD5` or `x-ms-content-crc64` of a request body: not both (400, as the Put
/// Block and Append Block pages say).
pub fn request_checks(ctx: &Ctx<'_>) -> Result<Expect> {
    let e = expect(ctx, "content-md5", "x-ms-content-crc64")?;
    if e.md5.is_some() && e.crc64.is_some() {
        return Err(StorageError::invalid_header(
            "x-ms-content-crc64",
            ctx.req.header("x-ms-content-crc64").unwrap_or_default(),
        )
        .with_message("Content-MD5 and x-ms-content-crc64 cannot both be specified."));
    }
    Ok(e)
}

/// `x-ms-source-content-md5` and `x-ms-source-content-crc64` of a copy source's range.
pub fn source_checks(ctx: &Ctx<'_>) -> Result<Expect> {
    expect(ctx, "x-ms-source-content-md5", "x-ms-source-content-crc64")
}

/// The request's Content-Length, if it sent one.
pub fn declared_length(ctx: &Ctx<'_>) -> Result<Option<u64>> {
    match ctx.req.header("content-length") {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| StorageError::invalid_header("Content-Length", v)),
        None => Ok(None),
    }
}

/// A From-URL request sends no body: Content-Length must be 0 when given.
pub fn refuse_body(ctx: &Ctx<'_>) -> Result<()> {
    match declared_length(ctx)? {
        Some(len) if len != 0 => Err(StorageError::invalid_header(
            "Content-Length",
            &len.to_string(),
        )),
        _ => Ok(()),
    }
}

pub fn too_large(max: u64) -> StorageError {
    StorageError::new(ErrorCode::RequestBodyTooLarge).with_detail("MaxLimit", max.to_string())
}

/// What a block write computes: the CRC64 it answers with, or the MD5 when the client
/// sent one.
pub fn block_checksums(expect: &Expect) -> Checksums {
    Checksums {
        md5: expect.md5.is_some(),
        crc64: expect.md5.is_none() || expect.crc64.is_some(),
    }
}

/// The checksum a block write answers with: the MD5 when the client sent one
/// (`sent_md5`), else Azure's CRC64.
pub fn checksum_header(
    reply: &mut crate::http::response::Reply,
    received: &Received,
    sent_md5: bool,
) {
    if sent_md5 || received.crc64().is_none() {
        if let Some(md5) = received.md5() {
            reply.set("content-md5", B64.encode(md5));
        }
    }
    if let Some(crc) = received.crc64() {
        if !sent_md5 {
            reply.set("x-ms-content-crc64", B64.encode(crc));
        }
    }
}

/// Streams the request body into the store, refusing a declared length over `max` before
/// reading anything and checking the transactional Content-MD5 / CRC64 at the end. Block
/// writes (`block`) answer with a CRC64; Put Blob computes the MD5 it stores.
pub async fn upload(ctx: &Ctx<'_>, body: Body, max: u64, block: bool) -> Result<Received> {
    if declared_length(ctx)?.is_some_and(|l| l > max) {
        return Err(too_large(max));
    }
    let expect = request_checks(ctx)?;
    let checksums = if block {
        block_checksums(&expect)
    } else {
        Checksums {
            md5: true,
            crc64: false,
        }
    };
    ctx.app
        .store
        .blobs
        .receive(&mut ByteStream::Request(body), max, checksums, &expect)
        .await
}
