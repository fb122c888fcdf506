"""Block blobs through Put Blob / Get Blob: content, properties, metadata, MD5, ranges,
chunked uploads and parallel downloads, conditional requests, delete, missing resources."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContentSettings

from blob_helpers import (
    assert_raw_error,
    bpath,
    content_range,
    expect_error,
    md5_b64,
    put_blob,
    random_bytes,
    sha256,
    unique_name,
)

# --------------------------------------------------------------------------------------
# Put Blob / Get Blob basics


def test_upload_and_download_small(container, braw):
    blob = container.upload_blob("small.txt", b"hello, blob")
    assert blob.download_blob().readall() == b"hello, blob"
    props = blob.get_blob_properties()
    assert props.size == 11
    assert props.blob_type == "BlockBlob"
    assert props.content_settings.content_type == "application/octet-stream"

    r = braw.get(bpath(container.container_name, "small.txt"))
    assert r.status == 200, r
    assert r.body == b"hello, blob"
    assert r.headers.get("Content-Length") == "11"
    assert r.headers.get("x-ms-blob-type") == "BlockBlob"
    assert r.headers.get("Accept-Ranges") == "bytes"
    assert r.headers.get("ETag") == props.etag
    assert r.headers.get("x-ms-creation-time", "").endswith("GMT"), r
    assert r.headers.get("x-ms-lease-state") == "available"


def test_put_blob_raw_response_headers(container, braw):
    data = b"raw put blob body"
    r = put_blob(braw, container.container_name, "raw.bin", data)
    assert r.status == 201, r
    assert r.headers.get("Content-MD5") == md5_b64(data), r
    assert r.headers.get("ETag", "").startswith('"'), r
    assert r.headers.get("Last-Modified", "").endswith("GMT"), r
    assert r.headers.get("x-ms-request-server-encrypted") == "true", r
    assert r.headers.get("Content-Length") == "0", r
    # the service-computed MD5 is stored and returned on reads
    g = braw.get(bpath(container.container_name, "raw.bin"))
    assert g.headers.get("Content-MD5") == md5_b64(data), g
    h = braw.head(bpath(container.container_name, "raw.bin"))
    assert h.status == 200 and h.body == b"", h
    assert h.headers.get("Content-Length") == str(len(data)), "HEAD carries the blob's length"
    assert h.headers.get("Content-MD5") == md5_b64(data), h


def test_empty_blob(container, braw):
    blob = container.upload_blob("empty", b"")
    assert blob.get_blob_properties().size == 0
    assert blob.download_blob().readall() == b""
    r = braw.get(bpath(container.container_name, "empty"))
    assert r.status == 200, r
    assert r.body == b"" and r.headers.get("Content-Length") == "0", r


def test_content_settings_round_trip(container, braw):
    cs = ContentSettings(
        content_type="text/plain; charset=utf-8",
        content_encoding="identity",
        content_language="de-CH",
        content_disposition='attachment; filename="x.txt"',
        cache_control="max-age=60",
    )
    blob = container.upload_blob("cs.txt", b"content", content_settings=cs)
    got = blob.get_blob_properties().content_settings
    assert got.content_type == cs.content_type
    assert got.content_encoding == cs.content_encoding
    assert got.content_language == cs.content_language
    assert got.content_disposition == cs.content_disposition
    assert got.cache_control == cs.cache_control
    r = braw.get(bpath(container.container_name, "cs.txt"))
    assert r.headers.get("Content-Type") == cs.content_type, r
    assert r.headers.get("Content-Encoding") == "identity", r
    assert r.headers.get("Content-Language") == "de-CH", r
    assert r.headers.get("Content-Disposition") == cs.content_disposition, r
    assert r.headers.get("Cache-Control") == "max-age=60", r


def test_put_blob_content_type_from_headers(container, braw):
    # x-ms-blob-content-type wins over Content-Type
    r = put_blob(braw, container.container_name, "ct1", b"x", {"Content-Type": "text/a", "x-ms-blob-content-type": "text/b"})
    assert r.status == 201, r
    r = put_blob(braw, container.container_name, "ct2", b"x", {"Content-Type": "text/a"})
    assert r.status == 201, r
    assert container.get_blob_client("ct1").get_blob_properties().content_settings.content_type == "text/b"
    assert container.get_blob_client("ct2").get_blob_properties().content_settings.content_type == "text/a"


def test_blob_metadata_round_trip_keeps_case(container, braw):
    blob = container.upload_blob("md", b"x", metadata={"MixedCase": "One", "lower": "two"})
    assert blob.get_blob_properties().metadata == {"MixedCase": "One", "lower": "two"}
    r = braw.head(bpath(container.container_name, "md"))
    names = sorted(k for k in r.headers.keys() if k.lower().startswith("x-ms-meta-"))
    assert names == ["x-ms-meta-MixedCase", "x-ms-meta-lower"], r


def test_overwrite_false_on_existing_blob(container, braw):
    blob = container.upload_blob("exists", b"first")
    err = expect_error(lambda: blob.upload_blob(b"second", overwrite=False), 409, "BlobAlreadyExists")
    assert isinstance(err, ResourceExistsError)
    assert blob.download_blob().readall() == b"first"
    r = put_blob(braw, container.container_name, "exists", b"third", {"If-None-Match": "*"})
    assert_raw_error(r, 409, "BlobAlreadyExists")
    # overwrite=True replaces
    blob.upload_blob(b"fourth", overwrite=True)
    assert blob.download_blob().readall() == b"fourth"


def test_put_blob_overwrite_replaces_properties_and_metadata(container):
    blob = container.upload_blob(
        "ow", b"one", metadata={"a": "1"}, content_settings=ContentSettings(content_type="text/one")
    )
    blob.upload_blob(b"two!", overwrite=True)
    props = blob.get_blob_properties()
    assert props.size == 4
    assert props.metadata == {}
    assert props.content_settings.content_type == "application/octet-stream"


def test_content_md5_mismatch_rejected(container, braw):
    r = put_blob(braw, container.container_name, "md5", b"payload", {"Content-MD5": md5_b64(b"other")})
    assert_raw_error(r, 400, "Md5Mismatch")
    assert not container.get_blob_client("md5").exists()
    ok = put_blob(braw, container.container_name, "md5", b"payload", {"Content-MD5": md5_b64(b"payload")})
    assert ok.status == 201, ok
    assert ok.headers.get("Content-MD5") == md5_b64(b"payload")


def test_blob_content_md5_header_is_stored(container, braw):
    # x-ms-blob-content-md5 is the MD5 property to store (checked against the body on Put Blob)
    data = b"stored md5"
    r = put_blob(braw, container.container_name, "bmd5", data, {"x-ms-blob-content-md5": md5_b64(data)})
    assert r.status == 201, r
    props = container.get_blob_client("bmd5").get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(data).digest()


def _malformed(container, braw, case):
    cname = container.container_name
    container.upload_blob("exists", b"x")
    octet = {"Content-Type": "application/octet-stream"}
    if case == "missing-blob-type":
        return braw.put(bpath(cname, "notype"), headers=octet, body=b"x")
    if case == "unknown-blob-type":
        return braw.put(bpath(cname, "badtype"), headers={**octet, "x-ms-blob-type": "FancyBlob"}, body=b"x")
    if case == "unknown-include":
        return braw.get(cname, {"restype": "container", "comp": "list", "include": "bogus"})
    if case == "malformed-block-list":
        return braw.put(bpath(cname, "exists"), {"comp": "blocklist"}, body="<BlockList><Latest>")
    if case == "unknown-blocklisttype":
        return braw.get(bpath(cname, "exists"), {"comp": "blocklist", "blocklisttype": "bogus"})
    if case == "unknown-lease-action":
        return braw.put(bpath(cname, "exists"), {"comp": "lease"}, headers={"x-ms-lease-action": "bogus"})
    raise AssertionError(case)


MALFORMED = {
    "missing-blob-type": "MissingRequiredHeader",
    "unknown-blob-type": "InvalidHeaderValue",
    "unknown-include": "InvalidQueryParameterValue",
    "malformed-block-list": "InvalidXmlDocument",
    "unknown-blocklisttype": "InvalidQueryParameterValue",
    "unknown-lease-action": "InvalidHeaderValue",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_400(container, braw, case):
    r = _malformed(container, braw, case)
    assert r.status == 400, r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 answers these malformed requests with a bare 400 (no body, no x-ms-error-code, no "
    "x-ms-request-id). https://learn.microsoft.com/rest/api/storageservices/put-blob marks x-ms-blob-type "
    "'Required' with the values BlockBlob, PageBlob, AppendBlob; "
    "https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes lists MissingRequiredHeader, "
    "InvalidHeaderValue, InvalidQueryParameterValue and InvalidXmlDocument (all 400) for exactly these cases, and "
    "https://learn.microsoft.com/rest/api/storageservices/status-and-error-codes2 says error responses carry the "
    "code in the body and in x-ms-error-code."
)
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_error_codes(container, braw, case):
    assert_raw_error(_malformed(container, braw, case), 400, MALFORMED[case])


def test_invalid_content_md5_value(container, braw):
    r = put_blob(braw, container.container_name, "badmd5", b"x", {"Content-MD5": "notmd5"})
    assert_raw_error(r, 400, "InvalidMd5")


# --------------------------------------------------------------------------------------
# chunked uploads and parallel downloads


def _client(target, container_name, blob_name, **kw) -> BlobClient:
    return BlobClient.from_connection_string(target.connection_string, container_name, blob_name, **kw)


def test_chunked_upload_small_blocks(blob_target, container):
    data = random_bytes(300 * 1024 + 123)
    client = _client(blob_target, container.container_name, "chunked.bin", max_single_put_size=1024, max_block_size=1024)
    client.upload_blob(data, max_concurrency=4)
    committed, uncommitted = client.get_block_list("all")
    assert uncommitted == []
    assert len(committed) == 301
    assert [b.size for b in committed] == [1024] * 300 + [123]
    assert len({b.id for b in committed}) == 301
    assert sha256(client.download_blob().readall()) == sha256(data)
    props = client.get_blob_properties()
    assert props.size == len(data)
    # Put Block List does not compute a whole-blob MD5 (none was supplied)
    assert props.content_settings.content_md5 is None


def test_parallel_ranged_download(blob_target, container):
    data = random_bytes(256 * 1024 + 7)
    container.upload_blob("big.bin", data)
    client = _client(blob_target, container.container_name, "big.bin", max_single_get_size=2048, max_chunk_get_size=2048)
    assert sha256(client.download_blob(max_concurrency=4).readall()) == sha256(data)
    # a window in the middle, downloaded in parallel chunks too
    part = client.download_blob(offset=10_000, length=50_000, max_concurrency=4).readall()
    assert part == data[10_000:60_000]
    # readinto / chunks iterate in order
    chunks = list(client.download_blob(max_concurrency=1).chunks())
    assert len(chunks) > 1 and b"".join(chunks) == data


# --------------------------------------------------------------------------------------
# Range reads


@pytest.fixture
def hundred(container, braw):
    data = bytes(range(100))
    container.upload_blob("hundred", data)
    return container.container_name, data


@pytest.mark.parametrize(
    "header,value,start,end",
    [
        ("Range", "bytes=10-19", 10, 19),
        ("x-ms-range", "bytes=10-19", 10, 19),
        ("Range", "bytes=90-", 90, 99),
        ("Range", "bytes=95-200", 95, 99),
        ("Range", "bytes=0-0", 0, 0),
    ],
)
def test_range_read_206(braw, hundred, header, value, start, end):
    cname, data = hundred
    r = braw.get(bpath(cname, "hundred"), headers={header: value})
    assert r.status == 206, r
    assert content_range(r) == (start, end, 100)
    assert r.headers.get("Content-Length") == str(end - start + 1)
    assert r.body == data[start : end + 1]


def test_x_ms_range_wins_over_range(braw, hundred):
    cname, data = hundred
    r = braw.get(bpath(cname, "hundred"), headers={"Range": "bytes=0-9", "x-ms-range": "bytes=20-29"})
    assert r.status == 206, r
    assert content_range(r) == (20, 29, 100)
    assert r.body == data[20:30]


@pytest.mark.parametrize("value", ["bytes=101-", "bytes=150-160", "bytes=1000-"])
def test_range_past_end_416(braw, hundred, value):
    cname, _ = hundred
    r = braw.get(bpath(cname, "hundred"), headers={"x-ms-range": value})
    assert_raw_error(r, 416, "InvalidRange")
    assert r.headers.get("Content-Range") == "bytes */100", r


def test_range_past_end_of_empty_blob_416(container, braw):
    container.upload_blob("zero", b"")
    r = braw.get(bpath(container.container_name, "zero"), headers={"x-ms-range": "bytes=1-"})
    assert_raw_error(r, 416, "InvalidRange")
    assert r.headers.get("Content-Range") == "bytes */0", r


RANGE_AT_END_REASON = (
    "Azurite 3.37.0 answers a range starting exactly at the blob's size (including bytes=0- on an empty blob) with "
    "206 and an impossible `Content-Range: bytes 100-99/100` (`bytes 0--1/0`). "
    "https://learn.microsoft.com/rest/api/storageservices/specifying-the-range-header-for-blob-service-operations: "
    "'If the offset is valid and doesn't exceed the blob's total length, the request returns status code 206 "
    "(Partial Content). If the offset is invalid and exceeds the blob's total length, the request returns status "
    "code 416 (Requested Range Not Satisfiable)' (offsets are zero-based, so offset == length is past the last byte)."
)


@pytest.mark.azurite_deviation(reason=RANGE_AT_END_REASON)
@pytest.mark.parametrize("value", ["bytes=100-", "bytes=100-150"])
def test_range_starting_at_size_416(braw, hundred, value):
    cname, _ = hundred
    r = braw.get(bpath(cname, "hundred"), headers={"x-ms-range": value})
    assert_raw_error(r, 416, "InvalidRange")
    assert r.headers.get("Content-Range") == "bytes */100", r


@pytest.mark.azurite_deviation(reason=RANGE_AT_END_REASON)
def test_range_on_empty_blob_416(container, braw):
    container.upload_blob("zero", b"")
    r = braw.get(bpath(container.container_name, "zero"), headers={"x-ms-range": "bytes=0-"})
    assert_raw_error(r, 416, "InvalidRange")
    assert r.headers.get("Content-Range") == "bytes */0", r


def test_range_get_content_md5(braw, hundred):
    cname, data = hundred
    r = braw.get(bpath(cname, "hundred"), headers={"x-ms-range": "bytes=0-49", "x-ms-range-get-content-md5": "true"})
    assert r.status == 206, r
    assert r.headers.get("Content-MD5") == md5_b64(data[:50]), r


# --------------------------------------------------------------------------------------
# Set Blob Properties / Metadata


def test_set_blob_properties_replaces_all_content_headers(container, braw):
    blob = container.upload_blob(
        "props",
        b"x",
        content_settings=ContentSettings(
            content_type="text/old", content_language="en", cache_control="no-cache", content_disposition="inline"
        ),
        metadata={"keep": "me"},
    )
    r = braw.put(bpath(container.container_name, "props"), {"comp": "properties"}, headers={"x-ms-blob-content-type": "text/new"})
    assert r.status == 200, r
    assert r.headers.get("ETag"), r
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "text/new"
    assert props.content_settings.content_language is None
    assert props.content_settings.cache_control is None
    assert props.content_settings.content_disposition is None
    assert props.metadata == {"keep": "me"}, "Set Blob Properties does not touch metadata"
    assert blob.download_blob().readall() == b"x"


def test_set_http_headers_sdk(container):
    blob = container.upload_blob("h", b"x", content_settings=ContentSettings(content_language="fr"))
    blob.set_http_headers(ContentSettings(content_type="application/json"))
    cs = blob.get_blob_properties().content_settings
    assert cs.content_type == "application/json"
    assert cs.content_language is None


def test_get_set_blob_metadata(container, braw):
    blob = container.upload_blob("meta", b"x", metadata={"one": "1"})
    etag = blob.get_blob_properties().etag
    blob.set_blob_metadata({"Two": "2", "three": "3"})
    props = blob.get_blob_properties()
    assert props.metadata == {"Two": "2", "three": "3"}
    assert props.etag != etag
    r = braw.get(bpath(container.container_name, "meta"), {"comp": "metadata"})
    assert r.status == 200, r
    assert r.headers.get("x-ms-meta-Two") == "2", r
    assert "x-ms-meta-one" not in r.headers
    w = braw.put(bpath(container.container_name, "meta"), {"comp": "metadata"})
    assert w.status == 200, w
    assert blob.get_blob_properties().metadata == {}


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 serves GET ?comp=metadata as Get Blob: it returns the blob's content as the body. "
    "https://learn.microsoft.com/rest/api/storageservices/get-blob-metadata: 'Response body: None.'"
)
def test_get_blob_metadata_has_no_body(container, braw):
    container.upload_blob("meta", b"content that must not come back", metadata={"k": "v"})
    r = braw.get(bpath(container.container_name, "meta"), {"comp": "metadata"})
    assert r.status == 200, r
    assert r.headers.get("x-ms-meta-k") == "v", r
    assert r.body == b"", r


# --------------------------------------------------------------------------------------
# conditional requests


@pytest.fixture
def cond_blob(container, braw):
    blob = container.upload_blob("cond", b"conditional")
    props = blob.get_blob_properties()
    return container.container_name, props.etag, props.last_modified


def _http_date(t: dt.datetime) -> str:
    return format_datetime(t.astimezone(dt.timezone.utc), usegmt=True)


def test_if_match_and_if_none_match_on_get(braw, cond_blob):
    cname, etag, _ = cond_blob
    path = bpath(cname, "cond")
    assert braw.get(path, headers={"If-Match": etag}).status == 200
    assert braw.get(path, headers={"If-Match": "*"}).status == 200
    assert_raw_error(braw.get(path, headers={"If-Match": '"0x8D000000000DEAD"'}), 412, "ConditionNotMet")
    r = braw.get(path, headers={"If-None-Match": etag})
    assert r.status == 304, r
    assert r.body == b""
    assert r.error_code == "ConditionNotMet", r
    assert braw.get(path, headers={"If-None-Match": '"0x8D000000000DEAD"'}).status == 200


def test_if_modified_since_on_get_and_write(braw, cond_blob):
    cname, etag, last_modified = cond_blob
    path = bpath(cname, "cond")
    later = _http_date(last_modified + dt.timedelta(seconds=1))
    earlier = _http_date(last_modified - dt.timedelta(seconds=60))
    same = _http_date(last_modified)
    # GET: not modified since -> 304
    r = braw.get(path, headers={"If-Modified-Since": later})
    assert r.status == 304, r
    assert braw.get(path, headers={"If-Modified-Since": same}).status == 304, "second precision: equal is not modified"
    assert braw.get(path, headers={"If-Modified-Since": earlier}).status == 200
    # GET: If-Unmodified-Since in the past -> 412
    assert_raw_error(braw.get(path, headers={"If-Unmodified-Since": earlier}), 412, "ConditionNotMet")
    # writes: any failing condition is 412
    assert_raw_error(
        put_blob(braw, cname, "cond", b"new", {"If-Modified-Since": later}), 412, "ConditionNotMet"
    )
    assert_raw_error(put_blob(braw, cname, "cond", b"new", {"If-Match": '"0x8D000000000DEAD"'}), 412, "ConditionNotMet")
    assert_raw_error(
        braw.put(path, {"comp": "metadata"}, headers={"If-Unmodified-Since": earlier}), 412, "ConditionNotMet"
    )
    assert_raw_error(braw.delete(path, headers={"If-None-Match": etag}), 412, "ConditionNotMet")
    # a passing condition writes
    assert put_blob(braw, cname, "cond", b"new", {"If-Match": etag}).status == 201


def test_head_conditional_304_and_412(braw, cond_blob):
    cname, etag, _ = cond_blob
    path = bpath(cname, "cond")
    r = braw.head(path, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b"", r
    assert_raw_error(braw.head(path, headers={"If-Match": '"nope"'}), 412, "ConditionNotMet", head=True)


@pytest.mark.parametrize("etag", ['"0x8D000000000DEAD"', "*"])
def test_if_match_on_missing_blob_write(container, braw, etag):
    r = put_blob(braw, container.container_name, "never", b"x", {"If-Match": etag})
    assert_raw_error(r, 412, "ConditionNotMet")
    assert not container.get_blob_client("never").exists()


def test_sdk_conditions(container):
    blob = container.upload_blob("sdkcond", b"v1")
    etag = blob.get_blob_properties().etag
    blob.upload_blob(b"v2", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        blob.upload_blob(b"v3", overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        blob.set_blob_metadata({"a": "b"}, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert blob.download_blob().readall() == b"v2"


# --------------------------------------------------------------------------------------
# delete and missing resources


def test_delete_blob_202_then_404(container, braw):
    container.upload_blob("doomed", b"x")
    path = bpath(container.container_name, "doomed")
    r = braw.delete(path)
    assert r.status == 202, r
    assert_raw_error(braw.delete(path), 404, "BlobNotFound")
    assert_raw_error(braw.get(path), 404, "BlobNotFound")
    assert not container.get_blob_client("doomed").exists()


def test_head_missing_blob(container, braw):
    r = braw.head(bpath(container.container_name, "ghost"))
    assert_raw_error(r, 404, "BlobNotFound", head=True)
    err = expect_error(container.get_blob_client("ghost").get_blob_properties, 404, "BlobNotFound")
    assert isinstance(err, ResourceNotFoundError)


@pytest.mark.parametrize("op", ["get", "head", "put", "delete", "metadata", "list"])
def test_missing_container_on_blob_ops(braw, op):
    cname = unique_name("gone")
    path = bpath(cname, "blob")
    r = {
        "get": lambda: braw.get(path),
        "head": lambda: braw.head(path),
        "put": lambda: put_blob(braw, cname, "blob", b"x"),
        "delete": lambda: braw.delete(path),
        "metadata": lambda: braw.get(path, {"comp": "metadata"}),
        "list": lambda: braw.get(cname, {"restype": "container", "comp": "list"}),
    }[op]()
    assert_raw_error(r, 404, "ContainerNotFound", head=(op == "head"))


def test_sdk_missing_container_upload(bsc):
    blob = bsc.get_blob_client(unique_name("gone"), "b")
    expect_error(lambda: blob.upload_blob(b"x"), 404, "ContainerNotFound")
    assert not blob.exists()


def test_without_versioning_writes_name_no_version(container):
    """Versioning is off by default, as in Azure: writes answer no x-ms-version-id."""
    b = container.get_blob_client("plain")
    assert b.upload_blob(b"x").get("version_id") is None
    assert b.get_blob_properties().version_id is None
