"""Accessibility suite: demo data plus an archive, the app served to real Chromium."""

from __future__ import annotations

import json
import os
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import ROOT, require

AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
# Set by scripts/a11y_report.py: each run of the axe tests writes what it checked there.
REPORT_DIR = os.environ.get("LMS_A11Y_REPORT_DIR", "")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

ROLES = {
    "anonymous": None,
    "learner": ("131016", "learner0"),
    "trainer": ("130001", "trainer"),
    "municipal_admin": ("131016", "admin"),
    "platform_admin": ("130001", "platform"),
}


@pytest.fixture
def app_config(app_config):
    # An Entra app's client id, as a deployment has: the pages that show it (the Teams app
    # package, the tenants' consent links) are checked as their users see them.
    return {**app_config, "WTF_CSRF_ENABLED": True, "LMS_LOG_REQUESTS": False,
            "ENTRA_CLIENT_ID": "0b5c3f4e-7a1d-4c2b-9e8f-1a2b3c4d5e6f"}


def demo_user(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


@pytest.fixture
def a11y_world(app, db):
    """The demo data set, plus a course open to everyone, owned by the demo trainer, with an
    open session, a session held on site with two confirmed participants (its printed
    lists and QR poster), and a published archive (video + captions)."""
    from lms.archives.models import Archive
    from lms.common.timeutil import utcnow
    from lms.demo import load_demo
    from lms.enrollment.models import CONFIRMED, Enrollment
    from tests.archives.conftest import VTT_TEXT, add_file, video_bytes
    from tests.factories import make_course, make_session, make_staff

    require(AXE.exists(), "axe-core in tests/node/node_modules (cd tests/node && npm install)")
    load_demo()
    db.session.commit()
    trainer = demo_user("130001", "trainer")
    course = make_course(title="Teams 会議の基本（アクセシビリティ確認）", owner_id=trainer.id,
                         description_md="## 内容\n\n- 会議の開始\n- [資料](https://example.lg.jp/)\n")
    # At 18:30 in Tokyo, after every demo session of the day (10:00, 14:00): the demo learner's
    # confirmed places never overlap it, whatever time of day the tests run.
    from datetime import datetime as _datetime
    from datetime import timedelta as _timedelta

    from lms.common.timeutil import TOKYO, today_tokyo

    day = today_tokyo() + _timedelta(days=14)
    evening = _datetime(day.year, day.month, day.day, 18, 30, tzinfo=TOKYO) - utcnow()
    session = make_session(course, capacity=30, starts_in=evening)
    archive = Archive(course_id=course.id, title="第1回 録画", description="会議の開始と終了", status="published",
                      audience="eligible", created_by_id=trainer.id, published_at=utcnow())
    db.session.add(archive)
    db.session.commit()
    add_file(archive, video_bytes("webm"), "video.webm")
    add_file(archive, VTT_TEXT.encode(), "captions.vtt")
    # A name outside Windows-31J: the Shift_JIS roster export shows its warning page.
    make_staff("131016", full_name="𠮷田 一", full_name_kana="ヨシダ ハジメ")
    onsite = make_session(course, title="第2回（会場）", capacity=30, delivery="onsite",
                          location="都庁第一本庁舎 32階 研修室", join_url="")
    for code, name, kana in (("131016", "会場 花子", "カイジョウ ハナコ"), ("131024", "会場 太郎", "カイジョウ タロウ")):
        member = make_staff(code, full_name=name, full_name_kana=kana)
        db.session.add(Enrollment(session_id=onsite.id, staff_member_id=member.id,
                                  municipality_id=member.municipality_id, status=CONFIRMED, arrival_seq=1))
        onsite.confirmed_count += 1
    db.session.commit()
    # A course whose organiser selects (選考), with two requests waiting on its page.
    selective = make_course(title="政策法務研修（選考あり）", owner_id=trainer.id, selection=True)
    selection_session = make_session(selective, capacity=1, starts_in=evening + _timedelta(days=1))
    for seq, (code, name, kana) in enumerate((("131016", "選考 一郎", "センコウ イチロウ"),
                                              ("131024", "選考 花子", "センコウ ハナコ")), start=1):
        member = make_staff(code, full_name=name, full_name_kana=kana)
        db.session.add(Enrollment(session_id=selection_session.id, staff_member_id=member.id,
                                  municipality_id=member.municipality_id, status="pending_approval",
                                  approval_step="selection", arrival_seq=seq))
    db.session.commit()
    # A published 年間研修計画 with survey answers and a computed allocation (its pages).
    from datetime import timedelta

    from lms.common.timeutil import fiscal_year_of
    from lms.planning import services as planning
    from tests.factories import municipality

    platform = demo_user("130001", "platform")
    plan = planning.plan_of_year(fiscal_year_of(session.starts_at)) or planning.create_plan(
        platform, fiscal_year_of(session.starts_at))  # the demo publishes the year's plan
    planning.publish_plan(platform, plan, utcnow() + timedelta(days=7))
    for code, wanted in (("131016", 12), ("131024", 30)):
        planning.answer_survey(platform, plan, municipality(code).id,
                              {session.course_id: planning.Answer(wanted, 2, "新任職員")})
    planning.run_allocation(platform, plan, [session.id])
    from lms.planning import fees as plan_fees

    plan_fees.set_fees(platform, plan, {course.id: 3000, onsite.course_id: 3000}, charge_late_cancellation=True,
                       charge_no_show=True)
    plan_fees.issue_statement(platform, plan, municipality("131016").id)
    db.session.commit()
    # Webhook endpoints (a platform one, one of 千代田区) with a delivery that failed once and
    # was delivered (the endpoint, delivery and attempt pages).
    from lms.api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

    for mid in (None, municipality("131016").id):
        endpoint = WebhookEndpoint(municipality_id=mid, url="https://hr.example.lg.jp/hooks/manabi",
                                   description="人事給与システム", event_types="enrollment.decided completion.granted",
                                   secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        message = WebhookMessage(msg_id=f"msg_a11y{mid or 0}", event_type="completion.granted", municipality_id=mid,
                                 payload='{"type":"completion.granted","data":{"id":1}}')
        db.session.add_all([endpoint, message])
        db.session.flush()
        delivery = WebhookDelivery(message_id=message.id, endpoint_id=endpoint.id, status="delivered", attempts=2,
                                   delivered_at=utcnow(), last_status_code=204)
        db.session.add(delivery)
        db.session.flush()
        db.session.add_all([WebhookAttempt(delivery_id=delivery.id, status_code=503, duration_ms=120,
                                           response_excerpt="Service Unavailable", error="HTTP 503"),
                            WebhookAttempt(delivery_id=delivery.id, status_code=204, duration_ms=85)])
    db.session.commit()
    # Activities of the course: a survey the demo learner (who holds a place) answers, a report
    # of theirs waiting for the training office.
    from lms.activities.models import Activity, ActivityFile, ActivityQuestion, ActivitySubmission, BankQuestion

    # (a session of its own: the keyboard and small-screen tests enroll in the first one)
    learner = demo_user("131016", "learner0")
    held = make_session(course, title="第3回", capacity=30, starts_in=evening + _timedelta(days=2))
    db.session.add(Enrollment(session_id=held.id, staff_member_id=learner.staff_member.id,
                              municipality_id=learner.staff_member.municipality_id, status=CONFIRMED, arrival_seq=1))
    held.confirmed_count += 1
    survey = Activity(course_id=course.id, kind="survey", title="研修アンケート", published=True,
                      instructions_md="研修の感想をお聞かせください。", opens_offset_hours=-24 * 60,
                      questions=[ActivityQuestion(kind="scale", prompt="満足度", position=1,
                                                  choices=["不満", "やや不満", "どちらともいえない", "おおむね満足", "満足"]),
                                 ActivityQuestion(kind="multiple", prompt="役立った内容", position=2,
                                                  choices=["会議の開始", "画面共有", "録画"]),
                                 ActivityQuestion(kind="longtext", prompt="ご意見", position=3, required=False)])
    report = Activity(course_id=course.id, kind="report", title="受講報告", published=True, opens_offset_hours=-24 * 60,
                      questions=[ActivityQuestion(kind="longtext", prompt="学んだこと", position=1),
                                 ActivityQuestion(kind="file", prompt="作った資料", position=2, required=False)])
    # Pre-work asking for a file, and a quiz drawing from the course's question bank.
    prework = Activity(course_id=course.id, kind="prework", title="事前課題", published=True, opens_offset_hours=-24 * 60,
                       closes_anchor="end", questions=[ActivityQuestion(kind="file", prompt="職場の会議の資料", position=1)])
    quiz = Activity(course_id=course.id, kind="quiz", title="確認テスト", published=False, draw_count=1,
                    questions=[ActivityQuestion(kind="single", prompt="会議を始めるのは", position=1,
                                                choices=["開催者", "誰でも"], correct=[0])])
    db.session.add_all([survey, report, prework, quiz,
                        BankQuestion(course_id=course.id, kind="single", prompt="録画を止めるのは", choices=["開催者", "出席者"],
                                     correct=[0])])
    db.session.flush()
    submitted = ActivitySubmission(activity_id=report.id, staff_member_id=learner.staff_member.id,
                                   municipality_id=learner.staff_member.municipality_id, session_id=held.id,
                                   status="submitted", answers={str(report.questions[0].id): "会議の開き方を学んだ。"},
                                   submitted_at=utcnow())
    db.session.add(submitted)
    db.session.flush()
    from lms.archives.storage import get_storage

    get_storage().write_object("activity-files/a11y", [b"%PDF-1.7\n%%EOF\n"], "application/pdf")
    attached = ActivityFile(submission_id=submitted.id, question_id=report.questions[1].id, storage_key="activity-files/a11y",
                            filename="会議の資料.pdf", content_type="application/pdf", size=204800, sha256="0" * 64)
    db.session.add(attached)
    db.session.flush()
    submitted.answers = {**submitted.answers, str(report.questions[1].id): {"file": attached.id, "name": attached.filename,
                                                                            "size": attached.size}}
    db.session.commit()
    return {"course": course, "session": session, "archive": archive, "onsite_session": onsite,
            "selection_session": selection_session, "survey": survey, "prework": prework, "quiz": quiz}


def sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert "/auth/demo" not in page.url, "demo sign-in did not complete"


def run_axe(page) -> list[dict]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "opts => axe.run(document, opts)", {"runOnly": {"type": "tag", "values": WCAG_TAGS}}
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
    ]


def pattern(path: str) -> str:
    """/courses/12?q=x&page=2 -> /courses/N?page&q (one page per kind of page)."""
    base, _, query = path.partition("?")
    keys = sorted({part.split("=")[0] for part in query.split("&") if part})
    return re.sub(r"\d+", "N", base) + ("?" + "&".join(keys) if keys else "")


def report_run(name: str, lang: str, checked: list[tuple[str, str]], problems: dict[tuple[str, str], list],
               browser, *, with_errors: bool = False) -> None:
    """Write one run's pages (role, url) and their violations for scripts/a11y_report.py,
    when it asked for them (LMS_A11Y_REPORT_DIR); before the test asserts, so that a failing
    run is reported too."""
    if not REPORT_DIR:
        return
    axe_version = json.loads((AXE.parent / "package.json").read_text(encoding="utf-8"))["version"]
    run = {
        "lang": lang,
        "tags": WCAG_TAGS,
        "tools": {"axe-core": axe_version, "chromium": browser.version, "playwright": version("playwright")},
        "pages": [{"role": role, "path": pattern(url), "with_errors": with_errors,
                   "violations": len(problems.get((role, url), []))} for role, url in checked],
    }
    Path(REPORT_DIR, f"{name}-{lang}.json").write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
