"""The activities' way through, in real Chromium: a trainer builds a course's 事前課題, anonymous
研修アンケート, 確認テスト and 受講報告 on the pages and publishes them; a learner with a confirmed
place sees them on マイページ, does the pre-work before the session, attends it, answers the
survey, fails the quiz once and passes it, and writes the report; their training office returns
the report with a comment, the learner rewrites it, the office confirms it; the course is then
completed (certificate, dashboard). The anonymous survey's results and export name nobody, and
show nothing of a group of fewer than five answers. Pages on the way pass axe (WCAG 2.1 AA)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import func, select

from lms.activities.models import Activity, ActivitySubmission, AnonymousAnswer
from lms.activities.results import MIN_GROUP
from lms.common.timeutil import utcnow
from lms.completion.models import COMPLETED, Completion
from lms.courses.models import TrainingSession
from lms.enrollment import services as enrollment
from lms.enrollment.models import CONFIRMED, Enrollment
from tests import factories
from tests.browser import AXE, sign_in_browser
from tests.browser import axe_violations as _axe

pytestmark = pytest.mark.browser

COURSE = "公文書管理研修"
PREWORK, SURVEY, QUIZ, REPORT = "職場の課題シート", "研修の振り返りアンケート", "理解度チェック", "職場での実践報告"
LEARNER = "新任 太郎"
OTHERS = ["受講 一郎", "受講 二郎", "受講 三郎", "受講 四郎"]


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts the pages' real forms


def _as(app, context, base_url: str, user) -> None:
    context.clear_cookies()
    sign_in_browser(app, context, base_url, user)


def _flash(page, text: str) -> None:
    expect(page.locator(".flash").first).to_contain_text(text)


def _create(page, base: str, course_id: int, kind: str, title: str, *, anonymous: bool = False,
            opens: tuple[str, int], closes: tuple[str, int]) -> int:
    """A new activity on the course's activities page (required: the form's default)."""
    page.goto(f"{base}/manage/courses/{course_id}/activities")
    page.get_by_label("種類", exact=True).select_option(label=kind)
    page.get_by_label(re.compile("^名前")).fill(title)
    expect(page.get_by_label(re.compile("^修了に必要"))).to_be_checked()
    if anonymous:
        page.get_by_label(re.compile("^無記名")).check()
    page.get_by_label("受付開始の基準").select_option(label=opens[0])
    page.get_by_label("受付開始（基準からの時間。マイナスは前）").fill(str(opens[1]))
    page.get_by_label("締切の基準").select_option(label=closes[0])
    page.get_by_label("締切（基準からの時間。マイナスは前）").fill(str(closes[1]))
    page.get_by_role("button", name="作成する").click()
    _flash(page, f"「{title}」を作りました。")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{kind}：{title}")
    return int(re.search(r"/manage/activities/(\d+)", page.url).group(1))


def _add_question(page, kind: str, prompt: str, *, choices: list[str] | None = None, correct: str = "") -> None:
    """A question added on the activity's page (its form comes before the settings')."""
    page.get_by_label("質問の種類").select_option(label=kind)
    page.get_by_label("質問文").fill(prompt)
    if choices:
        page.get_by_label(re.compile("^選択肢（")).fill("\n".join(choices))
    if correct:
        page.get_by_label(re.compile("^正解（")).fill(correct)
    page.get_by_role("button", name="質問を追加", exact=True).click()
    _flash(page, "質問を追加しました。")
    expect(page.locator("#questions .question-list")).to_contain_text(prompt)


def _publish(page) -> None:
    page.get_by_role("button", name="公開する").click()
    _flash(page, "公開しました。受講が決まっている人のマイページに表示されます。")
    expect(page.locator(".badge-confirmed", has_text="公開中")).to_be_visible()


def _held(db, session_id: int) -> None:
    """Time goes by: the session (90 minutes) began three hours ago (the same fiscal year)."""
    db.session.rollback()
    row = db.session.get(TrainingSession, session_id)
    row.starts_at = utcnow().replace(microsecond=0) - timedelta(hours=3)
    row.ends_at = row.starts_at + timedelta(minutes=90)
    row.enroll_closes_at = row.cancel_deadline = None
    db.session.commit()


def _todo(page, title: str):
    return page.locator("ul.todo-list > li").filter(has_text=title)


def _cells(row) -> list[str]:
    return [t.strip() for t in row.locator("td").all_inner_texts()]


def _workbook_rows(page, url: str) -> list[tuple]:
    response = page.request.get(url)
    assert response.status == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return list(load_workbook(io.BytesIO(response.body())).active.iter_rows(values_only=True))


def _answer_survey(page, base: str, survey_id: int, scale: str, comment: str) -> None:
    page.goto(f"{base}/activities/{survey_id}")
    page.get_by_label(scale, exact=True).check()
    page.get_by_label("研修で一番役立ったこと").fill(comment)
    page.get_by_role("button", name="提出する").click()
    _flash(page, "提出しました。ありがとうございました。")
    expect(page.get_by_text("無記名のアンケートのため、回答内容はあなたにも表示しません。")).to_be_visible()


@pytest.mark.browser_context_args(bypass_csp=True)
def test_activities_from_building_to_completion(live_server, page, db, summaries_follow):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    # The base world: a trainer's course with one onsite session in three days; the learner
    # and their training office (千代田区); four colleagues who hold places already.
    trainer = factories.make_user("trainer", name="研修所 講師")
    course = factories.make_course(title=COURSE, owner_id=trainer.id, completion_mode="attendance")
    session = factories.make_session(course, capacity=20, title="第1回", delivery="onsite", location="研修室A",
                                     starts_in=timedelta(days=3))
    learner = factories.make_user("learner", name=LEARNER)
    office = factories.make_user("municipal_admin", name="研修担当 高橋")
    others = [factories.make_user("learner", name=name) for name in OTHERS]
    for other in others:
        enrollment.enroll_self(session.id, other)
    db.session.commit()
    base, app, context = live_server.url, live_server.app, page.context
    page.set_default_timeout(10_000)

    # 1. The trainer builds the four activities on the pages and publishes each. Pre-work is
    # open until the session starts; the others from its end for a week.
    _as(app, context, base, trainer)
    before = (("研修回の開始", -24 * 30), ("研修回の開始", 0))
    after = (("研修回の終了", 0), ("研修回の終了", 24 * 7))
    _create(page, base, course.id, "事前課題", PREWORK, opens=before[0], closes=before[1])
    _add_question(page, "長い文章", "職場で困っている文書事務の課題")
    _publish(page)
    survey_id = _create(page, base, course.id, "研修アンケート", SURVEY, anonymous=True, opens=after[0], closes=after[1])
    _add_question(page, "5段階評価（満足度）", "研修の満足度")
    _add_question(page, "短い文章", "研修で一番役立ったこと")
    _publish(page)
    quiz_id = _create(page, base, course.id, "確認テスト", QUIZ, opens=after[0], closes=after[1])
    _add_question(page, "単一選択", "公文書の保存期間を定めるのは", choices=["各課の判断", "文書管理規程", "作成者"],
                  correct="2")
    page.get_by_label("合格点（%）").fill("100")
    page.get_by_label("受験できる回数").fill("2")
    page.get_by_role("button", name="設定を保存").click()
    _flash(page, "保存しました。")
    expect(page.get_by_label("合格点（%）")).to_have_value("100")
    _publish(page)
    report_id = _create(page, base, course.id, "受講報告", REPORT, opens=after[0], closes=after[1])
    _add_question(page, "長い文章", "研修で学んだことを職場でどう生かしますか")
    page.get_by_label("質問の種類").select_option(label="ファイルの添付（事前課題・受講報告）")
    page.get_by_label("質問文").fill("研修で作った保存ルールの案（任意）")
    page.get_by_label("回答を必須にする").uncheck()
    page.get_by_role("button", name="質問を追加").click()
    _flash(page, "質問を追加しました。")
    _publish(page)
    page.goto(f"{base}/manage/courses/{course.id}/activities")
    for title, kind in ((PREWORK, "事前課題"), (SURVEY, "研修アンケート（無記名）"), (QUIZ, "確認テスト"),
                        (REPORT, "受講報告")):
        assert _cells(page.get_by_role("row", name=title)) == [title, kind, "はい", "公開中"]
    db.session.rollback()
    quiz = db.session.get(Activity, quiz_id)
    assert (quiz.pass_pct, quiz.max_attempts, quiz.required, quiz.questions[0].correct) == (100, 2, True, [1])
    assert db.session.get(Activity, survey_id).anonymous is True

    # 2. The learner takes a place (confirmed at once) and sees the four to-dos on マイページ.
    _as(app, context, base, learner)
    page.goto(f"{base}/courses/{course.id}")
    page.get_by_role("button", name="申し込む").click()
    expect(page.locator(".flash").first).to_be_visible()
    db.session.rollback()
    assert db.session.scalar(select(Enrollment.status).where(
        Enrollment.staff_member_id == learner.staff_member.id)) == CONFIRMED
    page.goto(f"{base}/me")
    todos = page.get_by_role("region", name="課題・アンケート・確認テスト・受講報告")
    expect(todos.locator("ul.todo-list > li")).to_have_count(4)
    for kind, title in (("事前課題", PREWORK), ("研修アンケート", SURVEY), ("確認テスト", QUIZ), ("受講報告", REPORT)):
        item = _todo(page, title)
        expect(item.get_by_role("link", name=f"{kind}：{title}")).to_be_visible()
        expect(item).to_contain_text("未提出")
        expect(item).to_contain_text("（修了に必要）")

    # Before the session: the survey is not open yet; the pre-work is, and is done.
    page.goto(f"{base}/activities/{survey_id}")
    expect(page.get_by_role("note").filter(has_text="まだ回答できません。")).to_be_visible()
    expect(page.get_by_role("button", name="提出する")).to_have_count(0)
    page.goto(f"{base}/me")
    _todo(page, PREWORK).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"事前課題：{PREWORK}")
    page.get_by_label("職場で困っている文書事務の課題").fill("紙とデータで保存場所が分かれ、\n探すのに時間がかかる。")
    page.get_by_role("button", name="提出する").click()
    _flash(page, "提出しました。ありがとうございました。")
    expect(page.locator("dl.meta")).to_contain_text("提出済み")
    expect(page.get_by_role("region", name="提出した回答")).to_contain_text("探すのに時間がかかる。")

    # The session is held; the trainer takes the roll call: the learner attended.
    _held(db, session.id)
    _as(app, context, base, trainer)
    page.goto(f"{base}/attendance/sessions/{session.id}/roll-call")
    page.get_by_label(LEARNER).check()
    page.get_by_role("button", name="出欠を保存").click()
    _flash(page, "出欠を記録しました")

    # Attended, but the activities after the session are not done: not completed yet.
    _as(app, context, base, learner)
    page.goto(f"{base}/completion/history")
    expect(page.get_by_role("row", name=COURSE)).to_contain_text("出席済み（修了要件を満たしていません）")
    expect(page.get_by_role("link", name=re.compile("修了証"))).to_have_count(0)

    # The anonymous survey: submitted, and its answers are kept apart from the learner.
    _answer_survey(page, base, survey_id, "5：満足", "保存期間の考え方")
    db.session.rollback()
    mine = db.session.scalar(select(ActivitySubmission).where(ActivitySubmission.activity_id == survey_id))
    assert (mine.status, mine.answers) == ("submitted", None)
    stored = db.session.scalars(select(AnonymousAnswer).where(AnonymousAnswer.activity_id == survey_id)).all()
    assert [sorted(a.answers.values(), key=str) for a in stored] == [[5, "保存期間の考え方"]]

    # The quiz: failed at the first attempt, passed at the second, and no third.
    page.goto(f"{base}/activities/{quiz_id}")
    expect(page.locator("dl.meta")).to_contain_text("100点（100点満点）")
    page.get_by_role("button", name="受験を始める（1回目）").click()
    page.get_by_label("各課の判断").check()
    page.get_by_role("button", name="採点する（提出）").click()
    _flash(page, "採点しました：0点（合格点は100点）。")
    expect(page.locator("dl.meta")).to_contain_text("不合格（0点）")
    expect(page.locator("dl.meta")).to_contain_text("1回受験済み（2回まで）")
    page.get_by_role("button", name="受験を始める（2回目）").click()
    page.get_by_label("文書管理規程").check()
    page.get_by_role("button", name="採点する（提出）").click()
    _flash(page, "採点しました：100点で合格です。")
    expect(page.locator("dl.meta")).to_contain_text("合格（100点）")
    expect(page.get_by_role("button", name=re.compile("受験を始める"))).to_have_count(0)

    # The report: the learner's activity page passes axe; submitted for the office's review.
    page.goto(f"{base}/activities/{report_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"受講報告：{REPORT}")
    assert _axe(page) == []
    page.get_by_label("研修で学んだことを職場でどう生かしますか").fill("課の保存ルールを見直す。")
    # An attachment: a program renamed .pdf is refused with the reason, the text kept; a PDF goes.
    page.get_by_label("研修で作った保存ルールの案（任意）").set_input_files(
        files=[{"name": "保存ルール案.pdf", "mimeType": "application/pdf", "buffer": b"MZ\x90\x00" + b"\x00" * 300}])
    page.get_by_role("button", name="提出する").click()
    expect(page.locator(".error-summary")).to_contain_text("このファイルの形式は添付できません")
    expect(page.get_by_label("研修で学んだことを職場でどう生かしますか")).to_have_value("課の保存ルールを見直す。")
    page.get_by_label("研修で作った保存ルールの案（任意）").set_input_files(
        files=[{"name": "保存ルール案.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7\n" + b"0" * 2000 + b"\nstartxref\n9\n%%EOF\n"}])
    page.get_by_role("button", name="提出する").click()
    _flash(page, "報告を提出しました。研修担当が確認します。")
    expect(page.get_by_role("link", name="保存ルール案.pdf")).to_be_visible()
    page.goto(f"{base}/me")
    expect(_todo(page, PREWORK).locator(".badge-confirmed")).to_have_text("提出済み")
    expect(_todo(page, SURVEY).locator(".badge-confirmed")).to_have_text("提出済み")
    expect(_todo(page, QUIZ).locator(".badge-confirmed")).to_have_text("合格")
    expect(_todo(page, REPORT)).to_contain_text("提出済み")
    expect(_todo(page, REPORT).locator(".badge-confirmed")).to_have_count(0)  # not done until confirmed

    # 3. The training office returns the report with a comment.
    _as(app, context, base, office)
    page.goto(f"{base}/reports")
    report = page.get_by_role("region", name=f"{LEARNER}：{COURSE}「{REPORT}」")
    expect(report).to_contain_text("課の保存ルールを見直す。")
    with page.expect_download() as attachment:
        report.get_by_role("link", name="保存ルール案.pdf").click()
    assert attachment.value.suggested_filename == "保存ルール案.pdf"
    assert Path(attachment.value.path()).read_bytes().startswith(b"%PDF-1.7")
    assert _axe(page) == []
    report.get_by_label("コメント（差し戻すときは必須）").fill("具体的な見直しの時期を書いてください。")
    report.get_by_role("button", name=re.compile(rf"^差し戻す\s*：{LEARNER}$")).click()
    _flash(page, f"{LEARNER} さんの報告を差し戻しました。")
    expect(page.get_by_text("確認待ちの受講報告はありません。")).to_be_visible()

    # The learner sees the comment, rewrites the report and submits it again.
    _as(app, context, base, learner)
    page.goto(f"{base}/me")
    expect(_todo(page, REPORT)).to_contain_text("差し戻し")
    _todo(page, REPORT).get_by_role("link").click()
    returned = page.locator(".panel-warning")
    expect(returned).to_contain_text("報告が差し戻されました。「具体的な見直しの時期を書いてください。」")
    returned.get_by_role("button", name="書き直す").click()
    answer = page.get_by_label("研修で学んだことを職場でどう生かしますか")
    expect(answer).to_have_value("課の保存ルールを見直す。")
    expect(page.locator("dl.meta")).to_contain_text("下書き")
    answer.fill("来月までに課の保存ルールを見直し、係会で共有する。")
    page.get_by_role("button", name="提出する").click()
    _flash(page, "報告を提出しました。研修担当が確認します。")
    page.goto(f"{base}/completion/history")  # a report waiting for the office is not yet done
    expect(page.get_by_role("row", name=COURSE)).to_contain_text("出席済み（修了要件を満たしていません）")

    # The office confirms it (確認済).
    _as(app, context, base, office)
    page.goto(f"{base}/reports")
    report = page.get_by_role("region", name=f"{LEARNER}：{COURSE}「{REPORT}」")
    expect(report).to_contain_text("来月までに課の保存ルールを見直し、係会で共有する。")
    report.get_by_role("button", name=re.compile(rf"^確認済にする\s*：{LEARNER}$")).click()
    _flash(page, f"{LEARNER} さんの報告を確認済にしました。")
    expect(page.get_by_text("確認待ちの受講報告はありません。")).to_be_visible()

    # 4. The learner: the report is confirmed, every to-do done, the course completed, and
    # the certificate is a PDF naming them and the course.
    _as(app, context, base, learner)
    page.goto(f"{base}/activities/{report_id}")
    expect(page.get_by_role("note").filter(has_text="報告は確認済です。")).to_be_visible()
    expect(page.locator("dl.meta")).to_contain_text("確認済")
    page.goto(f"{base}/me")
    expect(_todo(page, REPORT).locator(".badge-confirmed")).to_have_text("確認済")
    expect(page.locator("ul.todo-list .badge-confirmed")).to_have_count(4)
    page.goto(f"{base}/completion/history")
    row = page.get_by_role("row", name=COURSE)
    expect(row.locator(".badge-confirmed")).to_have_text("修了")
    link = row.get_by_role("link", name=re.compile("修了証（PDF）"))
    pdf = page.request.get(base + link.get_attribute("href"))
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-", "-"], input=pdf.body(), capture_output=True, check=True).stdout
        assert LEARNER in text.decode() and COURSE in text.decode()
    db.session.rollback()
    completion = db.session.scalar(select(Completion).where(Completion.staff_member_id == learner.staff_member.id))
    assert completion is not None and completion.status == COMPLETED and completion.session_id == session.id

    # 5. The municipal dashboard counts the completion (five places, one attended and completed).
    _as(app, context, base, office)
    page.goto(f"{base}/completion/dashboard")
    row = page.get_by_role("table", name=re.compile("^研修別")).get_by_role("row", name=COURSE)
    expect(row).to_be_visible()
    # 申込者数, 出席者数, 修了（ライブ）, （アーカイブ）, （両方）, （手動）, 未修了, 修了率
    assert _cells(row)[:8] == ["5", "1", "1", "0", "0", "0", "4", "20.0%"]
    headline = page.locator(".headline-figures")
    expect(headline.locator("div", has_text="修了者数（延べ）").locator("dd")).to_have_text("1")
    expect(headline.locator("div", has_text="申込者数（延べ）").locator("dd")).to_have_text("5")
    # 課題の状況: the learner did each activity (passed the quiz, once, in two attempts; the
    # report confirmed); the colleagues have not yet.
    by_activity = page.get_by_role("table", name="課題別の提出・合格・確認の人数")
    assert _cells(by_activity.get_by_role("row", name=re.compile(f"確認テスト：{QUIZ}"))) == [COURSE, "必須", "1", "1", "—"]
    assert _cells(by_activity.get_by_role("row", name=re.compile(f"受講報告：{REPORT}"))) == [COURSE, "必須", "1", "—", "1"]
    assert _cells(by_activity.get_by_role("row", name=re.compile(f"研修アンケート：{SURVEY}"))) == [COURSE, "必須", "1", "—", "—"]

    # 6. The anonymous survey's results: one answer is fewer than MIN_GROUP (5), so nothing of
    # it is shown — not even its count (its session, merged, still under five, is hidden) —
    # and the export has no rows.
    assert MIN_GROUP == 5
    names = [LEARNER, *OTHERS]
    _as(app, context, base, trainer)
    page.goto(f"{base}/manage/activities/{survey_id}/results")
    expect(page.get_by_role("note").filter(has_text="無記名のアンケートです。回答者は分からず、回答が5件未満のまとまりは表示しません")).to_be_visible()
    expect(page.get_by_text("回答 5 件未満", exact=False).first).to_be_visible()
    expect(page.get_by_text("回答 1 件", exact=False)).to_have_count(0)
    expect(page.get_by_text("回答が5件未満のため、結果は表示しません。")).to_be_visible()
    expect(page.get_by_role("table", name="回ごとの回答数")).to_have_count(0)
    expect(page.get_by_text("保存期間の考え方")).to_have_count(0)
    expect(page.locator("svg[role=img]")).to_have_count(0)
    body = page.locator("main").inner_text()
    assert not any(name in body for name in names)
    page.goto(f"{base}/manage/activities/{survey_id}/results?session={session.id}")
    expect(page.get_by_text("回答が5件未満のため、結果は表示しません。")).to_be_visible()
    expect(page.get_by_text("回答 1 件", exact=False)).to_have_count(0)
    rows = _workbook_rows(page, f"{base}/manage/activities/{survey_id}/results.xlsx")
    cells = [str(c) for r in rows for c in r if c is not None]
    # (one answer exists: the file says it is held back, as the page does, never "0 answers")
    assert any("回答が5件未満のため、結果は表示しません。" in c for c in cells)
    assert not any("回答 0 件" in c for c in cells)
    assert "保存期間の考え方" not in cells and 5 not in [c for r in rows for c in r]
    assert not any(name in c for c in cells for name in names)

    # Four colleagues answer too: five answers in the session, now shown — counts, the mean
    # and the free text (sorted), still without a name; the export has the five rows.
    answers = [("4：おおむね満足", "文書の分類"), ("3：どちらともいえない", "演習"),
               ("4：おおむね満足", "電子決裁の事例"), ("2：やや不満", "グループ討議")]
    for other, (scale, comment) in zip(others, answers, strict=True):
        _as(app, context, base, other)
        _answer_survey(page, base, survey_id, scale, comment)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AnonymousAnswer)
                             .where(AnonymousAnswer.activity_id == survey_id)) == 5
    _as(app, context, base, trainer)
    page.goto(f"{base}/manage/activities/{survey_id}/results")
    expect(page.get_by_text("回答が5件未満のため、結果は表示しません。")).to_have_count(0)
    by_session = page.get_by_role("table", name="回ごとの回答数")
    expect(by_session.locator("tbody tr")).to_have_count(1)
    shown = _cells(by_session.locator("tbody tr"))
    assert shown[0].startswith("第1回") and shown[1] == "5"  # the session on its own, no longer merged
    scale = page.get_by_role("region", name="1. 研修の満足度")
    expect(scale).to_contain_text("回答 5 件 ・ 平均 3.6（最小 2.0、最大 5.0）")
    counts = scale.get_by_role("table", name="「研修の満足度」の回答数")
    assert [_cells(r) for r in counts.locator("tbody tr").all()] == [
        ["不満", "0"], ["やや不満", "1"], ["どちらともいえない", "1"], ["おおむね満足", "2"], ["満足", "1"]]
    texts = page.get_by_role("region", name="2. 研修で一番役立ったこと").locator("ul.free-text li")
    expect(texts).to_have_text(sorted(["保存期間の考え方", "文書の分類", "演習", "電子決裁の事例", "グループ討議"]))
    body = page.locator("main").inner_text()
    assert not any(name in body for name in names)
    rows = _workbook_rows(page, f"{base}/manage/activities/{survey_id}/results.xlsx")
    cells = [str(c) for r in rows for c in r if c is not None]
    assert any("回答 5 件（回答者の氏名は含みません）" in c for c in cells)
    data = [r for r in rows if r and r[0] in (1, 2, 3, 4, 5)]
    assert sorted((r[0], r[1]) for r in data) == sorted([(5, "保存期間の考え方"), (4, "文書の分類"), (3, "演習"),
                                                         (4, "電子決裁の事例"), (2, "グループ討議")])
    assert not any(name in c for c in cells for name in names)
