"""Competing consumers: no message is handed to two receivers within its visibility timeout."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from azure.storage.queue import QueueClient

MESSAGES = 200
CONSUMERS = 6


def test_competing_consumers_each_message_delivered_once(target, queue):
    def producer(chunk):
        q = QueueClient.from_connection_string(target.connection_string, queue.queue_name)
        return [q.send_message(f"msg-{i}").id for i in chunk]

    with ThreadPoolExecutor(max_workers=4) as pool:
        sent_ids = [i for ids in pool.map(producer, [range(k, MESSAGES, 4) for k in range(4)]) for i in ids]
    assert len(set(sent_ids)) == MESSAGES
    assert queue.get_queue_properties().approximate_message_count == MESSAGES

    delivered = []
    lock = threading.Lock()
    errors = []
    start = threading.Barrier(CONSUMERS)

    def consumer():
        q = QueueClient.from_connection_string(target.connection_string, queue.queue_name)
        start.wait()
        try:
            while True:
                page = list(next(q.receive_messages(messages_per_page=5, visibility_timeout=60).by_page(), []))
                if not page:
                    return
                for m in page:
                    with lock:
                        delivered.append((m.id, m.content, m.dequeue_count))
                    q.delete_message(m.id, m.pop_receipt)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=consumer) for _ in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors

    counts = Counter(mid for mid, _, _ in delivered)
    dupes = {mid: n for mid, n in counts.items() if n > 1}
    assert not dupes, f"delivered more than once: {dupes}"
    assert set(counts) == set(sent_ids), "every message must be delivered"
    assert sorted(c for _, c, _ in delivered) == sorted(f"msg-{i}" for i in range(MESSAGES))
    assert all(dq == 1 for _, _, dq in delivered)
    assert queue.get_queue_properties().approximate_message_count == 0
