"""Approval requests to the training office: one notice each, then the daily digest when there are
many, and a reminder of requests waiting N working days (weekends, holidays and 年末年始 not counted)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from lms.common.timeutil import TOKYO, as_utc
from lms.common.workdays import is_working_day, working_days_between
from lms.enrollment import services as enrollment_services
from lms.enrollment.models import Enrollment
from lms.notifications.approvals import DIGEST, queue_approver_digests
from lms.notifications.models import QUEUED, SKIPPED, OutboxMail
from lms.notifications.services import HELD_FOR_DIGEST, deliver_due_mail

MONDAY_MORNING = datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LMS_APPROVAL_DIGEST_THRESHOLD": 2, "LMS_APPROVAL_REMINDER_DAYS": 3}


@pytest.mark.parametrize(("start", "end", "days"), [
    (date(2026, 12, 4), date(2026, 12, 7), 1),   # Friday → Monday
    (date(2026, 12, 25), date(2027, 1, 5), 3),   # 28 Dec, then the closure 29 Dec–3 Jan, then 4 and 5 Jan
    (date(2026, 5, 1), date(2026, 5, 7), 1),     # 憲法記念日 on a Sunday: 6 May is 振替休日
    (date(2026, 9, 18), date(2026, 9, 24), 1),   # 敬老の日 21 Sep, 国民の休日 22 Sep, 秋分の日 23 Sep
    (date(2026, 12, 7), date(2026, 12, 7), 0),
    (date(2026, 12, 8), date(2026, 12, 7), 0),
])
def test_working_days_are_those_of_a_public_office(start, end, days):
    assert working_days_between(start, end) == days


def test_working_days():
    assert is_working_day(date(2026, 12, 28)) and not is_working_day(date(2026, 12, 29))
    assert not is_working_day(date(2027, 1, 1)) and not is_working_day(date(2027, 1, 3))
    assert not is_working_day(date(2026, 11, 3))  # 文化の日
    assert not is_working_day(date(2026, 12, 5))  # Saturday


@pytest.fixture
def office(db, make_user):
    return make_user("municipal_admin", name="研修担当 高橋")


@pytest.fixture
def approval_session(db, make_course, make_session):
    return make_session(make_course(title="情報セキュリティ研修", requires_approval=True))


def request(db, session, name):
    from tests.factories import make_user

    learner = make_user("learner", name=name)
    enrollment = enrollment_services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    return enrollment


def approval_rows(db, user_id):
    db.session.expire_all()
    return db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "approval", OutboxMail.user_id == user_id)
                              .order_by(OutboxMail.id)).all()


def test_after_the_days_threshold_requests_wait_for_the_digest(db, office, approval_session, make_user):
    other_office = make_user("municipal_admin", "131024")
    for name in ("青木 一郎", "井上 二郎", "上田 三郎"):
        request(db, approval_session, name)
    rows = approval_rows(db, office.id)
    assert [r.status for r in rows] == [QUEUED, QUEUED, SKIPPED]
    assert rows[2].last_error == HELD_FOR_DIGEST
    report = deliver_due_mail()
    assert {r.id for r in rows[:2]} <= set(report.sent) and rows[2].id not in report.sent

    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 1
    db.session.commit()
    [digest] = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == DIGEST)).all()
    assert digest.user_id == office.id and digest.to_address == office.email
    assert digest.subject.endswith("承認待ちの申込 3 件")
    body = digest.body_text
    assert "研修担当 高橋 様" in body and "うち 1 件は、まだお知らせしていない新しい申込です。" in body
    assert "［新着］上田 三郎 さん「情報セキュリティ研修 第1回」" in body
    assert body.index("青木 一郎") < body.index("上田 三郎")  # oldest first
    assert "/municipal" in body
    assert approval_rows(db, office.id)[2].last_error == "told in the approver's digest of 2026-12-07"
    assert other_office.id not in {m.user_id for m in db.session.scalars(select(OutboxMail))}
    # Once a day, however often the task runs.
    assert queue_approver_digests(as_utc(MONDAY_MORNING + timedelta(hours=2))) == 0


def test_the_digest_reminds_of_requests_waiting_n_working_days(db, office, approval_session):
    old = request(db, approval_session, "青木 一郎")
    fresh = request(db, approval_session, "井上 二郎")
    # Requested on Tuesday 1 Dec and on Friday 4 Dec: by Monday 7 Dec they have waited 4 and 1
    # working days.
    db.session.get(Enrollment, old.id).requested_at = as_utc(datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))
    db.session.get(Enrollment, fresh.id).requested_at = as_utc(datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO))
    db.session.commit()
    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 1
    db.session.commit()
    [digest] = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == DIGEST)).all()
    assert "うち 1 件は、申込から 3 開庁日以上たっています。" in digest.body_text
    assert "［4 開庁日経過］青木 一郎" in digest.body_text
    assert "］井上 二郎" not in digest.body_text and "井上 二郎" in digest.body_text


def test_no_digest_without_anything_new_or_overdue_nor_out_of_hours(db, office, approval_session):
    request(db, approval_session, "青木 一郎")  # told on its own, waited 0 days
    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 0
    for when in (datetime(2026, 12, 7, 8, 0, tzinfo=TOKYO),     # before 08:30
                 datetime(2026, 12, 12, 9, 0, tzinfo=TOKYO),    # Saturday
                 datetime(2027, 1, 4, 8, 29, tzinfo=TOKYO)):
        enrollment = db.session.scalar(select(Enrollment))
        enrollment.requested_at = as_utc(datetime(2026, 11, 2, tzinfo=TOKYO))  # long overdue
        db.session.commit()
        assert queue_approver_digests(as_utc(when)) == 0, when


def test_a_decided_request_leaves_the_digest(db, office, approval_session):
    first = request(db, approval_session, "青木 一郎")
    request(db, approval_session, "井上 二郎")
    held = request(db, approval_session, "上田 三郎")
    enrollment_services.approve_enrollment(held.id, office)
    enrollment_services.approve_enrollment(first.id, office)
    db.session.commit()
    # Left: 井上 (told on its own, not overdue): nothing to digest.
    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 0
