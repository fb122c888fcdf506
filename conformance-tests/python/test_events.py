"""Blob events to a queue (`/_emulator/events`, `--eventSubscription`): what Event Grid's
Storage Queue delivery would put in the queue, checked through Microsoft's Python SDKs (the
queue client decodes the base64 as Azure Functions' queue trigger does). Emulator only:
Azurite has no events.

Each test starts its own emulator.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from azure.storage.blob import BlobServiceClient, StandardBlobTier
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from emu import Emu
from procs import stop
from storage_http import DEV_ACCOUNT

pytestmark = pytest.mark.emulator_only


def subscribe(emu, sub, status=201):
    r = requests.post(f"{emu.blob_base}/_emulator/events", data=json.dumps(sub), headers=emu.key_header, timeout=30)
    assert r.status_code == status, r.text
    return r


def events(emu, queue, want, timeout=30):
    """Receives and deletes `want` events from `queue` (the dispatcher delivers them
    moments after the write)."""
    q = QueueClient.from_connection_string(emu.conn, queue, message_decode_policy=TextBase64DecodePolicy())
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for m in q.receive_messages(max_messages=32):
            got.append(json.loads(m.content))
            q.delete_message(m)
        if len(got) < want:
            time.sleep(0.05)
    assert len(got) == want, got
    return got


def test_blob_events_in_the_event_grid_schema():
    emu = Emu()
    try:
        subscribe(emu, {"name": "photos", "container": "photos", "queue": "blob-events"})
        blobs = BlobServiceClient.from_connection_string(emu.conn)
        photos = blobs.create_container("photos")
        other = blobs.create_container("other")

        up = photos.get_blob_client("a/b c.txt").upload_blob(b"hello", client_request_id="cid-1")
        [created] = events(emu, "blob-events", 1)
        assert created["eventType"] == "Microsoft.Storage.BlobCreated"
        assert created["subject"] == "/blobServices/default/containers/photos/blobs/a/b c.txt"
        assert created["topic"].endswith(f"/providers/Microsoft.Storage/storageAccounts/{DEV_ACCOUNT}")
        assert (created["dataVersion"], created["metadataVersion"]) == ("", "1")
        data = created["data"]
        assert data["api"] == "PutBlob"
        assert data["clientRequestId"] == "cid-1"
        assert data["eTag"] == up["etag"]
        assert (data["contentLength"], data["blobType"], data["accessTier"]) == (5, "BlockBlob", "Default")
        assert data["url"] == f"{emu.blob_base}/{DEV_ACCOUNT}/photos/a/b%20c.txt"
        assert len(data["sequencer"]) == 32 and data["requestId"]

        # Staged in blocks: Put Block List creates it.
        chunked = BlobServiceClient.from_connection_string(emu.conn, max_single_put_size=100_000, max_block_size=100_000)
        chunked.get_blob_client("photos", "big.bin").upload_blob(b"x" * 300_000, max_concurrency=1)
        photos.get_blob_client("a/b c.txt").set_standard_blob_tier(StandardBlobTier.COOL)
        other.upload_blob("ignored.txt", b"not watched")
        photos.delete_blob("big.bin")
        got = events(emu, "blob-events", 3)
        assert [(e["eventType"].split(".")[-1], e["data"]["api"]) for e in got] == [
            ("BlobCreated", "PutBlockList"),
            ("BlobTierChanged", "SetBlobTier"),
            ("BlobDeleted", "DeleteBlob"),
        ]
        assert got[0]["data"]["contentLength"] == 300_000
        assert (got[1]["data"]["accessTier"], got[1]["data"]["previousTier"]) == ("Cool", "Default")
        assert "contentLength" not in got[2]["data"] and got[2]["data"]["blobType"] == "BlockBlob"
        # Sequencers order one blob's events.
        assert got[0]["data"]["sequencer"] < got[2]["data"]["sequencer"]

        # A copy creates; filters by type and by subject.
        subscribe(emu, {"name": "copies", "account": DEV_ACCOUNT, "includedEventTypes": ["BlobCreated"],
                        "subjectEndsWith": ".jpg", "queue": "jpgs"})
        copy = photos.get_blob_client("copy.jpg")
        assert copy.start_copy_from_url(photos.get_blob_client("a/b c.txt").url)["copy_status"] == "success"
        photos.delete_blob("copy.jpg")
        [c1] = events(emu, "jpgs", 1)
        assert (c1["eventType"], c1["data"]["api"]) == ("Microsoft.Storage.BlobCreated", "CopyBlob")
        assert len(events(emu, "blob-events", 2)) == 2  # created and deleted, both watched

        listed = requests.get(f"{emu.blob_base}/_emulator/events", headers=emu.key_header, timeout=30).json()
        assert [s["name"] for s in listed["subscriptions"]] == ["copies", "photos"]
        assert listed["subscriptions"][1]["queueAccount"] == DEV_ACCOUNT
        assert listed["waiting"] == 0
        r = requests.delete(f"{emu.blob_base}/_emulator/events/photos", headers=emu.key_header, timeout=30)
        assert r.status_code == 204
        photos.upload_blob("after.txt", b"unwatched now")
        time.sleep(0.3)  # nothing to wait for: no event may arrive
        q = QueueClient.from_connection_string(emu.conn, "blob-events")
        assert q.get_queue_properties().approximate_message_count == 0

        # Malformed and unauthenticated subscriptions are refused.
        r = subscribe(emu, {"name": "x", "queue": "q", "includedEventTypes": ["BlobRenamed"]}, status=400)
        assert r.headers["x-ms-error-code"] == "InvalidInput"
        r = subscribe(emu, {"name": "x", "queue": "Bad_Queue"}, status=400)
        r = subscribe(emu, {"name": "x", "queue": "q", "unknownField": 1}, status=400)
        r = requests.post(f"{emu.blob_base}/_emulator/events", data="{}", timeout=30)
        assert r.status_code == 403
    finally:
        stop(emu.proc)


def test_events_wait_in_the_outbox_through_kill_9(tmp_path):
    data = tmp_path / "data"
    sub = json.dumps({"name": "all", "queue": "held"})
    emu = Emu("--location", str(data), "--eventSubscription", sub)
    try:
        subscribe(emu, {"name": "other", "queue": "flows"})
        # The queue is gone, so the event has nowhere to go and waits, durably; the other
        # subscription's queue gets its copy meanwhile.
        QueueClient.from_connection_string(emu.conn, "held").delete_queue()
        blobs = BlobServiceClient.from_connection_string(emu.conn)
        blobs.create_container("kept").upload_blob("kept.txt", b"acknowledged")
        [flowed] = events(emu, "flows", 1)
        assert flowed["subject"] == "/blobServices/default/containers/kept/blobs/kept.txt"
        listed = requests.get(f"{emu.blob_base}/_emulator/events", headers=emu.key_header, timeout=30).json()
        assert listed["waiting"] == 1
        emu.proc.kill()
        emu.proc.wait()
        # Restarted with the same flag: the subscription is replaced, not doubled.
        emu = Emu("--location", str(data), "--eventSubscription", sub)
        listed = requests.get(f"{emu.blob_base}/_emulator/events", headers=emu.key_header, timeout=30).json()
        assert [s["name"] for s in listed["subscriptions"]] == ["all", "other"]
        # The flag created the queue again at start: the waiting event arrives.
        [e] = events(emu, "held", 1)
        assert e["subject"] == "/blobServices/default/containers/kept/blobs/kept.txt"
        assert e["data"]["api"] == "PutBlob"
    finally:
        stop(emu.proc)


def test_a_bad_event_subscription_stops_the_start():
    with pytest.raises(AssertionError):
        Emu("--eventSubscription", json.dumps({"name": "x", "queue": "q", "account": "nobody"}))
