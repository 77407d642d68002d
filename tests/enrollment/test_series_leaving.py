"""Leaving a 連続講座: the learner is told once, in one mail listing every day and make-up that
went (cancelled by the learner, swapped out, the series called off); a departure (退職・転出)
after its first day gives up the days and make-ups after the departure, the past days' records
kept and the make-ups' seats going to their waitlists."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select, update

from lms.common.templating import format_period_jst
from lms.common.timeutil import to_tokyo, utcnow
from lms.courses import services as courses
from lms.courses.models import TrainingSession
from lms.enrollment import services
from lms.enrollment.models import CANCELLED, CONFIRMED, WAITLISTED, Enrollment
from lms.notifications.mail import build_message
from lms.notifications.models import OutboxMail
from lms.notifications.services import compose_mail
from lms.roster.services import record_departure
from tests.enrollment.conftest import assert_counters_consistent
from tests.enrollment.test_series import make_series, part_input, place_in


@pytest.fixture
def trainer(db, make_user):
    return make_user("trainer", name="研修所 講師")


def cancelled_notices(db, staff_member_id: int) -> list[OutboxMail]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMail).where(
        OutboxMail.staff_member_id == staff_member_id, OutboxMail.kind == "cancelled").order_by(OutboxMail.id)))


def listed(mail: OutboxMail, sessions, locale: str = "ja") -> list[str]:
    """The lines of ``mail`` that name each of ``sessions`` with its date (in ``locale``)."""
    with force_locale(locale):
        periods = [format_period_jst(s.starts_at, s.ends_at) for s in sessions]
    lines = mail.body_text.splitlines()
    found = []
    for session, period in zip(sessions, periods, strict=True):
        line = next((line for line in lines if session.title in line and period in line), None)
        assert line is not None, f"{session.title} {period} not in:\n{mail.body_text}"
        found.append(line)
    return found


def calendar_parts(mail: OutboxMail) -> list[str]:
    message = build_message(mail)
    return [part.get_content() for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]


def makeup_held_by(db, trainer, part, title: str, holder, waiting):
    """A one-seat make-up (補講) of ``part`` a week later: ``holder`` has its seat, ``waiting``
    waits for it."""
    makeup = courses.create_session(trainer, part.course, part_input(part, 7, capacity=1, title=title),
                                    makeup_for=part)
    db.session.commit()
    assert services.enroll_self(makeup.id, holder).status == CONFIRMED
    assert services.enroll_self(makeup.id, waiting).status == WAITLISTED
    db.session.commit()
    return makeup


def test_cancelling_a_series_sends_one_mail_listing_every_day_and_make_up(db, make_user, make_course, make_session,
                                                                          trainer):
    first, (second, third) = make_series(db, make_course, make_session, trainer)
    leaver, waiting = make_user("learner", name="連続 花子"), make_user("learner")
    for learner in (leaver, waiting):
        services.enroll_self(first.id, learner)
    makeup = makeup_held_by(db, trainer, second, "第2日の補講", leaver, waiting)
    held = place_in(db, first.id, leaver.staff_member.id)
    services.cancel_enrollment(held.id, leaver, "業務都合のため")
    db.session.commit()

    member_id = leaver.staff_member.id
    [mail] = cancelled_notices(db, member_id)
    assert mail.enrollment_id == held.id and mail.status == "queued"
    assert "受講申込が取り消されました" in mail.subject and first.course.title in mail.subject
    assert "理由：業務都合のため" in mail.body_text and "連続 花子 様" in mail.body_text
    assert "（3 回）" not in mail.body_text and "（4 回）" in mail.body_text
    listed(mail, [first, second, third, makeup])
    # A calendar cancellation for each day, each its own attachment.
    calendars = calendar_parts(mail)
    assert len(calendars) == 4 and all("METHOD:CANCEL" in c for c in calendars)
    for session, calendar in zip((first, second, third, makeup), calendars, strict=True):
        assert f"manabi-session-{session.id}-staff-{member_id}@" in calendar.replace("\r\n ", "")
    # Every place went, each seat counted back; the make-up's went to its waitlist, who is told as before.
    for session in (first, second, third, makeup):
        assert place_in(db, session.id, member_id).status == CANCELLED
        assert_counters_consistent(session.id)
    promoted = place_in(db, makeup.id, waiting.staff_member.id)
    assert promoted.status == CONFIRMED
    assert db.session.scalar(select(OutboxMail.kind).where(OutboxMail.enrollment_id == promoted.id,
                                                           OutboxMail.kind == "promoted")) == "promoted"
    # The learner's other mails are the confirmations they had before: nothing per day cancelled.
    kinds = sorted(m.kind for m in db.session.scalars(select(OutboxMail).where(OutboxMail.staff_member_id == member_id)))
    assert kinds == ["cancelled"] + ["confirmed"] * 4


def test_the_mail_is_in_the_readers_language(db, make_user, make_course, make_session, trainer):
    first, later = make_series(db, make_course, make_session, trainer)
    reader = make_user("learner", locale="en")
    held = services.enroll_self(first.id, reader)
    db.session.commit()
    services.cancel_enrollment(held.id, reader)
    db.session.commit()
    [mail] = cancelled_notices(db, reader.staff_member.id)
    assert "Your enrollment has been cancelled" in mail.subject
    assert "■ Dates cancelled" in mail.body_text and "The 3 dates cancelled" in mail.body_text
    lines = listed(mail, [first, *later], locale="en")
    assert all(re.search(r"\d{4}-\d{2}-\d{2} \(\w{3}\)", line) and line.startswith("- ") for line in lines)
    assert "取り消" not in mail.body_text


def test_a_series_called_off_tells_each_learner_once(db, make_user, make_course, make_session, trainer):
    """The organiser calls off the series' first session: each learner's places in every day go,
    and each learner gets one mail naming the day called off. A later day called off on its own
    is told as before, one notice per learner."""
    first, (second, third) = make_series(db, make_course, make_session, trainer)
    learners = [make_user("learner") for _ in range(3)]
    for learner in learners:
        services.enroll_self(first.id, learner)
    db.session.commit()
    courses.cancel_session(trainer, db.session.get(TrainingSession, third.id), "講師の都合")
    for learner in learners:
        [mail] = cancelled_notices(db, learner.staff_member.id)
        assert mail.enrollment_id == place_in(db, third.id, learner.staff_member.id).id
        assert mail.body_text == ""  # the ordinary notice, composed after the commit
        compose_mail(mail)
        assert "この研修回は中止になりました。" in mail.body_text and "■ 取り消された日程" not in mail.body_text
    db.session.rollback()  # (the compositions above are not kept)
    courses.cancel_session(trainer, db.session.get(TrainingSession, first.id), "台風の接近")
    for learner in learners:
        member_id = learner.staff_member.id
        day_three_mail, mail = cancelled_notices(db, member_id)
        assert day_three_mail.body_text == ""
        assert mail.enrollment_id == place_in(db, first.id, member_id).id
        assert "理由：台風の接近" in mail.body_text and "（2 回）" in mail.body_text
        day_one, day_two = listed(mail, [first, second])
        assert "この回は中止になりました" in day_one and "中止" not in day_two
        assert len(calendar_parts(mail)) == 2
        for session in (first, second):
            assert place_in(db, session.id, member_id).status == CANCELLED
    for session in (first, second, third):
        assert_counters_consistent(session.id)


def test_a_departure_after_the_first_day_gives_up_the_later_days(db, make_user, make_course, make_session, trainer):
    """退職・転出 recorded after day 1 of a 3-day series: days 2 and 3 and the make-up after the
    departure go (day 1's place stays on record), each seat counted back and the make-up's
    given to its waitlist; the learner is told once; a second run finds nothing."""
    first, (second, third) = make_series(db, make_course, make_session, trainer, capacity=3)
    leaver, staying, waiting = (make_user("learner") for _ in range(3))
    for learner in (leaver, staying, waiting):
        services.enroll_self(first.id, learner)
    makeup = makeup_held_by(db, trainer, third, "第3日の補講", leaver, waiting)
    # Day 1 is under way this morning; the departure is today.
    now = utcnow()
    db.session.execute(update(TrainingSession).where(TrainingSession.id == first.id)
                       .values(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(minutes=30)))
    db.session.commit()
    db.session.expire_all()
    member_id = leaver.staff_member.id
    left_on = to_tokyo(now - timedelta(hours=1)).date()
    record_departure(member_id, left_on, make_user("municipal_admin"))
    db.session.commit()

    day_two, day_three, made_up = (place_in(db, s.id, member_id) for s in (second, third, makeup))
    assert services.departed_places() == sorted([day_two.id, day_three.id, made_up.id])
    assert services.withdraw_departed_staff() == 3
    assert place_in(db, first.id, member_id).status == CONFIRMED  # day 1's record is kept
    for session in (second, third, makeup):
        enrollment = place_in(db, session.id, member_id)
        assert (enrollment.status, enrollment.reason) == (CANCELLED, "退職・転出")
        assert_counters_consistent(session.id)
    for session in (second, third):
        db.session.expire_all()
        assert db.session.get(TrainingSession, session.id).confirmed_count == 2
        assert place_in(db, session.id, staying.staff_member.id).status == CONFIRMED
    assert place_in(db, makeup.id, waiting.staff_member.id).status == CONFIRMED  # promoted
    [mail] = cancelled_notices(db, member_id)
    assert "理由：退職・転出" in mail.body_text and "（3 回）" in mail.body_text
    listed(mail, [second, third, makeup])
    assert first.title not in mail.body_text.split("■ 取り消された日程")[1]
    assert len(calendar_parts(mail)) == 3
    assert services.departed_places() == [] and services.withdraw_departed_staff() == 0


def test_a_departure_before_the_first_day_still_takes_the_whole_series(db, make_user, make_course, make_session,
                                                                       trainer):
    first, later = make_series(db, make_course, make_session, trainer, capacity=1)
    leaver, waiting = make_user("learner"), make_user("learner")
    held = services.enroll_self(first.id, leaver)
    services.enroll_self(first.id, waiting)
    db.session.commit()
    record_departure(leaver.staff_member.id, to_tokyo(first.starts_at).date() - timedelta(days=1),
                     make_user("municipal_admin"))
    db.session.commit()
    assert services.departed_places() == [held.id]
    assert services.withdraw_departed_staff() == 3
    for session in (first, *later):
        assert place_in(db, session.id, leaver.staff_member.id).status == CANCELLED
        assert place_in(db, session.id, waiting.staff_member.id).status == CONFIRMED  # the series' waitlist
        assert_counters_consistent(session.id)
    [mail] = cancelled_notices(db, leaver.staff_member.id)
    listed(mail, [first, *later])


def test_a_departure_on_the_first_day_keeps_it_and_frees_the_others(db, make_user, make_course, make_session,
                                                                     trainer):
    """The first day not yet begun but on the departure day itself (still staff): it is kept, the
    days after go."""
    first, (second, third) = make_series(db, make_course, make_session, trainer)
    leaver = make_user("learner")
    services.enroll_self(first.id, leaver)
    db.session.commit()
    member_id = leaver.staff_member.id
    record_departure(member_id, to_tokyo(first.starts_at).date(), make_user("municipal_admin"))
    db.session.commit()
    assert services.withdraw_departed_staff() == 2
    assert [place_in(db, s.id, member_id).status for s in (first, second, third)] == [CONFIRMED, CANCELLED, CANCELLED]
    [mail] = cancelled_notices(db, member_id)
    listed(mail, [second, third])
    assert db.session.scalar(select(Enrollment.status).where(Enrollment.session_id == first.id,
                                                              Enrollment.staff_member_id == member_id)) == CONFIRMED
