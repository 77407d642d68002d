"""The completion dashboard and its export count each activity for the municipality's staff:
who submitted, who passed (a quiz, each person once whatever their attempts), whose report
is confirmed — another municipality's staff never counted, an anonymous survey's submitters
counted without their answers."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from lms.activities import services
from lms.activities.models import LONGTEXT, NUMBER, QUIZ, REPORT, SURVEY
from lms.common.timeutil import fiscal_year_of
from lms.completion import reports
from lms.enrollment import services as enrollment
from tests.activities import test_activities as base

build, form = base.build, base.form
world = base.world


def test_activity_figures_per_municipality(db, world, make_user, client, login_as):
    session, learner = world["session"], world["learner"]  # learner: 千代田区 (131016)
    colleague = make_user("learner", name="同僚 次郎")
    outsider = make_user("learner", "132012", name="八王子 三郎")
    for person in (colleague, outsider):
        enrollment.enroll_self(session.id, person)
    db.session.commit()
    survey = build(db, world, SURVEY, anonymous=True)
    quiz = build(db, world, QUIZ, questions=[services.QuestionInput(kind=NUMBER, prompt="1+1", correct=[2])],
                 max_attempts=3)
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    build(db, world, SURVEY, publish=False)  # unpublished: not listed
    for person in (learner, colleague, outsider):
        services.save(survey.id, person, form(survey, 5, 0), submit=True)
        db.session.commit()
    # The learner fails, then passes (one person, counted once); the colleague fails once.
    for person, answers in ((learner, ["1", "2"]), (colleague, ["3"]), (outsider, ["2"])):
        for answer in answers:
            services.start_attempt(quiz.id, person)
            db.session.commit()
            services.save(quiz.id, person, {f"q{quiz.questions[0].id}": [answer]}, submit=True)
            db.session.commit()
    office = make_user("municipal_admin", name="研修担当")
    for person in (learner, colleague, outsider):
        services.save(report.id, person, form(report, "学んだ。"), submit=True)
        db.session.commit()
    mine = services.reports_to_review(office)
    services.review_report(mine[0].id, office, services.CONFIRM)
    db.session.commit()
    services.review_report(mine[1].id, office, services.RETURN, "もう少し詳しく")
    db.session.commit()

    fy = fiscal_year_of(session.starts_at)
    course = world["course"]
    figures = {f.title: f for f in reports.activity_figures(office.municipality_id, fy, course.id)}
    assert set(figures) == {survey.title, quiz.title, report.title}
    assert (figures[survey.title].submitted, figures[survey.title].passed) == (2, None)
    assert (figures[quiz.title].submitted, figures[quiz.title].passed) == (2, 1)
    assert (figures[report.title].submitted, figures[report.title].confirmed) == (1, 1)  # one returned
    everyone = {f.title: f for f in reports.activity_figures(None, fy, course.id)}
    assert everyone[quiz.title].passed == 2 and everyone[survey.title].submitted == 3

    login_as(user=office)
    page = client.get(f"/completion/dashboard?fy={fy}&course={course.id}").get_data(as_text=True)
    assert "課題の状況" in page and "確認テスト：確認テスト" in page and "八王子 三郎" not in page
    export = client.get(f"/completion/export/activities.xlsx?fy={fy}&course={course.id}", buffered=True)
    assert export.status_code == 200
    rows = [tuple(r) for r in load_workbook(io.BytesIO(export.data)).active.iter_rows(values_only=True)]
    header = next(i for i, r in enumerate(rows) if r and r[0] == "研修")
    assert rows[header] == ("研修", "課題", "種類", "修了要件", "提出者数", "合格者数", "確認済の報告")
    data = {r[1]: r for r in rows[header + 1:] if r and r[1]}
    assert data[quiz.title][4:6] == (2, 1) and data[report.title][4:] == (1, "", 1)
    csv = client.get(f"/completion/export/activities.csv?fy={fy}&course={course.id}", buffered=True).get_data(as_text=True)
    assert "研修アンケート" in csv and "八王子" not in csv
    # Another municipality's office: its own staff only (the outsider's work).
    login_as(user=make_user("municipal_admin", "132012"))
    other = client.get(f"/completion/export/activities.csv?fy={fy}&course={course.id}&municipality=131016", buffered=True)
    assert other.status_code in (403, 404)
    theirs = {f.title: f for f in reports.activity_figures(outsider.municipality_id, fy, course.id)}
    assert theirs[quiz.title].passed == 1 and theirs[report.title].confirmed == 0
