"""Small helpers shared by the Blob test modules (imported as a plain module: pytest puts
this directory on sys.path for the test files next to it)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import uuid
from typing import Callable, Optional, Tuple

import pytest
from azure.core.exceptions import HttpResponseError

from storage_http import RawClient, RawResponse, quote_blob_name


def code(err: HttpResponseError) -> str:
    c = err.error_code
    return str(getattr(c, "value", c))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def block_id(i: int, width: int = 6) -> str:
    """A base64 block id whose decoded length is `width` bytes."""
    return base64.b64encode(f"{i:0{width}d}".encode("ascii")).decode("ascii")


def bpath(container: str, blob: Optional[str] = None) -> str:
    """URL path (relative to the account endpoint) of a container or blob, percent-encoded."""
    return container if blob is None else f"{container}/{quote_blob_name(blob)}"


def expect_error(fn: Callable[[], object], status: int, error_code: str) -> HttpResponseError:
    """Run an SDK call that must fail with exactly this status and x-ms-error-code."""
    with pytest.raises(HttpResponseError) as ei:
        fn()
    assert ei.value.status_code == status, ei.value
    assert code(ei.value) == error_code, ei.value
    return ei.value


def assert_raw_error(r: RawResponse, status: int, error_code: str, *, head: bool = False) -> None:
    """Raw error response: status, x-ms-error-code, and (except HEAD) an XML body with the same Code."""
    assert r.status == status, r
    assert r.error_code == error_code, r
    if head:
        assert r.body == b"", r
    else:
        assert r.headers.get("Content-Type", "").startswith("application/xml"), r
        assert r.xml_error()["Code"] == error_code, r


def put_blob(
    braw: RawClient, container: str, blob: str, data: bytes = b"", headers: Optional[dict] = None, **kw
) -> RawResponse:
    hdrs = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
    hdrs.update(headers or {})
    return braw.put(bpath(container, blob), headers=hdrs, body=data, **kw)


def content_range(r: RawResponse) -> Tuple[int, int, int]:
    """(start, end, total) from `Content-Range: bytes s-e/total`."""
    value = r.headers.get("Content-Range", "")
    assert value.startswith("bytes "), r
    rng, _, total = value[len("bytes ") :].partition("/")
    start, _, end = rng.partition("-")
    return int(start), int(end), int(total)


def unique_name(prefix: str = "c") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"
