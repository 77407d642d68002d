"""Test data factories: plain functions that create and commit rows with sensible defaults."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import timedelta

from sqlalchemy import event, select

from lms.auth.models import ROLES, User
from lms.auth.session import open_session_record
from lms.common.timeutil import utcnow
from lms.courses.models import PUBLISHED, TEAMS, Course, CourseEligibility, SessionQuota, TrainingSession
from lms.courses.search import normalise_for_search
from lms.extensions import db
from lms.municipalities.models import Municipality, TenantMapping
from lms.roster.models import StaffMember

_seq = itertools.count(1)


def municipality(code: str = "131016") -> Municipality:
    m = db.session.scalar(select(Municipality).where(Municipality.code == code))
    assert m is not None, f"unknown municipality code {code}"
    return m


def tenant_for(code: str) -> str:
    """A stable tenant id per municipality for tests, mapped in tenant_mapping."""
    tid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"tenant/{code}"))
    if db.session.scalar(select(TenantMapping).where(TenantMapping.tenant_id == tid)) is None:
        db.session.add(TenantMapping(tenant_id=tid, mail_domain="", municipality=municipality(code), source="admin"))
        db.session.flush()
    return tid


def make_user(role: str | tuple | set = "learner", municipality_code: str = "131016", *, name: str | None = None,
              email: str | None = None, with_staff: bool = True, commit: bool = True, **kw) -> User:
    roles = {role} if isinstance(role, str) else set(role)
    assert roles <= set(ROLES), roles
    n = next(_seq)
    m = municipality(municipality_code)
    user = User(
        tenant_id=tenant_for(municipality_code),
        object_id=str(uuid.uuid4()),
        display_name=name or f"テスト 利用者{n}",
        email=email or f"user{n}@{municipality_code}.example.lg.jp",
        municipality=m,
        **kw,
    )
    user.set_roles(roles)
    db.session.add(user)
    db.session.flush()
    if with_staff:
        make_staff(municipality_code, user=user, full_name=user.display_name, commit=False)
    if commit:
        db.session.commit()
    return user


def make_staff(municipality_code: str = "131016", *, user: User | None = None, commit: bool = True, **kw) -> StaffMember:
    n = next(_seq)
    values = {
        "employee_number": f"E{n:06d}",
        "full_name": f"職員 {n}号",
        "full_name_kana": f"ショクイン {n}ゴウ",
        "department": "総務課",
        "job_title": "主事",
        "sign_in_name": (user.email if user else f"staff{n}@{municipality_code}.example.lg.jp").lower(),
        "email": user.email if user else f"staff{n}@{municipality_code}.example.lg.jp",
        "source": "manual",
    }
    values.update(kw)
    member = StaffMember(municipality=municipality(municipality_code), user=user, **values)
    if user is not None:
        member.entra_tenant_id = user.tenant_id
        member.entra_object_id = user.object_id
    db.session.add(member)
    db.session.flush()
    if commit:
        db.session.commit()
    return member


def make_course(*, title: str | None = None, eligible: list[str] | None = None, commit: bool = True, **kw) -> Course:
    n = next(_seq)
    values = {
        "title": title or f"テスト研修 {n}",
        "summary": "テスト用の研修です。",
        "description_md": "説明",
        "status": PUBLISHED,
        "published_at": utcnow(),
        "eligible_all": eligible is None,
    }
    values.update(kw)
    course = Course(**values)
    course.search_text = normalise_for_search(" ".join([course.title, course.summary or "", course.description_md or ""]))
    for code in eligible or []:
        course.eligibility.append(CourseEligibility(municipality=municipality(code)))
    db.session.add(course)
    db.session.flush()
    if commit:
        db.session.commit()
    return course


def make_session(course: Course | None = None, *, starts_in: timedelta = timedelta(days=14),
                 minutes: int = 90, capacity: int = 20, quotas: dict[str, int] | None = None,
                 commit: bool = True, **kw) -> TrainingSession:
    course = course or make_course(commit=False)
    start = utcnow().replace(microsecond=0) + starts_in
    values = {
        "title": "第1回",
        "starts_at": start,
        "ends_at": start + timedelta(minutes=minutes),
        "delivery": TEAMS,
        "capacity": capacity,
        "enroll_opens_at": utcnow() - timedelta(days=30),
        "enroll_closes_at": start - timedelta(hours=1),
        "cancel_deadline": start - timedelta(hours=1),
        "join_url": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_test%40thread.v2/0",
    }
    values.update(kw)
    session = TrainingSession(course=course, **values)
    db.session.add(session)  # before the municipality look-ups below autoflush
    for code, seats in (quotas or {}).items():
        session.quotas.append(SessionQuota(municipality=municipality(code), seats=seats))
    db.session.flush()
    if commit:
        db.session.commit()
    return session


def sign_in(client, user: User) -> str:
    """Put ``user`` in the client's session the way lms.auth.session.start_session does
    (its server-side record included); returns the record's id."""
    db.session.commit()  # (ends a read transaction whose snapshot SQLite would not let write)
    session_id = open_session_record(user, "demo")
    db.session.commit()
    now = int(time.time())
    with client.session_transaction() as sess:
        sess.clear()
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True
        sess["signed_in_at"] = now
        sess["last_seen"] = now
        sess["sid"] = session_id
        sess["auth_method"] = "demo"
    return session_id


def session_cookie(app, user: User) -> str:
    """The value of a session cookie signed in as ``user``, as the demo/Entra sign-in leaves it
    (its server-side record committed), for clients other than Flask's (requests, a browser)."""
    db.session.commit()  # (as in sign_in)
    session_id = open_session_record(user, "demo")
    db.session.commit()
    now = int(time.time())
    data = {"_user_id": user.get_id(), "_fresh": True, "signed_in_at": now, "last_seen": now,
            "sid": session_id, "auth_method": "demo"}
    return app.session_interface.get_signing_serializer(app).dumps(data)


def count_statements(func) -> int:
    """How many SQL statements ``func()`` sends (its cost must not grow with the data)."""
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        func()
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    return len(statements)
