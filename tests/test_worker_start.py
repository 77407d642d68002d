"""A web worker's start (lms.common.worker_start, called by gunicorn.conf.py's
post_worker_init): every template compiled and kept, the start-up objects frozen."""

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
