"""English mode says everything in English: each role's main pages, with test data in ASCII
(titles, names), carry no full-width bracket or punctuation and no kana or kanji outside the
data that stays Japanese (municipality names) and the language switch's 「日本語」."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.courses.models import Category
from lms.enrollment.models import CONFIRMED, PENDING, WAITLISTED, Enrollment
from lms.municipalities.models import Municipality
from tests.factories import make_course, make_session, make_staff, make_user

JAPANESE = re.compile(r"[（）「」『』【】、。：・\u3040-\u30ff\u3400-\u9fff\uff01-\uff60]")
LANG_JA = re.compile(r"<(\w+)[^>]*\blang=\"ja\"[^>]*>.*?</\1>", re.S)
STAFF = {"department": "General Affairs", "job_title": "Officer"}


@pytest.fixture
def english_world(db):
    category = Category(name="情報システム", name_en="Information systems", sort_order=1)
    db.session.add(category)
    db.session.commit()
    users = {
        "learner": make_user("learner", name="Learner One"),
        "trainer": make_user("trainer", name="Trainer One"),
        "municipal_admin": make_user("municipal_admin", name="Office Admin"),
        "platform_admin": make_user("platform_admin", name="Platform Admin"),
    }
    for user in users.values():
        user.staff_member.full_name_kana = "Kana"
        user.staff_member.department, user.staff_member.job_title = STAFF["department"], STAFF["job_title"]
    course = make_course(title="Spreadsheet basics", summary="Formulas and charts.", category_id=category.id,
                         owner_id=users["trainer"].id, description_md="## Overview\n\nCells and formulas.")
    approval = make_course(title="Records management", summary="Keeping records.", requires_approval=True,
                           category_id=category.id, owner_id=users["trainer"].id, description_md="Text.")
    full = make_course(title="Full course", summary="No seats.", description_md="Text.")
    session = make_session(course, title="Round 1", quotas={"131016": 2})
    approval_session = make_session(approval, title="Round A")
    full_session = make_session(full, title="Round F", capacity=1)
    make_session(course, title="Round 0", starts_in=-timedelta(days=2))
    learner = users["learner"].staff_member
    other = make_staff("131016", full_name="Other Staff", full_name_kana="Other", **STAFF)
    for s, member, status, seq in ((session, learner, CONFIRMED, 1), (approval_session, learner, PENDING, 1),
                                   (full_session, other, CONFIRMED, 1), (full_session, learner, WAITLISTED, 2)):
        db.session.add(Enrollment(session_id=s.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                                  status=status, arrival_seq=seq))
        if status == CONFIRMED:
            s.confirmed_count += 1
    db.session.commit()
    return {"users": users, "course": course, "session": session}


def pages_for(role: str, world) -> list[str]:
    course, session = world["course"], world["session"]
    learner = ["/", "/courses", f"/courses/{course.id}", "/me"]
    return {
        "learner": learner,
        "trainer": learner + ["/manage/courses", f"/manage/courses/{course.id}"],
        "municipal_admin": learner + ["/municipal", f"/municipal/sessions/{session.id}", "/roster"],
        "platform_admin": learner + ["/admin/", f"/manage/courses/{course.id}"],
    }[role]


def japanese_outside_data(html: str, data: list[str]) -> list[str]:
    text = LANG_JA.sub("", html)
    for value in data:
        text = text.replace(value, "")
    return sorted({text[max(0, m.start() - 30):m.end() + 30] for m in JAPANESE.finditer(text)})


@pytest.mark.parametrize("role", ["learner", "trainer", "municipal_admin", "platform_admin"])
def test_main_pages_in_english_have_no_japanese_text(app, db, client, login_as, english_world, role):
    login_as(user=english_world["users"][role])
    data = [m.name for m in db.session.scalars(select(Municipality))]
    problems = {}
    for url in pages_for(role, english_world):
        response = client.get(url, headers={"Accept-Language": "en"})
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert '<html lang="en"' in html, url
        found = japanese_outside_data(html, data)
        if found:
            problems[url] = found
    assert not problems, problems


def test_english_mode_shows_stored_category_names_and_statuses(db, client, login_as, english_world):
    login_as(user=english_world["users"]["learner"])
    html = client.get("/courses", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Information systems" in html and "情報システム" not in html
    assert "Confirmed" in html and "Awaiting approval" in html
    japanese = client.get("/courses", headers={"Accept-Language": "ja"}).get_data(as_text=True)
    assert "情報システム" in japanese and "受講確定" in japanese and "承認待ち" in japanese
    assert "キャンセル待ち 1 番目" in japanese
