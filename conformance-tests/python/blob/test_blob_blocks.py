"""Put Block / Put Block List / Get Block List."""

from __future__ import annotations

import base64

import pytest
from azure.storage.blob import BlobBlock, BlobType, ContentSettings

from blob_helpers import assert_raw_error, block_id, bpath, put_blob

# ids A/B/C/D: same decoded length (6 bytes), as the service requires within one blob
A, B, C, D = (block_id(i) for i in range(4))


def _decoded(bid: str) -> str:
    return base64.b64decode(bid).decode("ascii")


def _block_list_xml(entries) -> str:
    body = "".join(f"<{kind}>{bid}</{kind}>" for kind, bid in entries)
    return f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'


def _stage(braw, cname, blob, bid, data):
    return braw.put(bpath(cname, blob), {"comp": "block", "blockid": bid}, headers={"Content-Type": "application/octet-stream"}, body=data)


def _commit(braw, cname, blob, entries, headers=None):
    return braw.put(bpath(cname, blob), {"comp": "blocklist"}, headers=headers, body=_block_list_xml(entries))


def _block_list(braw, cname, blob, kind):
    r = braw.get(bpath(cname, blob), {"comp": "blocklist", "blocklisttype": kind})
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "BlockList"

    def blocks(section):
        el = root.find(section)
        if el is None:
            return None
        return [(b.findtext("Name"), int(b.findtext("Size"))) for b in el.findall("Block")]

    return r, blocks("CommittedBlocks"), blocks("UncommittedBlocks")


def test_put_block_response(container, braw):
    r = _stage(braw, container.container_name, "b", A, b"aaaa")
    assert r.status == 201, r
    assert r.headers.get("x-ms-request-server-encrypted") == "true", r
    assert r.headers.get("Content-Length") == "0", r


def test_staged_only_blob_is_invisible(container, braw):
    cname = container.container_name
    assert _stage(braw, cname, "staged", A, b"aaaa").status == 201
    assert _stage(braw, cname, "staged", B, b"bb").status == 201
    assert_raw_error(braw.get(bpath(cname, "staged")), 404, "BlobNotFound")
    assert_raw_error(braw.head(bpath(cname, "staged")), 404, "BlobNotFound", head=True)
    assert [b.name for b in container.list_blobs()] == []
    assert not container.get_blob_client("staged").exists()
    # ...but Get Block List sees the staged blocks, in staging order
    r, committed, uncommitted = _block_list(braw, cname, "staged", "all")
    assert committed == []
    assert uncommitted == [(A, 4), (B, 2)]
    assert r.headers.get("x-ms-blob-content-length") == "0", r


def test_put_block_list_document_order_and_categories(container, braw):
    cname, blob = container.container_name, "ordered"
    for bid, data in ((A, b"AAA"), (B, b"BBB"), (C, b"CCC")):
        assert _stage(braw, cname, blob, bid, data).status == 201
    r = _commit(braw, cname, blob, [("Latest", C), ("Uncommitted", A)])
    assert r.status == 201, r
    assert r.headers.get("ETag") and r.headers.get("Last-Modified"), r
    assert container.get_blob_client(blob).download_blob().readall() == b"CCCAAA"
    # B was staged but not committed: discarded by the commit
    _, committed, uncommitted = _block_list(braw, cname, blob, "all")
    assert committed == [(C, 3), (A, 3)]
    assert uncommitted == []

    # restage A with new content, stage D; mix all three categories, reuse ids
    assert _stage(braw, cname, blob, A, b"aaaa").status == 201
    assert _stage(braw, cname, blob, D, b"DD").status == 201
    r = _commit(braw, cname, blob, [("Committed", A), ("Uncommitted", D), ("Latest", A), ("Committed", C), ("Latest", C)])
    assert r.status == 201, r
    assert container.get_blob_client(blob).download_blob().readall() == b"AAA" + b"DD" + b"aaaa" + b"CCC" + b"CCC"
    _, committed, uncommitted = _block_list(braw, cname, blob, "all")
    assert committed == [(A, 3), (D, 2), (A, 4), (C, 3), (C, 3)]
    assert uncommitted == []


def test_put_block_list_unknown_block(container, braw):
    cname = container.container_name
    assert _stage(braw, cname, "unk", A, b"a").status == 201
    assert_raw_error(_commit(braw, cname, "unk", [("Latest", B)]), 400, "InvalidBlockList")
    assert_raw_error(_commit(braw, cname, "unk", [("Committed", A)]), 400, "InvalidBlockList")
    # nothing was committed, the staged block is still there
    _, committed, uncommitted = _block_list(braw, cname, "unk", "all")
    assert committed == [] and uncommitted == [(A, 1)]


def test_mixed_block_id_lengths_rejected(container, braw):
    cname = container.container_name
    assert _stage(braw, cname, "mixed", block_id(1, width=6), b"x").status == 201
    r = _stage(braw, cname, "mixed", block_id(2, width=8), b"y")
    assert_raw_error(r, 400, "InvalidBlobOrBlock")


def test_empty_block_list_commits_empty_blob(container, braw):
    r = _commit(braw, container.container_name, "emptylist", [])
    assert r.status == 201, r
    props = container.get_blob_client("emptylist").get_blob_properties()
    assert props.size == 0 and props.blob_type == BlobType.BLOCKBLOB


def test_get_block_list_types(container, braw):
    cname, blob = container.container_name, "types"
    _stage(braw, cname, blob, A, b"1111")
    _commit(braw, cname, blob, [("Latest", A)])
    _stage(braw, cname, blob, B, b"22")
    r, committed, uncommitted = _block_list(braw, cname, blob, "committed")
    assert committed == [(A, 4)]
    assert not uncommitted, "blocklisttype=committed lists no uncommitted blocks"
    assert r.headers.get("x-ms-blob-content-length") == "4", r
    assert r.headers.get("ETag"), r
    _, committed, uncommitted = _block_list(braw, cname, blob, "uncommitted")
    assert not committed
    assert uncommitted == [(B, 2)]
    _, committed, uncommitted = _block_list(braw, cname, blob, "all")
    assert committed == [(A, 4)] and uncommitted == [(B, 2)]
    # default is committed
    d = braw.get(bpath(cname, blob), {"comp": "blocklist"})
    assert [b.findtext("Name") for b in d.xml().findall("CommittedBlocks/Block")] == [A]
    assert d.xml().findall("UncommittedBlocks/Block") == []
    # SDK view (the SDK hands back block ids base64-decoded)
    sc, su = container.get_blob_client(blob).get_block_list("all")
    assert [(b.id, b.size) for b in sc] == [(_decoded(A), 4)]
    assert [(b.id, b.size) for b in su] == [(_decoded(B), 2)]


def test_get_block_list_missing_blob(container, braw):
    assert_raw_error(braw.get(bpath(container.container_name, "none"), {"comp": "blocklist"}), 404, "BlobNotFound")


def test_put_block_list_resets_properties(container, braw):
    cname, blob = container.container_name, "reset"
    container.upload_blob(blob, b"old", metadata={"m": "1"}, content_settings=ContentSettings(content_type="text/old"))
    _stage(braw, cname, blob, A, b"new")
    r = _commit(braw, cname, blob, [("Latest", A)], headers={"x-ms-meta-Fresh": "yes"})
    assert r.status == 201, r
    props = container.get_blob_client(blob).get_blob_properties()
    assert props.metadata == {"Fresh": "yes"}
    assert props.content_settings.content_type == "application/octet-stream"


def test_put_blob_over_staged_blocks(container, braw):
    cname = container.container_name
    _stage(braw, cname, "pb", A, b"staged")
    assert put_blob(braw, cname, "pb", b"direct").status == 201
    assert container.get_blob_client("pb").download_blob().readall() == b"direct"
    assert [b.name for b in container.list_blobs()] == ["pb"]


def test_sdk_stage_and_commit(container):
    blob = container.get_blob_client("sdk")
    ids = [block_id(i) for i in range(3)]
    for i, bid in enumerate(ids):
        blob.stage_block(bid, f"part{i};".encode())
    blob.commit_block_list([BlobBlock(block_id=ids[2]), BlobBlock(block_id=ids[0])], metadata={"k": "v"})
    assert blob.download_blob().readall() == b"part2;part0;"
    assert blob.get_blob_properties().metadata == {"k": "v"}


@pytest.mark.parametrize("raw_id", ["not base64!", "QUJD="])
def test_invalid_block_id(container, braw, raw_id):
    r = _stage(braw, container.container_name, "badid", raw_id, b"x")
    assert_raw_error(r, 400, "InvalidQueryParameterValue")
    assert r.xml_error().get("QueryParameterName") == "blockid", r


def test_block_id_over_64_bytes(container, braw):
    bid = base64.b64encode(b"x" * 65).decode()
    r = _stage(braw, container.container_name, "longid", bid, b"x")
    assert_raw_error(r, 400, "OutOfRangeInput")


def test_block_id_with_url_special_chars(container, braw):
    """Block ids are base64 (`+`, `/`, `=`): they must survive URL encoding in both directions."""
    bid = base64.b64encode(bytes([0xFB, 0xEF, 0xBE, 0xFF])).decode()
    assert "+" in bid and "/" in bid and "=" in bid, bid
    assert _stage(braw, container.container_name, "special", bid, b"z").status == 201
    assert _commit(braw, container.container_name, "special", [("Latest", bid)]).status == 201
    _, committed, _ = _block_list(braw, container.container_name, "special", "committed")
    assert committed == [(bid, 1)]
