"""Who may call the API: tokens of the real provider, registered clients, app roles, scope."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.common.ids import MAX_ID
from lms.common.timeutil import utcnow
from lms.enrollment.models import CONFIRMED, Enrollment
from tests.api.conftest import A, B, assert_problem
from tests.factories import make_course, make_session, make_staff, make_user, sign_in


def _numbers(response) -> set[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["employee_number"] for row in response.get_json()["items"]}


def test_a_client_reads_its_own_municipality_only(api):
    a1, a2 = make_staff(A), make_staff(A)
    b1 = make_staff(B)
    assert _numbers(api("reader_a", "get", "/api/v1/staff")) == {a1.employee_number, a2.employee_number}
    assert _numbers(api("reader_b", "get", "/api/v1/staff")) == {b1.employee_number}
    # The metropolitan government's platform client sees every municipality.
    assert {a1.employee_number, a2.employee_number, b1.employee_number} <= _numbers(api("platform", "get", "/api/v1/staff"))


def _enrollment_of(member):
    course = make_course()
    session = make_session(course)
    from lms.extensions import db

    enrollment = Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                            status=CONFIRMED, confirmed_at=utcnow())
    db.session.add(enrollment)
    session.confirmed_count = 1
    db.session.commit()
    return enrollment


def test_another_municipalitys_enrollments_are_invisible_and_404(api, db):
    b_member = make_staff(B)
    enrollment = _enrollment_of(b_member)
    listed = api("reader_a", "get", "/api/v1/enrollments").get_json()["items"]
    assert listed == []
    mine = api("reader_b", "get", "/api/v1/enrollments").get_json()["items"]
    assert [row["id"] for row in mine] == [enrollment.id]
    assert mine[0]["employee_number"] == b_member.employee_number
    # By id: another municipality's is answered exactly like one that does not exist.
    theirs = assert_problem(api("reader_a", "get", f"/api/v1/enrollments/{enrollment.id}"), 404, "not-found")
    missing = assert_problem(api("reader_a", "get", f"/api/v1/enrollments/{enrollment.id + 1000}"), 404, "not-found")
    assert (theirs["title"], theirs["detail"]) == (missing["title"], missing["detail"])
    assert_problem(api("reader_a", "get", f"/api/v1/enrollments/{MAX_ID + 1}"), 404)
    assert api("reader_b", "get", f"/api/v1/enrollments/{enrollment.id}").status_code == 200
    denied = db.session.scalars(select(AuditLog).where(AuditLog.action == "access.denied")).all()
    assert any(entry.target_type == "enrollment" and entry.target_id == str(enrollment.id) for entry in denied)


def test_another_municipalitys_staff_member_is_404(api):
    b_member = make_staff(B)
    assert_problem(api("reader_a", "get", f"/api/v1/staff/{b_member.employee_number}"), 404, "not-found")
    assert_problem(api("reader_a", "get", f"/api/v1/staff/{b_member.employee_number}?municipality_code={B}"), 404)
    found = api("reader_b", "get", f"/api/v1/staff/{b_member.employee_number}")
    assert found.status_code == 200 and found.get_json()["full_name"] == b_member.full_name
    found = api("platform", "get", f"/api/v1/staff/{b_member.employee_number}?municipality_code={B}")
    assert found.status_code == 200 and found.get_json()["municipality_code"] == B


@pytest.mark.parametrize("instance", ["other-aud", "past-clock-api", "other-key"],
                         ids=["wrong audience", "expired", "wrong signature"])
def test_a_token_that_does_not_verify_is_401(api, instance):
    body = assert_problem(api("reader_a", "get", "/api/v1/staff", instance=instance), 401, "unauthorized")
    assert "トークン" in body["detail"]


def test_no_or_garbage_token_is_401(api, client):
    response = assert_problem(api(None, "get", "/api/v1/staff"), 401, "unauthorized")
    assert response["title"] == "認証が必要です"
    garbage = client.get("/api/v1/staff", headers={"Authorization": "Bearer not.a.token"})
    assert_problem(garbage, 401, "unauthorized")
    assert garbage.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_role_is_403(api):
    assert_problem(api("norole_a", "get", "/api/v1/staff"), 403, "forbidden")
    # Reading does not allow writing the roster.
    response = api("reader_a", "put", "/api/v1/staff/E1", json={"full_name": "書込 不可"})
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("who", ["revoked_a", "unknown_a", "foreign_tenant"])
def test_revoked_unknown_or_foreign_tenant_client_is_401(api, who):
    assert_problem(api(who, "get", "/api/v1/municipalities"), 401, "unauthorized")


def test_a_browser_session_cookie_does_not_authenticate(client, clients):
    admin = make_user("platform_admin", "130001")
    sign_in(client, admin)
    assert client.get("/admin/").status_code == 200  # the cookie is good for the pages
    assert_problem(client.get("/api/v1/staff"), 401, "unauthorized")
    # Nor does it write: no CSRF token either way, the API just wants its bearer token.
    assert_problem(client.put("/api/v1/staff/E1", json={"full_name": "クッキー 太郎"}), 401, "unauthorized")


def test_the_limit_counts_per_client(app_config, api, token, _schema):
    from lms import create_app
    from lms.extensions import db

    api("reader_a", "get", "/api/v1/municipalities")  # (the clients are registered and committed)
    limited = create_app({**app_config, "RATELIMIT_ENABLED": True, "LMS_LIMIT_API": "2/minute"})
    test_client = limited.test_client()

    def call(who):
        return test_client.get("/api/v1/municipalities", headers={"Authorization": f"Bearer {token(who)}"})

    try:
        assert [call("reader_a").status_code for _ in range(2)] == [200, 200]
        refused = call("reader_a")
        assert_problem(refused, 429, "too-many-requests")
        assert int(refused.headers["Retry-After"]) > 0
        assert call("reader_b").status_code == 200  # another client has its own count
        # Calls without a valid token count against the address (found by QA: never limited).
        garbage = [test_client.get("/api/v1/municipalities", headers={"Authorization": "Bearer garbage"})
                   for _ in range(3)]
        assert [r.status_code for r in garbage] == [401, 401, 429]
        assert_problem(garbage[2], 429, "too-many-requests")
        assert call("reader_b").status_code == 200  # (a client's own count is apart from the address's)
    finally:
        with limited.app_context():
            db.session.remove()
            db.engine.dispose()
