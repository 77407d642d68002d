"""Every table of the dashboards as an export: columns (Japanese headers) and rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import chain

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms.activities.forms import KIND_LABELS as ACTIVITY_KINDS
from lms.common.spreadsheet import LossyRow, unencodable
from lms.completion import reports
from lms.completion.exports import Column, Table, stream_query, tokyo_wall_clock
from lms.completion.models import COMPLETED, VIA_ARCHIVE, VIA_BOTH, VIA_LIVE, VIA_MANUAL, Completion
from lms.courses.models import Course
from lms.extensions import db
from lms.roster.models import StaffMember

TABLES = ("courses", "activities", "departments", "job_titles", "trend", "missing", "records", "comparison")
# Each table's title (its sheet's, and its name in the audit log's export entries).
TABLE_TITLES = {"courses": _l("研修別"), "activities": _l("課題別"), "departments": _l("所属別"),
                "job_titles": _l("職名別"), "trend": _l("月別推移"), "missing": _l("必修未修了者"),
                "records": _l("修了記録"), "comparison": _l("区市町村比較")}
# Tables that ``?course=`` narrows to one course (as the dashboard's own tables: its list of
# courses and the mandatory assignments are every course's; the comparison names its courses
# in its rows).
COURSE_TABLES = ("activities", "departments", "job_titles", "trend", "records")
# Tables that name people: their export is personal data.
PERSONAL_TABLES = ("missing", "records")


def method_label(method: str) -> str:
    return {
        VIA_LIVE: _("ライブ出席"),
        VIA_ARCHIVE: _("アーカイブ視聴"),
        VIA_BOTH: _("ライブ出席とアーカイブ視聴"),
        VIA_MANUAL: _("手動登録"),
    }.get(method, method or "")


def status_label(status: str) -> str:
    return _("修了") if status == COMPLETED else _("取消")


def _rate(value) -> object:
    return "" if value is None else value


def title_lines_for(table_title: str, municipality_name: str | None, fiscal_year: int | None,
                    exported_at: datetime, course_title: str | None = None) -> tuple[str, ...]:
    """What an exported sheet is, whose, of which course (when narrowed to one), for which year
    and when it was made: the lines a sheet printed or forwarded by mail must carry."""
    year = _("全年度") if fiscal_year is None else _("%(y)d年度（%(y)d年4月〜%(n)d年3月）", y=fiscal_year, n=fiscal_year + 1)
    return (
        _("修了状況：%(table)s", table=table_title),
        _("区市町村：%(name)s", name=municipality_name or _("全区市町村")),
        *((_("研修：%(title)s", title=course_title),) if course_title is not None else ()),
        _("年度：%(year)s", year=year),
        _("出力日時：%(at)s", at=tokyo_wall_clock(exported_at).strftime("%Y-%m-%d %H:%M")),
    )


def build_table(name: str, *, scope: int | None, fiscal_year: int | None, course_ids=(), assignment=None) -> Table:
    """``fiscal_year`` None (every year) is meaningful for "records" only; ``course_ids``: the
    comparison's courses, or the one course a table of ``COURSE_TABLES`` is narrowed to."""
    course_id = course_ids[0] if course_ids else None
    if name == "records":
        # Labels translated once, not per row (a million rows).
        methods = {m: method_label(m) for m in (VIA_LIVE, VIA_ARCHIVE, VIA_BOTH, VIA_MANUAL)}
        statuses = {COMPLETED: status_label(COMPLETED), "revoked": status_label("revoked")}

        def convert(r):
            return (r.municipality, r.employee_number, r.full_name, r.department, r.job_title, r.course,
                    r.fiscal_year, statuses.get(r.status, r.status), methods.get(r.method, r.method),
                    r.completed_at, r.certificate_serial or "")
        return Table("completions", str(TABLE_TITLES["records"]), [
            Column(_("区市町村"), 14), Column(_("職員番号"), 12), Column(_("氏名"), 18), Column(_("所属"), 24),
            Column(_("職名"), 14), Column(_("研修"), 40), Column(_("年度"), 8), Column(_("状態"), 8),
            Column(_("修了方法"), 22), Column(_("修了日時"), 18), Column(_("証書番号"), 28),
        ], lambda: stream_query(reports.completion_records_query(scope, fiscal_year, course_id), convert))
    if fiscal_year is None:
        raise KeyError(name)
    if name == "courses":
        def rows():
            for r in reports.course_summary(scope, fiscal_year):
                yield (r.title, r.enrolled, r.attended, r.completed_live, r.completed_archive, r.completed_both,
                       r.completed_manual, r.completed, r.not_yet, _rate(r.rate))
        return Table("completion-courses", str(TABLE_TITLES["courses"]), [
            Column(_("研修"), 44), Column(_("申込者数"), 10), Column(_("出席者数"), 10),
            Column(_("修了（ライブ）"), 14), Column(_("修了（アーカイブ）"), 16), Column(_("修了（両方）"), 12),
            Column(_("修了（手動）"), 12), Column(_("修了計"), 10), Column(_("未修了"), 10), Column(_("修了率（%）"), 12, percent=True),
        ], rows)
    if name == "activities":
        kinds = {kind: str(label) for kind, label in ACTIVITY_KINDS.items()}
        yes, no = _("必須"), _("任意")

        def rows():
            for a in reports.activity_figures(scope, fiscal_year, course_id):
                yield (a.course_title, a.title, kinds.get(a.kind, a.kind), yes if a.required else no, a.submitted,
                       "" if a.passed is None else a.passed, "" if a.confirmed is None else a.confirmed)
        return Table("completion-activities", str(TABLE_TITLES["activities"]), [
            Column(_("研修"), 40), Column(_("課題"), 30), Column(_("種類"), 14), Column(_("修了要件"), 10),
            Column(_("提出者数"), 10), Column(_("合格者数"), 10), Column(_("確認済の報告"), 12),
        ], rows)
    if name in ("departments", "job_titles"):
        by = "department" if name == "departments" else "job_title"
        label = _("所属") if by == "department" else _("職名")

        def rows():
            for r in reports.group_breakdown(scope, fiscal_year, by, course_id):
                yield (r.name, r.staff, r.enrolled, r.completed, _rate(r.rate))
        title = str(TABLE_TITLES[name])
        return Table(f"completion-{name.replace('_', '-')}", title, [
            Column(label, 30), Column(_("職員数"), 10), Column(_("申込者数"), 10), Column(_("修了者数"), 10),
            Column(_("修了率（%）"), 12, percent=True),
        ], rows)
    if name == "trend":
        def rows():
            for m in reports.monthly_trend(scope, fiscal_year, course_id):
                yield (m.month, m.completed, m.cumulative)
        return Table("completion-trend", str(TABLE_TITLES["trend"]), [
            Column(_("年月"), 12), Column(_("修了件数"), 12), Column(_("累計"), 12),
        ], rows)
    if name == "missing":
        assignments = [assignment] if assignment is not None else reports.assignments_in_scope(scope, fiscal_year)
        today = reports.today_tokyo()
        titles = dict(db.session.execute(
            select(Course.id, Course.title).where(Course.id.in_([a.course_id for a in assignments] or [0]))
        ).all())

        # Snapshot plain values now: the export streams after the audit commit.
        plans = [
            (a.course_id, titles.get(a.course_id, ""), a.due_on, _("期限超過") if a.due_on < today else "",
             reports.missing_staff_query(a, scope))
            for a in assignments
        ]

        yes, no = _("あり"), _("なし")

        def rows():
            # A person is listed once per course, under its first due date, however many of the
            # year's assignments make the course mandatory for them (overlapping groups).
            listed: set[tuple[int, int]] = set()
            for course_id, title, due_on, overdue, query in plans:

                def convert(r, title=title, due_on=due_on, overdue=overdue) -> tuple:
                    return r.staff_member_id, (title, due_on, r.municipality, r.employee_number, r.full_name,
                                               r.department, r.job_title, r.hired_on or "",
                                               yes if r.user_id else no, overdue)
                for staff_member_id, row in stream_query(query, convert):
                    if (course_id, staff_member_id) not in listed:
                        listed.add((course_id, staff_member_id))
                        yield row

        return Table("mandatory-not-completed", str(TABLE_TITLES["missing"]), [
            Column(_("研修"), 36), Column(_("期限"), 12), Column(_("区市町村"), 14), Column(_("職員番号"), 12),
            Column(_("氏名"), 18), Column(_("所属"), 24), Column(_("職名"), 14), Column(_("採用日"), 12),
            Column(_("サインイン実績"), 14), Column(_("期限超過"), 10),
        ], rows)
    if name == "comparison":
        ids = list(course_ids) or reports.default_comparison_courses(fiscal_year)
        titles = dict(db.session.execute(select(Course.id, Course.title).where(Course.id.in_(ids or [0]))).all())

        def rows():
            for r in reports.comparison(fiscal_year, ids):
                for cid in ids:
                    cell = r.cells.get(cid)
                    if cell is None or cid not in titles:
                        continue
                    yield (r.name, titles[cid], cell.completed, cell.not_yet, _rate(cell.rate))
        return Table("completion-comparison", str(TABLE_TITLES["comparison"]), [
            Column(_("区市町村"), 14), Column(_("研修"), 40), Column(_("修了者数"), 10), Column(_("未修了者数"), 12),
            Column(_("修了率（%）"), 12, percent=True),
        ], rows)
    raise KeyError(name)


def cp932_losses(name: str, built: Table, *, scope: int | None, fiscal_year: int | None,
                 limit: int = 200) -> tuple[list[LossyRow], int]:
    """The rows of an export whose text Windows-31J cannot hold, before a Shift_JIS file is
    made (up to ``limit`` of them, and how many in all). The completion records (a million
    rows) are checked through the people and courses they name, not row by row."""
    losses: list[LossyRow] = []
    total = 0
    rows: Iterable[tuple[str, str, str]]
    if name == "records":
        # As the records export selects: by the staff member's municipality.
        completed = select(Completion.staff_member_id).where(*_year(fiscal_year))
        people = select(StaffMember.employee_number, StaffMember.full_name, StaffMember.department,
                        StaffMember.job_title).where(StaffMember.id.in_(completed), *_staff_scope(scope))
        candidates = ((r.employee_number, r.full_name, "".join(r)) for r in db.session.execute(people))
        in_scope = select(StaffMember.id).where(*_staff_scope(scope))
        courses = select(Course.title).where(Course.id.in_(
            select(Completion.course_id).where(*_year(fiscal_year), Completion.staff_member_id.in_(in_scope))))
        rows = chain(candidates, ((_("研修"), title, title) for title in db.session.scalars(courses)))
    else:
        rows = ((str(row[0]), str(row[1]) if len(row) > 1 and isinstance(row[1], str) else str(row[0]),
                 "".join(v for v in row if isinstance(v, str))) for row in built.rows())
    for key, label, text in rows:
        if missing := unencodable(text):
            total += 1
            if len(losses) < limit:
                losses.append(LossyRow(key, label, missing))
    return losses, total


def _year(fiscal_year: int | None) -> list:
    return [] if fiscal_year is None else [Completion.fiscal_year == fiscal_year]


def _staff_scope(scope: int | None) -> list:
    return [] if scope is None else [StaffMember.municipality_id == scope]
