"""An emulator of a test module's own (`Emu`): control-plane tests change global state
(fault rules, snapshots, the request log), so they do not share the session's emulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import requests

from storage_http import DEV_ACCOUNT, DEV_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
_LISTEN = re.compile(r"^(Blob|Queue) service listening at (http://\S+?)/?\s*$")


class Emu:
    def __init__(self, *extra):
        binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
        store = [*extra] if "--location" in extra else ["--inMemoryPersistence", *extra]
        self.proc = subprocess.Popen(
            [binary, "--blobPort", "0", "--queuePort", "0", "--silent", *store],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        urls = {}
        deadline = time.monotonic() + 60
        assert self.proc.stdout is not None
        while len(urls) < 2 and time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            m = _LISTEN.match(line.strip())
            if m:
                urls[m.group(1)] = m.group(2)
        assert len(urls) == 2, "emulator did not start"
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.blob_base, self.queue_base = urls["Blob"], urls["Queue"]
        self.conn = (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={self.blob_base}/{DEV_ACCOUNT};QueueEndpoint={self.queue_base}/{DEV_ACCOUNT};"
        )
        self.key_header = {"x-ms-emulator-key": DEV_KEY}

    def add(self, rule: dict) -> dict:
        r = requests.post(f"{self.blob_base}/_emulator/faults", data=json.dumps(rule), headers=self.key_header, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    def rules(self) -> list:
        r = requests.get(f"{self.blob_base}/_emulator/faults", headers=self.key_header, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["rules"]

    def clear(self):
        r = requests.delete(f"{self.blob_base}/_emulator/faults", headers=self.key_header, timeout=30)
        assert r.status_code == 204, r.text

    def log(self, **params) -> list:
        r = requests.get(f"{self.queue_base}/_emulator/requests", params=params, headers=self.key_header, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["requests"]
