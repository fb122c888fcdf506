"""Copy Blob within the account, and append blobs (Append Block, conditions, Seal)."""

from __future__ import annotations

import re

import pytest

from azure.storage.blob import ContentSettings

from blob_helpers import assert_raw_error, bpath, expect_error, md5_b64, put_blob

# --------------------------------------------------------------------------------------
# Copy Blob


def test_copy_blob_sdk(container):
    src = container.upload_blob(
        "src", b"copy me", metadata={"Origin": "src"}, content_settings=ContentSettings(content_type="text/src", content_language="en")
    )
    dst = container.get_blob_client("dst")
    result = dst.start_copy_from_url(src.url)
    assert result["copy_status"] == "success"
    assert result["copy_id"]
    props = dst.get_blob_properties()
    assert props.copy.status == "success"
    assert props.copy.id == result["copy_id"]
    assert props.copy.source and props.copy.source.endswith("/src")
    assert props.copy.progress == "7/7"
    assert props.copy.completion_time is not None
    assert props.metadata == {"Origin": "src"}
    assert props.content_settings.content_type == "text/src"
    assert props.content_settings.content_language == "en"
    assert props.size == 7
    assert dst.download_blob().readall() == b"copy me"
    # the source is untouched and carries no copy properties
    assert src.get_blob_properties().copy.status is None


def test_copy_blob_raw_and_metadata_override(container, braw):
    container.upload_blob("src", b"abc", metadata={"old": "1"})
    source_url = f"{braw.endpoint}/{bpath(container.container_name, 'src')}"
    r = braw.put(bpath(container.container_name, "dst"), headers={"x-ms-copy-source": source_url, "x-ms-meta-New": "2"})
    assert r.status == 202, r
    assert r.headers.get("x-ms-copy-status") == "success", r
    assert re.match(r"^[0-9a-f-]{36}$", r.headers.get("x-ms-copy-id", "")), r
    assert r.headers.get("ETag") and r.headers.get("Last-Modified"), r
    g = braw.get(bpath(container.container_name, "dst"))
    assert g.body == b"abc"
    assert g.headers.get("x-ms-copy-status") == "success", g
    assert g.headers.get("x-ms-copy-progress") == "3/3", g
    assert g.headers.get("x-ms-copy-id") == r.headers["x-ms-copy-id"]
    assert g.headers.get("x-ms-meta-New") == "2" and "x-ms-meta-old" not in g.headers, g
    assert g.headers.get("Content-MD5") == md5_b64(b"abc"), "Content-MD5 is copied"


def test_copy_from_snapshot_and_overwrite(container):
    src = container.upload_blob("src", b"first")
    snap = src.create_snapshot()["snapshot"]
    src.upload_blob(b"second", overwrite=True)
    dst = container.upload_blob("dst", b"to be replaced")
    dst.start_copy_from_url(f"{src.url}?snapshot={snap}")
    assert dst.download_blob().readall() == b"first"


def test_copy_missing_source(container, braw):
    source_url = f"{braw.endpoint}/{bpath(container.container_name, 'missing')}"
    r = braw.put(bpath(container.container_name, "dst"), headers={"x-ms-copy-source": source_url})
    assert_raw_error(r, 404, "BlobNotFound")


def test_copy_onto_existing_with_if_none_match_star(container, braw):
    container.upload_blob("src", b"x")
    container.upload_blob("dst", b"y")
    source_url = f"{braw.endpoint}/{bpath(container.container_name, 'src')}"
    r = braw.put(bpath(container.container_name, "dst"), headers={"x-ms-copy-source": source_url, "If-None-Match": "*"})
    assert_raw_error(r, 409, "BlobAlreadyExists")


# --------------------------------------------------------------------------------------
# append blobs


def _append(braw, cname, blob, data, **headers):
    return braw.put(
        bpath(cname, blob), {"comp": "appendblock"}, headers={"Content-Type": "application/octet-stream", **headers}, body=data
    )


def test_put_block_without_md5_answers_with_crc64(container, braw):
    # The emulator computes MD5 for block writes only when the request carried one.
    r = braw.put(bpath(container.container_name, "staged"), {"comp": "block", "blockid": "YmxvY2sx"}, body=b"first block")
    assert r.status == 201, r
    assert r.headers.get("x-ms-content-crc64"), r
    assert not r.headers.get("Content-MD5"), r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 answers a Put Block that carried Content-MD5 without any Content-MD5 "
    "header. https://learn.microsoft.com/rest/api/storageservices/put-block says of the response's "
    "Content-MD5: 'For version 2019-02-02 and later, this header is returned only when the "
    "request has this header.'"
)
def test_put_block_with_md5_answers_with_it(container, braw):
    r = braw.put(
        bpath(container.container_name, "staged"),
        {"comp": "block", "blockid": "YmxvY2sy"},
        headers={"Content-MD5": md5_b64(b"second")},
        body=b"second",
    )
    assert r.status == 201, r
    assert r.headers.get("Content-MD5") == md5_b64(b"second"), r
    assert not r.headers.get("x-ms-content-crc64"), r


def test_create_append_blob_raw(container, braw):
    r = braw.put(bpath(container.container_name, "ap"), headers={"x-ms-blob-type": "AppendBlob"})
    assert r.status == 201, r
    assert r.headers.get("ETag"), r
    props = container.get_blob_client("ap").get_blob_properties()
    assert props.blob_type == "AppendBlob" and props.size == 0


def test_append_blocks_offsets_and_count(container, braw):
    cname = container.container_name
    container.get_blob_client("log").create_append_blob()
    r1 = _append(braw, cname, "log", b"hello ")
    assert r1.status == 201, r1
    assert r1.headers.get("x-ms-blob-append-offset") == "0", r1
    assert r1.headers.get("x-ms-blob-committed-block-count") == "1", r1
    # no Content-MD5 sent: the service returns its CRC64 of the block instead
    assert r1.headers.get("x-ms-content-crc64"), r1
    assert r1.headers.get("ETag") and r1.headers.get("Last-Modified"), r1
    r2 = _append(braw, cname, "log", b"world", **{"Content-MD5": md5_b64(b"world")})
    assert r2.status == 201, r2
    assert r2.headers.get("Content-MD5") == md5_b64(b"world"), r2
    assert r2.headers.get("x-ms-blob-append-offset") == "6", r2
    assert r2.headers.get("x-ms-blob-committed-block-count") == "2", r2
    g = braw.get(bpath(cname, "log"))
    assert g.body == b"hello world"
    assert g.headers.get("x-ms-blob-type") == "AppendBlob"
    assert g.headers.get("x-ms-blob-committed-block-count") == "2", g
    blob = container.get_blob_client("log")
    blob.append_block(b"!")
    assert blob.download_blob().readall() == b"hello world!"


def test_append_position_condition(container, braw):
    cname = container.container_name
    blob = container.get_blob_client("pos")
    blob.create_append_blob()
    blob.append_block(b"1234")
    assert_raw_error(_append(braw, cname, "pos", b"x", **{"x-ms-blob-condition-appendpos": "3"}), 412, "AppendPositionConditionNotMet")
    assert _append(braw, cname, "pos", b"x", **{"x-ms-blob-condition-appendpos": "4"}).status == 201
    expect_error(lambda: blob.append_block(b"y", appendpos_condition=0), 412, "AppendPositionConditionNotMet")


def test_append_maxsize_condition(container, braw):
    cname = container.container_name
    blob = container.get_blob_client("max")
    blob.create_append_blob()
    blob.append_block(b"12345")
    assert_raw_error(_append(braw, cname, "max", b"678", **{"x-ms-blob-condition-maxsize": "7"}), 412, "MaxBlobSizeConditionNotMet")
    assert _append(braw, cname, "max", b"678", **{"x-ms-blob-condition-maxsize": "8"}).status == 201
    assert blob.download_blob().readall() == b"12345678"


def test_seal_append_blob(container, braw):
    cname = container.container_name
    blob = container.get_blob_client("sealed")
    blob.create_append_blob()
    blob.append_block(b"final")
    r = braw.put(bpath(cname, "sealed"), {"comp": "seal"})
    assert r.status == 200, r
    assert r.headers.get("x-ms-blob-sealed") == "true", r
    assert blob.get_blob_properties().is_append_blob_sealed is True
    assert_raw_error(_append(braw, cname, "sealed", b"more"), 409, "BlobIsSealed")
    assert blob.download_blob().readall() == b"final"


def test_append_block_wrong_blob_type(container, braw):
    container.upload_blob("block", b"x")
    assert_raw_error(_append(braw, container.container_name, "block", b"y"), 409, "InvalidBlobType")


def test_put_block_on_append_blob(container, braw):
    container.get_blob_client("ap").create_append_blob()
    r = braw.put(
        bpath(container.container_name, "ap"), {"comp": "block", "blockid": "QUFBQQ=="}, headers={"Content-Type": "application/octet-stream"}, body=b"x"
    )
    assert_raw_error(r, 409, "InvalidBlobType")


def test_append_missing_blob(container, braw):
    assert_raw_error(_append(braw, container.container_name, "none", b"x"), 404, "BlobNotFound")


def test_append_blob_create_overwrites(container):
    blob = container.get_blob_client("ow")
    blob.create_append_blob()
    blob.append_block(b"abc")
    blob.create_append_blob()
    assert blob.get_blob_properties().size == 0


def test_append_blob_put_with_body_rejected(container, braw):
    r = put_blob(braw, container.container_name, "body", b"not allowed", {"x-ms-blob-type": "AppendBlob"})
    assert r.status == 400 and r.error_code, r
    assert not container.get_blob_client("body").exists()


def test_append_empty_block_rejected(container, braw):
    container.get_blob_client("ap").create_append_blob()
    r = _append(braw, container.container_name, "ap", b"")
    assert r.status == 400 and r.error_code, r


def test_append_md5_mismatch(container, braw):
    container.get_blob_client("ap").create_append_blob()
    r = _append(braw, container.container_name, "ap", b"abc", **{"Content-MD5": md5_b64(b"xyz")})
    assert_raw_error(r, 400, "Md5Mismatch")
    assert container.get_blob_client("ap").get_blob_properties().size == 0
