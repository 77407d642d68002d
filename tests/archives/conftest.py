"""Archive test helpers: archives with files, a tus client, and Azurite started on a free port."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests import factories
from tests.conftest import ROOT, require

DATA = Path(__file__).resolve().parent / "data"
AZURITE = ROOT / "tests" / "node" / "node_modules" / ".bin" / "azurite-blob"
TUS = {"Tus-Resumable": "1.0.0"}

VTT_TEXT = """WEBVTT

1
00:00:00.000 --> 00:00:02.000
<v 講師 山田>皆さん、こんにちは。Teams 活用研修を始めます。

2
00:00:02.000 --> 00:00:04.000
<v 講師 山田>まずはチャットの操作から説明します。

00:00:04.000 --> 00:00:06.000
会議の録画と共有の方法です。
"""


def video_bytes(kind: str = "webm") -> bytes:
    return (DATA / f"tiny.{kind}").read_bytes()


@pytest.fixture
def client(app):
    """The root client, buffering responses so that served files are closed (ResourceWarning)."""
    test_client = app.test_client()
    original = test_client.open

    def open_buffered(*args, **kwargs):
        kwargs.setdefault("buffered", True)
        return original(*args, **kwargs)

    test_client.open = open_buffered
    return test_client


@pytest.fixture
def owned_course(db, make_user):
    """A trainer (not signed in) and a course they own, open to 千代田区 and 中央区 only."""
    trainer = make_user("trainer", "130001", name="研修 講師")
    course = factories.make_course(title="Teams 活用研修", eligible=["131016", "131024"], owner_id=trainer.id)
    return trainer, course


@pytest.fixture
def published(db, owned_course):
    """A published archive of ``owned_course`` with one small video: (archive, video)."""
    _trainer, course = owned_course
    archive = make_archive(course)
    video = add_file(archive, video_bytes("webm"), "第1回.webm")
    return archive, video


def make_archive(course, *, status: str = "published", audience: str = "eligible", **kw):
    from lms.archives.models import Archive
    from lms.common.timeutil import utcnow
    from lms.extensions import db

    archive = Archive(course_id=course.id, title=kw.pop("title", "第1回 録画"), description=kw.pop("description", ""),
                      status=status,
                      audience=audience, created_by_id=course.owner_id,
                      published_at=utcnow() if status == "published" else None, **kw)
    db.session.add(archive)
    db.session.commit()
    return archive


def add_file(archive, data: bytes, filename: str = "video.webm"):
    """Store ``data`` as a ready file of ``archive`` through the real upload pipeline (the
    verification runs inline at the commit, as huey does in tests)."""
    from lms.archives import uploads
    from lms.archives.models import ArchiveFile, UploadSession
    from lms.extensions import db

    user = db.session.get(factories.User, archive.created_by_id)
    upload = uploads.create_upload(user, archive, len(data), {"filename": filename})
    db.session.flush()
    result = uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 0, [data])
    assert result.rejected is None, result.rejected and result.rejected.message
    upload = db.session.get(UploadSession, upload.id)
    uploads.save_chunk_result(upload, result)
    uploads.finish_upload(upload)
    db.session.commit()
    upload = db.session.get(UploadSession, upload.id)
    assert upload.status == "ready", (upload.error_code, upload.error_params, upload.error)
    return db.session.get(ArchiveFile, upload.archive_file_id)


def tus_metadata(**values) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def tus_create(client, archive_id: int, length: int, headers: dict | None = None, **metadata):
    meta = {"filename": "video.webm", **metadata}
    return client.post(
        f"/archives/manage/{archive_id}/uploads",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": tus_metadata(**meta), **(headers or {})},
    )


def tus_patch(client, location: str, offset: int, data: bytes, headers: dict | None = None):
    return client.patch(
        location,
        data=data,
        headers={**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                 **(headers or {})},
    )


def tus_upload(client, archive_id: int, data: bytes, chunk: int = 4096, **metadata):
    created = tus_create(client, archive_id, len(data), **metadata)
    assert created.status_code == 201, created.get_data(as_text=True)
    location = created.headers["Location"]
    offset = 0
    response = None
    while offset < len(data):
        response = tus_patch(client, location, offset, data[offset : offset + chunk])
        if response.status_code != 204:
            return location, response
        offset = int(response.headers["Upload-Offset"])
    return location, response


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- Azurite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str, *, timeout: float, log: Path | None = None) -> None:
    """Until ``process`` accepts connections on 127.0.0.1:``port``; fails the test (with the
    log's text when given) if it exits or does not start in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None:
                detail = log.read_text(errors="replace") if log is not None and log.exists() else ""
                pytest.fail(f"{what} exited at start {detail}".strip())
            time.sleep(0.05)
    process.terminate()
    pytest.fail(f"{what} did not start within {timeout} s")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """Microsoft's Blob emulator on 127.0.0.1:<free port>; yields its connection string."""
    require(AZURITE.exists() and shutil.which("node") is not None,
            "Azurite (cd tests/node && npm install) and node for the Azure Blob storage tests")
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
         "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, "Azurite", timeout=20)
    account = "devstoreaccount1"
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    yield (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
           f"BlobEndpoint=http://127.0.0.1:{port}/{account};")
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


# ------------------------------------------- Azurite with Microsoft Entra ID (managed identity)


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Manabi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class IdentityEndpoint:
    """The managed-identity endpoint Azure App Service (and Container Apps) gives a process
    through IDENTITY_ENDPOINT/IDENTITY_HEADER, as documented ("REST endpoint reference"):
    GET ?api-version=2019-08-01&resource=…[&client_id=…] with the X-IDENTITY-HEADER secret,
    answered with {access_token, expires_on, resource, token_type, client_id}. The token is an
    Entra-shaped JWT (iss sts.windows.net/<tid>/, aud the resource, oid, tid) — what Azurite's
    OAuth mode checks."""

    def __init__(self):
        import http.server
        import json
        import secrets
        import threading
        import uuid
        from urllib.parse import parse_qs, urlsplit

        import jwt

        self.secret = secrets.token_hex(16)
        self.tenant_id = str(uuid.uuid4())
        self.object_id = str(uuid.uuid4())
        self.requests: list[dict] = []
        self.refuse = False
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                endpoint.requests.append({**query, "header": self.headers.get("X-IDENTITY-HEADER")})
                if endpoint.refuse or self.headers.get("X-IDENTITY-HEADER") != endpoint.secret:
                    return self._answer(401, {"statusCode": 401, "message": "Unauthorized: invalid X-IDENTITY-HEADER"})
                if query.get("api-version") != "2019-08-01" or not query.get("resource"):
                    return self._answer(400, {"statusCode": 400, "message": "api-version and resource are required"})
                now = int(time.time())
                claims = {"aud": query["resource"], "iss": f"https://sts.windows.net/{endpoint.tenant_id}/",
                          "iat": now, "nbf": now - 60, "exp": now + 3600, "oid": endpoint.object_id,
                          "tid": endpoint.tenant_id, "sub": endpoint.object_id, "idtyp": "app"}
                token = jwt.encode(claims, endpoint.secret, algorithm="HS256")
                return self._answer(200, {"access_token": token, "expires_on": str(now + 3600),
                                          "resource": query["resource"], "token_type": "Bearer",
                                          "client_id": query.get("client_id") or endpoint.object_id})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/msi/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def azurite_entra(tmp_path_factory):
    """Azurite over HTTPS with OAuth on (it then accepts Entra bearer tokens and issues
    user-delegation keys), and a managed-identity endpoint; yields a dict with the account URL,
    the CA file, the endpoint and the account-key connection string (for inspection only)."""
    require(AZURITE.exists() and shutil.which("node") is not None,
            "Azurite (cd tests/node && npm install) and node for the Azure Blob storage tests")
    location = tmp_path_factory.mktemp("azurite-entra")
    ca, cert, key = _tls_files(location)
    port = _free_port()
    process = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location / "data"),
         "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--oauth", "basic",
         "--cert", str(cert), "--key", str(key)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process, "Azurite (OAuth)", timeout=20)
    identity = IdentityEndpoint()
    account = "devstoreaccount1"
    account_key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    yield {
        "account_url": f"https://127.0.0.1:{port}/{account}",
        "ca_bundle": str(ca),
        "identity": identity,
        "connection_string": (f"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={account_key};"
                              f"BlobEndpoint=https://127.0.0.1:{port}/{account};"),
    }
    identity.close()
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def managed_identity(azurite_entra, monkeypatch):
    """The process runs "on App Service": its managed identity answers at IDENTITY_ENDPOINT."""
    identity = azurite_entra["identity"]
    identity.refuse = False
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity.url)
    monkeypatch.setenv("IDENTITY_HEADER", identity.secret)
    return identity
