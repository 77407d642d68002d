"""/admin/api-clients: a platform admin registers and revokes the API's client applications."""

from __future__ import annotations

import re

from sqlalchemy import select

from lms.api.models import ApiClient
from lms.audit.models import AuditLog
from tests.api.conftest import API_CLIENTS, A, B, assert_problem
from tests.factories import municipality


def test_register_then_revoke_through_a_confirmation_page(login_as, client, db, token, oidc_provider):
    login_as("platform_admin", "130001")
    application_id = API_CLIENTS["reader_b"][0]
    page = client.get("/admin/api-clients")
    assert page.status_code == 200 and "登録されたアプリケーションはまだありません" in page.get_data(as_text=True)
    response = client.post("/admin/api-clients", data={"name": "八王子市 人事給与", "application_id": application_id.upper(),
                                                       "municipality_id": municipality(B).id})
    assert response.status_code == 302
    registered = db.session.scalar(select(ApiClient))
    assert (registered.application_id, registered.municipality_id) == (application_id, municipality(B).id)
    assert application_id in client.get("/admin/api-clients").get_data(as_text=True)

    confirm = client.get(f"/admin/api-clients/{registered.id}/revoke")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "八王子市 人事給与" in text and 'method="post"' in text
    assert client.post(f"/admin/api-clients/{registered.id}/revoke").status_code == 302
    db.session.refresh(registered)
    assert registered.revoked_at is not None
    actions = [e.action for e in db.session.scalars(select(AuditLog).where(AuditLog.target_type == "api_client"))]
    assert actions == ["api_client.register", "api_client.revoke"]


def test_a_duplicate_or_malformed_application_id_is_refused_on_the_form(login_as, client, db):
    login_as("platform_admin", "130001")
    data = {"name": "重複", "application_id": API_CLIENTS["reader_a"][0], "municipality_id": 0}
    assert client.post("/admin/api-clients", data=data).status_code == 302
    again = client.post("/admin/api-clients", data=data)
    assert again.status_code == 400 and "すでに登録されています" in again.get_data(as_text=True)
    bad = client.post("/admin/api-clients", data={**data, "application_id": "not-a-guid"})
    assert bad.status_code == 400 and "GUID" in bad.get_data(as_text=True)
    assert db.session.scalar(select(ApiClient).where(ApiClient.municipality_id.is_(None))) is not None


def test_a_revoked_client_is_refused_at_its_next_call(api, clients, client, login_as, db):
    assert api("reader_b", "get", "/api/v1/staff").status_code == 200
    login_as("platform_admin", "130001")
    client.post(f"/admin/api-clients/{clients['reader_b'].id}/revoke")
    assert_problem(api("reader_b", "get", "/api/v1/staff"), 401, "unauthorized")


def test_an_application_id_pasted_with_spaces_is_the_same_id(api, clients, client, login_as, db):
    """The spaces around a pasted id are not part of it: registered without them (not refused
    as too long or not a GUID), found by the token's azp, and a second registration of a known
    id with spaces is a duplicate."""
    login_as("platform_admin", "130001")
    padded = f"  {API_CLIENTS['unknown_a'][0].upper()}\u3000 "
    response = client.post("/admin/api-clients", data={"name": " 人事給与 ", "application_id": padded,
                                                       "municipality_id": municipality(A).id})
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    registered = db.session.scalar(select(ApiClient).where(ApiClient.name == "人事給与"))
    assert registered is not None and registered.application_id == API_CLIENTS["unknown_a"][0]
    assert api("unknown_a", "get", "/api/v1/staff").status_code == 200

    again = client.post("/admin/api-clients", data={"name": "重複", "application_id": f" {API_CLIENTS['reader_a'][0]} ",
                                                    "municipality_id": 0})
    errors = re.findall(r'class="error-message"[^>]*>([^<]*)<', again.get_data(as_text=True))
    assert again.status_code == 400 and errors == ["このアプリケーション ID はすでに登録されています（取り消したものは登録し直せません）。"]
    blank = client.post("/admin/api-clients", data={"name": "空", "application_id": "   ", "municipality_id": 0})
    assert blank.status_code == 400 and "アプリケーション ID を入力してください。" in blank.get_data(as_text=True)
