"""In-process CPU profile of the catalogue page: CPU ms and SQL statements per request.

Builds the app with the settings ``bench/catalogue.py`` gives gunicorn, against a fresh
PostgreSQL database with the same data (2,000 courses, 10,000 sessions, the bench's
learners), signs ``--learners`` of them in, and calls the WSGI app directly with the bench's
catalogue URLs (process CPU time, not wall time: other load on the machine does not
distort it). Prints one JSON line; ``--profile cumulative`` (or ``tottime``) also prints the
top ``--top`` functions of a second pass to standard error.

    .venv/bin/python bench/profile_catalogue.py --learners 50 --requests 600 --profile cumulative
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalogue import generate, query_strings  # noqa: E402
from bench.common import csrf_token  # noqa: E402
from bench.profile_enroll import BENCH_REDIS_URL, Browser, _flush_redis, fresh_database  # noqa: E402  (sets the env)


def _existing_pages(browser, urls: list[str]) -> list[str]:
    """``urls`` with each one past its last page replaced by the page its redirect names (as
    bench/catalogue.py asks: a learner meets the page, not the redirect)."""
    kept = set()
    for url in urls:
        status, headers, _ = browser.call(browser.environ("GET", url))
        if status == 302:
            target = urlsplit(dict(headers)["Location"])
            url = target.path + (f"?{target.query}" if target.query else "")
        kept.add(url)
    return sorted(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--profile", choices=("cumulative", "tottime"))
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--callers", help="also print the callers of the functions matching this pattern")
    args = parser.parse_args()

    from sqlalchemy import event

    from lms import create_app
    from lms.extensions import db

    _flush_redis(BENCH_REDIS_URL)
    real_stderr = sys.stderr
    with fresh_database("lms_profile_catalogue") as database_url:
        data = generate(database_url)
        app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
        statements = [0]
        with app.app_context():
            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args, **_kw):
            statements[0] += 1

        sys.stderr = open("/dev/null", "w")  # noqa: SIM115  (the request log)
        browsers = []
        for i, user_id in enumerate(data["learner_ids"][: args.learners]):
            browser = Browser(app, i)
            _, _, html = browser.call(browser.environ("GET", "/auth/login"))
            status, _, _ = browser.call(browser.environ(
                "POST", "/auth/demo", {"csrf_token": csrf_token(html.decode()), "user_id": str(user_id), "next": ""}))
            if status not in (302, 303):
                raise RuntimeError(f"demo sign-in answered {status}")
            browsers.append(browser)
        urls = _existing_pages(browsers[0], query_strings(data["category_ids"]))

        def run(profiler: cProfile.Profile | None = None) -> tuple[list[float], list[int]]:
            cpu, counts = [], []
            for n in range(args.requests):
                browser = browsers[n % len(browsers)]
                environ = browser.environ("GET", urls[n % len(urls)])
                statements[0] = 0
                started = time.process_time()
                if profiler is not None:
                    profiler.enable()
                status, _, body = browser.call(environ)
                if profiler is not None:
                    profiler.disable()
                cpu.append((time.process_time() - started) * 1000)
                counts.append(statements[0])
                if status != 200 or b"results-heading" not in body:
                    raise RuntimeError(f"catalogue answered {status}")
            return cpu, counts

        run()  # warm
        cpu, counts = run()
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            run(profiler)
        sys.stderr = real_stderr
        print(json.dumps({"requests": args.requests, "cpu_ms": {"median": round(statistics.median(cpu), 2),
                                                                 "mean": round(statistics.mean(cpu), 2)},
                          "statements": {"median": statistics.median(counts), "mean": round(statistics.mean(counts), 1)}}))
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats(args.profile)
            stats.print_stats(args.top)
            if args.callers:
                stats.print_callers(args.callers)
            print(out.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
