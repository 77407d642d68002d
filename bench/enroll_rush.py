"""Enrollment rush: 3,000 learners try to take 300 seats at once, the browser's way.

gunicorn (sync workers, 4 by default as in the README's production command; --workers) on PostgreSQL with production's settings where
a bench allows them (bench/common.py: JSON request log, rate limits, Redis). Every learner
is signed in through the demo sign-in before timing starts (each from a loopback address
of its own, as real learners come from their own machines, so the per-address sign-in
limit applies to them as in production). Then two rushes, each of all 3,000 learners on a
session of its own with 300 seats, fired over real HTTP through 64 concurrent connections,
each learner with its own session cookie and CSRF token, from the address it signed in from:

* the enroll rush: the course page's form post (no JSON ``Accept``, the course page as
  ``Referer``), answered by a redirect: ``enroll_per_s``, ``p50_ms``, ``p99_ms``;
* the browser rush: the same form post, then the course page the redirect leads to
  (as a browser does): ``browser_enroll_per_s`` (enrollments with their page),
  ``browser_page_p99_ms`` (the course page), ``browser_p99_ms`` (post and page).

The bare /hello view is measured the same way before and after the rushes (``hello_per_s``),
and so is a bare one-file Flask app on the same gunicorn settings (bench/bare_app.py:
``hello_bare_per_s``); both hellos are measured with ``wrk`` too (``hello_app_wrk_per_s``,
``hello_bare_wrk_per_s``), so that the Python client's own cost is visible.

The background worker runs throughout, as in production: it composes and sends each
notice after the enrollment's commit (to files in a temporary directory: the "file" mail
backend), on the same two cores; ``notices_done_after_s`` is how long after the enroll rush
its last notice was done, and ``cpu_ms_per_enroll.worker`` its CPU per enrollment.

Prints one JSON object: confirmed, waitlisted, errors, overbooked (of both rushes),
enroll_per_s, hello_per_s, ratio (enroll ÷ hello), hello_bare_per_s, ratio_bare (enroll ÷
bare hello), the wrk figures, p50_ms, p99_ms, the browser_* figures and cpu_ms_per_enroll
(CPU time per enrollment of gunicorn's processes and of PostgreSQL's backends, enroll rush).
Targets: confirmed = 300, overbooked = 0, errors = 0, ratio >= 0.15, p99_ms <= 300.

    .venv/bin/python bench/enroll_rush.py [--learners 3000] [--capacity 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    USER_AGENT,
    Agent,
    Gunicorn,
    Req,
    Worker,
    bench_app,
    cpu_seconds,
    csrf_token,
    emit,
    fetch,
    fresh_database,
    measure_hello,
    percentile,
    postgres_pids,
    run_load,
    wrk_per_s,
)


def create_data(database_url: str, learners: int, capacity: int) -> tuple[int, list[int], list[int]]:
    """A published course open to every municipality, two sessions on different days (one
    per rush), ``learners`` demo users (each with a roster entry) spread over the
    municipalities."""
    from sqlalchemy import insert, select

    from lms.auth.models import User
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, TEAMS, Course, TrainingSession
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import ACTIVE, StaffMember

    with bench_app(database_url):
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        now = utcnow().replace(microsecond=0)
        course = Course(title="Microsoft Teams 活用研修（集中申込）", summary="ベンチマーク用の研修", status=PUBLISHED,
                        published_at=now, eligible_all=True, search_text="microsoft teams 活用研修")
        db.session.add(course)
        db.session.flush()
        sessions = []
        for day in (14, 15):
            start = now + timedelta(days=day)
            session = TrainingSession(
                course_id=course.id, title=f"第{day - 13}回", starts_at=start, ends_at=start + timedelta(minutes=90),
                delivery=TEAMS, capacity=capacity, enroll_opens_at=now - timedelta(days=1),
                enroll_closes_at=start - timedelta(days=1), cancel_deadline=start - timedelta(days=2),
                join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_bench%40thread.v2/0",
            )
            db.session.add(session)
            sessions.append(session)
        db.session.flush()
        tenant = str(uuid.uuid4())
        rows = [
            {
                "tenant_id": tenant, "object_id": str(uuid.uuid4()), "display_name": f"受講者 {n:05d}",
                "email": f"learner{n:05d}@bench.example.lg.jp", "municipality_id": municipalities[n % len(municipalities)],
                "is_demo": True, "active": True, "session_version": 1,
            }
            for n in range(learners)
        ]
        db.session.execute(insert(User), rows)
        users = db.session.execute(select(User.id, User.municipality_id, User.email, User.display_name)
                                   .where(User.tenant_id == tenant).order_by(User.id)).all()
        db.session.execute(insert(StaffMember), [
            {
                "municipality_id": mid, "employee_number": f"B{uid:07d}", "full_name": name,
                "sign_in_name": email, "email": email, "status": ACTIVE, "source": "demo", "user_id": uid,
            }
            for uid, mid, email, name in users
        ])
        db.session.commit()
        return course.id, [s.id for s in sessions], [u.id for u in users]


# ---------------------------------------------------------------- signing in from many addresses


def _source_ip(index: int) -> str:
    # 127.0.0.0/8 is all loopback on Linux: one address per learner.
    return f"127.{1 + index // 62500}.{(index // 250) % 250 + 1}.{index % 250 + 1}"


async def _send(host: str, port: int, method: str, path: str, agent: Agent, source: str,
                form: dict | None = None) -> tuple[int, str]:
    body = urlencode(form).encode() if form is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", f"User-Agent: {USER_AGENT}"]
    if form is not None:
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    if agent.cookies:
        lines.append(f"Cookie: {agent.cookie_header()}")
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        raw = await reader.read(-1)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split()[1])
    agent.absorb([line.split(":", 1)[1].strip() for line in head_lines[1:] if line.lower().startswith("set-cookie:")])
    return status, payload.decode("utf-8", "replace")


def sign_in_everyone(base_url: str, user_ids: list[int], concurrency: int = 32) -> tuple[list[Agent], list[str]]:
    """Demo sign-in for every learner, then the CSRF token of their signed-in session."""
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port
    agents = [Agent() for _ in user_ids]
    tokens = [""] * len(user_ids)

    async def one(index: int) -> None:
        agent, source = agents[index], _source_ip(index)
        status, html = await _send(host, port, "GET", "/auth/login", agent, source)
        if status != 200:
            raise RuntimeError(f"GET /auth/login answered {status}")
        status, _ = await _send(host, port, "POST", "/auth/demo", agent, source,
                                {"csrf_token": csrf_token(html), "user_id": str(user_ids[index]), "next": ""})
        if status not in (302, 303):
            raise RuntimeError(f"demo sign-in of user {user_ids[index]} answered {status}")
        status, html = await _send(host, port, "GET", "/me", agent, source)
        if status != 200:
            raise RuntimeError(f"GET /me answered {status}")
        tokens[index] = csrf_token(html)

    async def main() -> None:
        pending = iter(range(len(user_ids)))

        async def worker() -> None:
            for index in pending:
                await one(index)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(main())
    return agents, tokens


# ---------------------------------------------------------------- the rush


def count_outcome(database_url: str, session_id: int) -> dict:
    from sqlalchemy import func, select

    from lms.courses.models import SessionQuota, TrainingSession
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
    from lms.extensions import db

    with bench_app(database_url):
        def count(status):
            return db.session.scalar(select(func.count()).select_from(Enrollment)
                                     .where(Enrollment.session_id == session_id, Enrollment.status == status))

        session = db.session.get(TrainingSession, session_id)
        confirmed, waitlisted = count(CONFIRMED), count(WAITLISTED)
        quota_rows = db.session.scalars(select(SessionQuota).where(SessionQuota.session_id == session_id)).all()
        over_quota = sum(max(q.confirmed_count - q.seats, 0) for q in quota_rows)
        return {
            "confirmed": confirmed,
            "waitlisted": waitlisted,
            "capacity": session.capacity,
            "counter": session.confirmed_count,
            "overbooked": max(confirmed - session.capacity, 0) + over_quota,
        }



def browser_rush(base_url: str, course_id: int, session_id: int, agents: list[Agent], tokens: list[str],
                 concurrency: int) -> dict:
    """Each learner posts the form and then loads the page the redirect leads to."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    referer = f"{base_url}/courses/{course_id}"
    posts: list[float] = []
    pages: list[float] = []
    both: list[float] = []
    errors: list[str] = []

    async def one(index: int) -> None:
        agent, source = agents[index], _source_ip(index)
        post = await fetch(host, port, Req("POST", f"/sessions/{session_id}/enroll", form={"csrf_token": tokens[index]},
                                           agent=agent, headers={"Referer": referer}, source=source))
        if post.status != 302:
            errors.append(f"POST answered {post.status}")
            return
        location = post.headers.get("location", "")
        path = urlsplit(location).path or location
        page = await fetch(host, port, Req("GET", path, agent=agent, headers={"Referer": referer}, source=source))
        if page.status != 200:
            errors.append(f"GET {path} answered {page.status}")
            return
        posts.append(post.elapsed_ms)
        pages.append(page.elapsed_ms)
        both.append(post.elapsed_ms + page.elapsed_ms)

    async def main() -> float:
        pending = iter(range(len(agents)))

        async def worker() -> None:
            for index in pending:
                try:
                    await one(index)
                except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
                    errors.append(repr(exc))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return {"per_s": len(agents) / elapsed, "errors": errors, "post_p99_ms": percentile(posts, 99),
            "page_p50_ms": percentile(pages, 50), "page_p99_ms": percentile(pages, 99),
            "p50_ms": percentile(both, 50), "p99_ms": percentile(both, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=3000)
    parser.add_argument("--capacity", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4,
                        help="gunicorn sync workers, for Manabi and the bare app alike (README's production: 4)")
    parser.add_argument("--hello", type=int, default=4000, help="requests per hello run")
    args = parser.parse_args()

    with fresh_database("lms_bench_enroll") as database_url:
        course_id, (session_id, browser_session_id), user_ids = create_data(database_url, args.learners, args.capacity)
        # The background worker runs, as in production: it composes and sends (to files, in a
        # directory of the run's own) the notice of each enrollment after its commit.
        with tempfile.TemporaryDirectory(prefix="lms_bench_mail_") as mail_dir, \
                Gunicorn(database_url, workers=args.workers, env={"LMS_MAIL_DIR": mail_dir}) as server, \
                Worker(server.env) as worker, \
                Gunicorn(database_url, workers=args.workers, app="bench.bare_app:app") as bare:
            agents, tokens = sign_in_everyone(server.base_url, user_ids)
            measure_hello(server.base_url, n=200, concurrency=args.concurrency)  # warm-up, not counted
            measure_hello(bare.base_url, n=200, concurrency=args.concurrency)
            hello_before = measure_hello(server.base_url, n=args.hello, concurrency=args.concurrency)
            bare_before = measure_hello(bare.base_url, n=args.hello, concurrency=args.concurrency)
            db_pids = postgres_pids(database_url.rsplit("/", 1)[1])
            app_cpu, db_cpu = cpu_seconds(server.pids()), cpu_seconds(db_pids)
            worker_cpu = cpu_seconds([worker.proc.pid])
            referer = {"Referer": f"{server.base_url}/courses/{course_id}"}
            rush = run_load(
                server.base_url,
                [
                    # The course page's form, from the address (and browser) each learner
                    # signed in from, as in a real rush.
                    Req("POST", f"/sessions/{session_id}/enroll", form={"csrf_token": token}, agent=agent,
                        headers=referer, source=_source_ip(index))
                    for index, (agent, token) in enumerate(zip(agents, tokens, strict=True))
                ],
                concurrency=args.concurrency,
                ok=(302,),
            )
            app_cpu, db_cpu = cpu_seconds(server.pids()) - app_cpu, cpu_seconds(db_pids) - db_cpu
            mail_lag = worker.drained()  # (the notices of the rush, composed and sent)
            worker_cpu = cpu_seconds([worker.proc.pid]) - worker_cpu
            browser = browser_rush(server.base_url, course_id, browser_session_id, agents, tokens, args.concurrency)
            worker.drained()  # (the browser rush's notices, before the hellos are measured again)
            hello_after = measure_hello(server.base_url, n=args.hello, concurrency=args.concurrency)
            bare_after = measure_hello(bare.base_url, n=args.hello, concurrency=args.concurrency)
            hello_app_wrk = wrk_per_s(server.base_url)
            hello_bare_wrk = wrk_per_s(bare.base_url)
        outcome = count_outcome(database_url, session_id)
        browser_outcome = count_outcome(database_url, browser_session_id)

    hello_per_s = (hello_before.per_s + hello_after.per_s) / 2
    bare_per_s = (bare_before.per_s + bare_after.per_s) / 2
    # A refusal is a redirect too (with its message flashed): every learner must hold a row.
    missing = args.learners - outcome["confirmed"] - outcome["waitlisted"]
    browser_missing = args.learners - browser_outcome["confirmed"] - browser_outcome["waitlisted"]
    result = {
        "confirmed": outcome["confirmed"],
        "waitlisted": outcome["waitlisted"],
        "errors": rush.errors + max(missing, 0) + len(browser["errors"]) + max(browser_missing, 0),
        "overbooked": outcome["overbooked"] + browser_outcome["overbooked"],
        "enroll_per_s": round(rush.per_s, 1),
        "hello_per_s": round(hello_per_s, 1),
        "ratio": round(rush.per_s / hello_per_s, 3) if hello_per_s else 0.0,
        "hello_bare_per_s": round(bare_per_s, 1),
        "ratio_bare": round(rush.per_s / bare_per_s, 3) if bare_per_s else 0.0,
        "hello_app_wrk_per_s": round(hello_app_wrk, 1),
        "hello_bare_wrk_per_s": round(hello_bare_wrk, 1),
        "p50_ms": round(rush.p50_ms, 1),
        "p99_ms": round(rush.p99_ms, 1),
        "browser_confirmed": browser_outcome["confirmed"],
        "browser_enroll_per_s": round(browser["per_s"], 1),
        "browser_ratio": round(browser["per_s"] / hello_per_s, 3) if hello_per_s else 0.0,
        "browser_post_p99_ms": round(browser["post_p99_ms"], 1),
        "browser_page_p50_ms": round(browser["page_p50_ms"], 1),
        "browser_page_p99_ms": round(browser["page_p99_ms"], 1),
        "browser_p50_ms": round(browser["p50_ms"], 1),
        "browser_p99_ms": round(browser["p99_ms"], 1),
        # CPU per enrollment (meaningful even on a busy machine): gunicorn's processes, PostgreSQL's.
        "cpu_ms_per_enroll": {"app": round(app_cpu * 1000 / rush.count, 2), "db": round(db_cpu * 1000 / rush.count, 2),
                              "worker": round(worker_cpu * 1000 / rush.count, 2)},
        "notices_done_after_s": round(mail_lag, 1),
    }
    if (rush.errors or missing or browser["errors"] or outcome["counter"] != outcome["confirmed"]
            or browser_outcome["counter"] != browser_outcome["confirmed"]):
        print(json.dumps({"detail": {"statuses": {str(k): v for k, v in rush.statuses.items()},
                                     "samples": rush.error_samples, "browser_samples": browser["errors"][:5],
                                     "missing": missing, "counter": outcome["counter"]}},
                         ensure_ascii=False), file=sys.stderr)
    emit(result)


if __name__ == "__main__":
    main()
