"""The API's resources: lists, filters, pages, ETags, problems and the OpenAPI contract."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from openapi_spec_validator import validate

from lms.common.timeutil import utcnow
from lms.completion.models import Completion
from tests.api.conftest import A, B, assert_problem
from tests.factories import make_course, make_session, make_staff, municipality


def test_pages_walk_every_row_exactly_once_despite_a_concurrent_insert(api):
    before = {make_staff(A).employee_number for _ in range(7)}
    make_staff(B)
    seen: list[str] = []
    url = "/api/v1/staff?limit=3"
    pages = 0
    added = None
    while url:
        response = api("reader_a", "get", url)
        assert response.status_code == 200
        body = response.get_json()
        seen += [row["employee_number"] for row in body["items"]]
        pages += 1
        if added is None:
            added = make_staff(A).employee_number  # written while the client is between pages
        url = body["next"]
        if url:
            assert response.headers["Link"] == f'<{url}>; rel="next"'
        assert pages < 10
    assert len(seen) == len(set(seen)), "a row came twice"
    assert set(seen) == before | {added}


def test_updated_since_gives_only_the_rows_changed_after(api, db):
    old = make_staff(A)
    old.updated_at = utcnow() - timedelta(days=3)
    db.session.commit()
    new = make_staff(A)
    since = (utcnow() - timedelta(days=1)).isoformat()
    rows = api("reader_a", "get", "/api/v1/staff", query_string={"updated_since": since}).get_json()["items"]
    assert [row["employee_number"] for row in rows] == [new.employee_number]


def test_etag_answers_304_when_nothing_changed(api):
    make_staff(A)
    first = api("reader_a", "get", "/api/v1/staff")
    etag = first.headers["ETag"]
    again = api("reader_a", "get", "/api/v1/staff", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    make_staff(A)
    changed = api("reader_a", "get", "/api/v1/staff", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_if_none_match_compares_weakly(api):
    """RFC 9110 13.1.2: If-None-Match uses the weak comparison — the tag weakened (W/, as a
    compressing proxy passes it on), one of a list, or * answers 304; another tag, 200."""
    make_staff(A)
    make_staff(A)
    first = api("reader_a", "get", "/api/v1/staff", query_string={"limit": 1})
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers.get("Link")
    for header in (f"W/{etag}", f'"other", {etag}', f'W/"other", W/{etag}', "*"):
        again = api("reader_a", "get", "/api/v1/staff", query_string={"limit": 1}, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.get_data() == b"" and again.headers["ETag"] == etag
        assert again.headers["Link"] == first.headers["Link"]  # (the next page's, as the 200 gave it)
    for header in ('"other"', 'W/"other"', f'"{etag.strip(chr(34))}x"'):
        assert api("reader_a", "get", "/api/v1/staff", query_string={"limit": 1},
                   headers={"If-None-Match": header}).status_code == 200, header


def test_problems_follow_accept_language(api):
    japanese = assert_problem(api("reader_a", "get", "/api/v1/nothing-here"), 404, "not-found")
    english = assert_problem(api("reader_a", "get", "/api/v1/nothing-here", headers={"Accept-Language": "en"}), 404)
    assert japanese["title"] == "ページが見つかりません"
    assert english["title"] == "Page not found"
    assert english["detail"] != japanese["detail"] and english["detail"].isascii()
    refused = api("reader_a", "get", "/api/v1/staff?limit=5000&cursor=x", headers={"Accept-Language": "en"})
    body = assert_problem(refused, 422, "invalid-input")
    assert "limit" in body["errors"] and body["title"].isascii()
    assert_problem(api("reader_a", "get", "/api/v1/staff?cursor=not-a-cursor"), 400, "invalid-cursor")
    wrong_method = assert_problem(api("reader_a", "delete", "/api/v1/staff"), 405, "method-not-allowed")
    assert wrong_method["detail"]


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=9999-12-31", "from=1899-12-31",
                                   "updated_since=0001-01-01T00:00:00%2B14:00",
                                   "updated_since=9999-12-31T23:59:59-12:00"])
def test_dates_beyond_any_session_are_refused_as_input_not_a_500(api, query):
    body = assert_problem(api("reader_a", "get", f"/api/v1/courses?{query}"), 422, "invalid-input")
    assert body["errors"]


def test_a_cursor_naming_year_one_is_refused(api):
    import base64
    import json

    cursor = base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+14:00", 1]).encode()).decode().rstrip("=")
    assert_problem(api("reader_a", "get", f"/api/v1/staff?cursor={cursor}"), 400, "invalid-cursor")


def test_courses_and_sessions_are_those_open_to_the_municipality(api):
    open_to_all = make_course()
    only_b = make_course(eligible=[B])
    draft = make_course(status="draft")
    this_year = make_session(open_to_all)
    make_session(only_b)
    make_session(draft)
    courses = {row["id"] for row in api("reader_a", "get", "/api/v1/courses").get_json()["items"]}
    assert open_to_all.id in courses and only_b.id not in courses and draft.id not in courses
    assert only_b.id in {row["id"] for row in api("reader_b", "get", "/api/v1/courses").get_json()["items"]}
    sessions = api("reader_a", "get", "/api/v1/sessions").get_json()["items"]
    assert [row["id"] for row in sessions] == [this_year.id]
    year = sessions[0]["fiscal_year"]
    assert api("reader_a", "get", f"/api/v1/sessions?fiscal_year={year + 1}").get_json()["items"] == []
    day = (this_year.starts_at + timedelta(hours=9)).date().isoformat()
    assert len(api("reader_a", "get", f"/api/v1/sessions?from={day}&to={day}").get_json()["items"]) == 1


def test_completions_carry_the_certificates_verification_url(api, db):
    member = make_staff(A)
    course = make_course()
    completion = Completion(staff_member_id=member.id, course_id=course.id, municipality_id=municipality(A).id,
                            fiscal_year=2026, method="manual", completed_at=utcnow(), certificate_serial="T-API00000001")
    db.session.add(completion)
    db.session.commit()
    rows = api("reader_a", "get", "/api/v1/completions?fiscal_year=2026").get_json()["items"]
    assert [row["employee_number"] for row in rows] == [member.employee_number]
    assert rows[0]["verification_url"].endswith("/certificates/verify/T-API00000001")
    assert api("reader_b", "get", "/api/v1/completions").get_json()["items"] == []


def test_the_openapi_document_is_valid_31_and_lists_every_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith("api_v1."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations
                  if method in ("get", "put", "post", "delete", "patch")}
    assert routes and routes == documented
    for path, method in documented:
        responses = document["paths"][path][method]["responses"]
        assert "application/problem+json" in responses["401"]["content"], (path, method)
    assert document["security"] == [{"entra": []}]


def test_every_list_item_is_exactly_its_schema(api, db, client):
    """Lists are written straight to JSON (lms.api.paging.json_page), not through their
    schemas: each item must still be exactly the documented object — the same fields, each
    of its documented JSON type, dates as marshmallow writes them."""
    from jsonschema import Draft202012Validator

    from lms.api import schemas
    from lms.enrollment.models import CONFIRMED, Enrollment

    member = make_staff(A, hired_on=utcnow().date())
    session = make_session(make_course())
    db.session.add(Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                              status=CONFIRMED, confirmed_at=utcnow()))
    db.session.add(Completion(staff_member_id=member.id, course_id=session.course_id, municipality_id=member.municipality_id,
                              fiscal_year=2026, method="manual", completed_at=utcnow(), certificate_serial="T-LIST0001"))
    _attendance_and_viewing(db, member, session)
    document = client.get("/api/v1/openapi.json").get_json()
    components = document["components"]["schemas"]
    for path, schema in (("/api/v1/municipalities", schemas.Municipality), ("/api/v1/courses", schemas.Course),
                         ("/api/v1/sessions", schemas.Session), ("/api/v1/staff", schemas.Staff),
                         ("/api/v1/enrollments", schemas.Enrollment), ("/api/v1/completions", schemas.Completion),
                         ("/api/v1/attendance", schemas.Attendance), ("/api/v1/viewing", schemas.Viewing)):
        items = api("platform", "get", path, query_string={"limit": 5}).get_json()["items"]
        assert items, path
        component = components[schema.__name__]
        validator = Draft202012Validator({**component, "additionalProperties": False})
        dumped = schema()
        for item in items:
            assert set(item) == set(dumped.fields), path
            errors = [e.message for e in validator.iter_errors(item)]
            assert not errors, (path, errors)
            for name, field in dumped.fields.items():
                if item[name] is not None and type(field).__name__ in ("DateTime", "Date"):
                    assert item[name] == dumped.dump({name: field.deserialize(item[name])})[name], (path, name)


def _attendance_and_viewing(db, member, session):
    from lms.archives.models import Archive, ArchiveFile, ViewingProgress
    from lms.attendance.models import Attendance

    archive = Archive(course_id=session.course_id, title="録画", description="", status="published",
                      audience="eligible", published_at=utcnow())
    db.session.add(archive)
    db.session.flush()
    video = ArchiveFile(archive_id=archive.id, kind="video", filename="v.webm", content_type="video/webm",
                        size_bytes=10, storage_key=f"t/{member.id}", duration_seconds=600)
    db.session.add(video)
    db.session.flush()
    db.session.add(Attendance(session_id=session.id, staff_member_id=member.id, source="roll_call",
                              attended_seconds=5400, attended_pct=100, attended=True, checked_in_at=utcnow()))
    db.session.add(ViewingProgress(staff_member_id=member.id, archive_file_id=video.id, watched_seconds=590,
                                   completed_at=utcnow()))
    db.session.commit()
    return archive


def test_attendance_and_viewing_are_the_municipalitys_own(api, db):
    mine, theirs = make_staff(A), make_staff(B)
    session = make_session(make_course())
    archive = _attendance_and_viewing(db, mine, session)
    _attendance_and_viewing(db, theirs, session)
    rows = api("reader_a", "get", "/api/v1/attendance").get_json()["items"]
    assert [(r["employee_number"], r["attended"], r["attended_pct"], r["source"]) for r in rows] == [
        (mine.employee_number, True, 100, "roll_call")]
    assert rows[0]["course_id"] == session.course_id and rows[0]["municipality_code"] == A
    seen = api("reader_a", "get", "/api/v1/viewing", query_string={"course_id": session.course_id}).get_json()["items"]
    assert [(r["employee_number"], r["watched_seconds"], r["duration_seconds"], r["archive_id"]) for r in seen] == [
        (mine.employee_number, 590, 600, archive.id)]
    assert len(api("platform", "get", "/api/v1/attendance").get_json()["items"]) == 2
    assert api("reader_b", "get", "/api/v1/viewing",
               query_string={"employee_number": mine.employee_number}).get_json()["items"] == []
    other_year = api("reader_a", "get", "/api/v1/attendance", query_string={"fiscal_year": 2001}).get_json()
    assert other_year["items"] == []


@pytest.mark.parametrize("path", ["/api/v1/courses", "/api/v1/sessions"])
def test_a_reversed_date_window_is_refused_naming_to(api, path):
    body = assert_problem(api("reader_a", "get", f"{path}?from=2027-01-01&to=2026-01-01"), 422, "invalid-input")
    assert list(body["errors"]) == ["to"]
    assert api("reader_a", "get", f"{path}?from=2026-01-01&to=2026-01-01").status_code == 200


def test_employee_number_filters_are_normalised_as_writes_are(api, db):
    """ＱＡ００７ (full-width) names QA007 in a filter, as it does in PUT /staff/ＱＡ００７."""
    mine = make_staff(A, employee_number="QA007")
    session = make_session(make_course())
    _attendance_and_viewing(db, mine, session)
    wide = {"employee_number": "ＱＡ００７"}
    for path in ("/api/v1/attendance", "/api/v1/viewing"):
        rows = api("reader_a", "get", path, query_string=wide).get_json()["items"]
        assert [r["employee_number"] for r in rows] == ["QA007"], path
    assert api("reader_a", "get", "/api/v1/enrollments", query_string=wide).status_code == 200
    assert api("reader_a", "get", "/api/v1/staff/ＱＡ００７").get_json()["employee_number"] == "QA007"
