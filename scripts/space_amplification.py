#!/usr/bin/env python3
"""Data folder size against live bytes for N blobs of SIZE bytes: after the upload, after a
restart, after deleting half, and after two more restarts (each open compacts the store
when that gives space back). Loopback only; the emulator it starts is stopped by pid.

    .venv/bin/python scripts/space_amplification.py 3000 16384
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from azure.storage.blob import BlobServiceClient

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BIN = os.environ.get("EMULATOR_BIN", "target/release/emulator")


def start(data):
    p = subprocess.Popen(
        [BIN, "--blobPort", "0", "--queuePort", "0", "--location", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in p.stdout:
        m = re.search(r"Blob service listening at (http://\S+)", line)
        if m:
            cs = (
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                f"AccountKey={KEY};BlobEndpoint={m.group(1)}/devstoreaccount1;"
            )
            return p, BlobServiceClient.from_connection_string(cs)
    raise SystemExit("the emulator did not start")


def stop(p):
    p.terminate()
    p.wait(timeout=30)


def folder(data):
    return sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(data) for f in files
    )


def main():
    n, size = int(sys.argv[1]), int(sys.argv[2])
    data = tempfile.mkdtemp(prefix="space-")
    try:
        body = os.urandom(size)
        p, svc = start(data)
        c = svc.create_container("space")
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: c.upload_blob(f"b{i}", body), range(n)))
        stop(p)
        live = n * size
        print(f"{n} blobs of {size} bytes ({live / 2**20:.1f} MiB)")
        print(f"  after the upload:    {folder(data) / live:.2f}x")
        p, _ = start(data)
        stop(p)
        print(f"  after a restart:     {folder(data) / live:.2f}x")
        p, svc = start(data)
        c = svc.get_container_client("space")
        with ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda i: c.delete_blob(f"b{i}"), range(0, n, 2)))
        stop(p)
        live = (n - (n + 1) // 2) * size
        print(f"  half deleted:        {folder(data) / live:.2f}x of what is left")
        for i in (1, 2):
            p, _ = start(data)
            stop(p)
            print(f"  after restart {i}:     {folder(data) / live:.2f}x")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
