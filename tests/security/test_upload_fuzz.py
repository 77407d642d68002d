"""Uploads fuzzed: random names, declared types, sizes, metadata and truncated or corrupted
bodies through the tus endpoints. Never a 5xx, never a file outside the storage folder, and
only well-formed uploads become visible files."""

from __future__ import annotations

import base64
import os
import random
from pathlib import Path

from sqlalchemy import select

from tests.archives.conftest import TUS, video_bytes
from tests.factories import make_course, make_user, sign_in

NAMES = [
    "video.webm", "../../etc/passwd", "..\\..\\boot.ini", "/abs/x.webm", "a\x00b.webm", "..", "", " ",
    "録画 第1回.webm", "x" * 600 + ".webm", "con.webm", "a/b/c.mp4", "%2e%2e%2fx.webm", "<script>.webm",
    "\u202egnp.webm", "ファイル\r\nX-Injected: 1.webm", "v.exe", "v.webm.exe", "v.pdf", "v.vtt", ".htaccess",
]


def _meta(rng, name: str) -> str:
    pairs = [f"filename {base64.b64encode(name.encode('utf-8', 'surrogatepass')).decode()}"]
    if rng.random() < 0.3:
        pairs.append("filetype " + base64.b64encode(rng.choice([b"video/webm", b"text/html", b"\xff\xfe"])).decode())
    if rng.random() < 0.2:
        pairs.append("garbage !!!notbase64")
    if rng.random() < 0.1:
        pairs = [rng.choice(["", ",,,", "filename", "filename " + "A" * 5000])]
    return ",".join(pairs)


def test_fuzzed_uploads_never_crash_or_escape(app, db, client):
    from lms.archives.models import Archive, ArchiveFile

    trainer = make_user("trainer", "130001")
    course = make_course(title="アップロード試験", owner_id=trainer.id)
    archive = Archive(course_id=course.id, title="録画", description="", status="draft", audience="eligible",
                      created_by_id=trainer.id)
    db.session.add(archive)
    db.session.commit()
    sign_in(client, trainer)
    storage = Path(app.config["LMS_STORAGE_DIR"]).resolve()
    rng = random.Random(20261127)
    good = video_bytes("webm")
    statuses: dict[int, int] = {}
    complete = 0
    for case in range(80):
        name = rng.choice(NAMES)
        kind = rng.random()
        if kind < 0.4:
            body = good
        elif kind < 0.6:
            body = good[: rng.randrange(1, len(good))]  # truncated
        elif kind < 0.8:
            body = bytearray(good)
            for _ in range(5):
                body[rng.randrange(len(body))] = rng.randrange(256)
            body = bytes(body)
        else:
            body = os.urandom(rng.randrange(0, 5000))
        declared = len(body) if rng.random() < 0.8 else rng.choice([0, -1, len(body) + 10, 10**13])
        headers = {**TUS, "Upload-Length": str(declared), "Upload-Metadata": _meta(rng, name)}
        created = client.post(f"/archives/manage/{archive.id}/uploads", headers=headers)
        statuses[created.status_code] = statuses.get(created.status_code, 0) + 1
        assert created.status_code < 500, (case, name, created.status_code)
        if created.status_code != 201:
            continue
        location = created.headers["Location"]
        offset = 0
        while offset < len(body):
            size = rng.choice([1, 7, 512, 4096, len(body)])
            chunk = body[offset: offset + size]
            patch_offset = offset if rng.random() < 0.95 else offset + 1
            response = client.patch(location, data=chunk, headers={
                **TUS, "Upload-Offset": str(patch_offset), "Content-Type": "application/offset+octet-stream"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case, name, response.status_code, response.get_data(as_text=True))
            if response.status_code != 204:
                break
            offset = int(response.headers["Upload-Offset"])
        else:
            complete += 1
    db.session.rollback()
    files = db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()
    for archive_file in files:
        assert "/" not in archive_file.filename and "\\" not in archive_file.filename
        assert "\x00" not in archive_file.filename and "\r" not in archive_file.filename
    for path in storage.rglob("*"):
        assert path.resolve().is_relative_to(storage), path
    # Only intact uploads of an accepted type became files.
    assert 0 < len(files) <= complete
    assert statuses.get(201, 0) >= 20, statuses
