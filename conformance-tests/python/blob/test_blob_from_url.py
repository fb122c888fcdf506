"""The From-URL writes: Put Block From URL (`stage_block_from_url`) and Append Block From
URL (`append_block_from_url`): source ranges, source checksums, source conditions, and the
source's own authorization (a SAS with read permission, or public access).

https://learn.microsoft.com/rest/api/storageservices/put-block-from-url
https://learn.microsoft.com/rest/api/storageservices/append-block-from-url
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobSasPermissions, BlobBlock, generate_blob_sas

from blob_helpers import assert_raw_error, block_id, bpath, code, md5_b64, now, put_blob, random_bytes


def _sas_url(blob_target, blob_client, permission: str) -> str:
    sas = generate_blob_sas(
        blob_target.account_name,
        blob_client.container_name,
        blob_client.blob_name,
        account_key=blob_target.account_key,
        permission=BlobSasPermissions.from_string(permission),
        expiry=now() + dt.timedelta(hours=1),
    )
    return f"{blob_client.url}?{sas}"


@pytest.fixture
def source(container, blob_target):
    data = random_bytes(300_000)
    src = container.upload_blob("source.bin", data)
    return data, src, _sas_url(blob_target, src, "r")


def test_stage_block_from_url_ranges_commit_the_source_bytes(container, source):
    data, _, url = source
    dst = container.get_blob_client("staged.bin")
    ids = []
    for i, (offset, length) in enumerate([(0, 100_000), (100_000, 150_000), (250_000, 50_000)]):
        ids.append(block_id(i))
        dst.stage_block_from_url(ids[-1], url, source_offset=offset, source_length=length)
    listed = dst.get_block_list("uncommitted")[1]
    assert [b.size for b in listed] == [100_000, 150_000, 50_000]
    dst.commit_block_list([BlobBlock(block_id=i) for i in ids])
    got = dst.download_blob().readall()
    assert len(got) == len(data)
    assert got == data


def test_stage_block_from_url_whole_source(container, source):
    data, _, url = source
    dst = container.get_blob_client("whole.bin")
    dst.stage_block_from_url(block_id(0), url)
    dst.commit_block_list([BlobBlock(block_id=block_id(0))])
    assert dst.download_blob().readall() == data


def test_stage_block_from_url_checks_the_source_md5(container, source):
    data, _, url = source
    dst = container.get_blob_client("md5.bin")
    good = hashlib.md5(data[:1000]).digest()
    r = dst.stage_block_from_url(block_id(0), url, source_offset=0, source_length=1000, source_content_md5=good)
    assert r["content_md5"] == good
    with pytest.raises(HttpResponseError) as ei:
        dst.stage_block_from_url(
            block_id(1), url, source_offset=0, source_length=1000, source_content_md5=hashlib.md5(b"other").digest()
        )
    assert ei.value.status_code == 400
    assert code(ei.value) == "Md5Mismatch"
    assert [b.id for b in dst.get_block_list("uncommitted")[1]] == [block_id(0)], "the refused block is not staged"


def test_stage_block_from_url_needs_read_permission_on_the_source(container, source, blob_target):
    _, src, _ = source
    dst = container.get_blob_client("refused.bin")
    with pytest.raises(HttpResponseError) as ei:
        dst.stage_block_from_url(block_id(0), _sas_url(blob_target, src, "w"))
    assert ei.value.status_code == 403
    assert code(ei.value) == "CannotVerifyCopySource"
    # A private source without any SAS is not readable either (the destination's Shared
    # Key does not authorize the source of a From-URL operation).
    with pytest.raises(HttpResponseError) as ei:
        dst.stage_block_from_url(block_id(0), src.url)
    assert code(ei.value) == "CannotVerifyCopySource"
    assert ei.value.status_code in (401, 403, 404)


def test_put_block_from_url_source_conditions(container, source, braw):
    _, src, url = source
    etag = src.get_blob_properties().etag
    path = bpath(container.container_name, "cond.bin")
    ok = braw.put(
        path,
        query={"comp": "block", "blockid": block_id(0)},
        headers={"x-ms-copy-source": url, "x-ms-source-range": "bytes=0-9", "x-ms-source-if-match": etag},
    )
    assert ok.status == 201, ok
    r = braw.put(
        path,
        query={"comp": "block", "blockid": block_id(1)},
        headers={"x-ms-copy-source": url, "x-ms-source-if-match": '"0x8D000000BADBAD0"'},
    )
    assert_raw_error(r, 412, "SourceConditionNotMet")
    r = braw.put(
        path,
        query={"comp": "block", "blockid": block_id(1)},
        headers={"x-ms-copy-source": url, "x-ms-source-if-none-match": etag},
    )
    assert_raw_error(r, 412, "SourceConditionNotMet")


@pytest.mark.azurite_lacks("Append Block From URL")
def test_append_block_from_url(container, source):
    data, _, url = source
    dst = container.get_blob_client("appended.bin")
    dst.create_append_blob()
    r1 = dst.append_block_from_url(url, source_offset=0, source_length=4096)
    assert r1["blob_append_offset"] == "0"
    assert r1["blob_committed_block_count"] == 1
    r2 = dst.append_block_from_url(url, source_offset=4096, source_length=1000, appendpos_condition=4096)
    assert r2["blob_append_offset"] == "4096"
    assert r2["blob_committed_block_count"] == 2
    with pytest.raises(HttpResponseError) as ei:
        dst.append_block_from_url(url, source_offset=0, source_length=10, appendpos_condition=1)
    assert ei.value.status_code == 412
    assert code(ei.value) == "AppendPositionConditionNotMet"
    got = dst.download_blob().readall()
    assert got == data[:5096]


@pytest.mark.azurite_lacks("Append Block From URL")
def test_append_block_from_url_checks_the_source_md5(container, source):
    data, _, url = source
    dst = container.get_blob_client("appended-md5.bin")
    dst.create_append_blob()
    with pytest.raises(HttpResponseError) as ei:
        dst.append_block_from_url(url, source_offset=0, source_length=100, source_content_md5=b"\x00" * 16)
    assert ei.value.status_code == 400
    assert code(ei.value) == "Md5Mismatch"
    assert dst.get_blob_properties().size == 0, "nothing was appended"
    dst.append_block_from_url(url, source_offset=0, source_length=100, source_content_md5=hashlib.md5(data[:100]).digest())
    assert dst.download_blob().readall() == data[:100]


@pytest.mark.azurite_lacks("Append Block From URL")
def test_append_block_from_url_on_a_block_blob_is_invalid_blob_type(container, source):
    _, src, url = source
    with pytest.raises(HttpResponseError) as ei:
        src.append_block_from_url(url, source_offset=0, source_length=10)
    assert ei.value.status_code == 409
    assert code(ei.value) == "InvalidBlobType"


@pytest.mark.emulator_only
def test_unimplemented_features_are_refused_and_change_nothing(container, braw):
    """A header naming a feature the emulator lacks is a 501, never ignored: the blob is
    unchanged afterwards."""
    cname = container.container_name
    assert put_blob(braw, cname, "kept", b"original").status == 201
    for headers in (
        {"x-ms-expiry-option": "RelativeToNow", "x-ms-expiry-time": "60000"},
        {"x-ms-encryption-scope": "scope1"},
        {"x-ms-legal-hold": "true"},
    ):
        r = put_blob(braw, cname, "kept", b"replaced", headers=headers)
        assert_raw_error(r, 501, "NotImplemented")
    assert braw.get(bpath(cname, "kept")).body == b"original"
