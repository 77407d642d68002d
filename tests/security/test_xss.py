"""XSS corpus: every payload in every user-supplied text field, checked escaped in every page
each role can reach and neutralised in every CSV/XLSX export those pages link to."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import String, Text, select, update

from lms.extensions import db as _db
from tests.factories import sign_in
from tests.security.htmlcheck import crawl, dom_problems
from tests.security.payloads import FORMULA_PREFIXES, XSS_PAYLOADS

# (table, column): every free text a user or an import can put into Manabi and a page can show.
TEXT_FIELDS = [
    ("course", "title"), ("course", "summary"), ("course", "description_md"), ("course", "target_audience"),
    ("training_session", "title"), ("training_session", "location"),
    ("staff_member", "full_name"), ("staff_member", "full_name_kana"), ("staff_member", "department"),
    ("staff_member", "job_title"),
    ("user_account", "display_name"),
    ("enrollment", "reason"),
    ("archive", "title"), ("archive", "description"),
    ("archive_file", "filename"),
    ("transcript_cue", "speaker"), ("transcript_cue", "text"),
    ("category", "name"), ("category", "name_en"),
    ("completion", "reason"),
    ("attendance", "correction_reason"),
    ("mandatory_assignment", "note"),
    ("outbox_mail", "subject"), ("outbox_mail", "body_text"), ("outbox_mail", "to_name"),
]
GROUP = 5  # payloads per round (joined), so that 40 payloads take 8 rounds
ROLES = {
    "learner": ("131016", "learner0"),
    "trainer": ("130001", "trainer"),
    "municipal_admin": ("131016", "admin"),
    "platform_admin": ("130001", "platform"),
}


def _user(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid

    return _db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


@pytest.fixture
def world(app, db):
    """Demo data, plus an archive with a video and captions, a mail, a completion with a reason."""
    from lms.archives.models import Archive
    from lms.courses.models import Course
    from lms.demo import load_demo
    from tests.archives.conftest import add_file, video_bytes

    load_demo()
    db.session.commit()
    course = db.session.scalars(select(Course).order_by(Course.id)).first()
    trainer = _user("130001", "trainer")
    archive = Archive(course_id=course.id, title="第1回 録画", description="説明", status="published",
                      audience="eligible", created_by_id=trainer.id)
    from lms.common.timeutil import utcnow

    archive.published_at = utcnow()
    db.session.add(archive)
    db.session.commit()
    add_file(archive, video_bytes("webm"), "video.webm")
    return archive


def _columns():
    tables = _db.metadata.tables
    out = []
    for name, column in TEXT_FIELDS:
        if name in tables and column in tables[name].c:
            out.append(tables[name].c[column])
    return out


def _unique(column) -> bool:
    from sqlalchemy import UniqueConstraint

    return bool(column.unique) or any(
        isinstance(c, UniqueConstraint) and column.name in c.columns for c in column.table.constraints
    )


def _fill(columns, value: str) -> int:
    touched = 0
    for column in columns:
        length = getattr(column.type, "length", None) if isinstance(column.type, String | Text) else None
        if _unique(column):
            table = column.table
            for (row_id,) in _db.session.execute(select(table.c.id)).all():
                suffix = f" #{row_id}"
                text = (value[: length - len(suffix)] if length else value) + suffix
                _db.session.execute(update(table).where(table.c.id == row_id).values({column.name: text}))
                touched += 1
            continue
        text = value[:length] if length else value
        result = _db.session.execute(update(column.table).values({column.name: text}))
        touched += result.rowcount or 0
    _db.session.commit()
    return touched


def _check_export(url, response, problems):
    if response.status_code != 200:
        return
    data = response.get_data()
    if response.mimetype == "text/csv" or url.split("?")[0].endswith(".csv"):
        encoding = "cp932" if "cp932" in url else "utf-8-sig"
        for row in csv.reader(io.StringIO(data.decode(encoding, errors="replace"))):
            for cell in row:
                if cell.startswith(FORMULA_PREFIXES):
                    problems.append(f"{url}: formula-like CSV cell {cell[:40]!r}")
    elif data[:2] == b"PK" and ".xlsx" in url:
        from openpyxl import load_workbook

        workbook = load_workbook(io.BytesIO(data))
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        problems.append(f"{url}: formula cell {sheet.title}!{cell.coordinate} {str(cell.value)[:40]!r}")


def test_payloads_are_escaped_in_pages_and_neutralised_in_exports(app, world):
    columns = _columns()
    assert len(columns) >= 20, [c.name for c in columns]
    problems: list[str] = []
    pages = exports = 0
    shown = set()
    for start in range(0, len(XSS_PAYLOADS), GROUP):
        group = XSS_PAYLOADS[start:start + GROUP]
        assert _fill(columns, " ".join(group)) > 0
        for role, (code, key) in ROLES.items():
            browser = app.test_client()
            sign_in(browser, _user(code, key))
            for url, response in crawl(browser, ["/"], limit=70).items():
                if response.status_code >= 500:
                    problems.append(f"{role} {url}: {response.status_code}")
                    continue
                if response.mimetype == "text/html":
                    html = response.get_data(as_text=True)
                    pages += 1
                    problems += [f"{role} {url}: {p}" for p in dom_problems(html)]
                    for payload in group:
                        if "<" in payload and payload in html:
                            problems.append(f"{role} {url}: payload verbatim: {payload[:40]!r}")
                        marker = "XSS" + payload.split("XSS", 1)[1][:2].rstrip("'\").,<>/ ")
                        if marker in html:
                            shown.add(payload)
                else:
                    exports += 1
                    _check_export(url, response, problems)
    assert not problems, "\n".join(problems[:40])
    assert pages >= 100
    # Every payload was actually rendered somewhere (the corpus is not silently dropped).
    assert len(shown) == len(XSS_PAYLOADS), set(XSS_PAYLOADS) - shown
    print(f"XSS: {len(XSS_PAYLOADS)} payloads x {len(columns)} fields; {pages} pages, {exports} exports checked")
