"""The application skeleton: configuration, safety at start-up, headers, pages, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from lms.completion import summary
from lms.municipalities.models import Municipality
from lms.municipalities.services import check_digit, is_valid_code
from tests import factories
from tests.conftest import ROOT


def _start_production(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LMS_", "SECRET_KEY", "DATABASE_URL"))}
    env.update({"LMS_ENV": "production", **env_overrides})
    return subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


STRONG = "k" * 16 + "Z9x!" * 8
PG = "postgresql+psycopg://root@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DATABASE_URL": PG}, "SECRET_KEY"),
        ({"DATABASE_URL": PG, "SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"DATABASE_URL": PG, "SECRET_KEY": "short-but-not-default"}, "SECRET_KEY"),
        ({"DATABASE_URL": PG, "SECRET_KEY": STRONG, "LMS_DEMO_LOGIN": "1"}, "LMS_DEMO_LOGIN"),
        ({"SECRET_KEY": STRONG}, "DATABASE_URL"),
        ({"SECRET_KEY": STRONG, "DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL"),
    ],
)
def test_production_refuses_unsafe_configuration(overrides, named):
    result = _start_production(overrides)
    assert result.returncode != 0
    assert named in result.stderr
    assert "本番環境" in result.stderr


def test_production_starts_with_safe_configuration():
    result = _start_production({"SECRET_KEY": STRONG, "DATABASE_URL": PG})
    assert result.returncode == 0, result.stderr


def test_create_app_has_no_side_effects(tmp_path):
    from lms import create_app

    create_app({"LMS_ENV": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                "LMS_STORAGE_DIR": str(tmp_path / "a")})
    assert list(tmp_path.iterdir()) == []  # no database file, no storage folder created


def test_security_headers_on_every_response(client):
    for path in ("/", "/healthz", "/does-not-exist"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Request-ID"]


def test_production_sets_hsts_and_secure_cookies(app):
    from config import ProductionConfig

    assert ProductionConfig.SESSION_COOKIE_SECURE is True
    assert ProductionConfig.HSTS is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_home_is_japanese_and_accessible_by_structure(client):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="ja">' in html
    assert 'class="skip-link" href="#main"' in html
    assert '<main id="main"' in html
    assert "サインイン" in html


def test_english_is_selectable(client):
    page = client.get("/")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    assert response.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Sign in" in html


def test_error_pages_are_japanese(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "ページが見つかりません" in response.get_data(as_text=True)


def test_csrf_is_enforced_on_posts(app):
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post("/lang", data={"lang": "en"})
    assert response.status_code == 400
    assert "フォームの有効期限が切れました" in response.get_data(as_text=True)


def test_check_digits_of_every_shipped_code(db):
    codes = db.session.scalars(select(Municipality.code)).all()
    assert len(codes) == 63
    assert all(is_valid_code(c) for c in codes)
    assert check_digit("13101") == 6  # 千代田区 131016


def test_loader_refuses_a_wrong_check_digit(db, tmp_path):
    from lms.common.errors import InvalidInput
    from lms.municipalities.services import load_municipalities

    bad = tmp_path / "m.csv"
    bad.write_text("code,name,kana,kind\n131017,千代田区,ちよだく,特別区\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="131017"):
        load_municipalities(bad)


def test_municipality_kinds(db):
    kinds = dict(db.session.execute(select(Municipality.kind, func.count()).group_by(Municipality.kind)).all())
    assert kinds == {"都道府県": 1, "特別区": 23, "市": 26, "町": 5, "村": 8}


def test_demo_command_is_idempotent(runner, db):
    first = runner.invoke(args=["lms", "demo"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["lms", "demo"])
    assert second.exit_code == 0, second.output
    assert first.output == second.output
    assert "courses: 8" in first.output
    # Its rows are written directly: the dashboard summaries are rebuilt from them.
    db.session.rollback()
    report = summary.check(db.session)
    assert report.ok and report.course_rows > 0, report.differences


def test_demo_is_a_lived_in_year(client, runner, db):
    """Past sessions with attendance, completions and certificates: 千代田区's dashboard shows
    real figures; names, kana and mail domains agree."""
    import re

    from lms.auth.models import User
    from lms.completion.models import Completion
    from lms.roster.kana import normalise_kana
    from lms.roster.models import StaffMember
    from tests.factories import municipality, sign_in

    assert runner.invoke(args=["lms", "demo"]).exit_code == 0
    chiyoda = municipality("131016")
    assert db.session.scalar(select(func.count()).select_from(Completion)
                             .where(Completion.municipality_id == chiyoda.id)) > 0
    check = runner.invoke(args=["lms", "completion-summary", "--check"])
    assert check.exit_code == 0, check.output
    admin = db.session.scalar(select(User).where(User.display_name.like("%千代田区 研修担当%")))
    sign_in(client, admin)
    page = client.get("/completion/dashboard").get_data(as_text=True)
    rates = [float(r) for r in re.findall(r"(\d+\.\d)%", page)]
    assert rates and max(rates) > 0
    # The year's plan is published with its survey open: 千代田区 has answered per course.
    from lms.planning.models import PlanDemand, TrainingPlan

    plan = db.session.scalar(select(TrainingPlan))
    assert plan.status == "published" and plan.survey_unit == "course"
    survey = client.get(f"/plans/{plan.id}/survey").get_data(as_text=True)
    assert "新任職員を優先" in survey
    assert {d.municipality.code for d in db.session.scalars(select(PlanDemand))} == {"131016", "132012"}
    names = {"鈴木 太郎": "スズキ タロウ", "佐藤 花子": "サトウ ハナコ"}
    for member in db.session.scalars(select(StaffMember).where(StaffMember.source == "demo")):
        assert member.full_name_kana == normalise_kana(member.full_name_kana) and member.full_name_kana
        if member.full_name in names:
            assert member.full_name_kana == names[member.full_name]
        assert "研修担当" not in member.full_name and "管理者" not in member.full_name
        domain = member.email.split("@", 1)[1]
        code = member.municipality.code
        assert domain == {"130001": "demo.metro.tokyo.lg.jp", "131016": "demo.chiyoda.lg.jp",
                          "132012": "demo.hachioji.lg.jp", "133051": "demo.hinode.lg.jp",
                          "133078": "demo.hinohara.lg.jp"}[code], (member.full_name, member.email)


def test_demo_sign_in_flow(client, runner, db):
    runner.invoke(args=["lms", "demo"])
    page = client.get("/auth/demo")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "研修担当・デモ）" in html
    from lms.auth.models import User

    trainer = db.session.scalar(select(User).where(User.display_name.like("%研修講師・デモ%")))
    response = client.post("/auth/demo", data={"user_id": trainer.id})
    assert response.status_code == 302
    home = client.get("/").get_data(as_text=True)
    assert "ようこそ、中村 彩（研修講師・デモ） さん" in home
    assert "デモ環境です" in home


def test_demo_sign_in_is_off_without_the_flag(app, client):
    app.config["LMS_DEMO_LOGIN"] = False
    assert client.get("/auth/demo").status_code == 404


def test_test_client_follows_redirects(client, login_as):
    login_as("learner")
    response = client.post("/lang", data={"lang": "en", "next": "/"}, follow_redirects=True)
    assert response.status_code == 200
    assert '<html lang="en">' in response.get_data(as_text=True)


TEMPLATE_STRINGS = ("{{ _('研修を探す') }}|{{ _('%(n)d件', n=3) }}|{{ _('承認する') }}|{{ gettext('検索') }}"
                    "|{{ _('未訳 <b>%(x)s</b> 100%%', x='<i>') }}")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_templates_translate_once_per_render_as_flask_babel_does(app, language):
    """The per-render ``_()`` (lms.common.i18n.page_gettext) gives what Flask-Babel's own
    template callable gives, in each language: the catalogue's text, %-formatting, Markup with
    the variables escaped; and a render under force_locale (a mail in its reader's language,
    composed during someone else's request) takes the forced language, not the page's."""
    from flask import render_template_string
    from flask_babel import force_locale

    with app.test_request_context("/", headers={"Accept-Language": language}):
        page = render_template_string(TEMPLATE_STRINGS)
        babel_own = app.jinja_env.from_string(TEMPLATE_STRINGS).render()  # no context processors
        assert page == babel_own
        assert page.split("|")[0] == ("研修を探す" if language == "ja" else "Find courses")
        assert page.endswith("未訳 <b>&lt;i&gt;</b> 100%")
        other = "en" if language == "ja" else "ja"
        with force_locale(other):
            forced = render_template_string(TEMPLATE_STRINGS)
        assert forced.split("|")[0] == ("研修を探す" if other == "ja" else "Find courses")
        assert render_template_string(TEMPLATE_STRINGS) == page


def test_the_language_chosen_is_remembered_for_the_user(client, db, login_as):
    """「English」 on the page is the user's language from then on: mails and Teams notices
    composed for them (User.locale) follow it, not only this browser's cookie."""
    user = login_as("learner")
    assert user.locale in (None, "ja")
    client.post("/lang", data={"lang": "en", "next": "/"})
    db.session.expire_all()
    assert db.session.get(type(user), user.id).locale == "en"
    client.post("/lang", data={"lang": "xx", "next": "/"})  # not a language: nothing changes
    db.session.expire_all()
    assert db.session.get(type(user), user.id).locale == "en"
    client.post("/lang", data={"lang": "ja", "next": "/"})
    db.session.expire_all()
    assert db.session.get(type(user), user.id).locale == "ja"


def test_the_language_chosen_before_signing_in_becomes_the_users(client, db):
    """「English」 on the sign-in page, then sign-in: the user's language is English (their mails
    follow it). A language left behind by the previous user's sign-out is not taken over."""
    from lms.auth.models import User

    first = factories.make_user("learner", "131016", is_demo=True)
    second = factories.make_user("learner", "131016", is_demo=True)
    client.post("/lang", data={"lang": "en", "next": "/"})
    assert client.post("/auth/demo", data={"user_id": first.id}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, first.id).locale == "en"
    client.post("/auth/logout")
    assert client.post("/auth/demo", data={"user_id": second.id}).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, second.id).locale in (None, "ja")  # the browser still shows English
    assert '<html lang="en"' in client.get("/").get_data(as_text=True)
