"""The fast upload path: SHA-256 carried from PATCH to PATCH (no re-read at the end), large
pieces straight from gunicorn's socket, and the fallbacks when either does not apply."""

from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest
from sqlalchemy import select

from lms.archives import hashstate, services
from lms.archives.body import body_pieces
from lms.archives.models import ArchiveFile, UploadSession
from tests.archives.conftest import make_archive, sha256, tus_create, tus_patch, video_bytes

pytestmark = pytest.mark.skipif(not hashstate.available(), reason="libcrypto (OpenSSL) not loadable")


@pytest.fixture
def archive(owned_course):
    _trainer, course = owned_course
    return make_archive(course, status="draft")


# ------------------------------------------------------------------ resumable SHA-256


def test_resumable_sha256_matches_hashlib_across_saves():
    data = os.urandom(3 * 1024 * 1024 + 123)
    hasher = hashstate.ResumableSha256()
    hasher.update(data[:1000])
    hasher.update(bytearray(data[1000:70001]))
    state = hasher.dump()
    resumed = hashstate.ResumableSha256.load(state, 70001)
    resumed.update(memoryview(bytearray(data))[70001:2_000_000])  # a view of a reusable buffer
    resumed.update(memoryview(data)[2_000_000:])  # a read-only view
    assert resumed.length == len(data)
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()  # the digest leaves the state as it was


def test_a_saved_state_loads_only_for_exactly_the_bytes_it_covers():
    hasher = hashstate.ResumableSha256()
    hasher.update(b"x" * 5000)
    state = hasher.dump()
    assert hashstate.ResumableSha256.load(state, 5000) is not None
    assert hashstate.ResumableSha256.load(state, 4999) is None
    assert hashstate.ResumableSha256.load(state, 5001) is None
    assert hashstate.ResumableSha256.load(None, 0) is None
    assert hashstate.ResumableSha256.load("not base64 !", 5000) is None
    assert hashstate.ResumableSha256.load(state[:-8], 5000) is None


# ------------------------------------------------------------------ through the tus routes


def test_patches_carry_the_hash_and_the_file_is_not_read_back(app, db, client, login_as, owned_course, archive,
                                                              monkeypatch):
    login_as(user=owned_course[0])
    data = video_bytes("webm")
    created = tus_create(client, archive.id, len(data), sha256=sha256(data))
    location = created.headers["Location"]
    upload_id = location.rsplit("/", 1)[1]
    offset = 0
    read_back = []
    monkeypatch.setattr(services, "_sha256_of", lambda reader, size: read_back.append(size) or "")
    for step in (5000, 5000, len(data)):
        piece = data[offset: offset + step]
        response = tus_patch(client, location, offset, piece)
        assert response.status_code == 204, response.get_data(as_text=True)
        offset = int(response.headers["Upload-Offset"])
        upload = db.session.get(UploadSession, upload_id)
        if offset < len(data):
            assert hashstate.ResumableSha256.load(upload.metadata_json["sha256_state"], offset) is not None
    assert read_back == []  # verified from the carried state, no second pass over the file
    archive_file = db.session.scalar(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id))
    assert archive_file.sha256 == sha256(data) and archive_file.status == "ready"


def test_a_lost_state_falls_back_to_hashing_the_stored_file(app, db, owned_course, archive, monkeypatch):
    data = video_bytes("webm")
    trainer = owned_course[0]
    upload = services.create_upload(trainer, archive, len(data), {"filename": "v.webm", "sha256": sha256(data)})
    db.session.commit()
    result = services.receive_chunk(services.UploadSnapshot.of(upload), 0, [data[:6000]])
    services.save_chunk_result(upload, result)
    # The state no longer matches what is stored (e.g. a worker died between writing and saving).
    upload.metadata_json = {**upload.metadata_json, "sha256_state": "AAAA"}
    db.session.commit()
    result = services.receive_chunk(services.UploadSnapshot.of(upload), 6000, [data[6000:]])
    assert result.hash_state is None
    services.save_chunk_result(upload, result)
    assert "sha256_state" not in upload.metadata_json
    passes = []
    original = services._sha256_of
    monkeypatch.setattr(services, "_sha256_of", lambda reader, size: passes.append(size) or original(reader, size))
    archive_file = services.finish_upload(upload)
    db.session.commit()
    assert passes == [len(data)] and archive_file.sha256 == sha256(data)


def test_a_mismatching_declared_sha256_is_still_refused_with_the_carried_hash(db, client, login_as, owned_course,
                                                                              archive, app):
    login_as(user=owned_course[0])
    data = video_bytes("webm")
    created = tus_create(client, archive.id, len(data), sha256="0" * 64)
    location = created.headers["Location"]
    first = tus_patch(client, location, 0, data[:8000])
    assert first.status_code == 204
    last = tus_patch(client, location, 8000, data[8000:])
    assert last.status_code == 460 and "SHA-256" in last.get_data(as_text=True)
    assert db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all() == []
    from pathlib import Path

    assert not list((Path(app.config["LMS_STORAGE_DIR"]) / "parts").rglob("*.part"))


# ------------------------------------------------------------------ gunicorn's socket, read directly


def _gunicorn_request(payload: bytes, body_length: int, trailing: bytes = b"", close_early: bool = False):
    """A real gunicorn request object over a socket pair: headers, then the body (sent by a thread)."""
    from gunicorn.config import Config
    from gunicorn.http.message import Request
    from gunicorn.http.unreader import SocketUnreader

    server, client = socket.socketpair()
    head = (b"PATCH /archives/uploads/x HTTP/1.1\r\nHost: t\r\nContent-Type: application/offset+octet-stream\r\n"
            b"Content-Length: " + str(body_length).encode() + b"\r\n\r\n")

    def send():
        client.sendall(head + payload + trailing)
        if close_early:
            client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    unreader = SocketUnreader(server)
    request = Request(Config(), unreader, ("127.0.0.1", 1), 1)
    return request, unreader, sender, (server, client)


def test_body_read_from_gunicorns_socket_in_large_pieces():
    payload = os.urandom(3 * 1024 * 1024 + 17)
    request, unreader, sender, sockets = _gunicorn_request(payload, len(payload), trailing=b"NEXT")
    try:
        environ = {"wsgi.input": request.body}
        pieces = [bytes(p) for p in body_pieces(environ, None, len(payload), piece=1024 * 1024)]
        sender.join()
        assert b"".join(pieces) == payload
        assert max(len(p) for p in pieces) == 1024 * 1024
        assert request.body.reader.length == 0  # gunicorn knows the body was consumed
        assert unreader.read(4) == b"NEXT"  # a pipelined request's bytes were handed back
    finally:
        for s in sockets:
            s.close()


def test_a_dropped_client_keeps_what_arrived_then_raises():
    payload = os.urandom(300_000)
    request, _unreader, sender, sockets = _gunicorn_request(payload, 1_000_000, close_early=True)
    try:
        received = bytearray()
        with pytest.raises(ConnectionError):
            for piece in body_pieces({"wsgi.input": request.body}, None, 1_000_000, piece=64 * 1024):
                received += piece
        sender.join()
        assert bytes(received) == payload
    finally:
        for s in sockets:
            s.close()


def test_other_servers_and_unknown_lengths_use_the_wsgi_stream():
    import io

    stream = io.BytesIO(b"a" * 100)
    assert b"".join(body_pieces({"wsgi.input": stream}, stream, 100, piece=30)) == b"a" * 100
    stream = io.BytesIO(b"b" * 10)
    assert b"".join(body_pieces({"wsgi.input": object()}, stream, None)) == b"b" * 10


def test_large_pieces_in_a_reused_buffer_are_hashed_in_parallel_correctly(app, db, owned_course, archive):
    """Pieces of 1 MiB or more are hashed on a helper thread while being written; the buffer
    they live in is refilled only after both are done."""
    data = b"\x1a\x45\xdf\xa3" + os.urandom(5 * 1024 * 1024)
    trainer = owned_course[0]
    upload = services.create_upload(trainer, archive, len(data), {"filename": "v.webm"})
    db.session.commit()
    buffer = bytearray(2 * 1024 * 1024)

    def reused():
        for start in range(0, len(data), len(buffer)):
            piece = data[start: start + len(buffer)]
            buffer[: len(piece)] = piece
            yield memoryview(buffer)[: len(piece)]

    result = services.receive_chunk(services.UploadSnapshot.of(upload), 0, reused())
    assert result.rejected is None and result.offset == len(data)
    hasher = hashstate.ResumableSha256.load(result.hash_state, len(data))
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
