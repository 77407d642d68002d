"""Survey rush: 3,000 learners submit a 20-question 研修アンケート after their session, then
the trainer reads the results.

gunicorn (sync workers, 4 by default as in the README's production command) on PostgreSQL with
production's settings where a bench allows (bench/common.py: JSON request log, rate limits,
Redis) and the background worker beside it (completions follow a submission there). A held session of a course with a published, required 20-question survey (5 five-point
scales, 10 single choices, 5 short texts), open from the session's end for a week; ``--learners``
learners with a confirmed place, each signed in through the demo sign-in from a loopback
address of its own before timing. Then every learner posts the survey page's form
(``POST /activities/<id>`` with ``action=submit``, the CSRF token of their session, no JSON
``Accept``) over ``--concurrency`` connections, and ``/hello`` is measured the same way before
and after. Finally the trainer loads the results page (all 3,000 answers) ``--results`` times.

Prints one JSON object: submit_per_s, hello_per_s, ratio (submit ÷ hello), p50_ms, p99_ms,
results_p95_ms, errors, lost (answers expected minus stored), cpu_ms_per_submit (app, db),
completions_done_after_s (how long after the rush the worker had recomputed the last
completion) and the worker's CPU from the rush's start until then, per submission.
Targets: errors = 0, lost = 0, ratio >= 0.15, p99_ms <= 300, results_p95_ms <= 200.

    .venv/bin/python bench/survey.py [--learners 3000] [--anonymous]
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Gunicorn,
    Req,
    Worker,
    bench_app,
    cpu_seconds,
    emit,
    fresh_database,
    measure_hello,
    percentile,
    postgres_pids,
    run_load,
)
from bench.enroll_rush import _source_ip, sign_in_everyone  # noqa: E402

SCALES, CHOICES, TEXTS = 5, 10, 5


def create_data(database_url: str, learners: int, anonymous: bool) -> tuple[int, list[int], int, list[int]]:
    """(activity id, its question ids, the trainer's user id, the learners' user ids)."""
    from sqlalchemy import insert, select

    from lms.activities.models import Activity, ActivityQuestion
    from lms.auth.models import TRAINER, User, UserRole
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, TEAMS, Course, TrainingSession
    from lms.enrollment.models import CONFIRMED, Enrollment
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import ACTIVE, StaffMember

    with bench_app(database_url):
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        now = utcnow().replace(microsecond=0)
        trainer = User(tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), display_name="研修所 講師",
                       email="trainer@bench.example.lg.jp", municipality_id=municipalities[0], is_demo=True, active=True,
                       session_version=1)
        db.session.add(trainer)
        db.session.flush()
        db.session.add(UserRole(user_id=trainer.id, role=TRAINER))
        course = Course(title="情報公開制度研修（アンケートあり）", summary="ベンチマーク用の研修", status=PUBLISHED,
                        published_at=now, eligible_all=True, owner_id=trainer.id, search_text="情報公開制度研修")
        db.session.add(course)
        db.session.flush()
        start = now - timedelta(hours=3)  # held this morning: the survey is open
        session = TrainingSession(course_id=course.id, title="第1回", starts_at=start, ends_at=start + timedelta(hours=2),
                                  delivery=TEAMS, capacity=learners, confirmed_count=learners)
        db.session.add(session)
        labels = ["不満", "やや不満", "どちらともいえない", "おおむね満足", "満足"]
        questions = ([ActivityQuestion(kind="scale", prompt=f"満足度 {n + 1}", choices=labels, position=n)
                      for n in range(SCALES)]
                     + [ActivityQuestion(kind="single", prompt=f"選択 {n + 1}", choices=["はい", "いいえ", "どちらでもない", "分からない"],
                                         position=SCALES + n) for n in range(CHOICES)]
                     + [ActivityQuestion(kind="text", prompt=f"ご意見 {n + 1}", required=False, position=SCALES + CHOICES + n)
                        for n in range(TEXTS)])
        activity = Activity(course_id=course.id, kind="survey", title="研修アンケート", published=True, anonymous=anonymous,
                            opens_anchor="end", opens_offset_hours=0, closes_anchor="end", closes_offset_hours=24 * 7,
                            questions=questions)
        db.session.add(activity)
        db.session.flush()
        tenant = str(uuid.uuid4())
        db.session.execute(insert(User), [
            {"tenant_id": tenant, "object_id": str(uuid.uuid4()), "display_name": f"受講者 {n:05d}",
             "email": f"learner{n:05d}@bench.example.lg.jp", "municipality_id": municipalities[n % len(municipalities)],
             "is_demo": True, "active": True, "session_version": 1} for n in range(learners)])
        users = db.session.execute(select(User.id, User.municipality_id, User.email, User.display_name)
                                   .where(User.tenant_id == tenant).order_by(User.id)).all()
        db.session.execute(insert(StaffMember), [
            {"municipality_id": mid, "employee_number": f"S{uid:07d}", "full_name": name, "sign_in_name": email,
             "email": email, "status": ACTIVE, "source": "demo", "user_id": uid} for uid, mid, email, name in users])
        staff = db.session.execute(select(StaffMember.id, StaffMember.municipality_id)
                                   .where(StaffMember.user_id.in_([u.id for u in users])).order_by(StaffMember.id)).all()
        db.session.execute(insert(Enrollment), [
            {"session_id": session.id, "staff_member_id": sid, "municipality_id": mid, "status": CONFIRMED,
             "source": "self", "arrival_seq": n + 1, "requested_at": start - timedelta(days=20),
             "confirmed_at": start - timedelta(days=20)} for n, (sid, mid) in enumerate(staff)])
        db.session.commit()
        return activity.id, [q.id for q in activity.questions], trainer.id, [u.id for u in users]


def answers_form(question_ids: list[int], token: str, rng: random.Random) -> dict:
    form = {"csrf_token": token, "action": "submit"}
    for n, qid in enumerate(question_ids):
        if n < SCALES:
            form[f"q{qid}"] = str(rng.randint(1, 5))
        elif n < SCALES + CHOICES:
            form[f"q{qid}"] = str(rng.randint(0, 3))
        else:
            form[f"q{qid}"] = rng.choice(["特になし", "資料が分かりやすかった", "演習の時間をもう少し長く", ""])
    return form


def stored(database_url: str, activity_id: int, anonymous: bool) -> int:
    from sqlalchemy import func, select

    from lms.activities.models import ActivitySubmission, AnonymousAnswer
    from lms.extensions import db

    with bench_app(database_url):
        model = AnonymousAnswer if anonymous else ActivitySubmission
        return int(db.session.scalar(select(func.count()).select_from(model).where(
            model.activity_id == activity_id)) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--hello", type=int, default=4000)
    parser.add_argument("--results", type=int, default=100, help="loads of the results page")
    parser.add_argument("--anonymous", action="store_true", help="an anonymous survey")
    args = parser.parse_args()
    rng = random.Random(16)

    with fresh_database("lms_bench_survey") as database_url:
        activity_id, question_ids, trainer_id, user_ids = create_data(database_url, args.learners, args.anonymous)
        with Gunicorn(database_url, workers=args.workers) as server, Worker(server.env) as worker:
            agents, tokens = sign_in_everyone(server.base_url, [trainer_id, *user_ids])
            trainer_agent = agents[0]
            agents, tokens = agents[1:], tokens[1:]
            measure_hello(server.base_url, n=200, concurrency=args.concurrency)  # warm-up, not counted
            hello_before = measure_hello(server.base_url, n=args.hello, concurrency=args.concurrency)
            db_pids = postgres_pids(database_url.rsplit("/", 1)[1])
            app_cpu, db_cpu = cpu_seconds(server.pids()), cpu_seconds(db_pids)
            worker_cpu = cpu_seconds([worker.proc.pid])
            path = f"/activities/{activity_id}"
            rush = run_load(server.base_url, [
                Req("POST", path, form=answers_form(question_ids, token, rng), agent=agent,
                    headers={"Referer": f"{server.base_url}{path}"}, source=_source_ip(index + 1))
                for index, (agent, token) in enumerate(zip(agents, tokens, strict=True))
            ], concurrency=args.concurrency, ok=(302,))
            app_cpu, db_cpu = cpu_seconds(server.pids()) - app_cpu, cpu_seconds(db_pids) - db_cpu
            # The completions follow in the worker: the time until it has done them all.
            lag = worker.drained()
            worker_cpu = cpu_seconds([worker.proc.pid]) - worker_cpu
            hello_after = measure_hello(server.base_url, n=args.hello, concurrency=args.concurrency)
            results = run_load(server.base_url, [
                Req("GET", f"/manage/activities/{activity_id}/results", agent=trainer_agent, source=_source_ip(0))
                for _ in range(args.results)], concurrency=2)
        saved = stored(database_url, activity_id, args.anonymous)
    hello_per_s = (hello_before.per_s + hello_after.per_s) / 2
    emit({
        "submit_per_s": round(rush.per_s, 1),
        "hello_per_s": round(hello_per_s, 1),
        "ratio": round(rush.per_s / hello_per_s, 3) if hello_per_s else 0.0,
        "p50_ms": round(rush.p50_ms, 1),
        "p99_ms": round(rush.p99_ms, 1),
        "results_p95_ms": round(percentile(results.latencies_ms, 95), 1),
        "errors": rush.errors + results.errors,
        "lost": args.learners - saved,
        "answers": saved,
        "anonymous": args.anonymous,
        "cpu_ms_per_submit": {"app": round(app_cpu * 1000 / rush.count, 2), "db": round(db_cpu * 1000 / rush.count, 2)},
        "completions_done_after_s": round(lag, 1),
        "worker_cpu_ms_per_submit": round(worker_cpu * 1000 / rush.count, 2),
    })


if __name__ == "__main__":
    main()
