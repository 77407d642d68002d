"""Who may see what: every report, export and certificate route walked as each role."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.completion.models import Completion

EXPORT_TABLES = ("courses", "departments", "job_titles", "trend", "missing", "records")


def report_routes(d, own_completion_id):
    fy = d["fy"]
    a1 = d["mandatory"][0]
    routes = [
        f"/completion/dashboard?fy={fy}",
        f"/completion/records?fy={fy}",
        f"/completion/assignments/{a1.id}/missing",
        f"/completion/courses/{d['a'].id}/certificates.zip?fy={fy}",
        "/completion/assignments/new",
        f"/completion/assignments/{a1.id}/edit",
    ]
    for table in EXPORT_TABLES:
        for fmt in ("csv", "xlsx"):
            routes.append(f"/completion/export/{table}.{fmt}?fy={fy}")
    return routes


@pytest.mark.parametrize("role", ["learner", "trainer"])
def test_learners_and_trainers_cannot_reach_reports(known_data, client, login_as, role):
    d = known_data
    login_as(role, "131016")
    for path in report_routes(d, None) + [f"/completion/compare?fy={d['fy']}",
                                          f"/completion/export/comparison.csv?fy={d['fy']}"]:
        assert client.get(path, buffered=True).status_code == 403, path


def test_municipal_admin_reaches_own_reports(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    for path in report_routes(d, None):
        assert client.get(path, buffered=True).status_code == 200, path
    # the platform-only pages stay closed
    assert client.get(f"/completion/compare?fy={d['fy']}").status_code == 403
    assert client.get(f"/completion/export/comparison.xlsx?fy={d['fy']}", buffered=True).status_code == 403


def test_municipal_admin_asking_for_another_municipality_is_denied_and_audited(known_data, client, login_as, db):
    d = known_data
    admin = login_as("municipal_admin", "131016")
    other = d["chuo"]
    paths = [f"{p}{'&' if '?' in p else '?'}municipality={other}" for p in report_routes(d, None)]
    paths += ["/completion/dashboard?municipality=all", "/completion/export/records.csv?municipality=all"]
    for path in paths:
        assert client.get(path, buffered=True).status_code == 403, path
    denied = db.session.scalars(select(AuditLog).where(AuditLog.action == "access.denied")).all()
    assert len(denied) == len(paths) and all(e.actor_id == admin.id for e in denied)


def test_municipal_admin_cannot_open_other_municipality_records(known_data, client, login_as, db, make_user):
    d = known_data
    login_as("municipal_admin", "131024")  # 中央区
    chiyoda_completion = db.session.scalar(select(Completion).where(Completion.staff_member_id == d["staff"][0].id))
    # Answered as for records that do not exist.
    assert client.get(f"/completion/certificates/{chiyoda_completion.id}.pdf").status_code == 404
    assert client.get("/completion/certificates/2147483647.pdf").status_code == 404
    assert client.get(f"/completion/assignments/{d['mandatory'][0].id}/missing").status_code == 404
    assert client.get(f"/completion/export/missing.csv?assignment={d['mandatory'][0].id}",
                      buffered=True).status_code == 404
    assert client.post(f"/completion/assignments/{d['mandatory'][0].id}/delete").status_code == 404
    assert client.get(f"/completion/assignments/{d['mandatory'][0].id}/delete").status_code == 404
    assert db.session.scalar(select(AuditLog.id).where(AuditLog.action == "access.denied")) is not None


def test_platform_admin_sees_everything(known_data, client, login_as):
    d = known_data
    login_as("platform_admin", "130001")
    for path in report_routes(d, None):
        assert client.get(path, buffered=True).status_code == 200, path
    for path in (f"/completion/dashboard?municipality={d['chuo']}", "/completion/dashboard?municipality=all",
                 f"/completion/compare?fy={d['fy']}&course={d['a'].id}",
                 f"/completion/export/comparison.csv?fy={d['fy']}&course={d['a'].id}"):
        assert client.get(path, buffered=True).status_code == 200, path
    html = client.get(f"/completion/compare?fy={d['fy']}&course={d['a'].id}").get_data(as_text=True)
    assert "千代田区" in html and "33.3%" in html and "100.0%" in html
    assert client.get("/completion/dashboard?municipality=999999").status_code == 404


def test_mandatory_assignment_lifecycle_by_municipal_admin(known_data, client, login_as, db):
    from lms.completion.models import MandatoryAssignment

    d = known_data
    login_as("municipal_admin", "131016")
    form = {"course_id": d["a"].id, "fiscal_year": d["fy"], "municipality_id": str(d["chiyoda"]),
            "department": "総務課", "job_title": "", "due_on": f"{d['fy'] + 1}-03-31", "note": ""}
    # A due date of spaces only is no date: the form says so (it was a 500), nothing saved.
    refused = client.post("/completion/assignments/new", data={**form, "due_on": "\u3000"})
    assert refused.status_code in (200, 422) and "この項目を入力してください。" in refused.get_data(as_text=True)
    assert db.session.scalar(select(MandatoryAssignment).where(MandatoryAssignment.department == "総務課")) is None
    assert client.post("/completion/assignments/new", data=form).status_code == 302
    created = db.session.scalar(select(MandatoryAssignment).where(MandatoryAssignment.department == "総務課"))
    assert created.municipality_id == d["chiyoda"]
    created_id = created.id
    # cannot assign to another municipality nor to all of them
    for other in (str(d["chuo"]), ""):
        response = client.post("/completion/assignments/new", data={**form, "municipality_id": other})
        assert response.status_code in (200, 403)
    assert db.session.scalar(select(MandatoryAssignment).where(MandatoryAssignment.municipality_id == d["chuo"])) is None
    # a due date before the fiscal year is refused with a message, nothing saved
    response = client.post(f"/completion/assignments/{created.id}/edit", data={**form, "due_on": "2000-01-01"})
    assert response.status_code == 200 and "期限が早すぎます" in response.get_data(as_text=True)
    # Deleting asks on a page first (naming the course), which POSTs to the same URL.
    page = client.get(f"/completion/assignments/{created_id}/delete")
    assert page.status_code == 200 and "必修指定の削除" in page.get_data(as_text=True)
    assert db.session.get(MandatoryAssignment, created_id) is not None  # nothing removed by looking
    assert client.post(f"/completion/assignments/{created_id}/delete").status_code == 302
    assert db.session.get(MandatoryAssignment, created_id) is None
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"completion.assignment_create", "completion.assignment_delete"} <= actions


def test_trainer_manual_completion_and_revoke_through_the_pages(known_data, client, login_as, db):
    d = known_data
    trainer = login_as("trainer", "131016")
    course = d["a"]
    course.owner_id = trainer.id
    db.session.commit()
    s2 = d["staff"][1]
    page = client.post(f"/completion/courses/{course.id}?fy={d['fy']}", data={
        "municipality_id": s2.municipality_id, "employee_number": s2.employee_number,
        "fiscal_year": d["fy"], "reason": "会場で出席を確認",
    })
    assert page.status_code == 302
    c = db.session.scalar(select(Completion).where(Completion.staff_member_id == s2.id))
    assert c.method == "manual"
    assert client.post(f"/completion/{c.id}/revoke", data={"reason": ""}).status_code == 302
    db.session.refresh(c)
    assert c.status == "completed"  # no reason, nothing done
    client.post(f"/completion/{c.id}/revoke", data={"reason": "誤登録"})
    db.session.refresh(c)
    assert c.status == "revoked"
    # another trainer may not
    login_as("trainer", "131016")
    assert client.get(f"/completion/courses/{course.id}").status_code == 404  # as for no course
    assert client.post(f"/completion/{c.id}/revoke", data={"reason": "x"}).status_code == 404


def test_comparison_is_a_heat_table_with_courses_chosen_by_checkboxes(known_data, client, login_as):
    import re

    d = known_data
    login_as("platform_admin", "130001")
    html = client.get(f"/completion/compare?fy={d['fy']}&course={d['a'].id}").get_data(as_text=True)
    # Every course is a checkbox; the compared one is ticked.
    assert re.search(rf'<input type="checkbox" id="course-{d["a"].id}" name="course" value="{d["a"].id}" checked>', html)
    assert re.search(rf'<input type="checkbox" id="course-{d["b"].id}" name="course" value="{d["b"].id}">', html)
    assert "select id=\"course\"" not in html and "multiple" not in html
    # Each rate shaded by its band, and written in the cell (colour is never the only cue).
    cells = re.findall(r'<td class="num heat-(\d)">([\d.]+)%', html)
    assert ("1", "33.3") in cells and ("4", "100.0") in cells
    assert "色の凡例" in html and "80%以上" in html
