"""Raw HTTP helpers for the conformance suite.

The SDK hides status codes, headers and validates some parameters client-side, so
several tests talk HTTP directly. This module signs requests with Shared Key
(written from the Azure "Authorize with Shared Key" spec, not borrowed from the SDK,
so that it doubles as a check of the server's canonicalization) and parses the
XML bodies the queue service returns.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email.utils import formatdate
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, quote, urlparse

import requests

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
API_VERSION = "2021-10-04"

QueryT = Union[Mapping[str, object], Sequence[Tuple[str, object]], None]


def parse_connection_string(conn_str: str) -> Dict[str, str]:
    """Parse an Azure Storage connection string (keys case-insensitive, split on first '=')."""
    out: Dict[str, str] = {}
    for part in conn_str.split(";"):
        part = part.strip()
        if not part:
            continue
        key, _, value = part.partition("=")
        out[key.strip().lower()] = value.strip()
    return out


def build_connection_string(
    endpoint: str, account: str = DEV_ACCOUNT, key: str = DEV_KEY, *, service: str = "Queue"
) -> str:
    """Connection string with one explicit endpoint (`service` = "Queue" or "Blob")."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={account};AccountKey={key};"
        f"{service}Endpoint={endpoint};"
    )


def canonicalized_headers(headers: Mapping[str, str]) -> str:
    """CanonicalizedHeaders: x-ms-* names lowercased and sorted, whitespace runs collapsed."""
    h = {k.lower(): str(v) for k, v in headers.items()}
    out = ""
    for name in sorted(k for k in h if k.startswith("x-ms-")):
        value = " ".join(h[name].split())
        out += f"{name}:{value}\n"
    return out


def string_to_sign(method: str, url: str, headers: Mapping[str, str], account: str) -> str:
    """Shared Key string-to-sign for Blob/Queue (version 2009-09-19 and later)."""
    h = {k.lower(): str(v) for k, v in headers.items()}
    content_length = h.get("content-length", "")
    if content_length == "0":  # 2015-02-21+: zero length is signed as empty
        content_length = ""
    lines = [
        method.upper(),
        h.get("content-encoding", ""),
        h.get("content-language", ""),
        content_length,
        h.get("content-md5", ""),
        h.get("content-type", ""),
        "" if "x-ms-date" in h else h.get("date", ""),
        h.get("if-modified-since", ""),
        h.get("if-match", ""),
        h.get("if-none-match", ""),
        h.get("if-unmodified-since", ""),
        h.get("range", ""),
    ]
    sts = "\n".join(lines) + "\n" + canonicalized_headers(h)
    parsed = urlparse(url)
    resource = "/" + account + (parsed.path or "/")
    params: Dict[str, list] = {}
    for name, value in parse_qsl(parsed.query, keep_blank_values=True):
        params.setdefault(name.lower(), []).append(value)
    for name in sorted(params):
        resource += f"\n{name}:{','.join(sorted(params[name]))}"
    return sts + resource


def lite_string_to_sign(method: str, url: str, headers: Mapping[str, str], account: str) -> str:
    """Shared Key Lite string-to-sign for Blob/Queue (version 2009-09-19 and later).

    VERB, Content-MD5, Content-Type, Date, then CanonicalizedHeaders, then "/" + account + the
    encoded path, plus "?comp=<value>" when the URL has a comp parameter (no other parameters).
    """
    h = {k.lower(): str(v) for k, v in headers.items()}
    lines = [
        method.upper(),
        h.get("content-md5", ""),
        h.get("content-type", ""),
        "" if "x-ms-date" in h else h.get("date", ""),
    ]
    parsed = urlparse(url)
    resource = "/" + account + (parsed.path or "/")
    comp = [v for k, v in parse_qsl(parsed.query, keep_blank_values=True) if k == "comp"]
    if comp:
        resource += "?comp=" + comp[0]
    return "\n".join(lines) + "\n" + canonicalized_headers(h) + resource


def shared_key_signature(sts: str, key_b64: str) -> str:
    digest = hmac.new(base64.b64decode(key_b64), sts.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def encode_query(query: QueryT) -> str:
    if not query:
        return ""
    items = query.items() if isinstance(query, Mapping) else query
    return "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in items)


@dataclass
class RawResponse:
    status: int
    headers: requests.structures.CaseInsensitiveDict
    body: bytes
    request_url: str
    string_to_sign: Optional[str] = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    @property
    def error_code(self) -> Optional[str]:
        return self.headers.get("x-ms-error-code")

    def xml_error(self) -> Dict[str, str]:
        """Error body as {element name: text}."""
        root = self.xml()
        assert root.tag == "Error", f"expected <Error> root, got <{root.tag}>: {self.text}"
        return {child.tag: (child.text or "") for child in root}

    def __repr__(self) -> str:  # helps assertion messages
        return f"<RawResponse {self.status} {dict(self.headers)!r} {self.body[:500]!r}>"


class RawClient:
    """Minimal HTTP client for one storage account's service endpoint (queue or blob).

    `path` is appended to the endpoint as given, so callers percent-encode blob names
    themselves (see `quote_blob_name`); the Shared Key resource is the path as sent.
    """

    def __init__(self, endpoint: str, account: str, key: str, version: str = API_VERSION):
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.key = key
        self.version = version
        self.session = requests.Session()

    def url(self, path: str = "", query: QueryT = None, sas: Optional[str] = None) -> str:
        url = self.endpoint + "/" + path.lstrip("/")
        qs = encode_query(query)
        if sas:
            qs = (qs + "&" if qs else "") + sas.lstrip("?")
        return url + ("?" + qs if qs else "")

    def request(
        self,
        method: str,
        path: str = "",
        query: QueryT = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Union[bytes, str, None] = None,
        *,
        sign: bool = True,
        sas: Optional[str] = None,
        version: Optional[str] = None,
        tamper_signature: bool = False,
        url: Optional[str] = None,
        scheme: str = "SharedKey",
    ) -> RawResponse:
        """Send one request; signed with Shared Key (or scheme="SharedKeyLite") unless sas/sign=False."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs: Dict[str, str] = {
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": version or self.version,
        }
        if version == "":
            del hdrs["x-ms-version"]
        if body is not None or method.upper() in ("PUT", "POST", "DELETE"):
            hdrs["Content-Length"] = str(len(body or b""))
        if body:
            hdrs.setdefault("Content-Type", "application/xml")
        hdrs.update(headers or {})
        full_url = url or self.url(path, query, sas)
        sts = None
        if sign and not sas:
            signer = lite_string_to_sign if scheme == "SharedKeyLite" else string_to_sign
            sts = signer(method, full_url, hdrs, self.account)
            sig = shared_key_signature(sts, self.key)
            if tamper_signature:
                sig = base64.b64encode(b"\x00" * 32).decode("ascii")
            hdrs["Authorization"] = f"{scheme} {self.account}:{sig}"
        req = requests.Request(method.upper(), full_url, headers=hdrs, data=body or None)
        prepared = self.session.prepare_request(req)
        if method.upper() == "DELETE" and "Content-Length" not in prepared.headers:
            prepared.headers["Content-Length"] = "0"
        resp = self.session.send(prepared, timeout=30, allow_redirects=False)
        return RawResponse(resp.status_code, resp.headers, resp.content, full_url, sts)

    # convenience wrappers -------------------------------------------------
    def get(self, path: str = "", query: QueryT = None, **kw) -> RawResponse:
        return self.request("GET", path, query, **kw)

    def put(self, path: str = "", query: QueryT = None, **kw) -> RawResponse:
        return self.request("PUT", path, query, **kw)

    def post(self, path: str = "", query: QueryT = None, **kw) -> RawResponse:
        return self.request("POST", path, query, **kw)

    def delete(self, path: str = "", query: QueryT = None, **kw) -> RawResponse:
        return self.request("DELETE", path, query, **kw)

    def head(self, path: str = "", query: QueryT = None, **kw) -> RawResponse:
        return self.request("HEAD", path, query, **kw)


def quote_blob_name(name: str) -> str:
    """Percent-encode a blob name for a URL path the way the SDKs do ('/' kept)."""
    return quote(name, safe="/~")


def message_xml(text: str) -> str:
    from xml.sax.saxutils import escape

    return f"<?xml version='1.0' encoding='utf-8'?><QueueMessage><MessageText>{escape(text)}</MessageText></QueueMessage>"


def new_client_request_id() -> str:
    return str(uuid.uuid4())


def find_text(root: ET.Element, path: str) -> Optional[str]:
    el = root.find(path)
    return None if el is None else (el.text or "")


def element_names(root: ET.Element) -> Iterable[str]:
    return [child.tag for child in root]
