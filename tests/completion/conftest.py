"""Helpers for the completion tests: attendance, viewing and enrollment rows, and signals."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from lms.archives.models import READY, VIDEO, Archive, ArchiveFile, ViewingProgress
from lms.attendance.models import Attendance
from lms.common.signals import attendance_changed, enrollment_status_changed, viewing_changed
from lms.common.timeutil import TOKYO, utcnow
from lms.enrollment.models import CONFIRMED, PENDING, WAITLISTED, Enrollment

_keys = itertools.count(1)
NOTICES = {CONFIRMED: "confirmed", WAITLISTED: "waitlisted", PENDING: "pending"}


def tokyo(y, m, d, hh=10, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TOKYO)


@pytest.fixture
def attend(db):
    """attend(staff, session, pct) → Attendance row (attended by the course threshold), signal sent."""

    def _attend(staff, session, pct: int = 100, *, send: bool = True):
        row = db.session.query(Attendance).filter_by(session_id=session.id, staff_member_id=staff.id).one_or_none()
        if row is None:
            row = Attendance(session_id=session.id, staff_member_id=staff.id, source="manual")
            db.session.add(row)
        row.attended_pct = pct
        row.attended = pct >= session.course.attendance_threshold_pct
        row.attended_seconds = int(session.duration_seconds * pct / 100)
        db.session.flush()
        if send:
            attendance_changed.send(None, staff_member_id=staff.id, session_id=session.id)
        db.session.commit()
        return row

    return _attend


@pytest.fixture
def make_video(db):
    def _video(course, duration: int = 600):
        archive = Archive(course_id=course.id, title=f"{course.title} 録画", status="published")
        db.session.add(archive)
        db.session.flush()
        video = ArchiveFile(
            archive_id=archive.id, kind=VIDEO, filename="v.mp4", content_type="video/mp4",
            storage_key=f"test/{next(_keys)}.mp4", status=READY, duration_seconds=duration, duration_checked_at=utcnow(),
        )
        db.session.add(video)
        db.session.commit()
        return video

    return _video


@pytest.fixture
def watch(db):
    """watch(staff, video, pct, at=None) → ViewingProgress; viewing_changed sent."""

    def _watch(staff, video, pct: int, at: datetime | None = None, *, send: bool = True):
        row = db.session.query(ViewingProgress).filter_by(
            staff_member_id=staff.id, archive_file_id=video.id
        ).one_or_none()
        if row is None:
            row = ViewingProgress(staff_member_id=staff.id, archive_file_id=video.id)
            db.session.add(row)
        duration = video.duration_seconds
        row.watched_seconds = duration * pct // 100
        row.intervals = [[0, row.watched_seconds]]
        row.completed_at = (at or utcnow()) if pct >= 90 else None
        row.updated_at = at or utcnow()
        db.session.flush()
        if send:
            viewing_changed.send(None, staff_member_id=staff.id, archive_id=video.archive_id)
        db.session.commit()
        return row

    return _watch


@pytest.fixture
def enroll(db):
    """enroll(staff, session, status) → Enrollment written directly (sessions long past
    included); enrollment_status_changed sent as the enrollment area does."""

    def _enroll(staff, session, status: str = CONFIRMED):
        row = Enrollment(
            session_id=session.id, staff_member_id=staff.id, municipality_id=staff.municipality_id,
            status=status, arrival_seq=next(_keys), confirmed_at=utcnow() if status == CONFIRMED else None,
        )
        db.session.add(row)
        db.session.flush()
        enrollment_status_changed.send(row, old_status=None, new_status=status, actor=None,
                                       notice=NOTICES.get(status), position=None)
        db.session.commit()
        return row

    return _enroll


@pytest.fixture
def past_session(make_session):
    """A session that already happened (default 10 days ago), or at a given aware time."""

    def _session(course, at: datetime | None = None, minutes: int = 60):
        if at is None:
            return make_session(course, starts_in=-timedelta(days=10), minutes=minutes,
                                enroll_opens_at=utcnow() - timedelta(days=40))
        start = at
        return make_session(
            course, starts_at=start, ends_at=start + timedelta(minutes=minutes),
            enroll_opens_at=start - timedelta(days=30), enroll_closes_at=start - timedelta(hours=1),
            cancel_deadline=start - timedelta(hours=1),
        )

    return _session


@pytest.fixture
def known_data(db, make_course, make_staff, make_user, make_session, make_video, attend, watch, enroll):
    """A small data set with known numbers, in 千代田区 (131016) and 中央区 (131024).

    Course A (attendance, 75%): s1 attends 100% (completes), s2 attends 50%, s3 only enrolled,
    s5 (中央区) attends 100%. Course B (archive): s3 watches the whole video.
    s4 (企画課, hired this fiscal year) never signed in and did nothing.
    Mandatory: A for all of 千代田区 (due yesterday), B for staff hired this fiscal year.
    """
    from datetime import date

    from lms.common.timeutil import fiscal_year_bounds, to_tokyo
    from lms.completion.models import MandatoryAssignment

    fy = fiscal_year_of_now()
    start, _end = fiscal_year_bounds(fy)
    course_a = make_course(title="Teams 会議の基本", completion_mode="attendance")
    course_b = make_course(title="=HYPERLINK(\"http://evil\")研修", completion_mode="archive")
    session_start = start + timedelta(hours=2)
    session = make_session(
        course_a, starts_at=session_start, ends_at=session_start + timedelta(hours=1),
        enroll_opens_at=session_start - timedelta(days=30), enroll_closes_at=session_start - timedelta(hours=1),
        cancel_deadline=session_start - timedelta(hours=1), capacity=50,
    )
    u1 = make_user("learner", name="佐藤 花子")
    s1 = u1.staff_member
    s1.department, s1.job_title = "総務課", "主事"
    s2 = make_staff(full_name="鈴木 一郎", department="総務課", job_title="主任")
    s3 = make_staff(full_name="髙橋 次郎", department="企画課", job_title="主事")
    s4 = make_staff(full_name="田中 新人", department="企画課", job_title="主事",
                    hired_on=to_tokyo(start).date() + timedelta(days=1))
    s5 = make_staff("131024", full_name="中央 太郎", department="総務課", job_title="主事")
    for s in (s1, s2, s3, s5):
        enroll(s, session)
    attend(s1, session, 100)
    attend(s2, session, 50)
    attend(s5, session, 100)
    watch(s3, make_video(course_b), 100)
    yesterday = to_tokyo(utcnow()).date() - timedelta(days=1)
    chiyoda = s1.municipality_id
    a1 = MandatoryAssignment(course_id=course_a.id, fiscal_year=fy, municipality_id=chiyoda, due_on=yesterday)
    a2 = MandatoryAssignment(course_id=course_b.id, fiscal_year=fy, municipality_id=chiyoda,
                             new_staff_fiscal_year=fy, due_on=date(fy + 1, 3, 31))
    db.session.add_all([a1, a2])
    db.session.commit()
    return {
        "fy": fy, "a": course_a, "b": course_b, "session": session, "staff": [s1, s2, s3, s4, s5],
        "learner": u1, "chiyoda": chiyoda, "chuo": s5.municipality_id, "mandatory": [a1, a2],
    }


def fiscal_year_of_now() -> int:
    from lms.common.timeutil import fiscal_year_of

    return fiscal_year_of(utcnow())


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the dashboard summaries equal to a fresh aggregate."""
