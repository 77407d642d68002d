"""In-process CPU profile of the enrollment rush: CPU ms and SQL statements per request.

Builds the app with the settings ``bench/enroll_rush.py`` gives gunicorn (JSON request log,
rate limits on Redis, the demo sign-in), against a fresh PostgreSQL database with the same
data (one course, two sessions, ``--learners`` demo learners). Every learner signs in
(its own address, as in the bench), then each of them posts the course page's form
(``POST /sessions/<id>/enroll`` with the CSRF token, no JSON Accept) once, and GET /hello
once with the same cookies. The WSGI app is called directly (no HTTP server, no test
client), so the CPU measured is the app's own; it is not distorted by other load on the
machine (process CPU time, not wall time).

Prints one JSON line: CPU ms per request (median and mean) and statements per request for
the enrollment (the first ``--capacity`` confirmed, the rest waitlisted, as in the rush)
and for /hello. ``--profile cumulative`` (or ``tottime``) also runs the enrollments of the
second session under cProfile and prints the top ``--top`` functions to standard error.

    .venv/bin/python bench/profile_enroll.py --learners 300 --capacity 30 --profile tottime
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    BENCH_REDIS_URL,
    USER_AGENT,
    Agent,
    _flush_redis,
    cpu_seconds,
    csrf_token,
    fresh_database,
    postgres_pids,
)

# As Gunicorn() in bench/common.py runs the app: production's settings where the bench allows.
os.environ.update({
    "LMS_ENV": "development",
    "LMS_DEMO_LOGIN": "1",
    "RATELIMIT_ENABLED": "1",
    "LMS_LOG_FORMAT": "json",
    "LMS_LOG_REQUESTS": "1",
    "REDIS_URL": BENCH_REDIS_URL,
})

from bench.enroll_rush import _source_ip, create_data  # noqa: E402


class Browser:
    """One learner's cookies and address; calls the WSGI app directly."""

    def __init__(self, app, index: int) -> None:
        self.app = app
        self.agent = Agent()
        self.address = _source_ip(index)

    def environ(self, method: str, path: str, form: dict | None = None, headers: dict | None = None) -> dict:
        from werkzeug.test import EnvironBuilder

        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if self.agent.cookies:
            all_headers["Cookie"] = self.agent.cookie_header()
        body = urlencode(form).encode() if form is not None else None
        builder = EnvironBuilder(
            path=path, method=method, headers=all_headers, data=body,
            content_type="application/x-www-form-urlencoded" if form is not None else None,
            environ_base={"REMOTE_ADDR": self.address}, base_url="http://127.0.0.1:8000/")
        try:
            return builder.get_environ()
        finally:
            builder.close()

    def call(self, environ: dict) -> tuple[int, dict, bytes]:
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = headers

        chunks = self.app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        self.agent.absorb([v for k, v in answer["headers"] if k.lower() == "set-cookie"])
        return answer["status"], dict(answer["headers"]), body


def _time_parts(app) -> dict[str, float]:
    """Wrap the main steps of the enroll path with CPU-time accumulators (module attributes
    are replaced, so callers that look them up at call time are timed)."""
    import lms.auth.session as auth_session
    import lms.completion.receivers as completion_receivers
    import lms.enrollment.seats as seats
    import lms.enrollment.services as services
    import lms.notifications.receivers as notification_receivers
    from lms.extensions import db

    totals: dict[str, float] = {}

    def timed(name, func):
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.process_time() - started
        wrapper.__wrapped__ = func
        return wrapper

    for module, name in [(auth_session, "user_for_request"), (services, "enroll_self"), (services, "_enroll_tx"),
                         (services, "_arrive"), (seats, "lock_staff_of_user"), (seats, "lock_session_for"),
                         (seats, "lock_quota"), (seats, "add_enrollment"), (seats, "count_seats"),
                         (notification_receivers, "queue_enrollment_notice"),
                         (completion_receivers, "summary")]:
        if name == "summary":
            module.summary.update_for_enrollment = timed("summary.update", module.summary.update_for_enrollment)
            continue
        setattr(module, name, timed(name, getattr(module, name)))
    scoped = db.session
    scoped.commit = timed("session.commit", scoped.commit)
    view = app.view_functions["enrollment.enroll"]
    app.view_functions["enrollment.enroll"] = timed("view (limiter included)", view)
    app.wsgi_app = timed("wsgi_app (all)", app.wsgi_app)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=30, help="seats (the rest is waitlisted)")
    parser.add_argument("--profile", choices=("cumulative", "tottime"), help="print a cProfile of the second rush")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--dump", help="also write the cProfile statistics to this file (pstats format)")
    parser.add_argument("--log", default="/dev/null", help="where the JSON request log goes")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is warm")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time (CPU, unprofiled) the main steps of an enrollment request")
    args = parser.parse_args()

    from sqlalchemy import event

    from lms import create_app
    from lms.extensions import db

    log_file = open(args.log, "w")  # noqa: SIM115
    real_stderr = sys.stderr
    _flush_redis(BENCH_REDIS_URL)
    try:
        with fresh_database("lms_profile_enroll") as database_url:
            database_name = database_url.rsplit("/", 1)[1]
            course_id, session_ids, user_ids = create_data(database_url, args.learners, args.capacity)
            app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
            statements = [0]
            with app.app_context():
                engine = db.engine

            @event.listens_for(engine, "before_cursor_execute")
            def _count(*_args, **_kw):
                statements[0] += 1

            parts = _time_parts(app) if args.breakdown else None
            sys.stderr = log_file  # the request log, as gunicorn's file
            browsers = [Browser(app, i) for i in range(len(user_ids))]
            tokens = []
            for browser, user_id in zip(browsers, user_ids, strict=True):
                _, _, html = browser.call(browser.environ("GET", "/auth/login"))
                status, _, _ = browser.call(browser.environ(
                    "POST", "/auth/demo", {"csrf_token": csrf_token(html.decode()), "user_id": str(user_id), "next": ""}))
                if status not in (302, 303):
                    raise RuntimeError(f"demo sign-in answered {status}")
                _, _, html = browser.call(browser.environ("GET", "/me"))
                tokens.append(csrf_token(html.decode()))
            referer = {"Referer": f"http://127.0.0.1:8000/courses/{course_id}"}

            def rush(session_id: int, profiler: cProfile.Profile | None = None) -> tuple[list[float], list[int]]:
                cpu, counts = [], []
                for browser, token in zip(browsers, tokens, strict=True):
                    environ = browser.environ("POST", f"/sessions/{session_id}/enroll", {"csrf_token": token}, referer)
                    statements[0] = 0
                    started = time.process_time()
                    if profiler is not None:
                        profiler.enable()
                    status, _, _ = browser.call(environ)
                    if profiler is not None:
                        profiler.disable()
                    cpu.append((time.process_time() - started) * 1000)
                    counts.append(statements[0])
                    if status != 302:
                        raise RuntimeError(f"enroll answered {status}")
                return cpu, counts

            def hello() -> tuple[list[float], list[int]]:
                cpu, counts = [], []
                for browser in browsers:
                    environ = browser.environ("GET", "/hello")
                    statements[0] = 0
                    started = time.process_time()
                    status, _, _ = browser.call(environ)
                    cpu.append((time.process_time() - started) * 1000)
                    counts.append(statements[0])
                    if status != 200:
                        raise RuntimeError(f"/hello answered {status}")
                return cpu, counts

            hello()  # warm-up
            if args.gc_freeze:
                import gc
                gc.collect()
                gc.freeze()
            if parts is not None:
                parts.clear()
            db_before = cpu_seconds(postgres_pids(database_name))
            enroll_cpu, enroll_statements = rush(session_ids[0])
            db_ms = (cpu_seconds(postgres_pids(database_name)) - db_before) * 1000 / len(browsers)
            hello_cpu, hello_statements = hello()
            profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall time
            second_cpu, _ = rush(session_ids[1], profiler)
            sys.stderr = real_stderr
            confirmed = slice(0, args.capacity)
            waitlisted = slice(args.capacity, None)

            def ms(values: list[float]) -> dict:
                return {"median": round(statistics.median(values), 2), "mean": round(statistics.fmean(values), 2)}

            result = {
                "learners": len(user_ids),
                "cpu_ms": {
                    "enroll": ms(enroll_cpu),
                    "enroll_confirmed": ms(enroll_cpu[confirmed]),
                    "enroll_waitlisted": ms(enroll_cpu[waitlisted]),
                    "hello": ms(hello_cpu),
                    "database_per_enroll": round(db_ms, 2),
                },
                "statements": {
                    "enroll_confirmed": ms([float(n) for n in enroll_statements[confirmed]]),
                    "enroll_waitlisted": ms([float(n) for n in enroll_statements[waitlisted]]),
                    "hello": ms([float(n) for n in hello_statements]),
                },
            }
            if parts is not None:
                result["breakdown_ms_per_enroll"] = {name: round(total * 1000 / len(browsers), 2)
                                                     for name, total in sorted(parts.items())}
            if profiler is not None:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats(args.profile).print_stats(args.top)
                if args.dump:
                    stats.dump_stats(args.dump)
                print(out.getvalue(), file=sys.stderr)
                result["cpu_ms"]["enroll_profiled"] = ms(second_cpu)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        sys.stderr = real_stderr
        log_file.close()
        _flush_redis(BENCH_REDIS_URL)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
