"""State snapshots (`/_emulator/snapshots/{name}`, `.../restore`): the whole state of both
services saved by name and put back, through Microsoft's Python SDKs. Emulator only: no
other emulator has them.

Each test starts its own emulator with a data folder, since a restore replaces everything.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
import requests
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from emu import Emu
from procs import stop

pytestmark = pytest.mark.emulator_only

BIG = bytes(range(256)) * 800  # 200 KiB: a body file of its own, not a pack


def post(emu, path, status):
    r = requests.post(f"{emu.blob_base}/_emulator/snapshots/{path}", headers=emu.key_header, timeout=60)
    assert r.status_code == status, r.text
    return r


def state(conn):
    """Everything a client can see: containers, blobs (bytes, metadata, tags), queues and
    their messages (peeked, so nothing changes)."""
    blobs = BlobServiceClient.from_connection_string(conn)
    queues = QueueServiceClient.from_connection_string(conn)
    out = {"containers": {}, "queues": {}}
    for c in blobs.list_containers(include_metadata=True):
        client = blobs.get_container_client(c.name)
        items = {}
        for b in client.list_blobs(include=["metadata", "tags"]):
            data = client.download_blob(b.name).readall()
            items[b.name] = (hashlib.sha256(data).hexdigest(), dict(b.metadata or {}), dict(b.tags or {}))
        out["containers"][c.name] = (dict(c.metadata or {}), items)
    for q in queues.list_queues():
        client = queues.get_queue_client(q.name)
        props = client.get_queue_properties()
        texts = sorted(m.content for m in client.peek_messages(max_messages=32))
        out["queues"][q.name] = (props.approximate_message_count, texts)
    return out


def test_snapshot_restore_survives_kill_and_is_exact(tmp_path):
    data = tmp_path / "data"
    emu = Emu("--location", str(data))
    try:
        blobs = BlobServiceClient.from_connection_string(emu.conn)
        photos = blobs.create_container("photos", metadata={"owner": "tests"})
        photos.upload_blob("small.txt", b"hello", metadata={"k": "v"})
        photos.upload_blob("dir/big.bin", BIG, tags={"stage": "raw"})
        queues = QueueServiceClient.from_connection_string(emu.conn)
        jobs = queues.create_queue("jobs")
        for i in range(3):
            jobs.send_message(f"job-{i}")
        base = state(emu.conn)

        r = post(emu, "base", 201).json()
        assert r["name"] == "base" and r["records"] > 0 and r["bodyBytes"] >= len(BIG)

        # Change everything a test might change.
        photos.delete_blob("small.txt")
        photos.upload_blob("dir/big.bin", b"overwritten", overwrite=True)
        photos.upload_blob("new.txt", b"new")
        blobs.create_container("extra")
        [m] = jobs.receive_messages(max_messages=1)
        jobs.delete_message(m)
        jobs.send_message("later")
        queues.create_queue("other")
        assert state(emu.conn) != base

        r = post(emu, "base/restore", 200).json()
        assert r["name"] == "base"
        assert state(emu.conn) == base

        listed = requests.get(f"{emu.blob_base}/_emulator/snapshots", headers=emu.key_header, timeout=30).json()
        assert [s["name"] for s in listed["snapshots"]] == ["base"]

        # Killed: the restore and the snapshot are both on disk.
        emu.proc.kill()
        emu.proc.wait()
        emu = Emu("--location", str(data))
        assert state(emu.conn) == base
        BlobServiceClient.from_connection_string(emu.conn).get_container_client("photos").upload_blob("x", b"x")
        post(emu, "base/restore", 200)
        assert state(emu.conn) == base

        # Restoring twice gives the same; a message received after a restore is the saved one.
        jobs = QueueServiceClient.from_connection_string(emu.conn).get_queue_client("jobs")
        assert sorted(m.content for m in jobs.receive_messages(max_messages=5)) == ["job-0", "job-1", "job-2"]

        r = requests.delete(f"{emu.blob_base}/_emulator/snapshots/base", headers=emu.key_header, timeout=30)
        assert r.status_code == 204
        r = post(emu, "base/restore", 404)
        assert r.headers["x-ms-error-code"] == "ResourceNotFound"
        r = post(emu, ".hidden", 400)
        assert r.headers["x-ms-error-code"] == "InvalidResourceName"
        r = requests.post(f"{emu.blob_base}/_emulator/snapshots/s", timeout=30)
        assert r.status_code == 403
    finally:
        stop(emu.proc)


def test_a_snapshot_under_concurrent_writes_is_one_instant(tmp_path):
    emu = Emu("--location", str(tmp_path / "data"))
    try:
        blobs = BlobServiceClient.from_connection_string(emu.conn)
        blobs.create_container("load")

        def content(name):
            n = 70_000 if name.endswith("0") else 100  # both packs and body files
            return hashlib.sha256(name.encode()).digest() * (n // 32)

        done, errors = threading.Event(), []
        written = {t: 0 for t in range(4)}

        def writer(t):
            client = BlobServiceClient.from_connection_string(emu.conn).get_container_client("load")
            deadline = time.monotonic() + 60
            for i in range(400):
                if done.is_set() or time.monotonic() > deadline:
                    return
                name = f"t{t}/{i:04d}"
                try:
                    client.upload_blob(name, content(name))
                except Exception as e:  # noqa: BLE001 - any failure fails the test
                    errors.append(repr(e))
                    return
                written[t] = i + 1

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        while sum(written.values()) < 20 and all(t.is_alive() for t in threads):
            time.sleep(0.01)
        post(emu, "mid", 201)
        post(emu, "mid/restore", 200)
        done.set()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[:3]

        # Quiet now: what "mid" holds is, per writer, its first n blobs (sequential writes
        # seen at one instant), each intact.
        post(emu, "mid/restore", 200)
        client = blobs.get_container_client("load")
        names = [b.name for b in client.list_blobs()]
        assert names, "the snapshot was taken after the first writes"
        by_writer = {}
        for n in names:
            t, i = n.split("/")
            by_writer.setdefault(t, []).append(int(i))
        for t, got in by_writer.items():
            assert got == list(range(len(got))), f"{t}: {got}"
        for n in names:
            assert client.download_blob(n).readall() == content(n), n
    finally:
        stop(emu.proc)
