"""Shared access signatures for Blob: account SAS, container SAS, blob SAS with response
overrides, expiry, stored access policies."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import (
    AccessPolicy,
    AccountSasPermissions,
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_blob_sas,
    generate_container_sas,
)

from blob_helpers import assert_raw_error, bpath, code, now


def _account_sas(t, permission, resource_types=None, expiry=None):
    return generate_account_sas(
        t.account_name,
        t.account_key,
        resource_types or ResourceTypes(service=True, container=True, object=True),
        permission,
        expiry or now() + dt.timedelta(hours=1),
    )


def _blob_sas(t, container, blob, permission, **kw):
    kw.setdefault("expiry", now() + dt.timedelta(hours=1))
    return generate_blob_sas(t.account_name, container, blob, account_key=t.account_key, permission=permission, **kw)


def _container_sas(t, container, permission, **kw):
    kw.setdefault("expiry", now() + dt.timedelta(hours=1))
    return generate_container_sas(t.account_name, container, account_key=t.account_key, permission=permission, **kw)


def _blob(t, container, blob, sas) -> BlobClient:
    return BlobClient(t.blob_endpoint, container, blob, credential=sas)


def _forbidden(fn, error_code):
    with pytest.raises(HttpResponseError) as ei:
        fn()
    assert ei.value.status_code == 403, ei.value
    assert code(ei.value) == error_code, ei.value
    return ei.value


# --------------------------------------------------------------------------------------
# account SAS


def test_account_sas_full_access(blob_target, container):
    sas = _account_sas(
        blob_target, AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True)
    )
    blob = _blob(blob_target, container.container_name, "acct", sas)
    blob.upload_blob(b"via account sas")
    assert blob.download_blob().readall() == b"via account sas"
    svc = BlobServiceClient(blob_target.blob_endpoint, credential=sas)
    assert container.container_name in [c.name for c in svc.list_containers(name_starts_with=container.container_name)]
    blob.delete_blob()


def test_account_sas_read_only(blob_target, container, braw):
    container.upload_blob("ro", b"readable")
    sas = _account_sas(blob_target, AccountSasPermissions(read=True))
    blob = _blob(blob_target, container.container_name, "ro", sas)
    assert blob.download_blob().readall() == b"readable"
    assert blob.get_blob_properties().size == 8
    _forbidden(lambda: blob.upload_blob(b"nope", overwrite=True), "AuthorizationPermissionMismatch")
    _forbidden(lambda: _blob(blob_target, container.container_name, "new", sas).upload_blob(b"x"), "AuthorizationPermissionMismatch")
    _forbidden(blob.delete_blob, "AuthorizationPermissionMismatch")
    # raw: same answer without the SDK
    r = braw.put(
        bpath(container.container_name, "ro"),
        headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"},
        body=b"raw",
        sas=sas,
    )
    assert_raw_error(r, 403, "AuthorizationPermissionMismatch")


def test_account_sas_resource_type_mismatch(blob_target, container):
    container.upload_blob("rt", b"x")
    sas = _account_sas(blob_target, AccountSasPermissions(read=True, list=True), ResourceTypes(service=True))
    _forbidden(lambda: _blob(blob_target, container.container_name, "rt", sas).download_blob().readall(), "AuthorizationResourceTypeMismatch")


# --------------------------------------------------------------------------------------
# container SAS


def test_container_sas_list_and_read(blob_target, container):
    container.upload_blob("one", b"1")
    container.upload_blob("two", b"2")
    sas = _container_sas(blob_target, container.container_name, ContainerSasPermissions(read=True, list=True))
    cc = ContainerClient(blob_target.blob_endpoint, container.container_name, credential=sas)
    assert [b.name for b in cc.list_blobs()] == ["one", "two"]
    assert cc.get_blob_client("two").download_blob().readall() == b"2"
    _forbidden(lambda: cc.upload_blob("three", b"3"), "AuthorizationPermissionMismatch")


def test_container_sas_without_list(blob_target, container):
    container.upload_blob("one", b"1")
    sas = _container_sas(blob_target, container.container_name, ContainerSasPermissions(read=True))
    cc = ContainerClient(blob_target.blob_endpoint, container.container_name, credential=sas)
    _forbidden(lambda: list(cc.list_blobs()), "AuthorizationPermissionMismatch")
    assert cc.get_blob_client("one").download_blob().readall() == b"1"


def test_container_sas_write_create(blob_target, container):
    sas = _container_sas(blob_target, container.container_name, ContainerSasPermissions(write=True, create=True, read=True))
    cc = ContainerClient(blob_target.blob_endpoint, container.container_name, credential=sas)
    cc.upload_blob("made", b"by sas")
    assert container.get_blob_client("made").download_blob().readall() == b"by sas"


# --------------------------------------------------------------------------------------
# blob SAS


def test_blob_sas_read_with_response_overrides(blob_target, container, braw):
    container.upload_blob("report.bin", b"%PDF-fake", content_settings=None)
    sas = _blob_sas(
        blob_target,
        container.container_name,
        "report.bin",
        BlobSasPermissions(read=True),
        content_disposition='attachment; filename="report.pdf"',
        content_type="application/pdf",
        cache_control="no-store",
    )
    r = braw.get(bpath(container.container_name, "report.bin"), sas=sas)
    assert r.status == 200, r
    assert r.body == b"%PDF-fake"
    assert r.headers.get("Content-Disposition") == 'attachment; filename="report.pdf"', r
    assert r.headers.get("Content-Type") == "application/pdf", r
    assert r.headers.get("Cache-Control") == "no-store", r
    h = braw.head(bpath(container.container_name, "report.bin"), sas=sas)
    assert h.status == 200 and h.headers.get("Content-Type") == "application/pdf", h
    # the stored properties are unchanged
    stored = container.get_blob_client("report.bin").get_blob_properties().content_settings
    assert stored.content_type == "application/octet-stream"
    assert stored.content_disposition is None


def test_blob_sas_scope_is_one_blob(blob_target, container, braw):
    container.upload_blob("mine", b"m")
    container.upload_blob("other", b"o")
    sas = _blob_sas(blob_target, container.container_name, "mine", BlobSasPermissions(read=True))
    assert _blob(blob_target, container.container_name, "mine", sas).download_blob().readall() == b"m"
    r = braw.get(bpath(container.container_name, "other"), sas=sas)
    assert r.status == 403 and r.error_code, r
    assert r.body != b"o"


def test_blob_sas_write(blob_target, container):
    sas = _blob_sas(blob_target, container.container_name, "w", BlobSasPermissions(create=True, write=True))
    _blob(blob_target, container.container_name, "w", sas).upload_blob(b"written")
    assert container.get_blob_client("w").download_blob().readall() == b"written"
    _forbidden(lambda: _blob(blob_target, container.container_name, "w", sas).download_blob().readall(), "AuthorizationPermissionMismatch")


def _invalid_sas(t, container_name, blob_name, case):
    """A SAS for `blob_name` that the service must refuse, by `case`."""
    past = now() - dt.timedelta(minutes=5)
    read = BlobSasPermissions(read=True)
    if case == "blob-expired":
        return _blob_sas(t, container_name, blob_name, read, expiry=past, start=past - dt.timedelta(hours=1))
    if case == "account-expired":
        return _account_sas(t, AccountSasPermissions(read=True), expiry=past)
    if case == "container-expired":
        return _container_sas(t, container_name, ContainerSasPermissions(read=True), expiry=past)
    if case == "not-yet-valid":
        return _blob_sas(t, container_name, blob_name, read, start=now() + dt.timedelta(minutes=30))
    if case == "tampered-permissions":
        sas = _blob_sas(t, container_name, blob_name, read)
        assert "sp=r&" in sas, sas
        return sas.replace("sp=r&", "sp=rw&")
    if case == "other-blob":
        return _blob_sas(t, container_name, blob_name + "-other", read)
    if case == "wrong-key":
        return generate_blob_sas(
            t.account_name, container_name, blob_name, account_key=base64.b64encode(b"k" * 64).decode(),
            permission=read, expiry=now() + dt.timedelta(hours=1),
        )
    raise AssertionError(case)


INVALID_SAS_CASES = ["blob-expired", "account-expired", "container-expired", "not-yet-valid", "tampered-permissions", "other-blob", "wrong-key"]


@pytest.mark.parametrize("case", INVALID_SAS_CASES)
def test_invalid_sas_refused(blob_target, container, braw, case):
    container.upload_blob("s", b"secret bytes")
    r = braw.get(bpath(container.container_name, "s"), sas=_invalid_sas(blob_target, container.container_name, "s", case))
    assert r.status == 403, r
    assert r.error_code and r.xml_error()["Code"] == r.error_code, r
    assert b"secret bytes" not in r.body


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 answers every SAS it cannot authenticate (expired, not yet valid, signature mismatch) "
    "with 403 AuthorizationFailure, although its message is AuthenticationFailed's. "
    "https://learn.microsoft.com/troubleshoot/azure/azure-storage/blobs/authentication/storage-troubleshoot-403-errors "
    "lists these cases (expired token, clock skew, future start time; signature mismatch) under error code "
    "AuthenticationFailed, and https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes gives "
    "AuthenticationFailed (403) the message 'Server failed to authenticate the request. Make sure the value of the "
    "Authorization header is formed correctly including the signature.' (AuthorizationFailure's is 'This request is "
    "not authorized to perform this operation.')"
)
@pytest.mark.parametrize("case", INVALID_SAS_CASES)
def test_invalid_sas_is_authentication_failed(blob_target, container, braw, case):
    container.upload_blob("s", b"x")
    r = braw.get(bpath(container.container_name, "s"), sas=_invalid_sas(blob_target, container.container_name, "s", case))
    assert_raw_error(r, 403, "AuthenticationFailed")


# --------------------------------------------------------------------------------------
# stored access policies


def test_stored_access_policy(blob_target, container):
    container.upload_blob("pol", b"policy")
    container.set_container_access_policy(
        signed_identifiers={"readers": AccessPolicy(permission=ContainerSasPermissions(read=True, list=True), expiry=now() + dt.timedelta(hours=1))}
    )
    acl = container.get_container_access_policy()
    assert [si.id for si in acl["signed_identifiers"]] == ["readers"]
    assert acl["signed_identifiers"][0].access_policy.permission == "rl"
    assert acl["public_access"] is None

    sas = generate_blob_sas(blob_target.account_name, container.container_name, "pol", account_key=blob_target.account_key, policy_id="readers")
    blob = _blob(blob_target, container.container_name, "pol", sas)
    assert blob.download_blob().readall() == b"policy"
    _forbidden(lambda: blob.upload_blob(b"nope", overwrite=True), "AuthorizationPermissionMismatch")

    csas = generate_container_sas(blob_target.account_name, container.container_name, account_key=blob_target.account_key, policy_id="readers")
    assert [b.name for b in ContainerClient(blob_target.blob_endpoint, container.container_name, credential=csas).list_blobs()] == ["pol"]

    # removing the policy revokes tokens issued against it
    container.set_container_access_policy(signed_identifiers={})
    with pytest.raises(HttpResponseError) as ei:
        blob.download_blob().readall()
    assert ei.value.status_code == 403, ei.value


def test_container_acl_raw(container, braw):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><SignedIdentifiers><SignedIdentifier><Id>p1</Id>'
        "<AccessPolicy><Start>2030-01-01T00:00:00.0000000Z</Start><Expiry>2030-01-02T00:00:00.0000000Z</Expiry>"
        "<Permission>rw</Permission></AccessPolicy></SignedIdentifier></SignedIdentifiers>"
    )
    q = {"restype": "container", "comp": "acl"}
    r = braw.put(container.container_name, q, body=body)
    assert r.status == 200, r
    assert r.headers.get("ETag"), r
    g = braw.get(container.container_name, q)
    assert g.status == 200, g
    assert "x-ms-blob-public-access" not in g.headers
    ids = g.xml().findall("SignedIdentifier")
    assert [i.findtext("Id") for i in ids] == ["p1"]
    assert ids[0].findtext("AccessPolicy/Permission") == "rw"
    assert ids[0].findtext("AccessPolicy/Start").startswith("2030-01-01T00:00:00")
