"""Benchmark: the 年間研修計画's allocation (割当) of a whole plan.

Builds, in a fresh PostgreSQL database (dropped at the end), a fiscal year's plan of 2,000
sessions (400 courses x 5, capacities 20-100) and a demand survey from the 62
municipalities (each asks for about a third of the sessions, 1-15 seats, priorities 1-5),
then runs the whole plan's allocation through the service the platform admin's button calls
(``lms.planning.services.run_allocation``, one transaction, committed), twice.

Prints one JSON object: allocate_s (the first run, wall clock, including the commit),
allocate_again_s, capacity_violations (sessions whose allocations exceed capacity),
over_request (rows above their request), deterministic (both runs gave the same seats),
sessions, demand_rows, allocation_rows. Targets: allocate_s <= 2, capacity_violations = 0,
over_request = 0, deterministic true.

Then the allocation is published as the sessions' quotas, every session's nomination
deadline is moved into the past, and the worker's release runs (``release_due_quotas``:
one transaction per session, each releasing its quotas and promoting its waitlist):
release_s (wall clock for all 2,000), released (sessions), quota_rows_left (must be 0).

    .venv/bin/python bench/allocation.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_app, emit, fresh_database  # noqa: E402

COURSES = 400
SESSIONS_PER_COURSE = 5


def main() -> None:
    from sqlalchemy import func, insert, select

    from lms.auth.models import PLATFORM_ADMIN, User, UserRole
    from lms.common.timeutil import fiscal_year_of, utcnow
    from lms.courses.models import PUBLISHED, SCHEDULED, Course, TrainingSession
    from lms.extensions import db
    from lms.municipalities.models import Municipality
    from lms.planning import services
    from lms.planning.models import PlanAllocation, PlanDemand

    rng = random.Random(18)
    with fresh_database("lms_bench_alloc") as url, bench_app(url):
        municipalities = db.session.scalars(select(Municipality.id).order_by(Municipality.id)).all()
        admin = User(tenant_id="bench", object_id="bench-platform-admin", display_name="計画 担当",
                     email="plan@example.lg.jp", municipality_id=municipalities[0])
        db.session.add(admin)
        db.session.flush()
        db.session.add(UserRole(user_id=admin.id, role=PLATFORM_ADMIN))
        # Sessions in the next fiscal year, so that all start in one year and in the future.
        year = fiscal_year_of(utcnow()) + 1
        from lms.common.timeutil import fiscal_year_bounds

        start, _end = fiscal_year_bounds(year)
        now = utcnow()
        db.session.execute(insert(Course), [
            {"title": f"計画研修 {n}", "summary": "", "description_md": "", "status": PUBLISHED, "published_at": now,
             "search_text": f"計画研修 {n}"} for n in range(COURSES)])
        course_ids = db.session.scalars(select(Course.id).order_by(Course.id)).all()
        rows = []
        for i, course_id in enumerate(course_ids):
            for k in range(SESSIONS_PER_COURSE):
                begins = start + timedelta(days=(i * 7 + k * 31) % 360, hours=1)
                rows.append({"course_id": course_id, "title": f"第{k + 1}回", "starts_at": begins,
                             "ends_at": begins + timedelta(hours=2), "delivery": "teams", "status": SCHEDULED,
                             "capacity": rng.randint(20, 100), "revision": 1})
        db.session.execute(insert(TrainingSession), rows)
        db.session.commit()
        plan = services.create_plan(admin, year, survey_unit="session")
        services.publish_plan(admin, plan, utcnow() + timedelta(days=30))
        session_ids = db.session.scalars(select(TrainingSession.id)).all()
        demand = [{"plan_id": plan.id, "session_id": sid, "municipality_id": mid, "requested": rng.randint(1, 15),
                   "priority": rng.randint(1, 5), "comment": "", "updated_at": now}
                  for sid in session_ids for mid in municipalities if rng.random() < 0.33]
        db.session.execute(insert(PlanDemand), demand)
        db.session.commit()

        def run() -> tuple[float, dict]:
            started = time.perf_counter()
            current = db.session.get_one(type(plan), plan.id)
            if os.environ.get("BENCH_PROFILE"):
                import cProfile
                import pstats

                with cProfile.Profile() as profile:
                    services.run_allocation(admin, current)
                pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
            else:
                services.run_allocation(admin, current)
            db.session.commit()
            elapsed = time.perf_counter() - started
            seats = {(r.session_id, r.municipality_id): r.seats for r in db.session.execute(
                select(PlanAllocation.session_id, PlanAllocation.municipality_id, PlanAllocation.seats))}
            return elapsed, seats

        first_s, first = run()
        db.session.expire_all()
        again_s, again = run()
        over_capacity = db.session.scalar(
            select(func.count()).select_from(
                select(PlanAllocation.session_id).join(TrainingSession, TrainingSession.id == PlanAllocation.session_id)
                .group_by(PlanAllocation.session_id, TrainingSession.capacity)
                .having(func.sum(PlanAllocation.seats) > TrainingSession.capacity).subquery()))
        over_request = db.session.scalar(select(func.count()).where(PlanAllocation.seats > PlanAllocation.requested))

        # Publish as quotas (bulk: the per-session publication is the page's), then the deadline passes.
        from sqlalchemy import update

        from lms.courses.models import SessionQuota
        from lms.planning.tasks import release_due_quotas

        db.session.execute(insert(SessionQuota), [
            {"session_id": sid, "municipality_id": mid, "seats": seats, "confirmed_count": 0}
            for (sid, mid), seats in first.items() if seats > 0])
        db.session.execute(update(TrainingSession).values(enroll_closes_at=utcnow() - timedelta(minutes=1),
                                                          enroll_opens_at=utcnow() - timedelta(days=30)))
        db.session.commit()
        started = time.perf_counter()
        released = release_due_quotas()
        release_s = time.perf_counter() - started
        left = db.session.scalar(select(func.count()).select_from(SessionQuota))
        emit({
            "allocate_s": round(first_s, 3),
            "allocate_again_s": round(again_s, 3),
            "capacity_violations": over_capacity,
            "over_request": over_request,
            "deterministic": first == again,
            "sessions": len(session_ids),
            "municipalities": len(municipalities),
            "demand_rows": len(demand),
            "allocation_rows": len(first),
            "release_s": round(release_s, 3),
            "released": released,
            "quota_rows_left": left,
        })


if __name__ == "__main__":
    main()
