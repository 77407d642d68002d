"""course.next_session_at: kept by the database on every session write, trusted by the
catalogue only while it is in the future (both databases)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from lms.common.timeutil import utcnow
from lms.courses.catalogue import CatalogueFilters, catalogue_page, catalogue_select
from lms.courses.models import CANCELLED, Course, TrainingSession
from lms.courses.tasks import refresh_next_sessions
from lms.extensions import db
from tests import factories
from tests.conftest import DB_KIND


def _stored(course_id: int):
    db.session.commit()
    return db.session.scalar(select(Course.next_session_at).where(Course.id == course_id))


def _starts(session_id: int):
    return db.session.scalar(select(TrainingSession.starts_at).where(TrainingSession.id == session_id))


def test_every_kind_of_session_write_keeps_the_course_s_next_session(db):
    course = factories.make_course(title="連続講座")
    assert _stored(course.id) is None
    later = factories.make_session(course, starts_in=timedelta(days=20))
    assert _stored(course.id) == _starts(later.id)
    sooner = factories.make_session(course, starts_in=timedelta(days=5))
    assert _stored(course.id) == _starts(sooner.id)
    factories.make_session(course, starts_in=timedelta(days=-3))  # already held: not "next"
    assert _stored(course.id) == _starts(sooner.id)

    # Moving, cancelling and deleting sessions, through plain SQL as much as the ORM.
    db.session.execute(update(TrainingSession).where(TrainingSession.id == sooner.id)
                       .values(starts_at=utcnow().replace(microsecond=0) + timedelta(days=30),
                               ends_at=utcnow().replace(microsecond=0) + timedelta(days=30, hours=1)))
    assert _stored(course.id) == _starts(later.id)
    db.session.execute(update(TrainingSession).where(TrainingSession.id == later.id).values(status=CANCELLED))
    assert _stored(course.id) == _starts(sooner.id)
    db.session.execute(text("DELETE FROM training_session WHERE id = :id"), {"id": sooner.id})
    assert _stored(course.id) is None

    # A session moved to another course changes both courses.
    other = factories.make_course(title="別の講座")
    moved = factories.make_session(course, starts_in=timedelta(days=8))
    assert _stored(course.id) == _starts(moved.id) and _stored(other.id) is None
    db.session.execute(update(TrainingSession).where(TrainingSession.id == moved.id).values(course_id=other.id))
    assert _stored(course.id) is None and _stored(other.id) == _starts(moved.id)


def test_enrollment_counters_do_not_touch_the_course(db):
    session = factories.make_session(starts_in=timedelta(days=3))
    stored = _stored(session.course_id)
    db.session.execute(text("UPDATE course SET next_session_at = NULL WHERE id = :id"), {"id": session.course_id})
    db.session.execute(update(TrainingSession).where(TrainingSession.id == session.id)
                       .values(confirmed_count=1, capacity=30))
    # The counters and capacity are not the trigger's columns: nothing recomputed.
    assert _stored(session.course_id) is None and stored is not None


def test_a_next_session_that_has_started_is_worked_out_until_the_worker_moves_it_on(db):
    first = factories.make_course(title="A 先に始まった講座")
    started = factories.make_session(first, starts_in=timedelta(days=2))
    following = factories.make_session(first, starts_in=timedelta(days=9))
    second = factories.make_course(title="B 一週間後の講座")
    factories.make_session(second, starts_in=timedelta(days=7))
    # Time passes: the stored session of the first course has started (simulated by moving it
    # into the past behind the triggers' back).
    past = utcnow().replace(microsecond=0) - timedelta(minutes=10)
    db.session.execute(text("UPDATE training_session SET starts_at = :s, ends_at = :e WHERE id = :id").bindparams(),
                       {"s": _db_time(past), "e": _db_time(past + timedelta(hours=1)), "id": started.id})
    db.session.execute(text("UPDATE course SET next_session_at = :s WHERE id = :id"),
                       {"s": _db_time(past), "id": first.id})
    db.session.commit()
    _pagination, rows = catalogue_page(CatalogueFilters(), None)
    assert [r.course.title for r in rows] == ["B 一週間後の講座", "A 先に始まった講座"]
    assert rows[1].figures.next_start == _starts(following.id)
    stmt, params = catalogue_select(CatalogueFilters(), None)
    assert list(db.session.scalars(stmt, params)) == [second.id, first.id]

    assert refresh_next_sessions() == 1
    assert _stored(first.id) == _starts(following.id)
    assert refresh_next_sessions() == 0


def test_lms_synth_style_bulk_insert_is_kept_too(db):
    from sqlalchemy import insert
    course = factories.make_course(title="一括登録")
    start = utcnow().replace(microsecond=0)
    db.session.execute(insert(TrainingSession), [
        {"course_id": course.id, "title": f"第{i}回", "starts_at": start + timedelta(days=d),
         "ends_at": start + timedelta(days=d, hours=2), "capacity": 10}
        for i, d in enumerate((12, 4, 30), start=1)])
    assert _stored(course.id) == start + timedelta(days=4)


@pytest.mark.skipif(DB_KIND != "postgresql", reason="concurrent writers: PostgreSQL (SQLite writes one at a time)")
def test_two_transactions_adding_sessions_to_one_course_leave_the_earliest(app, db):
    course = factories.make_course(title="同時追加")
    factories.make_session(course, starts_in=timedelta(days=40))
    course_id, engine = course.id, db.engine
    start = utcnow().replace(microsecond=0)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def add(days: int, wait_before: float, hold: float) -> None:
        try:
            with engine.begin() as conn:
                barrier.wait(timeout=10)
                conn.execute(text("SELECT pg_sleep(:s)"), {"s": wait_before})
                conn.execute(TrainingSession.__table__.insert().values(
                    course_id=course_id, title=f"{days}日後", starts_at=start + timedelta(days=days),
                    ends_at=start + timedelta(days=days, hours=1), capacity=5))
                conn.execute(text("SELECT pg_sleep(:s)"), {"s": hold})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # The earlier session's transaction inserts first and holds on; the later one's trigger
    # waits for the course row, then must see the earlier session (committed after its own
    # transaction began) and keep it.
    threads = [threading.Thread(target=add, args=(3, 0.0, 0.5)), threading.Thread(target=add, args=(10, 0.2, 0.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _stored(course_id) == start + timedelta(days=3)


def _db_time(value):
    """A UTC datetime as this database stores it (naive text on SQLite)."""
    if DB_KIND == "sqlite":
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
