"""Mandatory assignments (必修指定): what the form accepts, duplicates, and overlapping groups."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from lms.completion.models import MandatoryAssignment


def _form(d, **changes):
    form = {"course_id": d["a"].id, "fiscal_year": d["fy"], "municipality_id": str(d["chiyoda"]),
            "department": "", "job_title": "", "due_on": f"{d['fy'] + 1}-03-31", "note": ""}
    return {**form, **changes}


def _count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(MandatoryAssignment))


def test_a_due_date_too_early_or_too_late_says_which_and_names_the_range(known_data, client, login_as, db):
    d = known_data
    fy = d["fy"]
    login_as("municipal_admin", "131016")
    before = _count(db)
    span = f"{fy}年4月1日から{fy + 2}年3月31日まで"
    late = client.post("/completion/assignments/new", data=_form(d, due_on=f"{fy + 2}-04-01"))
    assert late.status_code == 200
    assert "期限が遅すぎます" in late.get_data(as_text=True) and span in late.get_data(as_text=True)
    early = client.post("/completion/assignments/new", data=_form(d, due_on=f"{fy}-03-31"))
    assert "期限が早すぎます" in early.get_data(as_text=True) and span in early.get_data(as_text=True)
    assert _count(db) == before
    # The last day of the range is accepted.
    assert client.post("/completion/assignments/new",
                       data=_form(d, department="人事課", due_on=f"{fy + 2}-03-31")).status_code == 302
    assert _count(db) == before + 1


def _of_course(db, course_id) -> list[MandatoryAssignment]:
    db.session.expire_all()
    return list(db.session.scalars(select(MandatoryAssignment).where(MandatoryAssignment.course_id == course_id)
                                   .order_by(MandatoryAssignment.id)))


def test_the_same_assignment_posted_again_is_refused_naming_the_one_there_is(known_data, client, login_as, db):
    """QA: the same course, year, municipality and blank 所属/職名 posted twice (the due date
    written 2027-03-31, then 2027/3/31) was stored twice and counted twice."""
    d = known_data
    fy = d["fy"]
    login_as("municipal_admin", "131016")
    b = d["b"].id  # (known_data's B is for new staff only: another group)
    first = client.post("/completion/assignments/new", data=_form(d, course_id=b, due_on=f"{fy + 1}-03-31"))
    assert first.status_code == 302
    [new_staff, kept] = _of_course(db, b)
    again = client.post("/completion/assignments/new", data=_form(d, course_id=b, due_on=f"{fy + 1}/3/31",
                                                                 note="二度目"))
    assert again.status_code == 200
    html = again.get_data(as_text=True)
    assert f"同じ研修・年度・対象の必修指定がすでにあります（期限：{fy + 1}年3月31日）。" in html
    assert f'href="/completion/assignments/{kept.id}/edit"' in html
    assert [a.id for a in _of_course(db, b)] == [new_staff.id, kept.id]
    # Spaces around a blank 所属 make no other group; "every municipality" is one group too.
    assert client.post("/completion/assignments/new",
                       data=_form(d, course_id=b, department="  ")).status_code == 200
    login_as("platform_admin")
    assert client.post("/completion/assignments/new", data=_form(d, course_id=b, municipality_id="")).status_code == 302
    everywhere = client.post("/completion/assignments/new", data=_form(d, course_id=b, municipality_id=""))
    assert everywhere.status_code == 200 and "同じ研修・年度・対象の必修指定がすでにあります" in everywhere.get_data(as_text=True)
    assert len(_of_course(db, b)) == 3


def test_an_assignment_cannot_be_edited_into_a_copy_of_another(known_data, client, login_as, db):
    d = known_data
    a1 = d["mandatory"][0]  # course A, the whole of 千代田区
    login_as("municipal_admin", "131016")
    assert client.post("/completion/assignments/new", data=_form(d, department="総務課")).status_code == 302
    [_a1, department] = _of_course(db, d["a"].id)
    page = client.post(f"/completion/assignments/{department.id}/edit", data=_form(d, department=""))
    assert page.status_code == 200
    assert f'href="/completion/assignments/{a1.id}/edit"' in page.get_data(as_text=True)
    db.session.refresh(department)
    assert department.department == "総務課"
    # Saving an assignment unchanged is no copy of itself.
    assert client.post(f"/completion/assignments/{department.id}/edit",
                       data=_form(d, department="総務課", note="メモ")).status_code == 302


def test_the_same_assignment_posted_three_times_at_once_is_stored_once(known_data, app, live_server, db):
    from tests import factories
    from tests.at_once import post_at_once

    d = known_data
    admin = factories.make_user(role="municipal_admin", municipality_code="131016")
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    db.session.commit()
    answers = post_at_once(f"{live_server.url}/completion/assignments/new", cookie,
                           _form(d, course_id=d["b"].id, job_title="主事"))
    assert sorted(status for status, _ in answers) == [200, 200, 302]
    db.session.rollback()
    assert [a.job_title for a in _of_course(db, d["b"].id)] == ["", "主事"]


def test_overlapping_assignments_count_and_list_a_person_once(known_data, client, login_as, db):
    """The whole municipality and one 所属 both make course A mandatory: someone of that 所属
    who has not completed it is one person missing it, listed once."""
    import io

    from openpyxl import load_workbook

    d = known_data
    login_as("municipal_admin", "131016")
    html = client.get(f"/completion/dashboard?fy={d['fy']}").get_data(as_text=True)
    before = re.search(r'必修研修の未修了（人）</dt><dd class="num">([\d,]+)', html).group(1)
    assert client.post("/completion/assignments/new",
                       data=_form(d, department="総務課", due_on=f"{d['fy'] + 1}-01-31")).status_code == 302
    html = client.get(f"/completion/dashboard?fy={d['fy']}").get_data(as_text=True)
    assert re.search(r'必修研修の未修了（人）</dt><dd class="num">([\d,]+)', html).group(1) == before
    response = client.get(f"/completion/export/missing.xlsx?fy={d['fy']}", buffered=True)
    rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))[6:]
    pairs = [(r[0], r[3]) for r in rows]  # (course, 職員番号)
    assert len(pairs) == len(set(pairs))
    s2 = d["staff"][1]  # 総務課, not completed
    listed = [r[1].date() for r in rows if r[3] == s2.employee_number and r[0] == d["a"].title]
    assert listed == [d["mandatory"][0].due_on]  # under the first due date
