"""Platform admins manage the allowed tenants; ENTRA_TENANTS seeds them (CLI) or is read at sign-in."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lms.municipalities.models import TenantMapping
from lms.municipalities.services import municipality_for_tenant, parse_tenant_setting
from tests import factories


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ENTRA_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "ENTRA_CLIENT_SECRET": "x" * 40}


def _mappings(db, tenant_id: str | None = None):
    """Mappings (of ``tenant_id``; signed-in test users bring their own tenant's mapping)."""
    db.session.rollback()
    query = select(TenantMapping).order_by(TenantMapping.id)
    if tenant_id:
        query = query.where(TenantMapping.tenant_id == tenant_id)
    return list(db.session.scalars(query))


def test_platform_admin_adds_a_tenant_with_audit_and_consent_link(client, db, login_as, audit_actions):
    admin = login_as("platform_admin", "130001")
    tid = str(uuid.uuid4())

    response = client.post(  # (pasted with spaces around it)
        "/admin/tenants", data={"tenant_id": f"  {tid.upper()} ", "municipality_code": "131130", "mail_domain": " "}
    )

    assert response.status_code == 302
    [row] = _mappings(db, tid)
    assert (row.tenant_id, row.mail_domain, row.municipality.code, row.source) == (tid, "", "131130", "admin")
    [entry] = audit_actions("auth.tenant_added")
    assert entry.actor_id == admin.id and entry.details["tenant_id"] == tid
    page = client.get("/admin/tenants").get_data(as_text=True)
    assert "渋谷区" in page and tid in page
    consent = f"https://login.microsoftonline.com/{tid}/adminconsent?client_id=11111111-2222-3333-4444-555555555555"
    assert consent in page
    assert "redirect_uri=http%3A%2F%2Flocalhost%2Fauth%2Fcallback" in page


def test_shared_tenant_rows_per_mail_domain_and_duplicates_refused(client, db, login_as):
    login_as("platform_admin", "130001")
    tid = str(uuid.uuid4())
    ok = client.post("/admin/tenants", data={"tenant_id": tid, "municipality_code": "131016",
                                             "mail_domain": "@City.Chiyoda.example.lg.jp"})
    assert ok.status_code == 302
    again = client.post("/admin/tenants", data={"tenant_id": tid, "municipality_code": "131024",
                                                "mail_domain": "city.chiyoda.example.lg.jp"})
    assert again.status_code == 400
    assert "すでに 千代田区 に対応付けられています" in again.get_data(as_text=True)
    assert [(r.mail_domain, r.municipality.code) for r in _mappings(db, tid)] == [("city.chiyoda.example.lg.jp", "131016")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tenant_id": "contoso.onmicrosoft.com", "municipality_code": "131016"}, "GUID"),
        ({"tenant_id": "00000000-0000-0000-0000-000000000000", "municipality_code": "131016"}, "すべて 0 の GUID は使えません"),
        ({"tenant_id": "9188040D-6C67-4C5B-B112-36A304B66DAD", "municipality_code": "131016"}, "個人用 Microsoft アカウント"),
        ({"tenant_id": str(uuid.uuid4()), "municipality_code": "999999"}, "一覧にある選択肢から選んでください"),
        ({"tenant_id": str(uuid.uuid4()), "municipality_code": "131016", "mail_domain": "not a domain"}, "メールドメイン"),
        ({"tenant_id": "", "municipality_code": ""}, "テナント ID を入力してください"),
    ],
)
def test_invalid_input_is_explained_and_nothing_saved(client, db, login_as, data, message):
    login_as("platform_admin", "130001")
    before = len(_mappings(db))
    response = client.post("/admin/tenants", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "入力内容に誤りがあります" in page
    assert message in page
    assert len(_mappings(db)) == before


def test_platform_admin_removes_a_tenant(client, db, login_as, audit_actions):
    login_as("platform_admin", "130001")
    tid = factories.tenant_for("131016")
    db.session.commit()
    [row] = _mappings(db, tid)
    row_id = row.id
    # Users who sign in through the mapping: the confirmation page counts them first.
    for _n in range(2):
        factories.make_user("learner", "131016", with_staff=False).tenant_id = tid
    db.session.commit()
    listed = client.get("/admin/tenants").get_data(as_text=True)
    assert f'href="/admin/tenants/{row_id}/remove"' in listed  # a link to the confirmation, not a bare button
    confirm = client.get(f"/admin/tenants/{row_id}/remove").get_data(as_text=True)
    assert "千代田区" in confirm and tid in confirm and "2 人" in confirm and "削除する" in confirm
    assert _mappings(db, tid) != []  # asking removes nothing

    response = client.post(f"/admin/tenants/{row_id}/remove")

    assert response.status_code == 302
    assert _mappings(db, tid) == []
    [entry] = audit_actions("auth.tenant_removed")
    assert entry.details["tenant_id"] == tid and entry.target_id == str(row_id)
    assert client.post(f"/admin/tenants/{row_id}/remove").status_code == 302  # already gone: a message, not a 500
    assert client.get(f"/admin/tenants/{row_id}/remove").status_code == 404


@pytest.mark.parametrize("role", ["learner", "trainer", "municipal_admin"])
def test_only_platform_admins_see_the_tenant_pages(client, db, login_as, role):
    login_as(role, "131016")
    tid = factories.tenant_for("131016")
    db.session.commit()
    row_id = _mappings(db)[0].id
    assert client.get("/admin/tenants").status_code == 403
    assert client.post("/admin/tenants", data={"tenant_id": str(uuid.uuid4()), "municipality_code": "131016"}).status_code == 403
    assert client.post(f"/admin/tenants/{row_id}/remove").status_code == 403
    assert [r.tenant_id for r in _mappings(db)] == [tid]


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/admin/tenants")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_remove_requires_csrf_token(app, client, db, login_as):
    app.config["WTF_CSRF_ENABLED"] = True
    login_as("platform_admin", "130001")
    tid = factories.tenant_for("131016")
    db.session.commit()
    [row] = _mappings(db, tid)
    response = client.post(f"/admin/tenants/{row.id}/remove")
    assert response.status_code == 400
    assert len(_mappings(db, tid)) == 1


def test_the_old_address_redirects_permanently(client, login_as):
    login_as("platform_admin", "130001")
    response = client.get("/auth/tenants")
    assert response.status_code == 301 and response.headers["Location"] == "/admin/tenants"
    assert client.get(response.headers["Location"]).status_code == 200


def test_admin_index_links_the_tenant_page(client, login_as):
    login_as("platform_admin", "130001")
    assert 'href="/admin/tenants"' in client.get("/admin/").get_data(as_text=True)


def test_admin_consent_return_marks_the_tenant_consented(client, db, login_as, audit_actions):
    login_as("platform_admin", "130001")
    tid = factories.tenant_for("131016")
    db.session.commit()
    page = client.get("/admin/tenants").get_data(as_text=True)
    link = next(part for part in page.split('"') if f"/{tid}/adminconsent" in part).replace("&amp;", "&")
    state = parse_qs(urlsplit(link).query)["state"][0]

    forged = client.get("/auth/callback", query_string={"admin_consent": "True", "tenant": tid, "state": "consent.forged"})
    assert forged.status_code == 400
    assert _mappings(db, tid)[0].consented_at is None

    other = client.get("/auth/callback", query_string={"admin_consent": "True", "tenant": str(uuid.uuid4()), "state": state})
    assert "完了しませんでした" in other.get_data(as_text=True)
    assert _mappings(db, tid)[0].consented_at is None

    done = client.get("/auth/callback", query_string={"admin_consent": "True", "tenant": tid, "state": state})
    assert done.status_code == 200
    assert "管理者の同意が完了しました" in done.get_data(as_text=True)
    assert _mappings(db, tid)[0].consented_at is not None
    assert [e.target_id for e in audit_actions("auth.tenant_consented")] == [tid]


# ---------------------------------------------------------------- ENTRA_TENANTS


def test_parse_tenant_setting_accepts_both_forms_and_names_bad_entries():
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    rules = parse_tenant_setting(f" {a.upper()}=131016 ,{b}@Metro.Tokyo.example.lg.jp=130001,")
    assert [(r.tenant_id, r.mail_domain, r.municipality_code) for r in rules] == [
        (a, "", "131016"),
        (b, "metro.tokyo.example.lg.jp", "130001"),
    ]
    from lms.common.errors import InvalidInput

    with pytest.raises(InvalidInput, match="131017"):
        parse_tenant_setting(f"{a}=131017")  # wrong check digit
    with pytest.raises(InvalidInput, match="GUID"):
        parse_tenant_setting("contoso=131016")
    with pytest.raises(InvalidInput, match="nil GUID"):
        parse_tenant_setting("00000000-0000-0000-0000-000000000000=131016")
    with pytest.raises(InvalidInput, match="personal Microsoft accounts"):
        parse_tenant_setting("9188040d-6c67-4c5b-b112-36a304b66dad=131016")
    assert parse_tenant_setting(f"contoso=131016,{a}=131016", strict=False)[0].tenant_id == a


def test_stored_mapping_wins_and_domain_beats_tenant_wide(db):
    tid = str(uuid.uuid4())
    env = f"{tid}=131016,{tid}@city.minato.example.lg.jp=131032"
    assert municipality_for_tenant(tid, "x@city.minato.example.lg.jp", env).code == "131032"
    assert municipality_for_tenant(tid, "", env).code == "131016"
    assert municipality_for_tenant(str(uuid.uuid4()), "", env) is None
    db.session.add(TenantMapping(tenant_id=tid, mail_domain="", municipality=factories.municipality("131130")))
    db.session.flush()
    assert municipality_for_tenant(tid, "someone@example.jp", env).code == "131130"


def test_a_mapping_of_the_personal_accounts_tenant_stored_before_it_was_refused_lets_no_one_in(db):
    """Found by review: refusing new mappings of the nil GUID and of the personal Microsoft
    accounts' tenant left rows stored earlier in force (any outlook.com account would sign in)."""
    from lms.municipalities.services import municipalities_of_tenant

    for tid in ("9188040d-6c67-4c5b-b112-36a304b66dad", "00000000-0000-0000-0000-000000000000"):
        db.session.add(TenantMapping(tenant_id=tid, mail_domain="", municipality=factories.municipality("131016")))
        db.session.flush()
        assert municipality_for_tenant(tid, "someone@outlook.com", f"{tid}=131016") is None
        assert municipalities_of_tenant(tid, f"{tid}=131016") == set()


def test_sync_tenants_command_seeds_and_updates(app, runner, db):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    app.config["ENTRA_TENANTS"] = f"{a}=131016,{b}@metro.tokyo.example.lg.jp=130001"
    result = runner.invoke(args=["lms", "sync-tenants"])
    assert result.exit_code == 0, result.output
    assert "2 added, 0 updated" in result.output
    app.config["ENTRA_TENANTS"] = f"{a}=131024"
    result = runner.invoke(args=["lms", "sync-tenants"])
    assert "0 added, 1 updated" in result.output
    rows = {(r.tenant_id, r.mail_domain): (r.municipality.code, r.source) for r in _mappings(db)}
    assert rows == {(a, ""): ("131024", "env"), (b, "metro.tokyo.example.lg.jp"): ("130001", "env")}


def test_sync_tenants_command_refuses_a_bad_setting(app, runner, db):
    app.config["ENTRA_TENANTS"] = f"{uuid.uuid4()}=131016,not-a-guid=131016"
    result = runner.invoke(args=["lms", "sync-tenants"])
    assert result.exit_code != 0
    assert "not-a-guid" in result.output
    assert _mappings(db) == []
