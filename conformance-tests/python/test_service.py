"""Account-level operations: List Queues, service properties, service stats."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.queue import (
    CorsRule,
    Metrics,
    QueueAnalyticsLogging,
    QueueServiceClient,
    RetentionPolicy,
)

from storage_http import find_text

# --------------------------------------------------------------------------------------
# List Queues


@pytest.fixture
def prefixed_queues(service: QueueServiceClient, queue_name: str):
    """Three queues sharing a unique prefix (created in name order), metadata on the middle one."""
    prefix = queue_name[:16]
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    for name in names:
        service.create_queue(name, metadata={"Color": "Red", "lowerKey": "v"} if name == names[1] else None)
    yield prefix, names
    for name in names:
        service.delete_queue(name)


def walk_pages(pager_factory, max_pages=20):
    """All pages of a by_page() pager as lists of names; fails instead of looping forever."""
    pages = []
    pager = pager_factory()
    for page in pager:
        pages.append([q.name for q in page])
        assert len(pages) <= max_pages, f"pager did not terminate: {pages[:6]}..."
    return pages


def test_list_queues_with_prefix_is_sorted_and_filtered(service, prefixed_queues):
    prefix, names = prefixed_queues
    listed = [q.name for q in service.list_queues(name_starts_with=prefix)]
    assert listed == names
    assert [q.name for q in service.list_queues(name_starts_with=prefix + "-b")] == [names[1]]
    assert list(service.list_queues(name_starts_with=prefix + "-zzz")) == []


def test_list_queues_paging_with_continuation_token(service, prefixed_queues):
    prefix, names = prefixed_queues
    pager = service.list_queues(name_starts_with=prefix, results_per_page=2).by_page()
    first = [q.name for q in next(pager)]
    assert first == names[:2]
    token = pager.continuation_token
    assert token, "a truncated listing must return a NextMarker"

    # resume from the marker with a brand new pager: marker must round-trip
    pages = walk_pages(
        lambda: service.list_queues(name_starts_with=prefix, results_per_page=2).by_page(continuation_token=token)
    )
    assert pages == [names[2:]]

    # the full paged walk visits every queue exactly once
    all_pages = walk_pages(lambda: service.list_queues(name_starts_with=prefix, results_per_page=1).by_page())
    assert all_pages == [[n] for n in names]


@pytest.mark.azurite_deviation(
    reason="Azurite's List Queues marker is its internal insertion index, so paging skips or repeats queues "
    "created out of name order (3.37.0: maxresults=1 never returns the last-created queue, maxresults=2 "
    "returns the same page forever). https://learn.microsoft.com/rest/api/storageservices/list-queues1: "
    "'The operation returns a NextMarker element within the response body, if the list returned wasn't "
    "complete. You can then use this value ... to request the next portion of the list of queues.'"
)
@pytest.mark.parametrize("page_size", [1, 2])
def test_list_queues_paging_independent_of_creation_order(service, queue_name, page_size):
    prefix = queue_name[:16]
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c", f"{prefix}-d"]
    created = []
    try:
        for name in (names[2], names[0], names[3], names[1]):
            service.create_queue(name)
            created.append(name)
        pages = walk_pages(
            lambda: service.list_queues(name_starts_with=prefix, results_per_page=page_size).by_page(), max_pages=8
        )
        assert [n for page in pages for n in page] == names
        assert all(len(p) <= page_size for p in pages)
    finally:
        for name in created:
            service.delete_queue(name)


def test_list_queues_include_metadata(service, prefixed_queues):
    prefix, names = prefixed_queues
    with_meta = {q.name: q.metadata for q in service.list_queues(name_starts_with=prefix, include_metadata=True)}
    assert with_meta[names[1]] == {"Color": "Red", "lowerKey": "v"}
    assert not with_meta[names[0]]
    without = {q.name: q.metadata for q in service.list_queues(name_starts_with=prefix)}
    assert not without[names[1]], "metadata must only be returned with include=metadata"


def test_list_queues_raw_xml_shape(raw, prefixed_queues):
    prefix, names = prefixed_queues
    r = raw.get("", {"comp": "list", "prefix": prefix, "maxresults": "2", "include": "metadata"})
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/xml")
    root = r.xml()
    assert root.tag == "EnumerationResults"
    assert root.get("ServiceEndpoint", "").rstrip("/") == raw.endpoint.rstrip("/")
    assert find_text(root, "Prefix") == prefix
    assert find_text(root, "MaxResults") == "2"
    assert [find_text(q, "Name") for q in root.findall("Queues/Queue")] == names[:2]
    meta = root.find("Queues/Queue[Name='%s']/Metadata" % names[1])
    assert meta is not None and {c.tag: c.text for c in meta} == {"Color": "Red", "lowerKey": "v"}
    marker = find_text(root, "NextMarker")
    assert marker

    r2 = raw.get("", {"comp": "list", "prefix": prefix, "maxresults": "2", "marker": marker})
    assert r2.status == 200, r2
    root2 = r2.xml()
    assert [find_text(q, "Name") for q in root2.findall("Queues/Queue")] == names[2:]
    # last page: NextMarker element present but empty (pagers loop while it is non-empty)
    assert root2.find("NextMarker") is not None
    assert find_text(root2, "NextMarker") == ""


# --------------------------------------------------------------------------------------
# Service properties


def _cors_tuple(rule: CorsRule):
    split = lambda v: sorted(x.strip() for x in (v if isinstance(v, list) else (v or "").split(",")) if x.strip())
    return (
        split(rule.allowed_origins),
        split(rule.allowed_methods),
        split(rule.allowed_headers),
        split(rule.exposed_headers),
        rule.max_age_in_seconds,
    )


def test_service_properties_round_trip(service, preserve_service_properties):
    logging = QueueAnalyticsLogging(
        version="1.0", delete=True, read=False, write=True, retention_policy=RetentionPolicy(enabled=True, days=5)
    )
    hour = Metrics(version="1.0", enabled=True, include_apis=True, retention_policy=RetentionPolicy(enabled=True, days=7))
    minute = Metrics(version="1.0", enabled=False, retention_policy=RetentionPolicy(enabled=False))
    cors = [
        CorsRule(
            ["http://a.example", "http://b.example"],
            ["GET", "PUT"],
            allowed_headers=["x-ms-meta-abc", "x-ms-meta-data*"],
            exposed_headers=["x-ms-meta-*"],
            max_age_in_seconds=500,
        ),
        CorsRule(["*"], ["DELETE"], max_age_in_seconds=0),
    ]
    service.set_service_properties(analytics_logging=logging, hour_metrics=hour, minute_metrics=minute, cors=cors)

    props = service.get_service_properties()
    lg = props["analytics_logging"]
    assert (lg.version, lg.delete, lg.read, lg.write) == ("1.0", True, False, True)
    assert lg.retention_policy.enabled is True and lg.retention_policy.days == 5
    hm = props["hour_metrics"]
    assert hm.enabled is True and hm.include_apis is True
    assert hm.retention_policy.enabled is True and hm.retention_policy.days == 7
    mm = props["minute_metrics"]
    assert mm.enabled is False and mm.retention_policy.enabled is False
    assert [_cors_tuple(r) for r in props["cors"]] == [_cors_tuple(r) for r in cors]


def test_service_properties_partial_update_keeps_other_sections(service, preserve_service_properties):
    logging = QueueAnalyticsLogging(
        version="1.0", delete=False, read=True, write=False, retention_policy=RetentionPolicy(enabled=True, days=3)
    )
    cors = [CorsRule(["http://keep.example"], ["GET"], max_age_in_seconds=60)]
    service.set_service_properties(analytics_logging=logging, cors=cors)

    # update only the hour metrics: logging and CORS must survive
    service.set_service_properties(
        hour_metrics=Metrics(enabled=True, include_apis=False, retention_policy=RetentionPolicy(enabled=True, days=2))
    )
    props = service.get_service_properties()
    lg = props["analytics_logging"]
    assert (lg.delete, lg.read, lg.write) == (False, True, False)
    assert lg.retention_policy.days == 3
    assert [_cors_tuple(r) for r in props["cors"]] == [_cors_tuple(r) for r in cors]
    assert props["hour_metrics"].enabled is True
    assert props["hour_metrics"].retention_policy.days == 2

    # an explicitly empty CORS list clears the rules, and leaves logging alone
    service.set_service_properties(cors=[])
    props = service.get_service_properties()
    assert props["cors"] == []
    assert props["analytics_logging"].read is True


def test_set_service_properties_raw_returns_202_and_get_has_all_sections(raw, preserve_service_properties):
    body = (
        "<?xml version='1.0' encoding='utf-8'?><StorageServiceProperties>"
        "<Cors><CorsRule><AllowedOrigins>http://raw.example</AllowedOrigins><AllowedMethods>GET</AllowedMethods>"
        "<MaxAgeInSeconds>10</MaxAgeInSeconds><ExposedHeaders></ExposedHeaders><AllowedHeaders></AllowedHeaders>"
        "</CorsRule></Cors></StorageServiceProperties>"
    )
    r = raw.put("", {"restype": "service", "comp": "properties"}, body=body)
    assert r.status == 202, r
    g = raw.get("", {"restype": "service", "comp": "properties"})
    assert g.status == 200, g
    root = g.xml()
    assert root.tag == "StorageServiceProperties"
    for section in ("Logging", "HourMetrics", "MinuteMetrics", "Cors"):
        assert root.find(section) is not None, f"missing <{section}> in {g.text}"
    assert find_text(root, "Cors/CorsRule/AllowedOrigins") == "http://raw.example"


@pytest.mark.azurite_deviation(
    reason="Azurite 3.37.0 stores a sixth CORS rule. https://learn.microsoft.com/rest/api/storageservices/"
    "set-queue-service-properties (Cors element): 'You can include up to five CorsRule elements in the "
    "request'; https://learn.microsoft.com/rest/api/storageservices/cross-origin-resource-sharing--cors--"
    "support-for-the-azure-storage-services: 'You can set up to five CORS rules for each storage service'."
)
def test_set_service_properties_rejects_more_than_five_cors_rules(service, preserve_service_properties):
    rules = [CorsRule([f"http://o{i}.example"], ["GET"]) for i in range(6)]
    with pytest.raises(HttpResponseError) as ei:
        service.set_service_properties(cors=rules)
    assert ei.value.status_code == 400
    assert len(service.get_service_properties()["cors"]) == 0  # nothing was stored


# --------------------------------------------------------------------------------------
# Service stats (secondary endpoint)


def test_service_stats_on_secondary_endpoint(target):
    cred = {"account_name": target.account_name, "account_key": target.account_key}
    secondary = QueueServiceClient(
        target.secondary_endpoint,
        credential=cred,
        secondary_hostname=target.secondary_endpoint.split("://", 1)[1].split("/", 1)[0],
    )
    stats = secondary.get_service_stats()
    geo = stats["geo_replication"]
    assert str(getattr(geo["status"], "value", geo["status"])) in ("live", "bootstrap", "unavailable")
    if geo["last_sync_time"] is not None:
        assert isinstance(geo["last_sync_time"], dt.datetime)


def test_service_stats_raw_secondary_ok_primary_rejected(target, raw):
    from storage_http import RawClient

    sec = RawClient(target.secondary_endpoint, target.account_name, target.account_key)
    r = sec.get("", {"restype": "service", "comp": "stats"})
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "StorageServiceStats"
    assert find_text(root, "GeoReplication/Status") in ("live", "bootstrap", "unavailable")

    p = raw.get("", {"restype": "service", "comp": "stats"})
    assert p.status == 400, p
    assert p.error_code == "InvalidQueryParameterValue"
