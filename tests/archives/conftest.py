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
    assert upload.status == "ready", upload.error
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
