"""A synthetic data set of a given size, for benchmarks and for trying the dashboards.

``flask --app wsgi lms synth --users 200000 --municipalities 63 --courses 2000
--enrollments 2000000 [--seed N] [--force]``

Rows are written in bulk: PostgreSQL's COPY (psycopg) where available, executemany
otherwise. Everything is consistent with the rules: attendance is judged by the course's
threshold, viewing by the course's, and completions follow the course's completion mode
(lms.completion.services.evaluate_rule itself), with the earliest qualifying time.

All people, departments and courses are invented. Synthetic staff carry ``source='synth'``;
the command refuses to write into a database holding other (real) data unless forced.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnDefault, Table, bindparam, func, select, text

from lms.archives.models import Archive, ArchiveFile, ViewingProgress
from lms.attendance.models import Attendance
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, User, UserRole
from lms.common.timeutil import fiscal_year_bounds, fiscal_year_of, utcnow
from lms.completion.models import Completion
from lms.completion.services import Basis, evaluate_rule, new_certificate_serial
from lms.completion.summary import rebuild
from lms.courses.models import Course, TrainingSession
from lms.courses.search import normalise_for_search
from lms.enrollment.models import Enrollment
from lms.extensions import Model, db
from lms.municipalities.models import Municipality
from lms.municipalities.services import load_municipalities
from lms.roster.models import StaffMember

SYNTH = "synth"

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水", "山崎", "森", "池田", "橋本", "阿部", "石川", "山下", "中島", "石井", "小川", "前田", "岡田", "長谷川", "藤田", "後藤", "近藤", "村上", "遠藤", "青木", "坂本"]
GIVEN = ["花子", "一郎", "陽子", "健太", "美咲", "大輔", "直美", "翔太", "由美", "拓也", "恵", "誠", "愛", "亮", "裕子", "聡", "真由美", "大樹", "彩", "浩", "智子", "剛", "舞", "修", "明美", "翼", "香織", "学", "千尋", "悠"]
DEPARTMENTS = ["総務課", "人事課", "財政課", "企画課", "情報政策課", "税務課", "収納課", "戸籍住民課", "保険年金課", "福祉課", "高齢福祉課", "障害福祉課", "子育て支援課", "保育課", "健康推進課", "環境課", "清掃事務所", "都市計画課", "道路課", "建築課", "公園緑地課", "防災課", "危機管理課", "会計課", "議会事務局", "教育総務課", "学務課", "生涯学習課", "選挙管理委員会事務局", "監査事務局"]
JOB_TITLES = ["主事", "主任", "係長", "課長補佐", "課長", "部長", "技師", "主任技師", "保健師", "会計年度任用職員"]
JOB_WEIGHTS = (30, 18, 14, 6, 4, 1, 8, 5, 4, 10)
TOPICS = (
    "Teams 会議の基本", "Teams チャネル活用", "Outlook 予定表", "Excel 関数入門", "Excel データ分析",
    "Word 文書作成", "PowerPoint 資料作成", "OneDrive と共有", "SharePoint サイト運用", "Forms アンケート",
    "Power Automate 入門", "Power BI 可視化", "情報セキュリティ", "個人情報保護", "テレワーク実践",
    "Copilot 活用", "Loop 共同編集", "Planner タスク管理", "Viva Engage 活用", "アクセシビリティ配慮",
)
LEVELS = ("入門", "基礎", "応用", "実践", "管理者向け")
MODES = (("either", 55), ("attendance", 25), ("archive", 10), ("both", 10))


class SyntheticRefused(RuntimeError):
    pass


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


# ---------------------------------------------------------------- bulk writing


def table_of(model: type[Model]) -> Table:
    """The model's table, for Core writes."""
    return model.__table__


def _column_defaults(table: Table, given: list[str]) -> tuple[list[str], list]:
    """Names and values (evaluated once) of the table's other NOT NULL columns with a
    Python-side default, so that COPY/executemany rows satisfy the schema."""
    names, values = [], []
    for column in table.columns:
        if column.name in given or column.primary_key and column.name == "id":
            continue
        default = column.default
        if not isinstance(default, ColumnDefault):
            continue
        value = default.arg
        if callable(value):
            try:
                value = value()
            except TypeError:
                value = value(None)
        names.append(column.name)
        values.append(value)
    return names, values


class BulkWriter:
    """COPY on PostgreSQL, executemany elsewhere; rows are plain tuples."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.postgres = db.engine.dialect.name == "postgresql"
        self.superuser = self.postgres and bool(db.session.scalar(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ))

    def write(self, table: Table, columns: list[str], rows: Iterable[tuple], batch: int = 20000) -> int:
        extra_names, extra_values = _column_defaults(table, columns)
        json_cols = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
        names = list(columns) + extra_names
        extra = tuple(json.dumps(v) if n in json_cols and self.postgres else v
                      for n, v in zip(extra_names, extra_values, strict=True))
        started = time.monotonic()
        n = 0
        if self.postgres:
            # (psycopg's own COPY: SQLAlchemy's events do not see it, so the request-end check
            # of lms.common.database.end_reads_with_commit does not either; synth commits)
            raw = db.session.connection().connection.driver_connection
            assert raw is not None  # a live connection: psycopg's own
            sql = f'COPY "{table.name}" ({", ".join(names)}) FROM STDIN'
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row + extra)
                    n += 1
        else:
            insert = table.insert()
            chunk = []
            for row in rows:
                chunk.append(dict(zip(names, row + extra, strict=True)))
                if len(chunk) >= batch:
                    db.session.execute(insert, chunk)
                    n += len(chunk)
                    chunk = []
            if chunk:
                db.session.execute(insert, chunk)
                n += len(chunk)
        self.echo(f"  {table.name}: {n} rows in {time.monotonic() - started:.1f} s")
        return n

    def fix_sequence(self, table: Table) -> None:
        if self.postgres:
            # table names come from our own metadata, never from input
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"(SELECT COALESCE(MAX(id), 1) FROM \"{table.name}\"))"
            ))


class Sinks:
    """Several tables filled at once, row by row, with bounded memory: one COPY per table on
    its own connection (PostgreSQL; the referenced rows are committed first), or batches of
    executemany on the session's connection."""

    def __init__(self, writer: BulkWriter, specs: dict[str, tuple[Table, list[str]]], batch: int = 20000):
        self.writer, self.specs, self.batch = writer, specs, batch
        self.counts = dict.fromkeys(specs, 0)
        self.extra: dict[str, tuple] = {}
        self.names: dict[str, list[str]] = {}
        for key, (table, columns) in specs.items():
            extra_names, extra_values = _column_defaults(table, columns)
            json_cols = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
            self.names[key] = list(columns) + extra_names
            self.extra[key] = tuple(
                json.dumps(v) if n in json_cols and writer.postgres else v
                for n, v in zip(extra_names, extra_values, strict=True)
            )
        self.buffers: dict[str, list[tuple]] = {key: [] for key in specs}
        self._stack = contextlib.ExitStack()
        self.copies: dict[str, Any] = {}

    def __enter__(self):
        if self.writer.postgres:
            for key, (table, _columns) in self.specs.items():
                raw = self._stack.enter_context(contextlib.closing(db.engine.raw_connection()))
                conn = raw.driver_connection
                assert conn is not None  # a live connection: psycopg's own
                self._stack.callback(conn.commit)
                cur = self._stack.enter_context(conn.cursor())
                if self.writer.superuser:
                    # Rows are consistent by construction: skip the per-row foreign-key
                    # triggers, which COPY would otherwise queue and run at the end.
                    cur.execute("SET LOCAL session_replication_role = replica")
                self.copies[key] = self._stack.enter_context(
                    cur.copy(f'COPY "{table.name}" ({", ".join(self.names[key])}) FROM STDIN')
                )
        return self

    def add(self, key: str, row: tuple) -> None:
        self.counts[key] += 1
        if self.writer.postgres:
            self.copies[key].write_row(row + self.extra[key])
            return
        buffer = self.buffers[key]
        buffer.append(row)
        if len(buffer) >= self.batch:
            self._flush(key)

    def _flush(self, key: str) -> None:
        table, _columns = self.specs[key]
        names, extra = self.names[key], self.extra[key]
        rows = [dict(zip(names, r + extra, strict=True)) for r in self.buffers[key]]
        if rows:
            db.session.execute(table.insert(), rows)
        self.buffers[key] = []

    def __exit__(self, exc_type, exc, tb):
        if self.writer.postgres:
            if exc_type is None:
                self._stack.close()  # ends every COPY and commits each connection
            else:
                self._stack.__exit__(exc_type, exc, tb)
            return False
        if exc_type is None:
            for key in self.specs:
                self._flush(key)
        return False


def _next_id(table: Table) -> int:
    return (db.session.scalar(select(func.max(table.c.id))) or 0) + 1


# ---------------------------------------------------------------- the data set


def check_database(force: bool) -> None:
    real_staff = db.session.scalar(select(func.count()).select_from(StaffMember).where(StaffMember.source != SYNTH))
    real_users = db.session.scalar(select(func.count()).select_from(User).where(User.is_demo.is_(False)))
    synthetic = db.session.scalar(select(func.count()).select_from(StaffMember).where(StaffMember.source == SYNTH))
    if force:
        return
    if real_staff or real_users:
        raise SyntheticRefused(
            f"This database holds non-synthetic data ({real_staff} staff, {real_users} users); "
            "use a dedicated database, or --force."
        )
    if synthetic:
        raise SyntheticRefused(f"This database already holds {synthetic} synthetic staff; use --force to add more.")


def generate_synthetic(*, users: int, municipalities: int, courses: int, enrollments: int, seed: int = 1,
                       force: bool = False, echo: Callable[[str], None] = print) -> dict:
    if users < 1 or courses < 1 or municipalities < 1 or enrollments < 0:
        raise SyntheticRefused("sizes must be positive")
    check_database(force)
    started = time.monotonic()
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128)).hex[:6]
    load_municipalities()
    db.session.flush()
    munis = db.session.execute(
        select(Municipality.id, Municipality.code).order_by(Municipality.sort_order, Municipality.code)
    ).all()[:municipalities]
    writer = BulkWriter(echo)
    now = utcnow().replace(microsecond=0)
    fy = fiscal_year_of(now)
    prev_start, prev_end = fiscal_year_bounds(fy - 1)
    cur_start, _cur_end = fiscal_year_bounds(fy)
    summary: dict[str, int] = {}

    # -- staff (職員名簿): bigger municipalities get more staff
    weights = [rng.uniform(0.3, 3.0) for _ in munis]
    staff_table = table_of(StaffMember)
    first_staff = _next_id(staff_table)
    staff_muni: list[int] = []
    staff_active: list[bool] = []

    def staff_rows():
        total_w = sum(weights)
        cumulative, acc = [], 0.0
        for w in weights:
            acc += w / total_w
            cumulative.append(acc)
        # Every municipality gets staff (one each first), the rest by weight; rosters are
        # imported per municipality, so a municipality's staff have neighbouring ids.
        picks = [i if i < len(munis) else min(bisect.bisect_left(cumulative, rng.random()), len(munis) - 1)
                 for i in range(users)]
        picks.sort()
        for i in range(users):
            sid = first_staff + i
            m = munis[picks[i]]
            active = rng.random() > 0.03
            staff_muni.append(m.id)
            staff_active.append(active)
            hired_year = fy if rng.random() < 0.05 else fy - rng.randint(1, 35)
            hired = date(hired_year, 4, 1) + timedelta(days=rng.randint(0, 30) if hired_year == fy else 0)
            name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
            yield (
                sid, m.id, f"S{run}{i:08d}", name, "", rng.choice(DEPARTMENTS),
                rng.choices(JOB_TITLES, weights=JOB_WEIGHTS)[0], "", "",
                "active" if active else "left", hired, None if active else now.date() - timedelta(days=30),
                SYNTH, None, now, now,
            )

    echo("staff …")
    summary["staff"] = writer.write(staff_table, [
        "id", "municipality_id", "employee_number", "full_name", "full_name_kana", "department", "job_title",
        "sign_in_name", "email", "status", "hired_on", "left_on", "source", "user_id", "created_at", "updated_at",
    ], staff_rows())
    writer.fix_sequence(staff_table)

    # -- courses, two sessions each (last year and this year), one archive video each
    course_table = table_of(Course)
    first_course = _next_id(course_table)
    course_mode: list[str] = []
    course_att: list[int] = []
    course_view: list[int] = []

    def course_rows():
        for i in range(courses):
            topic = TOPICS[i % len(TOPICS)]
            title = f"{topic}（{LEVELS[(i // len(TOPICS)) % len(LEVELS)]}）第{i // (len(TOPICS) * len(LEVELS)) + 1}期"
            mode = _weighted(rng, MODES)
            course_mode.append(mode)
            course_att.append(75)
            course_view.append(90)
            summary_text = f"{topic}を学ぶ合成データの研修です。"
            yield (first_course + i, title, summary_text, summary_text, True, False, "published",
                   normalise_for_search(f"{title} {summary_text} {summary_text}"), mode, 75, 90, now, now, now)

    echo("courses …")
    summary["courses"] = writer.write(course_table, [
        "id", "title", "summary", "description_md", "eligible_all", "requires_approval", "status", "search_text",
        "completion_mode", "attendance_threshold_pct", "viewing_threshold_pct", "published_at", "created_at",
        "updated_at",
    ], course_rows())
    writer.fix_sequence(course_table)

    session_table = table_of(TrainingSession)
    first_session = _next_id(session_table)
    session_times: list[tuple[datetime, datetime]] = []
    session_year: list[int] = []
    this_year_span = max((now - timedelta(days=1) - cur_start).total_seconds(), 3600)

    def session_rows():
        for i in range(courses):
            for k in range(2):
                if k == 0:
                    start = prev_start + timedelta(seconds=rng.uniform(0, (prev_end - prev_start).total_seconds() - 7200))
                else:
                    start = cur_start + timedelta(seconds=rng.uniform(0, this_year_span))
                start = start.replace(minute=0, second=0, microsecond=0)
                end = start + timedelta(minutes=90)
                session_times.append((start, end))
                session_year.append(fiscal_year_of(start))
                yield (first_session + 2 * i + k, first_course + i, f"第{k + 1}回", start, end, "teams", 0, 0,
                       start - timedelta(days=30), start - timedelta(hours=1), start - timedelta(hours=1),
                       "scheduled", now, now)

    echo("sessions …")
    summary["sessions"] = writer.write(session_table, [
        "id", "course_id", "title", "starts_at", "ends_at", "delivery", "capacity", "confirmed_count",
        "enroll_opens_at", "enroll_closes_at", "cancel_deadline", "status", "created_at", "updated_at",
    ], session_rows())
    writer.fix_sequence(session_table)

    archive_table, file_table = table_of(Archive), table_of(ArchiveFile)
    first_archive, first_file = _next_id(archive_table), _next_id(file_table)
    echo("archives …")
    writer.write(archive_table, ["id", "course_id", "title", "status", "published_at", "created_at", "updated_at"], (
        (first_archive + i, first_course + i, "録画", "published", now, now, now) for i in range(courses)
    ))
    summary["archive_files"] = writer.write(file_table, [
        "id", "archive_id", "kind", "filename", "content_type", "storage_key", "status", "duration_seconds",
        "duration_checked_at", "created_at",
    ], (
        (first_file + i, first_archive + i, "video", "recording.mp4", "video/mp4",
         f"synth/{run}/{first_file + i}.mp4", "ready", 5400, now, now) for i in range(courses)
    ))
    writer.fix_sequence(archive_table)
    writer.fix_sequence(file_table)

    # -- enrollments, attendance, viewing, completions: one pass over staff, streamed
    confirmed_per_session: dict[int, int] = {}
    enrollment_table = table_of(Enrollment)
    first_enrollment = _next_id(enrollment_table)
    per_staff = enrollments / users if users else 0
    if writer.postgres:
        db.session.commit()  # the other connections must see staff, sessions and files
    sinks = Sinks(writer, {
        "enrollment": (enrollment_table, [
            "id", "session_id", "staff_member_id", "municipality_id", "status", "source", "arrival_seq",
            "requested_at", "confirmed_at", "late_cancellation", "reason", "updated_at"]),
        "attendance": (table_of(Attendance), [
            "session_id", "staff_member_id", "source", "attended_seconds", "attended_pct", "attended",
            "intervals", "created_at", "updated_at"]),
        "viewing": (table_of(ViewingProgress), [
            "staff_member_id", "archive_file_id", "intervals", "watched_seconds",
            "last_position", "completed_at", "updated_at"]),
        "completion": (table_of(Completion), [
            "staff_member_id", "course_id", "municipality_id", "fiscal_year", "status", "method",
            "completed_at", "certificate_serial", "reason", "created_at", "updated_at"]),
    })
    json_value = (lambda v: v) if writer.postgres else json.loads

    def evaluate(staff_id, muni_id, course_idx, live_at, live_year, view_at):
        """The completion rule (lms.completion.services.evaluate_rule), per fiscal year:
        attendance counts in the year its session started, viewing in the year it was reached."""
        candidates: dict[int, dict[str, Basis]] = {}
        if live_at is not None:
            candidates.setdefault(live_year, {})["live"] = Basis(at=live_at)
        if view_at is not None:
            candidates.setdefault(fiscal_year_of(view_at), {})["archive"] = Basis(at=view_at)
        for year, got in candidates.items():
            verdict = evaluate_rule(course_mode[course_idx], got.get("live"), got.get("archive"))
            if verdict:
                method, basis, _secondary = verdict
                sinks.add("completion", (staff_id, first_course + course_idx, muni_id, year, "completed",
                                         method, basis.at, new_certificate_serial(year), "", now, now))

    echo("enrollments, attendance, viewing progress, completions …")
    t0 = time.monotonic()
    with sinks:
        eid = first_enrollment
        for i in range(users):
            staff_id = first_staff + i
            muni_id = staff_muni[i]
            k = min(courses, max(0, int(rng.gauss(per_staff, per_staff / 3 + 0.01) + 0.5)))
            if eid - first_enrollment + k > enrollments:
                k = max(0, enrollments - (eid - first_enrollment))
            for course_idx in rng.sample(range(courses), k):
                which = 0 if rng.random() < 0.4 else 1
                session_id = first_session + 2 * course_idx + which
                start, end = session_times[2 * course_idx + which]
                r = rng.random()
                status = "confirmed" if r < 0.88 else ("cancelled" if r < 0.95 else "waitlisted")
                sinks.add("enrollment", (eid, session_id, staff_id, muni_id, status, "self", eid,
                                         start - timedelta(days=20),
                                         start - timedelta(days=19) if status == "confirmed" else None,
                                         False, "", now))
                eid += 1
                live_at = view_at = None
                if status == "confirmed":
                    confirmed_per_session[session_id] = confirmed_per_session.get(session_id, 0) + 1
                    if rng.random() < 0.8:
                        pct = rng.randint(76, 100) if rng.random() < 0.75 else rng.randint(5, 74)
                        attended = pct >= course_att[course_idx]
                        sinks.add("attendance", (session_id, staff_id, "teams", 5400 * pct // 100, pct, attended,
                                                 json_value("[]"), now, now))
                        if attended:
                            live_at = end
                if rng.random() < 0.25:
                    pct = rng.randint(91, 100) if rng.random() < 0.7 else rng.randint(1, 89)
                    span = max((now - start).total_seconds(), 3 * 3601)
                    seen_at = min(start + timedelta(seconds=rng.uniform(3 * 3600, span)), now)
                    reached = seen_at if pct >= course_view[course_idx] else None
                    watched = 5400 * pct // 100
                    sinks.add("viewing", (staff_id, first_file + course_idx, json_value(f"[[0, {watched}]]"),
                                          watched, watched, reached, seen_at))
                    view_at = reached
                evaluate(staff_id, muni_id, course_idx, live_at, session_year[2 * course_idx + which], view_at)
    for key, n in sinks.counts.items():
        summary[key] = n
    echo(f"  {sinks.counts} in {time.monotonic() - t0:.1f} s")
    for table in (enrollment_table, table_of(Attendance), table_of(ViewingProgress), table_of(Completion)):
        writer.fix_sequence(table)
    # Seats: the counter kept by the enrollment service, and a capacity that holds it.
    db.session.execute(
        session_table.update().where(session_table.c.id == bindparam("sid")).values(
            confirmed_count=bindparam("n"), capacity=bindparam("cap")
        ),
        [{"sid": sid, "n": n, "cap": n + 20} for sid, n in confirmed_per_session.items()],
    )
    session_table_ids = [first_session + i for i in range(2 * courses) if first_session + i not in confirmed_per_session]
    if session_table_ids:
        db.session.execute(session_table.update().where(session_table.c.id.in_(session_table_ids)).values(capacity=20))

    # -- demo sign-in accounts to look at the result: a platform admin and one admin per municipality
    user_table = table_of(User)
    first_user = _next_id(user_table)
    tenant = str(uuid.uuid5(uuid.NAMESPACE_URL, f"synth/{run}"))
    user_rows = [(first_user, tenant, str(uuid.uuid4()), "合成データ 管理者", "", None, True, 1, True, now, now)]
    user_rows += [
        (first_user + 1 + i, tenant, str(uuid.uuid4()), f"合成データ 研修担当 {m.code}", "", m.id, True, 1, True, now, now)
        for i, m in enumerate(munis)
    ]
    writer.write(user_table, ["id", "tenant_id", "object_id", "display_name", "email", "municipality_id", "active",
                              "session_version", "is_demo", "created_at", "updated_at"], iter(user_rows))
    writer.fix_sequence(user_table)
    writer.write(table_of(UserRole), ["user_id", "role"], iter(
        [(first_user, PLATFORM_ADMIN)] + [(first_user + 1 + i, MUNICIPAL_ADMIN) for i in range(len(munis))]
    ))
    summary["admin_users"] = len(user_rows)
    # The dashboards' summaries: the rows above were written in bulk, publishing none of the
    # domain events that keep them in step, so they are computed once from the data.
    t0 = time.monotonic()
    n_course_rows, n_staff_rows = rebuild(db.session())
    echo(f"  dashboard summaries: {n_course_rows} course rows, {n_staff_rows} staff rows in "
         f"{time.monotonic() - t0:.1f} s")
    db.session.commit()
    if writer.postgres:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # VACUUM sets the visibility map, so that the reports' covering indexes answer
            # from the index alone; ANALYZE gives the planner the new sizes.
            conn.execute(text("VACUUM ANALYZE"))
    summary["seconds"] = int(time.monotonic() - started)
    return summary
