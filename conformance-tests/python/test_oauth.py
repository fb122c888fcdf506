"""HTTPS, Microsoft Entra ID bearer tokens (`--oauth basic`) and user delegation SAS.

Each run starts its own server with a self-signed certificate made here (trusted by path,
never installed): our emulator with `--cert/--key --oauth basic`, or Azurite with the same
flags. The token credential mints unsigned-in-spirit JWTs (HS256 under a throwaway key):
the basic level checks audience, issuer and lifetime, not the signature, in both servers.

https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory
https://learn.microsoft.com/rest/api/storageservices/get-user-delegation-key
https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.blob import (
    BlobClient,
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    ContainerClient,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.queue import QueueClient

from procs import free_port, stop, wait_listening
from storage_http import DEV_ACCOUNT, DEV_KEY

# Not imported from conftest: with the blob suite collected too, "conftest" may name that one.
REPO_ROOT = Path(__file__).resolve().parents[2]


def target_name() -> str:
    return os.environ.get("CONFORMANCE_TARGET", "emulator").strip().lower()


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "11059fcc-5514-4800-b5f8-49808b9cfab6"
ISSUER = f"https://sts.windows.net/{TENANT}/"

pytestmark = pytest.mark.skipif(target_name() == "external", reason="starts its own HTTPS server")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(aud="https://storage.azure.com", iss=ISSUER, nbf=None, exp=None, **extra) -> str:
    now = int(time.time())
    claims = {
        "aud": aud,
        "iss": iss,
        "iat": now - 60 if nbf is None else nbf,
        "nbf": now - 60 if nbf is None else nbf,
        "exp": now + 3600 if exp is None else exp,
        "oid": OID,
        "tid": TENANT,
        "appid": "f997392c-e15a-4ad8-af9e-cd6966caba7f",
        **extra,
    }
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    sig = _b64url(hmac.new(b"local-only", f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


class StaticToken:
    """A TokenCredential that hands out one JWT (what a test credential does)."""

    def __init__(self, token: str, expires_on: int | None = None):
        self.token = token
        self.expires_on = expires_on or int(time.time()) + 3600

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, self.expires_on)


def make_cert(workdir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (PEM cert and key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        # A leaf, not a CA: rustls (the emulator's copy client, Microsoft's Rust SDK) refuses
        # a CA certificate presented as a server's own.
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = workdir / f"{name}.pem"
    key_path = workdir / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Server:
    def __init__(self, proc, blob: str, queue: str, ca: Path, workdir: Path):
        self.proc, self.blob, self.queue, self.ca, self.workdir = proc, blob, queue, ca, workdir

    @property
    def blob_base(self) -> str:
        return self.blob.rsplit("/", 1)[0]

    def blob_service(self, token: str | None = None) -> BlobServiceClient:
        return BlobServiceClient(self.blob, credential=StaticToken(token or make_jwt()), connection_verify=str(self.ca))

    def advance(self, seconds: int) -> None:
        r = requests.post(
            f"{self.blob_base}/_emulator/clock/advance",
            params={"seconds": str(seconds)},
            headers={"x-ms-emulator-key": DEV_KEY},
            verify=str(self.ca),
            timeout=30,
        )
        assert r.status_code == 200, r.text


_LISTEN = re.compile(r"^(Blob|Queue) service listening at (https://\S+?)/?\s*$")


def _start_emulator(workdir: Path, cert: Path, key: Path, extra: list[str]) -> Server:
    binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
    args = [binary, "--blobPort", "0", "--queuePort", "0", "--inMemoryPersistence", "--silent",
            "--cert", str(cert), "--oauth", "basic", *extra]
    if str(cert).endswith(".pfx"):
        args += ["--pwd", "s3cret"]
    else:
        args += ["--key", str(key)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    urls: dict[str, str] = {}
    captured = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(urls) < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        captured.append(line)
        m = _LISTEN.match(line.strip())
        if m:
            urls[m.group(1)] = m.group(2)
    if len(urls) < 2:
        stop(proc)
        raise RuntimeError("emulator did not announce https URLs:\n" + "".join(captured))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return Server(proc, f"{urls['Blob']}/{DEV_ACCOUNT}", f"{urls['Queue']}/{DEV_ACCOUNT}", cert, workdir)


def _start_azurite(workdir: Path, cert: Path, key: Path) -> Server:
    binary = str(REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite")
    if not Path(binary).exists():
        raise pytest.UsageError(f"Azurite not found at {binary}")
    blob, queue, table = free_port(), free_port(), free_port()
    args = [binary, "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence", "--silent",
            "--blobHost", "127.0.0.1", "--blobPort", str(blob), "--queueHost", "127.0.0.1", "--queuePort", str(queue),
            "--tableHost", "127.0.0.1", "--tablePort", str(table),
            "--oauth", "basic", "--cert", str(cert), "--key", str(key)]
    log = workdir / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_listening(blob, proc, 60, "Azurite", log)
        wait_listening(queue, proc, 60, "Azurite", log)
    except Exception:
        stop(proc)
        raise
    return Server(proc, f"https://127.0.0.1:{blob}/{DEV_ACCOUNT}", f"https://127.0.0.1:{queue}/{DEV_ACCOUNT}", cert, workdir)


class FileServer:
    """An HTTPS server of its own certificate, serving fixed bytes (a copy source that is
    neither the emulator nor trusted by the system)."""

    def __init__(self, workdir: Path, body: bytes):
        cert, key = make_cert(workdir, "source")
        self.ca = cert

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/source.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


SOURCE_BYTES = os.urandom(3000)


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="oauth-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def source(workdir):
    s = FileServer(workdir, SOURCE_BYTES)
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(workdir, source):
    cert, key = make_cert(workdir, "server")
    if target_name() == "azurite":
        s = _start_azurite(workdir, cert, key)
    else:
        s = _start_emulator(workdir, cert, key, ["--copySourceCa", str(source.ca)])
    yield s
    stop(s.proc)


def new_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def status_and_code(err: HttpResponseError) -> tuple[int, str]:
    return err.status_code, str(getattr(err.error_code, "value", err.error_code))


# ---------------------------------------------------------------------------------------


def test_blob_and_queue_with_a_token_over_https(server):
    svc = server.blob_service()
    container = svc.create_container(new_name("tok"))
    blob = container.get_blob_client("dir/hello.txt")
    blob.upload_blob(b"hello over https with a token")
    assert blob.download_blob().readall() == b"hello over https with a token"
    assert [b.name for b in container.list_blobs()] == ["dir/hello.txt"]

    q = QueueClient(server.queue, new_name("tokq"), credential=StaticToken(make_jwt()), connection_verify=str(server.ca))
    q.create_queue()
    q.send_message("from a token")
    got = list(q.receive_messages())
    assert [m.content for m in got] == ["from a token"]
    q.delete_message(got[0])


@pytest.mark.parametrize(
    "label, token",
    [
        ("wrong audience", lambda: make_jwt(aud="https://management.azure.com")),
        ("another account's audience", lambda: make_jwt(aud="https://someoneelse.blob.core.windows.net")),
        ("wrong issuer", lambda: make_jwt(iss="https://evil.example.com/")),
        ("expired", lambda: make_jwt(nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
        ("not yet valid", lambda: make_jwt(nbf=int(time.time()) + 3600, exp=int(time.time()) + 7200)),
        ("not a JWT", lambda: "this-is-not-a-jwt"),
    ],
)
def test_bad_tokens_are_refused(server, label, token):
    svc = server.blob_service(token())
    with pytest.raises(HttpResponseError) as e:
        svc.create_container(new_name("bad"))
    assert e.value.status_code in (401, 403), (label, e.value)


@pytest.mark.azurite_deviation(
    reason="Azure answers a token it refuses with 401 InvalidAuthenticationInfo and a WWW-Authenticate "
    "Bearer challenge; Azurite answers 403 AuthenticationFailed without one. "
    "https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory"
    "#call-storage-operations-with-oauth-tokens"
)
@pytest.mark.parametrize("label, token", [
    ("wrong audience", lambda: make_jwt(aud="https://management.azure.com")),
    ("expired", lambda: make_jwt(nbf=int(time.time()) - 7200, exp=int(time.time()) - 3600)),
    ("malformed", lambda: "a.b.c"),
])
def test_refusals_are_401_with_a_bearer_challenge(server, label, token):
    r = requests.put(
        f"{server.blob}/{new_name('raw')}?restype=container",
        headers={"Authorization": f"Bearer {token()}", "x-ms-version": "2025-11-05", "Content-Length": "0"},
        verify=str(server.ca),
        timeout=30,
    )
    assert r.status_code == 401, (label, r.status_code, r.text)
    assert r.headers.get("x-ms-error-code") == "InvalidAuthenticationInfo"
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer authorization_uri=https://login.microsoftonline.com/"), challenge
    assert "resource_id=https://storage.azure.com" in challenge


def test_bearer_over_plain_http_is_refused(target):
    r = requests.put(
        f"{target.queue_endpoint}/{new_name('plain')}",
        headers={"Authorization": f"Bearer {make_jwt()}", "x-ms-version": "2025-11-05", "Content-Length": "0"},
        timeout=30,
    )
    assert r.status_code in (401, 403), r.text
    assert r.headers.get("x-ms-error-code") in ("AuthenticationFailed", "InvalidAuthenticationInfo"), r.text


def test_user_delegation_key_needs_a_token(server):
    svc = BlobServiceClient(
        server.blob, credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY}, connection_verify=str(server.ca)
    )
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(HttpResponseError) as e:
        svc.get_user_delegation_key(now, now + dt.timedelta(hours=1))
    assert e.value.status_code == 403


def _key_and_blob(server, body=b"shared through a user delegation SAS"):
    svc = server.blob_service()
    container = svc.create_container(new_name("uds"))
    blob = container.get_blob_client("photo.jpg")
    blob.upload_blob(body)
    now = dt.datetime.now(dt.timezone.utc)
    key = svc.get_user_delegation_key(now - dt.timedelta(minutes=5), now + dt.timedelta(hours=2))
    return svc, container, blob, key, now


def test_user_delegation_sas_reads_a_blob(server):
    svc, container, blob, key, now = _key_and_blob(server)
    assert key.signed_oid == OID and key.signed_tid == TENANT and key.signed_service == "b"
    assert base64.b64decode(key.value)
    sas = generate_blob_sas(
        DEV_ACCOUNT, container.container_name, "photo.jpg", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=now + dt.timedelta(hours=1),
    )
    assert "skoid=" in sas and "sig=" in sas
    reader = BlobClient.from_blob_url(f"{blob.url}?{sas}", connection_verify=str(server.ca))
    assert reader.download_blob().readall() == b"shared through a user delegation SAS"
    # Plain HTTP clients (a browser's <img>) take the same URL.
    r = requests.get(f"{blob.url}?{sas}", verify=str(server.ca), timeout=30)
    assert r.status_code == 200 and r.content == b"shared through a user delegation SAS"
    # Read only: a write through it is refused.
    with pytest.raises(HttpResponseError) as e:
        reader.upload_blob(b"overwrite", overwrite=True)
    assert e.value.status_code == 403


def test_user_delegation_container_sas_lists(server):
    svc, container, blob, key, now = _key_and_blob(server)
    sas = generate_container_sas(
        DEV_ACCOUNT, container.container_name, user_delegation_key=key,
        permission=ContainerSasPermissions(read=True, list=True), expiry=now + dt.timedelta(hours=1),
    )
    lister = ContainerClient.from_container_url(f"{container.url}?{sas}", connection_verify=str(server.ca))
    assert [b.name for b in lister.list_blobs()] == ["photo.jpg"]


def test_tampered_user_delegation_sas_is_refused(server):
    svc, container, blob, key, now = _key_and_blob(server)
    sas = generate_blob_sas(
        DEV_ACCOUNT, container.container_name, "photo.jpg", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=now + dt.timedelta(hours=1),
    )
    # Widen the permissions without re-signing.
    forged = re.sub(r"sp=r(&|$)", r"sp=rw\1", sas)
    assert forged != sas
    r = requests.get(f"{blob.url}?{forged}", verify=str(server.ca), timeout=30)
    assert r.status_code == 403, r.text
    # A key value the service never issued signs nothing.
    key.value = base64.b64encode(b"\x00" * 32).decode()
    sas = generate_blob_sas(
        DEV_ACCOUNT, container.container_name, "photo.jpg", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=now + dt.timedelta(hours=1),
    )
    r = requests.get(f"{blob.url}?{sas}", verify=str(server.ca), timeout=30)
    assert r.status_code == 403, r.text


@pytest.mark.azurite_deviation(
    reason="Get User Delegation Key: 'The key expiry time must be within seven days of the current time'; "
    "Azurite issues keys for any span. https://learn.microsoft.com/rest/api/storageservices/get-user-delegation-key#request-body"
)
def test_user_delegation_key_lifetime_is_at_most_seven_days(server):
    svc = server.blob_service()
    now = dt.datetime.now(dt.timezone.utc)
    with pytest.raises(HttpResponseError) as e:
        svc.get_user_delegation_key(now, now + dt.timedelta(days=8))
    assert e.value.status_code == 400


@pytest.mark.azurite_lacks("Put Blob From URL")
def test_put_blob_from_url_of_an_https_source_with_a_token(server):
    svc, container, blob, key, now = _key_and_blob(server, body=b"copied over https")
    sas = generate_blob_sas(
        DEV_ACCOUNT, container.container_name, "photo.jpg", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=now + dt.timedelta(hours=1),
    )
    dest = container.get_blob_client("copy.jpg")
    dest.upload_blob_from_url(f"{blob.url}?{sas}")
    assert dest.download_blob().readall() == b"copied over https"


@pytest.mark.emulator_only
def test_copy_from_an_https_host_trusted_by_copy_source_ca(server, source):
    svc = server.blob_service()
    container = svc.create_container(new_name("ext"))
    dest = container.get_blob_client("from-elsewhere.bin")
    dest.upload_blob_from_url(source.url)
    assert dest.download_blob().readall() == SOURCE_BYTES


@pytest.mark.emulator_only
def test_copy_from_an_untrusted_https_host_is_refused(server, workdir):
    d = workdir / "untrusted"
    d.mkdir(exist_ok=True)
    other = FileServer(d, b"x")
    try:
        container = server.blob_service().create_container(new_name("unt"))
        with pytest.raises(HttpResponseError) as e:
            container.get_blob_client("b").upload_blob_from_url(other.url)
        assert str(getattr(e.value.error_code, "value", e.value.error_code)) == "CannotVerifyCopySource"
        assert not list(container.list_blobs())
    finally:
        other.close()


def make_pfx(workdir: Path, password: bytes, legacy: bool) -> tuple[Path, Path]:
    """The certificate of make_cert as a PKCS#12 archive: AES-256 (OpenSSL 3's default) or
    SHA1/3DES (what older OpenSSL and Windows export)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    name = "legacy" if legacy else "modern"
    cert_pem, key_pem = make_cert(workdir, f"pfx-{name}")
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    key = serialization.load_pem_private_key(key_pem.read_bytes(), None)
    if legacy:
        enc = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(2048)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())
            .build(password)
        )
    else:
        enc = serialization.BestAvailableEncryption(password)
    pfx = workdir / f"{name}.pfx"
    pfx.write_bytes(pkcs12.serialize_key_and_certificates(b"server", key, cert, None, enc))
    return pfx, cert_pem


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "3des"])
def test_pfx_certificate_with_password(workdir, legacy):
    pfx, cert = make_pfx(workdir, b"s3cret", legacy)
    if target_name() == "azurite":
        blob, queue, table = free_port(), free_port(), free_port()
        binary = str(REPO_ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite")
        args = [binary, "--skipApiVersionCheck", "--disableTelemetry", "--inMemoryPersistence", "--silent",
                "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
                "--oauth", "basic", "--cert", str(pfx), "--pwd", "s3cret"]
        log = workdir / f"azurite-pfx-{legacy}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        wait_listening(blob, proc, 60, "Azurite", log)
        s = Server(proc, f"https://127.0.0.1:{blob}/{DEV_ACCOUNT}", f"https://127.0.0.1:{queue}/{DEV_ACCOUNT}", cert, workdir)
    else:
        binary = os.environ.get("EMULATOR_BIN") or str(REPO_ROOT / "target" / "debug" / "emulator")
        bad = subprocess.run(
            [binary, "--blobPort", "0", "--queuePort", "0", "--inMemoryPersistence", "--cert", str(pfx), "--pwd", "wrong"],
            capture_output=True, timeout=60,
        )
        assert bad.returncode != 0 and b"PFX" in bad.stderr, bad
        s = _start_emulator(workdir, pfx, Path(), [])
        s.ca = cert
    try:
        c = s.blob_service().create_container(new_name("pfx"))
        c.upload_blob("x", b"over a PFX certificate")
        assert c.download_blob("x").readall() == b"over a PFX certificate"
    finally:
        stop(s.proc)


@pytest.mark.emulator_only
def test_moving_the_clock_expires_tokens_and_keys(server):
    """Last in the file: the clock only moves forward."""
    svc, container, blob, key, now = _key_and_blob(server)
    sas = generate_blob_sas(
        DEV_ACCOUNT, container.container_name, "photo.jpg", user_delegation_key=key,
        permission=BlobSasPermissions(read=True), expiry=now + dt.timedelta(days=5),
    )
    assert requests.get(f"{blob.url}?{sas}", verify=str(server.ca), timeout=30).status_code == 200
    server.advance(3 * 3600)  # past the token's exp (1 h) and the key's ske (2 h)
    with pytest.raises(ClientAuthenticationError) as e:
        blob.get_blob_properties()
    assert e.value.status_code == 401
    r = requests.get(f"{blob.url}?{sas}", verify=str(server.ca), timeout=30)
    assert r.status_code == 403 and "user delegation key has expired" in r.text, r.text
