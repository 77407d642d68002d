"""Demo archives: a short self-made test video (data/demo/archive-demo.webm, generated with
ffmpeg's test pattern and a sine tone; no third-party content) with Japanese captions.

``load_demo_archives()`` is idempotent (archives found by title) and is called by lms.demo
after the demo courses exist. It stores the files through the configured storage.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lms.archives import containers, filetypes
from lms.archives.captions import parse_vtt
from lms.archives.files import add_file, new_storage_key
from lms.archives.models import AUDIENCE_ELIGIBLE, PUBLISHED, Archive
from lms.archives.storage import get_storage
from lms.common.timeutil import utcnow
from lms.courses.models import Course
from lms.extensions import db

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "demo"
VIDEO = DEMO_DIR / "archive-demo.webm"
CAPTIONS = DEMO_DIR / "archive-demo.ja.vtt"

DEMO_ARCHIVES: tuple[dict[str, Any], ...] = (
    {"title": "Teams 活用研修 第1回 録画（デモ）", "course_contains": "Teams", "days_open": 180,
     "description": "Teams の基本操作（チャット、会議、ファイル共有）を説明した回の録画です。字幕と目次から見たい場面に移動できます。"},
    {"title": "情報セキュリティ研修 録画（デモ）", "course_contains": "セキュリティ", "days_open": 90,
     "description": "情報セキュリティの基本を説明した回の録画です。"},
)


def load_demo_archives() -> int:
    """Create the demo archives that are missing; returns how many were created."""
    created = 0
    courses = db.session.scalars(select(Course).order_by(Course.id)).all()
    if not courses:
        return 0
    for spec in DEMO_ARCHIVES:
        if db.session.scalar(select(Archive.id).where(Archive.title == spec["title"])) is not None:
            continue
        course = next((c for c in courses if spec["course_contains"] in c.title), courses[0])
        session = next((s for s in course.sessions if s.starts_at and s.starts_at <= utcnow()), None)
        archive = Archive(
            course_id=course.id,
            session_id=session.id if session else None,
            title=spec["title"],
            description=spec["description"],
            status=PUBLISHED,
            audience=AUDIENCE_ELIGIBLE,
            source="upload",
            created_by_id=course.owner_id,
            published_at=utcnow(),
            available_from=utcnow() - timedelta(days=1),
            available_until=utcnow() + timedelta(days=spec["days_open"]),
        )
        db.session.add(archive)
        db.session.flush()
        _store(archive, VIDEO, filetypes.WEBM, "Teams活用研修_第1回.webm")
        _store(archive, CAPTIONS, filetypes.VTT, "字幕.vtt")
        created += 1
    db.session.flush()
    return created


def _store(archive: Archive, path: Path, filetype, filename: str) -> None:
    data = path.read_bytes()
    key = new_storage_key(archive.id)
    get_storage().write_object(key, [data], filetype.content_type)
    duration = cues = None
    if filetype.kind == "video":
        duration = containers.header_duration(lambda s, n: data[s : s + n], len(data), filetype.code)
    else:
        cues = parse_vtt(data.decode("utf-8"))
    add_file(archive.id, filetype, filename, len(data), hashlib.sha256(data).hexdigest(), key, duration, cues)
