"""Real tools against the target, each asserting contents, not exit codes: rclone (chunked
uploads, unicode names, check, sync, purge), the Azure CLI (upload-batch, download-batch)
and AzCopy (a server-to-server copy of a blob larger than its block size, which AzCopy
does with Put Block From URL). Installed by scripts/setup.sh."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from azure.storage.blob import BlobSasPermissions, ContainerSasPermissions, generate_blob_sas, generate_container_sas

from blob_helpers import now

REPO = Path(__file__).resolve().parents[3]
AZ = os.environ.get("AZ_BIN") or str(REPO / "tools" / "azcli" / "venv" / "bin" / "az")
AZCOPY = os.environ.get("AZCOPY_BIN") or str(
    REPO / "tools" / "azcopy" / "node_modules" / "@azure-tools" / "azcopy-linux" / "dist" / "bin" / "azcopy_linux_amd64"
)
RCLONE = os.environ.get("RCLONE_BIN") or shutil.which("rclone") or "rclone"
TIMEOUT = 300


def run(cmd, env=None, cwd=None):
    r = subprocess.run(cmd, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"{cmd[0]} {' '.join(cmd[1:3])}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def tree(root: Path) -> dict:
    """{relative posix path: sha256} of every file under root."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stored(container) -> dict:
    return {
        b.name: hashlib.sha256(container.get_blob_client(b.name).download_blob().readall()).hexdigest()
        for b in container.list_blobs()
    }


def make_tree(root: Path) -> None:
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "dir" / "ünïcødé 文件 #1.bin").write_bytes(os.urandom(70_000))
    (root / "dir" / "sub" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 123))


# --------------------------------------------------------------------------------------
# rclone (Debian's package)


def rclone(blob_target, *args):
    env = {
        "RCLONE_CONFIG_T_TYPE": "azureblob",
        "RCLONE_CONFIG_T_ACCOUNT": blob_target.account_name,
        "RCLONE_CONFIG_T_KEY": blob_target.account_key,
        # With use_emulator, rclone takes `endpoint` as the whole account URL (otherwise it
        # is a DNS suffix after the account name).
        "RCLONE_CONFIG_T_USE_EMULATOR": "true",
        "RCLONE_CONFIG_T_ENDPOINT": blob_target.blob_endpoint,
        "RCLONE_CONFIG": "/dev/null",
    }
    # 1 MiB chunks and cut-off: the big file is uploaded as blocks, not one Put Blob.
    return run([RCLONE, *args, "--azureblob-chunk-size", "1M", "--azureblob-upload-cutoff", "1M", "-q"], env=env)


def test_rclone_copy_check_sync_purge(tmp_path, blob_target, bsc, container_name):
    src = tmp_path / "src"
    make_tree(src)
    remote = f"T:{container_name}"
    rclone(blob_target, "copy", str(src), remote)
    container = bsc.get_container_client(container_name)
    assert stored(container) == tree(src)
    big = container.get_blob_client("dir/sub/big.bin")
    assert len(big.get_block_list("committed")[0]) == 4, "uploaded in 1 MiB blocks"
    rclone(blob_target, "check", str(src), remote)
    # Change the tree: one file gone, one new, one rewritten.
    (src / "a.txt").unlink()
    (src / "new.txt").write_bytes(b"new\n")
    (src / "dir" / "sub" / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024 + 7))
    rclone(blob_target, "sync", str(src), remote)
    assert stored(container) == tree(src)
    rclone(blob_target, "purge", remote)
    assert not container.exists()


# --------------------------------------------------------------------------------------
# The Azure CLI (azure-cli from PyPI, in a venv of its own)


def az(blob_target, *args, cwd=None):
    env = {
        "AZURE_CONFIG_DIR": str(Path(cwd or ".") / ".az"),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
        "AZURE_STORAGE_CONNECTION_STRING": blob_target.connection_string,
    }
    return run([AZ, *args, "--only-show-errors"], env=env, cwd=cwd)


def test_az_upload_download_set_tier_delete_batch(tmp_path, blob_target, bsc, container_name):
    src = tmp_path / "src"
    make_tree(src)
    az(blob_target, "storage", "container", "create", "--name", container_name, cwd=tmp_path)
    az(blob_target, "storage", "blob", "upload-batch", "--destination", container_name, "--source", str(src), cwd=tmp_path)
    assert stored(bsc.get_container_client(container_name)) == tree(src)
    out = tmp_path / "out"
    out.mkdir()
    az(blob_target, "storage", "blob", "download-batch", "--destination", str(out), "--source", container_name, cwd=tmp_path)
    assert tree(out) == tree(src)
    container = bsc.get_container_client(container_name)
    az(blob_target, "storage", "blob", "set-tier", "--container-name", container_name, "--name", "a.txt", "--tier", "Cool", cwd=tmp_path)
    assert container.get_blob_client("a.txt").get_blob_properties().blob_tier == "Cool"
    az(blob_target, "storage", "blob", "delete-batch", "--source", container_name, "--pattern", "dir/*", cwd=tmp_path)
    assert sorted(b.name for b in container.list_blobs()) == ["a.txt"]


# --------------------------------------------------------------------------------------
# AzCopy (Microsoft's npm package @azure-tools/azcopy-linux)


def test_azcopy_server_to_server_copy_of_a_large_blob(tmp_path, blob_target, bsc, container_name):
    container = bsc.get_container_client(container_name)
    container.create_container()
    data = os.urandom(5 * 1024 * 1024 + 321)
    container.upload_blob("big.bin", data)
    expiry = now() + dt.timedelta(hours=1)
    source_sas = generate_blob_sas(
        blob_target.account_name,
        container_name,
        "big.bin",
        account_key=blob_target.account_key,
        permission=BlobSasPermissions(read=True),
        expiry=expiry,
    )
    dest_sas = generate_container_sas(
        blob_target.account_name,
        container_name,
        account_key=blob_target.account_key,
        permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
        expiry=expiry,
    )
    base = f"{blob_target.blob_endpoint}/{container_name}"
    env = {
        "AZCOPY_LOG_LOCATION": str(tmp_path / "logs"),
        "AZCOPY_JOB_PLAN_LOCATION": str(tmp_path / "plans"),
    }
    # --from-to: AzCopy cannot tell an emulator's URL is a blob endpoint by itself.
    run(
        [
            AZCOPY,
            "copy",
            f"{base}/big.bin?{source_sas}",
            f"{base}/copied.bin?{dest_sas}",
            "--from-to",
            "BlobBlob",
            "--block-size-mb",
            "1",
        ],
        env=env,
    )
    copied = container.get_blob_client("copied.bin")
    assert copied.download_blob().readall() == data
    assert len(copied.get_block_list("committed")[0]) == 6, "six blocks, each Put Block From URL"
