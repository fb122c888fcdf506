"""Conformance suite for the Azure Storage Queue REST API.

Target selection (env CONFORMANCE_TARGET):
  emulator  - start our Rust emulator (EMULATOR_BIN, default <repo>/target/debug/emulator)
  azurite   - start Microsoft's Azurite (AZURITE_BIN, default <repo>/tools/azurite/node_modules/.bin/azurite-queue)
  external  - use AZURE_STORAGE_CONNECTION_STRING as is (nothing is started)
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
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional
from urllib.parse import urlparse

import pytest
from procs import free_port as _free_port, stop as _stop, wait_listening as _wait_listening
import requests
from azure.storage.queue import QueueClient, QueueServiceClient

from storage_http import (
    DEV_ACCOUNT,
    DEV_KEY,
    RawClient,
    build_connection_string,
    parse_connection_string,
)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent  # conformance-tests/python -> conformance-tests -> repo
STARTUP_TIMEOUT = 60.0

TARGETS = ("emulator", "azurite", "external")


def target_name() -> str:
    name = os.environ.get("CONFORMANCE_TARGET", "emulator").strip().lower()
    if name not in TARGETS:
        raise pytest.UsageError(f"CONFORMANCE_TARGET must be one of {TARGETS}, got {name!r}")
    return name


@dataclass
class Target:
    name: str
    connection_string: str
    queue_endpoint: str  # e.g. http://127.0.0.1:PORT/devstoreaccount1
    account_name: str
    account_key: str
    process: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        """scheme://host:port, i.e. the queue endpoint without the account path segment."""
        p = urlparse(self.queue_endpoint)
        return f"{p.scheme}://{p.netloc}"

    @property
    def is_path_style(self) -> bool:
        return urlparse(self.queue_endpoint).path.strip("/") != ""

    @property
    def secondary_endpoint(self) -> str:
        """RA-GRS secondary endpoint: `<account>-secondary` in place of the account."""
        p = urlparse(self.queue_endpoint)
        if self.is_path_style:
            return f"{p.scheme}://{p.netloc}/{self.account_name}-secondary"
        host = p.netloc.replace(self.account_name, f"{self.account_name}-secondary", 1)
        return f"{p.scheme}://{host}"


# --------------------------------------------------------------------------------------
# process management


def _start_azurite(workdir: Path) -> Target:
    binary = os.environ.get("AZURITE_BIN") or str(REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite-queue")
    if not (Path(binary).exists() or shutil.which(binary)):
        raise pytest.UsageError(
            f"Azurite not found at {binary}; install it with "
            "scripts/setup.sh (or set AZURITE_BIN)"
        )
    port = _free_port()
    args = [
        binary,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--inMemoryPersistence",
        "--silent",
        "--queueHost",
        "127.0.0.1",
        "--queuePort",
        str(port),
    ]
    if Path(binary).name == "azurite":  # the all-in-one binary also starts blob/table
        args += ["--blobPort", str(_free_port()), "--tablePort", str(_free_port())]
    log = workdir / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_listening(port, proc, STARTUP_TIMEOUT, "Azurite", log)
    except Exception:
        _stop(proc)
        raise
    endpoint = f"http://127.0.0.1:{port}/{DEV_ACCOUNT}"
    return Target("azurite", build_connection_string(endpoint), endpoint, DEV_ACCOUNT, DEV_KEY, proc)


_LISTEN_RE = re.compile(r"^Queue service listening at (http://\S+?)/?\s*$")


def _start_emulator(workdir: Path) -> Target:
    binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
    if not Path(binary).exists():
        raise pytest.UsageError(f"emulator binary not found at {binary}; build it (cargo build) or set EMULATOR_BIN")
    args = [binary, "--queuePort", "0", "--blobPort", "0", "--inMemoryPersistence", "--silent"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
    )
    lines: "_queue.Queue[Optional[str]]" = _queue.Queue()
    captured: List[str] = []

    def pump() -> None:  # keeps draining stdout so the child never blocks on a full pipe
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            captured.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="emulator-stdout", daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    queue_url = None
    while queue_url is None:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.01))
        except _queue.Empty:
            _stop(proc)
            raise RuntimeError("emulator did not announce its queue URL in time:\n" + "\n".join(captured))
        if line is None:
            _stop(proc)
            raise RuntimeError(f"emulator exited ({proc.poll()}) before announcing its queue URL:\n" + "\n".join(captured))
        m = _LISTEN_RE.match(line.strip())
        if m:
            queue_url = m.group(1)
    endpoint = f"{queue_url}/{DEV_ACCOUNT}"
    return Target("emulator", build_connection_string(endpoint), endpoint, DEV_ACCOUNT, DEV_KEY, proc)


def _external() -> Target:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        raise pytest.UsageError("CONFORMANCE_TARGET=external needs AZURE_STORAGE_CONNECTION_STRING")
    s = parse_connection_string(conn)
    account = s.get("accountname", DEV_ACCOUNT)
    key = s.get("accountkey", "")
    endpoint = s.get("queueendpoint")
    if not endpoint:
        proto = s.get("defaultendpointsprotocol", "https")
        suffix = s.get("endpointsuffix", "core.windows.net")
        endpoint = f"{proto}://{account}.queue.{suffix}"
    return Target("external", conn, endpoint.rstrip("/"), account, key)


# --------------------------------------------------------------------------------------
# pytest hooks


def pytest_report_header(config):
    return f"conformance target: {target_name()}"


def pytest_collection_modifyitems(config, items):
    name = target_name()
    for item in items:
        if item.get_closest_marker("emulator_only") and name != "emulator":
            item.add_marker(pytest.mark.skip(reason="emulator_only: needs our emulator's extensions"))
        deviation = item.get_closest_marker("azurite_deviation")
        if deviation is not None:
            reason = deviation.kwargs.get("reason") or (deviation.args[0] if deviation.args else "")
            assert reason, f"{item.nodeid}: azurite_deviation needs reason=... citing the Azure docs"
            if name == "azurite":
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"Azurite deviation: {reason}"))
        lacks = item.get_closest_marker("azurite_lacks")
        if lacks is not None:
            feature = lacks.kwargs.get("feature") or (lacks.args[0] if lacks.args else "")
            assert feature, f"{item.nodeid}: azurite_lacks needs the feature's name"
            if name == "azurite":
                # strict: the day Azurite implements it, the test starts checking it there too.
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"Azurite lacks {feature}"))


# --------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    name = target_name()
    if name == "external":
        yield _external()
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"conformance-{name}-"))
    t = _start_azurite(workdir) if name == "azurite" else _start_emulator(workdir)
    try:
        yield t
    finally:
        if t.process is not None:
            _stop(t.process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def connection_string(target: Target) -> str:
    return target.connection_string


@pytest.fixture(scope="session")
def service(target: Target) -> QueueServiceClient:
    return QueueServiceClient.from_connection_string(target.connection_string)


@pytest.fixture(scope="session")
def raw(target: Target) -> RawClient:
    return RawClient(target.queue_endpoint, target.account_name, target.account_key)


def unique_name(prefix: str = "q") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


@pytest.fixture
def queue_name() -> str:
    return unique_name("conf")


@pytest.fixture
def queue(service: QueueServiceClient, queue_name: str) -> Iterator[QueueClient]:
    """A fresh, empty queue, deleted after the test."""
    client = service.get_queue_client(queue_name)
    client.create_queue()
    try:
        yield client
    finally:
        try:
            client.delete_queue()
        except Exception:
            pass


@pytest.fixture
def preserve_service_properties(service: QueueServiceClient) -> Iterator[dict]:
    """Snapshot the account's queue service properties and restore them afterwards."""
    original = service.get_service_properties()
    try:
        yield original
    finally:
        service.set_service_properties(
            analytics_logging=original["analytics_logging"],
            hour_metrics=original["hour_metrics"],
            minute_metrics=original["minute_metrics"],
            cors=original["cors"] or [],
        )


class EmulatorAdmin:
    """Client of our emulator's /_emulator admin API."""

    def __init__(self, target: Target):
        self.target = target
        self.base = target.base_url

    def advance(self, seconds: int, key: Optional[str] = None) -> requests.Response:
        return requests.post(
            f"{self.base}/_emulator/clock/advance",
            params={"seconds": str(seconds)},
            headers={"x-ms-emulator-key": key if key is not None else self.target.account_key},
            timeout=30,
        )

    def advance_ok(self, seconds: int) -> dict:
        r = self.advance(seconds)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()


@pytest.fixture
def admin(target: Target) -> EmulatorAdmin:
    return EmulatorAdmin(target)
