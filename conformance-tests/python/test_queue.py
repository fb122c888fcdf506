"""Queue-level operations: create, delete, metadata, ACL, naming rules."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import AccessPolicy, QueueSasPermissions

from storage_http import find_text


def code(err: HttpResponseError) -> str:
    """Error code as a plain string (the SDK sometimes gives a StorageErrorCode enum)."""
    c = err.error_code
    return str(getattr(c, "value", c))


# --------------------------------------------------------------------------------------
# Create / delete


def test_create_queue_returns_201_then_204_for_identical_metadata(raw, service, queue_name):
    try:
        r = raw.put(queue_name, headers={"x-ms-meta-Color": "blue"})
        assert r.status == 201, r
        assert r.headers.get("x-ms-request-id")
        # identical metadata (names compared case-insensitively) is not a conflict
        r2 = raw.put(queue_name, headers={"x-ms-meta-color": "blue"})
        assert r2.status == 204, r2
        # different metadata is
        r3 = raw.put(queue_name, headers={"x-ms-meta-Color": "green"})
        assert r3.status == 409, r3
        assert r3.error_code == "QueueAlreadyExists"
        assert r3.xml_error()["Code"] == "QueueAlreadyExists"
        # no metadata vs. existing metadata is also a conflict
        r4 = raw.put(queue_name)
        assert r4.status == 409, r4
        assert service.get_queue_client(queue_name).get_queue_properties().metadata == {"Color": "blue"}
    finally:
        raw.delete(queue_name)


def test_create_queue_sdk_identical_and_different_metadata(service, queue_name):
    q = service.get_queue_client(queue_name)
    q.create_queue(metadata={"Owner": "conformance"})
    try:
        # azure-storage-queue turns the 204 "already exists with identical metadata" answer into a
        # ResourceExistsError that still carries the 204 status (see deserialize_queue_creation).
        with pytest.raises(ResourceExistsError) as same:
            q.create_queue(metadata={"Owner": "conformance"})
        assert same.value.status_code == 204
        assert code(same.value) == "QueueAlreadyExists"

        with pytest.raises(ResourceExistsError) as diff:
            q.create_queue(metadata={"Owner": "someone-else"})
        assert diff.value.status_code == 409
        assert code(diff.value) == "QueueAlreadyExists"
        # the failed create did not touch the existing queue
        assert q.get_queue_properties().metadata == {"Owner": "conformance"}
    finally:
        q.delete_queue()


def test_create_without_metadata_twice_is_idempotent_204(raw, queue_name):
    try:
        assert raw.put(queue_name).status == 201
        r = raw.put(queue_name)
        assert r.status == 204, r
    finally:
        raw.delete(queue_name)


def test_delete_queue_and_missing_queue(service, raw, queue_name):
    q = service.get_queue_client(queue_name)
    q.create_queue()
    q.send_message("goes away with the queue")
    r = raw.delete(queue_name)
    assert r.status == 204, r
    with pytest.raises(ResourceNotFoundError) as ei:
        q.get_queue_properties()
    assert ei.value.status_code == 404
    assert code(ei.value) == "QueueNotFound"

    with pytest.raises(ResourceNotFoundError) as ei2:
        q.delete_queue()
    assert code(ei2.value) == "QueueNotFound"

    r2 = raw.delete(queue_name)
    assert r2.status == 404, r2
    assert r2.error_code == "QueueNotFound"
    assert r2.xml_error()["Code"] == "QueueNotFound"


def test_recreated_queue_is_empty(service, queue_name):
    q = service.get_queue_client(queue_name)
    q.create_queue()
    q.send_message("old")
    q.delete_queue()
    q.create_queue()
    try:
        assert q.peek_messages() == []
        assert q.get_queue_properties().approximate_message_count == 0
    finally:
        q.delete_queue()


def test_operations_on_missing_queue_return_queue_not_found(service, queue_name):
    q = service.get_queue_client(queue_name)
    for op in (
        lambda: q.send_message("x"),
        lambda: q.receive_message(),
        lambda: q.peek_messages(),
        lambda: q.clear_messages(),
        lambda: q.set_queue_metadata({"a": "b"}),
        lambda: q.get_queue_access_policy(),
    ):
        with pytest.raises(ResourceNotFoundError) as ei:
            op()
        assert ei.value.status_code == 404
        assert code(ei.value) == "QueueNotFound"


# --------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    "name,expected_code",
    [
        ("UpperCase", "InvalidResourceName"),
        ("ab", "OutOfRangeInput"),
        ("a" * 64, "OutOfRangeInput"),
        ("double--dash", "InvalidResourceName"),
        ("-leading-dash", "InvalidResourceName"),
        ("trailing-dash-", "InvalidResourceName"),
        ("under_score", "InvalidResourceName"),
    ],
)
def test_invalid_queue_names_rejected(raw, service, name, expected_code):
    r = raw.put(name)
    assert r.status == 400, r
    assert r.error_code == expected_code
    assert r.xml_error()["Code"] == expected_code
    with pytest.raises(HttpResponseError) as ei:
        service.create_queue(name)
    assert ei.value.status_code == 400
    assert code(ei.value) == expected_code


@pytest.mark.parametrize("shape", ["len3", "len63", "dashes", "digits"])
def test_valid_edge_case_queue_names(raw, service, shape):
    import random
    import string

    alnum = string.ascii_lowercase + string.digits
    for _ in range(10):
        rnd = "".join(random.choice(alnum) for _ in range(63))
        name = {
            "len3": rnd[:3],
            "len63": rnd[:63],
            "dashes": f"{rnd[:4]}-{rnd[4:8]}-{rnd[8:12]}",
            "digits": "".join(random.choice(string.digits) for _ in range(12)),
        }[shape]
        r = raw.put(name)
        if r.status == 201:
            break
        assert r.status == 204, r  # a random name that already exists: try another one
    else:
        pytest.fail("could not find an unused queue name")
    try:
        assert service.get_queue_client(name).get_queue_properties().name == name
        assert name in [q.name for q in service.list_queues(name_starts_with=name)]
    finally:
        assert raw.delete(name).status == 204


# --------------------------------------------------------------------------------------
# Metadata


def test_get_properties_preserves_metadata_case_and_counts_messages(queue):
    queue.set_queue_metadata({"CamelCase": "One", "lower": "two", "UPPER": "three"})
    for i in range(3):
        queue.send_message(f"m{i}")
    # invisible messages still count
    assert queue.receive_message(visibility_timeout=60) is not None
    props = queue.get_queue_properties()
    assert props.metadata == {"CamelCase": "One", "lower": "two", "UPPER": "three"}
    assert props.approximate_message_count == 3


def test_set_metadata_replaces_whole_set(queue):
    queue.set_queue_metadata({"first": "1", "second": "2"})
    queue.set_queue_metadata({"third": "3"})
    assert queue.get_queue_properties().metadata == {"third": "3"}
    queue.set_queue_metadata({})
    assert queue.get_queue_properties().metadata == {}


def test_metadata_raw_headers(raw, queue):
    r = raw.put(queue.queue_name, {"comp": "metadata"}, headers={"x-ms-meta-MixedCase": "Value With Spaces"})
    assert r.status == 204, r
    g = raw.get(queue.queue_name, {"comp": "metadata"})
    assert g.status == 200, g
    assert g.body == b""
    assert g.headers.get("x-ms-meta-MixedCase") == "Value With Spaces"
    assert g.headers.get("x-ms-approximate-messages-count") == "0"
    h = raw.head(queue.queue_name, {"comp": "metadata"})
    assert h.status == 200, h
    assert h.headers.get("x-ms-approximate-messages-count") == "0"


def test_metadata_name_case_survives_headers_and_listing(raw, queue_name):
    names = {"MixedCase": "v1", "lower": "v2", "UPPER": "v3", "with_Underscore9": "v4"}
    try:
        r = raw.put(queue_name, headers={f"x-ms-meta-{k}": v for k, v in names.items()})
        assert r.status == 201, r
        for method in ("GET", "HEAD"):
            g = raw.request(method, queue_name, {"comp": "metadata"})
            assert g.status == 200, g
            # requests' header dict is case-insensitive: compare the names as they came off the wire
            got = {k[len("x-ms-meta-"):]: v for k, v in g.headers.items() if k.lower().startswith("x-ms-meta-")}
            assert got == names, (method, got)
        lst = raw.get("", {"comp": "list", "prefix": queue_name, "include": "metadata"})
        assert lst.status == 200, lst
        meta = lst.xml().find("Queues/Queue/Metadata")
        assert meta is not None, lst
        assert {child.tag: child.text for child in meta} == names
        # Set Queue Metadata replaces the set, and the new spelling is what comes back
        s2 = raw.put(queue_name, {"comp": "metadata"}, headers={"x-ms-meta-mixedcase": "again"})
        assert s2.status == 204, s2
        lst2 = raw.get("", {"comp": "list", "prefix": queue_name, "include": "metadata"})
        assert {c.tag: c.text for c in lst2.xml().find("Queues/Queue/Metadata")} == {"mixedcase": "again"}
    finally:
        raw.delete(queue_name)


def _put_with_duplicate_headers(target, path_and_query: str, headers):
    """PUT with repeated header names (requests can't), authorized by an account SAS so that the
    Shared Key treatment of repeated headers doesn't get in the way."""
    import http.client
    from urllib.parse import urlparse

    from azure.storage.queue import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        target.account_name, target.account_key, ResourceTypes(container=True),
        AccountSasPermissions(write=True, create=True), dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    p = urlparse(target.queue_endpoint)
    path = p.path.rstrip("/") + "/" + path_and_query
    path += ("&" if "?" in path else "?") + sas
    conn = http.client.HTTPConnection(p.hostname, p.port, timeout=30) if p.scheme == "http" else \
        http.client.HTTPSConnection(p.hostname, p.port, timeout=30)
    try:
        conn.putrequest("PUT", path)
        for k, v in [("x-ms-version", "2021-10-04"), ("Content-Length", "0"), *headers]:
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.getheader("x-ms-error-code"), resp.read()
    finally:
        conn.close()


DUPLICATE_METADATA_REASON = (
    "Azurite 3.37.0 accepts metadata names that differ only in case in one request and stores one entry with the "
    "values joined ('Color: red, blue'). https://learn.microsoft.com/rest/api/storageservices/"
    "naming-queues-and-metadata: 'Metadata names preserve the case with which they were created, but are "
    "case-insensitive when set or read. If two or more metadata headers with the same name are submitted for a "
    "resource, the Queue service returns status code 400 (Bad Request).'"
)


@pytest.mark.azurite_deviation(reason=DUPLICATE_METADATA_REASON)
@pytest.mark.parametrize("second", ["x-ms-meta-color", "x-ms-meta-COLOR"])
def test_create_queue_with_duplicate_metadata_names_rejected(target, raw, queue_name, second):
    try:
        status, code_, body = _put_with_duplicate_headers(
            target, queue_name, [("x-ms-meta-Color", "red"), (second, "blue")]
        )
        assert status == 400, (status, code_, body)
        assert code_, body
        assert raw.get(queue_name, {"comp": "metadata"}).status == 404  # not created
        # control: the same request without the duplicate goes through
        ok, _, body = _put_with_duplicate_headers(target, queue_name, [("x-ms-meta-Color", "red")])
        assert ok == 201, body
    finally:
        raw.delete(queue_name)


@pytest.mark.azurite_deviation(reason=DUPLICATE_METADATA_REASON)
def test_set_metadata_with_duplicate_names_rejected(target, queue):
    queue.set_queue_metadata({"Keep": "me"})
    status, code_, body = _put_with_duplicate_headers(
        target, f"{queue.queue_name}?comp=metadata", [("x-ms-meta-Color", "red"), ("x-ms-meta-color", "blue")]
    )
    assert status == 400, (status, code_, body)
    assert code_, body
    assert queue.get_queue_properties().metadata == {"Keep": "me"}


# --------------------------------------------------------------------------------------
# Access policy (stored identifiers)


def _utc(*args):
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


def _as_utc(value):
    """The SDK hands ACL times back as ISO-8601 strings (7 fractional digits on Azure)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = value.rstrip("Z")
    main, _, frac = text.partition(".")
    parsed = dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return parsed + dt.timedelta(microseconds=int((frac + "000000")[:6])) if frac else parsed


def test_access_policy_round_trip(queue):
    start, expiry = _utc(2030, 1, 1, 0, 0, 0), _utc(2030, 2, 1, 12, 30, 0)
    queue.set_queue_access_policy(
        {
            "read-only": AccessPolicy(permission=QueueSasPermissions(read=True), start=start, expiry=expiry),
            "all": AccessPolicy(
                permission=QueueSasPermissions(read=True, add=True, update=True, process=True), expiry=expiry
            ),
        }
    )
    acl = queue.get_queue_access_policy()
    assert set(acl) == {"read-only", "all"}
    assert acl["read-only"].permission == "r"
    assert acl["all"].permission == "raup"
    assert _as_utc(acl["read-only"].start) == start
    assert _as_utc(acl["read-only"].expiry) == expiry
    assert _as_utc(acl["all"].expiry) == expiry
    assert not acl["all"].start

    queue.set_queue_access_policy({})
    assert queue.get_queue_access_policy() == {}


def test_access_policy_raw_xml(raw, queue):
    body = (
        "<?xml version='1.0' encoding='utf-8'?><SignedIdentifiers><SignedIdentifier><Id>policy-1</Id>"
        "<AccessPolicy><Start>2030-01-01T00:00:00Z</Start><Expiry>2030-01-02T00:00:00Z</Expiry>"
        "<Permission>ra</Permission></AccessPolicy></SignedIdentifier></SignedIdentifiers>"
    )
    r = raw.put(queue.queue_name, {"comp": "acl"}, body=body)
    assert r.status == 204, r
    g = raw.get(queue.queue_name, {"comp": "acl"})
    assert g.status == 200, g
    root = g.xml()
    assert root.tag == "SignedIdentifiers"
    ids = root.findall("SignedIdentifier")
    assert len(ids) == 1
    assert find_text(ids[0], "Id") == "policy-1"
    assert find_text(ids[0], "AccessPolicy/Permission") == "ra"
    assert find_text(ids[0], "AccessPolicy/Start").startswith("2030-01-01T00:00:00")
    assert find_text(ids[0], "AccessPolicy/Expiry").startswith("2030-01-02T00:00:00")

    empty = raw.put(queue.queue_name, {"comp": "acl"}, body="")
    assert empty.status == 204, empty
    g2 = raw.get(queue.queue_name, {"comp": "acl"})
    assert g2.xml().findall("SignedIdentifier") == []


def test_access_policy_five_ok_six_rejected(queue):
    expiry = _utc(2030, 1, 1)
    five = {f"id{i}": AccessPolicy(permission="r", expiry=expiry) for i in range(5)}
    queue.set_queue_access_policy(five)
    assert set(queue.get_queue_access_policy()) == set(five)

    six = dict(five, id5=AccessPolicy(permission="r", expiry=expiry))
    # azure-storage-queue 12.18 only checks > 15 client-side, so this reaches the service
    with pytest.raises(HttpResponseError) as ei:
        queue.set_queue_access_policy(six)
    assert ei.value.status_code == 400
    assert code(ei.value) == "InvalidXmlDocument"
    # the rejected update left the stored policies alone
    assert set(queue.get_queue_access_policy()) == set(five)
