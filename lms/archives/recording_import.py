"""Teams recordings and transcripts into archives (called by lms.teams).

* ``import_recording(session_id, recording_id, chunks, filename, content_type, size, actor=None, *, run=None) -> Archive``
* ``attach_transcript(archive_id, vtt_text, graph_content_id, recording_id=None) -> ArchiveFile``
* ``sweep_import_files(live_runs) -> list[str]`` (housekeeping after a killed import)

Both imports add rows to the current transaction (flushed, not committed: the caller
commits) and are idempotent (by ``recording_id`` / ``graph_content_id``).
``import_recording`` commits the caller's transaction before it downloads (no transaction
stays open during a download) and writes in a fresh one. An import is verified as it is
stored (the SHA-256 computed while streaming against the stored bytes), in the worker that
downloads it: it never runs on a request.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lms.archives import containers, filetypes
from lms.archives.captions import CaptionError, parse_vtt
from lms.archives.files import ContentRejected, add_file, new_storage_key, object_reader, sha256_of_object
from lms.archives.filetypes import human_size
from lms.archives.models import AUDIENCE_ELIGIBLE, DRAFT, READY, VIDEO, Archive, ArchiveFile
from lms.archives.storage import Storage, get_storage
from lms.archives.uploads import UPLOAD_TTL, max_upload_bytes
from lms.audit.services import record_action
from lms.common.database import begin_write, values_present
from lms.common.errors import InvalidInput, NotFound
from lms.common.filenames import sanitise_filename
from lms.common.templating import format_datetime_jst
from lms.common.timeutil import utcnow
from lms.courses.models import TrainingSession
from lms.extensions import db

IMPORT_PREFIX = "archives/import/"
_RUN_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,60}$")
_RUN_KEY_RE = re.compile(r"^archives/import/([a-z0-9][a-z0-9_]{0,60})-[0-9a-f]{24}$")


def import_storage_key(run: str | None, recording_id: str) -> str:
    """Where an import writes a recording (part, then the committed object).

    With ``run`` (who writes: ``op<operation id>_<attempt>`` for a Graph operation) the key
    is ``archives/import/<run>-<hash of the recording id>``: one writer per key, and the
    housekeeping can tell from the key whether its writer is still at work (see
    ``sweep_import_files``). Without, a random name, left alone for ``UPLOAD_TTL``.
    """
    if run is None:
        return f"{IMPORT_PREFIX}{uuid.uuid4().hex}"
    if not _RUN_RE.match(run):
        raise ValueError(f"invalid import run {run!r}")
    return f"{IMPORT_PREFIX}{run}-{hashlib.sha256(recording_id.encode()).hexdigest()[:24]}"


def import_run_of(key: str) -> str | None:
    """The ``run`` an import key was written by (None: a random name)."""
    match = _RUN_KEY_RE.match(key)
    return match.group(1) if match else None


def _archive_for_recording(recording_id: str) -> Archive | None:
    return db.session.scalar(select(Archive).where(Archive.graph_recording_id == recording_id))


def import_recording(session_id: int, recording_id: str, chunks: Iterable[bytes], filename: str,
                     content_type: str, size: int | None, actor=None, *, run: str | None = None,
                     recorded_at: datetime | None = None) -> Archive:
    """Store a Teams recording as a DRAFT archive of the session's course (the trainer reviews it).
    ``recorded_at`` (when the recording began) is part of its title: one meeting may have
    several recordings, and their archives must be told apart.

    Idempotent by ``recording_id``: a call that finds the archive returns it without reading
    ``chunks``. Streams in bounded memory; the type is checked by content (MP4 or WebM), the
    size against ``size`` when given, and the SHA-256 of the stored bytes against the one
    computed while streaming. Raises InvalidInput (nothing stored) otherwise.

    No transaction stays open during the download: what is needed is read first, then the
    current transaction is committed (with whatever the caller had in it), the bytes go to
    storage under ``import_storage_key(run, recording_id)`` — a part, then an object no row
    refers to, invisible to viewers — and the rows are written in a fresh transaction that
    takes SQLite's write lock first and checks again that no other run created the archive
    meanwhile (if one did, the bytes just stored are deleted and its archive returned).
    Flushes the new rows; the caller commits. Bytes of a run cut short by a killed process
    are removed by ``sweep_import_files``.
    """
    existing = _archive_for_recording(recording_id)
    if existing is not None:
        return existing
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    course = session.course
    course_id = course.id
    title = " ".join(p for p in (course.title, session.title) if p)
    actor_id = getattr(actor, "id", None)
    key = import_storage_key(run, recording_id)
    db.session.commit()  # the read ends here: a download may take minutes

    storage = get_storage()
    filetype, received, digest, duration = _store_recording(storage, key, chunks, size)
    try:
        begin_write()  # SQLite: the write lock first, then the check below holds until commit
        existing = _archive_for_recording(recording_id)
        if existing is not None:  # another run imported it during our download
            storage.delete(key)
            return existing
        archive = Archive(
            course_id=course_id,
            session_id=session_id,
            title=(_("%(title)s（録画 %(time)s）", title=title, time=format_datetime_jst(recorded_at, with_weekday=False))
                   if recorded_at is not None else _("%(title)s（録画）", title=title))[:200],
            description="",
            status=DRAFT,
            audience=AUDIENCE_ELIGIBLE,
            source="teams",
            graph_recording_id=recording_id,
            created_by_id=actor_id,
        )
        try:
            with db.session.begin_nested():
                db.session.add(archive)
                db.session.flush()
        except IntegrityError:  # PostgreSQL: another run's archive committed just now
            storage.delete(key)
            existing = _archive_for_recording(recording_id)
            if existing is None:
                raise
            return existing
        # The video names its recording (``graph_content_id``): a transcript of the recording
        # finds it there (``attach_transcript``).
        add_file(archive.id, filetype, sanitise_filename(filename, "recording"), received,
                  digest, key, duration, None, graph_content_id=recording_id)
        record_action(actor, "archive.import", "archive", archive.id, None, recording_id=recording_id,
                      session_id=session_id, content_type=content_type)
    except BaseException:
        storage.delete(key)
        raise
    return archive


def _store_recording(storage: Storage, key: str, chunks: Iterable[bytes], size: int | None):
    """Stream ``chunks`` into the committed object ``key`` and verify it; nothing stays
    stored when it fails. Returns (filetype, size, sha256, duration)."""
    digest = hashlib.sha256()
    head = bytearray()
    received = 0
    limit = max_upload_bytes()

    def tee() -> Iterator[bytes]:
        nonlocal received
        for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if received > limit:
                raise InvalidInput(_("録画ファイルが大きすぎます（上限 %(limit)s）。", limit=human_size(limit)))
            if len(head) < filetypes.SNIFF_BYTES:
                head.extend(chunk[: filetypes.SNIFF_BYTES - len(head)])
                if len(head) >= filetypes.SNIFF_BYTES:
                    _require_video(bytes(head))
            digest.update(chunk)
            yield chunk

    try:
        storage.delete_part(key)
        storage.append_part(key, 0, tee())
        filetype = _require_video(bytes(head))
        if size is not None and received != size:
            raise InvalidInput(_("録画ファイルが途中までしか取得できませんでした。"))
        storage.commit_part(key, filetype.content_type)
        if sha256_of_object(storage, key) != (digest.hexdigest(), received):
            raise InvalidInput(_("録画ファイルの検証（SHA-256）に失敗しました。"))
        duration = containers.header_duration(object_reader(storage, key), received, filetype.code)
    except (InvalidInput, ContentRejected) as exc:
        storage.delete_part(key)
        storage.delete(key)
        if isinstance(exc, ContentRejected):
            raise InvalidInput(exc.message) from None
        raise
    except BaseException:
        storage.delete_part(key)
        storage.delete(key)
        raise
    return filetype, received, digest.hexdigest(), duration


def sweep_import_files(live_runs: Callable[[set[str]], set[str]], now: datetime | None = None) -> list[str]:
    """Delete imported bytes that no archive refers to and no live run is still writing:
    parts and committed objects left by a process killed in the middle of an import.

    ``live_runs(runs)`` returns those of the given runs still at work; it is asked after the
    storage was listed, so a run that began since cannot be missed. A key written by a run
    is kept while the run is live; a key with a random name for ``UPLOAD_TTL`` after it was
    last written. Whether a run is over is decided before the archive files are read, in a
    transaction begun after that, so an archive that its run committed just before it
    ended is seen. Commits. Returns the keys deleted.
    """
    now = now or utcnow()
    storage = get_storage()
    found = storage.list_keys(IMPORT_PREFIX)
    runs = {key: import_run_of(key) for key in found}
    live = live_runs({run for run in runs.values() if run is not None}) if any(runs.values()) else set()
    stale = []
    for key, modified in sorted(found.items()):
        run = runs[key]
        if (run in live if run is not None else modified > now - UPLOAD_TTL):
            continue
        stale.append(key)
    db.session.commit()  # a fresh snapshot for the archive files below
    if not stale:
        return []
    referenced = values_present(ArchiveFile.storage_key, stale)
    db.session.commit()
    removed = []
    for key in stale:
        if key in referenced:
            continue
        storage.delete_part(key)
        storage.delete(key)
        removed.append(key)
    return removed


def _require_video(head: bytes):
    filetype = filetypes.sniff(head)
    if filetype is None or filetype.kind != VIDEO:
        raise InvalidInput(_("録画ファイルが動画（MP4・WebM）ではありません。"))
    return filetype


def attach_transcript(archive_id: int, vtt_text: str, graph_content_id: str | None,
                      recording_id: str | None = None) -> ArchiveFile:
    """Store a WebVTT transcript as captions of the archive (and cues for search and chapters).

    They belong to the video of the recording ``recording_id`` (the recording the transcript
    came with, when Graph says so) if the archive holds it, else to its first video.
    Idempotent by ``graph_content_id``. Raises InvalidInput if the text is not WebVTT.
    Flushes; the caller commits."""
    if graph_content_id:
        existing = db.session.scalar(select(ArchiveFile).where(ArchiveFile.graph_content_id == graph_content_id))
        if existing is not None:
            return existing
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        raise NotFound(_("アーカイブが見つかりません。"))
    try:
        cues = parse_vtt(vtt_text)
    except CaptionError:
        raise InvalidInput(_("トランスクリプトが WebVTT 形式ではありません。")) from None
    video_id = None
    if recording_id:
        video_id = db.session.scalar(
            select(ArchiveFile.id).where(ArchiveFile.archive_id == archive.id, ArchiveFile.kind == VIDEO,
                                         ArchiveFile.status == READY, ArchiveFile.graph_content_id == recording_id)
        )
    data = vtt_text.encode("utf-8")
    storage = get_storage()
    key = new_storage_key(archive.id)
    storage.write_object(key, [data], filetypes.VTT.content_type)
    return add_file(archive.id, filetypes.VTT, "transcript.vtt", len(data), hashlib.sha256(data).hexdigest(), key,
                     None, cues, graph_content_id=graph_content_id, video_file_id=video_id)
