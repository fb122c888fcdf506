"""Extensions of our emulator: the admin clock (/_emulator/...). Skipped on other targets.

The file name sorts last on purpose: advancing the clock is global to the emulator process
and never undone, so tests comparing server times with the local clock must run before.

The admin clock lets TTL and visibility-timeout expiry be tested without sleeping:
POST {base}/_emulator/clock/advance?seconds=N with header x-ms-emulator-key: <account key>.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator_only


def code(err: HttpResponseError) -> str:
    c = err.error_code
    return str(getattr(c, "value", c))


def test_health_needs_no_auth(target):
    r = requests.get(f"{target.base_url}/_emulator/health", timeout=30)
    assert r.status_code == 200, r.text


def test_clock_advance_requires_key(admin):
    r = admin.advance(1, key="")
    assert r.status_code == 403, r.text
    r = requests.post(f"{admin.base}/_emulator/clock/advance", params={"seconds": "1"}, timeout=30)
    assert r.status_code == 403, r.text
    r = admin.advance(1, key="d3Jvbmcga2V5")
    assert r.status_code == 403, r.text


def test_rejected_clock_requests_do_not_move_the_clock(admin, target):
    import base64
    from email.utils import formatdate

    from storage_http import shared_key_signature, string_to_sign

    before = admin.advance_ok(0)["offsetSeconds"]
    url = f"{admin.base}/_emulator/clock/advance?seconds=3600"
    wrong_key = base64.b64encode(b"wrong key, wrong key, wrong key!").decode()
    attempts = {
        "no credentials": {},
        "empty key": {"x-ms-emulator-key": ""},
        "wrong key": {"x-ms-emulator-key": wrong_key},
        "key of another length": {"x-ms-emulator-key": target.account_key[:-4]},
        "garbage SharedKey": {"Authorization": f"SharedKey {target.account_name}:AAAA"},
    }
    hdrs = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-10-04", "Content-Length": "0"}
    sig = shared_key_signature(string_to_sign("POST", url, hdrs, target.account_name), wrong_key)
    attempts["SharedKey signed with a wrong key"] = {**hdrs, "Authorization": f"SharedKey {target.account_name}:{sig}"}
    for label, headers in attempts.items():
        r = requests.post(url, headers=headers, timeout=30)
        assert r.status_code == 403, (label, r.status_code, r.text)
        assert r.headers.get("x-ms-error-code") == "AuthenticationFailed", label
    assert admin.advance_ok(0)["offsetSeconds"] == before
    # control: the same Shared Key request signed with the right key is accepted (seconds=0)
    url0 = f"{admin.base}/_emulator/clock/advance?seconds=0"
    good = shared_key_signature(string_to_sign("POST", url0, hdrs, target.account_name), target.account_key)
    ok = requests.post(url0, headers={**hdrs, "Authorization": f"SharedKey {target.account_name}:{good}"}, timeout=30)
    assert ok.status_code == 200, ok.text
    assert ok.json()["offsetSeconds"] == before
    health = requests.get(f"{admin.base}/_emulator/health", timeout=30)
    assert health.status_code == 200, health.text
    assert health.json().get("status") == "ok"


def test_clock_advance_reports_offset(admin):
    first = admin.advance_ok(0)
    assert "now" in first and "offsetSeconds" in first
    second = admin.advance_ok(5)
    assert second["offsetSeconds"] >= first["offsetSeconds"] + 5


def test_advanced_clock_shows_in_date_header(admin, raw, queue):
    before = raw.get(queue.queue_name, {"comp": "metadata"})
    admin.advance_ok(3600)
    after = raw.get(queue.queue_name, {"comp": "metadata"})
    from email.utils import parsedate_to_datetime

    delta = parsedate_to_datetime(after.headers["Date"]) - parsedate_to_datetime(before.headers["Date"])
    assert delta.total_seconds() >= 3600 - 5


def test_message_ttl_expiry(admin, queue):
    short = queue.send_message("short", time_to_live=10)
    keep = queue.send_message("keep", time_to_live=3600)
    assert queue.get_queue_properties().approximate_message_count == 2
    admin.advance_ok(11)
    peeked = queue.peek_messages(max_messages=32)
    assert [m.id for m in peeked] == [keep.id]
    assert queue.get_queue_properties().approximate_message_count == 1
    with pytest.raises(HttpResponseError) as ei:
        queue.delete_message(short.id, short.pop_receipt)
    assert ei.value.status_code == 404
    assert code(ei.value) == "MessageNotFound"


def test_expired_message_not_counted_even_if_invisible(admin, queue):
    queue.send_message("hidden and short", visibility_timeout=5, time_to_live=10)
    assert queue.get_queue_properties().approximate_message_count == 1
    admin.advance_ok(11)
    assert queue.get_queue_properties().approximate_message_count == 0
    assert queue.peek_messages() == []
    assert queue.receive_message() is None


def test_infinite_ttl_survives_a_long_time(admin, queue):
    m = queue.send_message("forever", time_to_live=-1)
    admin.advance_ok(30 * 24 * 3600)
    assert [p.id for p in queue.peek_messages()] == [m.id]


def test_default_ttl_is_seven_days(admin, queue):
    queue.send_message("week")
    admin.advance_ok(7 * 24 * 3600 - 60)
    assert len(queue.peek_messages()) == 1
    admin.advance_ok(120)
    assert queue.peek_messages() == []


def test_visibility_timeout_expiry_redelivers(admin, queue):
    queue.send_message("retry me")
    first = queue.receive_message(visibility_timeout=30)
    assert first.dequeue_count == 1
    assert queue.receive_message() is None
    admin.advance_ok(31)
    second = queue.receive_message(visibility_timeout=30)
    assert second is not None
    assert second.id == first.id
    assert second.dequeue_count == 2
    assert second.pop_receipt != first.pop_receipt
    # the earlier receipt is stale now
    with pytest.raises(HttpResponseError) as ei:
        queue.delete_message(first.id, first.pop_receipt)
    assert ei.value.status_code == 400
    assert code(ei.value) == "PopReceiptMismatch"
    queue.delete_message(second.id, second.pop_receipt)


def test_receipt_still_valid_after_timeout_if_not_redequeued(admin, queue):
    queue.send_message("late delete")
    got = queue.receive_message(visibility_timeout=30)
    admin.advance_ok(31)
    # visible again, but nobody dequeued it: the receipt still works
    queue.delete_message(got.id, got.pop_receipt)
    assert queue.peek_messages() == []


def test_update_visibility_extends(admin, queue):
    queue.send_message("long job")
    got = queue.receive_message(visibility_timeout=30)
    admin.advance_ok(20)
    upd = queue.update_message(got, visibility_timeout=60)
    admin.advance_ok(20)  # 40 s after receive: original timeout would have lapsed
    assert queue.receive_message() is None
    assert queue.peek_messages() == []
    admin.advance_ok(41)  # 61 s after the update
    again = queue.receive_message(visibility_timeout=30)
    assert again is not None and again.id == got.id
    assert again.dequeue_count == 2
    assert again.pop_receipt != upd.pop_receipt


def test_send_with_visibility_timeout_becomes_visible(admin, queue):
    m = queue.send_message("delayed", visibility_timeout=120)
    assert queue.peek_messages() == []
    admin.advance_ok(121)
    assert [p.id for p in queue.peek_messages()] == [m.id]


def test_sas_expiry_follows_emulator_clock(admin, raw, target, queue):
    from email.utils import parsedate_to_datetime

    from azure.storage.queue import QueueClient, QueueSasPermissions, generate_queue_sas

    # the emulator's clock may already be far ahead of ours: base the SAS window on its Date
    server_now = parsedate_to_datetime(raw.get(queue.queue_name, {"comp": "metadata"}).headers["Date"])
    sas = generate_queue_sas(
        target.account_name, queue.queue_name, target.account_key,
        permission=QueueSasPermissions(add=True),
        start=server_now - dt.timedelta(minutes=1),
        expiry=server_now + dt.timedelta(minutes=10),
    )
    q = QueueClient(target.queue_endpoint, queue.queue_name, credential=sas)
    q.send_message("before expiry")
    admin.advance_ok(11 * 60)
    with pytest.raises(HttpResponseError) as ei:
        q.send_message("after expiry")
    assert ei.value.status_code == 403
    assert code(ei.value) == "AuthenticationFailed"
