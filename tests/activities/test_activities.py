"""Activities before and after a session: a trainer builds them, a learner with a place answers
(draft, submit once, the window kept), quizzes are scored with attempts one at a time, reports
are confirmed or returned by the learner's training office, anonymous surveys keep answers
apart from people, and completion waits for every required activity."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from flask_babel import force_locale
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError

from lms.activities import services
from lms.activities.models import (
    CONFIRMED,
    DATE,
    DRAFT,
    END,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    PREWORK,
    QUIZ,
    REPORT,
    SCALE,
    SINGLE,
    START,
    SUBMITTED,
    SURVEY,
    TEXT,
    ActivityQuestion,
    ActivitySubmission,
    AnonymousAnswer,
    BankQuestion,
)
from lms.attendance import services as attendance
from lms.common.errors import Conflict, InvalidInput, NotFound
from lms.common.timeutil import utcnow
from lms.completion.models import COMPLETED, Completion
from lms.enrollment import services as enrollment
from tests import factories


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """(the dashboard summaries stay in step with every completion written here)"""


@pytest.fixture
def world(db, make_user, make_course, make_session):
    trainer = make_user("trainer", name="研修所 講師")
    course = make_course(title="文書事務研修", owner_id=trainer.id, completion_mode="attendance")
    session = make_session(course, capacity=20, delivery="onsite", location="研修室A")
    learner = make_user("learner", name="受講 花子")
    enrollment.enroll_self(session.id, learner)
    db.session.commit()
    return {"trainer": trainer, "course": course, "session": session, "learner": learner}


def build(db, world, kind=SURVEY, *, questions=None, publish=True, **settings):
    values = {"opens_anchor": START, "opens_offset_hours": -24 * 365, "closes_anchor": END,
              "closes_offset_hours": 24 * 365, **settings}
    data = services.ActivityInput(kind=kind, title={SURVEY: "研修アンケート", QUIZ: "確認テスト", REPORT: "受講報告"}
                                  .get(kind, "事前課題"), **values)
    activity = services.create_activity(world["trainer"], world["course"], data)
    for q in questions or [services.QuestionInput(kind=SCALE, prompt="研修の満足度"),
                           services.QuestionInput(kind=SINGLE, prompt="一番役立った内容", choices=["起案", "決裁", "保存"]),
                           services.QuestionInput(kind=TEXT, prompt="ご意見", required=False, max_length=50)]:
        services.add_question(world["trainer"], activity, q)
    if publish:
        services.set_published(world["trainer"], activity, True)
    db.session.commit()
    return activity


def form(activity, *values):
    """{field: [value]} for the activity's questions, in order (None: left empty)."""
    return {f"q{q.id}": ([] if v is None else v if isinstance(v, list) else [str(v)])
            for q, v in zip(activity.questions, values, strict=False)}


def test_a_survey_is_drafted_checked_and_submitted_once(db, world):
    survey = build(db, world)
    learner = world["learner"]
    draft, errors = services.save(survey.id, learner, form(survey, 4, None, "x" * 60), submit=False)
    db.session.commit()
    assert draft.status == DRAFT and draft.answers == {str(survey.questions[0].id): 4}  # the valid part kept
    assert "50文字以内" in errors[survey.questions[2].id]
    _draft, errors = services.save(survey.id, learner, form(survey, 9, None, None), submit=True)
    db.session.rollback()
    assert "1から5" in errors[survey.questions[0].id] and "回答が必要" in errors[survey.questions[1].id]
    done, errors = services.save(survey.id, learner, form(survey, 5, 1, "とても参考になった"), submit=True)
    db.session.commit()
    assert not errors and done.status == SUBMITTED and not done.late
    assert done.answers[str(survey.questions[1].id)] == 1
    with pytest.raises(Conflict):
        services.save(survey.id, learner, form(survey, 1, 0, None), submit=True)
    db.session.rollback()
    # Someone without a place cannot answer at all.
    with pytest.raises(Exception) as refused:
        services.save(survey.id, factories.make_user("learner"), form(survey, 5, 1), submit=True)
    assert "受講が決まっている人" in str(refused.value)
    db.session.rollback()


def test_the_window_is_kept_and_a_late_submission_marked(db, world):
    closed = build(db, world, closes_anchor=START, closes_offset_hours=-24 * 300)  # closed long ago
    with pytest.raises(Conflict) as refused:
        services.save(closed.id, world["learner"], form(closed, 5, 0), submit=True)
    assert "締め切りました" in refused.value.message
    db.session.rollback()
    late = build(db, world, closes_anchor=START, closes_offset_hours=-24 * 300, allow_late=True)
    done, _errors = services.save(late.id, world["learner"], form(late, 5, 0), submit=True)
    db.session.commit()
    assert done.status == SUBMITTED and done.late


def test_an_anonymous_survey_keeps_answers_apart_from_people(db, world):
    survey = build(db, world, anonymous=True)
    done, _errors = services.save(survey.id, world["learner"], form(survey, 2, 2, "会場が寒かった"), submit=True)
    db.session.commit()
    assert done.status == SUBMITTED and done.answers is None  # only that they submitted
    kept = db.session.scalars(select(AnonymousAnswer)).all()
    assert len(kept) == 1 and kept[0].answers[str(survey.questions[2].id)] == "会場が寒かった"
    # Nothing in the answers' table names a person, a submission, a user or a moment.
    columns = {c["name"] for c in inspect(db.engine).get_columns("activity_anonymous_answer")}
    assert columns == {"id", "activity_id", "session_id", "answers", "submitted_on"}
    assert not any(fk["referred_table"] in ("staff_member", "user_account", "activity_submission")
                   for fk in inspect(db.engine).get_foreign_keys("activity_anonymous_answer"))
    assert len(kept[0].id) == 32 and not kept[0].id.isdigit()  # a random key: no order to line up


def test_an_anonymous_surveys_small_sessions_stay_out_of_every_total(db, world, client, make_session):
    """A session with fewer than MIN_GROUP answers is hidden on its own and, across sessions, is
    left out of the totals, the charts, the free text and the export as well (the totals minus
    the sessions shown would otherwise be its answers) — unless the small sessions together
    make a group of MIN_GROUP, shown as 「その他の回」."""
    import io
    import uuid

    from openpyxl import load_workbook

    from lms.activities import results as activity_results
    from lms.common.timeutil import today_tokyo

    survey = build(db, world, anonymous=True)
    big, small = world["session"], make_session(world["course"], capacity=20, delivery="onsite", location="研修室B")
    scale, _choice, text = survey.questions

    def answered(session, n, score, remark):
        for _i in range(n):
            db.session.add(AnonymousAnswer(id=uuid.uuid4().hex, activity_id=survey.id, session_id=session.id,
                                           answers={str(scale.id): score, str(text.id): remark},
                                           submitted_on=today_tokyo()))
        db.session.commit()

    answered(big, 7, 5, "よかった")
    answered(small, 2, 1, "講師が最悪")
    across = activity_results.results(survey)
    assert across.shown and across.total == 7
    assert [(s.id, n) for s, n in across.by_session] == [(big.id, 7)]
    texts = next(q for q in across.questions if q.question_id == text.id).texts
    assert texts == [("よかった", 7)]
    assert dict(next(q for q in across.questions if q.question_id == scale.id).counts)[scale.choices[0]] == 0
    assert not activity_results.results(survey, small.id).shown
    factories.sign_in(client, world["trainer"])

    def exported(session_id=None):
        response = client.get(f"/manage/activities/{survey.id}/results.xlsx"
                              + (f"?session={session_id}" if session_id else ""))
        assert response.status_code == 200
        return "\n".join(str(c) for row in load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True)
                         for c in row if c is not None)

    assert "講師が最悪" not in exported() and "回答 7 件" in exported()
    assert "講師が最悪" not in exported(small.id)
    page = client.get(f"/manage/activities/{survey.id}/results").get_data(as_text=True)
    assert "講師が最悪" not in page and "回答 7 件" in page

    # Three more answers in a third small session: the small ones together are five, a group.
    third = make_session(world["course"], capacity=20, delivery="onsite", location="研修室C")
    answered(third, 3, 3, "普通")
    across = activity_results.results(survey)
    assert across.total == 12
    assert [(s.id if s else None, n) for s, n in across.by_session] == [(big.id, 7), (None, 5)]
    assert "講師が最悪" in exported() and "回答 12 件" in exported()


def test_a_choice_or_number_that_is_none_gets_a_message_not_an_error(db, world, client):
    """A posted choice that is a digit but not an ASCII one (², ٣) or a huge number, and a quiz's
    right answer written as 1.5e999 or inf: the question's own message, never a 500."""
    survey = build(db, world, questions=[
        services.QuestionInput(kind=SINGLE, prompt="一つ選ぶ", choices=["甲", "乙"]),
        services.QuestionInput(kind=MULTIPLE, prompt="いくつでも", choices=["甲", "乙"], required=False)])
    single, multiple = survey.questions
    for bad in ("²", "٣", "9" * 5000, "-1", "2"):
        _answers, errors = services.clean_answers(survey, {f"q{single.id}": [bad], f"q{multiple.id}": ["0", bad]},
                                                  final=True)
        assert errors == {single.id: "選択肢から選んでください。", multiple.id: "選択肢から選んでください。"}, bad
    answers, errors = services.clean_answers(survey, {f"q{single.id}": ["1"], f"q{multiple.id}": ["0", "1"]}, final=True)
    assert not errors and answers == {str(single.id): 1, str(multiple.id): [0, 1]}
    # Two values for a one-value question (a crafted post: radio buttons send one) are refused,
    # not read as the first.
    answers, errors = services.clean_answers(survey, {f"q{single.id}": ["0", "1"]}, final=False)
    assert errors == {single.id: "選択肢から選んでください。"} and str(single.id) not in answers
    factories.sign_in(client, world["learner"])
    page = client.post(f"/activities/{survey.id}", data={"action": "save", f"q{single.id}": "²"})
    assert page.status_code == 400 and "選択肢から選んでください。" in page.get_data(as_text=True)

    quiz = build(db, world, QUIZ, questions=quiz_questions(), publish=False)
    factories.sign_in(client, world["trainer"])
    for bad in ("1.5e999", "inf", "NaN", "1e3", "3０x"):
        page = client.post(f"/manage/activities/{quiz.id}/questions",
                           data={"kind": NUMBER, "prompt": "保存年限", "correct": bad, "points": "1", "required": "y"})
        assert page.status_code in (200, 400, 422) and "正解の数値を半角数字で入力してください。" in page.get_data(as_text=True), bad
    assert client.post(f"/manage/activities/{quiz.id}/questions", data={
        "kind": NUMBER, "prompt": "保存年限", "correct": "１，２００.５", "points": "1", "required": "y"}).status_code == 302
    db.session.expire_all()
    assert quiz.questions[-1].correct == [1200.5]


def test_a_question_with_the_same_choice_twice_is_refused(db, world):
    survey = build(db, world, publish=False)
    for kind in (SINGLE, MULTIPLE):
        with pytest.raises(InvalidInput) as refused:
            services.add_question(world["trainer"], survey,
                                  services.QuestionInput(kind=kind, prompt="どれ", choices=["はい", "いいえ", "はい"]))
        assert "「はい」が2回" in refused.value.message and refused.value.context["field"] == "choices"
    db.session.rollback()


def quiz_questions():
    return [services.QuestionInput(kind=SINGLE, prompt="公文書の保存期間を決めるのは", choices=["規程", "慣例"], correct=[0], points=2),
            services.QuestionInput(kind=MULTIPLE, prompt="起案に必要なもの", choices=["件名", "理由", "好み"], correct=[0, 1]),
            services.QuestionInput(kind=NUMBER, prompt="保存年限（年）", correct=[30])]


def test_a_quiz_is_scored_and_passed_on_the_second_attempt(db, world):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), pass_pct=75, max_attempts=2)
    learner = world["learner"]
    with pytest.raises(Conflict):  # answers before starting an attempt are refused
        services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=True)
    db.session.rollback()
    first = services.start_attempt(quiz.id, learner)
    db.session.commit()
    again = services.start_attempt(quiz.id, learner)  # a second tab: the same attempt
    db.session.commit()
    assert again.id == first.id
    scored, _errors = services.save(quiz.id, learner, form(quiz, 1, ["0"], "３０"), submit=True)  # 全角 30 is right
    db.session.commit()
    assert (scored.score_pct, scored.passed) == (25, False)
    with pytest.raises(Conflict) as handed_in:  # the same attempt sent again from another tab
        services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=True)
    assert "すでに提出され、採点されています" in handed_in.value.message
    db.session.rollback()
    second = services.start_attempt(quiz.id, learner)
    db.session.commit()
    scored, _errors = services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=True)
    db.session.commit()
    assert second.attempt == 2 and (scored.score_pct, scored.passed) == (100, True)
    assert services.ran_out(quiz, scored) == ""  # scored in time
    with pytest.raises(Conflict):  # passed: no more attempts
        services.start_attempt(quiz.id, learner)
    db.session.rollback()


def test_no_attempt_beyond_the_limit_and_the_time_limit_is_the_servers(db, world):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, time_limit_minutes=10)
    learner = world["learner"]
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 0), submit=False)  # saved in time: one right answer
    db.session.commit()
    attempt.started_at -= timedelta(minutes=30)  # …and the time ran out
    db.session.commit()
    scored, _errors = services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=True)
    db.session.commit()
    assert scored.status == SUBMITTED and scored.score_pct == 50  # only what was saved in time counts
    assert services.ran_out(quiz, scored) == "late"  # (the learner is told why)
    with pytest.raises(Conflict) as refused:
        services.start_attempt(quiz.id, learner)
    assert "使い切りました" in refused.value.message
    db.session.rollback()


def test_a_quiz_submitted_at_its_time_limit_is_scored_as_it_stands(db, world):
    """The page submits a timed attempt when the time is up: within the server's grace period
    the answers on the page count as they stand (an unanswered question is wrong, not a
    refusal), and the learner is told why."""
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, time_limit_minutes=10)
    learner = world["learner"]
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    attempt.started_at -= timedelta(minutes=10, seconds=5)  # five seconds past the limit
    db.session.commit()
    scored, errors = services.save(quiz.id, learner, form(quiz, 0, None, "abc"), submit=True)
    db.session.commit()
    assert not errors and scored.status == SUBMITTED and scored.score_pct == 50  # 2 of 4 points
    assert services.ran_out(quiz, scored) == "at_time"
    # The message says the verdict too, as a submission in time does (合格点 60 by default).
    from lms.activities.routes import _submitted_message

    assert _submitted_message(quiz, scored) == "制限時間になったため、その時点の回答で採点しました：50点（合格点は60点）。不合格です。"
    scored.score_pct, scored.passed = 100, True
    assert _submitted_message(quiz, scored).endswith("：100点（合格点は60点）。合格です。")
    db.session.rollback()


def test_an_attempt_opened_again_after_its_time_offers_no_answers_only_the_scoring(db, world, client, login_as):
    """Without the page's script (or after it), an expired attempt showed the answer form whose
    new answers the server ignores: it now says so and offers only the scoring."""
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, time_limit_minutes=10)
    learner = world["learner"]
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 0), submit=False)  # one right answer, saved in time
    attempt.started_at -= timedelta(minutes=30)
    db.session.commit()
    login_as(user=learner)
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert "制限時間を過ぎました。時間内に保存した回答で採点します。" in page
    assert 'value="save"' not in page and f'name="q{quiz.questions[0].id}"' not in page and 'value="submit"' in page
    response = client.post(f"/activities/{quiz.id}", data={"action": "submit"}, follow_redirects=True)
    assert "時間内に保存した回答で採点しました：50点" in response.get_data(as_text=True)
    db.session.refresh(attempt)
    assert attempt.status == SUBMITTED and attempt.score_pct == 50


def test_concurrent_attempts_add_one(app, live_server, db, world):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=3)
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, world['learner'])}"
    url = f"{live_server.url}/activities/{quiz.id}"
    assert requests.get(url, headers={"Cookie": cookie}, timeout=30).status_code == 200

    def start(_n):
        return requests.post(f"{url}/attempts", data={}, headers={"Cookie": cookie},
                             allow_redirects=False, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(start, range(8)))
    assert all(code in (302, 303) for code in codes), codes
    db.session.rollback()
    attempts = db.session.scalars(select(ActivitySubmission).where(ActivitySubmission.activity_id == quiz.id)).all()
    assert len(attempts) == 1


def test_a_report_is_returned_resubmitted_and_confirmed_by_the_office(db, world, make_user):
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    learner, office = world["learner"], make_user("municipal_admin", name="研修担当 高橋")
    other_office = make_user("municipal_admin", "132012")
    done, _errors = services.save(report.id, learner, form(report, "起案の基本を学んだ。"), submit=True)
    db.session.commit()
    assert [s.id for s in services.reports_to_review(office)] == [done.id]
    assert services.reports_to_review(other_office) == []
    with pytest.raises(NotFound):  # another municipality's office: as if it did not exist
        services.review_report(done.id, other_office, services.CONFIRM)
    db.session.rollback()
    with pytest.raises(InvalidInput):
        services.review_report(done.id, office, services.RETURN, "")
    db.session.rollback()
    services.review_report(done.id, office, services.RETURN, "職場でどう活かすかも書いてください。")
    db.session.commit()
    services.reopen_returned(report.id, learner)
    db.session.commit()
    again, _errors = services.save(report.id, learner, form(report, "起案の基本を学び、係内で共有する。"), submit=True)
    db.session.commit()
    assert again.id == done.id and again.status == SUBMITTED
    confirmed = services.review_report(done.id, office, services.CONFIRM)
    db.session.commit()
    assert confirmed.status == CONFIRMED and services.is_done(report, confirmed)


def attend(db, world):
    session = world["session"]
    session.starts_at -= timedelta(days=30)  # the session was held
    session.ends_at -= timedelta(days=30)
    db.session.commit()
    attendance.record_roll_call(session, {world["learner"].staff_member.id}, world["trainer"])
    db.session.commit()


def completed(db, world) -> bool:
    db.session.expire_all()
    row = db.session.scalar(select(Completion).where(Completion.staff_member_id == world["learner"].staff_member.id,
                                                     Completion.course_id == world["course"].id))
    return row is not None and row.status == COMPLETED


def test_completion_waits_for_every_required_activity(db, world, make_user):
    survey = build(db, world)
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    build(db, world, SURVEY, required=False)  # an optional one does not count
    attend(db, world)
    assert not completed(db, world)  # attended, but the survey and the report are missing
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)
    db.session.commit()
    assert not completed(db, world)
    done, _errors = services.save(report.id, world["learner"], form(report, "学んだ。"), submit=True)
    db.session.commit()
    assert not completed(db, world)  # submitted is not enough: confirmed is
    services.review_report(done.id, make_user("municipal_admin"), services.CONFIRM)
    db.session.commit()
    assert completed(db, world)


def test_an_activity_published_after_a_learners_window_closed_takes_no_completion_back(db, world, make_user):
    """A required test added once the course has run does not count for those whose window had
    closed: their completion stands (it was revoked, and could never be earned again). It does
    count for a learner whose window is still open."""
    from lms.common.timeutil import fiscal_year_of
    from lms.completion.services import recompute_completion

    attend(db, world)  # held 30 days ago, attended: completed
    assert completed(db, world)
    late = build(db, world, QUIZ, questions=[services.QuestionInput(kind=SINGLE, prompt="正しいものは", choices=["A", "B"],
                                                                   correct=[0])],
                 opens_anchor=END, opens_offset_hours=0, closes_anchor=END, closes_offset_hours=24 * 7)
    assert late.required_since is not None
    session, member = world["session"], world["learner"].staff_member
    recompute_completion(member.id, world["course"].id, fiscal_year_of(session.starts_at))
    db.session.commit()
    assert completed(db, world)  # its window closed 23 days before it was published
    assert services.unmet_required(member.id, world["course"].id, fiscal_year_of(session.starts_at)) == ([], None)
    # Widened to reach back past the publication: it counts again (the learner can still answer).
    late.closes_offset_hours = 24 * 60
    db.session.commit()
    missing, _last = services.unmet_required(member.id, world["course"].id, fiscal_year_of(session.starts_at))
    assert [a.id for a in missing] == [late.id]


def test_a_requirement_added_after_a_completion_takes_it_back_from_nobody(db, world, make_user):
    """A required survey published while its window is still open: a completion already granted
    stands, however it is looked at again (a roll call redone, the learner answering another
    activity); a learner who attends from then on must answer it. Made optional again, those it
    held back complete (the whole course, recomputed in the worker)."""
    from lms.common.timeutil import fiscal_year_of
    from lms.completion.services import recompute_completion

    other = make_user("learner", name="後日 出席")
    enrollment.enroll_self(world["session"].id, other)
    db.session.commit()
    attend(db, world)  # held 30 days ago, attended: completed (the other one marked absent)
    assert completed(db, world)
    session, course = world["session"], world["course"]
    first = db.session.scalar(select(Completion).where(Completion.course_id == course.id))
    serial = first.certificate_serial
    late = build(db, world, SURVEY, opens_anchor=END, opens_offset_hours=0, closes_anchor=END,
                 closes_offset_hours=24 * 60)  # open for another 30 days
    assert late.required_since is not None
    # The roll call corrected: the other one was there after all.
    attendance.record_roll_call(session, {world["learner"].staff_member.id, other.staff_member.id}, world["trainer"])
    db.session.commit()
    recompute_completion(world["learner"].staff_member.id, course.id, fiscal_year_of(session.starts_at))
    db.session.commit()
    assert completed(db, world)
    assert db.session.get(Completion, first.id).certificate_serial == serial
    others = select(Completion).where(Completion.staff_member_id == other.staff_member.id)
    assert db.session.scalar(others) is None  # not completed before the survey became a requirement: it waits for it

    # Made optional: the learner it held back completes, nobody else changes.
    data = services.ActivityInput(kind=SURVEY, title=late.title, required=False, opens_anchor=END, opens_offset_hours=0,
                                  closes_anchor=END, closes_offset_hours=24 * 60)
    services.update_activity(world["trainer"], late, data)
    db.session.commit()
    assert late.required_since is None
    db.session.expire_all()
    assert db.session.scalar(others).status == COMPLETED
    # Required again: from now on (those completed meanwhile keep their completion).
    services.update_activity(world["trainer"], late, services.ActivityInput(**{**data.__dict__, "required": True}))
    db.session.commit()
    recompute_completion(other.staff_member.id, course.id, fiscal_year_of(session.starts_at))
    db.session.commit()
    assert db.session.scalar(others).status == COMPLETED


def test_unpublishing_a_requirement_lets_those_it_held_back_complete(db, world):
    survey = build(db, world)
    attend(db, world)
    assert not completed(db, world)
    services.set_published(world["trainer"], survey, False)
    db.session.commit()
    assert survey.required_since is None and completed(db, world)


def test_the_pass_mark_stays_once_someone_has_taken_the_quiz(db, world):
    """Results already given would contradict a new pass mark (67 点 「合格」 under a mark of 100)."""
    quiz = build(db, world, QUIZ, questions=[services.QuestionInput(kind=SINGLE, prompt="正しいものは", choices=["A", "B"],
                                                                   correct=[0])], pass_pct=60, max_attempts=3)
    data = services.ActivityInput(kind=QUIZ, title=quiz.title, pass_pct=100, max_attempts=3, opens_anchor=START,
                                  opens_offset_hours=-24 * 365, closes_anchor=END, closes_offset_hours=24 * 365)
    assert "pass_pct" in services.update_activity(world["trainer"], quiz, data)  # nobody has taken it yet
    db.session.commit()
    services.start_attempt(quiz.id, world["learner"])
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        services.update_activity(world["trainer"], quiz, services.ActivityInput(**{**data.__dict__, "pass_pct": 50}))
    assert "合格点" in refused.value.message and refused.value.context["field"] == "pass_pct"
    db.session.rollback()
    assert db.session.get(type(quiz), quiz.id).pass_pct == 100
    # Other settings still change (more attempts).
    assert "max_attempts" in services.update_activity(world["trainer"], quiz,
                                                      services.ActivityInput(**{**data.__dict__, "max_attempts": 4}))
    db.session.commit()


def test_questions_with_answers_change_only_harmlessly(db, world):
    survey = build(db, world)
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)
    db.session.commit()
    choice = survey.questions[1]
    with pytest.raises(Conflict):  # a choice removed would change what answers mean
        services.update_question(world["trainer"], choice, services.QuestionInput(kind=SINGLE, prompt="x", choices=["起案", "保存"]))
    db.session.rollback()
    services.update_question(world["trainer"], choice, services.QuestionInput(
        kind=SINGLE, prompt="一番役立った内容（1つ）", choices=["起案", "決裁", "保存", "その他"]))  # one added at the end
    db.session.commit()
    with pytest.raises(Conflict):
        services.delete_question(world["trainer"], choice)
    db.session.rollback()
    with pytest.raises(Conflict):
        services.add_question(world["trainer"], survey, services.QuestionInput(kind=TEXT, prompt="新しい必須の質問"))
    db.session.rollback()
    with pytest.raises(Conflict):
        services.update_activity(world["trainer"], survey, services.ActivityInput(kind=SURVEY, title="x", anonymous=True))
    db.session.rollback()


def test_the_pages(db, world, client, login_as):
    survey = build(db, world)
    login_as(user=world["trainer"])
    assert client.get(f"/manage/courses/{world['course'].id}/activities").status_code == 200
    assert client.get(f"/manage/activities/{survey.id}").status_code == 200
    assert client.get(f"/manage/activity-questions/{survey.questions[0].id}").status_code == 200
    created = client.post(f"/manage/courses/{world['course'].id}/activities", data={
        "kind": "quiz", "title": "確認テスト", "required": "y", "opens_anchor": "end", "opens_offset_hours": "0",
        "closes_anchor": "end", "closes_offset_hours": "168", "pass_pct": "60", "max_attempts": "2"})
    assert created.status_code == 302
    login_as(user=world["learner"])
    page = client.get(f"/activities/{survey.id}")
    assert page.status_code == 200 and "研修の満足度" in page.get_data(as_text=True)
    refused = client.post(f"/activities/{survey.id}", data={"action": "submit"})
    assert refused.status_code == 400 and "この質問は回答が必要です" in refused.get_data(as_text=True)
    done = client.post(f"/activities/{survey.id}", data={"action": "submit", **form(survey, 4, 2)})
    assert done.status_code == 302
    assert "提出済み" in client.get("/me").get_data(as_text=True)
    assert client.get(f"/activities/{survey.id + 1000}").status_code == 404
    login_as(user=factories.make_user("learner"))
    assert client.get(f"/activities/{survey.id}").status_code == 404  # no place in the course: nothing to see


def test_results_count_every_kind_of_answer(db, world, make_user):
    """Choices, scales, several choices, numbers, dates (as offices write them: 2026/4/1 is
    2026-04-01) and texts give the same figures on SQLite and PostgreSQL, per session and
    across sessions."""
    from lms.activities import results

    Q = services.QuestionInput
    survey = build(db, world, questions=[
        Q(kind=SCALE, prompt="満足度"),
        Q(kind=SINGLE, prompt="分かりやすさ", choices=["はい", "いいえ"], required=False),
        Q(kind=MULTIPLE, prompt="役立った内容", choices=["起案", "決裁", "保存"], required=False),
        Q(kind=NUMBER, prompt="勤続年数", required=False),
        Q(kind=DATE, prompt="受講希望日", required=False),
        Q(kind=TEXT, prompt="ご意見", required=False),
        Q(kind=LONGTEXT, prompt="詳しく", required=False),
    ])
    people = [world["learner"]]
    for _n in range(3):
        person = make_user("learner")
        enrollment.enroll_self(world["session"].id, person)
        people.append(person)
    db.session.commit()
    answers = [
        (5, 0, ["0", "2"], "12.5", "2026-04-01", "特になし", "資料が\n分かりやすい"),
        (4, 1, ["2"], "３", "2026/4/1", "特になし", None),
        (4, None, None, "-2", None, "演習を長く", "資料が\n分かりやすい"),
        (1, 0, ["0", "1", "2"], None, "2026-05-10", "特になし", None),
    ]
    for person, values in zip(people, answers, strict=True):
        _done, errors = services.save(survey.id, person, form(survey, *values), submit=True)
        assert not errors
        db.session.commit()
    for session_id in (None, world["session"].id):
        shown = results.results(survey, session_id)
        assert shown.total == 4 and shown.shown
        scale, single, multiple, number, day, text, longtext = shown.questions
        assert scale.counts == [("不満", 1), ("やや不満", 0), ("どちらともいえない", 0), ("おおむね満足", 2), ("満足", 1)]
        assert (scale.answered, scale.mean, scale.low, scale.high) == (4, 3.5, 1.0, 5.0)
        assert single.counts == [("はい", 2), ("いいえ", 1)] and single.answered == 3
        assert multiple.counts == [("起案", 2), ("決裁", 1), ("保存", 3)] and multiple.answered == 3
        assert (number.answered, number.mean, number.low, number.high) == (3, 4.5, -2.0, 12.5)
        assert day.texts == [("2026-04-01", 2), ("2026-05-10", 1)]
        assert text.texts == [("特になし", 3), ("演習を長く", 1)] and text.answered == 4
        assert longtext.texts == [("資料が\n分かりやすい", 2)] and longtext.more_texts == 0
    assert results.results(survey, world["session"].id + 1000).total == 0


def test_results_show_groups_of_five_and_no_names(db, world, make_user, client, login_as):
    survey = build(db, world, anonymous=True)
    people = [world["learner"]]
    for _n in range(5):
        person = make_user("learner", name="匿名 太郎")
        enrollment.enroll_self(world["session"].id, person)
        people.append(person)
    db.session.commit()
    for n, person in enumerate(people[:4]):  # four answers: fewer than five, nothing shown
        services.save(survey.id, person, form(survey, 5 - n % 2, n % 3, f"意見{n}"), submit=True)
        db.session.commit()
    from lms.activities import results

    held = results.results(survey)  # (across sessions the small session's answers do not count at all)
    assert held.total == 0 and not held.shown and all(not q.counts and not q.texts for q in held.questions)
    own = results.results(survey, world["session"].id)
    assert own.total == 4 and not own.shown and all(not q.counts and not q.texts for q in own.questions)
    assert held.by_session == []  # a small session is merged; a merged group still under five is not shown
    import io
    import zipfile

    login_as(user=world["trainer"])
    small = zipfile.ZipFile(io.BytesIO(client.get(f"/manage/activities/{survey.id}/results.xlsx").data))
    small_sheet = small.read("xl/worksheets/sheet1.xml").decode()  # (inline strings)
    # Answers exist, but too few to show: the file says so, as the page does, never "0 answers".
    assert "回答が5件未満のため、結果は表示しません。" in small_sheet and "回答 0 件" not in small_sheet
    assert "意見0" not in small_sheet
    for n, person in enumerate(people[4:], start=4):
        services.save(survey.id, person, form(survey, 3, 1, f"意見{n}"), submit=True)
        db.session.commit()
    shown = results.results(survey)
    assert shown.shown and shown.total == 6
    scale = shown.questions[0]
    assert dict(scale.counts)["満足"] == 2 and scale.mean is not None
    assert shown.questions[2].texts == [(f"意見{n}", 1) for n in range(6)]
    login_as(user=world["trainer"])
    page = client.get(f"/manage/activities/{survey.id}/results")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "回答 6 件" in html
    assert not any(p.display_name in html or p.staff_member.full_name in html for p in people)
    export = client.get(f"/manage/activities/{survey.id}/results.xlsx")
    assert export.status_code == 200
    sheet = zipfile.ZipFile(io.BytesIO(export.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "意見5" in sheet and "匿名 太郎" not in sheet and "受講 花子" not in sheet
    assert "_%E5%9B%9E%E7%AD%94.xlsx" in export.headers["Content-Disposition"]  # 「_回答」
    client.post("/lang", data={"lang": "en", "next": "/"})  # in English, the file's name too
    export = client.get(f"/manage/activities/{survey.id}/results.xlsx")
    assert "_answers.xlsx" in export.headers["Content-Disposition"]


def test_a_reminder_before_a_required_activity_closes(db, world, make_user):
    from lms.notifications.activity_reminders import ACTIVITY_DUE, queue_activity_reminders
    from lms.notifications.models import OutboxMail

    session = world["session"]
    survey = build(db, world, closes_anchor=START, closes_offset_hours=-24)  # closes a day before the start
    closes = session.starts_at - timedelta(hours=24)
    assert queue_activity_reminders(closes - timedelta(hours=100)) == 0  # not yet
    assert queue_activity_reminders(closes - timedelta(hours=10)) == 1
    db.session.commit()
    assert queue_activity_reminders(closes - timedelta(hours=9)) == 0  # once
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == ACTIVITY_DUE))
    assert survey.title in mail.subject and f"/activities/{survey.id}" in mail.body_text
    # Someone who has done it is not reminded.
    other = make_user("learner")
    enrollment.enroll_self(session.id, other)
    db.session.commit()
    services.save(survey.id, other, form(survey, 5, 0), submit=True)
    db.session.commit()
    assert queue_activity_reminders(closes - timedelta(hours=8)) == 0


def test_completion_follows_in_the_worker_once_committed(db, world, monkeypatch):
    """Outside tests the recomputation is a job enqueued after the commit (never for a change
    rolled back); should the queue refuse it, it runs at once rather than being lost."""
    from lms.common.jobs import huey
    from lms.completion import tasks

    survey = build(db, world)
    attend(db, world)
    enqueued = []
    monkeypatch.setattr(huey, "immediate", False)
    monkeypatch.setattr(tasks, "recompute_for_session_task", lambda *args: enqueued.append(args))
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)
    assert enqueued == []  # not before the commit
    db.session.rollback()
    assert enqueued == [] and not completed(db, world)  # nor for a change rolled back
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)
    db.session.commit()
    assert enqueued == [(world["learner"].staff_member.id, world["session"].id)]
    assert not completed(db, world)  # the worker's to do
    tasks.recompute_now(*enqueued[0])  # …as the worker does
    assert completed(db, world)


def test_a_queue_outage_does_not_lose_the_completion(db, world, monkeypatch):
    from lms.common.jobs import huey
    from lms.completion import tasks

    survey = build(db, world)
    attend(db, world)
    monkeypatch.setattr(huey, "immediate", False)

    def refuse(*_args):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks, "recompute_for_session_task", refuse)
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)
    db.session.commit()
    assert completed(db, world)


def test_a_second_place_in_the_course_does_not_hide_work_handed_in(db, world, make_session):
    """A learner who holds places in two sessions of the course (a later one booked after the
    first was held): an activity handed in for the first stays with the first (shown as done,
    counted for the year); one not handed in follows the session whose window is open."""
    learner, first = world["learner"], world["session"]
    survey = build(db, world, opens_anchor=END, opens_offset_hours=0, closes_anchor=END, closes_offset_hours=24 * 7)
    prework = build(db, world, PREWORK, opens_anchor=START, opens_offset_hours=-24 * 30, closes_anchor=START,
                    closes_offset_hours=0)
    second = make_session(world["course"], starts_in=timedelta(days=20), title="第2回")
    enrollment.enroll_self(second.id, learner)
    db.session.commit()
    now = utcnow().replace(microsecond=0)
    first.starts_at, first.ends_at = now - timedelta(hours=3), now - timedelta(hours=1, minutes=30)  # held today
    second.starts_at, second.ends_at = now + timedelta(hours=3), now + timedelta(hours=4, minutes=30)
    db.session.commit()

    assert services.place_of(survey, learner).session.id == first.id  # open for the first only
    done, errors = services.save(survey.id, learner, form(survey, 5, 1, "参考になった"), submit=True)
    db.session.commit()
    assert not errors and done.session_id == first.id
    assert services.place_of(prework, learner).session.id == second.id  # the first's has closed

    # Once the second is held too, the survey handed in for the first still stands.
    second.starts_at, second.ends_at = now - timedelta(hours=1), now - timedelta(minutes=10)
    db.session.commit()
    place = services.place_of(survey, learner)
    assert place.session.id == first.id and place.submission is not None and place.submission.status == SUBMITTED
    todo = {t.activity.id: t for t in services.todos(learner.staff_member.id)}
    assert todo[survey.id].done and todo[survey.id].session.id == first.id
    with pytest.raises(Conflict, match="すでに提出"):
        services.save(survey.id, learner, form(survey, 1, 0, ""), submit=True)
    db.session.rollback()


JA_SCALE = ["不満", "やや不満", "どちらともいえない", "おおむね満足", "満足"]
EN_SCALE = ["Dissatisfied", "Somewhat dissatisfied", "Neutral", "Mostly satisfied", "Satisfied"]


@pytest.mark.parametrize("written_in", ["ja", "en"])
def test_a_scale_without_labels_is_shown_in_the_readers_language(db, world, written_in):
    """A 5-point scale added without labels gets the default ones, kept as the Japanese words
    whatever the language of the trainer's page and shown in each reader's language (a survey
    built on an English page showed "Dissatisfied" to Japanese learners); labels given are kept
    and shown as written."""
    with force_locale(written_in):
        activity = build(db, world, questions=[
            services.QuestionInput(kind=SCALE, prompt="満足度"),
            services.QuestionInput(kind=SCALE, prompt="難易度", choices=["易", "やや易", "普通", "やや難", "難"]),
        ])
    default, given = sorted(activity.questions, key=lambda q: q.position)
    assert default.choices == JA_SCALE
    assert given.choices == ["易", "やや易", "普通", "やや難", "難"]
    for reader, labels in (("ja", JA_SCALE), ("en", EN_SCALE)):
        with force_locale(reader):
            assert default.shown_choices == labels
            assert given.shown_choices == ["易", "やや易", "普通", "やや難", "難"]
    # A question stored with the English defaults (written on an English page before) reads in Japanese too.
    default.choices = list(EN_SCALE)
    with force_locale("ja"):
        assert default.shown_choices == JA_SCALE
    # Labels of another length are refused with a word, not replaced by the defaults.
    with pytest.raises(InvalidInput, match="5行で入力してください") as refused:
        services.add_question(world["trainer"], activity,
                              services.QuestionInput(kind=SCALE, prompt="理解度", choices=["1", "2"]))
    assert refused.value.context["field"] == "choices"


def test_a_scale_answered_in_english_reads_in_japanese_on_the_pages(app, db, world, client, login_as):
    """The answer page and the results page show a default scale in the reader's language."""
    with force_locale("en"):
        activity = build(db, world, questions=[services.QuestionInput(kind=SCALE, prompt="Q1")])
    login_as(user=world["trainer"])
    for language, labels in (("ja", JA_SCALE), ("en", EN_SCALE)):
        page = client.get(f"/manage/activities/{activity.id}/results",
                          headers={"Accept-Language": language}).get_data(as_text=True)
        assert all(label in page for label in labels), language
        other = EN_SCALE if language == "ja" else JA_SCALE
        assert not any(label in page for label in other[1:]), language


def test_questions_added_from_several_tabs_at_once_each_get_their_place(app, live_server, db, world):
    """Three questions added at the same instant each get a place of their own (4, 5, 6 after
    the survey's three; the activity's row is
    locked while the next position is read), and the same bank question added at once is
    kept once."""
    survey = build(db, world, questions=[], publish=False)
    activity_id, course_id = survey.id, world["course"].id
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, world['trainer'])}"

    def at_once(path, bodies):
        barrier = threading.Barrier(len(bodies))

        def post(body):
            barrier.wait(10)
            return requests.post(f"{live_server.url}{path}", data=body, headers={"Cookie": cookie},
                                 allow_redirects=False, timeout=60).status_code

        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(post, bodies))

    codes = at_once(f"/manage/activities/{activity_id}/questions",
                    [{"kind": TEXT, "prompt": f"質問 {n}", "required": "y", "points": "1"} for n in range(3)])
    assert set(codes) == {302}, codes
    bank = {"kind": SINGLE, "prompt": "正しい起案の順序は", "choices": "起案\n決裁\n施行", "correct": "1",
            "required": "y", "points": "1"}
    codes = at_once(f"/manage/courses/{course_id}/question-bank", [bank] * 3)
    assert all(code in (200, 302, 409) for code in codes), codes
    db.session.rollback()
    positions = db.session.scalars(select(ActivityQuestion.position).where(ActivityQuestion.activity_id == activity_id)
                                   .order_by(ActivityQuestion.position)).all()
    assert positions == [1, 2, 3, 4, 5, 6]
    assert len(db.session.scalars(select(BankQuestion).where(BankQuestion.course_id == course_id)).all()) == 1


def _past_close(db, world, quiz, hours=1):
    """Move the learner's session so that the quiz's window closed ``hours`` ago."""
    session = world["session"]
    shift = (services.window(quiz, session)[1] - utcnow()) + timedelta(hours=hours)
    session.starts_at -= shift
    session.ends_at -= shift
    db.session.commit()


def test_right_answers_wait_while_the_learner_may_still_take_the_quiz(db, world, client, login_as):
    """With late answers taken, a learner with an attempt left after the close could read the
    right answers and pass with them, and so could anyone of the course who has not answered
    yet (told by a learner with none left): the review shows them only once no late answers
    are taken."""
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=2, allow_late=True, show_answers=True,
                 closes_anchor=END, closes_offset_hours=1)
    learner = world["learner"]
    services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 1, ["2"], 1), submit=True)  # failed
    db.session.commit()
    _past_close(db, world, quiz)
    login_as(user=learner)
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert "正解：" not in page and "受験を始める（2回目）" in page
    services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 1, ["2"], 1), submit=True)  # no attempt left now
    db.session.commit()
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    # Late answers still taken: anyone who has not answered yet could answer late with them.
    assert "正解は、締切後の提出の受付が終わってから表示します。" in page
    assert "正解：" not in page and "規程" not in page
    quiz.allow_late = False  # the trainer stops taking late answers
    db.session.commit()
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert "正解：" in page and "規程" in page and "正解は、締切後の提出の受付が終わってから" not in page


def test_right_answers_wait_for_the_courses_last_session_to_close(db, world, client, login_as, make_session):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, show_answers=True,
                 closes_anchor=END, closes_offset_hours=1)
    learner = world["learner"]
    services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 1, ["2"], 1), submit=True)
    db.session.commit()
    _past_close(db, world, quiz)
    later = make_session(world["course"], capacity=20, starts_in=timedelta(days=3))
    db.session.commit()
    login_as(user=learner)
    assert "正解" not in client.get(f"/activities/{quiz.id}").get_data(as_text=True)  # the later session answers it still
    later.status = "cancelled"  # a session called off takes nobody's quiz
    db.session.commit()
    assert "正解" in client.get(f"/activities/{quiz.id}").get_data(as_text=True)


def test_an_attempt_started_before_the_close_is_scored_not_refused(db, world, client, login_as):
    """The window closing during an attempt ends the attempt (its deadline is the earlier of
    the time limit and the close, shown as such) and scores what was saved by then; it was
    refused with 「締め切りました」, never scored, and used up the attempt."""
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, time_limit_minutes=60,
                 closes_anchor=END, closes_offset_hours=1)
    learner = world["learner"]
    _past_close(db, world, quiz, hours=-0.25)  # closes in 15 minutes
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    closes = services.window(quiz, world["session"])[1]
    assert services.deadline_of(quiz, attempt) == closes  # before the time limit's end
    login_as(user=learner)
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert "回答の受付は" in page and f'data-deadline="{closes.isoformat()}"' in page
    services.save(quiz.id, learner, form(quiz, 0), submit=False)  # one right answer, saved in time
    db.session.commit()
    _past_close(db, world, quiz, hours=0.1)  # the window closed six minutes ago
    attempt.started_at -= timedelta(minutes=21)
    db.session.commit()
    # Opened again now: the deadline that passed is named — the close, not the time limit.
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert "回答の受付の締切を過ぎました。締切までに保存した回答で採点します。" in page and "制限時間を過ぎました" not in page
    response = client.post(f"/activities/{quiz.id}", data={"action": "submit", **form(quiz, 0, ["0", "1"], 30)},
                           follow_redirects=True)
    assert response.status_code == 200
    assert "回答の受付の締切を過ぎたため、締切までに保存した回答で採点しました：50点" in response.get_data(as_text=True)
    db.session.refresh(attempt)
    assert attempt.status == SUBMITTED and attempt.score_pct == 50 and not attempt.late


def test_an_expired_attempt_after_the_close_is_scored_when_the_learner_comes_back(db, world):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=2, closes_anchor=END, closes_offset_hours=1)
    learner = world["learner"]
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=False)
    db.session.commit()
    _past_close(db, world, quiz)
    attempt.started_at -= timedelta(days=1000)  # (started in time, long before)
    db.session.commit()
    scored = services.start_attempt(quiz.id, learner)  # no new attempt after the close, but this one counts
    db.session.commit()
    assert scored.id == attempt.id and scored.status == SUBMITTED and scored.passed


def test_reminders_go_only_to_those_who_can_still_act_and_once_it_is_open(db, world, make_user):
    """No reminder to a learner whose report waits for its review or who has no quiz attempt
    left; none before the activity opens (and it is not used up then: it goes once open)."""
    from lms.notifications.activity_reminders import ACTIVITY_DUE, queue_activity_reminders
    from lms.notifications.models import OutboxMail

    session, learner = world["session"], world["learner"]
    closes_at = {"closes_anchor": START, "closes_offset_hours": -24}  # a day before the start
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")], **closes_at)
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=1, **closes_at)
    services.save(report.id, learner, form(report, "学んだ。"), submit=True)
    services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 1, ["2"], 1), submit=True)  # failed, no attempt left
    db.session.commit()
    later = build(db, world, SURVEY, opens_anchor=START, opens_offset_hours=-30, **closes_at)  # opens 6 hours before it closes
    closes = session.starts_at - timedelta(hours=24)
    assert queue_activity_reminders(closes - timedelta(hours=10)) == 0  # nothing to do, or not open yet
    db.session.commit()
    assert queue_activity_reminders(closes - timedelta(hours=5)) == 1  # open now
    db.session.commit()
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == ACTIVITY_DUE))
    assert later.title in mail.subject and report.id != later.id


def test_a_returned_report_is_told_to_its_writer_with_the_comment(db, world, make_user):
    from lms.notifications.models import OutboxMail

    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    learner, office = world["learner"], make_user("municipal_admin", name="研修担当 高橋")
    done, _errors = services.save(report.id, learner, form(report, "起案の基本を学んだ。"), submit=True)
    db.session.commit()
    services.review_report(done.id, office, services.RETURN, "職場でどう活かすかも書いてください。")
    db.session.commit()
    mails = db.session.scalars(select(OutboxMail).where(OutboxMail.staff_member_id == learner.staff_member.id,
                                                        OutboxMail.kind == "report_returned")).all()
    assert len(mails) == 1
    assert mails[0].subject.endswith(f"受講報告が差し戻されました：{report.course.title}「{report.title}」")
    assert "職場でどう活かすかも書いてください。" in mails[0].body_text and f"/activities/{report.id}" in mails[0].body_text


def test_a_refused_review_keeps_the_comment_at_its_report(db, world, client, login_as):
    """A comment within the page's 2000 characters but sent with CRLF line breaks is taken (a
    line break is one character, stored as LF); a return without a comment comes back with the
    error at that report's field and what was typed kept."""
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    done, _errors = services.save(report.id, world["learner"], form(report, "起案の基本を学んだ。"), submit=True)
    db.session.commit()
    login_as("municipal_admin")
    missing = client.post(f"/reports/{done.id}", data={"decision": "return", "comment": "  "})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 422 and f'href="#comment-{done.id}"' in html
    assert f'aria-describedby="comment-{done.id}-error"' in html and "差し戻す理由を入力してください。" in html
    long = "\r\n".join(["あ" * 99] * 20)  # 1980 characters and 19 line breaks: 1999 as the page counts
    too_long = client.post(f"/reports/{done.id}", data={"decision": "return", "comment": long + "い" * 10})
    assert too_long.status_code == 422 and "2000文字以内" in too_long.get_data(as_text=True)
    assert "あ" * 99 + "\n" + "あ" * 99 in too_long.get_data(as_text=True)  # what was typed, kept
    returned = client.post(f"/reports/{done.id}", data={"decision": "return", "comment": long})
    assert returned.status_code == 302
    db.session.refresh(done)
    assert done.review_comment == long.replace("\r\n", "\n")


def test_a_training_office_does_not_confirm_its_own_report(db, world, client):
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    office = factories.make_user(("municipal_admin", "learner"), name="研修担当 自分")
    enrollment.enroll_self(world["session"].id, office)
    db.session.commit()
    own, _errors = services.save(report.id, office, form(report, "自分の報告。"), submit=True)
    theirs, _errors = services.save(report.id, world["learner"], form(report, "花子の報告。"), submit=True)
    db.session.commit()
    assert [s.id for s in services.reports_to_review(office)] == [theirs.id]  # no buttons on their own
    assert not services.is_reviewer(office, own)
    with pytest.raises(Exception) as refused:
        services.review_report(own.id, office, services.CONFIRM)
    assert "自分の受講報告は確認・差し戻しできません" in str(refused.value)
    db.session.rollback()
    factories.sign_in(client, office)
    response = client.post(f"/reports/{own.id}", data={"decision": "confirm"}, follow_redirects=True)
    assert "自分の受講報告は確認・差し戻しできません" in response.get_data(as_text=True)
    db.session.refresh(own)
    assert own.status == SUBMITTED


def test_a_requirement_added_after_a_completion_is_not_shown_as_one_to_that_learner(db, world, client, login_as):
    """The to-do list and the activity page say 「修了に必要」 by the completion's own rule: a
    survey made required after the learner's completion was granted does not count for them."""
    other = factories.make_user("learner")
    enrollment.enroll_self(world["session"].id, other)
    db.session.commit()
    attend(db, world)  # the other one absent: not completed
    assert completed(db, world)
    late = build(db, world, SURVEY, opens_anchor=END, opens_offset_hours=0, closes_anchor=END,
                 closes_offset_hours=24 * 60)
    (todo,) = services.todos(world["learner"].staff_member.id)
    assert todo.activity.id == late.id and not todo.required
    login_as(user=world["learner"])
    assert "（修了に必要）" not in client.get("/me").get_data(as_text=True)
    page = client.get(f"/activities/{late.id}").get_data(as_text=True)
    assert "修了に必要です" not in page and "任意です（修了には影響しません）" in page
    (todo,) = services.todos(other.staff_member.id)  # not completed: it is theirs to answer
    assert todo.required


def test_a_series_window_runs_from_its_first_day_to_its_last(db, world):
    """連続講座: an activity anchored at 研修回の終了 counts from the end of the series' last day
    (not the first's), one anchored at 開始 from the first day's start; reminders follow."""
    from lms.courses import services as courses
    from lms.notifications.activity_reminders import queue_activity_reminders

    first = world["session"]
    first.series_id = first.id
    db.session.commit()
    last = courses.create_session(world["trainer"], world["course"], courses.SessionInput(
        starts_at=first.starts_at + timedelta(days=2), ends_at=first.ends_at + timedelta(days=2), title="第3日",
        delivery=first.delivery, location="研修室A", capacity=first.capacity), part_of=first)
    db.session.commit()
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")],
                   opens_anchor=START, opens_offset_hours=-24, closes_anchor=END, closes_offset_hours=24)
    opens, closes = services.window(report, first)
    assert opens == first.starts_at - timedelta(hours=24)
    assert closes == last.ends_at + timedelta(hours=24)
    assert services.place_of(report, world["learner"]).closes == closes
    assert queue_activity_reminders(first.ends_at + timedelta(hours=1)) == 0  # the first day's +24h is not the close
    assert queue_activity_reminders(closes - timedelta(hours=10)) == 1


def test_results_for_a_session_that_is_none_are_not_found(db, world, client, login_as, make_course, make_session):
    survey = build(db, world)
    elsewhere = make_session(make_course(title="別の研修"))
    login_as(user=world["trainer"])
    base_url = f"/manage/activities/{survey.id}/results"
    assert client.get(base_url).status_code == 200
    assert client.get(f"{base_url}?session={world['session'].id}").status_code == 200
    assert client.get(f"{base_url}.xlsx?session={world['session'].id}").status_code == 200
    for value in ("abc", "-1", "99999999999999999999999", "0", str(elsewhere.id)):
        assert client.get(f"{base_url}?session={value}").status_code == 404, value
        assert client.get(f"{base_url}.xlsx?session={value}").status_code == 404, value


def test_the_reports_page_says_how_many_wait_in_all(db, world, client, login_as, monkeypatch):
    from lms.activities import routes

    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    for n in range(3):
        person = factories.make_user("learner") if n else world["learner"]
        if n:
            enrollment.enroll_self(world["session"].id, person)
            db.session.commit()
        services.save(report.id, person, form(report, f"報告{n}"), submit=True)
        db.session.commit()
    monkeypatch.setattr(routes, "REPORTS_PER_PAGE", 2)
    office = login_as("municipal_admin")
    assert services.count_reports_to_review(office) == 3
    html = client.get("/reports").get_data(as_text=True)
    assert "確認待ちの報告は全部で3件あります。古い順に2件ずつ表示しています。" in html


def test_an_anonymous_survey_keeps_no_draft_with_the_person(db, world, client, login_as):
    """無記名: no 下書き (the page offers none, a crafted post is refused), and a refused
    submission shows what was typed from the form, storing nothing with the person."""
    survey = build(db, world, anonymous=True)
    learner = world["learner"]
    with pytest.raises(Conflict):
        services.save(survey.id, learner, form(survey, 4, 1, "寒かった"), submit=False)
    db.session.rollback()
    login_as(user=learner)
    page = client.get(f"/activities/{survey.id}").get_data(as_text=True)
    assert 'value="save"' not in page
    refused = client.post(f"/activities/{survey.id}", data={"action": "submit", **form(survey, 4, None, "会場が寒かった")})
    assert refused.status_code == 400 and "会場が寒かった" in refused.get_data(as_text=True)  # from the form
    rows = db.session.scalars(select(ActivitySubmission).where(ActivitySubmission.activity_id == survey.id)).all()
    assert all(not row.answers for row in rows)
    done = client.post(f"/activities/{survey.id}", data={"action": "submit", **form(survey, 4, 1, "会場が寒かった")})
    assert done.status_code == 302
    db.session.expire_all()
    (row,) = db.session.scalars(select(ActivitySubmission).where(ActivitySubmission.activity_id == survey.id)).all()
    assert row.status == SUBMITTED and row.answers is None


def test_anonymous_answers_lie_in_key_order_not_in_the_order_they_came(db, world, make_user):
    """Found by QA: on SQLite the anonymous answers lay in the order they were stored (rowid),
    which lines up with the submissions' order and so names who wrote each one. SQLite keeps
    them in key order (WITHOUT ROWID); PostgreSQL's nightly rewrite does the same."""
    survey = build(db, world, anonymous=True)
    learners = [world["learner"]]
    for i in range(11):
        learner = make_user("learner", name=f"受講 {i}")
        enrollment.enroll_self(world["session"].id, learner)
        learners.append(learner)
    db.session.commit()
    for i, learner in enumerate(learners):
        services.save(survey.id, learner, form(survey, i % 5 + 1, 0, f"感想 {i}"), submit=True)
        db.session.commit()
    text_id = str(survey.questions[2].id)
    arrival = [f"感想 {i}" for i in range(len(learners))]

    def stored(sql: str) -> list[tuple[str, str]]:  # (key, text) in the order the database keeps them
        return [(key, (answers if isinstance(answers, dict) else json.loads(answers))[text_id])
                for key, answers in db.session.execute(text(sql)).all()]

    if db.engine.dialect.name == "postgresql":
        assert services.reorder_anonymous_answers()
        rows = stored("SELECT id, answers FROM activity_anonymous_answer ORDER BY ctid")
    else:
        assert not services.reorder_anonymous_answers()
        with pytest.raises(OperationalError):  # no rowid to read an order of arrival from
            db.session.execute(text("SELECT rowid FROM activity_anonymous_answer"))
        db.session.rollback()
        rows = stored("SELECT id, answers FROM activity_anonymous_answer")
    assert [key for key, _ in rows] == sorted(key for key, _ in rows)
    assert sorted(t for _, t in rows) == sorted(arrival) and [t for _, t in rows] != arrival


def test_a_date_the_month_has_not_is_named_as_such(db, world):
    """Found by QA: 2026-02-30 was told to be written 「2026-04-01 の形で」, which it was."""
    survey = build(db, world, questions=[services.QuestionInput(kind=DATE, prompt="受講希望日")])
    (day,) = survey.questions
    for typed, message in (("2026-02-30", "存在しない日付です（その月にない日）。"), ("２０２６年２月３０日", "存在しない日付です"),
                           ("2026-13-01", "日付を 2026-04-01 の形で入力してください。"), ("来週", "2026-04-01 の形")):
        _draft, errors = services.save(survey.id, world["learner"], form(survey, typed), submit=False)
        assert message in errors[day.id]
        db.session.rollback()


def test_answers_refused_after_the_close_stay_on_the_page(db, world, client):
    """Found by QA: text typed before the close and sent after it came back as a page without
    it (「締め切りました」 and nothing else); it is shown, read only, to be copied."""
    closed = build(db, world, closes_anchor=START, closes_offset_hours=-24 * 300)
    factories.sign_in(client, world["learner"])
    for action in ("save", "submit"):
        response = client.post(f"/activities/{closed.id}",
                               data={"action": action, **form(closed, 4, 0, "会場の<b>空調</b>が寒かった")})
        page = response.get_data(as_text=True)
        assert response.status_code == 409
        assert "締め切りました" in page and "受け付けられなかった回答" in page
        assert "会場の&lt;b&gt;空調&lt;/b&gt;が寒かった" in page  # (escaped: shown as typed)
    assert "受け付けられなかった回答" not in client.get(f"/activities/{closed.id}").get_data(as_text=True)


def test_a_name_of_invisible_characters_is_no_name(db, world, client):
    """Found by QA: an activity named with one zero-width space (U+200B) was saved, and listed
    with no visible name. Spaces and invisible characters around any form value go."""
    with pytest.raises(InvalidInput) as refused:
        services.create_activity(world["trainer"], world["course"],
                                 services.ActivityInput(kind=SURVEY, title="\u200b\u3000\ufeff"))
    assert refused.value.message == "名前を入力してください。"
    db.session.rollback()
    made = services.create_activity(world["trainer"], world["course"],
                                    services.ActivityInput(kind=SURVEY, title="\u200b研修アンケート\u2060 "))
    assert made.title == "研修アンケート"


def test_a_draw_count_of_every_scored_question_or_more_is_pointed_out(db, world, client):
    """Found by QA: 出題数 5 on a quiz of 2 scored questions was saved without a word; it is
    allowed (questions may be added later) and the settings say every scored question is asked."""
    choose = services.QuestionInput(kind=SINGLE, prompt="正しいものは", choices=["A", "B"], correct=[0])
    quiz = build(db, world, QUIZ, questions=[choose, services.QuestionInput(kind=TEXT, prompt="感想", required=False)],
                 pass_pct=60, max_attempts=3, draw_count=5)
    factories.sign_in(client, world["trainer"])
    page = client.get(f"/manage/activities/{quiz.id}").get_data(as_text=True)
    assert "出題数（5問）が採点する質問の数（1問）以上のため" in page
    quiz.draw_count = None  # (every question: nothing drawn, nothing to point out)
    db.session.commit()
    assert "採点する質問の数" not in client.get(f"/manage/activities/{quiz.id}").get_data(as_text=True)


def test_the_quiz_results_count_people_and_answers_in_english_grammar(db, world, client, login_as):
    """English counts agree with their number ("1 person", "0 people", "1 answer"), where the
    page said "1 people" and "0people"; Japanese keeps 「1 人」."""
    quiz = build(db, world, QUIZ, questions=quiz_questions(), pass_pct=75, max_attempts=2)
    learner = world["learner"]
    services.start_attempt(quiz.id, learner)
    db.session.commit()
    services.save(quiz.id, learner, form(quiz, 0, ["0", "1"], 30), submit=True)
    db.session.commit()
    login_as(user=world["trainer"])
    english = client.get(f"/manage/activities/{quiz.id}/results", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(r"Takers</dt>\s*<dd[^>]*>1 person<", english) and re.search(r"Passed</dt>\s*<dd[^>]*>1 person<", english)
    assert ">0 people</text>" in english and ">1 person</text>" in english  # the score chart
    assert ">1 answer</text>" in english and ">0 answers</text>" in english  # a question's choices
    assert "1 people" not in english and "0people" not in english and "1 answers" not in english
    japanese = client.get(f"/manage/activities/{quiz.id}/results", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert re.search(r"受験者</dt>\s*<dd[^>]*>1 人<", japanese) and ">1件</text>" in japanese


def test_a_page_left_open_on_a_finished_attempt_cannot_hand_in_the_next_one(db, world, client, login_as):
    """The answer form names its attempt: a tab still showing attempt 1 (its timer submitting
    at its deadline) is refused once attempt 2 has begun, which keeps its own answers and
    stays open; answers sent without the number (a page from before) still go to the open one."""
    from lms.activities.models import DRAFT, ActivitySubmission

    quiz = build(db, world, QUIZ, questions=quiz_questions(), pass_pct=75, max_attempts=2)
    login_as(user=world["learner"])
    assert client.post(f"/activities/{quiz.id}/attempts").status_code == 302
    page = client.get(f"/activities/{quiz.id}").get_data(as_text=True)
    assert '<input type="hidden" name="attempt" value="1">' in page
    one, many, number = (f"q{q.id}" for q in quiz.questions)
    first = {one: "1", many: "0", number: "1", "attempt": "1", "action": "submit"}
    assert client.post(f"/activities/{quiz.id}", data=first).status_code == 302  # attempt 1: failed
    assert client.post(f"/activities/{quiz.id}/attempts").status_code == 302  # attempt 2 begins
    stale = client.post(f"/activities/{quiz.id}", data=first, follow_redirects=True)
    body = stale.get_data(as_text=True)
    assert "このページの回答は1回目の受験のものです。いまは2回目を受験中" in body
    # The page shown is attempt 2's own: none of the old page's answers in its form (one click,
    # or its timer, from being handed in with attempt 2).
    assert '<input type="hidden" name="attempt" value="2">' in body
    assert not re.search(rf'name="{number}" value="1"', body) and not re.search(rf'name="{one}" value="1" checked', body)
    db.session.expire_all()
    second = db.session.scalar(select(ActivitySubmission).where(ActivitySubmission.activity_id == quiz.id,
                                                                ActivitySubmission.attempt == 2))
    assert second.status == DRAFT and not second.answers
    right = {one: "0", many: ["0", "1"], number: "30", "attempt": "2", "action": "submit"}
    assert client.post(f"/activities/{quiz.id}", data=right).status_code == 302
    db.session.expire_all()
    assert (second.status, second.passed) == (SUBMITTED, True)


def test_reopening_anything_but_a_returned_report_says_what_can_be_reopened(db, world):
    survey = build(db, world)
    with pytest.raises(Conflict, match="差し戻しがあるのは受講報告だけです"):
        services.reopen_returned(survey.id, world["learner"])
    db.session.rollback()
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    with pytest.raises(Conflict, match="この報告は差し戻されていません"):
        services.reopen_returned(report.id, world["learner"])
