"""What a web worker does once, after loading the app and before its first request.

gunicorn.conf.py calls ``prepare`` from gunicorn's ``post_worker_init`` hook: it compiles every
template. Jinja otherwise compiles a template the first time a request renders it, in every
worker: 109 templates take about 1.3 s of CPU, and a worker's first results page took 250 ms
instead of 65 — bench/survey.py's ``results_p95_ms`` was decided by those first loads (200 ms;
72 with this). The compiled templates stay in the environment's cache (Jinja's default holds
400; tests/test_worker_start.py checks that they all fit) and cost about 7 MB per worker.

Measured and left out: ``gc.collect()`` and ``gc.freeze()`` of the start-up objects here made
bench/upload.py's uploads cost 3.2 s of CPU per GiB instead of 2.0, for no gain in any bench.
"""

from __future__ import annotations

import time

from flask import Flask

TEMPLATE_SUFFIXES = (".html", ".txt", ".ics", ".xml", ".svg")


def prepare(app: Flask) -> dict[str, float]:
    """Compile every template (Jinja's public API). Returns what it did (templates,
    milliseconds) for the worker's log line."""
    started = time.perf_counter()
    env = app.jinja_env
    names = env.list_templates(filter_func=lambda name: name.endswith(TEMPLATE_SUFFIXES))
    for name in names:
        env.get_template(name)
    return {"templates": len(names), "ms": round((time.perf_counter() - started) * 1000, 1)}
