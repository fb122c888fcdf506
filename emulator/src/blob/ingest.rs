//! Bytes into the store: one loop for request bodies and copy sources alike, with the size
//! limit and the checksums the client asked to have verified. A refused or failed body
//! leaves nothing behind.

use crate::http::body::{Body, ByteStream};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::state::Ctx;
use crate::store::extents::{Checksums, Upload, Uploaded};
use base64::Engine;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Checksums the client sent for the bytes (request body or copy source range).
#[derive(Debug, Default)]
pub struct Expect {
    pub md5: Option<Vec<u8>>,
    pub crc64: Option<Vec<u8>>,
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

/// `Content-MD5` and `x-ms-content-crc64` of a request body.
pub fn request_checks(ctx: &Ctx<'_>) -> Result<Expect> {
    expect(ctx, "content-md5", "x-ms-content-crc64")
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

fn too_large(max: u64) -> StorageError {
    StorageError::new(ErrorCode::RequestBodyTooLarge).with_detail("MaxLimit", max.to_string())
}

/// What a block write computes: the CRC64 it answers with, or the MD5 when the client
/// sent one (`expect`); other writes compute the MD5 that Azure stores or returns.
pub fn block_checksums(expect: &Expect) -> Checksums {
    Checksums {
        md5: expect.md5.is_some(),
        crc64: expect.md5.is_none() || expect.crc64.is_some(),
    }
}

/// Streams bytes into the store, computing `checksums` and whatever `expect` needs.
pub async fn receive(
    ctx: &Ctx<'_>,
    stream: &mut ByteStream,
    max: u64,
    checksums: Checksums,
    expect: &Expect,
) -> Result<Uploaded> {
    let store = &ctx.app.store;
    let extents = store.extents().clone();
    let checksums = Checksums {
        md5: checksums.md5 || expect.md5.is_some(),
        crc64: checksums.crc64 || expect.crc64.is_some(),
    };
    let mut up = Upload::new(store.new_data_id()?, checksums);
    let mut total = 0u64;
    loop {
        let chunk = match stream.next().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                up.abandon(&extents);
                return Err(e);
            }
        };
        total += chunk.len() as u64;
        if total > max {
            up.abandon(&extents);
            return Err(too_large(max));
        }
        if let Err(e) = up.push(&extents, chunk).await {
            up.abandon(&extents);
            return Err(e);
        }
    }
    let uploaded = up.finish(&extents).await?;
    if let (Some(expected), Some(got)) = (&expect.crc64, uploaded.crc64) {
        if expected.as_slice() != got {
            store.discard(&uploaded);
            return Err(StorageError::new(ErrorCode::Crc64Mismatch)
                .with_detail("UserSpecifiedCrc64", B64.encode(expected))
                .with_detail("ServerCalculatedCrc64", B64.encode(got)));
        }
    }
    if let Some(expected) = &expect.md5 {
        let got = uploaded.md5.unwrap_or_default();
        if expected.as_slice() != got {
            store.discard(&uploaded);
            return Err(StorageError::new(ErrorCode::Md5Mismatch)
                .with_detail("UserSpecifiedMd5", B64.encode(expected))
                .with_detail("ServerCalculatedMd5", B64.encode(got)));
        }
    }
    Ok(uploaded)
}

/// Streams the request body into the store, refusing a declared length over `max` before
/// reading anything, and checking the transactional Content-MD5 / CRC64 at the end.
pub async fn upload(ctx: &Ctx<'_>, body: Body, max: u64, want_crc64: bool) -> Result<Uploaded> {
    if declared_length(ctx)?.is_some_and(|l| l > max) {
        return Err(too_large(max));
    }
    let expect = request_checks(ctx)?;
    let checksums = if want_crc64 {
        block_checksums(&expect)
    } else {
        Checksums {
            md5: true,
            crc64: false,
        }
    };
    receive(ctx, &mut ByteStream::Request(body), max, checksums, &expect).await
}
