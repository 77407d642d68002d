"""The trainer's results page and export: the files attached to pre-work and reports (who
attached them, linked to the download, capped on the page, every one in the export with its
address) and a quiz's takers, pass rate, mean score and score bands (each learner's deciding
attempt: a passed one stands), at a cost that does not grow with the answers."""

from __future__ import annotations

import io
import re
import zipfile

from lms.activities import results, services
from lms.activities.models import FILE, LONGTEXT, PREWORK, QUIZ, REPORT
from lms.enrollment import services as enrollment
from tests import factories
from tests.activities import test_activities as base
from tests.activities.test_files_and_bank import PDF, upload

build, form, quiz_questions = base.build, base.form, base.quiz_questions
world = base.world  # a trainer's course, a session, a learner with a place


def learner_in(db, world, name: str, code: str = "131016"):
    person = factories.make_user("learner", code, name=name)
    enrollment.enroll_self(world["session"].id, person)
    db.session.commit()
    return person


def sheet_rows(data: bytes) -> list[list[str]]:
    """The first sheet's rows as texts (inline strings and numbers), in column order."""
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    rows = []
    for row in re.findall(r"<row [^>]*>(.*?)</row>", xml):
        rows.append([re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<c [^>]*>(.*?)</c>", row)])
    return rows



def submit_file(db, activity, person, name: str, text: str = "報告"):
    file_q = next(q for q in activity.questions if q.kind == FILE)
    done, errors = services.save(activity.id, person, form(activity, text), submit=True,
                                 uploads={file_q.id: upload(PDF, name)})
    db.session.commit()
    assert not errors, errors
    return done.answers[str(file_q.id)]["file"]


def file_report(db, world, kind=REPORT):
    return build(db, world, kind, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと"),
                                             services.QuestionInput(kind=FILE, prompt="研修で作った資料")])


def test_the_manager_sees_each_attached_file_with_who_sent_it_and_downloads_it(db, world, client, login_as):
    report = file_report(db, world)
    hachioji = learner_in(db, world, "八王子 次郎", "132012")
    first = submit_file(db, report, world["learner"], "千代田の資料.pdf")
    second = submit_file(db, report, hachioji, "八王子の資料.pdf")
    login_as(user=world["trainer"])
    page = client.get(f"/manage/activities/{report.id}/results")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for file_id, name, person, town in ((first, "千代田の資料.pdf", "受講 花子", "千代田区"),
                                        (second, "八王子の資料.pdf", "八王子 次郎", "八王子市")):
        assert f'href="/activity-files/{file_id}"' in html and name in html and person in html and town in html
    assert "添付されたファイル" in html and 'role="region"' in html and '<th scope="row">受講 花子</th>' in html
    got = client.get(f"/activity-files/{first}")
    assert got.status_code == 200 and got.data == PDF
    # Someone who does not manage the course sees neither the page nor the files.
    login_as(user=factories.make_user("trainer"))
    assert client.get(f"/manage/activities/{report.id}/results").status_code == 404
    assert client.get(f"/activity-files/{first}").status_code == 404


def test_the_page_lists_the_first_files_and_says_how_many_more(db, world, client, login_as, monkeypatch):
    prework = file_report(db, world, PREWORK)
    others = [learner_in(db, world, f"受講 {n}郎") for n in range(2)]
    for n, person in enumerate([world["learner"], *others]):
        submit_file(db, prework, person, f"課題{n}.pdf")
    monkeypatch.setattr(results, "SHOWN_FILES", 2)
    shown = results.results(prework)
    file_result = next(q for q in shown.questions if q.kind == FILE)
    assert len(file_result.files) == 2 and file_result.more_files == 1 and file_result.answered == 3
    login_as(user=world["trainer"])
    html = client.get(f"/manage/activities/{prework.id}/results").get_data(as_text=True)
    assert "ほかに 1 件のファイルがあります" in html and html.count('href="/activity-files/') == 2


def test_the_export_gives_each_file_its_name_and_address(db, world, client, login_as):
    report = file_report(db, world)
    file_id = submit_file(db, report, world["learner"], "報告資料.pdf", text="学びました")
    login_as(user=world["trainer"])
    export = client.get(f"/manage/activities/{report.id}/results.xlsx")
    assert export.status_code == 200
    rows = sheet_rows(export.data)
    header = rows.index(["学んだこと", "研修で作った資料", "研修で作った資料（ダウンロード URL）"])
    assert rows[header + 1] == ["学びました", "報告資料.pdf", f"http://localhost/activity-files/{file_id}"]
    assert "受講 花子" not in str(rows)  # the export still names nobody


def test_the_file_list_costs_the_same_statements_for_more_answers(db, world):
    report = file_report(db, world)
    submit_file(db, report, world["learner"], "a.pdf")

    def run():
        db.session.expire_all()
        results.results(db.session.get(type(report), report.id))

    few = factories.count_statements(run)
    for n in range(3):
        submit_file(db, report, learner_in(db, world, f"追加 {n}"), f"b{n}.pdf")
    assert factories.count_statements(run) == few


def take(db, quiz, person, *answers):
    services.start_attempt(quiz.id, person)
    db.session.commit()
    done, errors = services.save(quiz.id, person, form(quiz, *answers), submit=True)
    db.session.commit()
    assert not errors, errors
    return done


RIGHT, HALF_WRONG = (0, ["0", "1"], 30), (1, ["0"], 30)  # 100 %; 25 % (only the number is right)


def test_a_quiz_shows_takers_pass_rate_mean_and_bands_by_the_deciding_attempt(db, world, client, login_as):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), pass_pct=75, max_attempts=3)
    retaker, failer, passer = world["learner"], learner_in(db, world, "不合 太郎"), learner_in(db, world, "一発 合子")
    assert take(db, quiz, retaker, *HALF_WRONG).passed is False
    assert take(db, quiz, retaker, *RIGHT).passed is True  # failed, then passed: counted as passed
    take(db, quiz, failer, *HALF_WRONG)
    take(db, quiz, passer, *RIGHT)
    result = results.results(quiz)
    summary = result.quiz
    assert summary is not None
    assert (summary.takers, summary.passed, summary.pass_rate, summary.mean) == (3, 2, 66.7, 75.0)
    bands = dict(summary.bands)
    assert bands["20〜29"] == 1 and bands["90〜100"] == 2 and sum(bands.values()) == 3 and len(bands) == 10
    from flask_babel import force_locale

    with force_locale("en"):  # English: an en dash, no 〜
        assert [band for band, _n in results.results(quiz).quiz.bands][-1] == "90–100"
    assert result.total == 3
    login_as(user=world["trainer"])
    html = client.get(f"/manage/activities/{quiz.id}/results").get_data(as_text=True)
    assert "得点と合否" in html and "66.7%" in html and "75.0%" in html and "3 人" in html and "2 人" in html
    assert '<th scope="row">90〜100</th><td class="num">2</td>' in html
    assert 'aria-label="得点の分布"' in html
    rows = sheet_rows(client.get(f"/manage/activities/{quiz.id}/results.xlsx").data)
    header = next(i for i, r in enumerate(rows) if r[:3] == ["受験回", "得点（%）", "合否"])
    body = sorted(r[:3] for r in rows[header + 1:])
    assert body == [["1", "100", "合格"], ["1", "25", "不合格"], ["2", "100", "合格"]]


def test_a_quiz_without_takers_shows_no_numbers(db, world, client, login_as):
    quiz = build(db, world, QUIZ, questions=quiz_questions())
    summary = results.results(quiz).quiz
    assert summary is not None and (summary.takers, summary.passed, summary.pass_rate, summary.mean) == (0, 0, None, None)
    login_as(user=world["trainer"])
    page = client.get(f"/manage/activities/{quiz.id}/results")
    assert page.status_code == 200 and "得点の分布" not in page.get_data(as_text=True)
    assert results.results(build(db, world, PREWORK)).quiz is None  # only a quiz has scores
