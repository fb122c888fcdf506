"""Snapshot Blob, reading and listing snapshots, deleting with snapshots."""

from __future__ import annotations

import re

from blob_helpers import assert_raw_error, bpath

SNAPSHOT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


def test_create_snapshot_raw(container, braw):
    container.upload_blob("s", b"v1")
    r = braw.put(bpath(container.container_name, "s"), {"comp": "snapshot"})
    assert r.status == 201, r
    snap = r.headers.get("x-ms-snapshot", "")
    assert SNAPSHOT_RE.match(snap), r
    assert r.headers.get("ETag") and r.headers.get("Last-Modified"), r
    g = braw.get(bpath(container.container_name, "s"), {"snapshot": snap})
    assert g.status == 200 and g.body == b"v1", g


def test_snapshot_keeps_old_content_and_metadata(container):
    blob = container.upload_blob("snap", b"version one", metadata={"v": "1"})
    s1 = blob.create_snapshot()
    s2 = blob.create_snapshot(metadata={"Snap": "explicit"})
    assert s1["snapshot"] != s2["snapshot"]
    blob.upload_blob(b"version two", overwrite=True, metadata={"v": "2"})

    old = container.get_blob_client("snap", snapshot=s1["snapshot"])
    assert old.download_blob().readall() == b"version one"
    assert old.get_blob_properties().metadata == {"v": "1"}
    assert container.get_blob_client("snap", snapshot=s2["snapshot"]).get_blob_properties().metadata == {"Snap": "explicit"}
    assert blob.download_blob().readall() == b"version two"


def test_list_blobs_include_snapshots(container, braw):
    blob = container.upload_blob("ls", b"x")
    s1 = blob.create_snapshot()["snapshot"]
    s2 = blob.create_snapshot()["snapshot"]
    container.upload_blob("other", b"y")
    listed = [(b.name, b.snapshot) for b in container.list_blobs(include=["snapshots"])]
    # names in order; the relative order of a blob's snapshots and base is not pinned here
    assert [name for name, _ in listed] == ["ls", "ls", "ls", "other"]
    assert sorted(listed, key=lambda x: (x[0], x[1] or "")) == [("ls", None), ("ls", s1), ("ls", s2), ("other", None)]
    assert [b.name for b in container.list_blobs()] == ["ls", "other"], "snapshots only with include=snapshots"
    r = braw.get(container.container_name, {"restype": "container", "comp": "list", "include": "snapshots"})
    snaps = [b.findtext("Snapshot") for b in r.xml().findall("Blobs/Blob") if b.find("Snapshot") is not None]
    assert sorted(snaps) == [s1, s2]


def test_missing_snapshot_404(container, braw):
    container.upload_blob("ms", b"x")
    r = braw.get(bpath(container.container_name, "ms"), {"snapshot": "2001-01-01T00:00:00.0000000Z"})
    assert_raw_error(r, 404, "BlobNotFound")


def test_delete_blob_with_snapshots(container, braw):
    blob = container.upload_blob("del", b"x")
    snap = blob.create_snapshot()["snapshot"]
    path = bpath(container.container_name, "del")
    assert_raw_error(braw.delete(path), 409, "SnapshotsPresent")
    assert blob.exists()

    # only: snapshots go, base stays
    r = braw.delete(path, headers={"x-ms-delete-snapshots": "only"})
    assert r.status == 202, r
    assert not container.get_blob_client("del", snapshot=snap).exists()
    assert blob.exists()

    # include: base and snapshots go
    blob.create_snapshot()
    r = braw.delete(path, headers={"x-ms-delete-snapshots": "include"})
    assert r.status == 202, r
    assert list(container.list_blobs(include=["snapshots"])) == []


def test_delete_snapshot_with_delete_snapshots_header_rejected(container, braw):
    blob = container.upload_blob("h", b"x")
    snap = blob.create_snapshot()["snapshot"]
    r = braw.delete(bpath(container.container_name, "h"), {"snapshot": snap}, headers={"x-ms-delete-snapshots": "include"})
    assert r.status == 400 and r.error_code, r
    assert container.get_blob_client("h", snapshot=snap).exists()


def test_delete_single_snapshot(container, braw):
    blob = container.upload_blob("one", b"x")
    s1 = blob.create_snapshot()["snapshot"]
    s2 = blob.create_snapshot()["snapshot"]
    r = braw.delete(bpath(container.container_name, "one"), {"snapshot": s1})
    assert r.status == 202, r
    assert sorted((b.snapshot or "") for b in container.list_blobs(include=["snapshots"])) == ["", s2]
    # SDK: delete_snapshots="include"
    blob.delete_blob(delete_snapshots="include")
    assert list(container.list_blobs(include=["snapshots"])) == []
