"""Lease Blob: acquire / renew / change / release / break and lease enforcement on writes."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobLeaseClient

from blob_helpers import assert_raw_error, bpath, expect_error, put_blob

LEASE = {"comp": "lease"}


def _lease(braw, path, action, **headers):
    hdrs = {"x-ms-lease-action": action}
    hdrs.update({k.replace("_", "-"): v for k, v in headers.items()})
    return braw.put(path, LEASE, headers=hdrs)


@pytest.fixture
def leased(container, braw):
    container.upload_blob("leased", b"locked content")
    path = bpath(container.container_name, "leased")
    lease_id = str(uuid.uuid4())
    r = _lease(braw, path, "acquire", x_ms_lease_duration="-1", x_ms_proposed_lease_id=lease_id)
    assert r.status == 201, r
    assert r.headers.get("x-ms-lease-id") == lease_id, r
    yield container, path, lease_id
    _lease(braw, path, "break", x_ms_lease_break_period="0")


def test_acquire_reports_lease_state(braw, leased):
    _, path, _ = leased
    h = braw.head(path)
    assert h.headers.get("x-ms-lease-status") == "locked", h
    assert h.headers.get("x-ms-lease-state") == "leased", h
    assert h.headers.get("x-ms-lease-duration") == "infinite", h


def test_write_without_lease_id_412(braw, leased):
    container, path, lease_id = leased
    assert_raw_error(put_blob(braw, container.container_name, "leased", b"new"), 412, "LeaseIdMissing")
    assert_raw_error(braw.put(path, {"comp": "metadata"}, headers={"x-ms-meta-a": "b"}), 412, "LeaseIdMissing")
    assert_raw_error(braw.put(path, {"comp": "properties"}), 412, "LeaseIdMissing")
    assert_raw_error(braw.delete(path), 412, "LeaseIdMissing")
    assert_raw_error(
        put_blob(braw, container.container_name, "leased", b"new", {"x-ms-lease-id": str(uuid.uuid4())}),
        412,
        "LeaseIdMismatchWithBlobOperation",
    )
    # reads need no lease id
    assert braw.get(path).status == 200
    # the right id writes, and Put Blob keeps the lease
    ok = put_blob(braw, container.container_name, "leased", b"new", {"x-ms-lease-id": lease_id})
    assert ok.status == 201, ok
    assert braw.head(path).headers.get("x-ms-lease-state") == "leased"
    expect_error(lambda: container.get_blob_client("leased").upload_blob(b"sdk", overwrite=True), 412, "LeaseIdMissing")


def test_acquire_conflict_and_reacquire_same_id(braw, leased):
    _, path, lease_id = leased
    assert_raw_error(
        _lease(braw, path, "acquire", x_ms_lease_duration="-1", x_ms_proposed_lease_id=str(uuid.uuid4())),
        409,
        "LeaseAlreadyPresent",
    )
    r = _lease(braw, path, "acquire", x_ms_lease_duration="15", x_ms_proposed_lease_id=lease_id)
    assert r.status == 201, r
    assert braw.head(path).headers.get("x-ms-lease-duration") == "fixed"


def test_renew_change_release(braw, leased):
    _, path, lease_id = leased
    etag = braw.head(path).headers["ETag"]
    r = _lease(braw, path, "renew", x_ms_lease_id=lease_id)
    assert r.status == 200, r
    assert r.headers.get("x-ms-lease-id") == lease_id
    assert braw.head(path).headers["ETag"] == etag, "renew keeps the ETag"
    assert_raw_error(_lease(braw, path, "renew", x_ms_lease_id=str(uuid.uuid4())), 409, "LeaseIdMismatchWithLeaseOperation")

    new_id = str(uuid.uuid4())
    r = _lease(braw, path, "change", x_ms_lease_id=lease_id, x_ms_proposed_lease_id=new_id)
    assert r.status == 200, r
    assert r.headers.get("x-ms-lease-id") == new_id
    assert_raw_error(braw.put(path, {"comp": "metadata"}, headers={"x-ms-lease-id": lease_id}), 412, "LeaseIdMismatchWithBlobOperation")
    assert braw.put(path, {"comp": "metadata"}, headers={"x-ms-lease-id": new_id}).status == 200

    etag = braw.head(path).headers["ETag"]
    r = _lease(braw, path, "release", x_ms_lease_id=new_id)
    assert r.status == 200, r
    h = braw.head(path)
    assert h.headers.get("x-ms-lease-state") == "available"
    assert h.headers.get("x-ms-lease-status") == "unlocked"
    assert h.headers["ETag"] == etag, "lease operations keep the ETag"
    # no lease any more: writes need no id, and an id is now an error
    assert braw.put(path, {"comp": "metadata"}).status == 200
    assert_raw_error(
        braw.put(path, {"comp": "metadata"}, headers={"x-ms-lease-id": new_id}), 412, "LeaseNotPresentWithBlobOperation"
    )


def test_break_lease(braw, leased):
    container, path, lease_id = leased
    r = _lease(braw, path, "break")
    assert r.status == 202, r
    assert r.headers.get("x-ms-lease-time") == "0", "infinite lease without period breaks now"
    h = braw.head(path)
    assert h.headers.get("x-ms-lease-state") == "broken"
    assert h.headers.get("x-ms-lease-status") == "unlocked"
    assert_raw_error(_lease(braw, path, "renew", x_ms_lease_id=lease_id), 409, "LeaseIsBrokenAndCannotBeRenewed")
    # broken lease: writes work again without an id
    assert put_blob(braw, container.container_name, "leased", b"free").status == 201
    # and it can be acquired afresh
    r = _lease(braw, path, "acquire", x_ms_lease_duration="-1")
    assert r.status == 201 and r.headers.get("x-ms-lease-id"), r


def test_break_with_period_is_breaking(braw, leased):
    _, path, lease_id = leased
    r = _lease(braw, path, "break", x_ms_lease_break_period="30")
    assert r.status == 202, r
    assert 0 < int(r.headers.get("x-ms-lease-time", "0")) <= 30, r
    h = braw.head(path)
    assert h.headers.get("x-ms-lease-state") == "breaking"
    assert h.headers.get("x-ms-lease-status") == "locked"
    assert_raw_error(
        _lease(braw, path, "change", x_ms_lease_id=lease_id, x_ms_proposed_lease_id=str(uuid.uuid4())),
        409,
        "LeaseIsBreakingAndCannotBeChanged",
    )


def test_lease_ops_without_lease(container, braw):
    container.upload_blob("free", b"x")
    path = bpath(container.container_name, "free")
    assert_raw_error(_lease(braw, path, "break"), 409, "LeaseNotPresentWithLeaseOperation")
    assert_raw_error(
        _lease(braw, path, "change", x_ms_lease_id=str(uuid.uuid4()), x_ms_proposed_lease_id=str(uuid.uuid4())),
        409,
        "LeaseNotPresentWithLeaseOperation",
    )


@pytest.mark.parametrize("duration", ["10", "61", "0"])
def test_invalid_lease_duration(container, braw, duration):
    container.upload_blob("dur", b"x")
    r = _lease(braw, bpath(container.container_name, "dur"), "acquire", x_ms_lease_duration=duration)
    assert_raw_error(r, 400, "InvalidHeaderValue")


def test_lease_missing_blob(container, braw):
    r = _lease(braw, bpath(container.container_name, "ghost"), "acquire", x_ms_lease_duration="-1")
    assert_raw_error(r, 404, "BlobNotFound")


def test_sdk_lease_client(container):
    blob = container.upload_blob("sdk", b"x")
    lease = blob.acquire_lease(lease_duration=15)
    assert isinstance(lease, BlobLeaseClient)
    props = blob.get_blob_properties()
    assert (props.lease.status, props.lease.state, props.lease.duration) == ("locked", "leased", "fixed")
    blob.set_blob_metadata({"a": "b"}, lease=lease)
    lease.renew()
    lease.release()
    assert blob.get_blob_properties().lease.state == "available"
    blob.delete_blob()
