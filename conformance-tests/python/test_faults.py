"""Fault injection and the request log (`/_emulator/faults`, `/_emulator/requests`): our
emulator's test control plane, driven through Microsoft's Python SDK, whose retry policy is
what a fault rule exists to exercise. Emulator only: no other emulator has these.

Starts its own emulator, so rules and the log are this module's alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError, IncompleteReadError, ServiceResponseError
from azure.storage.blob import BlobServiceClient, LinearRetry
from azure.storage.queue import QueueClient

from emu import Emu
from procs import stop
from storage_http import DEV_ACCOUNT

pytestmark = pytest.mark.emulator_only


@pytest.fixture(scope="module")
def emu():
    e = Emu()
    yield e
    stop(e.proc)


@pytest.fixture(autouse=True)
def no_rules_left(emu):
    yield
    emu.clear()


def fast_retry(total=3):
    # The SDK's default waits 15 s and more between tries; the behaviour is the same.
    return LinearRetry(backoff=0.05, random_jitter_range=0.01, retry_total=total)


def name(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_the_documented_rule_and_sdk_retries(emu):
    svc = BlobServiceClient.from_connection_string(emu.conn, retry_policy=fast_retry())
    container = svc.create_container(name("retry"))
    blob = container.get_blob_client("a.txt")
    blob.upload_blob(b"retried")
    rule = emu.add({"operation": "GetBlobProperties", "status": 503, "errorCode": "ServerBusy", "count": 2})
    props = blob.get_blob_properties()  # two 503s, then the answer
    assert props.size == 7
    [listed] = [r for r in emu.rules() if r["id"] == rule["id"]]
    assert (listed["hits"], listed["remaining"]) == (2, 0)
    log = emu.log(operation="GetBlobProperties")
    assert [e["status"] for e in log[-3:]] == [503, 503, 200]
    assert [e.get("fault") for e in log[-3:]] == [rule["id"], rule["id"], None]
    assert log[-1]["principal"] == "key"


def test_a_faulted_write_is_not_applied(emu):
    q = QueueClient.from_connection_string(emu.conn, name("faulted"), retry_policy=fast_retry(total=0))
    q.create_queue()
    emu.add({"operation": "PutMessage", "status": 500, "errorCode": "OperationTimedOut", "count": 1})
    with pytest.raises(HttpResponseError) as e:
        q.send_message("lost?")
    assert e.value.status_code == 500 and e.value.error_code == "OperationTimedOut"
    assert q.get_queue_properties().approximate_message_count == 0
    # With retries the message arrives once, not twice.
    emu.add({"operation": "PutMessage", "status": 503, "errorCode": "ServerBusy", "retryAfterSeconds": 0, "count": 2})
    q2 = QueueClient.from_connection_string(emu.conn, q.queue_name, retry_policy=fast_retry())
    q2.send_message("once")
    assert [m.content for m in q2.peek_messages(max_messages=32)] == ["once"]


def test_a_reset_connection_is_retried(emu):
    q = QueueClient.from_connection_string(emu.conn, name("reset"), retry_policy=fast_retry())
    q.create_queue()
    emu.add({"operation": "PutMessage", "resource": q.queue_name, "reset": True, "count": 1})
    q.send_message("after a reset")
    assert [m.content for m in q.peek_messages(max_messages=32)] == ["after a reset"]
    entries = emu.log(operation="PutMessage")
    assert entries[-2]["status"] == 0 and entries[-2]["errorCode"] == "ConnectionReset"
    assert entries[-1]["status"] == 201


def test_a_cut_body_fails_the_download_length_check(emu):
    body = os.urandom(200_000)
    svc = BlobServiceClient.from_connection_string(emu.conn, retry_policy=fast_retry(total=0))
    container = svc.create_container(name("cut"))
    blob = container.get_blob_client("big.bin")
    blob.upload_blob(body)
    emu.add({"operation": "GetBlob", "resource": f"{container.container_name}/big.bin", "cutAfterBytes": 1000})
    with pytest.raises((IncompleteReadError, ServiceResponseError, HttpResponseError)):
        blob.download_blob().readall()
    # A plain HTTP client sees fewer bytes than Content-Length promised.
    emu.clear()
    emu.add({"operation": "GetBlob", "cutAfterBytes": 1000, "count": 1})
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(blob.url, headers={"x-ms-version": "2025-11-05"}, timeout=30).content  # noqa: B018
    # Once the rule is spent, the SDK's own retry of a cut download gets every byte.
    emu.add({"operation": "GetBlob", "cutAfterBytes": 1000, "count": 1})
    again = BlobServiceClient.from_connection_string(emu.conn, retry_policy=fast_retry())
    got = again.get_blob_client(container.container_name, "big.bin").download_blob().readall()
    assert got == body


def test_probability_and_latency_rules(emu):
    q = QueueClient.from_connection_string(emu.conn, name("prob"), retry_policy=fast_retry(total=0))
    q.create_queue()
    rule = emu.add({"operation": "GetQueueMetadata", "probability": 0.5, "latencyMs": 1})
    for _ in range(200):
        q.get_queue_properties()
    [listed] = [r for r in emu.rules() if r["id"] == rule["id"]]
    assert 60 <= listed["hits"] <= 140, listed


def test_rules_are_refused_when_malformed_and_without_a_key(emu):
    url = f"{emu.blob_base}/_emulator/faults"
    for bad in ["not json", '{"colour": "red"}', "{}", '{"errorCode": "NoSuchCode"}', '{"status": 503, "reset": true}']:
        r = requests.post(url, data=bad, headers=emu.key_header, timeout=30)
        assert r.status_code == 400, (bad, r.text)
        assert r.headers["x-ms-error-code"] == "InvalidInput"
    for method in ("GET", "POST", "DELETE"):
        r = requests.request(method, url, data='{"latencyMs": 1}', timeout=30)
        assert r.status_code == 403, (method, r.text)
        r = requests.request(method, url, data='{"latencyMs": 1}', headers={"x-ms-emulator-key": "d3Jvbmc="}, timeout=30)
        assert r.status_code == 403, (method, r.text)
    assert emu.rules() == []
    r = requests.get(f"{emu.blob_base}/_emulator/requests", timeout=30)
    assert r.status_code == 403
    r = requests.delete(f"{url}/999", headers=emu.key_header, timeout=30)
    assert r.status_code == 404


def test_the_request_log_shows_who_and_why(emu):
    wrong = BlobServiceClient(
        f"{emu.blob_base}/{DEV_ACCOUNT}",
        credential={"account_name": DEV_ACCOUNT, "account_key": "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkh"},
        retry_policy=fast_retry(total=0),
    )
    with pytest.raises(HttpResponseError):
        wrong.get_service_properties()
    entry = emu.log(status="403", operation="GetBlobServiceProperties")[-1]
    # The SDK's own x-ms-client-request-id, to find the call in the client's logs.
    assert uuid.UUID(entry["clientRequestId"])
    assert entry["errorCode"] == "AuthenticationFailed"
    assert entry["principal"] == "none"
    assert entry["operation"] == "GetBlobServiceProperties"
    # The string the server signed, to compare with the client's.
    assert entry["stringToSign"].startswith("GET\n") and "comp:properties" in entry["stringToSign"]
    assert all(e["status"] >= 400 or e["status"] == 0 for e in emu.log(status="errors"))
    assert len(emu.log(limit=1)) == 1


def test_the_request_log_streams_live(emu):
    q = QueueClient.from_connection_string(emu.conn, name("live"))
    q.create_queue()
    seen = []

    def follow():
        with requests.get(
            f"{emu.blob_base}/_emulator/requests",
            params={"stream": "true", "operation": "PutMessage"},
            headers=emu.key_header, stream=True, timeout=30,
        ) as r:
            assert r.headers["content-type"] == "text/event-stream"
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        q.send_message("watch me")
        t.join(timeout=0.2)
    assert seen and seen[0]["operation"] == "PutMessage" and seen[0]["resource"] == q.queue_name


def test_reset_empties_everything_and_needs_the_key(emu):
    svc = BlobServiceClient.from_connection_string(emu.conn)
    for i in range(3):
        c = svc.create_container(name(f"r{i}"))
        c.upload_blob("a/b.txt", b"x" * 100)
        c.get_blob_client("snap.txt").upload_blob(b"y")
        c.get_blob_client("snap.txt").create_snapshot()
    q = QueueClient.from_connection_string(emu.conn, name("resetq"))
    q.create_queue()
    q.send_message("gone soon")
    r = requests.post(f"{emu.blob_base}/_emulator/reset", timeout=30)
    assert r.status_code == 403
    assert len(list(svc.list_containers())) >= 3
    r = requests.post(f"{emu.blob_base}/_emulator/reset", params={"account": "nosuchaccount"}, headers=emu.key_header, timeout=30)
    assert r.status_code == 400
    r = requests.post(f"{emu.blob_base}/_emulator/reset", headers=emu.key_header, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["containers"] >= 3 and r.json()["queues"] >= 1
    assert list(svc.list_containers(include_deleted=True)) == []
    from azure.storage.queue import QueueServiceClient

    assert list(QueueServiceClient.from_connection_string(emu.conn).list_queues()) == []
    # The names are free again, and empty.
    q.create_queue()
    assert q.peek_messages() == []
    c = svc.create_container("r-again")
    assert list(c.list_blobs()) == []


def test_metrics_in_prometheus_text_format(emu):
    q = QueueClient.from_connection_string(emu.conn, name("metrics"))
    q.create_queue()
    for i in range(3):
        q.send_message(f"m{i}")
    assert requests.get(f"{emu.blob_base}/_emulator/metrics", timeout=30).status_code == 403
    r = requests.get(f"{emu.blob_base}/_emulator/metrics", headers=emu.key_header, timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) azure_emulator_[a-z_]+ .+", line), line
            continue
        m = re.match(r"^(azure_emulator_[a-z_]+)(\{[^}]*\})? (\S+)$", line)
        assert m, line
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    put = 'azure_emulator_requests_total{service="queue",operation="PutMessage",status="201"}'
    assert samples[put] >= 3
    assert samples[f'azure_emulator_queue_messages{{account="{DEV_ACCOUNT}",queue="{q.queue_name}"}}'] == 3
    count = 'azure_emulator_request_duration_seconds_count{service="queue",operation="PutMessage"}'
    inf = 'azure_emulator_request_duration_seconds_bucket{service="queue",operation="PutMessage",le="+Inf"}'
    assert samples[count] == samples[inf] >= 3
    assert samples["azure_emulator_request_bytes_total"] > 0
    assert "azure_emulator_group_commits_total" in samples
    svc = BlobServiceClient.from_connection_string(emu.conn)
    before = samples.get(f'azure_emulator_blob_bytes{{account="{DEV_ACCOUNT}"}}', 0)
    c = svc.create_container(name("usage"))
    c.upload_blob("a", b"x" * 1000)
    c.upload_blob("b", b"y" * 24)
    c.get_blob_client("b").create_snapshot()
    text = requests.get(f"{emu.blob_base}/_emulator/metrics", headers=emu.key_header, timeout=30).text
    after = float(re.search(rf'^azure_emulator_blob_bytes{{account="{DEV_ACCOUNT}"}} (\S+)$', text, re.M).group(1))
    assert after - before == 1024


def test_seed_from_a_folder_is_loaded_once(tmp_path):
    seed = tmp_path / "seed"
    (seed / "photos" / "2026" / "june").mkdir(parents=True)
    (seed / "photos" / "2026" / "june" / "beach.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(3000))
    (seed / "photos" / "notes.txt").write_text("hello")
    (seed / "docs").mkdir()
    (seed / "docs" / "report.json").write_text('{"a": 1}')
    (seed / "seed.json").write_text(json.dumps({
        "queues": {"jobs": ["first", "second"], "empty-queue": []},
        "containers": {"inline": {"greeting.txt": "hi there"}},
    }))
    data = tmp_path / "data"
    etags = {}
    for run in range(2):
        e = Emu("--location", str(data), "--seed", str(seed))
        try:
            svc = BlobServiceClient.from_connection_string(e.conn)
            assert sorted(c.name for c in svc.list_containers()) == ["docs", "inline", "photos"]
            photos = svc.get_container_client("photos")
            assert [b.name for b in photos.list_blobs()] == ["2026/june/beach.jpg", "notes.txt"]
            props = photos.get_blob_client("2026/june/beach.jpg").get_blob_properties()
            assert props.content_settings.content_type == "image/jpeg"
            assert props.size == 3003
            assert photos.download_blob("notes.txt").readall() == b"hello"
            doc = svc.get_blob_client("docs", "report.json").get_blob_properties()
            assert doc.content_settings.content_type == "application/json"
            assert svc.get_blob_client("inline", "greeting.txt").download_blob().readall() == b"hi there"
            q = QueueClient.from_connection_string(e.conn, "jobs")
            assert [m.content for m in q.peek_messages(max_messages=32)] == ["first", "second"]
            # The second start finds everything there and adds nothing.
            now = {b.name: b.etag for b in photos.list_blobs()}
            if run == 0:
                etags = now
            else:
                assert now == etags
        finally:
            stop(e.proc)


def test_a_bad_seed_stops_the_start_with_a_message(tmp_path):
    binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
    bad = tmp_path / "bad.json"
    bad.write_text('{"queues": {"Bad_Name": ["x"]}}')
    r = subprocess.run([binary, "--blobPort", "0", "--queuePort", "0", "--inMemoryPersistence", "--seed", str(bad)],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"not a valid queue name" in r.stderr, r
    r = subprocess.run([binary, "--blobPort", "0", "--queuePort", "0", "--inMemoryPersistence", "--seed", str(tmp_path / "missing")],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"no such file or folder" in r.stderr, r
