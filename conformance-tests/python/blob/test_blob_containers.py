"""Containers: create/delete, properties, metadata, List Containers, names, container leases."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from blob_helpers import assert_raw_error, expect_error, unique_name
from storage_http import find_text

CONTAINER = {"restype": "container"}

# --------------------------------------------------------------------------------------
# create / properties / metadata / delete


def test_create_container_201_then_409(bsc, braw, container_name):
    r = braw.put(container_name, CONTAINER)
    try:
        assert r.status == 201, r
        assert r.headers.get("ETag", "").startswith('"'), r
        assert r.headers.get("Last-Modified", "").endswith("GMT"), r
        assert r.headers.get("Content-Length") == "0", r
        again = braw.put(container_name, CONTAINER)
        assert_raw_error(again, 409, "ContainerAlreadyExists")
        err = expect_error(lambda: bsc.create_container(container_name), 409, "ContainerAlreadyExists")
        assert isinstance(err, ResourceExistsError)
    finally:
        braw.delete(container_name, CONTAINER)


def test_container_properties_and_metadata_case(bsc, braw, container_name):
    client = bsc.create_container(container_name, metadata={"MyKey": "Value One", "lower": "x"})
    try:
        props = client.get_container_properties()
        assert props.name == container_name
        assert props.metadata == {"MyKey": "Value One", "lower": "x"}
        assert props.lease.status == "unlocked"
        assert props.lease.state == "available"
        assert props.public_access is None
        assert props.etag and props.last_modified

        for method in ("GET", "HEAD"):
            r = braw.request(method, container_name, CONTAINER)
            assert r.status == 200, r
            assert r.body == b""
            names = [k for k in r.headers.keys() if k.lower().startswith("x-ms-meta-")]
            assert sorted(names) == ["x-ms-meta-MyKey", "x-ms-meta-lower"], r
            assert r.headers["x-ms-meta-MyKey"] == "Value One"
            assert r.headers.get("x-ms-lease-status") == "unlocked", r
            assert r.headers.get("x-ms-lease-state") == "available", r
            assert "x-ms-lease-duration" not in r.headers, r
            assert "x-ms-blob-public-access" not in r.headers, r
            assert r.headers.get("ETag") == props.etag, r

        r = braw.get(container_name, {"restype": "container", "comp": "metadata"})
        assert r.status == 200, r
        assert r.headers.get("x-ms-meta-MyKey") == "Value One", r
    finally:
        client.delete_container()


def test_set_container_metadata_replaces(container, braw):
    container.set_container_metadata({"a": "1", "B": "2"})
    assert container.get_container_properties().metadata == {"a": "1", "B": "2"}
    before = container.get_container_properties().etag

    r = braw.put(
        container.container_name, {"restype": "container", "comp": "metadata"}, headers={"x-ms-meta-Only": "3"}
    )
    assert r.status == 200, r
    assert r.headers.get("ETag") and r.headers["ETag"] != before, r
    assert container.get_container_properties().metadata == {"Only": "3"}

    container.set_container_metadata({})
    assert container.get_container_properties().metadata == {}


def test_delete_container_202_then_404(bsc, braw, container_name):
    bsc.create_container(container_name)
    bsc.get_container_client(container_name).upload_blob("inside", b"x")
    r = braw.delete(container_name, CONTAINER)
    assert r.status == 202, r
    assert_raw_error(braw.delete(container_name, CONTAINER), 404, "ContainerNotFound")
    assert_raw_error(braw.get(container_name, CONTAINER), 404, "ContainerNotFound")
    assert_raw_error(braw.head(container_name, CONTAINER), 404, "ContainerNotFound", head=True)
    err = expect_error(lambda: bsc.get_container_client(container_name).get_container_properties(), 404, "ContainerNotFound")
    assert isinstance(err, ResourceNotFoundError)
    assert not bsc.get_container_client(container_name).exists()
    # the name is free again (an emulator deletes at once) and the old blobs are gone
    bsc.create_container(container_name)
    try:
        assert list(bsc.get_container_client(container_name).list_blobs()) == []
    finally:
        bsc.delete_container(container_name)


def test_container_exists_helper(bsc, container):
    assert container.exists()
    assert not bsc.get_container_client(unique_name("nope")).exists()


# --------------------------------------------------------------------------------------
# List Containers


@pytest.fixture
def prefixed_containers(bsc: BlobServiceClient):
    """Three containers sharing a unique prefix (created out of name order), metadata on the middle one."""
    prefix = unique_name("lc")[:14]
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    for name in (names[2], names[0], names[1]):
        bsc.create_container(name, metadata={"Color": "Red"} if name == names[1] else None)
    yield prefix, names
    for name in names:
        bsc.delete_container(name)


def test_list_containers_prefix_sorted(bsc, prefixed_containers):
    prefix, names = prefixed_containers
    assert [c.name for c in bsc.list_containers(name_starts_with=prefix)] == names
    assert [c.name for c in bsc.list_containers(name_starts_with=prefix + "-b")] == [names[1]]
    assert list(bsc.list_containers(name_starts_with=prefix + "-zzz")) == []


def test_list_containers_include_metadata(bsc, prefixed_containers):
    prefix, names = prefixed_containers
    plain = {c.name: c.metadata for c in bsc.list_containers(name_starts_with=prefix)}
    assert all(not md for md in plain.values()), plain
    with_md = {c.name: c.metadata for c in bsc.list_containers(name_starts_with=prefix, include_metadata=True)}
    assert with_md[names[1]] == {"Color": "Red"}
    assert not with_md[names[0]]


def test_list_containers_paging_sdk(bsc, prefixed_containers):
    prefix, names = prefixed_containers
    pager = bsc.list_containers(name_starts_with=prefix, results_per_page=2).by_page()
    first = [c.name for c in next(pager)]
    assert first == names[:2]
    token = pager.continuation_token
    assert token
    rest = bsc.list_containers(name_starts_with=prefix, results_per_page=2).by_page(continuation_token=token)
    pages = [[c.name for c in page] for page in rest]
    assert pages == [names[2:]]


def test_list_containers_raw_xml(braw, prefixed_containers):
    prefix, names = prefixed_containers
    r = braw.get("", {"comp": "list", "prefix": prefix, "maxresults": "2", "include": "metadata"})
    assert r.status == 200, r
    assert r.headers.get("Content-Type", "").startswith("application/xml"), r
    root = r.xml()
    assert root.tag == "EnumerationResults"
    assert root.get("ServiceEndpoint", "").rstrip("/").endswith(braw.account), r
    assert find_text(root, "Prefix") == prefix
    assert find_text(root, "MaxResults") == "2"
    listed = [c.findtext("Name") for c in root.findall("Containers/Container")]
    assert listed == names[:2]
    marker = find_text(root, "NextMarker")
    assert marker, r
    c0 = root.find("Containers/Container")
    etag = c0.findtext("Properties/Etag")
    assert etag and etag.startswith('"') and etag.endswith('"'), "List Containers keeps ETag quotes"
    assert c0.findtext("Properties/Last-Modified", "").endswith("GMT")
    assert c0.findtext("Properties/LeaseStatus") == "unlocked"
    assert c0.findtext("Properties/LeaseState") == "available"
    md = root.find("Containers/Container[Name='%s']/Metadata" % names[1])
    assert md is not None and md.findtext("Color") == "Red", r

    r2 = braw.get("", {"comp": "list", "prefix": prefix, "maxresults": "2", "marker": marker})
    assert r2.status == 200, r2
    root2 = r2.xml()
    assert find_text(root2, "Marker") in (marker, None), "Marker, when echoed, is the one sent"
    assert [c.findtext("Name") for c in root2.findall("Containers/Container")] == names[2:]
    assert find_text(root2, "NextMarker") in ("", None), "last page: NextMarker absent or empty"
    assert root2.find("Containers/Container/Metadata") is None, "no Metadata without include=metadata"


# --------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize(
    "name,error_code",
    [
        ("ab", "OutOfRangeInput"),
        ("a" * 64, "OutOfRangeInput"),
        ("UpperCase", "InvalidResourceName"),
        ("bad--dash", "InvalidResourceName"),
        ("-leading", "InvalidResourceName"),
        ("trailing-", "InvalidResourceName"),
        ("under_score", "InvalidResourceName"),
    ],
)
def test_invalid_container_names(braw, name, error_code):
    r = braw.put(name, CONTAINER)
    try:
        assert_raw_error(r, 400, error_code)
    finally:
        if r.status == 201:
            braw.delete(name, CONTAINER)


@pytest.mark.parametrize("shape", ["three-chars", "sixty-three-chars", "single-dashes", "leading-digit"])
def test_valid_container_name_edges(braw, shape):
    u = uuid.uuid4().hex
    name = {
        "three-chars": u[:3],
        "sixty-three-chars": ("v" + u * 3)[:63],
        "single-dashes": f"{u[:4]}-{u[4:8]}-9",
        "leading-digit": "9" + u[:6],
    }[shape]
    r = braw.put(name, CONTAINER)
    try:
        assert r.status == 201, r
    finally:
        braw.delete(name, CONTAINER)


# --------------------------------------------------------------------------------------
# container leases


def test_container_lease_lifecycle(braw, container_name, bsc):
    bsc.create_container(container_name)
    q = {"restype": "container", "comp": "lease"}
    lease_id = str(uuid.uuid4())
    try:
        r = braw.put(
            container_name, q, headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1", "x-ms-proposed-lease-id": lease_id}
        )
        assert r.status == 201, r
        assert r.headers.get("x-ms-lease-id") == lease_id, r
        props = braw.head(container_name, CONTAINER)
        assert props.headers.get("x-ms-lease-status") == "locked", props
        assert props.headers.get("x-ms-lease-state") == "leased", props
        assert props.headers.get("x-ms-lease-duration") == "infinite", props

        other = braw.put(
            container_name, q, headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1", "x-ms-proposed-lease-id": str(uuid.uuid4())}
        )
        assert_raw_error(other, 409, "LeaseAlreadyPresent")

        assert_raw_error(braw.delete(container_name, CONTAINER), 412, "LeaseIdMissing")
        assert_raw_error(
            braw.delete(container_name, CONTAINER, headers={"x-ms-lease-id": str(uuid.uuid4())}),
            412,
            "LeaseIdMismatchWithContainerOperation",
        )

        r = braw.put(container_name, q, headers={"x-ms-lease-action": "renew", "x-ms-lease-id": lease_id})
        assert r.status == 200, r
        assert r.headers.get("x-ms-lease-id") == lease_id

        r = braw.put(container_name, q, headers={"x-ms-lease-action": "break", "x-ms-lease-break-period": "0"})
        assert r.status == 202, r
        assert r.headers.get("x-ms-lease-time") == "0", r
        props = braw.head(container_name, CONTAINER)
        assert props.headers.get("x-ms-lease-state") == "broken", props
        assert props.headers.get("x-ms-lease-status") == "unlocked", props

        r = braw.put(container_name, q, headers={"x-ms-lease-action": "release", "x-ms-lease-id": lease_id})
        assert r.status == 200, r
        assert braw.head(container_name, CONTAINER).headers.get("x-ms-lease-state") == "available"
    finally:
        braw.put(container_name, q, headers={"x-ms-lease-action": "break", "x-ms-lease-break-period": "0"})
        bsc.delete_container(container_name)


def test_container_lease_sdk_delete_with_lease(bsc, container_name):
    client = bsc.create_container(container_name)
    lease = client.acquire_lease(lease_duration=15)
    assert client.get_container_properties().lease.duration == "fixed"
    expect_error(client.delete_container, 412, "LeaseIdMissing")
    client.delete_container(lease=lease)
    assert not client.exists()
