"""A web worker's start (lms.common.worker_start, called by gunicorn.conf.py's
post_worker_init): every template compiled and kept, the start-up objects frozen; and what
it does not load."""

from __future__ import annotations

import gc
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from lms.common.worker_start import TEMPLATE_SUFFIXES, prepare

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unfreeze():
    yield
    gc.unfreeze()  # (the rest of the test run collects as usual)


def test_every_template_is_compiled_and_kept(app, unfreeze):
    on_disk = {str(p.relative_to(ROOT / "templates")) for p in (ROOT / "templates").rglob("*")
               if p.is_file() and p.name.endswith(TEMPLATE_SUFFIXES)}
    assert len(on_disk) > 50
    done = prepare(app)
    env = app.jinja_env
    assert done["templates"] >= len(on_disk)
    # Jinja's cache holds them all, so no request compiles one again ...
    assert env.cache is not None and env.cache.capacity >= done["templates"]
    for name in on_disk:
        assert env.get_template(name) is env.get_template(name)
    compiled = env.get_template("base.html")
    env.get_template("courses/catalogue.html")
    assert env.get_template("base.html") is compiled
    # ... and the objects that were there before the first request are out of the collector's way.
    assert done["frozen"] > 10_000 and gc.get_freeze_count() > 10_000


def test_gunicorn_calls_it_after_loading_the_app(app, unfreeze, caplog):
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    worker = SimpleNamespace(wsgi=app, pid=4242, log=logging.getLogger("test.gunicorn"))
    with caplog.at_level(logging.INFO, logger="test.gunicorn"):
        settings["post_worker_init"](worker)
    assert gc.get_freeze_count() > 0
    assert "worker 4242 ready" in caplog.text and "templates compiled" in caplog.text


def test_a_worker_starts_without_the_libraries_of_rare_pages(tmp_path):
    """reportlab, qrcode, Pillow and openpyxl (certificates, statements, QR codes, icons, Excel
    uploads) are imported where they are used: about 14 MB less in every web and background
    worker (bench/upload.py's peak_rss_mb)."""
    import os
    import subprocess
    import sys

    def loaded(**settings: str) -> list[str]:
        env = {**os.environ, "LMS_ENV": "development", "LMS_DEMO_LOGIN": "1",
               "DATABASE_URL": f"sqlite:///{tmp_path / 'start.db'}", **settings}
        return subprocess.run(
            [sys.executable, "-c", "import sys, wsgi; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()

    heavy = ("reportlab", "qrcode", "PIL", "openpyxl")
    anywhere = loaded()
    assert "flask" in anywhere and "lms" in anywhere
    assert [name for name in heavy if name in anywhere] == []
    assert "alembic" in anywhere  # (`flask db …` is there by default)
    # A web worker (gunicorn.conf.py's raw_env) runs no migrations: no Alembic either.
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["raw_env"] == ["LMS_MIGRATION_COMMANDS=0"]
    web = loaded(LMS_MIGRATION_COMMANDS="0")
    assert "lms" in web and [name for name in (*heavy, "alembic", "flask_migrate") if name in web] == []
