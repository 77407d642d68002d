"""Pages: access, forms, the course page's buttons and reasons, escaping (both databases)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lms.common.timeutil import utcnow
from lms.courses.models import CANCELLED, DRAFT, PUBLISHED, Course, TrainingSession
from lms.enrollment import services as enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from tests import factories


def _course_form(**kw):
    form = {
        "title": "Teams操作研修",
        "summary": "会議とチャットの基本",
        "description_md": "## 内容\n- 会議の開き方",
        "category_id": "0",
        "target_audience": "全職員",
        "eligibility": "all",
        "completion_mode": "either",
        "attendance_threshold_pct": "75",
        "viewing_threshold_pct": "90",
        "organizer_mailbox": "",
        "save": "保存",
    }
    form.update(kw)
    return form


def _session_form(**kw):
    form = {
        "title": "第1回",
        "starts_at": "2030-12-03T14:00",
        "ends_at": "2030-12-03T16:00",
        "delivery": "teams",
        "location": "",
        "join_url": "https://teams.microsoft.com/l/meetup-join/x",
        "capacity": "30",
        "enroll_opens_at": "",
        "enroll_closes_at": "2030-12-01T17:00",
        "cancel_deadline": "",
        "save": "保存",
    }
    form.update(kw)
    return form


# ---------------------------------------------------------------- access


def test_catalogue_and_course_pages_need_sign_in(client, make_course):
    course = make_course()
    for url in ("/courses", f"/courses/{course.id}", "/manage/courses"):
        response = client.get(url)
        assert response.status_code in (302, 401), url
        if response.status_code == 302:
            assert "/auth/login" in response.headers["Location"]


def test_learner_cannot_reach_management_pages(client, login_as, make_course, make_session):
    session = make_session()
    login_as("learner")
    for url in ("/manage/courses", "/manage/courses/new", f"/manage/courses/{session.course_id}",
                f"/manage/courses/{session.course_id}/edit", f"/manage/courses/{session.course_id}/sessions/new",
                f"/manage/sessions/{session.id}/edit", f"/manage/sessions/{session.id}/cancel"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/manage/courses/{session.course_id}/publish").status_code == 403
    assert client.post("/manage/courses/new", data=_course_form()).status_code == 403
    assert db.session.scalar(select(Course).where(Course.title == "Teams操作研修")) is None


def test_trainer_cannot_edit_another_trainers_course(client, login_as, make_course, make_session):
    owner = factories.make_user("trainer")
    course = make_course(owner_id=owner.id, title="他人の研修")
    session = make_session(course)
    login_as("trainer")
    # Another trainer's course is answered exactly as one that does not exist.
    assert client.get(f"/manage/courses/{course.id}/edit").status_code == 404
    assert client.get("/manage/courses/2147483647/edit").status_code == 404
    assert client.post(f"/manage/courses/{course.id}/edit", data=_course_form(title="乗っ取り")).status_code == 404
    assert client.post(f"/manage/sessions/{session.id}/edit", data=_session_form()).status_code == 404
    assert client.post(f"/manage/sessions/{session.id}/cancel", data={"reason": "x"}).status_code == 404
    assert client.post(f"/manage/courses/{course.id}/cancel", data={"reason": "x"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Course, course.id).title == "他人の研修"
    assert db.session.get(TrainingSession, session.id).status != CANCELLED
    # ... and does not see it in the list, while a platform admin does.
    assert "他人の研修" not in client.get("/manage/courses").get_data(as_text=True)
    login_as("platform_admin")
    assert "他人の研修" in client.get("/manage/courses").get_data(as_text=True)
    assert client.get(f"/manage/courses/{course.id}/edit").status_code == 200


# ---------------------------------------------------------------- managing


def test_trainer_creates_publishes_and_adds_a_session_in_tokyo_time(client, login_as):
    trainer = login_as("trainer")
    response = client.post("/manage/courses/new", data=_course_form())
    assert response.status_code == 302
    course = db.session.scalar(select(Course).where(Course.title == "Teams操作研修"))
    assert course.owner_id == trainer.id and course.status == DRAFT
    assert client.get("/manage/courses").status_code == 200
    page = client.get(f"/manage/courses/{course.id}").get_data(as_text=True)
    assert "公開する" in page

    response = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(**{
        "quotas-0-municipality_id": str(factories.municipality("131016").id), "quotas-0-seats": "10",
    }))
    assert response.status_code == 302, response.get_data(as_text=True)
    session = db.session.scalar(select(TrainingSession).where(TrainingSession.course_id == course.id))
    # 14:00 in Tokyo is 05:00 UTC.
    assert session.starts_at.replace(tzinfo=UTC) == datetime(2030, 12, 3, 5, 0, tzinfo=UTC)
    assert session.enroll_closes_at.replace(tzinfo=UTC) == datetime(2030, 12, 1, 8, 0, tzinfo=UTC)
    assert [(q.municipality.code, q.seats) for q in session.quotas] == [("131016", 10)]

    assert client.post(f"/manage/courses/{course.id}/publish").status_code == 302
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == PUBLISHED
    edit = client.get(f"/manage/sessions/{session.id}/edit").get_data(as_text=True)
    assert 'value="2030-12-03 14:00"' in edit


def test_form_errors_are_shown_in_japanese_and_input_kept(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    response = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(
        ends_at="2030-12-03T13:00", location="第一会議室"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "終了日時は開始日時より後にしてください。" in page
    assert "第一会議室" in page
    response = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(starts_at="明日"))
    assert "日時は「2026-12-03 14:00」のように年・月・日 時:分の順で入力してください。" in response.get_data(as_text=True)
    response = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(capacity="三十"))
    assert "半角数字で入力してください。" in response.get_data(as_text=True)
    response = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(**{
        "capacity": "5",
        "quotas-0-municipality_id": str(factories.municipality("131016").id), "quotas-0-seats": "4",
        "quotas-1-municipality_id": str(factories.municipality("131024").id), "quotas-1-seats": "4",
    }))
    assert "割当人数の合計（8人）が定員（5人）を超えています。" in response.get_data(as_text=True)
    assert db.session.scalars(select(TrainingSession)).all() == []
    response = client.post("/manage/courses/new", data=_course_form(eligibility="list"))
    assert "対象の自治体を1つ以上選ぶか" in response.get_data(as_text=True)


@pytest.mark.parametrize("mailbox", ["not-an-email", "@metro.tokyo.lg.jp", "kenshu@", "kenshu@localhost",
                                     "kenshu@metro..lg.jp", "kenshu@@metro.lg.jp", "a@b@metro.lg.jp",
                                     "kenshu\u3000@metro.lg.jp", "kenshu@metro.lg.jp, x@y.jp"])
def test_an_organizer_mailbox_must_be_a_mail_address(client, login_as, make_course, mailbox):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, organizer_mailbox="kenshu@metro.tokyo.lg.jp")
    response = client.post(f"/manage/courses/{course.id}/edit", data=_course_form(organizer_mailbox=mailbox))
    assert response.status_code == 200
    assert "主催者メールボックスはメールアドレス（UPN）の形式で入力してください。" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Course, course.id).organizer_mailbox == "kenshu@metro.tokyo.lg.jp"


def test_a_mail_address_as_organizer_mailbox_is_saved(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    response = client.post(f"/manage/courses/{course.id}/edit",
                           data=_course_form(organizer_mailbox=" kenshu-teams@metro.example.lg.jp "))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Course, course.id).organizer_mailbox == "kenshu-teams@metro.example.lg.jp"


@pytest.mark.parametrize("capacity", ["0", "100001"])
def test_a_capacity_out_of_range_is_told_the_range(client, login_as, make_course, capacity):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    page = client.post(f"/manage/courses/{course.id}/sessions/new",
                       data=_session_form(capacity=capacity)).get_data(as_text=True)
    assert "定員は1から100000までの数で入力してください。" in page
    assert "1以上" not in page
    assert db.session.scalars(select(TrainingSession)).all() == []


@pytest.mark.parametrize(("seats", "message"), [
    ("-1", "0から100000までの数で入力してください。"),
    ("100001", "0から100000までの数で入力してください。"),
    ("abc", "半角数字で入力してください。"),
])
def test_a_bad_quota_row_is_listed_as_a_message_not_a_dict(client, login_as, make_course, seats, message):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    page = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(**{
        "quotas-0-municipality_id": str(factories.municipality("131016").id), "quotas-0-seats": seats,
    })).get_data(as_text=True)
    summary = re.search(r'<div class="error-summary".*?</div>', page, re.S).group(0)
    assert f'<a href="#quotas-0-seats">割当人数</a>: {message}</li>' in summary
    assert summary.count("<li>") == 1  # (a number's range is not told on top of "not a number")
    assert "{" not in summary and "[" not in summary and "&#39;" not in summary
    assert db.session.scalars(select(TrainingSession)).all() == []


def test_a_crafted_municipality_in_a_quota_row_is_told_in_the_page_s_words(client, login_as, make_course):
    """A quota row is a sub-form: WTForms' own messages there are worded as on every form
    (not its English 'Invalid Choice: could not coerce')."""
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    page = client.post(f"/manage/courses/{course.id}/sessions/new", data=_session_form(**{
        "quotas-0-municipality_id": "abc", "quotas-0-seats": "5"})).get_data(as_text=True)
    assert "一覧にある選択肢から選んでください。" in page
    assert "coerce" not in page and "Invalid" not in page
    assert db.session.scalars(select(TrainingSession)).all() == []


def test_add_quota_row_button_adds_a_row_without_saving(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    form = _session_form(add_quota="割当の行を追加")
    del form["save"]
    page = client.post(f"/manage/courses/{course.id}/sessions/new", data={
        **form, "quotas-0-municipality_id": "0", "quotas-0-seats": ""}).get_data(as_text=True)
    assert 'name="quotas-1-municipality_id"' in page
    assert db.session.scalars(select(TrainingSession)).all() == []


def test_course_form_lists_all_municipalities_grouped_and_saves_a_selection(client, login_as):
    login_as("trainer")
    page = client.get("/manage/courses/new").get_data(as_text=True)
    assert page.count('name="municipality_ids"') == 63
    for kind in ("特別区", "市", "町", "村"):
        assert f"<legend>{kind}</legend>" in page
    ids = [factories.municipality("131041").id, factories.municipality("131016").id]
    response = client.post("/manage/courses/new", data=_course_form(eligibility="list", municipality_ids=ids))
    assert response.status_code == 302
    course = db.session.scalar(select(Course))
    assert not course.eligible_all and course.eligible_municipality_ids == set(ids)


def test_description_preview_renders_without_saving(client, login_as):
    login_as("trainer")
    form = _course_form(description_md="**太字**<script>alert(1)</script>", preview="説明をプレビュー")
    del form["save"]
    page = client.post("/manage/courses/new", data=form).get_data(as_text=True)
    assert "<strong>太字</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert db.session.scalars(select(Course)).all() == []
    # The page comes back at its preview, not at the form's top (found by QA: focus lost).
    assert 'id="course-preview" tabindex="-1"' in page and 'formaction="#course-preview"' in page


def test_a_description_is_at_most_20000_characters_and_a_longer_one_is_neither_previewed_nor_saved(client, login_as):
    login_as("trainer")
    message = "20000文字以内で入力してください。"
    form = _course_form(description_md="[" * 20001, preview="説明をプレビュー")
    del form["save"]
    page = client.post("/manage/courses/new", data=form).get_data(as_text=True)
    assert message in page and 'id="preview-heading"' not in page
    response = client.post("/manage/courses/new", data=_course_form(description_md="*a" * 10001))
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert db.session.scalars(select(Course)).all() == []
    assert client.post("/manage/courses/new", data=_course_form(description_md="a" * 20000)).status_code == 302


def test_a_course_saved_with_a_longer_description_still_shows_and_its_edit_says_why_it_is_not_saved(
        client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, description_md="長い説明。" * 5000)  # 25,000 characters, from before the cap
    assert "長い説明。" in client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert client.get(f"/manage/courses/{course.id}/edit").status_code == 200
    response = client.post(f"/manage/courses/{course.id}/edit", data=_course_form(description_md=course.description_md))
    assert response.status_code == 200
    assert "20000文字以内で入力してください。" in response.get_data(as_text=True)


def test_markdown_at_the_cap_is_rendered_once_per_text_not_on_every_view():
    """The slowest marks markdown-it-py scans (「[」 and the like: about a second for 20,000)
    are rendered once; a page's next views take the rendered HTML."""
    import time

    from lms.common.markdown import render_markdown

    text = "[" * 19999 + "x"
    first = render_markdown(text)
    started = time.perf_counter()
    for _ in range(20):
        assert render_markdown(text) == first
    assert time.perf_counter() - started < 0.1


def test_editing_a_session_through_the_page_notifies_enrollees(client, login_as, make_course, make_session):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    session = make_session(course)
    learner = factories.make_user("learner")
    enrollment.enroll(session.id, learner.staff_member.id, learner)
    page = client.get(f"/manage/sessions/{session.id}/edit").get_data(as_text=True)
    assert "確定済みの申込者が 1 人います" in page
    from lms.common.timeutil import to_tokyo

    start = to_tokyo(session.starts_at) + timedelta(days=1)
    form = _session_form(
        starts_at=start.strftime("%Y-%m-%dT%H:%M"), ends_at=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        enroll_closes_at="", capacity=str(session.capacity))
    response = client.post(f"/manage/sessions/{session.id}/edit", data=form)
    assert response.status_code == 302
    from lms.notifications.models import OutboxMail

    assert [m.kind for m in db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "changed"))] == ["changed"]


def test_the_cancel_page_of_an_ended_session_says_at_once_that_it_cannot_be_cancelled(client, login_as, make_course,
                                                                                       make_session):
    trainer = login_as("trainer")
    ended = make_session(make_course(owner_id=trainer.id), starts_in=-timedelta(hours=3), minutes=60)
    answer = client.get(f"/manage/sessions/{ended.id}/cancel", follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert "終了した回は中止できません。" in html and "元に戻せません" not in html
    db.session.expire_all()
    assert db.session.get(TrainingSession, ended.id).status != CANCELLED


def test_cancel_pages_cancel_a_session_and_a_course(client, login_as, make_course, make_session):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    first = make_session(course)
    second = make_session(course, starts_in=timedelta(days=30))
    assert "元に戻せません" in client.get(f"/manage/sessions/{first.id}/cancel").get_data(as_text=True)
    assert client.post(f"/manage/sessions/{first.id}/cancel", data={"reason": "講師の都合"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(TrainingSession, first.id).status == CANCELLED
    assert client.post(f"/manage/courses/{course.id}/cancel", data={"reason": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == CANCELLED
    assert db.session.get(TrainingSession, second.id).status == CANCELLED


def test_cancel_pages_say_how_many_people_the_cancellation_touches(client, login_as, make_course, make_session):
    from lms.enrollment.queries import places_held

    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    small = make_session(course, capacity=1)
    other = make_session(course, starts_in=timedelta(days=30))
    empty = make_session(course, starts_in=timedelta(days=40))
    first, second, third = (factories.make_user("learner") for _ in range(3))
    enrollment.enroll(small.id, first.staff_member.id, first)  # confirmed
    enrollment.enroll(small.id, second.staff_member.id, second)  # waitlisted
    enrollment.enroll(other.id, first.staff_member.id, first)  # confirmed (the same person)
    course.requires_approval = True
    db.session.commit()
    enrollment.enroll(other.id, third.staff_member.id, third)  # pending approval
    page = client.get(f"/manage/sessions/{small.id}/cancel").get_data(as_text=True)
    assert "取り消される申込：2 人（受講確定 1 人・キャンセル待ち 1 人・承認待ち 0 人）。" in page
    assert "この回に申込者はいません。" in client.get(f"/manage/sessions/{empty.id}/cancel").get_data(as_text=True)
    page = client.get(f"/manage/courses/{course.id}/cancel").get_data(as_text=True)
    assert ("取り消される申込：これからの回 3 件の 4 件（受講確定 2 件・キャンセル待ち 1 件・承認待ち 1 件）、"
            "申込者 3 人。") in page
    ids = [small.id, other.id, empty.id]
    assert factories.count_statements(lambda: places_held(ids)) == 1


def test_cancelling_a_course_counts_only_the_sessions_it_cancels(client, login_as, make_course, make_session):
    """4 sessions to come and 1 cancelled before: 4 are counted; a second POST cancels nothing
    and says the course was already cancelled."""
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    sessions = [make_session(course, starts_in=timedelta(days=10 + n)) for n in range(5)]
    assert client.post(f"/manage/sessions/{sessions[0].id}/cancel", data={"reason": "講師の都合"}).status_code == 302
    client.get(f"/manage/courses/{course.id}")  # (the flash of that cancellation is shown)
    page = client.post(f"/manage/courses/{course.id}/cancel", data={"reason": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "これからの回 4 件を中止し" in page
    db.session.expire_all()
    assert {db.session.get(TrainingSession, s.id).status for s in sessions} == {CANCELLED}
    page = client.post(f"/manage/courses/{course.id}/cancel", data={"reason": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "この研修はすでに中止されています（中止する回は残っていませんでした）。" in page
    assert "件を中止し" not in page
    # Its cancel page offers no form any more: it says so, as a cancelled session's does.
    response = client.get(f"/manage/courses/{course.id}/cancel")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/manage/courses/{course.id}")
    page = client.get(f"/manage/courses/{course.id}").get_data(as_text=True)
    assert "この研修はすでに中止されています（中止する回は残っていませんでした）。" in page


def test_a_cancelled_session_offers_no_form_but_says_why(client, login_as, make_course, make_session):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    session = make_session(course, title="中止された回")
    kept = make_session(course, starts_in=timedelta(days=30))
    assert client.post(f"/manage/sessions/{session.id}/cancel", data={"reason": "講師の都合"}).status_code == 302
    manage = f"/manage/courses/{course.id}"
    for url, message in ((f"/manage/sessions/{session.id}/edit", "中止した回は編集できません。"),
                         (f"/manage/sessions/{session.id}/parts/new", "中止した回には日程や補講を追加できません。"),
                         (f"/manage/sessions/{session.id}/makeup/new", "中止した回には日程や補講を追加できません。"),
                         (f"/manage/sessions/{session.id}/cancel", "この回はすでに中止されています。")):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].endswith(manage), url
        page = client.get(manage).get_data(as_text=True)
        assert message in page, url
    # A make-up of a session that is no part of a 連続講座: no form offered (found by a QA pass:
    # the form named the missed day 「""」 and only its POST was refused).
    response = client.get(f"/manage/sessions/{kept.id}/makeup/new")
    assert response.status_code == 302 and response.headers["Location"].endswith(manage)
    assert "補講は連続講座の回に追加できます" in client.get(manage).get_data(as_text=True)
    # A POST is answered the same way, and changes nothing.
    response = client.post(f"/manage/sessions/{session.id}/edit", data=_session_form(title="変えた"))
    assert response.status_code == 302 and response.headers["Location"].endswith(manage)
    db.session.expire_all()
    assert db.session.get(TrainingSession, session.id).title == "中止された回"
    # The session still to come keeps its forms until the course itself is cancelled.
    assert client.get(f"/manage/sessions/{kept.id}/edit").status_code == 200
    assert client.post(f"/manage/courses/{course.id}/cancel", data={"reason": ""}).status_code == 302
    response = client.get(f"/manage/courses/{course.id}/sessions/new")
    assert response.status_code == 302 and response.headers["Location"].endswith(manage)
    assert "中止した研修には回を追加できません。" in client.get(manage).get_data(as_text=True)


# ---------------------------------------------------------------- catalogue and course page


def test_catalogue_page_searches_filters_and_links(client, login_as, make_course, make_session):
    course = make_course(title="Teams操作研修")
    make_session(course, capacity=12)
    make_course(title="Excel 入門")
    login_as("learner")
    page = client.get("/courses?q=操作").get_data(as_text=True)
    assert "Teams操作研修" in page and "Excel 入門" not in page
    assert f"/courses/{course.id}" in page
    assert "12席" in page
    assert "1件" in page
    page = client.get("/courses?q=%25&category=abc&month=bad&page=zzz").get_data(as_text=True)
    assert "条件に合う研修は見つかりませんでした" in page


def test_catalogue_paginates_with_filters_kept(client, login_as, make_course):
    for n in range(23):
        make_course(title=f"操作研修{n}", commit=False)
    db.session.commit()
    login_as("learner")
    page = client.get("/courses?q=操作&free=&mine=").get_data(as_text=True)
    assert page.count('class="card-link"') == 20
    assert "page=2" in page and "q=%E6%93%8D%E4%BD%9C" in page
    page = client.get("/courses?q=操作&page=2").get_data(as_text=True)
    assert page.count('class="card-link"') == 3


def test_titles_and_descriptions_are_escaped(client, login_as, make_course, make_session):
    course = make_course(title="<script>alert('t')</script>研修", summary="<b>太字</b>",
                         description_md="<img src=x onerror=alert(1)> [link](javascript:alert(2)) **ok**")
    make_session(course, location="<i>会場</i>")
    login_as("learner")
    listing = client.get("/courses").get_data(as_text=True)
    assert "<script>alert('t')</script>" not in listing
    assert "&lt;script&gt;" in listing and "&lt;b&gt;太字&lt;/b&gt;" in listing
    page = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "<script>alert('t')</script>" not in page
    assert "<img" not in page and "onerror" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert 'href="javascript:' not in page
    assert "<strong>ok</strong>" in page
    assert "&lt;i&gt;会場&lt;/i&gt;" in page


def test_drafts_and_cancelled_courses_are_404_for_learners_but_visible_to_their_trainer(client, login_as, make_course):
    trainer = factories.make_user("trainer")
    draft = make_course(status=DRAFT, owner_id=trainer.id, title="準備中の研修")
    cancelled = make_course(status=CANCELLED, owner_id=trainer.id)
    login_as("learner")
    assert client.get(f"/courses/{draft.id}").status_code == 404
    assert client.get(f"/courses/{cancelled.id}").status_code == 404
    assert client.get("/courses/999999").status_code == 404
    login_as(user=trainer)
    page = client.get(f"/courses/{draft.id}")
    assert page.status_code == 200 and "下書き" in page.get_data(as_text=True)
    assert client.get(f"/courses/{cancelled.id}").status_code == 200


def test_course_page_shows_seats_waitlist_my_status_and_buttons(client, login_as, make_course, make_session):
    course = make_course(title="満席の研修")
    full = make_session(course, capacity=1)
    open_session = make_session(course, capacity=5, starts_in=timedelta(days=30))
    others = [factories.make_user("learner") for _ in range(3)]
    for person in others:
        enrollment.enroll(full.id, person.staff_member.id, person)
    me = login_as("learner")
    mine = enrollment.enroll(full.id, me.staff_member.id, me)
    page = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "キャンセル待ち 3 番目" in page  # my position
    assert f'href="/enrollments/{mine.id}/cancel?next=' in page  # asks on a page (no window.confirm)
    assert f'action="/sessions/{open_session.id}/enroll"' in page
    assert "申し込む" in page
    assert re.search(r'data-label="キャンセル待ち"><div class="cell">3</div>', page)  # waitlist length (2 others + me)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"enroll_opens_at": "future"}, "申込受付は"),
        ({"enroll_closes_at": "past"}, "申込受付は締め切りました。"),
        ({"starts_in": timedelta(minutes=-10)}, "すでに開始しているため"),
        ({"status": CANCELLED}, "この回は中止になりました。"),
    ],
)
def test_course_page_says_why_i_cannot_enroll(client, login_as, make_course, make_session, kw, reason):
    course = make_course()
    values = dict(kw)
    if values.get("enroll_opens_at") == "future":
        values["enroll_opens_at"] = utcnow() + timedelta(days=3)
    if values.get("enroll_closes_at") == "past":
        values["enroll_closes_at"] = utcnow() - timedelta(hours=1)
    session = make_session(course, **values)
    login_as("learner")
    page = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert reason in page
    assert f'action="/sessions/{session.id}/enroll"' not in page


def test_course_page_says_my_municipality_is_not_eligible(client, login_as, make_course, make_session):
    course = make_course(eligible=["131041"])
    session = make_session(course)
    login_as("learner", "131016")
    page = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "あなたの所属する自治体の職員を対象としていません" in page
    assert "新宿区" in page
    assert f'action="/sessions/{session.id}/enroll"' not in page


def test_course_page_and_manage_list_cost_the_same_queries_whatever_their_size(client, login_as, make_course,
                                                                                make_session):
    from sqlalchemy import event

    def count(url):
        statements = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return len(statements)

    trainer = factories.make_user("trainer")
    small = make_course(owner_id=trainer.id, eligible=["131016", "131041"])
    big = make_course(owner_id=trainer.id, eligible=["131016", "131041", "131024", "131032", "131059"])
    me = factories.make_user("learner")
    for n in range(2):
        enrollment.enroll(make_session(small, starts_in=timedelta(days=5 + n)).id, me.staff_member.id, me)
    for n in range(8):
        enrollment.enroll(make_session(big, starts_in=timedelta(days=20 + n)).id, me.staff_member.id, me)
    login_as(user=me)
    assert count(f"/courses/{small.id}") == count(f"/courses/{big.id}")
    login_as(user=trainer)
    few = count("/manage/courses")
    for _ in range(5):
        make_session(make_course(owner_id=trainer.id))
    assert count("/manage/courses") == few


def test_publishing_needs_a_session_and_warns_of_teams_sessions_without_a_link(db, client, login_as, make_user,
                                                                              make_course, make_session, make_staff):
    from lms.enrollment import services as enrollment_services

    owner = make_user("trainer", "130001")
    course = make_course(owner=owner, status="draft", published_at=None)
    login_as(user=owner)
    refused = client.post(f"/manage/courses/{course.id}/publish", follow_redirects=True).get_data(as_text=True)
    assert "研修回がまだありません" in refused
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == "draft"

    session = make_session(course, delivery="teams", join_url="")
    published = client.post(f"/manage/courses/{course.id}/publish", follow_redirects=True).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == PUBLISHED
    assert "参加リンクがありません" in published and "後日お知らせします" in published

    # The learner's card says the link will follow instead of leaving the Teams row out.
    learner = make_user("learner", "131016", with_staff=False)
    member = make_staff(user=learner)
    assert enrollment_services.enroll(session.id, member.id, learner).status == "confirmed"
    db.session.commit()
    login_as(user=learner)
    assert "参加リンクは後日お知らせします" in client.get("/me").get_data(as_text=True)


def test_moving_a_session_onto_its_enrollees_other_session_is_confirmed_first(client, login_as, make_course,
                                                                              make_session):
    """A move that gives confirmed enrollees two sessions at once is refused with their names
    until the organiser ticks the box shown then; nothing changes before that."""
    from lms.common.timeutil import tokyo_to_utc

    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, title="移動する研修")
    moved = make_session(course, starts_in=timedelta(days=20))
    elsewhere = make_session(make_course(title="別の研修"), starts_in=timedelta(days=10))
    both, only_here = factories.make_user("learner", name="重複 花子"), factories.make_user("learner", name="単独 次郎")
    for session in (moved, elsewhere):
        enrollment.enroll_self(session.id, both)
    enrollment.enroll_self(moved.id, only_here)
    db.session.commit()
    local = (elsewhere.starts_at.replace(tzinfo=UTC) + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M")
    local_end = (elsewhere.ends_at.replace(tzinfo=UTC) + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M")
    form = _session_form(starts_at=local, ends_at=local_end, capacity=str(moved.capacity), enroll_closes_at="")
    response = client.post(f"/manage/sessions/{moved.id}/edit", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    # Each named as the organiser can tell namesakes apart: municipality and 職員番号.
    assert f"1 人（重複 花子（千代田区・{both.staff_member.employee_number}））" in page and "単独 次郎" not in page
    assert 'name="accept_clashes"' in page
    db.session.expire_all()
    assert db.session.get(TrainingSession, moved.id).starts_at.replace(tzinfo=UTC) != tokyo_to_utc(
        datetime.fromisoformat(local))
    assert 'name="accept_clashes"' not in client.get(f"/manage/sessions/{moved.id}/edit").get_data(as_text=True)
    response = client.post(f"/manage/sessions/{moved.id}/edit", data={**form, "accept_clashes": "y"})
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(TrainingSession, moved.id).starts_at.replace(tzinfo=UTC) == tokyo_to_utc(
        datetime.fromisoformat(local))


def test_control_characters_in_text_fields_become_spaces(client, login_as):
    """A pasted form feed or a hostile CR LF never reaches the database (a title goes into mail
    headers and CSV rows); line breaks stay in a multi-line field."""
    login_as("trainer")
    response = client.post("/manage/courses/new", data=_course_form(
        title="Teams\r\nBcc: x@example.com\x01研修", summary="概要\x0c続き", target_audience="全職員\x7f",
        description_md="## 内容\r\n- 一行目\x0b\r\n- 二行目"))
    assert response.status_code == 302, response.get_data(as_text=True)
    course = db.session.scalar(select(Course).order_by(Course.id.desc()))
    assert course.title == "Teams  Bcc: x@example.com 研修"
    assert course.summary == "概要 続き" and course.target_audience == "全職員"
    assert "\x0b" not in course.description_md and "\n- 二行目" in course.description_md.replace("\r\n", "\n")


def test_session_times_in_english_have_no_japanese_range_sign(client, login_as, make_course, make_session):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    day = utcnow().date() + timedelta(days=14)
    starts = datetime(day.year, day.month, day.day, 5, 0, tzinfo=UTC)  # 14:00 in Tokyo
    make_session(course, starts_at=starts, ends_at=starts + timedelta(minutes=90),
                 enroll_closes_at=starts - timedelta(days=1), cancel_deadline=starts - timedelta(days=1))
    ja = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "14:00〜15:30" in ja
    client.post("/lang", data={"lang": "en", "next": "/"})
    for url in (f"/courses/{course.id}", f"/manage/courses/{course.id}"):
        page = client.get(url).get_data(as_text=True)
        assert f"{day:%Y-%m-%d}" in page and "14:00 – 15:30" in page, url
        assert "〜" not in page, url


def test_an_ended_session_is_not_edited(client, login_as, make_course, make_session):
    """Its enrollees would be told of a change to the past: the form is not offered, a post
    is refused by the service; a make-up for it can still be added."""
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    ended = make_session(course, starts_in=timedelta(days=-2))
    response = client.get(f"/manage/sessions/{ended.id}/edit", follow_redirects=True)
    assert "終了した回は編集できません" in response.get_data(as_text=True)
    response = client.post(f"/manage/sessions/{ended.id}/edit", data=_session_form(location="別会場"),
                           follow_redirects=True)
    assert "終了した回は編集できません" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(TrainingSession, ended.id).location != "別会場"
    course.status = CANCELLED  # a cancelled course's own form is not offered either
    db.session.commit()
    response = client.get(f"/manage/courses/{course.id}/edit", follow_redirects=True)
    assert "中止した研修は編集できません" in response.get_data(as_text=True) and 'name="title"' not in response.get_data(as_text=True)


def test_a_past_session_does_not_become_a_series_and_a_make_up_takes_no_days(client, login_as, make_course,
                                                                            make_session):
    """Adding a day to a session already held would give its attendees places (and mails) in
    the new day: refused, by the page and the service. A 補講 takes neither days nor 補講."""
    from lms.common.errors import InvalidInput
    from lms.courses import services as course_services

    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    held = make_session(course, starts_in=timedelta(days=-3))
    page = client.get(f"/manage/sessions/{held.id}/parts/new", follow_redirects=True).get_data(as_text=True)
    assert "開始済みの回を連続講座にすることはできません" in page
    start = utcnow() + timedelta(days=5)
    with pytest.raises(InvalidInput, match="開始済みの回"):
        course_services.create_session(trainer, course, course_services.SessionInput(
            starts_at=start, ends_at=start + timedelta(hours=1), capacity=10), part_of=held)
    db.session.rollback()
    first = make_session(course, starts_in=timedelta(days=3))
    second = course_services.create_session(trainer, course, course_services.SessionInput(
        starts_at=first.starts_at + timedelta(days=1), ends_at=first.ends_at + timedelta(days=1), capacity=10),
        part_of=first)
    makeup = course_services.create_session(trainer, course, course_services.SessionInput(
        starts_at=second.starts_at + timedelta(days=7), ends_at=second.ends_at + timedelta(days=7), capacity=5),
        makeup_for=second)
    db.session.commit()
    for kind in ("parts", "makeup"):
        page = client.get(f"/manage/sessions/{makeup.id}/{kind}/new", follow_redirects=True).get_data(as_text=True)
        assert "補講を除く" in page and 'name="starts_at"' not in page
    form = client.get(f"/manage/sessions/{second.id}/makeup/new").get_data(as_text=True)
    assert "の補講" in form and " の補講" not in form


def test_seats_in_a_quota_row_without_a_municipality_are_said_not_dropped(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    response = client.post(f"/manage/courses/{course.id}/sessions/new",
                           data=_session_form(**{"quotas-0-municipality_id": "0", "quotas-0-seats": "3"}))
    assert response.status_code == 200
    assert "割当人数を入れた行では自治体を選んでください" in response.get_data(as_text=True)
    assert db.session.scalar(select(TrainingSession).where(TrainingSession.course_id == course.id)) is None


def test_municipality_groups_are_headed_by_the_kinds_label(client, login_as, make_course, make_session):
    """The kinds are stored in Japanese (市); a page heads its groups with their label, in the
    page's language."""
    trainer = login_as("trainer", locale="en")
    course = make_course(owner_id=trainer.id)
    session = make_session(course)
    for url in ("/manage/courses/new", f"/manage/courses/{course.id}/edit", "/archives/manage/new"):
        page = client.get(url).get_data(as_text=True)
        assert "<legend>Special wards</legend>" in page and "<legend>Cities</legend>" in page, url
        assert "<legend>特別区</legend>" not in page and "<legend>市</legend>" not in page, url
    for url in (f"/manage/courses/{course.id}/sessions/new", f"/manage/sessions/{session.id}/edit"):
        page = client.get(url).get_data(as_text=True)
        assert 'optgroup label="Special wards"' in page and 'optgroup label="Cities"' in page, url
        assert 'optgroup label="特別区"' not in page and 'optgroup label="市"' not in page, url
    assert db.session.scalar(select(Municipality.kind).where(Municipality.code == "131016")) == "特別区"


def _version(page: str) -> str:
    found = re.search(r'name="version" type="hidden" value="([0-9a-f]+)"', page) or re.search(
        r'type="hidden" value="([0-9a-f]+)"[^>]*name="version"', page)
    assert found, "the form carries no version"
    return found.group(1)


def _form_of(session: TrainingSession, **kw) -> dict:
    from lms.common.timeutil import to_tokyo

    def local(value):
        return to_tokyo(value).strftime("%Y-%m-%dT%H:%M") if value else ""

    return _session_form(**{
        "title": session.title, "starts_at": local(session.starts_at), "ends_at": local(session.ends_at),
        "delivery": session.delivery, "location": session.location, "join_url": session.join_url,
        "capacity": str(session.capacity), "enroll_opens_at": local(session.enroll_opens_at),
        "enroll_closes_at": local(session.enroll_closes_at), "cancel_deadline": local(session.cancel_deadline), **kw})


def test_a_session_form_opened_before_another_change_is_not_saved_over_it(client, login_as, make_course, make_session):
    """Tab A opens the form; tab B moves the session to another room (enrollees are told);
    tab A's save of a new title is refused — the room stays, nobody gets a second notice —
    and the form is shown again with the current values. People enrolling meanwhile is no
    change of the form's."""
    from lms.notifications.models import OutboxMail

    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    session = make_session(course, title="第1回", delivery="hybrid", location="研修室A")
    learner = factories.make_user("learner")
    enrollment.enroll(session.id, learner.staff_member.id, learner)
    url = f"/manage/sessions/{session.id}/edit"
    tab_a = _version(client.get(url).get_data(as_text=True))
    tab_b = _version(client.get(url).get_data(as_text=True))
    assert tab_a == tab_b
    assert client.post(url, data=_form_of(session, location="研修室B", version=tab_b)).status_code == 302

    def changed_mails():
        return len(db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "changed")).all())

    assert changed_mails() == 1
    response = client.post(url, data=_form_of(session, title="第1回（改）", location="研修室A", version=tab_a))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "このページを開いた後に、ほかの人がこの回を変更しました。最新の内容を確認して、もう一度変更してください。" in page
    assert 'value="研修室B"' in page and 'value="第1回"' in page
    db.session.expire_all()
    stored = db.session.get(TrainingSession, session.id)
    assert (stored.title, stored.location, stored.revision) == ("第1回", "研修室B", 2)
    assert changed_mails() == 1
    # The form shown again carries the current version: saving from it works, even with
    # someone enrolled in between.
    current = _version(page)
    other = factories.make_user("learner")
    enrollment.enroll(session.id, other.staff_member.id, other)
    db.session.expire_all()
    stored = db.session.get(TrainingSession, session.id)
    assert client.post(url, data=_form_of(stored, title="第1回（改）", version=current)).status_code == 302
    db.session.expire_all()
    assert db.session.get(TrainingSession, session.id).title == "第1回（改）"
    assert changed_mails() == 1


def test_a_course_form_opened_before_another_change_is_not_saved_over_it(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, title="Teams操作研修", summary="会議とチャットの基本", status=DRAFT)
    url = f"/manage/courses/{course.id}/edit"
    tab_a = _version(client.get(url).get_data(as_text=True))
    tab_b = _version(client.get(url).get_data(as_text=True))
    assert client.post(url, data=_course_form(summary="会議・チャット・ファイル共有", version=tab_b)).status_code == 302
    response = client.post(url, data=_course_form(title="Teams操作研修（基礎）", version=tab_a))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "このページを開いた後に、ほかの人がこの研修を変更しました。最新の内容を確認して、もう一度変更してください。" in page
    assert "会議・チャット・ファイル共有" in page
    db.session.expire_all()
    stored = db.session.get(Course, course.id)
    assert (stored.title, stored.summary) == ("Teams操作研修", "会議・チャット・ファイル共有")
    # Publishing is no change of the form's: the form shown again still saves.
    stored.status = PUBLISHED
    db.session.commit()
    response = client.post(url, data=_course_form(title="Teams操作研修（基礎）", summary="会議・チャット・ファイル共有",
                                                  version=_version(page)))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Course, course.id).title == "Teams操作研修（基礎）"


def test_the_learners_course_page_gives_the_completion_figures_as_the_trainers_does(client, login_as, make_course,
                                                                                    make_session, make_user):
    """「当日の出席で修了」 alone left out the 75% and, for a 連続講座, the share of days to attend."""
    trainer = make_user("trainer")
    course = make_course(owner_id=trainer.id, completion_mode="attendance", attendance_threshold_pct=80,
                         series_threshold_pct=70)
    first = make_session(course)
    first.series_id = first.id
    db.session.commit()
    login_as("learner")
    page = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert "<dd>当日の出席で修了（出席率 80% 以上、連続講座は日程の 70% 以上に出席）</dd>" in page
    archive_only = make_course(owner_id=trainer.id, completion_mode="archive", viewing_threshold_pct=90)
    make_session(archive_only)
    assert "<dd>アーカイブ視聴で修了（視聴率 90% 以上）</dd>" in client.get(f"/courses/{archive_only.id}").get_data(
        as_text=True)
    login_as(user=trainer)
    manage = client.get(f"/manage/courses/{course.id}").get_data(as_text=True)
    assert "<dd>当日の出席で修了（出席率 80% 以上、連続講座は日程の 70% 以上に出席）</dd>" in manage


def test_english_counts_agree_with_their_number(app, client, login_as, make_course, make_session):
    """The catalogue's seats left read "1 seat" and "2 seats" in English (it read "1 seats"),
    one form in Japanese; the approvals digest's subject agrees with its count too."""
    from flask_babel import force_locale, ngettext

    login_as("learner")
    one = make_course(title="残り一席の研修")
    make_session(one, capacity=1)
    two = make_course(title="残り二席の研修")
    make_session(two, capacity=2)
    client.post("/lang", data={"lang": "en", "next": "/"})
    page = client.get("/courses?q=残り").get_data(as_text=True)
    assert "1 seat<" in page and "2 seats<" in page and "1 seats" not in page
    client.post("/lang", data={"lang": "ja", "next": "/"})
    page = client.get("/courses?q=残り").get_data(as_text=True)
    assert "1席<" in page and "2席<" in page
    with app.test_request_context(), force_locale("en"):
        words = "【%(brand)s】承認待ちの申込 %(count)s 件"
        assert ngettext(words, words, 1, brand="M", count=1) == "[M] 1 request awaits your approval"
        assert ngettext(words, words, 3, brand="M", count=3) == "[M] 3 requests await your approval"
