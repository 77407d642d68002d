"""In-process CPU profile of the survey rush: CPU ms and SQL statements per submission.

Builds the app with the settings ``bench/survey.py`` gives gunicorn, against a fresh
PostgreSQL database with the same data (a held session, a published, required 20-question
survey, ``--learners`` learners with a place), signs every learner in (its own address), then
each posts the survey page's form once (``POST /activities/<id>``, ``action=submit``, the CSRF
token, no JSON Accept), calling the WSGI app directly (process CPU time, not wall time).
Prints one JSON line; ``--profile cumulative`` (or ``tottime``) runs the last half of the
learners under cProfile and prints the top ``--top`` functions to standard error.

    .venv/bin/python bench/profile_survey.py --learners 200 --profile cumulative
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import csrf_token  # noqa: E402
from bench.profile_enroll import BENCH_REDIS_URL, Browser, _flush_redis, fresh_database  # noqa: E402  (sets the env)
from bench.survey import answers_form, create_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--anonymous", action="store_true")
    parser.add_argument("--profile", choices=("cumulative", "tottime"))
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()

    from sqlalchemy import event

    from lms import create_app
    from lms.extensions import db

    _flush_redis(BENCH_REDIS_URL)
    real_stderr = sys.stderr
    with fresh_database("lms_profile_survey") as database_url:
        activity_id, question_ids, _trainer, learner_ids = create_data(database_url, args.learners, args.anonymous)
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
        statements: list[str] = []
        with app.app_context():
            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(_conn, _cursor, statement, *_args, **_kw):
            statements.append(statement.split(None, 1)[0].upper() + " " + statement[:90].replace("\n", " "))

        sys.stderr = open("/dev/null", "w")  # noqa: SIM115  (the request log)
        rng = random.Random(7)
        browsers = []
        for i, user_id in enumerate(learner_ids):
            browser = Browser(app, i)
            _, _, html = browser.call(browser.environ("GET", "/auth/login"))
            status, _, _ = browser.call(browser.environ(
                "POST", "/auth/demo", {"csrf_token": csrf_token(html.decode()), "user_id": str(user_id), "next": ""}))
            if status not in (302, 303):
                raise RuntimeError(f"demo sign-in answered {status}")
            _, _, page = browser.call(browser.environ("GET", f"/activities/{activity_id}"))
            browsers.append((browser, csrf_token(page.decode())))
        half = len(browsers) // 2
        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU time, not waiting
        cpu, counts, sample = [], [], []
        for n, (browser, token) in enumerate(browsers):
            environ = browser.environ("POST", f"/activities/{activity_id}", answers_form(question_ids, token, rng))
            statements.clear()
            started = time.process_time()
            if profiler is not None and n >= half:
                profiler.enable()
            status, _, _ = browser.call(environ)
            if profiler is not None and n >= half:
                profiler.disable()
            cpu.append((time.process_time() - started) * 1000)
            counts.append(len(statements))
            if n == half:
                sample = list(statements)
            if status not in (302, 303):
                raise RuntimeError(f"the survey answered {status}")
        sys.stderr = real_stderr
        print(json.dumps({"submissions": len(cpu), "cpu_ms": {"median": round(statistics.median(cpu[half:]), 2),
                                                             "mean": round(statistics.mean(cpu[half:]), 2)},
                          "statements": {"median": statistics.median(counts), "max": max(counts)},
                          "sample": sample}, ensure_ascii=False))
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.profile).print_stats(args.top)
            print(out.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
