"""Retention and expiry on our emulator's movable clock: soft-deleted blobs, versions and
containers purged when their retention passes, blobs gone at their expiry time. The clock
only moves forward, so these run last in the blob suite.

Azurite has no container soft delete, does not honour blob soft delete and has no Set Blob
Expiry on flat accounts, and no emulator clock.
Docs: https://learn.microsoft.com/azure/storage/blobs/soft-delete-blob-overview
      https://learn.microsoft.com/azure/storage/blobs/soft-delete-container-overview
      https://learn.microsoft.com/rest/api/storageservices/set-blob-expiry
"""

from __future__ import annotations

from typing import Iterator

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, RetentionPolicy

from blob_helpers import code, unique_name

pytestmark = pytest.mark.emulator_only

DAY = 86400


def _admin(blob_target, method: str, path: str, **params) -> dict:
    base = blob_target.blob_endpoint.rsplit("/", 1)[0]
    r = requests.request(
        method,
        f"{base}/_emulator/{path}",
        params=params,
        headers={"x-ms-emulator-key": blob_target.account_key},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _advance(blob_target, seconds: int) -> None:
    _admin(blob_target, "POST", "clock/advance", seconds=str(seconds))


@pytest.fixture
def soft_delete(bsc: BlobServiceClient) -> Iterator[None]:
    bsc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=2))
    yield
    bsc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=False))


@pytest.fixture
def container_soft_delete(blob_target) -> Iterator[None]:
    assert _admin(blob_target, "PUT", "features", containerSoftDeleteDays="3")[
        "containerSoftDeleteDays"
    ] == 3
    yield
    _admin(blob_target, "PUT", "features", containerSoftDeleteDays="0")


def test_soft_deleted_blobs_are_purged_when_the_retention_passes(container, soft_delete, blob_target):
    keep = container.get_blob_client("kept")
    keep.upload_blob(b"k")
    b = container.get_blob_client("short-lived")
    b.upload_blob(b"x" * 5000)
    b.upload_blob(b"y", overwrite=True)  # the first content: a soft-deleted snapshot
    b.delete_blob()
    listed = list(container.list_blobs(include=["deleted", "snapshots"]))
    assert {(x.name, bool(x.snapshot)) for x in listed if x.deleted} == {
        ("short-lived", False),
        ("short-lived", True),
    }
    _advance(blob_target, DAY + 60)
    listed = [x for x in container.list_blobs(include=["deleted"]) if x.deleted]
    assert [x.remaining_retention_days for x in listed] == [1]
    _advance(blob_target, DAY)
    assert [x.name for x in container.list_blobs(include=["deleted", "snapshots"])] == ["kept"]
    with pytest.raises(HttpResponseError) as e:
        b.undelete_blob()
    assert e.value.status_code == 404
    assert keep.download_blob().readall() == b"k"


def test_a_deleted_container_is_listed_restored_and_purged(
    bsc, braw, container_soft_delete, blob_target
):
    name = unique_name("restorable")
    c = bsc.create_container(name)
    c.upload_blob("inside", b"payload", tags={"proj": "restore"})
    c.delete_container()
    with pytest.raises(ResourceNotFoundError):
        c.get_container_properties()
    deleted = [x for x in bsc.list_containers(name_starts_with=name, include_deleted=True) if x.deleted]
    assert len(deleted) == 1
    d = deleted[0]
    assert d.name == name and d.version and len(d.version) == 16
    listing = braw.get("", {"comp": "list", "prefix": name, "include": "deleted"}).xml()
    entry = listing.find("Containers/Container")
    assert entry.findtext("Deleted") == "true" and entry.findtext("Version") == d.version
    assert entry.findtext("Properties/RemainingRetentionDays") == "3"
    assert entry.findtext("Properties/DeletedTime")
    assert not list(bsc.find_blobs_by_tags("\"proj\"='restore'"))
    # The name is free meanwhile; restoring over a live container is refused.
    bsc.create_container(name)
    with pytest.raises(ResourceExistsError) as e:
        bsc.undelete_container(name, d.version)
    assert code(e.value) == "ContainerAlreadyExists"
    bsc.delete_container(name)
    assert len([x for x in bsc.list_containers(name_starts_with=name, include_deleted=True)]) == 2
    restored = bsc.undelete_container(name, d.version)
    assert restored.download_blob("inside").readall() == b"payload"
    assert [b.name for b in bsc.find_blobs_by_tags("\"proj\"='restore'")] == ["inside"]
    with pytest.raises(ResourceNotFoundError):
        bsc.undelete_container(name, d.version)
    # The other deleted one goes when its retention passes.
    assert len([x for x in bsc.list_containers(name_starts_with=name, include_deleted=True)]) == 2
    _advance(blob_target, 3 * DAY + 60)
    listed = list(bsc.list_containers(name_starts_with=name, include_deleted=True))
    assert [(x.name, bool(x.deleted)) for x in listed] == [(name, False)]
    bsc.delete_container(name)


def test_set_blob_expiry_and_expired_blobs_disappear(container, blob_target, braw):
    b = container.get_blob_client("ephemeral")
    b.upload_blob(b"soon gone")
    # The generated client of Microsoft's SDK carries Set Blob Expiry (the public Python
    # API has it on Data Lake files only).
    b._client.blob.set_expiry(expiry_options="RelativeToNow", expires_on="3600000")
    p = braw.head(f"{container.container_name}/ephemeral")
    assert p.status == 200 and p.headers.get("x-ms-expiry-time"), p
    listed = list(container.list_blobs())
    assert [x.name for x in listed] == ["ephemeral"]
    never = container.get_blob_client("forever")
    never.upload_blob(b"stays")
    never._client.blob.set_expiry(expiry_options="RelativeToNow", expires_on="1000")
    never._client.blob.set_expiry(expiry_options="NeverExpire")
    r = braw.put(
        f"{container.container_name}/forever",
        {"comp": "expiry"},
        headers={"x-ms-expiry-option": "RelativeToNow"},
    )
    assert r.status == 400 and r.error_code == "MissingRequiredHeader", r
    _advance(blob_target, 3601)
    with pytest.raises(ResourceNotFoundError):
        b.get_blob_properties()
    assert [x.name for x in container.list_blobs()] == ["forever"]
    assert never.download_blob().readall() == b"stays"
