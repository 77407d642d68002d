"""所属長の承認: a request passes the learner's 所属長 (or deputy), then the training office;
each step is told, answers once, and is shown to the learner with its date; a 所属 without a
head never leaves a request stuck."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from lms.common.errors import InvalidInput, NotAllowed
from lms.enrollment import services
from lms.enrollment.models import (
    APPROVED,
    CONFIRMED,
    OFFICE_STEP,
    PENDING,
    REJECTED,
    SKIPPED_NO_APPROVER,
    STEP_REJECTED,
    SUPERVISOR_STEP,
    Enrollment,
    EnrollmentApproval,
)
from lms.notifications.models import OutboxMail


@pytest.fixture
def people(db, make_user):
    learner = make_user("learner", name="青木 一郎")
    head = make_user("learner", name="総務課長 佐藤")
    head.staff_member.department_head = True
    deputy = make_user("learner", name="総務課長代理 鈴木")
    deputy.staff_member.deputy_head = True
    other_head = make_user("learner", name="税務課長 田中")
    other_head.staff_member.department = "税務課"
    other_head.staff_member.department_head = True
    office = make_user("municipal_admin", name="研修担当 高橋")
    db.session.commit()
    return {"learner": learner, "head": head, "deputy": deputy, "other_head": other_head, "office": office}


def course_session(make_course, make_session, *, supervisor=True, office=True, capacity=10):
    course = make_course(title="政策形成研修", supervisor_approval=supervisor, requires_approval=office)
    return make_session(course, capacity=capacity)


def each_answer_refused(db, enrollment, actor, match: str) -> None:
    """Approving, declining and returning ``enrollment`` are each refused to ``actor``."""
    for act in (lambda: services.approve_enrollment(enrollment.id, actor),
                lambda: services.reject_enrollment(enrollment.id, actor, "不要"),
                lambda: services.return_enrollment(enrollment.id, actor, "修正を")):
        with pytest.raises(NotAllowed, match=match):
            act()
        db.session.rollback()


def apply(db, session, user):
    enrollment = services.enroll(session.id, user.staff_member.id, user)
    db.session.commit()
    return enrollment


def steps(db, enrollment_id):
    db.session.expire_all()
    return [(a.step, a.decision) for a in db.session.scalars(
        select(EnrollmentApproval).where(EnrollmentApproval.enrollment_id == enrollment_id).order_by(EnrollmentApproval.id))]


def told(db, enrollment_id):
    """(step, recipient user id) of the approval requests queued for an enrollment."""
    db.session.expire_all()
    return sorted((m.dedupe_key.split(":")[2], m.user_id) for m in db.session.scalars(
        select(OutboxMail).where(OutboxMail.kind == "approval", OutboxMail.enrollment_id == enrollment_id)))


def test_the_head_then_the_office_approve(db, people, make_course, make_session):
    session = course_session(make_course, make_session)
    enrollment = apply(db, session, people["learner"])
    assert enrollment.status == PENDING and enrollment.approval_step == SUPERVISOR_STEP
    # The 所属長 and the deputy are told; the office not yet.
    assert told(db, enrollment.id) == sorted([(SUPERVISOR_STEP, people["head"].id),
                                              (SUPERVISOR_STEP, people["deputy"].id)])
    with pytest.raises(NotAllowed):
        services.approve_enrollment(enrollment.id, people["office"])
    with pytest.raises(NotAllowed):
        services.approve_enrollment(enrollment.id, people["other_head"])
    db.session.rollback()

    after_head = services.approve_enrollment(enrollment.id, people["head"])
    db.session.commit()
    assert after_head.status == PENDING and after_head.approval_step == OFFICE_STEP
    assert (OFFICE_STEP, people["office"].id) in told(db, enrollment.id)
    with pytest.raises(NotAllowed):  # the head's step is done: the office answers now
        services.approve_enrollment(enrollment.id, people["deputy"])
    db.session.rollback()

    decided = services.approve_enrollment(enrollment.id, people["office"])
    db.session.commit()
    assert decided.status == CONFIRMED and decided.approval_step is None
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, APPROVED), (OFFICE_STEP, APPROVED)]


def test_a_supervisor_only_course_is_decided_by_the_deputy(db, people, make_course, make_session):
    session = course_session(make_course, make_session, office=False)
    enrollment = apply(db, session, people["learner"])
    decided = services.approve_enrollment(enrollment.id, people["deputy"])
    db.session.commit()
    assert decided.status == CONFIRMED
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, APPROVED)]
    assert all(step == SUPERVISOR_STEP for step, _uid in told(db, enrollment.id))


def test_the_head_rejects_with_a_reason(db, people, make_course, make_session):
    session = course_session(make_course, make_session)
    enrollment = apply(db, session, people["learner"])
    rejected = services.reject_enrollment(enrollment.id, people["head"], "業務繁忙期のため")
    db.session.commit()
    assert rejected.status == REJECTED and rejected.reason == "業務繁忙期のため"
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, STEP_REJECTED)]
    kinds = {m.kind for m in db.session.scalars(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id))}
    assert "rejected" in kinds


def test_a_department_without_a_head_goes_to_the_office(db, people, make_course, make_session, make_user):
    loner = make_user("learner", name="会計課 職員")
    loner.staff_member.department = "会計課"
    db.session.commit()
    enrollment = apply(db, course_session(make_course, make_session), loner)
    assert enrollment.approval_step == OFFICE_STEP
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, SKIPPED_NO_APPROVER)]
    assert told(db, enrollment.id) == [(OFFICE_STEP, people["office"].id)]
    assert services.approve_enrollment(enrollment.id, people["office"]).status == CONFIRMED


def test_a_head_never_approves_their_own_request(db, people, make_course, make_session):
    people["deputy"].staff_member.deputy_head = False
    db.session.commit()
    enrollment = apply(db, course_session(make_course, make_session), people["head"])
    assert enrollment.approval_step == OFFICE_STEP  # nobody else heads 総務課


def test_a_vacant_head_leaves_the_request_to_the_office(db, people, make_course, make_session):
    """The 所属長 moves away while a request waits: the office answers instead (never stuck)."""
    from datetime import date

    from lms.roster.services import transfer_staff

    enrollment = apply(db, course_session(make_course, make_session), people["learner"])
    people["deputy"].staff_member.deputy_head = False
    db.session.commit()
    transfer_staff(people["head"].staff_member.id, "企画課", "", date(2026, 12, 1), people["office"])
    db.session.commit()
    assert people["head"].staff_member.department_head is False
    decided = services.approve_enrollment(enrollment.id, people["office"])
    db.session.commit()
    # The office's approval stands for the missing head's and its own step: decided at once.
    assert decided.status == CONFIRMED
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, SKIPPED_NO_APPROVER), (OFFICE_STEP, APPROVED)]


def test_a_training_officer_never_decides_their_own_request(db, people, make_course, make_session, make_user,
                                                             client, login_as):
    """The office's own 受講申込 goes to another officer of the municipality (or a platform
    admin): approving, declining or returning it oneself is refused, and the page says why."""
    session = course_session(make_course, make_session, supervisor=False)
    office = people["office"]
    enrollment = apply(db, session, office)
    assert enrollment.status == PENDING and enrollment.approval_step == OFFICE_STEP
    each_answer_refused(db, enrollment, office, "ご自身の申込")
    assert steps(db, enrollment.id) == []
    login_as(user=office)
    page = client.get("/municipal").get_data(as_text=True)
    assert "ご自身の申込のため" in page
    assert f"/municipal/enrollments/{enrollment.id}/approve" not in page
    answer = client.post(f"/municipal/enrollments/{enrollment.id}/approve", follow_redirects=True)
    assert answer.status_code in (200, 403) and "ご自身の申込" in answer.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Enrollment, enrollment.id).status == PENDING
    colleague = make_user("municipal_admin", name="研修担当 伊藤")
    db.session.commit()
    assert services.approve_enrollment(enrollment.id, colleague).status == CONFIRMED
    db.session.commit()


# ---------------------------------------------------------------- pages


def test_the_supervisors_page(client, db, people, make_course, make_session, login_as, make_user):
    session = course_session(make_course, make_session)
    mine = apply(db, session, people["learner"])
    taxpayer = make_user("learner", name="税務課 職員")
    taxpayer.staff_member.department = "税務課"
    db.session.commit()
    theirs = apply(db, session, taxpayer)

    login_as(user=people["head"])
    page = client.get("/approvals").get_data(as_text=True)
    assert "青木 一郎" in page and "税務課 職員" not in page
    assert client.post(f"/approvals/{theirs.id}/approve").status_code == 404
    assert client.post("/approvals/99999999/approve").status_code == 404
    refused = client.post(f"/approvals/{mine.id}/reject", data={"reason": ""})
    assert refused.status_code == 422 and db.session.get(Enrollment, mine.id).status == PENDING
    answer = client.post(f"/approvals/{mine.id}/approve")
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Enrollment, mine.id).approval_step == OFFICE_STEP
    assert "研修担当の承認に進みます" in client.get("/approvals").get_data(as_text=True)

    login_as(user=people["learner"])
    my_page = client.get("/me").get_data(as_text=True)
    assert "所属長：承認" in my_page and "研修担当の承認待ち" in my_page

    login_as(user=people["office"])
    office_page = client.get("/municipal").get_data(as_text=True)
    assert "所属長：承認" in office_page


def test_someone_who_heads_nothing_sees_no_requests(client, db, people, make_course, make_session, login_as):
    enrollment = apply(db, course_session(make_course, make_session), people["learner"])
    login_as(user=people["office"])
    page = client.get("/approvals")
    assert page.status_code == 200 and "所属長（またはその代理）として登録されていない" in page.get_data(as_text=True)
    assert client.post(f"/approvals/{enrollment.id}/approve").status_code == 404
    login_as(user=people["other_head"])
    assert "青木 一郎" not in client.get("/approvals").get_data(as_text=True)


# ---------------------------------------------------------------- stand-ins while a head is away


def test_a_stand_in_approves_during_the_heads_absence_only(db, people, make_course, make_session, make_user,
                                                           monkeypatch):
    from datetime import date

    from lms.enrollment import approvals

    stand_in = make_user("learner", name="企画課 主査 山本")
    stand_in.staff_member.department = "企画課"
    db.session.commit()
    approvals.delegate_approvals(people["head"], stand_in.staff_member.employee_number, date(2026, 12, 7),
                                 date(2026, 12, 11))
    db.session.commit()
    session = course_session(make_course, make_session)

    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 4))  # before the absence
    early = apply(db, session, people["learner"])
    assert stand_in.id not in {uid for _step, uid in told(db, early.id)}
    with pytest.raises(NotAllowed):
        services.approve_enrollment(early.id, stand_in)
    db.session.rollback()

    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 8))  # during it
    other = make_user("learner", name="井上 二郎")
    during = apply(db, session, other)
    assert (SUPERVISOR_STEP, stand_in.id) in told(db, during.id)  # the stand-in is told too
    assert services.approve_enrollment(early.id, stand_in).approval_step == OFFICE_STEP
    db.session.commit()
    assert approvals.acting_for(stand_in)[1] == [(people["learner"].municipality_id, "総務課")]

    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 12))  # after it
    with pytest.raises(NotAllowed):
        services.approve_enrollment(during.id, stand_in)


def test_only_heads_name_stand_ins_and_wrong_input_is_refused(db, people):
    from datetime import timedelta

    from lms.common.errors import InvalidInput
    from lms.common.timeutil import today_tokyo
    from lms.enrollment import approvals

    today = today_tokyo()
    number = people["office"].staff_member.employee_number
    with pytest.raises(NotAllowed):
        approvals.delegate_approvals(people["learner"], number, today, today)
    db.session.rollback()
    for employee_number, start, end, words in (
        ("NOPE", today, today, "見つかりません"),
        (people["head"].staff_member.employee_number, today, today, "自分自身"),
        (number, today, today - timedelta(days=1), "開始日以降"),
        (number, today - timedelta(days=10), today - timedelta(days=5), "過ぎています"),
        (number, today, today + timedelta(days=400), "1 年以内"),
    ):
        with pytest.raises(InvalidInput, match=words):
            approvals.delegate_approvals(people["head"], employee_number, start, end)
        db.session.rollback()
    assert approvals.delegations_of(people["head"].staff_member) == []


def test_the_stand_in_page(client, db, people, login_as):
    from datetime import timedelta

    from lms.common.timeutil import today_tokyo
    from lms.enrollment.models import ApprovalDelegation

    login_as(user=people["head"])
    page = client.get("/approvals").get_data(as_text=True)
    assert "不在のときの代理" in page
    today = today_tokyo()
    bad = client.post("/approvals/delegations", data={"employee_number": "NOPE", "starts_on": today.isoformat(),
                                                      "ends_on": today.isoformat()})
    assert bad.status_code == 422 and "見つかりません" in bad.get_data(as_text=True)
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    form = {"employee_number": people["office"].staff_member.employee_number, "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=3)).isoformat(), "once": once}
    blank = client.post("/approvals/delegations", data={**form, "starts_on": " ", "ends_on": "\u3000"})
    assert blank.status_code == 422
    assert {"開始日を入力してください。", "終了日を入力してください。"} <= set(re.findall(r"[開終][始了]日を入力してください。", blank.get_data(as_text=True)))
    assert db.session.scalars(select(ApprovalDelegation)).all() == []
    good = client.post("/approvals/delegations", data=form)
    assert good.status_code == 302
    # The same form sent again (a double click): one stand-in, not two.
    assert client.post("/approvals/delegations", data=form).status_code == 302
    delegation = db.session.scalars(select(ApprovalDelegation)).one()
    assert "研修担当 高橋" in client.get("/approvals").get_data(as_text=True)
    # Someone else's stand-in is missing; one's own asks on a page, then ends.
    login_as(user=people["other_head"])
    assert client.get(f"/approvals/delegations/{delegation.id}/end").status_code == 404
    assert client.post(f"/approvals/delegations/{delegation.id}/end").status_code == 404
    login_as(user=people["head"])
    confirm = client.get(f"/approvals/delegations/{delegation.id}/end")
    assert confirm.status_code == 200 and "代理の指名を取り消す" in confirm.get_data(as_text=True)
    assert client.post(f"/approvals/delegations/{delegation.id}/end").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(ApprovalDelegation)) is None
    assert client.get("/approvals/delegations/99999999/end").status_code == 404


def test_a_transfer_reroutes_the_request_and_tells_both_heads(db, people, make_course, make_session):
    from datetime import date

    from lms.roster.services import transfer_staff

    session = course_session(make_course, make_session)
    enrollment = apply(db, session, people["learner"])
    transfer_staff(people["learner"].staff_member.id, "税務課", "", date(2026, 12, 1), people["office"])
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Enrollment, enrollment.id).approval_step == SUPERVISOR_STEP
    assert (SUPERVISOR_STEP, people["other_head"].id) in told(db, enrollment.id)  # the new 所属長
    moved = {m.user_id: m for m in db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "approval_moved"))}
    assert set(moved) == {people["head"].id, people["deputy"].id}  # the 所属長 it left
    assert "税務課 に異動" in moved[people["head"].id].body_text
    with pytest.raises(NotAllowed):
        services.approve_enrollment(enrollment.id, people["head"])
    db.session.rollback()
    assert services.approve_enrollment(enrollment.id, people["other_head"]).approval_step == OFFICE_STEP
    db.session.commit()

    # Moved to a 所属 without a head: the office answers, and is told.
    second = apply(db, make_session(make_course(title="二つ目", supervisor_approval=True, requires_approval=True)),
                   people["learner"])
    transfer_staff(people["learner"].staff_member.id, "会計課", "", date(2026, 12, 2), people["office"])
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Enrollment, second.id).approval_step == OFFICE_STEP
    assert (OFFICE_STEP, people["office"].id) in told(db, second.id)
    assert steps(db, second.id) == [(SUPERVISOR_STEP, SKIPPED_NO_APPROVER)]


# ---------------------------------------------------------------- 差し戻し (returned for a change)


def test_a_returned_request_comes_back_through_every_step(client, db, people, make_course, make_session, login_as):
    from lms.common.errors import Conflict, InvalidInput, NotFound
    from lms.enrollment.models import RESUBMITTED, RETURNED, RETURNED_STEP

    enrollment = apply(db, course_session(make_course, make_session), people["learner"])
    with pytest.raises(InvalidInput):
        services.return_enrollment(enrollment.id, people["head"], " ")
    db.session.rollback()
    returned = services.return_enrollment(enrollment.id, people["head"], "受講理由を書き足してください")
    db.session.commit()
    assert returned.status == PENDING and returned.approval_step == RETURNED_STEP
    notice = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id,
                                                        OutboxMail.kind == "returned"))
    assert notice is not None and notice.to_address == people["learner"].email
    for approver in (people["head"], people["office"]):  # nobody answers it while it is returned
        with pytest.raises(Conflict):
            services.approve_enrollment(enrollment.id, approver)
        db.session.rollback()
    with pytest.raises(NotFound):  # only its learner sends it again
        services.resubmit_enrollment(enrollment.id, people["head"], "")
    db.session.rollback()

    login_as(user=people["learner"])
    page = client.get("/me").get_data(as_text=True)
    assert "受講理由を書き足してください" in page and "申し込み直す" in page
    assert client.post(f"/me/enrollments/{enrollment.id}/resubmit", data={"note": "業務改善に役立てます"}).status_code == 302
    db.session.expire_all()
    again = db.session.get(Enrollment, enrollment.id)
    assert again.approval_step == SUPERVISOR_STEP and again.reason == ""
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, RETURNED), (RETURNED_STEP, RESUBMITTED)]
    # The head is asked again (a new round of requests, not the first one's).
    assert [uid for step, uid in told(db, enrollment.id)].count(people["head"].id) == 2
    with pytest.raises(Conflict):
        services.resubmit_enrollment(enrollment.id, people["learner"], "")
    db.session.rollback()
    assert services.approve_enrollment(enrollment.id, people["head"]).approval_step == OFFICE_STEP


def test_the_return_routes(client, db, people, make_course, make_session, login_as):
    enrollment = apply(db, course_session(make_course, make_session, supervisor=False), people["learner"])
    login_as(user=people["other_head"])
    assert client.post(f"/approvals/{enrollment.id}/return", data={"reason": "x"}).status_code == 404
    assert client.post(f"/me/enrollments/{enrollment.id}/resubmit").status_code == 404
    login_as(user=people["office"])
    empty = client.post(f"/municipal/enrollments/{enrollment.id}/return", data={"reason": " "})
    assert empty.status_code == 422 and db.session.get(Enrollment, enrollment.id).approval_step == OFFICE_STEP
    # A page of its own for this request: the error beside the field, posting back to the same address.
    page = empty.get_data(as_text=True)
    assert '<a href="#reason">差し戻す理由</a>: 差し戻す理由を入力してください。' in page
    assert f'action="/municipal/enrollments/{enrollment.id}/return"' in page and people["learner"].display_name in page
    assert client.post(f"/municipal/enrollments/{enrollment.id}/return", data={"reason": "日程を確認"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Enrollment, enrollment.id).approval_step == "returned"
    assert "差し戻し中" in client.get("/municipal").get_data(as_text=True)


def test_a_too_long_reason_is_called_too_long_not_missing(client, db, people, make_course, make_session, login_as):
    """A reason over 1000 characters is refused as too long — not as if none had been typed."""
    enrollment = apply(db, course_session(make_course, make_session, supervisor=False), people["learner"])
    login_as(user=people["office"])
    for action in ("reject", "return"):
        answer = client.post(f"/municipal/enrollments/{enrollment.id}/{action}", data={"reason": "あ" * 1001})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422 and "理由は1000文字以内で入力してください。" in page
        assert "あ" * 1001 in page  # what was typed is kept
        assert "理由を入力してください。" not in page.replace("理由は1000文字以内で入力してください。", "")
        db.session.expire_all()
        assert db.session.get(Enrollment, enrollment.id).status == PENDING
    missing = client.post(f"/municipal/enrollments/{enrollment.id}/reject", data={"reason": ""})
    assert missing.status_code == 422 and "承認しない理由を入力してください。" in missing.get_data(as_text=True)
    # The 所属長's own page answers the same way.
    head_request = apply(db, course_session(make_course, make_session), people["learner"])
    login_as(user=people["head"])
    refused = client.post(f"/approvals/{head_request.id}/reject", data={"reason": ""})
    assert refused.status_code == 422 and "承認しない理由を入力してください。" in refused.get_data(as_text=True)
    assert 'href="/approvals"' in refused.get_data(as_text=True)  # やめて戻る
    login_as(user=people["office"])
    assert client.post(f"/municipal/enrollments/{enrollment.id}/reject", data={"reason": "あ" * 1000}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Enrollment, enrollment.id).status == REJECTED


# ---------------------------------------------------------------- a stand-in named twice


def test_naming_the_same_stand_in_again_extends_the_period(db, people, make_user):
    from datetime import date

    from lms.enrollment import approvals

    stand_in = make_user("learner", name="企画課 主査 山本")
    db.session.commit()
    number = stand_in.staff_member.employee_number
    first, outcome = approvals.delegate_approvals(people["head"], number, date(2026, 12, 7), date(2026, 12, 10))
    db.session.commit()
    assert outcome == approvals.NAMED
    again, outcome = approvals.delegate_approvals(people["head"], number, date(2026, 12, 7), date(2026, 12, 31))
    db.session.commit()
    assert outcome == approvals.EXTENDED and again.id == first.id
    assert [(d.starts_on, d.ends_on) for d in approvals.delegations_of(people["head"].staff_member)] == [
        (date(2026, 12, 7), date(2026, 12, 31))]


def test_naming_a_stand_in_again_joins_every_period_it_overlaps_or_touches(client, db, people, make_user, login_as,
                                                                           monkeypatch):
    """Four periods, the last two touching the others by a day, then one across them all: one
    row is left. Days already covered change nothing and say so; a join beyond a year is refused."""
    from datetime import date

    from lms.enrollment import approvals
    from lms.enrollment.models import ApprovalDelegation

    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 6))
    stand_in = make_user("learner", name="企画課 主査 山本")
    db.session.commit()
    number = stand_in.staff_member.employee_number
    head = people["head"]

    def name(starts, ends):
        outcome = approvals.delegate_approvals(head, number, starts, ends)[1]
        db.session.commit()
        return outcome

    def periods():
        db.session.expire_all()
        return [(d.starts_on, d.ends_on) for d in db.session.scalars(
            select(ApprovalDelegation).order_by(ApprovalDelegation.starts_on))]

    assert name(date(2026, 12, 7), date(2026, 12, 10)) == approvals.NAMED
    assert name(date(2026, 12, 9), date(2026, 12, 20)) == approvals.EXTENDED
    # Rows written before joining was the rule (two apart, one touching both): joined by the next naming.
    for starts, ends in ((date(2026, 12, 25), date(2026, 12, 28)), (date(2026, 12, 21), date(2026, 12, 24))):
        db.session.add(ApprovalDelegation(delegator_id=head.staff_member.id, delegate_id=stand_in.staff_member.id,
                                          starts_on=starts, ends_on=ends, created_by_id=head.id))
    db.session.commit()
    assert name(date(2026, 12, 19), date(2026, 12, 26)) == approvals.EXTENDED
    assert periods() == [(date(2026, 12, 7), date(2026, 12, 28))]
    assert name(date(2026, 12, 29), date(2027, 1, 3)) == approvals.EXTENDED  # the day after: one absence
    assert periods() == [(date(2026, 12, 7), date(2027, 1, 3))]
    assert name(date(2026, 12, 10), date(2026, 12, 12)) == approvals.COVERED
    assert periods() == [(date(2026, 12, 7), date(2027, 1, 3))]
    with pytest.raises(InvalidInput, match="1 年以内"):
        approvals.delegate_approvals(head, number, date(2027, 1, 4), date(2027, 12, 10))
    db.session.rollback()
    assert periods() == [(date(2026, 12, 7), date(2027, 1, 3))]

    login_as(user=head)
    page = client.get("/approvals").get_data(as_text=True)
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    covered = client.post("/approvals/delegations", follow_redirects=True, data={
        "employee_number": number, "starts_on": "2026-12-10", "ends_on": "2026-12-12", "once": once})
    assert "すでにその期間の代理に指名されています（2026年12月7日〜2027年1月3日）" in covered.get_data(as_text=True)
    page = client.get("/approvals").get_data(as_text=True)
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)
    longer = client.post("/approvals/delegations", follow_redirects=True, data={
        "employee_number": number, "starts_on": "2027-01-04", "ends_on": "2027-01-05", "once": once})
    assert "その期間を 2026年12月7日 から 2027年1月5日 までに延ばしました" in longer.get_data(as_text=True)
    db.session.expire_all()
    delegation = db.session.scalars(select(ApprovalDelegation)).one()
    confirm = client.get(f"/approvals/delegations/{delegation.id}/end").get_data(as_text=True)
    assert "2026年12月7日〜2027年1月5日" in confirm and "2026-12-07" not in confirm
    assert '<button type="submit" class="button button-danger">代理の指名を取り消す</button>' in confirm  # as its heading


def test_a_stand_in_named_twice_is_one_approver(client, db, people, make_course, make_session, make_user,
                                                login_as, monkeypatch):
    """Two delegations to one person (named twice before this was merged) make one approver,
    one approval request: the learner's request goes through (it used to end in a 500)."""
    from datetime import date

    from lms.enrollment import approvals
    from lms.enrollment.models import ApprovalDelegation

    stand_in = make_user("learner", name="企画課 主査 山本")
    db.session.commit()
    head = people["head"].staff_member
    for ends_on in (date(2026, 12, 10), date(2026, 12, 31)):
        db.session.add(ApprovalDelegation(delegator_id=head.id, delegate_id=stand_in.staff_member.id,
                                          starts_on=date(2026, 12, 7), ends_on=ends_on))
    db.session.commit()
    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 8))
    supervisors = approvals.supervisors_of(people["learner"].staff_member)
    assert [s.id for s in supervisors].count(stand_in.staff_member.id) == 1
    session = course_session(make_course, make_session)
    login_as(user=people["learner"])
    answer = client.post(f"/sessions/{session.id}/enroll")
    assert answer.status_code in (200, 302)
    enrollment = db.session.scalars(select(Enrollment).where(Enrollment.session_id == session.id)).one()
    assert told(db, enrollment.id).count((SUPERVISOR_STEP, stand_in.id)) == 1


def test_a_retried_arrival_starts_clean(db, people, make_course, make_session, monkeypatch):
    """A unique-index race in an arrival's transaction is retried whole: the rolled-back row
    does not stay behind in the session to break the retry."""
    from sqlalchemy.exc import IntegrityError

    from lms.enrollment import approvals

    session = course_session(make_course, make_session)
    start = approvals.start
    calls = []

    def start_once_failing(enrollment, member, course):
        start(enrollment, member, course)
        calls.append(enrollment)  # held (as a receiver or the traceback may hold it)
        if len(calls) == 1:
            raise IntegrityError("INSERT …", {}, Exception("duplicate key"))

    monkeypatch.setattr(approvals, "start", start_once_failing)
    enrollment = apply(db, session, people["learner"])
    assert len(calls) == 2
    assert enrollment.status == PENDING and enrollment.approval_step == SUPERVISOR_STEP
    assert len(db.session.scalars(select(Enrollment).where(Enrollment.session_id == session.id)).all()) == 1


def test_the_stand_in_form_puts_each_error_on_its_field(client, db, people, login_as):
    from datetime import timedelta

    from lms.common.timeutil import today_tokyo

    login_as(user=people["head"])
    today = today_tokyo()
    number = people["office"].staff_member.employee_number
    for starts_on, ends_on, words in (
        (today, today - timedelta(days=1), "終了日は開始日以降の日付にしてください。"),
        (today - timedelta(days=10), today - timedelta(days=5), "終了日が過ぎています。"),
        (today, today + timedelta(days=400), "代理の期間は 1 年以内にしてください。"),
    ):
        answer = client.post("/approvals/delegations", data={
            "employee_number": number, "starts_on": starts_on.isoformat(), "ends_on": ends_on.isoformat()})
        page = answer.get_data(as_text=True)
        assert answer.status_code == 422
        error = re.search(r'<p class="error-message" id="([^"]+)-error">([^<]*)</p>', page)
        assert error is not None and error.group(1) == "ends_on" and words in error.group(2)
    unknown = client.post("/approvals/delegations", data={
        "employee_number": "NOPE", "starts_on": today.isoformat(), "ends_on": today.isoformat()}).get_data(as_text=True)
    assert re.search(r'id="employee_number-error">[^<]*見つかりません', unknown)
    # Named again for longer: the stand-in's period is extended, and the head is told so.
    client.post("/approvals/delegations", data={
        "employee_number": number, "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=3)).isoformat()})
    again = client.post("/approvals/delegations", data={
        "employee_number": number, "starts_on": today.isoformat(), "ends_on": (today + timedelta(days=9)).isoformat()},
        follow_redirects=True)
    assert "期間を" in again.get_data(as_text=True) and "延ばしました" in again.get_data(as_text=True)


def test_the_learner_is_told_their_request_waits_for_the_head(client, db, people, make_course, make_session, login_as):
    session = course_session(make_course, make_session)
    login_as(user=people["learner"])
    page = client.post(f"/sessions/{session.id}/enroll", follow_redirects=True).get_data(as_text=True)
    assert "受講申込を受け付けました。所属長の承認をお待ちください。" in page
    assert "研修担当が承認すると確定します" not in page


# ---------------------------------------------------------------- 差し替え of a request with its approvers


def test_swapping_a_pending_request_is_the_offices_decision(db, people, make_course, make_session, make_user):
    """The office's swap stands for the steps up to its own (as its nomination does): it is not
    asked to approve its own swap; the person named is told they replace someone, the person
    replaced that they were replaced."""
    from lms.notifications.services import compose_queued_mail

    session = course_session(make_course, make_session)
    enrollment = apply(db, session, people["learner"])
    assert enrollment.approval_step == SUPERVISOR_STEP
    replacement = make_user("learner", name="総務課 石田 三郎")
    db.session.commit()
    swapped = services.swap_nominee(enrollment.id, replacement.staff_member.id, people["office"], "業務の都合")
    db.session.commit()
    assert swapped.status == CONFIRMED and swapped.approval_step is None
    assert told(db, swapped.id) == []  # nobody is asked to approve the office's own swap
    compose_queued_mail()
    mails = {m.staff_member_id: m for m in db.session.scalars(select(OutboxMail).where(OutboxMail.kind != "approval"))}
    named = mails[replacement.staff_member.id]
    assert "差し替え" in named.subject and "青木 一郎 さんに代わって" in named.body_text
    assert "受講申込を受け付けました" not in named.body_text and named.ics
    replaced = mails[people["learner"].staff_member.id]
    assert "差し替えにより、次の研修の受講者が別の職員に変わりました" in replaced.body_text


def test_a_swapped_request_still_waits_for_the_organisers_selection(db, people, make_course, make_session, make_user):
    course = make_course(title="政策法務研修（選考）", supervisor_approval=True, selection=True)
    session = make_session(course, capacity=5)
    enrollment = apply(db, session, people["learner"])
    replacement = make_user("learner", name="総務課 石田 三郎")
    db.session.commit()
    swapped = services.swap_nominee(enrollment.id, replacement.staff_member.id, people["office"])
    db.session.commit()
    assert (swapped.status, swapped.approval_step) == (PENDING, "selection")
    assert told(db, swapped.id) == []


def test_nobody_approves_two_steps_of_one_request(client, db, people, make_course, make_session, make_user, login_as,
                                                  monkeypatch):
    """A 所属長's stand-in who is also a 研修担当 approves the 所属長 step; the 研修担当 step is then
    another officer's: refused with the reason, and the office's page shows it instead of the buttons."""
    from datetime import date

    from lms.enrollment import approvals

    office = people["office"]
    monkeypatch.setattr(approvals, "today_tokyo", lambda: date(2026, 12, 8))
    approvals.delegate_approvals(people["head"], office.staff_member.employee_number, date(2026, 12, 7),
                                 date(2026, 12, 11))
    db.session.commit()
    enrollment = apply(db, course_session(make_course, make_session), people["learner"])
    assert services.approve_enrollment(enrollment.id, office).approval_step == OFFICE_STEP
    db.session.commit()
    each_answer_refused(db, enrollment, office, "この申込の所属長の承認をしたため、研修担当の承認はほかの方が行います。")
    login_as(user=office)
    page = client.get("/municipal").get_data(as_text=True)
    assert "この申込の所属長の承認をしたため" in page
    assert f"/municipal/enrollments/{enrollment.id}/approve" not in page
    colleague = make_user("municipal_admin", name="研修担当 伊藤")
    db.session.commit()
    assert services.approve_enrollment(enrollment.id, colleague).status == CONFIRMED
    db.session.commit()
    assert steps(db, enrollment.id) == [(SUPERVISOR_STEP, APPROVED), (OFFICE_STEP, APPROVED)]


def test_the_resubmitted_request_names_the_step_it_waits_for(client, db, people, make_course, make_session, login_as):
    enrollment = apply(db, course_session(make_course, make_session), people["learner"])
    services.return_enrollment(enrollment.id, people["head"], "受講理由を書き足してください")
    db.session.commit()
    login_as(user=people["learner"])
    answer = client.post(f"/me/enrollments/{enrollment.id}/resubmit", data={"note": "追記"}, follow_redirects=True)
    assert "申し込み直しました。所属長の承認をお待ちください。" in answer.get_data(as_text=True)
