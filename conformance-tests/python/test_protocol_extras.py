"""Protocol extras over raw HTTP: host-style addressing, Shared Key Lite, unknown accounts, x-ms-version.

(SAS source-IP/protocol/service checks live in test_sas.py, Update Message past expiry in
test_messages.py, metadata-name case and duplicates in test_queue.py, admin-clock auth in
test_zz_emulator_clock.py.)
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Optional, Tuple
from urllib.parse import urlparse

import pytest

from storage_http import (
    RawClient,
    RawResponse,
    lite_string_to_sign,
    shared_key_signature,
    string_to_sign,
)

# --------------------------------------------------------------------------------------
# Host-style addressing
#
# Azure itself is host-style: the account is the first DNS label of Host and the path has no
# account segment; the Shared Key CanonicalizedResource is "/" + account + path
# (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key). Locally the
# same request is sent to 127.0.0.1 with `Host: <account>.queue.localhost:<port>` (Azurite's
# "production-style URL"; *.localhost does not resolve here, so only the Host header changes).


def host_style(target) -> Tuple[str, Optional[str]]:
    """(endpoint without account segment, Host header to send or None)."""
    if not target.is_path_style:  # an external host-style endpoint is already what we want
        return target.queue_endpoint, None
    p = urlparse(target.queue_endpoint)
    return target.base_url, f"{target.account_name}.queue.localhost:{p.port}"


@pytest.fixture
def hs(target):
    """RawClient for the host-style endpoint plus the Host header to add to every request."""
    endpoint, host = host_style(target)
    client = RawClient(endpoint, target.account_name, target.account_key)
    extra = {"Host": host} if host else {}

    def request(method, path="", query=None, headers=None, **kw) -> RawResponse:
        return client.request(method, path, query, headers={**extra, **(headers or {})}, **kw)

    request.client = client
    request.extra = extra
    return request


def test_host_style_list_queues(hs, queue):
    r = hs("GET", "", {"comp": "list"})
    assert r.status == 200, r
    # the canonicalized resource really was the host-style one: "/" + account + "/"
    assert r.string_to_sign.endswith(f"\n/{hs.client.account}/\ncomp:list"), r.string_to_sign
    root = r.xml()
    assert root.tag == "EnumerationResults"
    if hs.extra:
        assert root.get("ServiceEndpoint", "").startswith(f"http://{hs.extra['Host']}/"), root.attrib
    r2 = hs("GET", "", {"comp": "list", "prefix": queue.queue_name})
    assert r2.status == 200, r2
    assert [n.text for n in r2.xml().iter("Name")] == [queue.queue_name]


def test_host_style_create_queue_is_visible_path_style(hs, raw, service, queue_name):
    try:
        r = hs("PUT", queue_name, headers={"x-ms-meta-Origin": "host-style"})
        assert r.status == 201, r
        assert r.string_to_sign.endswith(f"\n/{hs.client.account}/{queue_name}"), r.string_to_sign
        # the same queue through the path-style endpoint and the SDK
        listed = raw.get("", {"comp": "list", "prefix": queue_name})
        assert listed.status == 200, listed
        assert [n.text for n in listed.xml().iter("Name")] == [queue_name]
        assert service.get_queue_client(queue_name).get_queue_properties().metadata == {"Origin": "host-style"}
        # and back through host-style
        g = hs("GET", queue_name, {"comp": "metadata"})
        assert g.status == 200, g
        assert g.headers.get("x-ms-meta-Origin") == "host-style"
        d = hs("DELETE", queue_name)
        assert d.status == 204, d
        assert raw.get(queue_name, {"comp": "metadata"}).status == 404
    finally:
        raw.delete(queue_name)


def test_host_style_rejects_path_style_canonicalization(hs):
    """Signing the doubled path-style resource for a host-style request must fail."""
    client = hs.client
    url = client.url("", {"comp": "list"})
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": client.version, **hs.extra}
    sts = string_to_sign("GET", url, headers, client.account)
    wrong = sts.replace(f"\n/{client.account}/\n", f"\n/{client.account}/{client.account}/\n")
    assert wrong != sts
    headers["Authorization"] = f"SharedKey {client.account}:{shared_key_signature(wrong, client.key)}"
    r = client.request("GET", url=url, headers=headers, sign=False)
    assert r.status == 403, r
    assert r.error_code == "AuthenticationFailed"


# --------------------------------------------------------------------------------------
# Shared Key Lite
# https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key#shared-key-lite-and-table-service-format-for-2009-09-19-and-later


@pytest.mark.parametrize("extra_query", [{}, {"timeout": "30"}], ids=["plain", "timeout-not-signed"])
def test_shared_key_lite_get_queue_metadata(raw, queue, extra_query):
    queue.set_queue_metadata({"Lite": "yes"})
    r = raw.get(queue.queue_name, {"comp": "metadata", **extra_query}, scheme="SharedKeyLite")
    assert r.status == 200, (r, r.string_to_sign)
    assert r.headers.get("x-ms-meta-Lite") == "yes"
    assert r.headers.get("x-ms-approximate-messages-count") == "0"
    # Lite signs only ?comp=..., never the other parameters
    assert r.string_to_sign.endswith(f"/{queue.queue_name}?comp=metadata"), r.string_to_sign


def test_shared_key_lite_write_and_list(raw, queue):
    r = raw.put(queue.queue_name, {"comp": "metadata"}, headers={"x-ms-meta-Written": "by-lite"}, scheme="SharedKeyLite")
    assert r.status == 204, (r, r.string_to_sign)
    assert "x-ms-meta-written:by-lite\n" in r.string_to_sign
    assert queue.get_queue_properties().metadata == {"Written": "by-lite"}
    lst = raw.get("", {"comp": "list", "prefix": queue.queue_name}, scheme="SharedKeyLite")
    assert lst.status == 200, (lst, lst.string_to_sign)
    assert [n.text for n in lst.xml().iter("Name")] == [queue.queue_name]
    put = raw.post(f"{queue.queue_name}/messages", body="<QueueMessage><MessageText>lite</MessageText></QueueMessage>",
                   scheme="SharedKeyLite")
    assert put.status == 201, (put, put.string_to_sign)
    assert [m.content for m in queue.peek_messages()] == ["lite"]


def test_shared_key_lite_bad_signature_is_403(raw, queue):
    r = raw.get(queue.queue_name, {"comp": "metadata"}, scheme="SharedKeyLite", tamper_signature=True)
    assert r.status == 403, r
    assert r.error_code == "AuthenticationFailed"
    assert r.xml_error()["Code"] == "AuthenticationFailed"


@pytest.mark.parametrize("mix", ["lite-sig-as-sharedkey", "full-sig-as-lite"])
def test_shared_key_and_lite_signatures_are_not_interchangeable(raw, queue, mix):
    url = raw.url(queue.queue_name, {"comp": "metadata"})
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": raw.version}
    if mix == "lite-sig-as-sharedkey":
        scheme, sts = "SharedKey", lite_string_to_sign("GET", url, headers, raw.account)
    else:
        scheme, sts = "SharedKeyLite", string_to_sign("GET", url, headers, raw.account)
    headers["Authorization"] = f"{scheme} {raw.account}:{shared_key_signature(sts, raw.key)}"
    r = raw.request("GET", url=url, headers=headers, sign=False)
    assert r.status == 403, r
    assert r.error_code == "AuthenticationFailed"


# --------------------------------------------------------------------------------------
# Unknown account (path-style)
#
# Azure has no equivalent (an unknown account has no DNS name), so which error is right is our
# call: the emulator answers 403 AuthenticationFailed, Azurite 3.37.0 answers 404
# ResourceNotFound. Both are accepted here; the exact answer is pinned emulator_only below.


def _unknown_account_requests(target, queue_name):
    """Requests addressed to /nosuchaccount..., signed as devstoreaccount1 with the dev key."""
    other = RawClient(f"{target.base_url}/nosuchaccount", target.account_name, target.account_key)
    return [
        ("list", other.get("", {"comp": "list"})),
        ("list-slash", other.request("GET", url=f"{target.base_url}/nosuchaccount/?comp=list")),
        ("create", other.put(queue_name)),
        ("head-metadata", other.head(queue_name, {"comp": "metadata"})),
    ]


@pytest.fixture
def path_style_only(target):
    if not target.is_path_style:
        pytest.skip("needs a path-style endpoint")


def test_unknown_account_is_rejected(target, raw, queue_name, path_style_only):
    for label, r in _unknown_account_requests(target, queue_name):
        assert (r.status, r.error_code) in ((403, "AuthenticationFailed"), (404, "ResourceNotFound")), (label, r)
        if label != "head-metadata":
            assert r.xml_error()["Code"] == r.error_code
        else:
            assert r.body == b""
    # the create did not land in the dev account either
    assert raw.get(queue_name, {"comp": "metadata"}).status == 404


@pytest.mark.emulator_only
def test_unknown_account_is_403_authentication_failed(target, queue_name):
    for label, r in _unknown_account_requests(target, queue_name):
        assert r.status == 403, (label, r)
        assert r.error_code == "AuthenticationFailed", (label, r)


# --------------------------------------------------------------------------------------
# x-ms-version
#
# Our emulator accepts any well-formed date >= 2009-09-19 and echoes it; Azurite (started with
# --skipApiVersionCheck) accepts anything and always answers its baseline, and real Azure
# rejects versions it doesn't know, so these pin our emulator's documented behaviour.


@pytest.mark.emulator_only
@pytest.mark.parametrize("version", ["2099-01-01", "2009-09-19", "2021-10-04"])
def test_request_version_is_echoed(raw, queue, version):
    r = raw.get(queue.queue_name, {"comp": "metadata"}, version=version)
    assert r.status == 200, r
    assert r.headers.get("x-ms-version") == version


@pytest.mark.emulator_only
@pytest.mark.parametrize("version", ["2009-01-01", "2009-09-18", "not-a-date", "2021-13-45"])
def test_unsupported_or_malformed_version_rejected(raw, queue, version):
    r = raw.get(queue.queue_name, {"comp": "metadata"}, version=version)
    assert r.status == 400, r
    assert r.error_code == "InvalidHeaderValue"
    err = r.xml_error()
    assert err["Code"] == "InvalidHeaderValue"
    assert err.get("HeaderName") == "x-ms-version"
    assert err.get("HeaderValue") == version
    # the rejected request did nothing: a write with a bad version must not apply either
    w = raw.put(queue.queue_name, {"comp": "metadata"}, headers={"x-ms-meta-Bad": "1"}, version=version)
    assert w.status == 400, w
    assert queue.get_queue_properties().metadata == {}

