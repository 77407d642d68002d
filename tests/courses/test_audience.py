"""受講対象の条件 (職層, 職名, years of service, new hires): the one rule in its two forms (the
enrollment refusal in Python, the catalogue's 「自分が対象の研修」 filter in SQL) agree; the
pages and the roster carry it."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lms.common.timeutil import fiscal_year_of, today_tokyo
from lms.courses import audience
from lms.courses.models import Course
from lms.enrollment import services as enrollment
from lms.enrollment.rules import NotEligible
from lms.roster.models import StaffMember
from tests import factories


def _member(grade="", title="主事", hired_on=None):
    return type("M", (), {"job_grade": grade, "job_title": title, "hired_on": hired_on})()


def test_years_of_service_count_to_the_first_of_april_and_new_hires_are_this_years():
    assert audience.years_between(date(2024, 4, 1), 2026) == 2
    assert audience.years_between(date(2024, 4, 2), 2026) == 1  # a day short of two years on 2026-04-01
    assert audience.years_between(date(2026, 4, 1), 2026) == 0
    assert audience.years_between(date(2026, 10, 1), 2026) == 0  # hired during the year
    today = date(2026, 12, 3)
    assert audience.profile_of(_member(hired_on=date(2026, 4, 1)), today).new_hire
    assert not audience.profile_of(_member(hired_on=date(2026, 3, 31)), today).new_hire  # last year's
    profile = audience.profile_of(_member(grade="係長級 ", title="ｼｭｼﾞ", hired_on=None), today)
    assert profile == audience.Profile("係長級", "シュジ", None, False)  # NFKC, trimmed


def test_typed_lists_are_stored_one_per_line_without_repeats():
    assert audience.parse_values("係長級、課長補佐級\n係長級,,  主任 ") == ["係長級", "課長補佐級", "主任"]
    assert audience.stored(audience.parse_values("")) == ""


def test_refusals_name_the_rule_and_the_staff_members_value():
    course = Course(title="x", audience_grades="係長級\n課長補佐級", audience_titles="", min_years_of_service=None,
                    max_years_of_service=None, new_hires_only=False)
    profile = audience.Profile("主任級", "主任", 8, False)
    assert "係長級、課長補佐級" in audience.refusal(course, profile) and "主任級" in audience.refusal(course, profile)
    assert audience.refusal(course, audience.Profile("係長級", "係長", 8, False)) is None
    course = Course(title="x", audience_grades="", audience_titles="", min_years_of_service=3,
                    max_years_of_service=10, new_hires_only=False)
    assert "経験年数 3〜10 年" in audience.refusal(course, audience.Profile("", "", 2, False))
    assert "採用日がありません" in audience.refusal(course, audience.Profile("", "", None, False))
    assert audience.refusal(course, audience.Profile("", "", 10, False)) is None
    course = Course(title="x", audience_grades="", audience_titles="", min_years_of_service=None,
                    max_years_of_service=None, new_hires_only=True)
    assert "新規採用職員" in audience.refusal(course, audience.Profile("", "", 0, False))
    assert audience.describe(course) == ["今年度の新規採用職員"]


RULES = [
    {},
    {"audience_grades": "係長級\n課長級"},
    {"audience_grades": "50%_級"},  # LIKE's wildcards are literal
    {"audience_titles": "主事"},
    {"min_years_of_service": 3},
    {"max_years_of_service": 2},
    {"min_years_of_service": 1, "max_years_of_service": 5},
    {"new_hires_only": True},
    {"audience_grades": "係長級", "min_years_of_service": 5, "audience_titles": "係長\n主査"},
]
PROFILES = [
    audience.Profile(grade, title, years, new)
    for grade, title, (years, new) in itertools.product(
        ["", "係長級", "課長級", "50%_級", "50xx級"], ["", "主事", "係長"], [(None, False), (0, True), (2, False), (5, False)])
]


def test_the_catalogue_filter_and_the_enrollment_rule_agree(db):
    courses = {factories.make_course(commit=False, **rules).id: rules for rules in RULES}
    db.session.commit()
    for profile in PROFILES:
        in_sql = set(db.session.scalars(
            select(Course.id).where(Course.id.in_(courses), audience.clause()), audience.params(profile)))
        in_python = {cid for cid in courses if audience.refusal(db.session.get(Course, cid), profile) is None}
        assert in_sql == in_python, profile


def test_enrollment_and_nomination_are_refused_outside_the_audience(db, make_user):
    course = factories.make_course(audience_grades="係長級", min_years_of_service=3)
    session = factories.make_session(course)
    learner = make_user("learner", "131016")
    learner.staff_member.hired_on = today_tokyo() - timedelta(days=365 * 10)
    db.session.commit()
    with pytest.raises(NotEligible, match="係長級"):
        enrollment.enroll(session.id, learner.staff_member.id, learner)
    office = make_user("municipal_admin", "131016")
    with pytest.raises(NotEligible, match="係長級"):
        enrollment.nominate(session.id, learner.staff_member.id, office)
    learner.staff_member.job_grade = "係長級"
    db.session.commit()
    assert enrollment.enroll(session.id, learner.staff_member.id, learner).status == "confirmed"


def test_for_me_in_the_catalogue_uses_the_roster(client, login_as, db):
    year_start = date(fiscal_year_of(today_tokyo()), 4, 1)
    new_hire_course = factories.make_course(title="新規採用職員研修", new_hires_only=True)
    chief_course = factories.make_course(title="係長級研修", audience_grades="係長級")
    open_course = factories.make_course(title="誰でも研修")
    for course in (new_hire_course, chief_course, open_course):
        factories.make_session(course)
    learner = login_as("learner", "131016")
    learner.staff_member.hired_on = year_start
    db.session.commit()
    page = client.get("/courses?mine=1").get_data(as_text=True)
    assert "新規採用職員研修" in page and "誰でも研修" in page and "係長級研修" not in page
    everything = client.get("/courses").get_data(as_text=True)
    assert "係長級研修" in everything  # the rule filters "for me" only; the catalogue shows all
    detail = client.get(f"/courses/{chief_course.id}").get_data(as_text=True)
    assert "受講対象の条件" in detail and "職層：係長級" in detail


def test_the_course_form_keeps_the_audience_and_checks_it(client, login_as, db):
    trainer = login_as("trainer", "130001")
    course = factories.make_course(owner_id=trainer.id)
    base = {"title": course.title, "summary": "", "description_md": "", "category_id": "0", "target_audience": "",
            "eligibility": "all", "completion_mode": "either", "attendance_threshold_pct": "75",
            "viewing_threshold_pct": "90", "save": "1"}
    bad = client.post(f"/manage/courses/{course.id}/edit", data={**base, "min_years_of_service": "10",
                                                                 "max_years_of_service": "3",
                                                                 "audience_grades": "係長級"})
    assert "下限が上限より大きく" in bad.get_data(as_text=True)
    assert "係長級" in bad.get_data(as_text=True)  # what was typed stays
    saved = client.post(f"/manage/courses/{course.id}/edit", data={**base, "audience_grades": "係長級、課長補佐級",
                                                                   "min_years_of_service": "３"})
    assert saved.status_code == 302
    db.session.refresh(course)
    assert (course.audience_grades, course.min_years_of_service) == ("係長級\n課長補佐級", 3)


def test_the_roster_reads_and_writes_the_job_grade(client, login_as, db):
    from lms.roster import services as roster

    office = login_as("municipal_admin", "131016")
    csv = ("職員番号,氏名,氏名カナ,所属,職名,職層,サインイン名\r\n"
           "A001,山田 太郎,ヤマダ タロウ,総務課,係長,係長級,taro@131016.example.lg.jp\r\n").encode()
    report = roster.import_roster(office.municipality_id, csv, office)
    assert report.applied
    db.session.commit()
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "A001"))
    assert member.job_grade == "係長級"
    exported = roster.export_roster_csv(office.municipality_id).decode("utf-8-sig")
    header, *rows = exported.splitlines()
    assert header.split(",")[8] == "職層" and any(",係長級," in row for row in rows)
    detail = client.get(f"/roster/{member.id}").get_data(as_text=True)
    assert "係長級" in detail
    # A file without the 職層 column leaves the grades alone; one with it changes them.
    without = ("職員番号,氏名,氏名カナ,所属,職名,サインイン名\r\n"
               "A001,山田 太郎,ヤマダ タロウ,総務課,係長,taro@131016.example.lg.jp\r\n").encode()
    report = roster.import_roster(office.municipality_id, without, office)
    assert report.applied and report.counts["unchanged"] == 1
    db.session.commit()
    db.session.refresh(member)
    assert member.job_grade == "係長級"
    report = roster.import_roster(office.municipality_id, csv.replace("係長級".encode(), "課長補佐級".encode()), office)
    assert report.counts["updated"] == 1
    db.session.commit()
    db.session.refresh(member)
    assert member.job_grade == "課長補佐級"
