"""Documented Azure behaviour that independent clients found the emulator getting wrong:
tag conditions, container conditions, tag expression rules, integrity headers, snapshots'
block lists and tags, copy sources, append blob seal state, CORS Vary, SAS parameters.
Each test names the REST page it follows."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError
from azure.storage.blob import (
    BlobBlock,
    BlobSasPermissions,
    ContentSettings,
    CorsRule,
    generate_blob_sas,
)

from blob_helpers import assert_raw_error, block_id, bpath, code, md5_b64, now, put_blob

# --------------------------------------------------------------------------------------
# x-ms-if-tags: https://learn.microsoft.com/rest/api/storageservices/specifying-conditional-headers-for-blob-service-operations


@pytest.fixture
def tagged(container):
    b = container.upload_blob("tagged", b"tagged body", tags={"state": "ready", "n": "5"})
    return b


MATCH = "\"state\" = 'ready' AND \"n\" >= '3'"
MISS = "\"state\" = 'done'"


def _tag_ops(blob, cond):
    """Every blob operation that takes x-ms-if-tags, called with `cond`."""
    return {
        "get blob": lambda: blob.download_blob(if_tags_match_condition=cond).readall(),
        "get properties": lambda: blob.get_blob_properties(if_tags_match_condition=cond),
        "set properties": lambda: blob.set_http_headers(
            ContentSettings(content_type="text/x"), if_tags_match_condition=cond
        ),
        "set metadata": lambda: blob.set_blob_metadata({"a": "b"}, if_tags_match_condition=cond),
        "snapshot": lambda: blob.create_snapshot(if_tags_match_condition=cond),
        "lease": lambda: blob.acquire_lease(15, if_tags_match_condition=cond).release(),
        "get tags": lambda: blob.get_blob_tags(if_tags_match_condition=cond),
        "get block list": lambda: blob.get_block_list(if_tags_match_condition=cond),
    }


@pytest.mark.parametrize("op", list(_tag_ops(None, None)))
def test_if_tags_gates_every_operation(tagged, op):
    _tag_ops(tagged, MATCH)[op]()
    with pytest.raises(HttpResponseError) as ei:
        _tag_ops(tagged, MISS)[op]()
    assert ei.value.status_code == 412, ei.value
    assert code(ei.value) == "ConditionNotMet"


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 overwrites a blob through Put Blob although x-ms-if-tags does not match. https://learn.microsoft.com/rest/api/storageservices/put-blob (x-ms-if-tags: 'Specify a SQL where clause on blob tags to operate only on blobs with a matching value'); likewise for Put Block List, Set Blob Tags and Delete Blob on their pages."
)
def test_if_tags_gates_writes_and_leaves_the_blob_alone(tagged):
    for write in (
        lambda c: tagged.upload_blob(b"new", overwrite=True, if_tags_match_condition=c),
        lambda c: tagged.commit_block_list([], if_tags_match_condition=c),
        lambda c: tagged.set_blob_tags({"state": "x"}, if_tags_match_condition=c),
        lambda c: tagged.delete_blob(if_tags_match_condition=c),
    ):
        with pytest.raises(HttpResponseError) as ei:
            write(MISS)
        assert ei.value.status_code == 412
        assert code(ei.value) == "ConditionNotMet"
    assert tagged.download_blob().readall() == b"tagged body"
    tagged.set_blob_tags({"state": "ready", "n": "7"}, if_tags_match_condition=MATCH)
    tagged.delete_blob(if_tags_match_condition="\"n\" = '7'")
    assert not tagged.exists()


def test_if_tags_on_append_block(container):
    b = container.get_blob_client("log")
    b.create_append_blob(tags={"open": "yes"})
    b.append_block(b"one", if_tags_match_condition="\"open\" = 'yes'")
    with pytest.raises(HttpResponseError) as ei:
        b.append_block(b"two", if_tags_match_condition="\"open\" = 'no'")
    assert ei.value.status_code == 412
    assert b.download_blob().readall() == b"one"


def test_if_tags_or_and_not_equal(tagged):
    tagged.get_blob_properties(if_tags_match_condition="\"state\" = 'x' OR \"n\" <> '4'")
    with pytest.raises(HttpResponseError) as ei:
        tagged.get_blob_properties(if_tags_match_condition="(\"state\" = 'x' OR \"n\" = '4') AND \"n\" = '5'")
    assert ei.value.status_code == 412


def test_malformed_if_tags_is_400(tagged, braw):
    r = braw.head(bpath(tagged.container_name, "tagged"), headers={"x-ms-if-tags": "\"state\" = "})
    assert r.status == 400, r
    r = braw.get(bpath(tagged.container_name, "tagged"), headers={"x-ms-if-tags": "\"state\" = "})
    assert r.status == 400, r
    assert r.error_code == "InvalidHeaderValue", r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 ignores x-ms-if-tags on the destination of Copy Blob From URL. https://learn.microsoft.com/rest/api/storageservices/copy-blob-from-url (x-ms-if-tags and x-ms-source-if-tags: 'operate only on ... a matching value')."
)
def test_copy_destination_and_source_tag_conditions(container, tagged, blob_target):
    sas = generate_blob_sas(
        blob_target.account_name,
        container.container_name,
        "tagged",
        account_key=blob_target.account_key,
        permission=BlobSasPermissions(read=True, tag=True),
        expiry=now() + dt.timedelta(hours=1),
    )
    source = f"{tagged.url}?{sas}"
    dst = container.get_blob_client("dst")
    dst.upload_blob(b"old", tags={"keep": "no"})
    with pytest.raises(HttpResponseError) as ei:
        dst.start_copy_from_url(source, requires_sync=True, if_tags_match_condition="\"keep\" = 'yes'")
    assert ei.value.status_code == 412
    with pytest.raises(HttpResponseError) as ei:
        dst.start_copy_from_url(source, requires_sync=True, source_if_tags_match_condition=MISS)
    assert ei.value.status_code == 412
    assert code(ei.value) == "SourceConditionNotMet"
    assert dst.download_blob().readall() == b"old"
    dst.start_copy_from_url(
        source,
        requires_sync=True,
        if_tags_match_condition="\"keep\" = 'no'",
        source_if_tags_match_condition=MATCH,
    )
    assert dst.download_blob().readall() == b"tagged body"


# --------------------------------------------------------------------------------------
# Set Container Metadata: https://learn.microsoft.com/rest/api/storageservices/set-container-metadata
# ("If-Modified-Since ... Optional")


def test_set_container_metadata_if_modified_since(container):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    with pytest.raises(HttpResponseError) as ei:
        container.set_container_metadata({"a": "b"}, if_modified_since=later)
    assert ei.value.status_code == 412
    assert code(ei.value) == "ConditionNotMet"
    assert container.get_container_properties().metadata == {}
    container.set_container_metadata({"a": "b"}, if_modified_since=later - dt.timedelta(days=2))
    assert container.get_container_properties().metadata == {"a": "b"}


# --------------------------------------------------------------------------------------
# Tag rules: https://learn.microsoft.com/rest/api/storageservices/find-blobs-by-tags and
# https://learn.microsoft.com/rest/api/storageservices/set-blob-tags


def test_find_blobs_accepts_every_allowed_character(container, bsc):
    value = "value +-.:=_/"
    run = uuid.uuid4().hex
    container.upload_blob("odd", b"x", tags={"run": run, "odd": value})
    found = [b.name for b in bsc.find_blobs_by_tags(f"\"run\" = '{run}' AND \"odd\" = '{value}'")]
    assert found == ["odd"]


@pytest.mark.parametrize(
    "where",
    [
        "\"k\" = 'a@b'",
        "\"" + "k" * 129 + "\" = 'v'",
        "\"k\" = '" + "v" * 257 + "'",
        " AND ".join(f"\"k{i}\" = 'v'" for i in range(11)),
        "\"k\" = 'v' OR \"j\" = 'w'",
    ],
    ids=["at-in-value", "long-key", "long-value", "eleven-conditions", "or"],
)
def test_find_blobs_refuses_what_azure_refuses(braw, where):
    r = braw.get("", {"comp": "blobs", "where": where})
    assert_raw_error(r, 400, "InvalidQueryParameterValue")


@pytest.mark.emulator_only
def test_find_blobs_error_names_the_position(braw):
    r = braw.get("", {"comp": "blobs", "where": "\"k\" = 'v' AND"})
    assert r.status == 400
    assert "Error parsing query at or near character position" in r.xml_error()["Message"], r


def test_set_and_get_tags_on_a_snapshot(container):
    b = container.upload_blob("snapped", b"x", tags={"v": "1"})
    snap = b.create_snapshot()
    s = container.get_blob_client("snapped", snapshot=snap["snapshot"])
    assert s.get_blob_tags() == {"v": "1"}
    s.set_blob_tags({"v": "snapshot"})
    assert s.get_blob_tags() == {"v": "snapshot"}
    assert b.get_blob_tags() == {"v": "1"}


def test_get_blob_tags_checks_the_lease(container):
    b = container.upload_blob("leased", b"x", tags={"a": "b"})
    with pytest.raises(HttpResponseError) as ei:
        b.get_blob_tags(lease=str(uuid.uuid4()))
    assert ei.value.status_code == 412
    assert code(ei.value) == "LeaseNotPresentWithBlobOperation"
    lease = b.acquire_lease(15)
    assert b.get_blob_tags(lease=lease.id) == {"a": "b"}
    with pytest.raises(HttpResponseError) as ei:
        b.get_blob_tags(lease=str(uuid.uuid4()))
    assert ei.value.status_code == 412
    assert code(ei.value) == "LeaseIdMismatchWithBlobOperation"
    lease.release()


# --------------------------------------------------------------------------------------
# Integrity headers: https://learn.microsoft.com/rest/api/storageservices/put-block,
# https://learn.microsoft.com/rest/api/storageservices/put-blob,
# https://learn.microsoft.com/rest/api/storageservices/set-blob-properties


@pytest.mark.parametrize("comp", [None, "block", "appendblock"])
def test_md5_and_crc64_together_are_refused(container, braw, comp):
    data = b"both checksums"
    crc = base64.b64encode(b"\x00" * 8).decode()
    path = bpath(container.container_name, f"both-{comp}")
    if comp == "appendblock":
        assert put_blob(braw, container.container_name, f"both-{comp}", b"", {"x-ms-blob-type": "AppendBlob"}).status == 201
    query = {"comp": comp, **({"blockid": block_id(0)} if comp == "block" else {})} if comp else None
    headers = {"Content-MD5": md5_b64(data), "x-ms-content-crc64": crc}
    if comp is None:
        headers["x-ms-blob-type"] = "BlockBlob"
    r = braw.put(path, query, headers=headers, body=data)
    assert r.status == 400, r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 stores the blob (201) although Content-MD5 does not match the body, when x-ms-blob-content-md5 does. https://learn.microsoft.com/rest/api/storageservices/put-blob (Content-MD5: 'the storage service compares the hash of the content that has arrived with this header value. If the two hashes don't match, the operation fails with error code 400')."
)
def test_put_blob_checks_content_md5_not_the_stored_one(container, braw):
    data = b"body"
    r = put_blob(
        braw,
        container.container_name,
        "md5",
        data,
        {"Content-MD5": md5_b64(b"other"), "x-ms-blob-content-md5": md5_b64(data)},
    )
    assert_raw_error(r, 400, "Md5Mismatch")
    assert braw.head(bpath(container.container_name, "md5")).status == 404


def test_set_properties_takes_any_md5_and_clears_the_type(container):
    b = container.upload_blob("props", b"x", content_settings=ContentSettings(content_type="text/plain"))
    short = bytearray(b"\x01\x02\x03\x04")
    b.set_http_headers(ContentSettings(content_md5=short))
    p = b.get_blob_properties()
    assert bytes(p.content_settings.content_md5) == bytes(short)
    assert p.content_settings.content_type is None, "cleared, not application/octet-stream"


# --------------------------------------------------------------------------------------
# Block lists: https://learn.microsoft.com/rest/api/storageservices/get-block-list and
# https://learn.microsoft.com/rest/api/storageservices/put-block


def test_get_block_list_of_a_snapshot(container):
    b = container.get_blob_client("blocks")
    b.stage_block(block_id(1), b"aa")
    b.commit_block_list([BlobBlock(block_id=block_id(1))])
    snap = b.create_snapshot()["snapshot"]
    b.stage_block(block_id(2), b"bbb")
    b.commit_block_list([BlobBlock(block_id=block_id(2))])
    committed, _ = container.get_blob_client("blocks", snapshot=snap).get_block_list("committed")
    assert [(x.id, x.size) for x in committed] == [(block_id(1), 2)]


def test_block_id_length_only_binds_uncommitted_blocks(container):
    b = container.get_blob_client("lengths")
    b.stage_block(block_id(1, width=6), b"a")
    b.commit_block_list([BlobBlock(block_id=block_id(1, width=6))])
    # Nothing is staged now: a new length is allowed.
    b.stage_block(block_id(2, width=8), b"b")
    with pytest.raises(HttpResponseError) as ei:
        b.stage_block(block_id(3, width=6), b"c")
    assert ei.value.status_code == 400
    assert code(ei.value) == "InvalidBlobOrBlock"


# --------------------------------------------------------------------------------------
# Copy: https://learn.microsoft.com/rest/api/storageservices/copy-blob and
# https://learn.microsoft.com/rest/api/storageservices/copy-blob-from-url


def _sas_url(blob_target, blob, permission):
    sas = generate_blob_sas(
        blob_target.account_name,
        blob.container_name,
        blob.blob_name,
        account_key=blob_target.account_key,
        permission=BlobSasPermissions.from_string(permission),
        expiry=now() + dt.timedelta(hours=1),
    )
    return f"{blob.url}?{sas}"


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 copies from a source whose SAS grants only write. https://learn.microsoft.com/rest/api/storageservices/create-service-sas (permissions table, Read (r): 'Use a blob as the source of a copy operation')."
)
def test_copy_source_sas_needs_read(container, blob_target):
    src = container.upload_blob("src", b"secret")
    dst = container.get_blob_client("dst")
    with pytest.raises(HttpResponseError) as ei:
        dst.start_copy_from_url(_sas_url(blob_target, src, "w"), requires_sync=True)
    assert ei.value.status_code == 403
    assert code(ei.value) == "CannotVerifyCopySource"
    assert not dst.exists()


def test_copy_source_that_is_not_a_url(container, braw):
    r = braw.put(bpath(container.container_name, "dst"), headers={"x-ms-copy-source": "not a url"})
    assert_raw_error(r, 400, "InvalidHeaderValue")


@pytest.mark.emulator_only
def test_copy_source_on_another_host_is_fetched_there(container, blob_target):
    """The path names a blob here, the host does not: the emulator fetches from that host
    (nothing listens on port 1) rather than resolving the path locally."""
    container.upload_blob("here", b"here")
    other = f"http://127.0.0.1:1/{blob_target.account_name}/{container.container_name}/here"
    with pytest.raises(HttpResponseError) as ei:
        container.get_blob_client("dst").start_copy_from_url(other)
    assert code(ei.value) == "CannotVerifyCopySource"


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 sends no Content-MD5 with Copy Blob From URL. https://learn.microsoft.com/rest/api/storageservices/copy-blob-from-url (response headers: Content-MD5, 'returned so that the client can check for the integrity of the copied content')."
)
def test_copy_blob_from_url_returns_md5_and_copies_tags(container, blob_target):
    src = container.upload_blob("src", b"with tags", tags={"t": "1"})
    dst = container.get_blob_client("dst")
    seen = {}
    r = dst.start_copy_from_url(
        _sas_url(blob_target, src, "rt"),
        requires_sync=True,
        tags="COPY",
        # The SDK drops Content-MD5 from what it returns; the header is what Azure sends.
        raw_response_hook=lambda resp: seen.update({k.lower(): v for k, v in resp.http_response.headers.items()}),
    )
    assert r["copy_status"] == "success"
    assert seen.get("content-md5") == base64.b64encode(hashlib.md5(b"with tags").digest()).decode()
    assert dst.get_blob_tags() == {"t": "1"}


# --------------------------------------------------------------------------------------
# Append blobs: https://learn.microsoft.com/rest/api/storageservices/get-blob-properties
# (x-ms-blob-sealed) and https://learn.microsoft.com/rest/api/storageservices/list-blobs (Sealed)


def test_append_blob_seal_state(container, braw):
    b = container.get_blob_client("log")
    b.create_append_blob()
    r = braw.head(bpath(container.container_name, "log"))
    assert r.headers.get("x-ms-blob-sealed") == "false", r
    listed = braw.get(container.container_name, {"restype": "container", "comp": "list"})
    assert listed.xml().findtext("Blobs/Blob/Properties/Sealed") == "false", listed
    b.seal_append_blob()
    assert braw.head(bpath(container.container_name, "log")).headers.get("x-ms-blob-sealed") == "true"
    with pytest.raises(HttpResponseError) as ei:
        b.append_block(b"x")
    assert code(ei.value) == "BlobIsSealed"


# --------------------------------------------------------------------------------------
# CORS: https://learn.microsoft.com/rest/api/storageservices/cross-origin-resource-sharing--cors--support-for-the-azure-storage-services
# ("Understanding the Vary header")

ORIGIN = "http://app.example"


@pytest.fixture
def cors(bsc, preserve_blob_service_properties):
    def set_rules(origins):
        bsc.set_service_properties(cors=[CorsRule(origins, ["GET", "HEAD"], max_age_in_seconds=60)])

    return set_rules


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 sends no Vary: Origin on a GET without an Origin header while CORS rules exist (row 2 of Azure's table). https://learn.microsoft.com/rest/api/storageservices/cross-origin-resource-sharing--cors--support-for-the-azure-storage-services ('Understanding the Vary header': Vary is set when CORS is enabled and no rule matches, and for a specific-origin match, not for a '*' rule)."
)
def test_vary_origin_as_azure_documents(container, blob_target, cors):
    blob = container.upload_blob("cors", b"x")
    url = _sas_url(blob_target, blob, "r")
    get = lambda origin: requests.get(url, headers={"Origin": origin} if origin else {}, timeout=30)  # noqa: E731
    # No rules: no CORS headers at all.
    assert "Vary" not in get(ORIGIN).headers
    cors([ORIGIN])
    specific = get(ORIGIN)
    assert specific.headers.get("Vary") == "Origin"
    assert specific.headers.get("Access-Control-Allow-Origin") == ORIGIN
    unmatched = get("http://other.example")
    assert unmatched.headers.get("Vary") == "Origin"
    assert "Access-Control-Allow-Origin" not in unmatched.headers
    assert get(None).headers.get("Vary") == "Origin"
    cors(["*"])
    star = get(ORIGIN)
    assert "Vary" not in star.headers
    assert star.headers.get("Access-Control-Allow-Origin") == "*"


def test_preflight_without_request_method(container, blob_target, cors):
    cors([ORIGIN])
    r = requests.options(f"{blob_target.blob_endpoint}/{container.container_name}/x", headers={"Origin": ORIGIN}, timeout=30)
    assert r.status_code == 400
    assert r.headers.get("x-ms-error-code") == "InvalidHeaderValue"
    assert "A required CORS header is not present." in r.text


# --------------------------------------------------------------------------------------
# SAS parameters and include=: https://learn.microsoft.com/rest/api/storageservices/create-service-sas


@pytest.mark.azurite_deviation(
    reason='Azurite 3.37.0 answers a SAS it cannot authenticate with 403 AuthorizationFailure. https://learn.microsoft.com/troubleshoot/azure/azure-storage/blobs/authentication/storage-troubleshoot-403-errors lists a signature that does not match under AuthenticationFailed.'
)
def test_duplicated_sas_parameter_is_refused(container, blob_target):
    b = container.upload_blob("sas", b"x")
    url = _sas_url(blob_target, b, "r")
    assert requests.get(url, timeout=30).status_code == 200
    sig = [p for p in url.split("?", 1)[1].split("&") if p.startswith("sig=")][0]
    r = requests.get(f"{url}&{sig}", timeout=30)
    assert r.status_code == 403
    assert r.headers.get("x-ms-error-code") == "AuthenticationFailed"


def test_include_is_case_insensitive(container, braw):
    container.upload_blob("s", b"x").create_snapshot()
    r = braw.get(container.container_name, {"restype": "container", "comp": "list", "include": "Snapshots"})
    assert r.status == 200, r
    assert len(r.xml().findall("Blobs/Blob")) == 2


def test_account_information_through_a_container_sas(container, blob_target):
    """https://learn.microsoft.com/rest/api/storageservices/get-account-information: from
    2018-03-28 the request may name a container or blob, and a service SAS for it
    authorizes the call (AzCopy asks so before copying tiers)."""
    from azure.storage.blob import BlobClient, ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        blob_target.account_name,
        container.container_name,
        account_key=blob_target.account_key,
        permission=ContainerSasPermissions(read=True),
        expiry=now() + dt.timedelta(hours=1),
    )
    blob = BlobClient.from_blob_url(f"{container.url}/any?{sas}")
    info = blob.get_account_information()
    assert info["account_kind"] == "StorageV2"
