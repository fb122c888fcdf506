"""The system in containers on a real Docker engine (run by scripts/docker-e2e.sh, which
starts the engine and builds the images): docker-compose.yml brought up, a real JPEG
uploaded through the app's form on the published port and its thumbnail seen, workers
scaled to three, the emulator container restarted with the data still there (named volume),
the workers stopped gracefully, everything taken down with its volumes. Then the image is
started as if it were Azurite by the stock Testcontainers Azurite module (and Blob-only with
`azurite-blob`) for SDK round trips. Prints a JSON report (sizes, times to healthy).

usage: python e2e.py <compose command, e.g. "docker-compose">
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

ROOT = Path(__file__).resolve().parents[2]
PHOTO = Path(__file__).with_name("photo.jpg").read_bytes()
PROJECT = "e2e"
APP = "http://127.0.0.1:3000"
COMPOSE = shlex.split(sys.argv[1] if len(sys.argv) > 1 else "docker-compose")
report: dict = {}


def run(*args, check=True, capture=True, timeout=300):
    r = subprocess.run(list(args), cwd=ROOT, capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def compose(*args, **kw):
    return run(*COMPOSE, "-p", PROJECT, *args, **kw)


def containers(service):
    return compose("ps", "-q", service).stdout.split()


def inspect(cid, fmt):
    return run("docker", "inspect", "-f", fmt, cid).stdout.strip()


def wait(what, ok, timeout=120, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except (requests.RequestException, AssertionError, ValueError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def logs(cid):
    r = run("docker", "logs", cid)
    return r.stdout + r.stderr


def healthy(service):
    ids = containers(service)
    return bool(ids) and all(inspect(c, "{{.State.Health.Status}}") == "healthy" for c in ids)


def upload(name="photo.jpg"):
    r = requests.post(f"{APP}/upload", files={"images": (name, PHOTO, "image/jpeg")},
                      headers={"accept": "application/json"}, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["jobs"][0]


def job(jid):
    return requests.get(f"{APP}/api/jobs/{jid}", timeout=30).json()


def done(jid):
    j = job(jid)
    assert j["state"] != "failed", j
    return j["state"] == "done"


def thumbnail(jid):
    j = job(jid)
    url = j["thumbnail"]["url"]
    r = requests.get(url if url.startswith("http") else APP + url, timeout=30)
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8", (r.status_code, url)
    return (j["thumbnail"]["width"], j["thumbnail"]["height"]), r.content


def start_times(image):
    """Seconds from `docker run` to the health endpoint answering on the published port,
    and to the engine reporting the container healthy (its first probe, one interval in)."""
    t0 = time.monotonic()
    cid = run("docker", "run", "-d", "-p", "127.0.0.1::10000", image).stdout.strip()
    try:
        port = run("docker", "port", cid, "10000/tcp").stdout.split(":")[-1].strip()
        wait("the health endpoint", lambda: requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1).ok,
             timeout=60, every=0.01)
        listening = time.monotonic() - t0
        wait(f"{image} healthy", lambda: inspect(cid, "{{.State.Health.Status}}") == "healthy", timeout=60, every=0.02)
        return round(listening, 2), round(time.monotonic() - t0, 2)
    finally:
        run("docker", "rm", "-f", cid, check=False)


def compose_flow():
    compose("down", "-v", "--remove-orphans", check=False)
    t0 = time.monotonic()
    compose("up", "-d", "--no-build")
    wait("emulator and app healthy", lambda: healthy("emulator") and healthy("app"))
    report["compose_up_to_healthy_s"] = round(time.monotonic() - t0, 2)
    assert len(containers("worker")) == 1

    first = upload()
    wait("the first thumbnail", lambda: done(first))
    size, thumb = thumbnail(first)
    assert max(size) == 256, size
    report["thumbnail"] = size

    compose("up", "-d", "--no-build", "--scale", "worker=3")
    workers = containers("worker")
    assert len(workers) == 3, workers
    wait("three workers started", lambda: all("worker started" in logs(w) for w in workers), every=0.5)
    jobs = [upload(f"photo-{i}.jpg") for i in range(6)]
    wait("six more thumbnails", lambda: all(done(j) for j in jobs))
    finished = {w: logs(w).count("job finished") for w in workers}
    assert sum(finished.values()) >= 7, finished
    report["jobs_per_worker"] = sorted(finished.values())

    [emulator] = containers("emulator")
    compose("restart", "emulator")
    wait("the emulator healthy again", lambda: healthy("emulator"))
    assert containers("emulator") == [emulator], "restarted, not recreated"
    assert thumbnail(first) == (size, thumb), "the data outlived the restart"
    assert done(jobs[-1])

    compose("stop", "worker")
    for w in workers:
        assert inspect(w, "{{.State.Running}}") == "false"
        assert inspect(w, "{{.State.ExitCode}}") == "0", run("docker", "logs", "--tail", "20", w).stderr
        assert "worker stopped" in logs(w)
    volume = f"{PROJECT}_emulator-data"
    assert volume in run("docker", "volume", "ls", "-q").stdout.split()
    compose("down", "-v")
    assert volume not in run("docker", "volume", "ls", "-q").stdout.split()
    assert not containers("emulator")


def testcontainers_flow():
    # No registry here, so no reaper image: containers are removed by the `with` blocks.
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    from testcontainers.community.azurite import AzuriteContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    # The stock module, only the image name changed.
    with AzuriteContainer("storage-emulator:local") as azurite:
        conn = azurite.get_connection_string()
        blobs = BlobServiceClient.from_connection_string(conn)
        blobs.create_container("swapped").upload_blob("a.txt", b"as if it were Azurite")
        assert blobs.get_container_client("swapped").download_blob("a.txt").readall() == b"as if it were Azurite"
        q = QueueClient.from_connection_string(conn, "swapped")
        q.create_queue()
        q.send_message("hello")
        assert [m.content for m in q.receive_messages()] == ["hello"]
        out, err = azurite.get_logs()
        assert b"Azurite Blob service is successfully listening at http://0.0.0.0:10000" in out, out
        assert b"Azurite Queue service is successfully listening at http://0.0.0.0:10001" in out, out

    # Blob only, waiting for the log line as the Java, .NET and Go modules do.
    blob_only = (DockerContainer("storage-emulator:local")
                 .with_command("azurite-blob --blobHost 0.0.0.0 --blobPort 10000")
                 .with_exposed_ports(10000)
                 .waiting_for(LogMessageWaitStrategy("Azurite Blob service is successfully listening at")))
    with blob_only as c:
        port = c.get_exposed_port(10000)
        key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
        conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};"
                f"BlobEndpoint=http://{c.get_container_host_ip()}:{port}/devstoreaccount1;")
        BlobServiceClient.from_connection_string(conn).create_container("blobonly")
        out, _ = c.get_logs()
        assert b"Queue" not in out


def main():
    for image in ["storage-emulator:local", "upload-app:local", "image-worker:local"]:
        report.setdefault("image_mb", {})[image] = round(int(inspect(image, "{{.Size}}")) / 1e6, 1)
        assert inspect(image, "{{.Config.User}}") == "10001", f"{image} runs as root"
    report["emulator_run_to_serving_s"], report["emulator_run_to_healthy_s"] = start_times("storage-emulator:local")
    compose_flow()
    testcontainers_flow()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
