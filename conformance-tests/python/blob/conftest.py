"""Fixtures for the Blob service conformance tests.

The Blob suite has its own target, started independently of the queue suite's:

  emulator  - EMULATOR_BIN (default <repo>/target/debug/emulator) with
              `--queuePort 0 --blobPort 0 --inMemoryPersistence --silent`; the blob URL is read
              from the `Blob service listening at http://127.0.0.1:PORT` line on stdout
  azurite   - AZURITE_BLOB_BIN (default <repo>/tools/azurite/node_modules/.bin/azurite-blob) on
              a free loopback port with `--skipApiVersionCheck --disableTelemetry
              --inMemoryPersistence --silent`
  external  - AZURE_STORAGE_CONNECTION_STRING (BlobEndpoint, or synthesized from AccountName)

Markers (`emulator_only`, `azurite_deviation`) are handled by the top-level conftest.py.
"""

from __future__ import annotations

import os
import queue as _queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
from procs import free_port as _free_port, stop as _stop, wait_listening as _wait_listening
from azure.storage.blob import BlobLeaseClient, BlobServiceClient, ContainerClient

from blob_helpers import unique_name
from storage_http import (
    DEV_ACCOUNT,
    DEV_KEY,
    RawClient,
    build_connection_string,
    parse_connection_string,
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent.parent  # conformance-tests/python/blob -> repo
STARTUP_TIMEOUT = 60.0
TARGETS = ("emulator", "azurite", "external")


def blob_target_name() -> str:
    name = os.environ.get("CONFORMANCE_TARGET", "emulator").strip().lower()
    if name not in TARGETS:
        raise pytest.UsageError(f"CONFORMANCE_TARGET must be one of {TARGETS}, got {name!r}")
    return name


@dataclass
class BlobTarget:
    name: str
    connection_string: str
    blob_endpoint: str  # e.g. http://127.0.0.1:PORT/devstoreaccount1
    account_name: str
    account_key: str
    process: Optional[subprocess.Popen] = None


# --------------------------------------------------------------------------------------
# process management


def _blob_target(name: str, endpoint: str, proc: Optional[subprocess.Popen]) -> BlobTarget:
    conn = build_connection_string(endpoint, service="Blob")
    return BlobTarget(name, conn, endpoint, DEV_ACCOUNT, DEV_KEY, proc)


def _start_azurite(workdir: Path) -> BlobTarget:
    binary = os.environ.get("AZURITE_BLOB_BIN") or str(
        REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    )
    if not (Path(binary).exists() or shutil.which(binary)):
        raise pytest.UsageError(
            f"Azurite not found at {binary}; install it with scripts/setup.sh (or set AZURITE_BLOB_BIN)"
        )
    port = _free_port()
    args = [
        binary,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--inMemoryPersistence",
        "--silent",
    ]
    if Path(binary).name == "azurite":  # the all-in-one binary also starts queue/table
        args += ["--queuePort", str(_free_port()), "--tablePort", str(_free_port())]
    log = workdir / "azurite-blob.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    try:
        _wait_listening(port, proc, STARTUP_TIMEOUT, "Azurite (blob)", log)
    except Exception:
        _stop(proc)
        raise
    return _blob_target("azurite", f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", proc)


_LISTEN_RE = re.compile(r"^Blob service listening at (http://\S+?)/?\s*$")


def _start_emulator(workdir: Path) -> BlobTarget:
    binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
    if not Path(binary).exists():
        raise pytest.UsageError(f"emulator binary not found at {binary}; build it (cargo build) or set EMULATOR_BIN")
    args = [binary, "--queuePort", "0", "--blobPort", "0", "--inMemoryPersistence", "--silent"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    lines: "_queue.Queue[Optional[str]]" = _queue.Queue()
    captured: List[str] = []

    def pump() -> None:  # keeps draining stdout so the child never blocks on a full pipe
        assert proc.stdout is not None
        for raw_line in proc.stdout:
            line = raw_line.decode("utf-8", errors="replace").rstrip("\r\n")
            captured.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="emulator-blob-stdout", daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    blob_url = None
    while blob_url is None:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except _queue.Empty:
            _stop(proc)
            raise RuntimeError("emulator did not announce its blob URL in time:\n" + "\n".join(captured))
        if line is None:
            _stop(proc)
            raise RuntimeError(f"emulator exited ({proc.poll()}) before announcing its blob URL:\n" + "\n".join(captured))
        m = _LISTEN_RE.match(line.strip())
        if m:
            blob_url = m.group(1)
    return _blob_target("emulator", f"{blob_url}/{DEV_ACCOUNT}", proc)


def _external() -> BlobTarget:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        raise pytest.UsageError("CONFORMANCE_TARGET=external needs AZURE_STORAGE_CONNECTION_STRING")
    s = parse_connection_string(conn)
    account = s.get("accountname", DEV_ACCOUNT)
    endpoint = s.get("blobendpoint")
    if not endpoint:
        proto = s.get("defaultendpointsprotocol", "https")
        suffix = s.get("endpointsuffix", "core.windows.net")
        endpoint = f"{proto}://{account}.blob.{suffix}"
    return BlobTarget("external", conn, endpoint.rstrip("/"), account, s.get("accountkey", ""))


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def blob_target() -> Iterator[BlobTarget]:
    name = blob_target_name()
    if name == "external":
        yield _external()
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"conformance-blob-{name}-"))
    t = _start_azurite(workdir) if name == "azurite" else _start_emulator(workdir)
    try:
        yield t
    finally:
        if t.process is not None:
            _stop(t.process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def bsc(blob_target: BlobTarget) -> BlobServiceClient:
    """BlobServiceClient authorized with the account key (Shared Key)."""
    return BlobServiceClient.from_connection_string(blob_target.connection_string)


@pytest.fixture(scope="session")
def braw(blob_target: BlobTarget) -> RawClient:
    """Raw HTTP client on the blob endpoint, Shared Key signed unless told otherwise."""
    return RawClient(blob_target.blob_endpoint, blob_target.account_name, blob_target.account_key)


@pytest.fixture
def container_name() -> str:
    return unique_name("conf")


@pytest.fixture
def container(bsc: BlobServiceClient, container_name: str) -> Iterator[ContainerClient]:
    """A fresh, empty private container, deleted (with everything in it) after the test."""
    client = bsc.get_container_client(container_name)
    client.create_container()
    try:
        yield client
    finally:
        try:
            client.delete_container()
        except Exception:
            # a leftover container lease (lease tests) blocks deletion: break it and retry
            try:
                BlobLeaseClient(client).break_lease(lease_break_period=0)
                client.delete_container()
            except Exception:
                pass


@pytest.fixture
def preserve_blob_service_properties(bsc: BlobServiceClient) -> Iterator[dict]:
    """Snapshot the account's blob service properties and restore them afterwards."""
    original = bsc.get_service_properties()
    try:
        yield original
    finally:
        bsc.set_service_properties(
            analytics_logging=original["analytics_logging"],
            hour_metrics=original["hour_metrics"],
            minute_metrics=original["minute_metrics"],
            cors=original["cors"] or [],
            target_version=original["target_version"],
            delete_retention_policy=original["delete_retention_policy"],
            static_website=original["static_website"],
        )
