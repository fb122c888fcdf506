"""Blob behaviour on our emulator's movable clock. The clock only moves forward, so these
run last in the blob suite (SAS expiry times of later tests would otherwise have passed)."""

from __future__ import annotations

import pytest
import requests
from azure.storage.blob import RehydratePriority, StandardBlobTier

pytestmark = pytest.mark.emulator_only


def test_rehydration_completes_on_the_emulators_clock(container, blob_target):
    b = container.upload_blob("back-online", b"data")
    b.set_standard_blob_tier(StandardBlobTier.ARCHIVE)
    b.set_standard_blob_tier(StandardBlobTier.COOL, rehydrate_priority=RehydratePriority.STANDARD)
    assert b.get_blob_properties().archive_status == "rehydrate-pending-to-cool"
    base = blob_target.blob_endpoint.rsplit("/", 1)[0]
    r = requests.post(
        f"{base}/_emulator/clock/advance",
        params={"seconds": "3600"},
        headers={"x-ms-emulator-key": blob_target.account_key},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    p = b.get_blob_properties()
    assert p.blob_tier == "Cool"
    assert p.archive_status is None
    assert b.download_blob().readall() == b"data"
