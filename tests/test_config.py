"""The configuration: read from the environment in config.py only, every variable documented
in the README and every documented one read, a bad value refused with its name."""

from __future__ import annotations

import ast
import re
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from config import ConfigError, ProductionConfig
from lms.notifications.mail import MailError, get_backend
from tests.factories import sign_in

ROOT = Path(__file__).resolve().parent.parent
READERS = {"_text", "_flag", "_int", "_float", "_limit"}  # config.py's helpers: (name, default)
ENV_NAME = re.compile(r"^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=.*)?$")


def _environ_read(node: ast.AST) -> str | None:
    """The variable a node reads from the environment, if it does."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        if isinstance(func, ast.Name) and func.id in READERS:
            return node.args[0].value
        if isinstance(func, ast.Attribute) and ast.unparse(func) in ("os.environ.get", "os.getenv"):
            return node.args[0].value
    if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" and isinstance(node.slice, ast.Constant):
        return node.slice.value
    return None


def variables_read() -> set[str]:
    tree = ast.parse((ROOT / "config.py").read_text(encoding="utf-8"))
    return {name for node in ast.walk(tree) if (name := _environ_read(node))}


def variables_documented() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for code in re.findall(r"`([^`\n]+)`", section):
        match = ENV_NAME.match(code)
        if match:
            names.add(match.group(1))
    return names


def test_every_variable_read_is_documented_and_every_documented_one_is_read():
    read, documented = variables_read(), variables_documented()
    assert "SECRET_KEY" in read and "SMTP_TIMEOUT" in read and "LMS_LIMIT_VERIFY" in read
    assert sorted(read - documented) == [], "read in config.py but not in README.md's Configuration"
    assert sorted(documented - read) == [], "in README.md's Configuration but never read"


def test_only_config_py_reads_the_environment():
    offences = []
    for path in sorted((ROOT / "lms").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bos\.environ\b|\bgetenv\(", line):
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offences == []


def _import_config(**env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", "import config; print(config.Config.SMTP_TIMEOUT, config.Config.LMS_PROXY_COUNT)"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(("variable", "value"), [
    ("LMS_PROXY_COUNT", "abc"),
    ("SMTP_PORT", "25.5"),
    ("SMTP_TIMEOUT", "soon"),
    ("LMS_DB_PING_AFTER_IDLE", "1s"),
    ("LMS_DEMO_LOGIN", "maybe"),
    ("LMS_LIMIT_VERIFY", "lots"),
])
def test_a_bad_value_is_refused_naming_the_variable(variable, value):
    result = _import_config(**{variable: value})
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("config.ConfigError:") and variable in last and repr(value) in last, result.stderr


def test_good_values_are_read():
    result = _import_config(SMTP_TIMEOUT="7.5", LMS_PROXY_COUNT=" 2 ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7.5", "2"]


def test_production_refuses_a_weak_secret_key_and_the_demo_sign_in(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/unused")
    monkeypatch.delenv("LMS_DEMO_LOGIN", raising=False)
    for weak in ("", "changeme", "short-but-not-default"):
        monkeypatch.setenv("SECRET_KEY", weak)
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            ProductionConfig.validate()
    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    ProductionConfig.validate()
    monkeypatch.setenv("LMS_DEMO_LOGIN", "1")
    with pytest.raises(ConfigError, match="LMS_DEMO_LOGIN"):
        ProductionConfig.validate()


def test_smtp_timeout_bounds_the_wait_for_a_silent_server(app):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # connections complete, but no greeting ever comes
    try:
        backend = get_backend({**app.config, "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
                               "SMTP_PORT": silent.getsockname()[1], "SMTP_TIMEOUT": 0.5})
        started = time.monotonic()
        with pytest.raises(MailError) as info:
            backend.send(EmailMessage())
        assert time.monotonic() - started < 5
        assert not info.value.permanent
    finally:
        silent.close()


def test_a_development_instance_makes_its_own_secret_key_and_keeps_it(tmp_path, monkeypatch):
    from lms import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)

    def development(instance):
        return create_app({"LMS_ENV": "development", "SECRET_KEY": None, "SECRET_KEY_FILE": str(instance / "secret_key"),
                           "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})

    first = development(tmp_path / "one").config["SECRET_KEY"]
    key_file = tmp_path / "one" / "secret_key"
    assert key_file.read_text().strip() == first and len(first) >= 32
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert development(tmp_path / "one").config["SECRET_KEY"] == first  # a restart keeps everyone signed in
    other = development(tmp_path / "two").config["SECRET_KEY"]
    assert other != first and "dev-insecure-key-change-me" not in (first, other)
    # A configured key is used as it is; nothing is written.
    configured = create_app({"LMS_ENV": "development", "SECRET_KEY": "c" * 40,
                             "SECRET_KEY_FILE": str(tmp_path / "three" / "secret_key")})
    assert configured.config["SECRET_KEY"] == "c" * 40 and not (tmp_path / "three").exists()


def test_a_cookie_forged_with_the_old_published_key_does_not_get_in(app, make_user, tmp_path, monkeypatch):
    """The attack: a platform admin's session cookie signed with the key every development
    instance used to share. A development instance signs with its own key and refuses it."""
    from flask.sessions import SecureCookieSessionInterface

    from lms import create_app
    from lms.extensions import db

    admin = make_user("platform_admin")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    development = create_app({**app.config, "LMS_ENV": "development", "SECRET_KEY": None,
                              "SECRET_KEY_FILE": str(tmp_path / "secret_key")})
    forger = create_app({**app.config, "SECRET_KEY": "dev-insecure-key-change-me"})
    now = int(time.time())
    forged = SecureCookieSessionInterface().get_signing_serializer(forger).dumps(
        {"_user_id": admin.get_id(), "_fresh": True, "signed_in_at": now, "last_seen": now})
    try:
        client = development.test_client()
        client.set_cookie("manabi_session", forged)
        response = client.get("/admin/")
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
        genuine = development.test_client()  # the same session, signed with the instance's key
        sign_in(genuine, admin)
        assert genuine.get("/admin/").status_code == 200
    finally:
        for other in (development, forger):
            with other.app_context():
                db.session.remove()
                db.engine.dispose()


def test_production_still_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/unused")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("LMS_DEMO_LOGIN", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        ProductionConfig.validate()
