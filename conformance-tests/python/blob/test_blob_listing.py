"""List Blobs (flat, hierarchical, paging, include) and special blob names."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobPrefix

from blob_helpers import bpath, put_blob
from storage_http import find_text

NAMES = ["a.txt", "dir1/b.txt", "dir1/c.txt", "dir2/sub/d.txt", "dir2/sub/e.txt", "e.txt"]


@pytest.fixture
def tree(container):
    for name in reversed(NAMES):  # out of order on purpose
        container.upload_blob(name, name.encode(), metadata={"Path": name.replace("/", "_").replace(".", "_")})
    return container


def _list(braw, cname, **query):
    q = {"restype": "container", "comp": "list"}
    q.update({k: v for k, v in query.items() if v is not None})
    r = braw.get(cname, q)
    assert r.status == 200, r
    return r, r.xml()


def test_list_blobs_flat_sorted(tree):
    assert [b.name for b in tree.list_blobs()] == NAMES
    assert [b.name for b in tree.list_blobs(name_starts_with="dir1/")] == ["dir1/b.txt", "dir1/c.txt"]
    assert [b.name for b in tree.list_blobs(name_starts_with="nomatch")] == []
    assert list(tree.list_blob_names()) == NAMES


def test_list_blobs_hierarchical(tree):
    # (the SDK puts a page's prefixes before its blobs, whatever the XML order)
    top = sorted((x.name, isinstance(x, BlobPrefix)) for x in tree.walk_blobs(delimiter="/"))
    assert top == [
        ("a.txt", False),
        ("dir1/", True),
        ("dir2/", True),
        ("e.txt", False),
    ]
    assert [x.name for x in tree.walk_blobs(name_starts_with="dir2/", delimiter="/")] == ["dir2/sub/"]
    assert [x.name for x in tree.walk_blobs(name_starts_with="dir2/sub/", delimiter="/")] == [
        "dir2/sub/d.txt",
        "dir2/sub/e.txt",
    ]


def test_list_blobs_hierarchical_raw_xml(tree, braw):
    r, root = _list(braw, tree.container_name, delimiter="/")
    assert root.get("ContainerName") == tree.container_name
    assert find_text(root, "Delimiter") == "/"
    assert [p.findtext("Name") for p in root.findall("Blobs/BlobPrefix")] == ["dir1/", "dir2/"]
    assert [b.findtext("Name") for b in root.findall("Blobs/Blob")] == ["a.txt", "e.txt"]
    _, root = _list(braw, tree.container_name, delimiter="/", prefix="dir1/")
    assert find_text(root, "Prefix") == "dir1/"
    assert [b.findtext("Name") for b in root.findall("Blobs/Blob")] == ["dir1/b.txt", "dir1/c.txt"]
    assert root.findall("Blobs/BlobPrefix") == []


def test_list_blobs_raw_properties(tree, braw):
    r, root = _list(braw, tree.container_name, prefix="a.txt")
    assert r.headers.get("Content-Type", "").startswith("application/xml"), r
    blob = root.find("Blobs/Blob")
    assert blob.findtext("Name") == "a.txt"
    props = blob.find("Properties")
    etag = props.findtext("Etag")
    assert etag and not etag.startswith('"'), "List Blobs ETag is unquoted"
    assert f'"{etag}"' == tree.get_blob_client("a.txt").get_blob_properties().etag
    assert props.findtext("Content-Length") == "5"
    assert props.findtext("BlobType") == "BlockBlob"
    assert props.findtext("Last-Modified", "").endswith("GMT")
    assert props.findtext("Creation-Time", "").endswith("GMT")
    assert props.findtext("LeaseStatus") == "unlocked"
    assert props.findtext("LeaseState") == "available"
    assert props.findtext("Content-Type") == "application/octet-stream"
    assert props.findtext("Content-MD5"), "Put Blob MD5 listed"
    assert blob.find("Metadata") is None or len(blob.find("Metadata")) == 0


def test_list_blobs_paging_raw(tree, braw):
    seen, marker, pages = [], None, 0
    while True:
        _, root = _list(braw, tree.container_name, maxresults="2", marker=marker)
        assert find_text(root, "MaxResults") == "2"
        names = [b.findtext("Name") for b in root.findall("Blobs/Blob")]
        assert len(names) <= 2
        seen += names
        pages += 1
        marker = find_text(root, "NextMarker")
        if not marker:
            break
        assert pages < 10
    assert seen == NAMES
    assert pages == 3


def test_list_blobs_paging_sdk_hierarchical(tree):
    pager = tree.walk_blobs(delimiter="/", results_per_page=2).by_page()
    first = sorted(x.name for x in next(pager))
    assert first == ["a.txt", "dir1/"], "prefixes and blobs both count toward maxresults, in name order"
    token = pager.continuation_token
    assert token
    rest = [x.name for page in tree.walk_blobs(delimiter="/", results_per_page=2).by_page(continuation_token=token) for x in page]
    assert sorted(rest) == ["dir2/", "e.txt"]


def test_list_blobs_paging_sdk_flat(tree):
    pages = [[b.name for b in page] for page in tree.list_blobs(results_per_page=4).by_page()]
    assert pages == [NAMES[:4], NAMES[4:]]


def test_list_blobs_include_metadata(tree, braw):
    by_name = {b.name: b.metadata for b in tree.list_blobs(include=["metadata"])}
    assert by_name["dir1/b.txt"] == {"Path": "dir1_b_txt"}
    plain = {b.name: b.metadata for b in tree.list_blobs()}
    assert all(not md for md in plain.values())
    _, root = _list(braw, tree.container_name, include="metadata", prefix="e.txt")
    assert root.find("Blobs/Blob/Metadata/Path").text == "e_txt"


def test_list_blobs_hierarchical_paging_raw(tree, braw):
    seen, marker = [], None
    for _ in range(10):
        _, root = _list(braw, tree.container_name, delimiter="/", maxresults="1", marker=marker)
        entries = [p.findtext("Name") for p in root.findall("Blobs/BlobPrefix")] + [
            b.findtext("Name") for b in root.findall("Blobs/Blob")
        ]
        assert len(entries) == 1, entries
        seen += entries
        marker = find_text(root, "NextMarker")
        if not marker:
            break
    assert seen == ["a.txt", "dir1/", "dir2/", "e.txt"], "each prefix once, in name order"


# --------------------------------------------------------------------------------------
# special blob names


SPECIAL_NAMES = [
    "with space.txt",
    "unicodé-名前-ü.txt",
    "emoji-\U0001F600",
    "percent%20literal",
    "100%",
    "plus+sign",
    "dir/sub dir/file.txt",
    "a#b?c",
    "semi;colon=eq&amp",
    "quote'and\"dq",
    "tilde~star*(paren)!",
]


@pytest.mark.parametrize("name", SPECIAL_NAMES)
def test_special_blob_names_round_trip(container, braw, name):
    data = f"content of {name}".encode()
    blob = container.get_blob_client(name)
    blob.upload_blob(data)
    assert blob.download_blob().readall() == data
    assert [b.name for b in container.list_blobs()] == [name]
    assert blob.get_blob_properties().name == name
    # raw, percent-encoded, Shared Key signed over the encoded path
    r = braw.get(bpath(container.container_name, name))
    assert r.status == 200, r
    assert r.body == data
    r = put_blob(braw, container.container_name, name, b"raw")
    assert r.status == 201, r
    assert blob.download_blob().readall() == b"raw"
    _, root = _list(braw, container.container_name)
    assert [b.findtext("Name") for b in root.findall("Blobs/Blob")] == [name]
    blob.delete_blob()
    assert not blob.exists()


def test_special_names_sort_and_prefix(container):
    names = sorted(["x/a b", "x/a+b", "x/a%b", "x/ä", "x/z"], key=lambda s: s.encode("utf-8"))
    for n in names:
        container.upload_blob(n, b"1")
    assert [b.name for b in container.list_blobs(name_starts_with="x/")] == names
    assert [b.name for b in container.list_blobs(name_starts_with="x/a ")] == ["x/a b"]
