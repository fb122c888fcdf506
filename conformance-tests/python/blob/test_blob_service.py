"""Account-level Blob operations: Get Account Information, service properties, standard headers."""

from __future__ import annotations

import re
import uuid
from email.utils import parsedate_to_datetime

import pytest
from azure.storage.blob import (
    BlobAnalyticsLogging,
    CorsRule,
    Metrics,
    RetentionPolicy,
    StaticWebsite,
)

from blob_helpers import bpath
from storage_http import find_text

# --------------------------------------------------------------------------------------
# Get Account Information


@pytest.mark.parametrize("level", ["account", "container", "blob"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_account_information_raw(braw, container, level, method):
    container.upload_blob("b", b"x")
    path = {"account": "", "container": container.container_name, "blob": bpath(container.container_name, "b")}[level]
    r = braw.request(method, path, {"restype": "account", "comp": "properties"})
    assert r.status == 200, r
    assert r.body == b""
    assert r.headers.get("x-ms-sku-name") == "Standard_RAGRS", r
    assert r.headers.get("x-ms-account-kind") == "StorageV2", r


def test_get_account_information_sdk(bsc, container):
    info = bsc.get_account_information()
    assert info["sku_name"] == "Standard_RAGRS"
    assert info["account_kind"] == "StorageV2"
    assert container.get_account_information()["account_kind"] == "StorageV2"


# --------------------------------------------------------------------------------------
# service properties


def test_get_service_properties_has_every_section(braw):
    r = braw.get("", {"restype": "service", "comp": "properties"})
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "StorageServiceProperties"
    for section in ("Logging", "HourMetrics", "MinuteMetrics", "Cors", "StaticWebsite"):
        assert root.find(section) is not None, f"missing {section}: {r.text}"


def test_service_properties_round_trip(bsc, braw, preserve_blob_service_properties):
    cors = [
        CorsRule(
            ["https://example.com", "https://other.example"],
            ["GET", "PUT"],
            allowed_headers=["x-ms-meta-*", "content-type"],
            exposed_headers=["x-ms-request-id"],
            max_age_in_seconds=300,
        )
    ]
    bsc.set_service_properties(
        analytics_logging=BlobAnalyticsLogging(read=True, write=False, delete=True, retention_policy=RetentionPolicy(enabled=True, days=3)),
        hour_metrics=Metrics(enabled=True, include_apis=True, retention_policy=RetentionPolicy(enabled=True, days=7)),
        cors=cors,
        target_version="2021-10-04",
        delete_retention_policy=RetentionPolicy(enabled=True, days=5),
        static_website=StaticWebsite(enabled=True, index_document="index.html", error_document404_path="404.html"),
    )
    props = bsc.get_service_properties()
    assert props["target_version"] == "2021-10-04"
    assert props["delete_retention_policy"].enabled is True
    assert props["delete_retention_policy"].days == 5
    assert props["static_website"].enabled is True
    assert props["static_website"].index_document == "index.html"
    assert props["static_website"].error_document404_path == "404.html"
    assert props["analytics_logging"].read is True and props["analytics_logging"].write is False
    assert props["hour_metrics"].enabled is True and props["hour_metrics"].retention_policy.days == 7
    assert len(props["cors"]) == 1
    rule = props["cors"][0]
    assert rule.allowed_origins == "https://example.com,https://other.example"
    assert rule.allowed_methods == "GET,PUT"
    assert rule.max_age_in_seconds == 300

    root = braw.get("", {"restype": "service", "comp": "properties"}).xml()
    assert find_text(root, "DefaultServiceVersion") == "2021-10-04"
    assert find_text(root, "DeleteRetentionPolicy/Days") == "5"
    assert find_text(root, "StaticWebsite/IndexDocument") == "index.html"
    assert find_text(root, "Cors/CorsRule/AllowedMethods") == "GET,PUT"


def test_set_service_properties_partial_update(bsc, preserve_blob_service_properties):
    bsc.set_service_properties(delete_retention_policy=RetentionPolicy(enabled=True, days=2), cors=[CorsRule(["*"], ["GET"])])
    # only cors in this request: DeleteRetentionPolicy is kept
    bsc.set_service_properties(cors=[])
    props = bsc.get_service_properties()
    assert props["delete_retention_policy"].enabled is True and props["delete_retention_policy"].days == 2
    assert props["cors"] == []


def test_set_service_properties_raw_202(braw, preserve_blob_service_properties):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><StorageServiceProperties>'
        "<DeleteRetentionPolicy><Enabled>true</Enabled><Days>4</Days></DeleteRetentionPolicy>"
        "</StorageServiceProperties>"
    )
    r = braw.put("", {"restype": "service", "comp": "properties"}, body=body)
    assert r.status == 202, r
    root = braw.get("", {"restype": "service", "comp": "properties"}).xml()
    assert find_text(root, "DeleteRetentionPolicy/Days") == "4"


# --------------------------------------------------------------------------------------
# standard headers


def _standard_op(braw, container, op):
    container.upload_blob("h", b"x")
    method, path, query, status = {
        "list-containers": ("GET", "", {"comp": "list"}, 200),
        "container-props": ("HEAD", container.container_name, {"restype": "container"}, 200),
        "get-blob": ("GET", bpath(container.container_name, "h"), None, 200),
        "put-blob": ("PUT", bpath(container.container_name, "h2"), None, 201),
        "missing-blob": ("GET", bpath(container.container_name, "nope"), None, 404),
        "missing-blob-head": ("HEAD", bpath(container.container_name, "nope"), None, 404),
        "missing-container": ("GET", "nosuchcontainer" + uuid.uuid4().hex[:8], {"restype": "container"}, 404),
    }[op]
    crid = f"conformance-{uuid.uuid4()}"
    headers = {"x-ms-client-request-id": crid}
    if method == "PUT":
        headers["x-ms-blob-type"] = "BlockBlob"
    r = braw.request(method, path, query, headers=headers, body=b"x" if method == "PUT" else None)
    assert r.status == status, r
    return r, crid


SUCCESS_OPS = ["list-containers", "container-props", "get-blob", "put-blob"]
ERROR_OPS = ["missing-blob", "missing-blob-head", "missing-container"]


@pytest.mark.parametrize("op", SUCCESS_OPS + ERROR_OPS)
def test_standard_response_headers(braw, container, op):
    r, crid = _standard_op(braw, container, op)
    assert re.match(r"^[0-9a-f-]{36}$", r.headers.get("x-ms-request-id", "")), r
    assert parsedate_to_datetime(r.headers["Date"]) is not None
    if op in SUCCESS_OPS:
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", r.headers.get("x-ms-version", "")), r
        assert r.headers.get("x-ms-client-request-id") == crid, r
    else:
        assert r.error_code in ("BlobNotFound", "ContainerNotFound"), r


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 sends neither x-ms-version nor x-ms-client-request-id on Blob error responses. Every "
    "Blob operation page (e.g. https://learn.microsoft.com/rest/api/storageservices/get-blob) lists the response "
    "headers x-ms-version ('Indicates the version of Blob Storage that was used to execute the request') and "
    "x-ms-client-request-id ('equal to the value of the x-ms-client-request-id header, if it's present in the "
    "request'), with no exception for errors."
)
@pytest.mark.parametrize("op", ERROR_OPS)
def test_error_responses_carry_version_and_client_request_id(braw, container, op):
    r, crid = _standard_op(braw, container, op)
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", r.headers.get("x-ms-version", "")), r
    assert r.headers.get("x-ms-client-request-id") == crid, r
