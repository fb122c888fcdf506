"""The emulator installed under Azurite's command names (`azurite`, `azurite-blob`,
`azurite-queue`, as in the container image): Azurite's command lines start it unchanged,
it prints the start-up lines Testcontainers modules and scripts wait for, serves only the
service a single-service command names (the other port stays free), and refuses what it
cannot honour. Emulator only.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from procs import free_port, stop
from storage_http import DEV_ACCOUNT, DEV_KEY

pytestmark = pytest.mark.emulator_only

REPO_ROOT = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")


def command(tmp_path, name):
    link = tmp_path / name
    if not link.exists():
        link.symlink_to(BINARY)
    return str(link)


def start(tmp_path, name, *args, env=None):
    proc = subprocess.Popen([command(tmp_path, name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=tmp_path)
    lines = []
    while True:
        line = proc.stdout.readline().decode()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "successfully listening" in line and len([x for x in lines if "successfully" in x]) == (1 if name != "azurite" else 2):
            break
    return proc, lines


def conn(blob_port=None, queue_port=None):
    s = f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
    if blob_port:
        s += f"BlobEndpoint=http://127.0.0.1:{blob_port}/{DEV_ACCOUNT};"
    if queue_port:
        s += f"QueueEndpoint=http://127.0.0.1:{queue_port}/{DEV_ACCOUNT};"
    return s


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_azurite_blob_serves_blob_only_and_prints_azurites_lines(tmp_path):
    blob, queue = free_port(), free_port()
    proc, lines = start(tmp_path, "azurite-blob", "--blobHost", "0.0.0.0", "--blobPort", str(blob),
                        "--queuePort", str(queue), "--location", str(tmp_path / "d"), "--loose",
                        "--skipApiVersionCheck", "--disableTelemetry", "--blobKeepAliveTimeout", "5")
    try:
        assert f"Azurite Blob service is starting at http://0.0.0.0:{blob}" in lines
        assert f"Azurite Blob service is successfully listening at http://0.0.0.0:{blob}" in lines
        assert not any("Queue" in line for line in lines)
        svc = BlobServiceClient.from_connection_string(conn(blob_port=blob))
        svc.create_container("dropin").upload_blob("a.txt", b"as azurite-blob")
        assert svc.get_container_client("dropin").download_blob("a.txt").readall() == b"as azurite-blob"
        assert refused(queue), "azurite-blob must leave the queue port free"
    finally:
        stop(proc)
    err = proc.stderr.read().decode()
    assert "--queuePort is ignored" in err and "--blobKeepAliveTimeout" in err


def test_azurite_queue_and_azurite_with_table_flags(tmp_path):
    blob, queue = free_port(), free_port()
    proc, lines = start(tmp_path, "azurite-queue", "--queueHost", "0.0.0.0", "--queuePort", str(queue),
                        "--blobPort", str(blob), "--inMemoryPersistence")
    try:
        assert lines[-1] == f"Azurite Queue service is successfully listening at http://0.0.0.0:{queue}"
        q = QueueClient.from_connection_string(conn(queue_port=queue), "dropin")
        q.create_queue()
        q.send_message("as azurite-queue")
        assert [m.content for m in q.peek_messages()] == ["as azurite-queue"]
        assert refused(blob)
        # The image's health check finds the one port there is.
        health = subprocess.run([BINARY, "--healthcheck", "--blobPort", str(blob), "--queuePort", str(queue)],
                                timeout=30)
        assert health.returncode == 0
    finally:
        stop(proc)

    # `azurite` as Microsoft's image and Testcontainers start it: the Table flags are taken,
    # with a warning; no Table line is printed, since there is no Table service.
    blob, queue = free_port(), free_port()
    proc, lines = start(tmp_path, "azurite", "--blobHost", "0.0.0.0", "--blobPort", str(blob),
                        "--queueHost", "0.0.0.0", "--queuePort", str(queue), "--tableHost", "0.0.0.0",
                        "--tablePort", "10002", "-l", str(tmp_path / "d2"))
    try:
        assert [line for line in lines if line.startswith("Azurite")] == [
            f"Azurite Blob service is starting at http://0.0.0.0:{blob}",
            f"Azurite Blob service is successfully listening at http://0.0.0.0:{blob}",
            f"Azurite Queue service is starting at http://0.0.0.0:{queue}",
            f"Azurite Queue service is successfully listening at http://0.0.0.0:{queue}",
        ]
    finally:
        stop(proc)
    assert re.search(r"no Table service", proc.stderr.read().decode())


def test_what_cannot_be_honoured_is_refused(tmp_path):
    r = subprocess.run([command(tmp_path, "azurite"), "--inMemoryPersistence", "--blobPort", "0", "--queuePort", "0"],
                       env={**os.environ, "AZURITE_DB": "mysql://user:pw@db:3306/azurite"},
                       capture_output=True, timeout=30)
    assert r.returncode == 2
    assert b"AZURITE_DB" in r.stderr and b"not supported" in r.stderr
    r = subprocess.run([command(tmp_path, "azurite"), "--noSuchFlag"], capture_output=True, timeout=30)
    assert r.returncode == 2 and b"--noSuchFlag" in r.stderr
