"""The staff roster (職員名簿): linking to Entra identities, maintenance, transfers and
departures, CSV import/export and the sync from a tenant's directory (fetched through
Microsoft Graph by lms.teams.roster_sync).

Every change keeps people's history: a transfer (人事異動) or departure adds a
StaffHistory row, and entries are never deleted (their enrollments, attendance and
completions stay theirs).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeAlias, cast

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, Row, func, insert, or_, select, update

from lms.audit.services import record_action
from lms.common import signals
from lms.common.database import LIKE_ESCAPE, begin_write, for_update, like_escaped
from lms.common.errors import Conflict, InvalidInput, NotFound
from lms.common.forms import one_line, parse_japanese_date
from lms.common.i18n import join_list
from lms.common.said import Dated, Listed, said
from lms.common.spreadsheet import LossyRow, neutralise_cell, read_back_text, read_xlsx_rows, unencodable
from lms.common.templating import format_date_jst
from lms.common.timeutil import today_tokyo, utcnow
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.roster.kana import normalise_kana, to_katakana
from lms.roster.models import ACTIVE, LEFT, StaffHistory, StaffMember, kana_order

# A whole roster in one file (東京都 itself has tens of thousands of staff); below MAX_CONTENT_LENGTH.
MAX_CSV_BYTES = 16 * 1024 * 1024
MAX_CSV_ROWS = 50_000

# CSV column → attribute. The header row must name the required columns (order free).
ROSTER_COLUMNS = (
    ("職員番号", "employee_number"),
    ("氏名", "full_name"),
    ("氏名カナ", "full_name_kana"),
    ("所属", "department"),
    ("職名", "job_title"),
    ("サインイン名", "sign_in_name"),
    ("メール", "email"),
    ("採用日", "hired_on"),
    ("職層", "job_grade"),  # optional: 係長級, 課長級 … (courses may be limited to some)
    ("所属長", "supervisor_role"),  # optional: 所属長, 代理 or empty (who approves the 所属's requests)
)
# Columns a file may leave out altogether: their stored values then stay as they are (a
# roster kept in the HR system without 職層 or メール does not wipe what was typed in Manabi);
# a new entry starts with _NEW_ENTRY_DEFAULTS for them. A column that is there but empty in a
# row does clear the value.
KEPT_WHEN_ABSENT = {"メール", "採用日", "職層", "所属長"}
_NEW_ENTRY_DEFAULTS = {"email": "", "hired_on": None, "job_grade": "", "department_head": False, "deputy_head": False}
# The 所属長 column: what a file may write, and what it means (stored as department_head /
# deputy_head).
HEAD, DEPUTY = "所属長", "代理"
_SUPERVISOR_WORDS = {"": "", "所属長": HEAD, "長": HEAD, "1": HEAD, "○": HEAD, "◯": HEAD, "代理": DEPUTY,
                     "所属長代理": DEPUTY, "2": DEPUTY}
REQUIRED_COLUMNS = ("職員番号", "氏名", "氏名カナ", "所属", "職名", "サインイン名")
# Each column's name as the pages show it (translated: a refusal names the column in the reader's language).
COLUMN_LABELS = {
    "employee_number": _l("職員番号"), "full_name": _l("氏名"), "full_name_kana": _l("氏名カナ"),
    "department": _l("所属"), "job_title": _l("職名"), "sign_in_name": _l("サインイン名"), "email": _l("メール"),
    "hired_on": _l("採用日"), "job_grade": _l("職層"), "supervisor_role": _l("所属長"),
}
_LIMITS = {"employee_number": 20, "full_name": 100, "full_name_kana": 200, "department": 200,
           "job_title": 100, "job_grade": 50, "sign_in_name": 320, "email": 320}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMPLOYEE_NUMBER_RE = re.compile(r"^[0-9A-Za-z\-_]+$")


# ---------------------------------------------------------------- linking at sign-in


def staff_member_for(user, *, create: bool = True) -> StaffMember | None:
    """The roster entry of ``user``: linked already, or found by sign-in name in the user's own
    municipality (only when the user's tenant belongs to it: the caller resolved
    ``user.municipality_id`` from the tenant), or created (source "sign_in").

    An entry already linked to another Entra identity is never taken over, and an entry
    is only ever matched inside the user's municipality, so a same-named account of
    another tenant cannot claim someone else's record.
    """
    member = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if member is not None or user.municipality_id is None:
        return member
    name = (user.email or "").strip().lower()
    if name:
        candidates = db.session.scalars(
            select(StaffMember)
            .where(
                StaffMember.municipality_id == user.municipality_id,
                func.lower(StaffMember.sign_in_name) == name,
                StaffMember.user_id.is_(None),
            )
            .order_by(StaffMember.status, StaffMember.id)  # "active" sorts before "left"
        ).all()
        for candidate in candidates:
            linked_elsewhere = candidate.entra_object_id and (
                candidate.entra_object_id != user.object_id
                or (candidate.entra_tenant_id and candidate.entra_tenant_id != user.tenant_id)
            )
            if not linked_elsewhere:
                member = candidate
                break
    if member is None:
        if not create:
            return None
        member = StaffMember(
            municipality_id=user.municipality_id,
            employee_number=f"U{user.id:08d}",
            full_name=user.display_name,
            sign_in_name=name,
            email=user.email or "",
            status=ACTIVE,
            source="sign_in",
        )
        db.session.add(member)
    member.user_id = user.id
    member.entra_tenant_id = user.tenant_id
    member.entra_object_id = user.object_id
    db.session.flush()
    return member


# ---------------------------------------------------------------- reading


def roster_query(municipality_id: int, *, q: str = "", department: str = "", job_title: str = "", status: str = ""):
    stmt = select(StaffMember).where(StaffMember.municipality_id == municipality_id)
    if q:
        stmt = stmt.where(staff_search_condition(q))
    if department:
        stmt = stmt.where(StaffMember.department == department)
    if job_title:
        stmt = stmt.where(StaffMember.job_title == job_title)
    if status in (ACTIVE, LEFT):
        stmt = stmt.where(StaffMember.status == status)
    return stmt.order_by(*kana_order())


def roster_choices(municipality_id: int) -> tuple[list[str], list[str]]:
    """The departments and job titles in use, for the filters."""
    departments = db.session.scalars(
        select(StaffMember.department).where(StaffMember.municipality_id == municipality_id, StaffMember.department != "")
        .distinct().order_by(StaffMember.department)
    ).all()
    titles = db.session.scalars(
        select(StaffMember.job_title).where(StaffMember.municipality_id == municipality_id, StaffMember.job_title != "")
        .distinct().order_by(StaffMember.job_title)
    ).all()
    return list(departments), list(titles)


def get_staff_member(member_id: int) -> StaffMember:
    member = db.session.get(StaffMember, member_id)
    if member is None:
        raise NotFound(_("職員が見つかりません。"))
    return member


def lock_staff_member(member_id: int) -> StaffMember:
    """The entry's row locked and read fresh (in a write transaction): a change sent twice at
    once (two tabs) meets the first one's result instead of repeating it."""
    begin_write()
    member = db.session.scalar(for_update(select(StaffMember).where(StaffMember.id == member_id))
                               .execution_options(populate_existing=True))
    if member is None:
        raise NotFound(_("職員が見つかりません。"))
    return member


# ---------------------------------------------------------------- maintenance


def staff_search_condition(q: str):
    """Name, kana (hiragana or katakana), employee number or sign-in name contains ``q``."""
    q = normalise_text(q)
    # (% and _ stand for themselves: 「%」 is no "everyone")
    like, kana_like = f"%{like_escaped(q)}%", f"%{like_escaped(to_katakana(q))}%"
    return or_(
        StaffMember.full_name.ilike(like, escape=LIKE_ESCAPE),
        StaffMember.full_name_kana.ilike(kana_like, escape=LIKE_ESCAPE),
        func.replace(StaffMember.full_name_kana, " ", "").ilike(kana_like.replace(" ", ""), escape=LIKE_ESCAPE),
        StaffMember.employee_number.ilike(like, escape=LIKE_ESCAPE),
        StaffMember.sign_in_name.ilike(like, escape=LIKE_ESCAPE),
    )


# Characters that show nothing (zero-width space and joiners, word joiner, a BOM inside a
# cell): dropped, so 「総務\u200b課」 is the 所属 「総務課」, not a second one that looks the same.
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff]")


def normalise_text(value: str | None) -> str:
    """NFKC (全角英数 → 半角, 半角カナ → 全角), invisible characters dropped, control characters
    and bidirectional overrides as spaces (as every form's text fields), trimmed, inner
    whitespace collapsed."""
    value = unicodedata.normalize("NFKC", value or "")
    return " ".join(one_line(_INVISIBLE.sub("", value)).split())


def _check_unique(municipality_id: int, employee_number: str, sign_in_name: str, member_id: int | None) -> None:
    other = db.session.scalar(
        select(StaffMember).where(
            StaffMember.municipality_id == municipality_id,
            StaffMember.employee_number == employee_number,
            StaffMember.id != (member_id or 0),
        )
    )
    if other is not None:
        raise Conflict(_("職員番号 %(number)s はすでに %(name)s さんに使われています。", number=employee_number, name=other.full_name),
                       field="employee_number")
    if sign_in_name:
        other = db.session.scalar(
            select(StaffMember).where(
                StaffMember.municipality_id == municipality_id,
                func.lower(StaffMember.sign_in_name) == sign_in_name,
                StaffMember.id != (member_id or 0),
            )
        )
        if other is not None:
            raise Conflict(_("サインイン名 %(name)s はすでに別の職員（%(other)s）に使われています。", name=sign_in_name, other=other.full_name),
                           field="sign_in_name")


def save_staff_member(municipality_id: int, values: dict, actor, member_id: int | None = None) -> StaffMember:
    """Add an entry, or correct one (names, numbers, sign-in name, mail, 採用日).

    Department and job title of an existing entry change only through a transfer, so the
    history is kept. A refusal names the form field it is about (``context["field"]``). The
    caller commits.
    """
    data = {key: normalise_text(values.get(key)) for key in _LIMITS}
    data["sign_in_name"] = data["sign_in_name"].lower()
    if not data["employee_number"] or not data["full_name"]:
        raise InvalidInput(_("職員番号と氏名は必須です。"), field="employee_number" if not data["employee_number"] else "full_name")
    if not _EMPLOYEE_NUMBER_RE.match(data["employee_number"]):  # (as an import reads it: the file must take it back)
        raise InvalidInput(_("職員番号「%(number)s」に使えない文字があります（半角英数字・ハイフンのみ）。",
                             number=data["employee_number"]), field="employee_number")
    if data["sign_in_name"] and not _EMAIL_RE.match(data["sign_in_name"]):
        raise InvalidInput(_("サインイン名はメールアドレスの形式（例：taro@city.example.lg.jp）で入力してください。"),
                           field="sign_in_name")
    begin_write()
    _check_unique(municipality_id, data["employee_number"], data["sign_in_name"], member_id)
    if member_id is None:
        member = StaffMember(municipality_id=municipality_id, status=ACTIVE, source="manual")
        db.session.add(member)
        action = "roster.add"
    else:
        member = get_staff_member(member_id)
        if member.municipality_id != municipality_id:
            raise NotFound(_("職員が見つかりません。"))
        data.pop("department")
        data.pop("job_title")
        action = "roster.edit"
    for key, value in data.items():
        setattr(member, key, value)
    member.hired_on = values.get("hired_on")
    if "department_head" in values:  # (a form that does not show them leaves them as they are)
        member.department_head = bool(values.get("department_head"))
        member.deputy_head = bool(values.get("deputy_head")) and not member.department_head
    db.session.flush()
    record_action(actor, action, "staff_member", member.id, municipality_id, employee_number=member.employee_number)
    return member


def transfer_staff(member_id: int, department: str, job_title: str, effective_on: date, actor) -> StaffHistory:
    """人事異動: new 所属/職名 from ``effective_on``; the previous ones stay in the history."""
    member = lock_staff_member(member_id)
    if member.status == LEFT:  # (a scheduled departure is still in service until its day)
        raise Conflict(_("退職・転出済みの職員には人事異動を記録できません。"))
    department, job_title = normalise_text(department), normalise_text(job_title)
    if not department and not job_title:
        raise InvalidInput(_("異動後の所属または職名を入力してください。"))
    department = department or member.department
    job_title = job_title or member.job_title
    if (department, job_title) == (member.department, member.job_title):
        raise InvalidInput(_("所属・職名が現在と同じです。"))
    entry = _record_transfer(member, department, job_title, effective_on, actor)
    record_action(actor, "roster.transfer", "staff_member", member.id, member.municipality_id,
                  from_department=entry.from_department, to_department=department,
                  from_job_title=entry.from_job_title, to_job_title=job_title, effective_on=effective_on.isoformat())
    return entry


def _record_transfer(member: StaffMember, department: str, job_title: str, effective_on: date, actor) -> StaffHistory:
    entry = StaffHistory(
        staff_member=member,
        effective_on=effective_on,
        kind="transfer",
        from_department=member.department,
        to_department=department,
        from_job_title=member.job_title,
        to_job_title=job_title,
        recorded_by_id=getattr(actor, "id", None),
    )
    db.session.add(entry)
    moved = department != member.department
    if moved:  # no longer the 所属長 (or deputy) of the 所属 left
        member.department_head = member.deputy_head = False
    old_department = member.department
    member.department = department
    member.job_title = job_title
    if moved:
        db.session.flush()
        signals.staff_member_transferred.send(None, staff_member_id=member.id, from_department=old_department,
                                              to_department=department, actor=actor)
    return entry


def record_departure(member_id: int, left_on: date, actor) -> StaffHistory:
    """退職・転出 on ``left_on``: the entry is left from that day (at once for today or a past
    day; a later day is a scheduled departure: in service until then, see ``apply_due_departures``);
    enrollments and history stay with the entry. A scheduled departure may be recorded again
    with another day."""
    member = lock_staff_member(member_id)
    if member.status == LEFT:
        raise Conflict(_("この職員はすでに退職・転出として記録されています。"))
    if member.left_on == left_on:  # (scheduled so already: a repeat, e.g. a double click)
        raise Conflict(_("この職員の %(date)s の退職・転出はすでに記録されています。", date=format_date_jst(left_on)))
    if problem := _before_hire(left_on, member.hired_on):
        raise InvalidInput(problem)
    entry = _record_departure(member, left_on, actor)
    record_action(actor, "roster.leave", "staff_member", member.id, member.municipality_id, left_on=left_on.isoformat())
    return entry


def _before_hire(left_on: date, hired_on: date | None) -> str:
    """The refusal of a departure dated before the 採用日 (by hand or through the API), or ""."""
    if hired_on is not None and left_on < hired_on:
        return said("退職・転出日（%(left)s）が採用日（%(hired)s）より前です。日付を確かめてください。",
                    left=Dated(left_on), hired=Dated(hired_on))
    return ""


def status_on_departure(left_on: date) -> str:
    """The status a departure on ``left_on`` gives now: left from that day (Tokyo), in
    service until then (a scheduled departure, recorded ahead as offices do for 3月31日)."""
    return LEFT if left_on <= today_tokyo() else ACTIVE


def apply_due_departures(today: date | None = None) -> int:
    """Scheduled departures whose day has come: the entries become left (the worker runs
    this every hour; their later enrollments went when the departure was recorded).
    Returns how many."""
    today = today or today_tokyo()
    done = cast(CursorResult, db.session.execute(
        update(StaffMember).where(StaffMember.status == ACTIVE, StaffMember.left_on.is_not(None),
                                  StaffMember.left_on <= today)
        .values(status=LEFT, updated_at=utcnow()).execution_options(synchronize_session=False)
    )).rowcount
    db.session.commit()
    return int(done or 0)


def _record_departure(member: StaffMember, left_on: date, actor) -> StaffHistory:
    entry = None
    if member.left_on is not None:
        # A scheduled departure given another day: its history entry moves with it (the audit
        # log keeps each day recorded); a second 'left' entry would say the person left twice.
        entry = db.session.scalar(
            select(StaffHistory).where(StaffHistory.staff_member_id == member.id, StaffHistory.kind == "left",
                                       StaffHistory.effective_on == member.left_on)
            .order_by(StaffHistory.id.desc()).limit(1))
    if entry is None:
        entry = StaffHistory(
            staff_member=member, kind="left",
            from_department=member.department, to_department="",
            from_job_title=member.job_title, to_job_title="",
        )
        db.session.add(entry)
    entry.effective_on = left_on
    entry.recorded_by_id = getattr(actor, "id", None)
    entry.created_at = utcnow()
    member.status = status_on_departure(left_on)
    member.left_on = left_on
    signals.staff_member_left.send(None, staff_member_id=member.id, left_on=left_on, actor=actor)
    return entry


# ---------------------------------------------------------------- CSV


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of an uploaded CSV and the encoding used: UTF-8 (with or without BOM) or
    Windows-31J (cp932), as Excel writes it. UTF-16 (Excel's 「Unicode テキスト」, with its byte
    order mark) is refused with what to save instead, as is UTF-32 (whose mark begins like
    UTF-16's)."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise InvalidInput(_("UTF-32 で保存されたファイルには対応していません。"
                             "Excel の「CSV UTF-8（コンマ区切り）」か「CSV（コンマ区切り）」で保存してください。"))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInput(_("UTF-16 の「Unicode テキスト」には対応していません。"
                             "Excel の「CSV UTF-8（コンマ区切り）」か「CSV（コンマ区切り）」で保存してください。"))
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8", errors="strict"), "UTF-8 (BOM付き)"
        except UnicodeDecodeError:
            raise InvalidInput(_("ファイルは UTF-8（BOM付き）と示していますが、UTF-8 として読めない文字があります。"
                                 "Excel の「CSV UTF-8」か「CSV（コンマ区切り）」で保存し直してください。")) from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "Shift_JIS (Windows-31J)"
    except UnicodeDecodeError:
        raise InvalidInput(
            _("ファイルの文字コードを判別できません。UTF-8 または Shift_JIS（Excel の「CSV（コンマ区切り）」）で保存してください。")
        ) from None


def read_csv(data: bytes, required: tuple[str, ...], *, max_rows: int | None = None) -> tuple[str, list[str], list[tuple[int, dict]]]:
    """(encoding, header, [(line number, {header: value})]) of an upload; InvalidInput if unusable.
    An Excel workbook (.xlsx) is read too: its first sheet, as if saved as CSV. A record's line
    number is where it starts in the file (blank lines counted; a sheet's row number)."""
    _check_size(data)
    if data.startswith(XLSX_MAGIC):
        return XLSX_LABEL, *_records(_xlsx_rows(data), required, max_rows, XLSX_LABEL)
    if data.startswith(OLE2_MAGIC):  # Excel 97–2003 (.xls): not a text file at all
        raise InvalidInput(_("Excel 97-2003 形式（.xls）のファイルは読み込めません。Excel で開き、"
                             "「Excel ブック（.xlsx）」か「CSV（コンマ区切り）」で保存し直してください。"))
    text, encoding = decode_csv(data)
    return encoding, *_records(_csv_rows(text), required, max_rows, encoding)


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """Each record of a CSV text with the line it starts on. Strict: a 「"」 left open (which
    would take the following lines into one field), a field over the csv module's limit or a
    stray character refuses the file, naming the line where that record starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    while True:
        start = reader.line_num + 1  # (a quoted field may go on over several lines)
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error:
            raise InvalidInput(_("%(line)s 行目から始まる行を CSV として読み取れません。「\"」で囲んだ欄が閉じられていない"
                                 "（「\"」が対になっていない）か、1つの欄が長すぎる（%(limit)s 文字まで）か、読み取れない"
                                 "文字が含まれています。", line=start, limit=csv.field_size_limit())) from None
        # (a cell our own export neutralised reads back as it was: '=… is =…)
        rows.append((start, [read_back_text(cell) for cell in row]))


XLSX_MAGIC = b"PK\x03\x04"  # a ZIP: .xlsx
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a compound file: Excel 97–2003's .xls
XLSX_LABEL = "Excel (.xlsx)"


def _check_size(data: bytes) -> None:
    if not data:
        raise InvalidInput(_("ファイルが空です。"))
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(_("ファイルが大きすぎます（上限 %(mb)s MB）。分割してアップロードしてください。", mb=MAX_CSV_BYTES // (1024 * 1024)))


def _xlsx_rows(data: bytes) -> list[tuple[int, list[str]]]:
    """The first sheet's rows with content, with their row numbers (however many blank rows
    come between)."""
    return read_xlsx_rows(data, max_rows=MAX_CSV_ROWS + 1)  # _records reports a longer file as too many


def _width(cells: list[str]) -> int:
    """How many cells a row has up to its last non-blank one (Excel writes trailing empty cells)."""
    return next((i + 1 for i in range(len(cells) - 1, -1, -1) if cells[i].strip()), 0)


def _records(rows: list[tuple[int, list[str]]], required: tuple[str, ...], max_rows: int | None,
             encoding: str) -> tuple[list[str], list[tuple[int, dict]]]:
    max_rows = max_rows or MAX_CSV_ROWS
    rows = [(line, row) for line, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise InvalidInput(_("ファイルにデータがありません。"))
    header = [normalise_text(cell) for cell in rows[0][1]]
    missing = [name for name in required if name not in header]
    if missing:
        raise InvalidInput(_("見出し行に必要な列がありません：%(columns)s（文字コード：%(encoding)s）", columns=join_list(missing), encoding=encoding))
    body = rows[1:]
    if len(body) > max_rows:
        raise InvalidInput(_("行数が多すぎます（%(count)s 行。上限 %(max)s 行）。分割してアップロードしてください。", count=len(body), max=max_rows))
    columns = _width(header)
    records = []
    for n, (line, row) in enumerate(rows):  # (n 0: the header)
        if any("\x00" in cell for cell in row):
            raise InvalidInput(_("%(line)s 行目に NUL 文字（U+0000）が含まれているため読み込めません。"
                                 "Excel で開いて「CSV UTF-8」か「CSV（コンマ区切り）」で保存し直してください。",
                                 line=line))
        if n == 0:
            continue
        if (cells := _width(row)) > columns:  # (a 「,」 in a value not in 「"」: every later value is a column off)
            raise InvalidInput(_("%(line)s 行目の欄の数（%(cells)s）が見出し行の列の数（%(columns)s）より多いため読み込めません。"
                                 "「,」を含む値は「\"」で囲まれているか確かめてください。",
                                 line=line, cells=cells, columns=columns))
        records.append((line, {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}))
    return header, records


def parse_date(value: str) -> date | None:
    """A date as the forms read it (lms.common.forms: 2026-04-01, 2026/4/1, 2026年4月1日, 和暦
    such as 令和8年4月1日 or R8.4.1, full-width digits too); None for empty; ValueError if bad."""
    value = normalise_text(value)
    if not value:
        return None
    day = parse_japanese_date(value)
    if day is None:
        raise ValueError(value)
    return day


ADDED, UPDATED, UNCHANGED, TRANSFERRED, RETURNED, REFUSED, MARKED_LEFT = (
    "added", "updated", "unchanged", "transferred", "returned", "refused", "left",
)
OUTCOME_LABELS = {
    ADDED: _l("追加"), UPDATED: _l("更新"), UNCHANGED: _l("変更なし"), TRANSFERRED: _l("異動"),
    RETURNED: _l("復帰"), REFUSED: _l("取込不可"), MARKED_LEFT: _l("退職・転出"),
}


@dataclass
class RowResult:
    line: int
    employee_number: str
    name: str
    outcome: str
    message: str = ""


@dataclass
class ImportReport:
    encoding: str
    rows: list[RowResult] = field(default_factory=list)
    applied: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOME_LABELS, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def refused(self) -> list[RowResult]:
        return [row for row in self.rows if row.outcome == REFUSED]


_IMPORT_COLUMNS = (
    StaffMember.id, StaffMember.employee_number, StaffMember.full_name, StaffMember.full_name_kana,
    StaffMember.department, StaffMember.job_title, StaffMember.job_grade, StaffMember.sign_in_name,
    StaffMember.email, StaffMember.hired_on, StaffMember.status, StaffMember.department_head, StaffMember.deputy_head,
    StaffMember.left_on,
)

# A roster entry as an import reads it: a plain row of _IMPORT_COLUMNS, not an ORM object.
ImportedEntry: TypeAlias = Row[*tuple[Any, ...]]


def import_roster(municipality_id: int, data: bytes, actor, *, mark_missing_left: bool = False,
                  effective_on: date | None = None) -> ImportReport:
    """Import a whole roster CSV: validate every row first; apply only if no row is refused.

    Idempotent: the same file twice gives "unchanged" rows the second time. The caller
    commits (one transaction) when ``report.applied``; otherwise nothing was changed.
    """
    effective_on = effective_on or today_tokyo()
    encoding, _header, records = read_csv(data, REQUIRED_COLUMNS)
    begin_write()  # validate against the roster as it is while nobody else changes it
    report = ImportReport(encoding=encoding)
    # Plain rows, not ORM objects: a whole roster is tens of thousands of entries.
    existing = {
        m.employee_number: m
        for m in db.session.execute(
            select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id)
        )
    }
    by_sign_in = {m.sign_in_name.lower(): m for m in existing.values() if m.sign_in_name}
    seen = FeedSeen()
    planned: list[tuple[RowResult, dict, ImportedEntry | None]] = []

    for line, raw in records:
        values = _row_values(raw)
        result = _check_row(line, raw, values, seen, existing, by_sign_in)
        report.rows.append(result)
        if result.outcome != REFUSED:
            planned.append((result, values, existing.get(values["employee_number"])))

    in_file = set(seen.numbers)
    missing = []
    if mark_missing_left:
        missing = [m for number, m in existing.items()
                   if m.status == ACTIVE and number not in in_file and m.left_on != effective_on]
        _refuse_a_partial_file(len(in_file), len(missing), sum(m.status == ACTIVE for m in existing.values()))
        for m in sorted(missing, key=lambda m: m.employee_number):
            report.rows.append(RowResult(0, m.employee_number, m.full_name, MARKED_LEFT, _("ファイルにないため退職・転出として記録します。")))
    if report.refused:
        return report

    _apply_import(municipality_id, planned, missing, effective_on, actor)
    report.applied = True
    record_action(actor, "roster.import", "municipality", municipality_id, municipality_id,
                  encoding=encoding, mark_missing_left=mark_missing_left,
                  **{key: value for key, value in report.counts.items() if value})
    return report


def _refuse_a_partial_file(in_file: int, missing: int, active: int) -> None:
    """「ファイルにない職員を退職・転出として記録する」 with a file that cannot be the whole
    roster: an empty one (everyone would leave), or one missing more than half of those in
    service (a department's list, an export cut short). No municipality loses half its staff
    in one day; a real mass departure is recorded in parts, or by hand."""
    if not missing:
        return
    if in_file == 0:
        raise InvalidInput(_("ファイルに職員の行がありません。このまま取り込むと在職中の職員全員（%(n)s 人）が退職・転出に"
                             "なるため、取り込みませんでした。", n=missing))
    if missing * 2 > active:
        raise InvalidInput(_("ファイルにない在職中の職員が %(n)s 人（在職中 %(active)s 人の半数超）いるため、取り込みませんでした。"
                             "名簿の一部だけのファイルではないか確認してください。全員分でないファイルは、「ファイルにない在職中の"
                             "職員を退職・転出として記録する」のチェックを外して取り込んでください。", n=missing, active=active))


def _row_values(raw: dict) -> dict:
    """A roster row's values (keyed by attribute) from its columns, normalised as stored."""
    values = {attr: normalise_text(raw.get(column, "")) for column, attr in ROSTER_COLUMNS
              if column in raw or column not in KEPT_WHEN_ABSENT}
    values["full_name_kana"] = normalise_kana(values["full_name_kana"])
    values["sign_in_name"] = values["sign_in_name"].lower()
    if "email" in values:
        values["email"] = values["email"].lower()
    if "supervisor_role" in values:
        values["supervisor_role"] = _SUPERVISOR_WORDS.get(values["supervisor_role"], values["supervisor_role"])
    return values


def _stored(values: dict) -> dict:
    """An import row's values as columns (the 所属長 column becomes the two flags)."""
    if "supervisor_role" not in values:
        return values
    role = values["supervisor_role"]
    out = {key: value for key, value in values.items() if key != "supervisor_role"}
    out["department_head"], out["deputy_head"] = role == HEAD, role == DEPUTY
    return out


def upsert_staff_entry(municipality_id: int, entry: dict, actor, *, effective_on: date | None = None,
                       **audit_details) -> tuple[RowResult, StaffMember]:
    """One roster entry by 職員番号, exactly as a row of a CSV import: the same checks and
    normalisation (NFKC, kana), a changed 所属/職名 is a transfer (人事異動) kept in the history,
    an entry that had left returns. ``entry`` is keyed by attribute (``employee_number``,
    ``full_name``…, ``hired_on`` a date or None). Its ``left_on`` (a date) records a departure
    (退職・転出) of an active entry, with the pages' rules (``_departure_problem``). Raises
    InvalidInput (the row's problem). The caller commits."""
    effective_on = effective_on or today_tokyo()
    raw = _raw_of(entry)
    values = _row_values(raw)
    begin_write()
    number = values["employee_number"]
    # Locked: the same entry sent twice at once (a retried request) is changed once, the second
    # reading the first's result. (Two first-time adds meet at the unique index instead: the
    # caller runs the loser again, and it finds the entry.)
    existing = {m.employee_number: m for m in db.session.execute(for_update(
        select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id,
                                       StaffMember.employee_number == number)))}
    by_sign_in = {}
    if values["sign_in_name"]:
        by_sign_in = {m.sign_in_name.lower(): m for m in db.session.execute(
            select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id,
                                           func.lower(StaffMember.sign_in_name) == values["sign_in_name"]))}
    member_row = existing.get(number)
    problem = (_row_problem(values, raw, {}, {}, existing, by_sign_in, feed=True)
               or _departure_problem(member_row, values, entry))
    if problem:
        raise InvalidInput(problem)
    left_on = entry.get("left_on")
    result = RowResult(0, number, values["full_name"], UNCHANGED)
    if left_on is not None and member_row is not None and member_row.status == LEFT:
        result.message = said("この職員はすでに退職・転出として記録されています。")
    else:
        result.outcome, result.message = _classify(member_row, values)
        _apply_import(municipality_id, [(result, values, member_row)], [], effective_on, actor, source="api")
    member = db.session.scalar(select(StaffMember).where(StaffMember.municipality_id == municipality_id,
                                                         StaffMember.employee_number == number))
    assert member is not None  # (written just now)
    if left_on is not None and member.status == ACTIVE and member.left_on != left_on:
        _record_departure(member, left_on, actor)
        member.updated_at = utcnow()
        result.outcome, result.message = MARKED_LEFT, ""
        db.session.flush()
    record_action(actor, "roster.upsert", "staff_member", member.id, municipality_id,
                  employee_number=number, outcome=result.outcome, **audit_details)
    return result, member


def _raw_of(entry: dict) -> dict:
    """An entry keyed by attribute (``hired_on`` a date or None) as the row of a CSV file."""
    hired_on = entry.get("hired_on")
    raw = {column: ("" if entry.get(attr) is None else str(entry.get(attr))) for column, attr in ROSTER_COLUMNS
           if attr in entry or column not in KEPT_WHEN_ABSENT}
    if isinstance(hired_on, date):
        raw["採用日"] = hired_on.isoformat()
    return raw


@dataclass
class FeedSeen:
    """The 職員番号 and サインイン名 taken by earlier parts of one feed (row numbers). An API
    feed's (``feed``) refusals name its entries and fields as the API does, not a file's lines
    and columns."""

    numbers: dict[str, int] = field(default_factory=dict)
    sign_ins: dict[str, int] = field(default_factory=dict)
    feed: bool = False

    def take(self, line: int, entry: dict) -> None:
        values = _row_values(_raw_of(entry))
        self.numbers[values["employee_number"]] = line
        if values["sign_in_name"]:
            self.sign_ins[values["sign_in_name"]] = line


def upsert_staff_entries(municipality_id: int, rows: list[tuple[int, dict]], actor, seen: FeedSeen, *,
                         effective_on: date | None = None, source: str = "api") -> list[RowResult]:
    """A part of a bulk roster feed (an HR system's): each ``(line, entry)`` exactly as
    ``upsert_staff_entry`` takes it, but checked and classified against the roster in two
    statements and written in bulk (executemany), as a CSV import is. Unlike a CSV import, a
    refused row does not stop the others: it is reported (REFUSED) and left out. ``seen``
    carries what earlier parts of the feed took (a duplicate is refused) and is updated. The
    caller commits; it audits the feed as a whole."""
    effective_on = effective_on or today_tokyo()
    prepared = [(line, raw, _row_values(raw), entry) for line, raw, entry in
                ((line, _raw_of(entry), entry) for line, entry in rows)]
    numbers = [values["employee_number"] for _line, _raw, values, _left in prepared]
    sign_ins = [values["sign_in_name"] for _line, _raw, values, _left in prepared if values["sign_in_name"]]
    begin_write()
    existing = {m.employee_number: m for m in db.session.execute(
        select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id,
                                       StaffMember.employee_number.in_(numbers)))}
    by_sign_in = {m.sign_in_name.lower(): m for m in db.session.execute(
        select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id,
                                       func.lower(StaffMember.sign_in_name).in_(sign_ins)))} if sign_ins else {}
    results: list[RowResult] = []
    planned: list[tuple[RowResult, dict, ImportedEntry | None]] = []
    departures: list[tuple[RowResult, str, date]] = []
    for line, raw, values, entry in prepared:
        number = values["employee_number"]
        result = _check_row(line, raw, values, seen, existing, by_sign_in)
        results.append(result)
        if result.outcome == REFUSED:
            continue
        member = existing.get(number)
        if problem := _departure_problem(member, values, entry):
            result.outcome, result.message = REFUSED, problem
            continue
        left_on = entry.get("left_on")
        if left_on is not None and member is not None and member.status == LEFT:
            result.outcome, result.message = UNCHANGED, said("この職員はすでに退職・転出として記録されています。")
            continue
        planned.append((result, values, member))
        if left_on is not None:
            departures.append((result, number, left_on))
    _apply_import(municipality_id, planned, [], effective_on, actor, source=source)
    if departures:
        _apply_departures(municipality_id, departures, actor)
    return results


def _check_row(line: int, raw: dict, values: dict, seen: FeedSeen, existing, by_sign_in) -> RowResult:
    """A row checked against the roster and the rows before it: REFUSED with its problem, or
    the outcome its values would have (its 職員番号 and サインイン名 then taken in ``seen``)."""
    number = values["employee_number"]
    result = RowResult(line, number, values["full_name"], REFUSED)
    problem = _row_problem(values, raw, seen.numbers, seen.sign_ins, existing, by_sign_in, feed=seen.feed)
    # Taken whatever the outcome: a later row with the same 職員番号 (or サインイン名) is a
    # duplicate even when this one is refused for another reason (which of the two is meant?).
    if number and _EMPLOYEE_NUMBER_RE.match(number):
        seen.numbers.setdefault(number, line)
    sign_in = values["sign_in_name"]
    if sign_in and _EMAIL_RE.match(sign_in):
        seen.sign_ins.setdefault(sign_in, line)
    if problem:
        result.message = problem
        return result
    result.outcome, result.message = _classify(existing.get(number), values)
    return result


def _departure(member, left_on: date, actor_id: int | None, now) -> tuple[dict, dict]:
    """The roster update and the history row of a departure (退職・転出), written in bulk."""
    return ({"id": member.id, "status": status_on_departure(left_on), "left_on": left_on, "updated_at": now},
            {"staff_member_id": member.id, "effective_on": left_on, "kind": "left",
             "from_department": member.department, "from_job_title": member.job_title,
             "to_department": "", "to_job_title": "", "recorded_by_id": actor_id, "created_at": now})


def _apply_departures(municipality_id: int, departures: list[tuple[RowResult, str, date]], actor) -> None:
    """Record each (still active) entry's departure on its date, in bulk."""
    now, actor_id = utcnow(), getattr(actor, "id", None)
    members = {row.employee_number: row for row in db.session.execute(
        select(StaffMember.id, StaffMember.employee_number, StaffMember.department, StaffMember.job_title,
               StaffMember.status, StaffMember.left_on)
        .where(StaffMember.municipality_id == municipality_id,
               StaffMember.employee_number.in_([number for _r, number, _d in departures])))}
    updates, history = [], []
    for result, number, left_on in departures:
        member = members[number]
        if member.status != ACTIVE or member.left_on == left_on:  # (left, or scheduled so already)
            continue
        change, entry = _departure(member, left_on, actor_id, now)
        updates.append(change)
        history.append(entry)
        result.outcome, result.message = MARKED_LEFT, ""
    if updates:
        db.session.execute(update(StaffMember), updates)
        db.session.execute(insert(StaffHistory), history)
    db.session.expire_all()
    _announce_departures(history, actor)


def _announce_departures(history: list[dict], actor) -> None:
    """Publish each departure among bulk-written history rows (``staff_member_left``)."""
    for entry in history:
        if entry["kind"] == "left":
            signals.staff_member_left.send(None, staff_member_id=entry["staff_member_id"],
                                           left_on=entry["effective_on"], actor=actor)


def _row_problem(values, raw, seen_numbers, seen_sign_ins, existing, by_sign_in, *, feed: bool = False) -> str:
    """A row's problem, or "". A CSV's names its columns and lines; an API entry's (``feed``)
    names the fields and entries as the API does."""
    for column, attr in ROSTER_COLUMNS:  # (a quoted value over several lines, an Excel cell with Alt+Enter)
        if len(raw.get(column, "").strip().splitlines()) > 1:
            if feed:
                return said("%(field)s に改行が含まれています。1行で送ってください。", field=attr)
            return said("%(column)sに改行が含まれています。1行で入力してください（Excel ではセル内の改行を取り除いてください）。",
                        column=COLUMN_LABELS[attr])
    number = values["employee_number"]
    if not number:
        return said("%(field)s がありません。", field="employee_number") if feed else said("職員番号がありません。")
    if not _EMPLOYEE_NUMBER_RE.match(number):
        return said("職員番号「%(number)s」に使えない文字があります（半角英数字・ハイフンのみ）。", number=number)
    if number in seen_numbers:
        return _duplicate("employee_number", number, seen_numbers[number]) if feed else said(
            "職員番号 %(number)s がファイル内で重複しています（%(line)s 行目と同じ）。", number=number, line=seen_numbers[number])
    if not values["full_name"]:
        return said("%(field)s がありません。", field="full_name") if feed else said("氏名がありません。")
    for attr, limit in _LIMITS.items():
        if len(values.get(attr, "")) > limit:
            return said("%(column)sが長すぎます（%(limit)s 文字まで）。", column=attr if feed else COLUMN_LABELS[attr],
                        limit=limit)
    sign_in = values["sign_in_name"]
    if sign_in:
        if not _EMAIL_RE.match(sign_in):
            return said("サインイン名「%(name)s」がメールアドレスの形式ではありません。", name=sign_in)
        if sign_in in seen_sign_ins:
            return _duplicate("sign_in_name", sign_in, seen_sign_ins[sign_in]) if feed else said(
                "サインイン名 %(name)s がファイル内で重複しています（%(line)s 行目と同じ）。", name=sign_in,
                line=seen_sign_ins[sign_in])
        holder = by_sign_in.get(sign_in)
        if holder is not None and holder.employee_number != number:
            return said("サインイン名 %(name)s はすでに別の職員（職員番号 %(other)s）に使われています。", name=sign_in, other=holder.employee_number)
    if values.get("email") and not _EMAIL_RE.match(values["email"]):
        return said("メール「%(mail)s」がメールアドレスの形式ではありません。", mail=values["email"])
    if values.get("supervisor_role", "") not in ("", HEAD, DEPUTY):
        return said("所属長の欄「%(value)s」は、「所属長」「代理」または空欄で入力してください。", value=values["supervisor_role"])
    if "採用日" in raw:
        try:
            values["hired_on"] = parse_date(raw["採用日"])
        except ValueError:
            return said("採用日「%(value)s」が日付として読めません（例：2026-04-01、令和8年4月1日）。", value=raw["採用日"])
    return ""


def _departure_problem(member: ImportedEntry | None, values: dict, entry: dict) -> str:
    """What the roster's pages would refuse in an API entry's ``left_on`` (a CSV has no such
    column), or "": a departure before the 採用日 (as ``record_departure``); any change to an
    entry already left — the pages record neither a second departure nor a transfer of it, and a
    return is sent without ``left_on``; ``null`` for a scheduled departure (no page cancels
    one). ``values`` are checked already (``_row_problem``)."""
    if "left_on" not in entry:
        return ""
    left_on = entry["left_on"]
    if left_on is None:
        if member is not None and member.status == ACTIVE and member.left_on is not None:
            return said("%(date)s の退職・転出が予定として記録されています。予定の退職・転出は取り消せません。",
                        date=Dated(member.left_on))
        return ""
    hired_on = values["hired_on"] if "hired_on" in values else getattr(member, "hired_on", None)
    if problem := _before_hire(left_on, hired_on):
        return problem
    if member is not None and member.status == LEFT:
        changed = _changed_columns(member, values, skip=())
        if left_on != member.left_on:
            changed.append(said("退職・転出日"))
        if changed:
            return said("この職員は %(date)s に退職・転出済みのため、次の変更は記録できません：%(columns)s。"
                        "復帰させるときは left_on を付けずに送ってください。",
                        date=Dated(member.left_on), columns=Listed(tuple(changed)))
    return ""


def _changed_columns(member: ImportedEntry, values: dict, *, skip=("department", "job_title")) -> list[Any]:
    """The names of the columns whose value in ``values`` differs from the stored one (labels,
    worded in the language the message is read in)."""
    return [COLUMN_LABELS[attr] for _column, attr in ROSTER_COLUMNS
            if attr not in skip and attr in values and _current(member, attr) != values[attr]]


def _duplicate(name: str, value: str, entry: int) -> str:
    """An API feed's entry repeating an earlier one's 職員番号 or サインイン名 (``name``)."""
    return said("%(field)s %(value)s が送信内で重複しています（エントリ %(entry)s と同じ）。", field=name, value=value,
                entry=entry)


def _classify(member: ImportedEntry | None, values: dict) -> tuple[str, str]:
    if member is None:
        return ADDED, ""
    if member.status == LEFT:
        return RETURNED, said("退職・転出から復帰します。")
    if (values["department"], values["job_title"]) != (member.department, member.job_title):
        return TRANSFERRED, said("%(old)s → %(new)s", old=f"{member.department} {member.job_title}".strip(),
                                 new=f"{values['department']} {values['job_title']}".strip())
    changed = _changed_columns(member, values)
    if changed:
        return UPDATED, said("変更：%(columns)s", columns=Listed(tuple(changed)))
    return UNCHANGED, ""


def _current(member: ImportedEntry, attr: str):
    if attr == "supervisor_role":
        return HEAD if member.department_head else DEPUTY if member.deputy_head else ""
    value = getattr(member, attr)
    if attr in ("sign_in_name", "email"):
        return (value or "").lower()
    return value if attr == "hired_on" else (value or "")




def _apply_import(municipality_id: int, planned, missing, effective_on: date, actor, *, source: str = "csv") -> None:
    """Write the validated import in bulk (executemany), in the caller's transaction."""
    now = utcnow()
    actor_id = getattr(actor, "id", None)
    inserts, updates, history = [], [], []
    for result, values, member in planned:
        if result.outcome == UNCHANGED:
            continue
        values = _stored(values)
        if member is None:
            inserts.append({**_NEW_ENTRY_DEFAULTS, **values, "municipality_id": municipality_id, "status": ACTIVE, "source": source,
                            "created_at": now, "updated_at": now})
            continue
        change = {"id": member.id, "updated_at": now, **values}
        if result.outcome == RETURNED:
            change.update(status=ACTIVE, left_on=None)
            history.append({"staff_member_id": member.id, "effective_on": effective_on, "kind": "returned",
                            "from_department": "", "from_job_title": "", "to_department": values["department"],
                            "to_job_title": values["job_title"], "recorded_by_id": actor_id, "created_at": now})
        if values["department"] != member.department and "department_head" not in values:
            change.update(department_head=False, deputy_head=False)  # (no longer the head of the 所属 left)
        if (values["department"], values["job_title"]) != (member.department, member.job_title):
            history.append({"staff_member_id": member.id, "effective_on": effective_on, "kind": "transfer",
                            "from_department": member.department, "to_department": values["department"],
                            "from_job_title": member.job_title, "to_job_title": values["job_title"],
                            "recorded_by_id": actor_id, "created_at": now})
        updates.append(change)
    for member in missing:
        change, entry = _departure(member, effective_on, actor_id, now)
        updates.append(change)
        history.append(entry)
    if inserts:
        db.session.execute(insert(StaffMember), inserts)
    for batch in _group_by_keys(updates):
        db.session.execute(update(StaffMember), batch)
    if history:
        db.session.execute(insert(StaffHistory), history)
    db.session.expire_all()
    _announce_departures(history, actor)
    for entry in history:
        if entry["kind"] == "transfer" and entry["from_department"] != entry["to_department"]:
            signals.staff_member_transferred.send(None, staff_member_id=entry["staff_member_id"],
                                                  from_department=entry["from_department"],
                                                  to_department=entry["to_department"], actor=actor)


def _group_by_keys(rows: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


EXPORT_COLUMNS = [column for column, _attr in ROSTER_COLUMNS] + ["状態", "退職日"]


def cp932_losses(municipality_id: int) -> list[LossyRow]:
    """The roster entries whose exported text Windows-31J cannot hold (they would become ?)."""
    losses = []
    for m in db.session.execute(
        select(*_IMPORT_COLUMNS).where(StaffMember.municipality_id == municipality_id)
        .order_by(StaffMember.employee_number)
    ):
        text = "".join((m.employee_number, m.full_name, m.full_name_kana, m.department, m.job_title,
                        m.job_grade, m.sign_in_name, m.email))
        if missing := unencodable(text):
            losses.append(LossyRow(m.employee_number, m.full_name, missing))
    return losses


def export_roster_csv(municipality_id: int, *, encoding: str = "utf-8") -> bytes:
    """The roster as CSV: UTF-8 with BOM (Excel opens it correctly), or cp932 on request.
    The columns are the import columns, so an export can be edited and imported back."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    members = db.session.execute(
        select(*_IMPORT_COLUMNS)
        .where(StaffMember.municipality_id == municipality_id)
        .order_by(StaffMember.employee_number)
    )
    for m in members:
        writer.writerow([neutralise_cell(v) for v in (
            m.employee_number, m.full_name, m.full_name_kana, m.department, m.job_title, m.sign_in_name, m.email,
            m.hired_on.isoformat() if m.hired_on else "", m.job_grade,
            HEAD if m.department_head else DEPUTY if m.deputy_head else "", "在職" if m.status == ACTIVE else "退職・転出",
            m.left_on.isoformat() if m.left_on else "",
        )])
    text = out.getvalue()
    if encoding == "cp932":
        return text.encode("cp932", errors="replace")
    return b"\xef\xbb\xbf" + text.encode("utf-8")


# ---------------------------------------------------------------- sync from a tenant's directory


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    transferred: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)


def apply_directory_users(municipality_id: int, users: list[dict], actor, *,
                          effective_on: date | None = None) -> SyncReport:
    """Bring the roster up to date from the complete list of a tenant's users, as Microsoft
    Graph's ``/users`` gives them (``id``, ``userPrincipalName``, ``displayName``,
    ``department``, ``jobTitle``, ``employeeId``, ``mail``, ``userType``); the Teams area
    fetches it (lms.teams.roster_sync).

    People missing from the list are never marked as left (a partial or filtered list must
    not empty a roster). Matching: by Entra object id, by sign-in name (userPrincipalName),
    then by 職員番号 (employeeId). Users of other mail domains are skipped when the
    municipality's tenant mapping names its domains. The caller commits.
    """
    effective_on = effective_on or today_tokyo()
    begin_write()  # after the (slow) directory calls: the write lock is held only while applying
    domains = {
        d.lower() for d in db.session.scalars(
            select(TenantMapping.mail_domain).where(TenantMapping.municipality_id == municipality_id)
        ) if d
    }
    members = db.session.scalars(select(StaffMember).where(StaffMember.municipality_id == municipality_id)).all()
    by_sign_in = {m.sign_in_name.lower(): m for m in members if m.sign_in_name}
    by_number = {m.employee_number: m for m in members}
    by_oid = {m.entra_object_id: m for m in members if m.entra_object_id}
    report = SyncReport()
    for user in users:
        upn = normalise_text(user.get("userPrincipalName")).lower()
        if not upn or (user.get("userType") or "Member") != "Member" or "#ext#" in upn:
            continue  # guests and external accounts are not staff
        if domains and upn.rsplit("@", 1)[-1] not in domains:
            continue
        number = normalise_text(user.get("employeeId"))
        member = by_oid.get(user.get("id") or "") or by_sign_in.get(upn) or (by_number.get(number) if number else None)
        values = {
            "full_name": normalise_text(user.get("displayName"))[:100],
            "department": normalise_text(user.get("department"))[:200],
            "job_title": normalise_text(user.get("jobTitle"))[:100],
            "email": normalise_text(user.get("mail")).lower()[:320],
            "sign_in_name": upn[:320],
        }
        if member is None:
            if not number or not _EMPLOYEE_NUMBER_RE.match(number) or len(number) > 20:
                report.skipped.append(_("%(upn)s：職員番号（employeeId）が未設定または不正なため追加しませんでした。", upn=upn))
                continue
            member = StaffMember(municipality_id=municipality_id, employee_number=number, status=ACTIVE,
                                 source="graph", full_name_kana="", **values)
            db.session.add(member)
            by_number[number] = member
            by_sign_in[upn] = member
            report.added += 1
            continue
        holder = by_sign_in.get(upn)
        if holder is not None and holder is not member:
            report.skipped.append(_("%(upn)s：サインイン名が別の職員に使われているため更新しませんでした。", upn=upn))
            continue
        transferred = (values["department"], values["job_title"]) != (member.department, member.job_title) and (
            values["department"] or values["job_title"]
        )
        if transferred and member.status == LEFT:
            # The directory may keep an account after the roster recorded the departure: a
            # 人事異動 after it is refused by hand (transfer_staff) and is not written here either.
            report.skipped.append(_("%(upn)s：退職・転出済みの職員のため、所属・職名は更新しませんでした。", upn=upn))
            transferred = False
        elif transferred:
            _record_transfer(member, values["department"] or member.department,
                             values["job_title"] or member.job_title, effective_on, actor)
            report.transferred += 1
        changed = False
        for attr in ("full_name", "email", "sign_in_name"):
            if values[attr] and getattr(member, attr) != values[attr]:
                setattr(member, attr, values[attr])
                changed = True
        if changed and not transferred:
            report.updated += 1
        elif not changed and not transferred:
            report.unchanged += 1
        by_sign_in[upn] = member
    db.session.flush()
    record_action(actor, "roster.graph_sync", "municipality", municipality_id, municipality_id,
                  added=report.added, updated=report.updated, transferred=report.transferred,
                  unchanged=report.unchanged, skipped=len(report.skipped), users=len(users))
    return report

