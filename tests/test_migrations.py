"""One Alembic history upgrades an empty database to exactly the models' schema.

On both databases, whichever one the rest of the run uses: ``flask db upgrade`` then
``flask db check`` (the comparison of migrations/env.py, which leaves out the indexes
one database never gets) on an empty SQLite file and an empty PostgreSQL database.
"""

from __future__ import annotations

import ast
import shutil
import uuid

import pytest
from alembic import command
from flask_migrate import downgrade, migrate, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_ADMIN_URL, ROOT, require

MIGRATIONS = ROOT / "migrations"


def _postgresql_admin():
    admin = create_engine(make_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect():
            pass
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        require(False, f"PostgreSQL at {PG_ADMIN_URL}: {exc}")
    return admin


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    admin = _postgresql_admin()
    name = f"lms_migrate_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migrated_app(empty_database_url, tmp_path):
    from lms import create_app
    from lms.extensions import db

    app = create_app({"LMS_ENV": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url,
                      "LMS_STORAGE_DIR": str(tmp_path / "a")})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def test_upgrade_then_check_finds_nothing(migrated_app):
    """`flask db check` after `flask db upgrade`: env.py's comparison, as the command runs it."""
    result = migrated_app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    # The same comparison, with its finding in the failure message.
    config = migrated_app.extensions["migrate"].migrate.get_config(str(MIGRATIONS))
    command.check(config)


def test_migrate_writes_no_revision(migrated_app, tmp_path):
    """`flask db migrate` on an up-to-date database writes no revision (no bogus operations)."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    before = sorted(p.name for p in (directory / "versions").glob("*.py"))
    migrate(directory=str(directory), message="nothing")
    assert sorted(p.name for p in (directory / "versions").glob("*.py")) == before


def test_migrated_database_guards_and_downgrades(migrated_app):
    from lms.extensions import db

    dialect = db.engine.dialect.name
    # The migrated audit log refuses UPDATE and DELETE even in plain SQL.
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (occurred_at, actor_label, action, target_type, target_id, "
                          "ip_address, request_id, details) VALUES (CURRENT_TIMESTAMP, 'system', 'x', '', '', "
                          "'', '', '{}')"))
    for statement in ("UPDATE audit_log SET action = 'y'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    if dialect == "postgresql":
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")).scalar() == 1
    downgrade(directory=str(MIGRATIONS), revision="base")
    leftover = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert leftover == set()


def test_a_new_revision_spells_the_application_types_in_sqlalchemy(tmp_path):
    """A revision generated from the models (a history started afresh) imports nothing
    from the application: its column types are written as the SQLAlchemy types stored."""
    from lms import create_app
    from lms.extensions import db

    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    (directory / "versions").mkdir()
    app = create_app({"LMS_ENV": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'new.db'}",
                      "LMS_STORAGE_DIR": str(tmp_path / "a")})
    with app.app_context():
        migrate(directory=str(directory), message="everything")
        db.engine.dispose()
    (revision,) = (directory / "versions").glob("*.py")
    assert [m for m in _imported_modules(revision) if m == "lms" or m.startswith("lms.")] == []
    assert "sa.DateTime(timezone=True)" in revision.read_text(encoding="utf-8")


def _imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_revisions_do_not_import_the_application():
    """A revision carries its own SQL: it must not change when the application's code does."""
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted(MIGRATIONS.rglob("*.py"))
        for module in _imported_modules(path)
        if module == "lms" or module.startswith("lms.")
    ]
    assert offenders == []


def test_upload_reasons_survive_the_reason_codes_migration_both_ways(migrated_app):
    """a4c8e2f19b73: a reason stored as free text before the codes is kept (shown as it is);
    a downgrade writes the Japanese words of each code into the free text the older code shows."""
    from lms.archives.models import Archive, UploadSession
    from lms.auth.models import User
    from lms.common.timeutil import utcnow
    from lms.courses.models import Course
    from lms.extensions import db

    user = User(tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), display_name="t", email="t@example.jp")
    course = Course(title="研修", summary="", description_md="")
    archive = Archive(course=course, title="録画")
    db.session.add_all([user, course, archive])
    db.session.flush()
    common = {"archive_id": archive.id, "kind": "video", "filename": "v.webm", "declared_length": 1,
              "storage_key": "archives/x", "created_by_id": user.id, "status": "failed", "expires_at": utcnow()}
    db.session.add_all([UploadSession(id="old", error="昔の理由（自由記述）", **common),
                        UploadSession(id="new", error_code="checksum_mismatch", **common)])
    db.session.commit()
    db.session.remove()

    def reasons() -> dict[str, str]:
        with db.engine.connect() as conn:
            return dict(conn.execute(text("SELECT id, error FROM upload_session")).all())

    words = "ファイルの検証（SHA-256）に失敗しました。通信中に内容が変わった可能性があります。もう一度アップロードしてください。"
    downgrade(directory=str(MIGRATIONS), revision="b7e19d4c2a86")
    assert reasons() == {"old": "昔の理由（自由記述）", "new": words}
    upgrade(directory=str(MIGRATIONS))  # free text again, kept as it was
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, error_code, error_params, error FROM upload_session ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("new", "", None, words), ("old", "", None, "昔の理由（自由記述）")]


def test_the_unique_assignment_migration_keeps_one_of_each_set_of_copies(migrated_app):
    """f2a6c8e4b1d9: of mandatory assignments made twice (the same course, year and group, a
    blank 所属 or "every municipality" included), the first is kept with the copies' notes; the
    index then refuses another copy, and other groups stay."""
    from sqlalchemy.exc import IntegrityError

    from lms.courses.models import Course
    from lms.extensions import db
    from lms.municipalities.models import Municipality

    downgrade(directory=str(MIGRATIONS), revision="e7a3d5c2b914")
    db.session.add_all([Municipality(id=1, code="131016", name="千代田区", kana="ちよだく", kind="ku", sort_order=1),
                        Course(id=1, title="研修", summary="", description_md="")])
    db.session.commit()
    db.session.remove()
    columns = "course_id, fiscal_year, municipality_id, department, job_title, new_staff_fiscal_year, due_on, " \
              "created_at, note"
    rows = [  # id: (municipality, department, new staff's year, note)
        (101, 1, "", None, ""), (102, 1, "", None, "二度目"), (103, 1, "", None, "二度目"),  # one set of three
        (104, None, "", None, "全区市町村"), (105, None, "", None, ""),  # every municipality, twice
        (106, 1, "総務課", None, ""), (107, 1, "", 2026, ""),  # other groups
    ]
    with db.engine.begin() as conn:
        for id_, municipality, department, new_staff, note in rows:
            conn.execute(text(f"INSERT INTO mandatory_assignment (id, {columns}) VALUES (:id, 1, 2026, :m, :d, '', "
                              ":n, '2027-03-31', CURRENT_TIMESTAMP, :note)"),
                         {"id": id_, "m": municipality, "d": department, "n": new_staff, "note": note})
    upgrade(directory=str(MIGRATIONS))
    with db.engine.connect() as conn:
        kept = dict(conn.execute(text("SELECT id, note FROM mandatory_assignment ORDER BY id")).all())
    assert kept == {101: "二度目", 104: "全区市町村", 106: "", 107: ""}
    for municipality in (1, None):
        with pytest.raises(IntegrityError, match="UNIQUE constraint failed: mandatory_assignment.course_id|uq_mandatory_assignment_group"), db.engine.begin() as conn:
            conn.execute(text(f"INSERT INTO mandatory_assignment ({columns}) VALUES (1, 2026, :m, '', '', NULL, "
                              "'2027-03-31', CURRENT_TIMESTAMP, '')"), {"m": municipality})
    downgrade(directory=str(MIGRATIONS), revision="e7a3d5c2b914")
    with db.engine.begin() as conn:  # a copy is accepted again
        conn.execute(text(f"INSERT INTO mandatory_assignment ({columns}) VALUES (1, 2026, 1, '', '', NULL, "
                          "'2027-03-31', CURRENT_TIMESTAMP, '')"))


def test_the_search_text_migration_indexes_a_descriptions_words_as_the_code_does(migrated_app):
    """a9e4c1d7b352: a course indexed with its Markdown marks is indexed again by its words,
    exactly as refresh_search_text indexes a course saved now."""
    from lms.courses.models import Course
    from lms.courses.services import refresh_search_text
    from lms.extensions import db

    downgrade(directory=str(MIGRATIONS), revision="f2a6c8e4b1d9")
    description = "## 対象\n\n- **全**職員（[案内](https://example.com/guide)）\n\n| 日 | 内容 |\n|---|---|\n| 1 | えくせる |"
    db.session.add(Course(id=1, title="文書管理研修", summary="基本", description_md=description,
                          search_text=description))  # (the schema is the same before and after)
    db.session.commit()
    db.session.remove()
    upgrade(directory=str(MIGRATIONS))
    with db.engine.connect() as conn:
        migrated = conn.execute(text("SELECT search_text FROM course WHERE id = 1")).scalar_one()
    assert "#" not in migrated and "**" not in migrated and "example.com" not in migrated
    assert "全職員" in migrated and "エクセル" in migrated
    course = db.session.get(Course, 1)
    refresh_search_text(course)
    assert course.search_text == migrated
    db.session.rollback()


def test_the_quota_holders_migration_counts_people_confirmed_before_the_quota(migrated_app):
    """a7c4e2b9d051: a 割当 added after some of its municipality's people were confirmed counted
    none of them (their cancellation then broke the quota's CHECK): each row counts its holders,
    its seats raised to them where it was set below them; a right row stays as it was."""
    from datetime import timedelta

    from lms.common.timeutil import utcnow
    from lms.courses.models import Course, SessionQuota, TrainingSession
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import StaffMember

    downgrade(directory=str(MIGRATIONS), revision="5d2b9e7c4a13")
    places = [Municipality(id=i, code=code, name=name, kana=kana, kind="ku", sort_order=i)
              for i, (code, name, kana) in enumerate([("131016", "千代田区", "ちよだく"), ("131024", "中央区", "ちゅうおうく"),
                                                       ("131032", "港区", "みなとく")], start=1)]
    start = utcnow().replace(microsecond=0) + timedelta(days=7)
    session = TrainingSession(id=1, course=Course(id=1, title="研修", summary="", description_md=""), title="第1回",
                              starts_at=start, ends_at=start + timedelta(hours=2), capacity=10, confirmed_count=4)
    db.session.add_all([*places, session])
    db.session.flush()
    people = [(1, CONFIRMED), (1, CONFIRMED), (1, WAITLISTED), (2, CONFIRMED), (3, CONFIRMED)]
    for n, (mid, status) in enumerate(people, start=1):
        member = StaffMember(id=n, municipality_id=mid, employee_number=f"E{n}", full_name=f"職員{n}",
                             full_name_kana="ショクイン", sign_in_name=f"s{n}@example.lg.jp", email=f"s{n}@example.lg.jp")
        db.session.add(member)
        db.session.flush()
        db.session.add(Enrollment(session_id=1, staff_member_id=n, municipality_id=mid, status=status, arrival_seq=n))
    db.session.add_all([SessionQuota(session_id=1, municipality_id=1, seats=1, confirmed_count=0),  # set below its 2
                        SessionQuota(session_id=1, municipality_id=2, seats=3, confirmed_count=0),  # counted none
                        SessionQuota(session_id=1, municipality_id=3, seats=2, confirmed_count=1)])  # right
    db.session.commit()
    db.session.remove()
    upgrade(directory=str(MIGRATIONS))
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT municipality_id, seats, confirmed_count FROM session_quota ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [(1, 2, 2), (2, 3, 1), (3, 2, 1)]


def test_the_duplicate_report_migration_merges_a_meetings_two_downloads(migrated_app):
    """b6d1e8a3c5f2: a meeting's report imported as the Japanese and the English file (before
    the import keyed records by the meeting) is one report again: the first kept, the copy's
    records of the same people with the same times gone (a hand match kept), a person only the
    copy has moved into the first. Nobody's times change. A copy with someone matched to
    someone else, another meeting's report, and a Graph report stay as they are."""
    from datetime import UTC, datetime

    from lms.attendance.models import AttendanceRecord
    from lms.auth.models import User
    from lms.courses.models import Course, TrainingSession
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import StaffMember

    downgrade(directory=str(MIGRATIONS), revision="b3f7d2a96c14")
    start = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    course = Course(id=1, title="防災研修", summary="", description_md="")
    db.session.add_all([
        Municipality(id=1, code="131016", name="千代田区", kana="ちよだく", kind="ku", sort_order=1), course,
        User(id=7, tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), display_name="研修担当", email="t@example.jp"),
        *[TrainingSession(id=n, course=course, starts_at=start, ends_at=start.replace(hour=6, minute=30)) for n in (1, 2, 3)],
        *[StaffMember(id=n, municipality_id=1, employee_number=f"E{n}", full_name=name)
          for n, name in ((1, "佐藤 花子"), (2, "鈴木 一郎"), (3, "田中 次郎"))]])
    db.session.flush()
    sato = [["2026-12-01T04:59:00+00:00", "2026-12-01T06:30:00+00:00"]]
    suzuki = [["2026-12-01T05:10:00+00:00", "2026-12-01T05:40:00+00:00"], ["2026-12-01T05:50:00+00:00", "2026-12-01T06:20:00+00:00"]]
    tanaka = [["2026-12-01T05:20:00+00:00", "2026-12-01T06:00:00+00:00"]]

    def record(id_, session, report, index, email, name, times, staff, how="email", by=None):
        return AttendanceRecord(id=id_, session_id=session, report_id=report, record_id=str(index), email=email,
                                display_name=name, role="出席者", total_seconds=0, intervals=times, raw={},
                                staff_member_id=staff, matched_by=how, matched_by_user_id=by)

    db.session.add_all([
        # Session 1: the Japanese file (Tanaka left out), then the English one (Suzuki and Tanaka matched by hand).
        record(1, 1, "file:ja", 0, "sato@example.lg.jp", "佐藤 花子", sato, 1),
        record(2, 1, "file:ja", 1, "suzuki@example.lg.jp", "鈴木 一郎", suzuki, 2),
        record(3, 1, "file:en", 0, "sato@example.lg.jp", "佐藤 花子", sato, 1),
        record(4, 1, "file:en", 1, "SUZUKI@example.lg.jp", "鈴木 一郎", suzuki, 2, "manual", 7),
        record(5, 1, "file:en", 2, "", "田中　次郎", tanaka, 3, "manual", 7),
        # Session 2: the copy matched Sato to Suzuki by hand; another meeting (other times); a Graph report.
        record(11, 2, "file:ja2", 0, "sato@example.lg.jp", "佐藤 花子", sato, 1),
        record(12, 2, "file:en2", 0, "sato@example.lg.jp", "佐藤 花子", sato, 2, "manual", 7),
        record(13, 2, "file:other", 0, "sato@example.lg.jp", "佐藤 花子", tanaka, 1),
        record(14, 2, "graph-report", "g1", "sato@example.lg.jp", "佐藤 花子", sato, 1),
    ])
    db.session.commit()
    db.session.remove()

    def state():
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, session_id, report_id, record_id, staff_member_id, matched_by, "
                                     "matched_by_user_id, intervals FROM attendance_record ORDER BY id")).all()
        times: dict[tuple, set] = {}
        for row in rows:
            spans = row.intervals if isinstance(row.intervals, list) else __import__("json").loads(row.intervals)
            times.setdefault((row.session_id, row.staff_member_id), set()).update(tuple(s) for s in spans)
        return {row.id: tuple(row[2:7]) for row in rows}, times

    before, times_before = state()
    upgrade(directory=str(MIGRATIONS))
    after, times_after = state()
    assert times_after == times_before  # nobody's minutes change
    assert after == {
        1: ("file:ja", "0", 1, "email", None),
        2: ("file:ja", "1", 2, "manual", 7),  # the copy's hand match kept
        5: ("file:ja", "2", 3, "manual", 7),  # only the copy had Tanaka
        **{id_: before[id_] for id_ in (11, 12, 13, 14)},
    }
    upgrade(directory=str(MIGRATIONS))  # (nothing further to do)
    downgrade(directory=str(MIGRATIONS), revision="b3f7d2a96c14")
    assert state()[0] == after
