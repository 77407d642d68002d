"""Files attached to pre-work and reports (judged by content, stored whole or not at all, read
only by their writer, the report's reviewers and the course's managers), the courses'
question banks and quizzes that draw some of their questions per attempt."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.activities import files as activity_files
from lms.activities import services
from lms.activities.models import (
    DRAFT,
    FILE,
    LONGTEXT,
    NUMBER,
    PREWORK,
    QUIZ,
    REPORT,
    SINGLE,
    SUBMITTED,
    SURVEY,
    ActivityFile,
    BankQuestion,
)
from lms.activities.tasks import sweep_activity_files_periodically as sweep_task
from lms.archives.storage import get_storage
from lms.common.errors import Conflict, InvalidInput
from lms.common.timeutil import utcnow
from lms.enrollment import services as enrollment
from tests import factories
from tests.activities import test_activities as base

build, form = base.build, base.form
world = base.world  # the same world: a trainer's course, a session, a learner with a place

PDF = b"%PDF-1.7\n" + b"1 0 obj << >> endobj\n" * 50 + b"trailer << >>\nstartxref\n9\n%%EOF\n"


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def upload(data: bytes, name: str) -> services.Upload:
    return services.Upload(io.BytesIO(data), name)


def report_with_file(db, world, *, required_file=True):
    return build(db, world, REPORT, questions=[
        services.QuestionInput(kind=LONGTEXT, prompt="学んだこと"),
        services.QuestionInput(kind=FILE, prompt="研修で作った資料", required=required_file)])


def stored_keys(db) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(select(ActivityFile.storage_key)))


def test_only_pre_work_and_reports_ask_for_files(db, world):
    survey = build(db, world, SURVEY, publish=False)
    with pytest.raises(InvalidInput) as refused:
        services.add_question(world["trainer"], survey, services.QuestionInput(kind=FILE, prompt="資料"))
    assert "事前課題と受講報告だけ" in refused.value.message
    db.session.rollback()
    prework = build(db, world, PREWORK, questions=[services.QuestionInput(kind=FILE, prompt="事前課題の提出")])
    assert prework.questions[0].kind == FILE
    with pytest.raises(InvalidInput) as refused:  # nor can it become a survey with its file question
        services.update_activity(world["trainer"], prework, services.ActivityInput(kind=SURVEY, title="アンケート"))
    assert "事前課題か受講報告のまま" in refused.value.message
    db.session.rollback()


def test_a_report_keeps_its_file_through_draft_return_and_resubmission(app, db, world, make_user):
    report = report_with_file(db, world)
    learner, text_q, file_q = world["learner"], *report.questions
    storage = get_storage(app)
    # A draft with the file only: the required text is not asked for yet.
    draft, errors = services.save(report.id, learner, {}, submit=False, uploads={file_q.id: upload(PDF, "../../資料.pdf")})
    db.session.commit()
    held = draft.answers[str(file_q.id)]
    assert not errors and held["name"] == "資料.pdf" and held["size"] == len(PDF)
    row = db.session.get(ActivityFile, held["file"])
    assert row.content_type == "application/pdf" and len(row.sha256) == 64
    assert b"".join(storage.open_range(row.storage_key)) == PDF
    # Submitting without the text: refused, the file kept.
    _s, errors = services.save(report.id, learner, {}, submit=True)
    db.session.commit()
    assert "回答が必要" in errors[text_q.id] and file_q.id not in errors
    assert draft.status == DRAFT and draft.answers[str(file_q.id)] == held
    done, errors = services.save(report.id, learner, form(report, "起案の基本"), submit=True)
    db.session.commit()
    assert not errors and done.status == SUBMITTED and done.answers[str(file_q.id)] == held
    office = make_user("municipal_admin")
    services.review_report(done.id, office, services.RETURN, "資料を新しい版にしてください。")
    db.session.commit()
    services.reopen_returned(report.id, learner)
    db.session.commit()
    # A new file replaces the old one; the old object goes once that is committed.
    again, errors = services.save(report.id, learner, form(report, "起案の基本"), submit=True,
                                  uploads={file_q.id: upload(docx(), "資料v2.docx")})
    db.session.commit()
    new = again.answers[str(file_q.id)]
    assert not errors and new["name"] == "資料v2.docx" and new["file"] != held["file"]
    assert not storage.exists(row.storage_key) and db.session.get(ActivityFile, held["file"]) is None
    assert stored_keys(db) == {db.session.get(ActivityFile, new["file"]).storage_key}


@pytest.mark.parametrize("data,name,message", [
    (b"MZ\x90\x00" + b"\x00" * 200, "資料.pdf", "形式は添付できません"),    # a program named .pdf
    (b"PK\x03\x04" + b"\x00" * 200, "資料.docx", "形式は添付できません"),   # a broken ZIP
    (b"", "空.pdf", "ファイルが空です"),
    (b"%PDF-1.7\n" + b"x" * 3000, "大きい.pdf", "ファイルが大きすぎます（3 KB）。2 KB 以下"),
    # Just over: the two sizes in bytes (rounded, both read "2 KB": the message said nothing)
    (b"%PDF-1.7\n" + b"x" * 2040, "少し大きい.pdf", "ファイルが大きすぎます（2,049 B）。2,048 B 以下"),
    (PDF[:600], "途中まで.pdf", "この PDF は途中で切れているか壊れていて"),  # an upload cut short
])
def test_a_refused_file_stores_nothing_and_keeps_the_one_held(app, db, world, data, name, message):
    app.config["LMS_ACTIVITY_FILE_MAX_BYTES"] = 2048
    report = report_with_file(db, world)
    file_q = report.questions[1]
    first, _errors = services.save(report.id, world["learner"], {}, submit=False, uploads={file_q.id: upload(PDF, "a.pdf")})
    db.session.commit()
    before = stored_keys(db)
    draft, errors = services.save(report.id, world["learner"], form(report, "学び"), submit=True,
                                  uploads={file_q.id: upload(data, name)})
    db.session.commit()
    assert message in errors[file_q.id] and draft.status == DRAFT
    assert stored_keys(db) == before and draft.answers[str(file_q.id)]["name"] == "a.pdf"
    objects = get_storage(app).list_keys(f"activity-files/{report.id}/")
    assert set(objects) == before  # nothing half-stored either


def test_a_rolled_back_save_deletes_the_stored_object(app, db, world):
    report = report_with_file(db, world)
    file_q = report.questions[1]
    storage = get_storage(app)
    draft, _errors = services.save(report.id, world["learner"], {}, submit=False,
                                   uploads={file_q.id: upload(PDF, "a.pdf")})
    key = db.session.get(ActivityFile, draft.answers[str(file_q.id)]["file"]).storage_key
    assert storage.exists(key)
    db.session.rollback()  # the request failed after storing: the object must not outlive it
    assert not storage.exists(key) and stored_keys(db) == set()


def test_the_sweep_deletes_only_old_objects_that_no_answer_names(app, db, world):
    """A process killed between storing a file and committing its row cannot roll back: the
    worker's sweep deletes such objects (and unfinished parts) once they are an hour old, and
    keeps every file an answer names and anything written within the hour."""
    report = report_with_file(db, world)
    file_q = report.questions[1]
    storage = get_storage(app)
    draft, _errors = services.save(report.id, world["learner"], {}, submit=False,
                                   uploads={file_q.id: upload(PDF, "a.pdf")})
    db.session.commit()
    kept = db.session.get(ActivityFile, draft.answers[str(file_q.id)]["file"]).storage_key
    orphan = f"{activity_files.PREFIX}/{report.id}/{'a' * 32}"  # stored, then the process died
    part = f"{activity_files.PREFIX}/{report.id}/{'b' * 32}"  # died while writing
    storage.write_object(orphan, [PDF], "application/pdf")
    storage.append_part(part, 0, [PDF[:100]])
    assert activity_files.sweep_orphans() == []  # all within the hour: a request may be at work
    later = utcnow() + activity_files.ORPHAN_AGE + timedelta(minutes=1)
    assert activity_files.sweep_orphans(now=later) == sorted([orphan, part])
    assert set(storage.list_keys(activity_files.PREFIX)) == {kept}
    assert b"".join(storage.open_range(kept)) == PDF
    assert sweep_task.call_local() == 0  # the worker's task: nothing left to delete


def test_removing_a_file_and_who_may_read_it(app, db, world, make_user, client, login_as):
    report = report_with_file(db, world, required_file=False)
    file_q = report.questions[1]
    learner = world["learner"]
    login_as(user=learner)
    posted = client.post(f"/activities/{report.id}", data={
        "action": "save", f"q{report.questions[0].id}": "下書き", f"f{file_q.id}": (io.BytesIO(PDF), "報告資料.pdf")},
        content_type="multipart/form-data")
    assert posted.status_code == 302
    db.session.expire_all()
    draft = services.place_of(report, learner).submission
    file_id = draft.answers[str(file_q.id)]["file"]
    page = client.get(f"/activities/{report.id}").get_data(as_text=True)
    assert "報告資料.pdf" in page and f"/activity-files/{file_id}" in page and 'enctype="multipart/form-data"' in page
    got = client.get(f"/activity-files/{file_id}")
    assert got.status_code == 200 and got.data == PDF and got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith("attachment") and "no-store" in got.headers["Cache-Control"]
    # A draft is the writer's own: the office sees it once submitted.
    office, other_office = make_user("municipal_admin"), make_user("municipal_admin", "132012")
    login_as(user=office)
    assert client.get(f"/activity-files/{file_id}").status_code == 404
    login_as(user=learner)
    assert client.post(f"/activities/{report.id}", data={"action": "submit", f"q{report.questions[0].id}": "報告"},
                       content_type="multipart/form-data").status_code == 302
    login_as(user=office)
    assert client.get(f"/activity-files/{file_id}").status_code == 200
    reports = client.get("/reports").get_data(as_text=True)
    assert "報告資料.pdf" in reports and f"「{report.title}」" in reports
    client.post("/lang", data={"lang": "en", "next": "/"})
    reports = client.get("/reports").get_data(as_text=True)  # (the English page quotes in English)
    assert f"“{report.title}”" in reports and "「" not in reports
    assert "報告資料.pdf</a> (2 KB)" in reports
    client.post("/lang", data={"lang": "ja", "next": "/"})
    for outsider in (other_office, factories.make_user("learner"), factories.make_user("trainer")):
        login_as(user=outsider)
        assert client.get(f"/activity-files/{file_id}").status_code == 404
    assert client.get("/activity-files/99999999999999").status_code == 404
    login_as(user=world["trainer"])  # the course's trainer
    assert client.get(f"/activity-files/{file_id}").status_code == 200
    get_storage(app).delete(db.session.get(ActivityFile, file_id).storage_key)  # the object lost: 404, not 500
    assert client.get(f"/activity-files/{file_id}").status_code == 404


def test_a_draft_file_can_be_taken_away(app, db, world):
    report = report_with_file(db, world, required_file=False)
    file_q = report.questions[1]
    draft, _errors = services.save(report.id, world["learner"], {}, submit=False, uploads={file_q.id: upload(PDF, "a.pdf")})
    db.session.commit()
    key = db.session.get(ActivityFile, draft.answers[str(file_q.id)]["file"]).storage_key
    draft, errors = services.save(report.id, world["learner"], form(report, "本文"), submit=False, remove={file_q.id})
    db.session.commit()
    assert not errors and str(file_q.id) not in draft.answers and not get_storage(app).exists(key)


def quiz_bank_questions():
    return [services.QuestionInput(kind=SINGLE, prompt=f"問{n}", choices=["正", "誤"], correct=[0]) for n in range(1, 6)]


def test_the_question_bank_and_quizzes_that_draw(db, world, make_course):
    trainer, course = world["trainer"], world["course"]
    for q in quiz_bank_questions():
        services.add_to_bank(trainer, course, q)
    db.session.commit()
    bank = services.bank_of(course.id)
    assert [b.prompt for b in bank] == ["問1", "問2", "問3", "問4", "問5"]
    quiz = build(db, world, QUIZ, questions=[services.QuestionInput(kind=NUMBER, prompt="1+1", correct=[2])],
                 publish=False)
    saved = services.save_to_bank(trainer, quiz.questions[0])
    db.session.commit()
    assert saved.kind == NUMBER and saved.correct == [2]
    services.add_from_bank(trainer, quiz, [b.id for b in bank])
    db.session.commit()
    assert [q.prompt for q in quiz.questions] == ["1+1", "問1", "問2", "問3", "問4", "問5"]
    # The same question is kept once: not twice in the bank, not twice in a quiz.
    with pytest.raises(Conflict, match="すでに問題バンク"):
        services.save_to_bank(trainer, quiz.questions[0])
    db.session.rollback()
    with pytest.raises(Conflict, match="すでにあります"):
        services.add_from_bank(trainer, quiz, [bank[0].id, bank[1].id])
    db.session.rollback()
    extra = services.add_to_bank(trainer, course, services.QuestionInput(kind=SINGLE, prompt="問6", choices=["正", "誤"],
                                                                          correct=[1]))
    db.session.commit()
    added = services.add_from_bank(trainer, quiz, [bank[0].id, extra.id])
    db.session.commit()
    assert [q.prompt for q in added] == ["問6"]
    services.delete_question(trainer, added[0])
    db.session.commit()
    # Another course's bank question cannot be taken.
    other = make_course(title="別の研修", owner_id=trainer.id)
    foreign = services.add_to_bank(trainer, other, quiz_bank_questions()[0])
    db.session.commit()
    with pytest.raises(InvalidInput):
        services.add_from_bank(trainer, quiz, [foreign.id])
    db.session.rollback()
    # Each attempt asks 3 of the 6, drawn at random; the score counts only those.
    quiz.draw_count, quiz.max_attempts, quiz.pass_pct = 3, 5, 100
    services.set_published(trainer, quiz, True)
    db.session.commit()
    learner = world["learner"]
    drawn_sets = set()
    for _n in range(2):
        attempt = services.start_attempt(quiz.id, learner)
        db.session.commit()
        asked = services.ordered_questions(quiz, attempt)
        assert len(asked) == 3
        drawn_sets.add(frozenset(q.id for q in asked))
        right = {f"q{q.id}": ["2" if q.kind == NUMBER else "0"] for q in asked}
        scored, errors = services.save(quiz.id, learner, right, submit=True)
        db.session.commit()
        assert not errors and (scored.score_pct, scored.passed) == (100, True)
        quiz_rows = services.place_of(quiz, learner)
        assert quiz_rows.done
        # (passed: start a fresh learner's attempts for the second draw)
        learner = factories.make_user("learner")
        enrollment.enroll_self(world["session"].id, learner)
        db.session.commit()
    assert all(len(s) == 3 for s in drawn_sets)
    services.delete_from_bank(trainer, bank[0])
    db.session.commit()
    assert db.session.get(BankQuestion, bank[0].id) is None and quiz.questions[1].prompt == "問1"  # the copy stays


def test_the_bank_pages(db, world, client, login_as, make_user):
    course = world["course"]
    login_as(user=world["trainer"])
    page = client.get(f"/manage/courses/{course.id}/question-bank")
    assert page.status_code == 200 and "問題バンクはまだ空です" in page.get_data(as_text=True)
    added = client.post(f"/manage/courses/{course.id}/question-bank", data={
        "kind": "single", "prompt": "公文書の保存期間を決めるのは", "choices": "規程\n担当者の判断", "correct": "1",
        "points": "2"})
    assert added.status_code == 302
    refused = client.post(f"/manage/courses/{course.id}/question-bank", data={"kind": "single", "prompt": "選択肢が1つ",
                                                                            "choices": "一つだけ"})
    assert refused.status_code in (400, 409) and "選択肢を2つ以上" in refused.get_data(as_text=True)
    item = db.session.scalar(select(BankQuestion).where(BankQuestion.course_id == course.id))
    assert item.points == 2 and item.correct == [0]
    quiz = build(db, world, QUIZ, questions=[], publish=False)
    assert client.post(f"/manage/activities/{quiz.id}/from-bank", data={"item": [str(item.id)]}).status_code == 302
    db.session.expire_all()
    assert quiz.questions[-1].prompt == "公文書の保存期間を決めるのは" and quiz.questions[-1].points == 2
    manage = client.get(f"/manage/activities/{quiz.id}").get_data(as_text=True)
    assert "問題バンクに保存" in manage and "出題数" in manage
    # Deleting a question, or taking one out of the bank, asks on a page first (naming it): the
    # list's buttons are links to it, and nothing is deleted until its button is pressed.
    copied, item_id = quiz.questions[-1], item.id
    assert f'href="/manage/activity-questions/{copied.id}/delete"' in manage
    bank_page = client.get(f"/manage/courses/{course.id}/question-bank").get_data(as_text=True)
    assert f'href="/manage/question-bank/{item.id}/delete"' in bank_page
    for url, words in ((f"/manage/activity-questions/{copied.id}/delete", "この質問を削除します"),
                       (f"/manage/question-bank/{item.id}/delete", "この問題を問題バンクから外します")):
        asked = client.get(url)
        assert asked.status_code == 200
        assert words in asked.get_data(as_text=True) and "公文書の保存期間を決めるのは" in asked.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(BankQuestion, item.id) is not None and quiz.questions[-1].id == copied.id
    login_as(user=make_user("trainer"))  # another trainer: not their course
    assert client.get(f"/manage/courses/{course.id}/question-bank").status_code == 404
    assert client.get(f"/manage/question-bank/{item.id}/delete").status_code == 404
    assert client.get(f"/manage/activity-questions/{copied.id}/delete").status_code == 404
    assert client.post(f"/manage/question-bank/{item.id}/delete").status_code == 404
    login_as(user=world["trainer"])
    # A question of an activity with answers cannot be deleted: its confirmation page says so instead.
    survey = build(db, world)
    services.save(survey.id, world["learner"], form(survey, 4, 0, "良い"), submit=True)
    db.session.commit()
    asked = client.get(f"/manage/activity-questions/{survey.questions[0].id}/delete", follow_redirects=True)
    assert "回答があるため、質問は削除できません。" in asked.get_data(as_text=True)
    assert client.post(f"/manage/question-bank/{item.id}/delete").status_code == 302
    copied_id = copied.id
    assert client.post(f"/manage/activity-questions/{copied_id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(BankQuestion, item_id) is None and all(q.id != copied_id for q in quiz.questions)


def test_a_report_returned_after_the_close_can_still_be_finished(db, world, make_user):
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    learner, office = world["learner"], make_user("municipal_admin")
    done, _errors = services.save(report.id, learner, form(report, "起案の基本"), submit=True)
    db.session.commit()
    services.review_report(done.id, office, services.RETURN, "具体例を加えてください。")
    db.session.commit()
    report.closes_anchor, report.closes_offset_hours = "start", -24 * 300  # the window closed meanwhile
    db.session.commit()
    services.reopen_returned(report.id, learner)
    db.session.commit()
    again, errors = services.save(report.id, learner, form(report, "起案の基本と具体例"), submit=True)
    db.session.commit()
    assert not errors and again.status == SUBMITTED and again.late
    assert services.review_report(done.id, office, services.CONFIRM).status == "confirmed"
    db.session.commit()
    # A first submission after the close is still refused.
    other = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")],
                  closes_anchor="start", closes_offset_hours=-24 * 300)
    with pytest.raises(Conflict):
        services.save(other.id, learner, form(other, "遅れた報告"), submit=True)
    db.session.rollback()


def test_a_copied_course_takes_its_activities_and_question_bank(db, world, client, login_as, make_user):
    trainer, course = world["trainer"], world["course"]
    course.selection, course.series_threshold_pct, course.summary = True, 80, "起案・決裁・保存の基本"
    survey = build(db, world, SURVEY, anonymous=True)
    quiz = build(db, world, QUIZ, questions=quiz_bank_questions(), pass_pct=80, draw_count=2)
    services.add_to_bank(trainer, course, quiz_bank_questions()[0])
    db.session.commit()
    services.save(survey.id, world["learner"], form(survey, 5, 0), submit=True)  # answers stay behind
    db.session.commit()
    login_as(user=make_user("trainer"))  # not their course
    assert client.post(f"/manage/courses/{course.id}/copy").status_code == 404
    login_as(user=trainer)
    copied = client.post(f"/manage/courses/{course.id}/copy")
    assert copied.status_code == 302
    copy_id = int(copied.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    db.session.expire_all()
    from lms.activities.models import Activity, ActivitySubmission
    from lms.courses.models import Course

    copy = db.session.get(Course, copy_id)
    assert copy.title == "文書事務研修（コピー）" and copy.status == "draft" and copy.owner_id == trainer.id
    assert (copy.selection, copy.series_threshold_pct, copy.summary) == (True, 80, "起案・決裁・保存の基本")
    assert copy.sessions == []
    activities = db.session.scalars(select(Activity).where(Activity.course_id == copy_id).order_by(Activity.position)).all()
    assert [(a.kind, a.anonymous, a.published) for a in activities] == [(SURVEY, True, False), (QUIZ, False, False)]
    assert [q.prompt for q in activities[1].questions] == [q.prompt for q in quiz.questions]
    assert (activities[1].pass_pct, activities[1].draw_count) == (80, 2)
    assert activities[1].questions[0].correct == [0] and activities[1].questions[0].id != quiz.questions[0].id
    assert [b.prompt for b in services.bank_of(copy_id)] == ["問1"]
    assert db.session.scalar(select(ActivitySubmission).where(
        ActivitySubmission.activity_id.in_([a.id for a in activities]))) is None
    page = client.get(f"/manage/courses/{copy_id}").get_data(as_text=True)
    assert "文書事務研修（コピー）" in page


def test_a_quiz_with_answers_says_why_the_bank_cannot_add_to_it(db, world):
    """Bank questions are added as required, with no choice: the refusal says the bank cannot
    add to a quiz with answers, not that an optional question could be added."""
    trainer, course = world["trainer"], world["course"]
    item = services.add_to_bank(trainer, course, services.QuestionInput(kind=SINGLE, prompt="問X", choices=["正", "誤"],
                                                                         correct=[0]))
    quiz = build(db, world, QUIZ, questions=base.quiz_questions())
    services.start_attempt(quiz.id, world["learner"])
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        services.add_from_bank(trainer, quiz, [item.id])
    assert refused.value.message == "回答があるため、問題バンクから問題を追加できません。"
    db.session.rollback()


def test_a_bank_question_not_in_the_courses_bank_is_named_as_such(db, world):
    """Choosing nothing and choosing what the course's bank does not hold are told apart (both
    said "choose a question"); a scale with the default labels is the same question in either
    language it was stored in (added once, not twice)."""
    from lms.activities.models import SCALE

    quiz = build(db, world, QUIZ, questions=[], publish=False)
    with pytest.raises(InvalidInput, match="追加する質問を選んでください"):
        services.add_from_bank(world["trainer"], quiz, [])
    with pytest.raises(InvalidInput, match="この研修の問題バンクにないもの"):
        services.add_from_bank(world["trainer"], quiz, [999_999])
    db.session.rollback()
    scale = services.add_question(world["trainer"], quiz, services.QuestionInput(kind=SCALE, prompt="自信の程度"))
    item = services.save_to_bank(world["trainer"], scale)
    item.choices = ["Dissatisfied", "Somewhat dissatisfied", "Neutral", "Mostly satisfied", "Satisfied"]
    db.session.commit()
    with pytest.raises(Conflict, match="すでにあります"):  # the quiz asks it already
        services.add_from_bank(world["trainer"], quiz, [item.id])
