"""Approvals at scale: 10,000 pending requests across 62 municipalities and 400 所属, the
所属長's and the training office's approval pages, and 500 approvals by 20 approvers at once.

gunicorn (sync workers, 4 by default; --workers) on PostgreSQL with production's settings
where a bench allows them (bench/common.py), the worker's queue on Redis. The data: 62
municipalities, 400 所属 (each with its 所属長, a demo user), 10,000 learners with one
pending request each on courses whose requests go through the 所属長 and then the training
office — half still waiting for their 所属長, half approved by them and waiting for the
office — and one training office member (a municipal admin) per municipality. The sessions
have fewer seats than the requests that reach them, so the last approvals go to the waitlist.

Every approver signs in through the demo sign-in from a loopback address of their own, then:

* ``supervisor_page_p95_ms``: 400 GETs of /approvals (each 所属長 once, ~12 requests each);
* ``office_page_p95_ms``: 310 GETs of /municipal (each office 5 times, ~160 requests each);
  both pages as people open them, a few at a time (as many connections as workers);
* ``approve_per_s``: 500 approvals through the office page's real form posts (CSRF token from
  the page, the page as Referer) by 20 office members at once (20 connections, 25 each).

Prints one JSON object: supervisor_page_p95_ms, office_page_p95_ms, approve_per_s,
approve_p99_ms, approved, errors, overbooked (sessions whose confirmed seats exceed their
capacity or whose counters disagree with the rows). Targets: pages p95 <= 200 ms,
errors = 0, overbooked = 0.

    .venv/bin/python bench/approvals.py [--requests 10000] [--workers 4]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    Gunicorn,
    Req,
    bench_app,
    csrf_token,
    emit,
    fresh_database,
    percentile,
    run_load,
)
from bench.enroll_rush import sign_in_everyone  # noqa: E402

DEPARTMENTS = 400
COURSES = 20


def create_data(database_url: str, requests: int) -> dict:
    from sqlalchemy import insert, select

    from lms.auth.models import MUNICIPAL_ADMIN, User, UserRole
    from lms.common.timeutil import utcnow
    from lms.courses.models import PUBLISHED, TEAMS, Course, TrainingSession
    from lms.enrollment.models import OFFICE_STEP, PENDING, SUPERVISOR_STEP, Enrollment
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.roster.models import ACTIVE, StaffMember

    with bench_app(database_url):
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()[:62]
        now = utcnow().replace(microsecond=0)
        sessions = []
        for n in range(COURSES):
            course = Course(title=f"政策形成研修 {n + 1}", summary="ベンチマーク用の研修", status=PUBLISHED, published_at=now,
                            eligible_all=True, requires_approval=True, supervisor_approval=True,
                            search_text=f"政策形成研修 {n + 1}")
            db.session.add(course)
            db.session.flush()
            start = now + timedelta(days=30 + n)
            session = TrainingSession(
                course_id=course.id, title="第1回", starts_at=start, ends_at=start + timedelta(hours=3),
                delivery=TEAMS, capacity=20, enroll_opens_at=now - timedelta(days=10),
                enroll_closes_at=start - timedelta(days=1), cancel_deadline=start - timedelta(days=2),
                join_url="https://teams.microsoft.com/l/meetup-join/19%3ameeting_bench%40thread.v2/0",
            )
            db.session.add(session)
            sessions.append(session)
        db.session.flush()
        tenant = str(uuid.uuid4())

        def users(prefix: str, count: int, municipality_of) -> list:
            db.session.execute(insert(User), [{
                "tenant_id": tenant, "object_id": str(uuid.uuid4()), "display_name": f"{prefix} {n:05d}",
                "email": f"{prefix}{n:05d}@bench.example.lg.jp", "municipality_id": municipality_of(n),
                "is_demo": True, "active": True, "session_version": 1,
            } for n in range(count)])
            return db.session.execute(select(User.id, User.municipality_id, User.email, User.display_name)
                                      .where(User.tenant_id == tenant, User.email.like(f"{prefix}%"))
                                      .order_by(User.id)).all()

        # 400 所属, each in one municipality (6 or 7 per municipality), with its 所属長.
        department_of = [(municipalities[d % 62], f"第{d // 62 + 1}課") for d in range(DEPARTMENTS)]
        heads = users("head", DEPARTMENTS, lambda d: department_of[d][0])
        learners = users("learner", requests, lambda n: department_of[n % DEPARTMENTS][0])
        offices = users("office", 62, lambda m: municipalities[m])
        db.session.execute(insert(UserRole), [{"user_id": uid, "role": MUNICIPAL_ADMIN} for uid, *_ in offices])
        staff = [{
            "municipality_id": mid, "employee_number": f"H{uid:07d}", "full_name": name, "department": department_of[d][1],
            "job_title": "課長", "sign_in_name": email, "email": email, "status": ACTIVE, "source": "demo",
            "user_id": uid, "department_head": True,
        } for d, (uid, mid, email, name) in enumerate(heads)]
        staff += [{
            "municipality_id": mid, "employee_number": f"L{uid:07d}", "full_name": name,
            "department": department_of[n % DEPARTMENTS][1], "job_title": "主事", "sign_in_name": email, "email": email,
            "status": ACTIVE, "source": "demo", "user_id": uid, "department_head": False,
        } for n, (uid, mid, email, name) in enumerate(learners)]
        db.session.execute(insert(StaffMember), staff)
        member_of = dict(db.session.execute(select(StaffMember.user_id, StaffMember.id)).all())
        db.session.execute(insert(Enrollment), [{
            "session_id": sessions[n % COURSES].id, "staff_member_id": member_of[uid], "municipality_id": mid,
            "status": PENDING, "source": "self", "arrival_seq": n // COURSES + 1, "requested_at": now - timedelta(days=2),
            "approval_step": OFFICE_STEP if (n // DEPARTMENTS) % 2 else SUPERVISOR_STEP, "requested_by_id": uid,
        } for n, (uid, mid, _email, _name) in enumerate(learners)])
        db.session.commit()
        return {
            "heads": [uid for uid, *_ in heads],
            "offices": [(uid, mid) for uid, mid, *_ in offices],
            "sessions": [s.id for s in sessions],
        }


def office_requests(database_url: str, municipality_id: int, limit: int) -> list[int]:
    from sqlalchemy import select

    from lms.enrollment.models import OFFICE_STEP, PENDING, Enrollment
    from lms.extensions import db

    with bench_app(database_url):
        return list(db.session.scalars(
            select(Enrollment.id).where(Enrollment.municipality_id == municipality_id, Enrollment.status == PENDING,
                                        Enrollment.approval_step == OFFICE_STEP)
            .order_by(Enrollment.requested_at, Enrollment.id).limit(limit)))


def overbooked(database_url: str, session_ids: list[int]) -> int:
    from sqlalchemy import func, select

    from lms.courses.models import TrainingSession
    from lms.enrollment.models import CONFIRMED, Enrollment
    from lms.extensions import db

    with bench_app(database_url):
        bad = 0
        for sid in session_ids:
            session = db.session.get(TrainingSession, sid)
            rows = db.session.scalar(select(func.count()).select_from(Enrollment)
                                     .where(Enrollment.session_id == sid, Enrollment.status == CONFIRMED))
            if rows > session.capacity or rows != session.confirmed_count:
                bad += 1
        return bad


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--approvers", type=int, default=20)
    parser.add_argument("--approvals", type=int, default=500)
    args = parser.parse_args()
    with fresh_database("lms_bench_approvals") as url:
        data = create_data(url, args.requests)
        with Gunicorn(url, workers=args.workers) as server:
            base = server.base_url
            heads, _tokens = sign_in_everyone(base, data["heads"])
            office_ids = [uid for uid, _mid in data["offices"]]
            offices, _tokens = sign_in_everyone(base, office_ids)
            # Warm up every worker once (imports, templates, the first connections).
            run_load(base, [Req("GET", "/approvals", agent=heads[i]) for i in range(8)], concurrency=8)

            # The pages as their people open them: a few at a time (as many as there are workers).
            supervisor = run_load(base, [Req("GET", "/approvals", agent=agent) for agent in heads],
                                  concurrency=args.workers)
            office = run_load(base, [Req("GET", "/municipal", agent=offices[i % len(offices)]) for i in range(310)],
                              concurrency=args.workers)

            # 500 approvals by 20 office members: each takes its page's form (CSRF token), then
            # approves its municipality's oldest requests waiting for the office.
            per = args.approvals // args.approvers
            posts = []
            for index in range(args.approvers):
                uid, mid = data["offices"][index]
                page = run_load(base, [Req("GET", "/municipal", agent=offices[index])], concurrency=1,
                                keep_responses=True)
                token = csrf_token(page.responses[0].text)
                for enrollment_id in office_requests(url, mid, per):
                    posts.append(Req("POST", f"/municipal/enrollments/{enrollment_id}/approve", agent=offices[index],
                                     form={"csrf_token": token},
                                     headers={"Referer": f"{base}/municipal"}))
            approvals = run_load(base, posts, concurrency=args.approvers, ok=(302, 303))
        emit({
            "supervisor_page_p95_ms": round(percentile(supervisor.latencies_ms, 95), 1),
            "supervisor_page_p50_ms": round(percentile(supervisor.latencies_ms, 50), 1),
            "office_page_p95_ms": round(percentile(office.latencies_ms, 95), 1),
            "office_page_p50_ms": round(percentile(office.latencies_ms, 50), 1),
            "approve_per_s": round(approvals.per_s, 1),
            "approve_p99_ms": round(approvals.p99_ms, 1),
            "approved": approvals.ok,
            "errors": supervisor.errors + office.errors + approvals.errors,
            "error_samples": (supervisor.error_samples + office.error_samples + approvals.error_samples)[:5],
            "overbooked": overbooked(url, data["sessions"]),
            "requests": args.requests, "departments": DEPARTMENTS, "workers": args.workers,
        })


if __name__ == "__main__":
    main()
