"""PUT /api/v1/staff/{職員番号}: the roster upsert of an HR feed, with the CSV import's rules."""

from __future__ import annotations

from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.roster.models import StaffHistory, StaffMember
from tests.api.conftest import API_CLIENTS, A, B, assert_problem
from tests.factories import municipality


def _entry(**changes) -> dict:
    entry = {"full_name": "連携 太郎", "full_name_kana": "ﾚﾝｹｲ ﾀﾛｳ", "department": "総務課", "job_title": "主事",
             "sign_in_name": "Renkei.Taro@City.Example.lg.jp", "email": "renkei@city.example.lg.jp",
             "hired_on": "2024-04-01"}
    entry.update(changes)
    return entry


def test_upsert_adds_then_transfers_and_is_audited(api, db):
    added = api("writer_a", "put", "/api/v1/staff/K0001", json=_entry())
    assert added.status_code == 201, added.get_data(as_text=True)
    body = added.get_json()
    assert body["outcome"] == "added"
    # The same normalisation as the CSV import: half-width kana → full-width, sign-in name lower-case.
    assert body["staff"]["full_name_kana"] == "レンケイ タロウ"
    assert body["staff"]["sign_in_name"] == "renkei.taro@city.example.lg.jp"
    assert body["staff"]["municipality_code"] == A

    again = api("writer_a", "put", "/api/v1/staff/K0001", json=_entry())
    assert again.status_code == 200 and again.get_json()["outcome"] == "unchanged"

    moved = api("writer_a", "put", "/api/v1/staff/K0001", json=_entry(department="企画課", job_title="主任"))
    assert moved.status_code == 200
    assert moved.get_json()["outcome"] == "transferred"
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0001"))
    assert (member.department, member.job_title, member.source) == ("企画課", "主任", "api")
    history = db.session.scalars(select(StaffHistory).where(StaffHistory.staff_member_id == member.id)).all()
    assert [(h.kind, h.from_department, h.to_department) for h in history] == [("transfer", "総務課", "企画課")]

    entries = db.session.scalars(select(AuditLog).where(AuditLog.action == "roster.upsert").order_by(AuditLog.id)).all()
    assert [e.details["outcome"] for e in entries] == ["added", "unchanged", "transferred"]
    application_id = API_CLIENTS["writer_a"][0]
    assert all(e.details["application_id"] == application_id and e.actor_id is None for e in entries)
    assert application_id in entries[0].actor_label
    assert entries[0].municipality_id == municipality(A).id


def test_departure_and_return(api, db):
    assert api("writer_a", "put", "/api/v1/staff/K0002", json=_entry()).status_code == 201
    left = api("writer_a", "put", "/api/v1/staff/K0002", json=_entry(left_on="2026-03-31"))
    assert left.get_json()["outcome"] == "left"
    assert left.get_json()["staff"]["status"] == "left"
    back = api("writer_a", "put", "/api/v1/staff/K0002", json=_entry())
    assert back.get_json()["outcome"] == "returned"
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0002"))
    kinds = [h.kind for h in db.session.scalars(select(StaffHistory).where(StaffHistory.staff_member_id == member.id))]
    assert sorted(kinds) == ["left", "returned"]


def test_refused_rows_are_422_problems_and_change_nothing(api, db):
    bad = assert_problem(api("writer_a", "put", "/api/v1/staff/K0003", json=_entry(sign_in_name="not-an-address")),
                         422, "invalid-input")
    assert "サインイン名" in bad["detail"]
    assert_problem(api("writer_a", "put", "/api/v1/staff/K0003", json={"department": "総務課"}), 422, "invalid-input")
    assert_problem(api("writer_a", "put", "/api/v1/staff/K%2A03", json=_entry()), 422, "invalid-input")
    assert db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0003")) is None


def test_the_platform_client_names_the_municipality(api, db):
    assert_problem(api("platform", "put", "/api/v1/staff/K0004", json=_entry()), 422, "invalid-input")
    created = api("platform", "put", "/api/v1/staff/K0004", json=_entry(municipality_code=B))
    assert created.status_code == 201
    assert created.get_json()["staff"]["municipality_code"] == B
    # A municipality's own client cannot write into another one's roster.
    assert_problem(api("writer_a", "put", "/api/v1/staff/K0004", json=_entry(municipality_code=B)), 404)
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0004"))
    assert member.municipality_id == municipality(B).id


def test_the_job_grade_is_written_when_sent_and_kept_when_left_out(api, db):
    added = api("writer_a", "put", "/api/v1/staff/K0009", json=_entry(job_grade="係長級"))
    assert added.status_code == 201 and added.get_json()["staff"]["job_grade"] == "係長級"
    kept = api("writer_a", "put", "/api/v1/staff/K0009", json=_entry())  # a feed without 職層
    assert kept.get_json()["outcome"] == "unchanged" and kept.get_json()["staff"]["job_grade"] == "係長級"
    changed = api("writer_a", "put", "/api/v1/staff/K0009", json=_entry(job_grade="課長補佐級"))
    assert changed.get_json()["outcome"] == "updated" and changed.get_json()["staff"]["job_grade"] == "課長補佐級"


def test_a_departure_still_to_come_is_scheduled(api, db):
    """A future ``left_on`` (the 年度末 list sent ahead) is recorded as a scheduled departure:
    the entry stays active until the day, sending it again records nothing new, and on the
    day it is left."""
    from datetime import timedelta

    from lms.common.timeutil import today_tokyo
    from lms.roster.models import StaffHistory
    from lms.roster.services import apply_due_departures

    assert api("writer_a", "put", "/api/v1/staff/K0005", json=_entry()).status_code == 201
    later = today_tokyo() + timedelta(days=30)
    for _ in range(2):
        sent = api("writer_a", "put", "/api/v1/staff/K0005", json=_entry(left_on=later.isoformat()))
        assert sent.status_code == 200, sent.get_json()
    db.session.expire_all()
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0005"))
    assert member.status == "active" and member.left_on == later
    assert db.session.scalars(select(StaffHistory.kind).where(StaffHistory.staff_member_id == member.id)).all() == ["left"]
    assert apply_due_departures(later) == 1
    db.session.expire_all()
    assert db.session.get(StaffMember, member.id).status == "left"


def test_mail_and_hire_date_are_kept_when_left_out_and_cleared_when_sent_empty(api, db):
    """メール and 採用日 are columns a CSV may leave out (KEPT_WHEN_ABSENT): left out of the body,
    they stay; sent empty (``""``, ``null``), they are cleared, as an empty cell clears them."""
    assert api("writer_a", "put", "/api/v1/staff/K0010", json=_entry()).status_code == 201
    body = {key: value for key, value in _entry().items() if key not in ("email", "hired_on")}
    kept = api("writer_a", "put", "/api/v1/staff/K0010", json=body)
    assert kept.status_code == 200 and kept.get_json()["outcome"] == "unchanged", kept.get_json()
    staff = kept.get_json()["staff"]
    assert (staff["email"], staff["hired_on"]) == ("renkei@city.example.lg.jp", "2024-04-01")
    cleared = api("writer_a", "put", "/api/v1/staff/K0010", json=_entry(email="", hired_on=None))
    assert cleared.get_json()["outcome"] == "updated"
    assert (cleared.get_json()["staff"]["email"], cleared.get_json()["staff"]["hired_on"]) == ("", None)


def test_a_departure_before_the_hire_date_is_refused_as_on_the_roster_page(api, db):
    assert api("writer_a", "put", "/api/v1/staff/K0011", json=_entry(hired_on="2025-04-01")).status_code == 201
    refused = assert_problem(api("writer_a", "put", "/api/v1/staff/K0011",
                                 json=_entry(hired_on="2025-04-01", left_on="2020-01-01")), 422, "invalid-input")
    assert "採用日" in refused["detail"]
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0011"))
    assert (member.status, member.left_on) == ("active", None)


def test_changes_to_an_entry_already_left_are_refused_naming_them(api, db):
    """An entry recorded as left takes no transfer nor another departure day (the roster pages
    refuse both): sent with ``left_on``, the changes are refused by name, never "unchanged"."""
    assert api("writer_a", "put", "/api/v1/staff/K0012", json=_entry()).status_code == 201
    assert api("writer_a", "put", "/api/v1/staff/K0012", json=_entry(left_on="2026-03-31")).status_code == 200
    again = api("writer_a", "put", "/api/v1/staff/K0012", json=_entry(left_on="2026-03-31"))
    assert again.status_code == 200 and again.get_json()["outcome"] == "unchanged"
    refused = assert_problem(api("writer_a", "put", "/api/v1/staff/K0012",
                                 json=_entry(department="企画課", left_on="2026-03-30")), 422, "invalid-input")
    assert "所属" in refused["detail"] and "退職・転出日" in refused["detail"]
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "K0012"))
    assert (member.department, member.left_on.isoformat()) == ("総務課", "2026-03-31")


def test_null_does_not_cancel_a_scheduled_departure_silently(api, db):
    from datetime import timedelta

    from lms.common.timeutil import today_tokyo

    later = (today_tokyo() + timedelta(days=30)).isoformat()
    assert api("writer_a", "put", "/api/v1/staff/K0013", json=_entry(left_on=later)).get_json()["outcome"] == "left"
    refused = assert_problem(api("writer_a", "put", "/api/v1/staff/K0013", json=_entry(left_on=None)),
                             422, "invalid-input")
    assert "予定" in refused["detail"]
    kept = api("writer_a", "put", "/api/v1/staff/K0013", json=_entry())  # left out: nothing said about it
    assert kept.get_json()["outcome"] == "unchanged" and kept.get_json()["staff"]["left_on"] == later


def test_an_unknown_municipality_code_is_named_as_unknown(api, db):
    for method, path, kw in (("get", "/api/v1/staff/K0001?municipality_code=999999", {}),
                             ("put", "/api/v1/staff/K0001", {"json": _entry(municipality_code="999999")}),
                             ("post", "/api/v1/staff/bulk",
                              {"json": {"entries": [{"employee_number": "K1", "full_name": "x"}],
                                        "municipality_code": "999999"}})):
        body = assert_problem(api("platform", method, path, **kw), 422, "invalid-input")
        assert "999999" in body["detail"] and "999999" in body["errors"]["municipality_code"][0]
    missing = assert_problem(api("platform", "get", "/api/v1/staff/K0001"), 422, "invalid-input")
    assert "999999" not in missing["detail"]


def test_a_body_that_is_not_json_is_415_as_for_the_bulk_feed(api, app, client):
    for method, path in (("put", "/api/v1/staff/K0014"), ("post", "/api/v1/staff/bulk")):
        assert_problem(api("writer_a", method, path, data='{"full_name": "x"}', content_type="text/plain"),
                       415, "unsupported-media-type")
    document = client.get("/api/v1/openapi.json").get_json()
    assert "415" in document["paths"]["/api/v1/staff/{employee_number}"]["put"]["responses"]
    assert "415" in document["paths"]["/api/v1/staff/bulk"]["post"]["responses"]


def test_the_audit_log_reads_the_outcome_in_words_and_names_the_client(api, db, app):
    from lms.admin.audit_text import details_text

    assert api("writer_a", "put", "/api/v1/staff/K0015", json=_entry()).status_code == 201
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "roster.upsert"))
    with app.test_request_context():
        text = details_text(entry.details, entry.action)
    assert "結果：追加" in text and "API クライアント：writer_a" in text, text
    assert "added" not in text
