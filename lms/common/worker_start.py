"""What a web worker does once, after loading the app and before its first request.

gunicorn.conf.py calls ``prepare`` from gunicorn's ``post_worker_init`` hook. Two costs would
otherwise land on learners' requests:

* **Compiling the templates.** Jinja compiles a template the first time a request renders
  it, in every worker: 109 templates take about 1.3 s, and a worker's first results page took
  250 ms instead of 65. They are compiled here, once per worker, and kept in the
  environment's cache (Jinja's default holds 400; tests/test_worker_start.py checks that they
  all fit): about 7 MB per worker.
* **Full garbage collections over the start-up objects.** A worker starts with some 270,000
  objects (modules, mappers, compiled templates) that live as long as it does; every full
  collection walks all of them again, a pause of tens of milliseconds in the middle of some
  request — often, on a page that builds thousands of objects (a survey's results).
  ``gc.freeze()`` moves them to the permanent generation, which collections skip; what
  requests allocate is collected as before.

bench/survey.py's ``results_p95_ms``: 200 without either, 179 with the templates compiled
only, 69–76 with both. Public APIs only (Jinja's environment, SQLAlchemy's
``configure_mappers``, CPython's ``gc``).
"""

from __future__ import annotations

import gc
import time

from flask import Flask
from sqlalchemy.orm import configure_mappers

TEMPLATE_SUFFIXES = (".html", ".txt", ".ics", ".xml", ".svg")


def prepare(app: Flask) -> dict[str, float]:
    """Compile every template, configure the mappers, then freeze the start-up objects.
    Returns what it did (templates, milliseconds, frozen objects) for the worker's log line."""
    started = time.perf_counter()
    configure_mappers()
    env = app.jinja_env
    names = env.list_templates(filter_func=lambda name: name.endswith(TEMPLATE_SUFFIXES))
    for name in names:
        env.get_template(name)
    gc.collect()
    gc.freeze()
    return {"templates": len(names), "ms": round((time.perf_counter() - started) * 1000, 1),
            "frozen": gc.get_freeze_count()}
