"""The Azure CLI's queue commands against the target, asserting what the queue holds:
`az storage message put`, `peek`, `get` and `delete`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

AZ = os.environ.get("AZ_BIN") or str(Path(__file__).resolve().parents[2] / "tools" / "azcli" / "venv" / "bin" / "az")


def az(connection_string, tmp_path, *args):
    env = {
        **os.environ,
        "AZURE_CONFIG_DIR": str(tmp_path / ".az"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
    }
    r = subprocess.run([AZ, *args, "--only-show-errors", "--output", "json"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"az {' '.join(args[:3])}: {r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_az_message_put_peek_get_delete(connection_string, queue, tmp_path):
    name = queue.queue_name
    for text in ["first", "second ünïcødé"]:
        put = az(connection_string, tmp_path, "storage", "message", "put", "--queue-name", name, "--content", text)
        assert put["id"], put
    assert queue.get_queue_properties().approximate_message_count == 2
    peeked = az(connection_string, tmp_path, "storage", "message", "peek", "--queue-name", name, "--num-messages", "32")
    assert [m["content"] for m in peeked] == ["first", "second ünïcødé"]
    got = az(connection_string, tmp_path, "storage", "message", "get", "--queue-name", name, "--visibility-timeout", "60")
    assert [m["content"] for m in got] == ["first"]
    m = got[0]
    az(connection_string, tmp_path, "storage", "message", "delete", "--queue-name", name, "--id", m["id"], "--pop-receipt", m["popReceipt"])
    left = [x.content for x in queue.peek_messages(max_messages=32)]
    assert left == ["second ünïcødé"]
