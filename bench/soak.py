"""Soak: a realistic mixed load for 10 minutes against gunicorn + PostgreSQL + the job worker.

The set-up: a fresh PostgreSQL database with the demo data, 300 more learners (each with a
roster entry) spread over every municipality, 6 courses open to all with 2 sessions each
(capacity 40, so demand overflows into waiting lists and cancellations promote people), and
one published archive with a video. gunicorn runs 2 sync workers (no --max-requests: no
recycling), rate limits ON; the background worker (`flask lms worker`) runs beside it and
sends the mails that enrollments and cancellations queue. Every learner signs in through
the demo sign-in from a loopback address of its own before timing starts.

The load: requests arrive at ``--rate`` per second (default 20; Poisson arrivals), at most
``--concurrency`` (default 16) in flight, in this mix:

    catalogue   25 %  GET /courses (a third of them with a search word)
    course      20 %  GET /courses/<id>
    my_page     10 %  GET /me
    enroll      12 %  POST /sessions/<id>/enroll           (201, or 409 when refused by a rule)
    cancel       8 %  POST /enrollments/<own id>/cancel    (200, or 409)
    progress    18 %  POST /archives/files/<id>/progress   (JSON viewing report)
    dashboard    7 %  municipal admin: /municipal, /completion/dashboard; platform admin:
                      /completion/dashboard, /admin/audit/

Prints one JSON object: requests, errors (connection failures, 5xx and any status outside
the expected ones), overbooked (confirmed seats beyond capacity or quota, counted in the
database afterwards), p50/p99 per kind, and rss_growth_pct: the largest growth of the
resident memory of any Manabi process (gunicorn master and workers, job worker) between
the end of the second minute (or 20 % of a shorter run) and the end; counter_mismatch:
sessions whose stored counters (confirmed_count, waitlisted_count) differ from their rows.
Targets: errors = 0, overbooked = 0, rss_growth_pct < 10.

    .venv/bin/python bench/soak.py [--duration 600] [--rate 20] [--learners 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKDIR = Path(tempfile.mkdtemp(prefix="manabi-soak-"))
# The app reads these when lms/config are first imported: set them before.
SOAK_ENV = {
    "LMS_STORAGE_DIR": str(WORKDIR / "archives"),
    "LMS_MAIL_DIR": str(WORKDIR / "mail"),
    "HUEY_SQLITE_PATH": str(WORKDIR / "huey.db"),
    "MAIL_BACKEND": "file",
    "LMS_LOG_REQUESTS": "0",
}
os.environ.update(SOAK_ENV)

from bench.common import BENCH_REDIS_URL, Gunicorn, Req, _fetch, bench_app, emit, fresh_database, percentile  # noqa: E402
from bench.enroll_rush import sign_in_everyone  # noqa: E402

MIX = {"catalogue": 25, "course": 20, "my_page": 10, "enroll": 12, "cancel": 8, "progress": 18, "dashboard": 7}
OK = {
    "catalogue": (200,), "course": (200,), "my_page": (200,), "enroll": (201, 409),
    "cancel": (200, 409), "progress": (200,), "dashboard": (200,),
}
SEARCH_WORDS = ["Teams", "会議", "Excel", "セキュリティ", "研修"]


def create_data(database_url: str, learners: int) -> dict:
    from sqlalchemy import insert, select

    from lms.archives import uploads
    from lms.archives.models import Archive, UploadSession
    from lms.auth.models import User
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, TEAMS, Course, TrainingSession
    from lms.demo import demo_uuid, load_demo
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import ACTIVE, StaffMember

    with bench_app(database_url):
        load_demo()
        db.session.commit()
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        now = utcnow().replace(microsecond=0)
        session_ids, course_ids = [], []
        for n in range(6):
            course = Course(title=f"Microsoft 365 活用研修 {n + 1}（負荷試験）", summary="長時間負荷試験用の研修",
                            description_md="Teams の会議、チャット、ファイル共有を学びます。", status=PUBLISHED,
                            published_at=now, eligible_all=True, search_text=f"microsoft 365 活用研修 {n + 1} teams")
            db.session.add(course)
            db.session.flush()
            course_ids.append(course.id)
            for k in range(2):
                start = now + timedelta(days=10 + 7 * k + n)
                session = TrainingSession(
                    course_id=course.id, title=f"第{k + 1}回", starts_at=start, ends_at=start + timedelta(minutes=90),
                    delivery=TEAMS, capacity=40, enroll_opens_at=now - timedelta(days=1),
                    enroll_closes_at=start - timedelta(days=1), cancel_deadline=start - timedelta(days=2),
                    join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_soak%40thread.v2/0",
                )
                db.session.add(session)
                db.session.flush()
                session_ids.append(session.id)
        tenant = str(uuid.uuid4())
        db.session.execute(insert(User), [
            {"tenant_id": tenant, "object_id": str(uuid.uuid4()), "display_name": f"受講者 {n:05d}",
             "email": f"soak{n:05d}@bench.example.lg.jp", "municipality_id": municipalities[n % len(municipalities)],
             "is_demo": True, "active": True, "session_version": 1}
            for n in range(learners)
        ])
        users = db.session.execute(select(User.id, User.municipality_id, User.email, User.display_name)
                                   .where(User.tenant_id == tenant).order_by(User.id)).all()
        db.session.execute(insert(StaffMember), [
            {"municipality_id": mid, "employee_number": f"S{uid:07d}", "full_name": name, "sign_in_name": email,
             "email": email, "status": ACTIVE, "source": "demo", "user_id": uid}
            for uid, mid, email, name in users
        ])
        trainer = db.session.scalar(select(User).where(User.object_id == demo_uuid("user", "130001", "trainer")))
        archive = Archive(course_id=course_ids[0], title="第1回 録画", description="負荷試験用の録画",
                          status="published", audience="eligible", created_by_id=trainer.id, published_at=now)
        db.session.add(archive)
        db.session.commit()
        video = (ROOT / "tests" / "archives" / "data" / "tiny.webm").read_bytes()
        upload = uploads.create_upload(trainer, archive, len(video), {"filename": "video.webm"})
        db.session.flush()
        result = uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 0, [video])
        upload = db.session.get(UploadSession, upload.id)
        uploads.save_chunk_result(upload, result)
        uploads.finish_upload(upload)
        db.session.commit()
        uploads.verify_upload(upload.id)  # no worker runs while the data is made
        file_id = db.session.get(UploadSession, upload.id).archive_file_id

        def demo(code, key):
            return db.session.scalar(select(User.id).where(User.object_id == demo_uuid("user", code, key)))

        return {
            "learners": [u.id for u in users],
            "admins": [demo("131016", "admin"), demo("132012", "admin"), demo("130001", "platform")],
            "course_ids": course_ids,
            "session_ids": session_ids,
            "file_id": file_id,
        }


def count_overbooked(database_url: str, session_ids: list[int]) -> tuple[int, dict]:
    from sqlalchemy import func, select

    from lms.courses.models import SessionQuota, TrainingSession
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
    from lms.extensions import db

    over, totals = 0, Counter()
    with bench_app(database_url):
        for sid in session_ids:
            session = db.session.get(TrainingSession, sid)
            confirmed = db.session.scalar(select(func.count()).select_from(Enrollment)
                                          .where(Enrollment.session_id == sid, Enrollment.status == CONFIRMED))
            waitlisted = db.session.scalar(select(func.count()).select_from(Enrollment)
                                           .where(Enrollment.session_id == sid, Enrollment.status == WAITLISTED))
            totals["confirmed"] += confirmed
            totals["waitlisted"] += waitlisted
            over += max(confirmed - session.capacity, 0)
            if session.confirmed_count != confirmed or session.waitlisted_count != waitlisted:
                totals["counter_mismatch"] += 1
            for quota in db.session.scalars(select(SessionQuota).where(SessionQuota.session_id == sid)):
                over += max(quota.confirmed_count - quota.seats, 0)
    return over, dict(totals)


# ---------------------------------------------------------------- memory of Manabi's processes


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def manabi_rss(roots: list[int]) -> dict[int, int]:
    pids = []
    for root in roots:
        pids.append(root)
        pids.extend(_children(root))
    return {pid: rss for pid in pids if (rss := _rss_kb(pid))}


# ---------------------------------------------------------------- the load


class Learner:
    def __init__(self, agent, token):
        self.agent, self.token = agent, token
        self.enrollments: list[int] = []
        self.report = 0


def run_soak(base_url: str, learners: list[Learner], admins: list[Learner], data: dict, *, duration: float,
             rate: float, concurrency: int, on_tick) -> dict:
    parts = urlsplit(base_url)
    host, port = parts.hostname, parts.port
    rng = random.Random(7)
    kinds, weights = list(MIX), list(MIX.values())
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, Counter] = defaultdict(Counter)
    errors: list[str] = []
    count = Counter()

    def build(kind: str):
        learner = rng.choice(learners)
        json_headers = {"Accept": "application/json"}
        if kind == "catalogue":
            query = f"?q={quote(rng.choice(SEARCH_WORDS))}" if rng.random() < 0.33 else ""
            return learner, Req("GET", "/courses" + query, agent=learner.agent)
        if kind == "course":
            return learner, Req("GET", f"/courses/{rng.choice(data['course_ids'])}", agent=learner.agent)
        if kind == "my_page":
            return learner, Req("GET", "/me", agent=learner.agent)
        if kind == "cancel":
            owners = [lr for lr in rng.sample(learners, min(20, len(learners))) if lr.enrollments]
            if owners:
                owner = owners[0]
                eid = owner.enrollments.pop(rng.randrange(len(owner.enrollments)))
                return owner, Req("POST", f"/enrollments/{eid}/cancel", form={"csrf_token": owner.token},
                                  agent=owner.agent, headers=json_headers)
            kind = "enroll"
        if kind == "enroll":
            sid = rng.choice(data["session_ids"])
            return learner, Req("POST", f"/sessions/{sid}/enroll", form={"csrf_token": learner.token},
                                agent=learner.agent, headers=json_headers)
        if kind == "progress":
            learner.report += 1
            start = (learner.report * 5) % 60
            body = {"report_id": f"soak{id(learner):x}r{learner.report:06d}", "intervals": [[start, start + 5]],
                    "position": start + 5}
            return learner, Req("POST", f"/archives/files/{data['file_id']}/progress", agent=learner.agent,
                                headers={**json_headers, "Content-Type": "application/json",
                                         "X-CSRFToken": learner.token},
                                form=None), json.dumps(body)
        admin = rng.choice(admins)
        path = rng.choice(admin.paths)
        return admin, Req("GET", path, agent=admin.agent)

    async def one(kind: str, semaphore: asyncio.Semaphore):
        built = build(kind)
        actual_kind = kind
        if kind == "cancel" and built[1].path.endswith("/enroll"):
            actual_kind = "enroll"
        learner, req = built[0], built[1]
        if len(built) == 3:
            req.body = built[2].encode()
        async with semaphore:
            try:
                response = await _fetch(host, port, req)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                count[actual_kind] += 1
                statuses[actual_kind]["exception"] += 1
                errors.append(f"{req.method} {req.path}: {exc!r}")
                return
        count[actual_kind] += 1
        latencies[actual_kind].append(response.elapsed_ms)
        statuses[actual_kind][response.status] += 1
        if response.status not in OK[actual_kind]:
            errors.append(f"{req.method} {req.path}: HTTP {response.status} {response.body[:200]!r}")
            return
        if actual_kind == "enroll" and response.status == 201:
            learner.enrollments.append(json.loads(response.body)["enrollment_id"])

    async def main():
        semaphore = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        tasks = set()
        next_tick = started
        while time.monotonic() - started < duration:
            kind = rng.choices(kinds, weights)[0]
            task = asyncio.create_task(one(kind, semaphore))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(rng.expovariate(rate))
            if time.monotonic() >= next_tick:
                on_tick(time.monotonic() - started)
                next_tick += 5
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return {"count": count, "latencies": latencies, "statuses": statuses, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--rate", type=float, default=20, help="requests per second (Poisson arrivals)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--learners", type=int, default=300)
    args = parser.parse_args()

    baseline_at = min(120.0, args.duration * 0.2)
    with fresh_database("lms_bench_soak") as database_url:
        data = create_data(database_url, args.learners)
        env = {**SOAK_ENV, "DATABASE_URL": database_url, "LMS_ENV": "development", "LMS_DEMO_LOGIN": "1",
               "REDIS_URL": BENCH_REDIS_URL}  # the worker takes its jobs from the same Redis
        with Gunicorn(database_url, workers=2, env=env) as server:
            worker = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi", "lms", "worker", "-w", "2"],
                cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                ids = data["learners"] + data["admins"]
                agents, tokens = sign_in_everyone(server.base_url, ids)
                learners = [Learner(a, t) for a, t in zip(agents[: len(data["learners"])], tokens, strict=False)]
                admins = []
                for n, (agent, token) in enumerate(zip(agents[len(data["learners"]):], tokens[len(data["learners"]):],
                                                       strict=True)):
                    admin = Learner(agent, token)
                    admin.paths = (["/completion/dashboard", "/admin/audit/"] if n == 2
                                   else ["/municipal", "/completion/dashboard"])
                    admins.append(admin)
                roots = [server.proc.pid, worker.pid]
                samples: dict[str, dict[int, int]] = {}

                def on_tick(elapsed: float) -> None:
                    if "baseline" not in samples and elapsed >= baseline_at:
                        samples["baseline"] = manabi_rss(roots)

                outcome = run_soak(server.base_url, learners, admins, data, duration=args.duration,
                                   rate=args.rate, concurrency=args.concurrency, on_tick=on_tick)
                final = manabi_rss(roots)
                baseline = samples.get("baseline") or final
                growth = max(((final[pid] - rss) / rss * 100 for pid, rss in baseline.items() if pid in final),
                             default=0.0)
                worker_alive = worker.poll() is None
            finally:
                worker.terminate()
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
        overbooked, totals = count_overbooked(database_url, data["session_ids"])

    result = {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "requests": sum(outcome["count"].values()),
        "errors": len(outcome["errors"]),
        "overbooked": overbooked,
        "per_kind": {
            kind: {
                "requests": outcome["count"][kind],
                "p50_ms": round(percentile(outcome["latencies"][kind], 50), 1),
                "p99_ms": round(percentile(outcome["latencies"][kind], 99), 1),
            }
            for kind in MIX
        },
        "rss_growth_pct": round(growth, 2),
        "rss_kb_end": {str(pid): kb for pid, kb in final.items()},
        "confirmed": totals.get("confirmed", 0),
        "waitlisted": totals.get("waitlisted", 0),
        "counter_mismatch": totals.get("counter_mismatch", 0),
        "worker_alive": worker_alive,
    }
    if outcome["errors"]:
        print(json.dumps({"error_samples": outcome["errors"][:10],
                          "statuses": {k: {str(s): n for s, n in v.items()} for k, v in outcome["statuses"].items()}},
                         ensure_ascii=False), file=sys.stderr)
    emit(result)


if __name__ == "__main__":
    main()
