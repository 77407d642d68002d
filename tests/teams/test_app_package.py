"""The Teams app package (/teams/app): the zip a platform admin downloads validates against
Microsoft's own manifest and localisation schemas (the npm package @microsoft/app-manifest in
tests/node), its icons are what Teams requires, it follows the deployment's settings, and only
platform admins get it — each download on the audit log."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from jsonschema.validators import validator_for
from PIL import Image
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.teams import app_identity, app_package
from tests.conftest import ROOT, require

SCHEMAS = ROOT / "tests" / "node" / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
SCHEMA_URL = re.compile(r"^https://developer\.microsoft\.com/json-schemas/teams/(v[0-9.]+)/(MicrosoftTeams[A-Za-z.]*\.schema\.json)$")
CLIENT_ID = "0b5c3f4e-7a1d-4c2b-9e8f-1a2b3c4d5e6f"
BASE = "https://manabi.example.lg.jp"
FILES = {"manifest.json", "en-us.json", "color.png", "outline.png"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ENTRA_CLIENT_ID": CLIENT_ID, "LMS_BASE_URL": BASE, "LMS_TEAMS_APP_ID": "",
            "LMS_TEAMS_SSO_RESOURCE": "", "LMS_TEAMS_ACCENT_COLOR": "#1D4F91"}


@pytest.fixture
def admin(login_as):
    return login_as("platform_admin", "130001")


def _download(client) -> tuple[bytes, dict[str, bytes]]:
    response = client.get("/teams/app/package.zip")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f'attachment; filename="manabi-teams-app-{app_package.VERSION}.zip"'
    data = response.get_data()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return data, {name: archive.read(name) for name in archive.namelist()}


def _schema_for(document: dict) -> dict:
    """The schema a document names in ``$schema``, from the npm package's copy."""
    match = SCHEMA_URL.match(document.get("$schema", ""))
    assert match, f"$schema is not one of Microsoft's Teams schema URLs: {document.get('$schema')}"
    path = SCHEMAS / match.group(1) / match.group(2)
    require(path.exists(), f"{path} (cd tests/node && npm ci)")
    return json.loads(path.read_text(encoding="utf-8"))


def _schema_errors(document: dict, schema: dict) -> list[str]:
    """Every error of ``document``, as "path: message", validated by the class the schema's
    ``$schema`` names (draft-04 for Microsoft's)."""
    validator = validator_for(schema)
    # (Without checking the patterns' syntax: some are ECMAScript's \p{L}, which Python's re lacks.)
    validator.check_schema(schema, format_checker=None)
    errors = validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(document)
    return sorted(f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message[:300]}"
                  for error in errors)


def _assert_valid(document: dict) -> dict:
    schema = _schema_for(document)
    errors = _schema_errors(document, schema)
    assert not errors, "\n".join(errors)
    return schema


def test_the_package_is_valid_against_microsofts_schemas(client, admin):
    _data, files = _download(client)
    assert set(files) == FILES
    manifest = json.loads(files["manifest.json"])
    english = json.loads(files["en-us.json"])

    schema = _assert_valid(manifest)
    # draft-04 knows no "const": the version the schema is for is checked here.
    assert manifest["manifestVersion"] == schema["properties"]["manifestVersion"]["const"] == app_package.MANIFEST_VERSION
    assert f"/v{app_package.MANIFEST_VERSION}/" in manifest["$schema"]
    localization_schema = _assert_valid(english)
    assert english["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.Localization.schema.json")
    # The validators do refuse what the schemas forbid (they are not accepting everything).
    assert _schema_errors({**manifest, "id": "manabi", "accentColor": "navy"}, schema) == [
        "accentColor: 'navy' does not match '^#[0-9a-fA-F]{6}$'",
        "id: 'manabi' does not match '^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$'"]
    assert _schema_errors({**english, "staticTabs[99].name": "x"}, localization_schema)

    # Japanese by default, English in the file the manifest names, every text of it translated.
    assert manifest["localizationInfo"] == {"defaultLanguageTag": "ja-jp",
                                            "additionalLanguages": [{"languageTag": "en-us", "file": "en-us.json"}]}
    assert set(manifest["icons"].values()) == {"color.png", "outline.png"} <= set(files)
    assert english["name.full"] == "Manabi Training Portal" and manifest["name"]["full"] == "Manabi 研修ポータル"
    tabs = manifest["staticTabs"]
    assert [t["entityId"] for t in tabs] == [t.entity_id for t in app_identity.TABS]
    assert [t["name"] for t in tabs] == [t.name_ja for t in app_identity.TABS]
    assert [english[f"staticTabs[{i}].name"] for i in range(len(tabs))] == [t.name_en for t in app_identity.TABS]
    assert tabs[1]["contentUrl"] == f"{BASE}/teams/tab?tab=catalogue" and tabs[1]["websiteUrl"] == f"{BASE}/courses"
    assert {t["scopes"] == ["personal"] for t in tabs} == {True}
    activities = manifest["activities"]["activityTypes"]
    assert [a["type"] for a in activities] == ["approvalRequested", "enrollmentDecided", "waitlistPromoted",
                                              "sessionReminder", "activityDue"]
    for i, activity in enumerate(activities):
        for field in ("description", "templateText"):
            translated = english[f"activities.activityTypes[{i}].{field}"]
            assert translated and translated != activity[field] and re.search(r"[ぁ-んァ-ン一-龥]", activity[field])
    assert re.findall(r"\{\w+\}", activities[0]["templateText"]) == ["{learner}", "{course}"]
    assert sorted(re.findall(r"\{\w+\}", english["activities.activityTypes[0].templateText"])) == ["{course}", "{learner}"]
    assert manifest["developer"] == {"name": "東京都", "websiteUrl": BASE, "privacyUrl": f"{BASE}/privacy",
                                     "termsOfUseUrl": f"{BASE}/accessibility"}
    assert "permissions" not in manifest and "devicePermissions" not in manifest


def test_the_icons_are_what_teams_requires(client, admin):
    _data, files = _download(client)
    color = Image.open(io.BytesIO(files["color.png"]))
    outline = Image.open(io.BytesIO(files["outline.png"]))
    assert (color.format, color.size) == ("PNG", (192, 192))
    assert color.convert("RGB").getpixel((0, 0)) == (0x1D, 0x4F, 0x91)  # the accent colour
    assert (255, 255, 255) in {rgb for _n, rgb in color.convert("RGB").getcolors(192 * 192)}  # the mark
    assert (outline.format, outline.size, outline.mode) == ("PNG", (32, 32), "RGBA")
    pixels = {rgba for _n, rgba in outline.getcolors(32 * 32)}
    white = {p for p in pixels if p == (255, 255, 255, 255)}
    transparent = {p for p in pixels if p[3] == 0}
    assert white and transparent and pixels == white | transparent, pixels - white - transparent


def test_a_light_accent_colour_gets_a_dark_mark(app, client, admin):
    app.config["LMS_TEAMS_ACCENT_COLOR"] = "#ffd700"
    _data, files = _download(client)
    assert json.loads(files["manifest.json"])["accentColor"] == "#FFD700"
    colors = {rgb for _n, rgb in Image.open(io.BytesIO(files["color.png"])).convert("RGB").getcolors(192 * 192)}
    assert (0xFF, 0xD7, 0x00) in colors and (0x1B, 0x1B, 0x1B) in colors and (255, 255, 255) not in colors


def test_the_app_id_is_stable_and_follows_the_setting(app, client, admin):
    first, files = _download(client)
    derived = json.loads(files["manifest.json"])["id"]
    again, files = _download(client)
    assert json.loads(files["manifest.json"])["id"] == derived
    assert again == first  # the same settings, the same bytes
    app.config["LMS_BASE_URL"] = "https://other.example.lg.jp"
    _data, files = _download(client)
    assert json.loads(files["manifest.json"])["id"] != derived  # another deployment, another app

    app.config["LMS_TEAMS_APP_ID"] = "8F2C4A1E-5B3D-4E6F-9A7B-0C1D2E3F4A5B"
    _data, files = _download(client)
    assert json.loads(files["manifest.json"])["id"] == "8f2c4a1e-5b3d-4e6f-9a7b-0c1d2e3f4a5b"


def test_changed_settings_show_in_the_manifest(app, client, admin):
    app.config.update(LMS_BASE_URL="https://kenshu.city.example.lg.jp:8443/", LMS_TEAMS_ACCENT_COLOR="#0a7d38",
                      ENTRA_CLIENT_ID="5d2e1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b")
    _data, files = _download(client)
    manifest = json.loads(files["manifest.json"])
    _assert_valid(manifest)
    base = "https://kenshu.city.example.lg.jp:8443"
    assert manifest["developer"]["websiteUrl"] == base and manifest["developer"]["privacyUrl"] == f"{base}/privacy"
    assert manifest["staticTabs"][0]["contentUrl"] == f"{base}/teams/tab?tab=mypage"
    assert manifest["staticTabs"][0]["websiteUrl"] == f"{base}/me"
    assert manifest["validDomains"] == ["kenshu.city.example.lg.jp:8443"]
    assert manifest["webApplicationInfo"] == {
        "id": "5d2e1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b",
        "resource": "api://kenshu.city.example.lg.jp:8443/5d2e1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"}
    assert manifest["accentColor"] == "#0A7D38"
    assert Image.open(io.BytesIO(files["color.png"])).convert("RGB").getpixel((0, 0)) == (0x0A, 0x7D, 0x38)
    # An application ID URI set apart from the host (LMS_TEAMS_SSO_RESOURCE) is the one Teams asks tokens for.
    app.config["LMS_TEAMS_SSO_RESOURCE"] = "api://manabi.example.lg.jp/5d2e1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
    _data, files = _download(client)
    assert json.loads(files["manifest.json"])["webApplicationInfo"]["resource"] == app.config["LMS_TEAMS_SSO_RESOURCE"]


def test_the_page_shows_what_the_package_holds(client, admin):
    assert 'href="/teams/app"' in client.get("/admin/").get_data(as_text=True)
    response = client.get("/teams/app")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    main = html.split('id="main"', 1)[1]
    for text in (app_identity.app_id(), app_package.VERSION, "manabi.example.lg.jp", f"api://manabi.example.lg.jp/{CLIENT_ID}",
                 CLIENT_ID, "#1D4F91", "マイページ", "My page", "研修を探す", "approvalRequested", "activityDue",
                 'href="/teams/app/package.zip"', f"manabi-teams-app-{app_package.VERSION}.zip", "data:image/png;base64,"):
        assert text in main, text
    assert re.findall(r"<h([1-6])", main) == ["1", "2", "2", "2", "2"]  # headings in order
    assert main.count('<th scope="col">') == 6 and main.count('<th scope="row">') == 4 + 5


def test_without_an_entra_client_id_the_page_says_why(app, client, admin, db):
    app.config["ENTRA_CLIENT_ID"] = None
    html = client.get("/teams/app").get_data(as_text=True)
    assert "アプリ パッケージを作れません" in html and "ENTRA_CLIENT_ID" in html
    assert "package.zip" not in html
    response = client.get("/teams/app/package.zip")
    assert response.status_code == 302 and response.headers["Location"].endswith("/teams/app")
    app.config.update(ENTRA_CLIENT_ID="manabi")  # not a client id (a GUID)
    assert "GUID" in client.get("/teams/app").get_data(as_text=True)
    app.config.update(ENTRA_CLIENT_ID=CLIENT_ID, LMS_TEAMS_ACCENT_COLOR="blue")
    assert "LMS_TEAMS_ACCENT_COLOR" in client.get("/teams/app").get_data(as_text=True)
    assert db.session.scalars(select(AuditLog).where(AuditLog.action == "teams.app_package_downloaded")).all() == []


def test_each_download_is_audited(client, admin, db):
    data, _files = _download(client)
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "teams.app_package_downloaded")).one()
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin.id, "teams_app", app_identity.app_id())
    assert entry.details == {"version": app_package.VERSION, "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("role", ["learner", "trainer", "municipal_admin"])
def test_only_platform_admins_get_it(client, login_as, role):
    login_as(role)
    assert client.get("/teams/app").status_code == 403
    assert client.get("/teams/app/package.zip").status_code == 403


def test_anonymous_is_sent_to_sign_in(client):
    for path in ("/teams/app", "/teams/app/package.zip"):
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"], path


def test_the_schema_version_is_the_newest_one_shipped():
    require(SCHEMAS.exists(), f"{SCHEMAS} (cd tests/node && npm ci)")
    released = [p.name for p in SCHEMAS.iterdir() if re.fullmatch(r"v\d+\.\d+", p.name)]
    newest = max(released, key=lambda name: tuple(int(n) for n in name[1:].split(".")))
    assert newest == f"v{app_package.MANIFEST_VERSION}", "a newer manifest schema is shipped: move MANIFEST_VERSION up"
    assert Path(SCHEMAS / newest / "MicrosoftTeams.Localization.schema.json").exists()
