"""CORS: preflight (OPTIONS) and actual requests against the queue service's CORS rules."""

from __future__ import annotations

import pytest
import requests
from azure.storage.queue import CorsRule

ORIGIN = "http://app.example"


@pytest.fixture
def cors_rules(service, preserve_service_properties):
    service.set_service_properties(
        cors=[
            CorsRule(
                [ORIGIN],
                ["GET", "PUT"],
                allowed_headers=["x-ms-meta-*", "content-type"],
                exposed_headers=["x-ms-request-id"],
                max_age_in_seconds=500,
            )
        ]
    )
    yield


def preflight(target, path, origin, method, headers=None):
    h = {"Access-Control-Request-Method": method}
    if origin is not None:
        h["Origin"] = origin
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(f"{target.queue_endpoint}/{path}", headers=h, timeout=30)


def test_preflight_matching_rule(target, queue, cors_rules):
    r = preflight(target, f"{queue.queue_name}/messages", ORIGIN, "GET")
    assert r.status_code == 200, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "GET" in r.headers.get("Access-Control-Allow-Methods", "")
    assert r.headers.get("Access-Control-Max-Age") == "500"


def test_preflight_with_allowed_headers(target, queue, cors_rules):
    r = preflight(target, queue.queue_name, ORIGIN, "PUT", "x-ms-meta-foo,content-type")
    assert r.status_code == 200, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    allowed = {h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert {"x-ms-meta-foo", "content-type"} <= allowed


@pytest.mark.parametrize(
    "origin,method,headers",
    [
        ("http://evil.example", "GET", None),
        (ORIGIN, "DELETE", None),
        (ORIGIN, "PUT", "x-not-allowed"),
    ],
    ids=["origin", "method", "header"],
)
def test_preflight_non_matching_is_403(target, queue, cors_rules, origin, method, headers):
    r = preflight(target, f"{queue.queue_name}/messages", origin, method, headers)
    assert r.status_code == 403, r.text
    assert "Access-Control-Allow-Origin" not in r.headers
    assert r.headers.get("x-ms-error-code") == "CorsPreflightFailure"


def test_preflight_without_rules_is_403(target, queue, service, preserve_service_properties):
    service.set_service_properties(cors=[])
    r = preflight(target, f"{queue.queue_name}/messages", ORIGIN, "GET")
    assert r.status_code == 403, r.text
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_without_origin_is_400(target, queue, cors_rules):
    r = preflight(target, queue.queue_name, None, "GET")
    assert r.status_code == 400, r.text


def test_actual_request_gets_cors_headers(raw, queue, cors_rules):
    r = raw.get(queue.queue_name, {"comp": "metadata"}, headers={"Origin": ORIGIN})
    assert r.status == 200, r
    assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN
    exposed = {h.strip().lower() for h in r.headers.get("Access-Control-Expose-Headers", "").split(",")}
    assert "x-ms-request-id" in exposed
    # error responses carry them too, so browsers can read the error
    e = raw.get(queue.queue_name + "missing", {"comp": "metadata"}, headers={"Origin": ORIGIN})
    assert e.status == 404
    assert e.headers.get("Access-Control-Allow-Origin") == ORIGIN


def test_actual_request_from_other_origin_has_no_cors_headers(raw, queue, cors_rules):
    r = raw.get(queue.queue_name, {"comp": "metadata"}, headers={"Origin": "http://evil.example"})
    assert r.status == 200, r  # CORS is enforced by the browser; the request itself succeeds
    assert "Access-Control-Allow-Origin" not in r.headers


def test_wildcard_origin(target, raw, queue, service, preserve_service_properties):
    service.set_service_properties(cors=[CorsRule(["*"], ["GET"])])
    p = preflight(target, queue.queue_name, "http://anything.example", "GET")
    assert p.status_code == 200, p.text
    assert p.headers.get("Access-Control-Allow-Origin") in ("*", "http://anything.example")
    r = raw.get(queue.queue_name, {"comp": "metadata"}, headers={"Origin": "http://anything.example"})
    assert r.status == 200
    assert r.headers.get("Access-Control-Allow-Origin") in ("*", "http://anything.example")
