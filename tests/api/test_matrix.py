"""The API's authorization matrix: every /api/v1 route called by each kind of client with
objects of municipality B, compared with the table below (a route missing from it fails).

Columns: no token, A's reader (Manabi.Api.Read), A's writer (Read + RosterWrite), A's client
without roles, B's reader, the platform client (Read + RosterWrite, every municipality).
Outcomes: "ok" (2xx) or the status. PUTs send an empty JSON object (refused by validation
when the caller may write at all). The routes of admin pages are in tests/security.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from lms.common.ids import MAX_ID
from lms.common.timeutil import utcnow
from lms.enrollment.models import CONFIRMED, Enrollment
from tests.api.conftest import B
from tests.factories import make_course, make_session, make_staff

CLIENTS = (None, "reader_a", "writer_a", "norole_a", "reader_b", "platform")

EXPECTED = {
    "api_v1.municipalities GET": "401 ok ok 403 ok ok",
    "api_v1.courses GET": "401 ok ok 403 ok ok",
    "api_v1.sessions GET": "401 ok ok 403 ok ok",
    "api_v1.staff GET": "401 ok ok 403 ok ok",
    "api_v1.enrollments GET": "401 ok ok 403 ok ok",
    "api_v1.completions GET": "401 ok ok 403 ok ok",
    "api_v1.attendance GET": "401 ok ok 403 ok ok",
    "api_v1.viewing GET": "401 ok ok 403 ok ok",
    # B's objects: 404 for A's clients (as for none at all); the platform client names the
    # municipality of a 職員番号 (municipality_code), without it the request is incomplete.
    "api_v1.enrollment GET": "401 404 404 403 ok ok",
    "api_v1.staff_member GET": "401 404 404 403 ok 422",
    "api_v1.put_staff_member PUT": "401 403 422 403 403 422",
    # An empty body: not JSON for the test client (415) when the caller may write at all.
    "api_v1.post_staff_bulk POST": "401 403 415 403 403 415",
    # A feed of B's (sent by the platform client): A's writer finds nothing; readers may not.
    "api_v1.roster_job GET": "401 403 404 403 403 ok",
    "api_v1.roster_job_results GET": "401 403 404 403 403 ok",
}


def _world(db):
    member = make_staff(B)
    session = make_session(make_course())
    enrollment = Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                            status=CONFIRMED, confirmed_at=utcnow())
    db.session.add(enrollment)
    session.confirmed_count = 1
    from lms.api.models import ApiClient, RosterJob
    from lms.common.timeutil import today_tokyo

    platform = db.session.scalar(select(ApiClient).where(ApiClient.municipality_id.is_(None)))
    job = RosterJob(client_id=platform.id, municipality_id=member.municipality_id, status="finished", total=0,
                    effective_on=today_tokyo())
    db.session.add(job)
    db.session.commit()
    return {"enrollment_id": enrollment.id, "employee_number": member.employee_number, "job_id": job.id}


def _url(rule, params) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(params[m.group(1)]), rule.rule)


def _outcome(response) -> str:
    return "ok" if 200 <= response.status_code < 300 else str(response.status_code)


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint.startswith("api_v1."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def test_every_api_route_answers_each_client_as_the_table_says(app, api, db):
    params = _world(db)
    observed = {}
    for rule, method in _routes(app):
        row = []
        for who in CLIENTS:
            response = api(who, method, _url(rule, params), json={} if method == "PUT" else None)
            assert response.status_code < 500, (rule.rule, who, response.get_data(as_text=True))
            if response.status_code >= 400:
                assert response.mimetype == "application/problem+json"
            row.append(_outcome(response))
        observed[f"{rule.endpoint} {method}"] = " ".join(row)
    assert observed == EXPECTED


def test_not_theirs_is_answered_like_nothing(app, api, db):
    params = _world(db)
    nothing = {"enrollment_id": MAX_ID, "employee_number": "NOBODY", "job_id": MAX_ID}
    for rule, method in _routes(app):
        if not rule.arguments:
            continue
        for who in CLIENTS:
            answers = [api(who, method, _url(rule, values), json={} if method == "PUT" else None)
                       for values in (params, nothing)]
            theirs, none = answers
            if theirs.status_code == 404:
                assert none.status_code == 404, (rule.rule, who)
                assert theirs.get_json()["detail"] == none.get_json()["detail"]


def test_ids_beyond_the_database_are_404_or_422_never_500(api):
    for value in (str(2**31), "99999999999999999999", "-1"):
        assert api("platform", "get", f"/api/v1/enrollments/{value}").status_code == 404
        assert api("platform", "get", f"/api/v1/roster-jobs/{value}").status_code == 404
        for name in ("session_id", "fiscal_year", "limit", "category"):
            path = "/api/v1/enrollments" if name in ("session_id", "fiscal_year", "limit") else "/api/v1/courses"
            assert api("platform", "get", path, query_string={name: value}).status_code == 422, (name, value)
