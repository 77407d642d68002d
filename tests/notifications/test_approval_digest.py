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


# ---------------------------------------------------------------- the 所属長's digest


@pytest.fixture
def heads(db, make_user):
    """The 所属長 and deputy of 総務課 (the learners' 所属), and a head of another 所属."""
    head = make_user("learner", name="総務課長 佐藤")
    head.staff_member.department_head = True
    deputy = make_user("learner", name="総務課長代理 鈴木")
    deputy.staff_member.deputy_head = True
    other_head = make_user("learner", name="税務課長 田中")
    other_head.staff_member.department = "税務課"
    other_head.staff_member.department_head = True
    db.session.commit()
    return {"head": head, "deputy": deputy, "other_head": other_head}


@pytest.fixture
def supervisor_session(db, make_course, make_session):
    return make_session(make_course(title="政策形成研修", supervisor_approval=True, requires_approval=True))


def requested_on(db, enrollment, when: datetime) -> None:
    db.session.get(Enrollment, enrollment.id).requested_at = as_utc(when)
    db.session.commit()


def digests(db) -> dict[str, OutboxMail]:
    """The digests queued so far, by recipient address."""
    db.session.expire_all()
    return {m.to_address: m for m in db.session.scalars(select(OutboxMail).where(OutboxMail.kind == DIGEST))}


def test_a_head_is_reminded_after_n_working_days_weekends_and_holidays_not_counted(db, heads, office,
                                                                                   supervisor_session):
    from lms.enrollment.models import SUPERVISOR_STEP

    heads["deputy"].staff_member.deputy_head = False
    db.session.commit()
    waiting = request(db, supervisor_session, "青木 一郎")
    assert waiting.approval_step == SUPERVISOR_STEP
    # Requested on Thursday 19 Nov; 21–22 Nov is a weekend and 23 Nov 勤労感謝の日: by Tuesday 24 Nov
    # it has waited two working days (five calendar days), by Wednesday 25 Nov three.
    requested_on(db, waiting, datetime(2026, 11, 19, 10, 0, tzinfo=TOKYO))
    assert queue_approver_digests(as_utc(datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO))) == 0
    assert queue_approver_digests(as_utc(datetime(2026, 11, 25, 9, 0, tzinfo=TOKYO))) == 1
    db.session.commit()
    [digest] = digests(db).values()
    head = heads["head"]
    assert (digest.user_id, digest.staff_member_id, digest.to_address) == (head.id, head.staff_member.id, head.email)
    assert digest.dedupe_key == f"{DIGEST}:{head.id}:2026-11-25"
    assert "総務課長 佐藤 様" in digest.body_text
    assert "［3 開庁日経過］青木 一郎 さん「政策形成研修 第1回」" in digest.body_text
    assert "/approvals" in digest.body_text and "/municipal" not in digest.body_text
    # Once a day however often the task runs; the next working day it reminds again.
    assert queue_approver_digests(as_utc(datetime(2026, 11, 25, 15, 0, tzinfo=TOKYO))) == 0
    assert queue_approver_digests(as_utc(datetime(2026, 11, 26, 8, 30, tzinfo=TOKYO))) == 1
    db.session.commit()
    assert len(db.session.scalars(select(OutboxMail).where(OutboxMail.kind == DIGEST)).all()) == 2


def test_a_heads_held_requests_go_in_their_digest(db, heads, office, supervisor_session, make_staff):
    heads["deputy"].staff_member.deputy_head = False
    # A deputy on the roster only (no account): reached at the roster's address.
    roster_deputy = make_staff(full_name="総務課長補佐 中村", deputy_head=True)
    for name in ("青木 一郎", "井上 二郎", "上田 三郎"):
        enrollment = request(db, supervisor_session, name)
        requested_on(db, enrollment, datetime(2026, 12, 4, 10, 0, tzinfo=TOKYO))
    held = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "approval", OutboxMail.status == SKIPPED)
                              .order_by(OutboxMail.id)).all()
    # LMS_APPROVAL_DIGEST_THRESHOLD (2) reached: the third request waits for the digest, for both.
    assert [(m.user_id, m.staff_member_id) for m in held] == [
        (heads["head"].id, heads["head"].staff_member.id), (None, roster_deputy.id)]
    assert all(m.last_error == HELD_FOR_DIGEST for m in held)

    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 2
    db.session.commit()
    sent = digests(db)
    assert set(sent) == {heads["head"].email, roster_deputy.email}  # not the office: nothing is at its step
    by_roster = sent[roster_deputy.email]
    assert by_roster.user_id is None and by_roster.staff_member_id == roster_deputy.id
    assert by_roster.dedupe_key == f"{DIGEST}:s{roster_deputy.id}:2026-12-07"
    for digest in sent.values():
        assert digest.subject.endswith("承認待ちの申込 3 件")
        assert "うち 1 件は、まだお知らせしていない新しい申込です。" in digest.body_text
        assert "［新着］上田 三郎 さん「政策形成研修 第1回」" in digest.body_text
        assert digest.body_text.index("青木 一郎") < digest.body_text.index("上田 三郎")
        assert "承認・却下は所属長の承認画面から行えます：" in digest.body_text and "/approvals" in digest.body_text
    db.session.expire_all()
    assert {db.session.get(OutboxMail, m.id).last_error for m in held} == {
        "told in the approver's digest of 2026-12-07"}
    assert queue_approver_digests(as_utc(MONDAY_MORNING + timedelta(hours=3))) == 0


def test_deputies_and_stand_ins_of_today_get_the_digest_too(db, heads, office, supervisor_session, make_user):
    from lms.enrollment.models import ApprovalDelegation

    stand_in = make_user("learner", name="企画課 主査 山本")
    stand_in.staff_member.department = "企画課"
    gone = make_user("learner", name="企画課 主任 小林")
    gone.staff_member.department = "企画課"
    later = make_user("learner", name="企画課 主事 加藤")
    later.staff_member.department = "企画課"
    head_id = heads["head"].staff_member.id
    db.session.add_all([
        ApprovalDelegation(delegator_id=head_id, delegate_id=stand_in.staff_member.id,
                           starts_on=date(2026, 12, 7), ends_on=date(2026, 12, 11)),
        ApprovalDelegation(delegator_id=head_id, delegate_id=gone.staff_member.id,  # ended on Friday
                           starts_on=date(2026, 11, 30), ends_on=date(2026, 12, 4)),
        ApprovalDelegation(delegator_id=head_id, delegate_id=later.staff_member.id,  # not begun yet
                           starts_on=date(2026, 12, 8), ends_on=date(2026, 12, 9)),
    ])
    db.session.commit()
    waiting = request(db, supervisor_session, "青木 一郎")
    requested_on(db, waiting, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))  # 4 working days by Monday 7 Dec
    own = enrollment_services.enroll(supervisor_session.id, heads["deputy"].staff_member.id, heads["deputy"])
    db.session.commit()
    requested_on(db, own, datetime(2026, 12, 1, 11, 0, tzinfo=TOKYO))

    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 3
    db.session.commit()
    sent = digests(db)
    assert set(sent) == {heads["head"].email, heads["deputy"].email, stand_in.email}
    assert "税務課長" not in {d.to_name for d in sent.values()}
    for address in (heads["head"].email, stand_in.email):
        body = sent[address].body_text
        assert "青木 一郎" in body and "総務課長代理 鈴木" in body
    # The deputy's own request is not theirs to answer: the head and the stand-in have it.
    assert "青木 一郎" in sent[heads["deputy"].email].body_text
    assert "総務課長代理 鈴木 さん" not in sent[heads["deputy"].email].body_text


def test_the_office_digest_lists_only_requests_at_its_step(db, heads, office, approval_session, supervisor_session):
    at_office = request(db, approval_session, "青木 一郎")
    at_head = request(db, supervisor_session, "井上 二郎")
    for enrollment in (at_office, at_head):
        requested_on(db, enrollment, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))
    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 3  # the office, the head and the deputy
    db.session.commit()
    sent = digests(db)
    office_body = sent[office.email].body_text
    assert "青木 一郎" in office_body and "井上 二郎" not in office_body and "/municipal" in office_body
    assert sent[office.email].subject.endswith("承認待ちの申込 1 件")
    for head in (heads["head"], heads["deputy"]):
        assert "井上 二郎" in sent[head.email].body_text and "青木 一郎" not in sent[head.email].body_text

    # The 所属 loses its heads (a vacancy): the office answers the request, and its digest lists it.
    heads["head"].staff_member.department_head = False
    heads["deputy"].staff_member.deputy_head = False
    db.session.commit()
    tuesday = as_utc(MONDAY_MORNING + timedelta(days=1))
    assert queue_approver_digests(tuesday) == 1
    db.session.commit()
    [tuesdays] = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == DIGEST,
                                                             OutboxMail.dedupe_key.endswith(":2026-12-08"))).all()
    assert tuesdays.to_address == office.email
    assert "青木 一郎" in tuesdays.body_text and "井上 二郎" in tuesdays.body_text


def test_a_head_who_is_also_in_the_office_gets_one_digest_in_two_parts(db, office, approval_session,
                                                                       supervisor_session):
    office.staff_member.department = "人事課"
    office.staff_member.department_head = True
    db.session.commit()
    from tests.factories import make_user

    clerk = make_user("learner", name="人事課 職員")
    clerk.staff_member.department = "人事課"
    db.session.commit()
    at_head = enrollment_services.enroll(supervisor_session.id, clerk.staff_member.id, clerk)
    db.session.commit()
    at_office = request(db, approval_session, "青木 一郎")
    for enrollment in (at_office, at_head):
        requested_on(db, enrollment, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))
    assert queue_approver_digests(as_utc(MONDAY_MORNING)) == 1
    db.session.commit()
    [digest] = digests(db).values()
    body = digest.body_text
    assert digest.subject.endswith("承認待ちの申込 2 件")
    assert body.index("■ 所属長の承認待ち") < body.index("人事課 職員") < body.index("■ 研修担当の承認待ち")
    assert body.index("■ 研修担当の承認待ち") < body.index("青木 一郎")
    assert "/approvals" in body and "/municipal" in body


def test_the_digests_cost_a_handful_of_statements_whatever_their_size(db, heads, office, supervisor_session,
                                                                      make_user):
    from sqlalchemy import event

    def departments(n):
        for i in range(n):
            head = make_user("learner", name=f"課長 {i}")
            head.staff_member.department, head.staff_member.department_head = f"第{i}課", True
            learner = make_user("learner", name=f"職員 {i}")
            learner.staff_member.department = f"第{i}課"
            db.session.commit()
            enrollment = enrollment_services.enroll(supervisor_session.id, learner.staff_member.id, learner)
            db.session.commit()
            requested_on(db, enrollment, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))

    def selects(when):
        statements = []

        def before(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("SELECT"):
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            queued = queue_approver_digests(as_utc(when))
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return queued, len(statements)

    departments(1)
    small = selects(MONDAY_MORNING)
    departments(4)
    large = selects(MONDAY_MORNING + timedelta(days=1))
    assert small[0] == 1 and large[0] == 5
    assert large[1] == small[1] <= 8
