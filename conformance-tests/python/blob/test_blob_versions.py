"""Blob versioning and blob soft delete through Microsoft's Python SDK.

Azure keeps versioning in the management plane; our emulator turns it on per account with
its admin endpoint (`PUT /_emulator/features?blobVersioning=true`), which these tests do and
undo. Soft delete is the data-plane DeleteRetentionPolicy. Azurite has neither (versioning
is absent; soft delete is stored but not honoured), so every test here is marked as a
feature Azurite lacks. Retention expiry moves the clock, so it lives in
test_zz_blob_retention.py.

Docs: https://learn.microsoft.com/azure/storage/blobs/versioning-overview
      https://learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview
"""

from __future__ import annotations

from typing import Iterator

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    RetentionPolicy,
    generate_blob_sas,
)

from blob_helpers import code

pytestmark = pytest.mark.azurite_lacks("blob versioning and soft delete")


def _features(blob_target, **params) -> dict:
    base = blob_target.blob_endpoint.rsplit("/", 1)[0]
    r = requests.put(
        f"{base}/_emulator/features",
        params=params,
        headers={"x-ms-emulator-key": blob_target.account_key},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def versioning(blob_target) -> Iterator[None]:
    assert _features(blob_target, blobVersioning="true")["blobVersioning"] is True
    yield
    _features(blob_target, blobVersioning="false")


@pytest.fixture
def soft_delete(bsc: BlobServiceClient) -> Iterator[None]:
    bsc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=7))
    yield
    bsc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=False))


def _versions(container: ContainerClient, name: str, include=("versions",)):
    return [b for b in container.list_blobs(name_starts_with=name, include=list(include)) if b.name == name]


def test_writes_make_versions_and_each_is_readable(container, versioning):
    b = container.get_blob_client("doc")
    v1 = b.upload_blob(b"one")["version_id"]
    v2 = b.upload_blob(b"two", overwrite=True)["version_id"]
    v3 = b.set_blob_metadata({"k": "v"})["version_id"]
    assert v1 and v2 and v3 and len({v1, v2, v3}) == 3
    assert b.download_blob(version_id=v1).readall() == b"one"
    assert b.download_blob(version_id=v2).readall() == b"two"
    p = b.get_blob_properties()
    assert p.version_id == v3 and p.is_current_version is True
    assert p.metadata == {"k": "v"}
    old = b.get_blob_properties(version_id=v1)
    assert old.version_id == v1 and not old.is_current_version
    assert old.metadata == {}
    # Versions are immutable content: the bytes of v2 and the current one are the same.
    assert b.download_blob(version_id=v3).readall() == b"two"
    listed = _versions(container, "doc")
    assert [x.version_id for x in listed] == [v1, v2, v3]
    assert [bool(x.is_current_version) for x in listed] == [False, False, True]


def test_block_list_copy_and_snapshot_make_versions(container, versioning):
    b = container.get_blob_client("blocks")
    b.stage_block("AAAA", b"first-")
    b.stage_block("BBBB", b"second")
    v1 = b.commit_block_list(["AAAA", "BBBB"])["version_id"]
    # A new list reusing a committed block shares its bytes with the old version.
    v2 = b.commit_block_list(["BBBB"])["version_id"]
    assert b.download_blob(version_id=v1).readall() == b"first-second"
    assert b.download_blob().readall() == b"second"
    snap = b.create_snapshot()
    assert snap["version_id"] not in (v1, v2)
    assert b.get_blob_properties().version_id == snap["version_id"]
    src = container.get_blob_client("src")
    src.upload_blob(b"copied")
    copy = b.start_copy_from_url(src.url)
    assert copy["version_id"]
    assert b.download_blob().readall() == b"copied"
    # Snapshots and versions coexist in one listing.
    listed = _versions(container, "blocks", include=("versions", "snapshots"))
    assert sum(1 for x in listed if x.snapshot) == 1
    assert sum(1 for x in listed if x.is_current_version) == 1
    assert b.download_blob(snapshot=snap["snapshot"]).readall() == b"second"


def test_delete_keeps_versions_and_promotion_restores(container, versioning):
    b = container.get_blob_client("precious")
    v1 = b.upload_blob(b"keep me")["version_id"]
    v2 = b.upload_blob(b"oops", overwrite=True)["version_id"]
    assert b.delete_blob() is None
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties()
    listed = _versions(container, "precious")
    assert [x.version_id for x in listed] == [v1, v2]
    assert not any(x.is_current_version for x in listed)
    # Promote: copy a previous version over the base blob.
    old_url = f"{b.url}?versionid={v1}"
    new = b.start_copy_from_url(old_url)
    assert b.download_blob().readall() == b"keep me"
    assert b.get_blob_properties().version_id == new["version_id"]
    # Delete one previous version by id; the others stay.
    b.delete_blob(version_id=v2)
    assert [x.version_id for x in _versions(container, "precious")] == [v1, new["version_id"]]
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties(version_id=v2)


def test_page_and_append_writes_change_the_current_version_in_place(container, versioning):
    # Put Page and Append Block make no version (Azure: only Put Blob, Put Block List,
    # Copy and Set Blob Metadata do for page and append blobs).
    page = container.get_blob_client("disk")
    v1 = page.create_page_blob(1024)["version_id"]
    page.upload_page(b"\x07" * 512, offset=512, length=512)
    assert page.get_blob_properties().version_id == v1
    v2 = page.set_blob_metadata({"k": "v"})["version_id"]
    assert v2 != v1
    assert page.download_blob(version_id=v1).readall() == b"\x00" * 512 + b"\x07" * 512
    page.clear_page(offset=512, length=512)
    assert page.download_blob(version_id=v1).readall()[512:] == b"\x07" * 512
    assert page.download_blob().readall() == b"\x00" * 1024
    log = container.get_blob_client("log")
    a1 = log.create_append_blob()["version_id"]
    log.append_block(b"one;")
    a2 = log.set_blob_metadata({"m": "1"})["version_id"]
    log.append_block(b"two;")
    assert log.get_blob_properties().version_id == a2 != a1
    assert log.download_blob(version_id=a1).readall() == b"one;"
    assert log.download_blob().readall() == b"one;two;"


def test_deleted_with_versions_lists_a_gone_blob_once(container, versioning):
    gone = container.get_blob_client("gone")
    gone.upload_blob(b"1")
    gone.set_blob_metadata({"last": "yes"})
    gone.delete_blob()
    container.get_blob_client("here").upload_blob(b"2")
    listed = list(container.list_blobs(include=["deletedwithversions"]))
    assert [(x.name, bool(x.has_versions_only)) for x in listed] == [
        ("gone", True),
        ("here", False),
    ]
    # The entry carries the latest version's properties.
    assert listed[0].size == 1
    # Without it, a blob with no current version is not listed.
    assert [x.name for x in container.list_blobs()] == ["here"]


def test_current_version_cannot_be_deleted_by_id(container, versioning, braw):
    b = container.get_blob_client("root")
    v = b.upload_blob(b"x")["version_id"]
    with pytest.raises(HttpResponseError) as e:
        b.delete_blob(version_id=v)
    assert e.value.status_code == 403 and code(e.value) == "OperationNotAllowedOnRootBlob"
    r = braw.head(
        f"{container.container_name}/root",
        {"snapshot": "2020-01-01T00:00:00.0000000Z", "versionid": v},
    )
    assert r.status == 400
    assert r.headers.get("x-ms-error-code") == "MutuallyExclusiveQueryParameters"


def test_tier_and_tags_on_a_version(container, versioning):
    b = container.get_blob_client("tiered")
    v1 = b.upload_blob(b"1")["version_id"]
    b.upload_blob(b"2", overwrite=True)
    b.set_standard_blob_tier("Cool", version_id=v1)
    assert b.get_blob_properties(version_id=v1).blob_tier == "Cool"
    assert b.get_blob_properties().blob_tier == "Hot"
    b.set_blob_tags({"era": "old"}, version_id=v1)
    assert b.get_blob_tags(version_id=v1) == {"era": "old"}
    assert b.get_blob_tags() == {}


def test_version_sas_reads_only_that_version(container, versioning, blob_target):
    b = container.get_blob_client("shared")
    v1 = b.upload_blob(b"v1")["version_id"]
    b.upload_blob(b"v2", overwrite=True)
    import datetime as dt

    sas = generate_blob_sas(
        account_name=b.account_name,
        container_name=container.container_name,
        blob_name="shared",
        account_key=blob_target.account_key,
        permission=BlobSasPermissions(read=True, delete_previous_version=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
        version_id=v1,
    )
    from azure.storage.blob import BlobClient

    client = BlobClient.from_blob_url(f"{b.url}?{sas}")
    assert client.download_blob(version_id=v1).readall() == b"v1"
    with pytest.raises(HttpResponseError) as e:
        client.download_blob().readall()
    assert e.value.status_code == 403
    client.delete_blob(version_id=v1)
    assert [x.version_id for x in _versions(container, "shared")] != []
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties(version_id=v1)


# --- soft delete ------------------------------------------------------------------------


def test_soft_deleted_blob_is_listed_and_undeleted(container, soft_delete):
    b = container.get_blob_client("gone")
    b.upload_blob(b"data", metadata={"m": "1"})
    b.create_snapshot()
    b.delete_blob(delete_snapshots="include")
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties()
    assert [x.name for x in container.list_blobs()] == []
    deleted = list(container.list_blobs(include=["deleted", "snapshots"]))
    assert len(deleted) == 2 and all(x.deleted for x in deleted)
    base = [x for x in deleted if not x.snapshot][0]
    assert base.deleted_time is not None and base.remaining_retention_days == 7
    b.undelete_blob()
    assert b.download_blob().readall() == b"data"
    assert b.get_blob_properties().metadata == {"m": "1"}
    assert len(list(container.list_blobs(include=["snapshots"]))) == 2
    # Undelete of a blob with nothing deleted is a no-op that succeeds.
    b.undelete_blob()


def test_overwrite_keeps_a_soft_deleted_snapshot(container, soft_delete):
    b = container.get_blob_client("rewritten")
    b.upload_blob(b"before")
    b.upload_blob(b"after", overwrite=True)
    assert list(container.list_blobs(include=["snapshots"]))[0].snapshot is None
    listed = list(container.list_blobs(include=["snapshots", "deleted"]))
    snaps = [x for x in listed if x.snapshot]
    assert len(snaps) == 1 and snaps[0].deleted
    b.undelete_blob()
    assert b.download_blob(snapshot=snaps[0].snapshot).readall() == b"before"
    assert b.download_blob().readall() == b"after"


def test_soft_deleted_snapshot_and_permanent_delete(container, braw, soft_delete):
    b = container.get_blob_client("snappy")
    b.upload_blob(b"x")
    snap = b.create_snapshot()["snapshot"]
    sb = container.get_blob_client("snappy", snapshot=snap)
    sb.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        sb.get_blob_properties()
    path = f"{container.container_name}/snappy"
    r = braw.head(path, {"snapshot": snap})
    assert r.status == 404 and r.headers.get("x-ms-is-soft-deleted") == "true"
    # Without AllowPermanentDelete a permanent delete is refused.
    r = braw.delete(path, {"snapshot": snap, "deletetype": "permanent"})
    assert r.status == 409, r
    b.undelete_blob()
    assert sb.download_blob().readall() == b"x"
    # With it, a soft-deleted snapshot goes for good (a live one cannot be).
    policy = (
        "<StorageServiceProperties><DeleteRetentionPolicy><Enabled>true</Enabled>"
        "<Days>7</Days><AllowPermanentDelete>true</AllowPermanentDelete>"
        "</DeleteRetentionPolicy></StorageServiceProperties>"
    )
    r = braw.put("", {"restype": "service", "comp": "properties"}, body=policy)
    assert r.status == 202, r
    r = braw.delete(path, {"snapshot": snap, "deletetype": "permanent"})
    assert r.status == 409 and r.error_code == "BlobSnapshotNotSoftDeleted", r
    sb.delete_blob()
    r = braw.delete(path, {"snapshot": snap, "deletetype": "permanent"})
    assert r.status == 202 and r.headers.get("x-ms-delete-type-permanent") == "true", r
    b.undelete_blob()
    with pytest.raises(ResourceNotFoundError):
        sb.get_blob_properties()


def test_versioning_with_soft_delete(container, versioning, soft_delete):
    b = container.get_blob_client("both")
    v1 = b.upload_blob(b"1")["version_id"]
    b.upload_blob(b"2", overwrite=True)
    # Overwrites make versions, not soft-deleted snapshots.
    assert not [x for x in container.list_blobs(include=["snapshots", "deleted"]) if x.snapshot]
    # Deleting a version soft-deletes it; undelete brings it back, not as current.
    b.delete_blob(version_id=v1)
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties(version_id=v1)
    listed = _versions(container, "both", include=("versions", "deleted"))
    assert [bool(x.deleted) for x in listed] == [True, False]
    b.undelete_blob()
    assert b.download_blob(version_id=v1).readall() == b"1"
    assert b.download_blob().readall() == b"2"
    # Deleting the base with versioning on: the current version becomes a previous one.
    b.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties()
    assert len(_versions(container, "both")) == 2
