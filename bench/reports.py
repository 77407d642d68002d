"""Benchmark: the municipal dashboard, the platform comparison and a 1,000,000-row export.

Uses a dedicated PostgreSQL database (``--database``, default ``lms_bench_reports``) filled
by ``lms synth`` (200,000 staff in 63 municipalities, 2,000 courses, 2,000,000 enrollments
by default); the database is kept for the next run (``--fresh`` rebuilds it), because
generating it takes minutes. Starts gunicorn (2 sync workers, rate limits on) against it.

For each page: 5 warm-up requests, then 50 measured requests with a write to the
underlying data between requests (an enrollment and a completion change in the measured
municipality, through the ORM, so that the dashboard summaries are recomputed in the
write's transaction as in the app), so that no cache can answer for the database. The
bare SQL the page needs (the statements behind its figures: for the dashboard, the
summary reads of ``reports.dashboard_statements``) is measured in the same run, the same
way. ``write_p50_ms``/``write_p95_ms``: the dashboard's writes, summary upkeep included. Then one
export of the completion records of every municipality and year (about 1,000,000 rows
with the default size) as CSV, measuring rows/s and the peak RSS of the gunicorn worker
serving it.

Prints one JSON object: dashboard_p95_ms, dashboard_sql_ms, dashboard_ratio,
platform_p95_ms, platform_sql_ms, platform_ratio, export_rows_per_s, export_peak_rss_mb,
plus the data-set size. Targets: dashboard_p95_ms <= 200, platform_p95_ms <= 1000,
export_peak_rss_mb <= 200.

    .venv/bin/python bench/reports.py [--users 200000 --courses 2000 --enrollments 2000000]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_ADMIN_URL, Agent, Gunicorn, bench_app, emit, percentile, request, sign_in_demo  # noqa: E402

WARMUP = 5
MEASURED = 50


def ensure_database(name: str, fresh: bool, users: int, courses: int, enrollments: int, log) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(PG_ADMIN_URL)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if exists and fresh:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE "{name}"'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    with bench_app(url):
        from sqlalchemy import func, select, text

        from lms.enrollment.models import Enrollment
        from lms.extensions import db
        from lms.synth import generate_synthetic

        # Indexes added to the models since the data set was made (create_all skips them).
        created = []
        for table in db.metadata.sorted_tables:
            for index in table.indexes:
                if not db.session.scalar(select(func.count()).select_from(text("pg_indexes")).where(
                        text("indexname = :n")).params(n=index.name)):
                    index.create(db.engine)
                    created.append(index.name)
        # Tables added to the models since the data set was made (the dashboard summaries).
        missing = [t for t in db.metadata.sorted_tables if not db.inspect(db.engine).has_table(t.name)]
        if missing:
            db.metadata.create_all(db.engine, tables=missing)
            created.extend(t.name for t in missing)
        if created:
            log(f"created indexes {created}; vacuuming …")
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        have = db.session.scalar(select(func.count()).select_from(Enrollment))
        if have < enrollments * 0.95:
            log(f"generating the data set ({users} staff, {courses} courses, {enrollments} enrollments) …")
            started = time.monotonic()
            generate_synthetic(users=users, municipalities=63, courses=courses, enrollments=enrollments,
                               seed=1, force=bool(have), echo=log)
            log(f"generated in {time.monotonic() - started:.0f} s")
        else:
            log(f"reusing {name} ({have} enrollments)")
            from lms.completion.models import CourseYearSummary
            from lms.completion.summary import rebuild

            if not db.session.scalar(select(func.count()).select_from(CourseYearSummary)):
                log("filling the dashboard summaries …")
                rebuild(db.session)
                db.session.commit()
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE completion_course_summary, completion_staff_summary"))
    return url


class Writer:
    """One small write to the data the pages aggregate, between measured requests."""

    def __init__(self, municipality_id: int | None, fiscal_year: int, seed: int = 3):
        from sqlalchemy import select

        from lms.common.timeutil import fiscal_year_bounds
        from lms.courses.models import TrainingSession
        from lms.extensions import db
        from lms.roster.models import StaffMember

        self.rng = random.Random(seed)
        q = select(StaffMember.id, StaffMember.municipality_id).limit(5000)
        if municipality_id is not None:
            q = q.where(StaffMember.municipality_id == municipality_id)
        self.staff = db.session.execute(q).all()
        start, end = fiscal_year_bounds(fiscal_year)
        self.sessions = db.session.execute(
            select(TrainingSession.id, TrainingSession.course_id)
            .where(TrainingSession.starts_at >= start, TrainingSession.starts_at < end).limit(2000)
        ).all()
        self.fiscal_year = fiscal_year
        self.n = 0
        self.times: list[float] = []

    def write(self) -> None:
        """As the app writes: the enrollment published (``enrollment_status_changed``), the
        completion reported to the summaries (as lms.completion.services does), which are
        recomputed for the keys this write touches, in its transaction. Timed."""
        from sqlalchemy import select

        from lms.common.signals import enrollment_status_changed
        from lms.common.timeutil import utcnow
        from lms.completion import summary
        from lms.completion.models import Completion
        from lms.completion.services import new_certificate_serial
        from lms.enrollment.models import Enrollment
        from lms.extensions import db

        started = time.perf_counter()
        staff_id, muni = self.rng.choice(self.staff)
        session_id, course_id = self.rng.choice(self.sessions)
        now = utcnow()
        exists = db.session.scalar(select(Enrollment.id).where(
            Enrollment.session_id == session_id, Enrollment.staff_member_id == staff_id))
        if exists is None:
            enrollment = Enrollment(
                session_id=session_id, staff_member_id=staff_id, municipality_id=muni, status="confirmed",
                source="self", arrival_seq=0, requested_at=now, confirmed_at=now, late_cancellation=False,
                reason="", updated_at=now)
            db.session.add(enrollment)
            db.session.flush()
            enrollment_status_changed.send(enrollment, old_status=None, new_status="confirmed", actor=None,
                                           notice=None, position=None)
        completion = db.session.scalar(select(Completion).where(
            Completion.staff_member_id == staff_id, Completion.course_id == course_id,
            Completion.fiscal_year == self.fiscal_year))
        if completion is None:
            db.session.add(Completion(
                staff_member_id=staff_id, course_id=course_id, municipality_id=muni, fiscal_year=self.fiscal_year,
                status="completed", method="live", completed_at=now, certificate_serial=new_certificate_serial(
                    self.fiscal_year), reason="", created_at=now, updated_at=now))
        else:
            muni = completion.municipality_id
            db.session.delete(completion)
        summary.update_for_completion(db.session(), muni, self.fiscal_year, course_id, staff_id)
        db.session.commit()
        self.times.append((time.perf_counter() - started) * 1000)
        self.n += 1


def measure_page(base_url: str, agent: Agent, path: str, writer: Writer) -> list[float]:
    times = []
    for i in range(WARMUP + MEASURED):
        writer.write()
        response = request(base_url, "GET", path, agent=agent)
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        if i >= WARMUP:
            times.append(response.elapsed_ms)
    return times


def measure_sql(run_aggregates, writer: Writer, scoped: bool) -> list[float]:
    """The page's aggregate statements run bare (same per-transaction settings as the page)."""
    from lms.completion.reports import tune_for_reports
    from lms.extensions import db

    times = []
    for i in range(WARMUP + MEASURED):
        writer.write()
        started = time.perf_counter()
        tune_for_reports(scoped)
        run_aggregates()
        elapsed = (time.perf_counter() - started) * 1000
        db.session.rollback()
        if i >= WARMUP:
            times.append(elapsed)
    return times


def worker_pids(master_pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(master_pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stream_get(base_url: str, path: str, agent: Agent) -> tuple[int, int, int]:
    """GET over HTTP/1.0 (no chunked framing: the body runs until the server closes), read
    in blocks and counted on the fly: (status, body bytes, lines). Nothing is kept."""
    host, port = urlsplit(base_url).hostname, urlsplit(base_url).port
    with socket.create_connection((host, port)) as sock:
        cookie = agent.cookie_header()
        sock.sendall((f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            block = sock.recv(65536)
            if not block:
                break
            head += block
        head, _, body = head.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        size, lines = len(body), body.count(b"\n")
        while block := sock.recv(1 << 20):
            size += len(block)
            lines += block.count(b"\n")
    return status, size, lines


def measure_export(base_url: str, agent: Agent, path: str, master_pid: int) -> dict:
    import psutil

    peak = {"rss": 0}
    baseline = {pid: psutil.Process(pid).memory_info().rss for pid in worker_pids(master_pid)}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in worker_pids(master_pid):
                with contextlib.suppress(psutil.NoSuchProcess):
                    peak["rss"] = max(peak["rss"], psutil.Process(pid).memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    status, size, lines = stream_get(base_url, path, agent)
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if status != 200:
        raise RuntimeError(f"export answered {status}")
    rows = lines - 1  # minus the header line
    return {
        "rows": rows,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed) if elapsed else 0,
        "peak_rss_mb": round(peak["rss"] / 2**20, 1),
        "worker_rss_before_mb": round(max(baseline.values(), default=0) / 2**20, 1),
        "bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="lms_bench_reports")
    parser.add_argument("--fresh", action="store_true", help="drop and regenerate the data set")
    parser.add_argument("--users", type=int, default=200000)
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument("--enrollments", type=int, default=2000000)
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    url = ensure_database(args.database, args.fresh, args.users, args.courses, args.enrollments, log)
    with bench_app(url):
        from sqlalchemy import func, select

        from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, User, UserRole
        from lms.completion import reports
        from lms.completion.models import Completion
        from lms.enrollment.models import Enrollment
        from lms.extensions import db
        from lms.roster.models import StaffMember

        fy = reports.current_fiscal_year()
        # The municipality with the most staff: the heaviest municipal dashboard.
        municipality_id = db.session.execute(
            select(StaffMember.municipality_id).group_by(StaffMember.municipality_id)
            .order_by(func.count().desc()).limit(1)
        ).scalar()
        admin_id = db.session.scalar(
            select(User.id).join(UserRole).where(UserRole.role == MUNICIPAL_ADMIN, User.is_demo.is_(True),
                                                 User.municipality_id == municipality_id).limit(1))
        platform_id = db.session.scalar(
            select(User.id).join(UserRole).where(UserRole.role == PLATFORM_ADMIN, User.is_demo.is_(True)).limit(1))
        size = {
            "staff": db.session.scalar(select(func.count()).select_from(StaffMember)),
            "enrollments": db.session.scalar(select(func.count()).select_from(Enrollment)),
            "completions": db.session.scalar(select(func.count()).select_from(Completion)),
            "municipality_staff": db.session.scalar(
                select(func.count()).select_from(StaffMember).where(StaffMember.municipality_id == municipality_id)),
        }
        db.session.rollback()
        log(f"data set: {size}")

        env = {"GUNICORN_CMD_ARGS": "--timeout 600", "LMS_LIMIT_EXPORT": "100/minute"}
        with Gunicorn(url, workers=2, env=env) as server:
            admin, platform = Agent(), Agent()
            sign_in_demo(server.base_url, admin, admin_id)
            sign_in_demo(server.base_url, platform, platform_id)

            writer = Writer(municipality_id, fy)
            log("dashboard …")
            page = measure_page(server.base_url, admin, f"/completion/dashboard?fy={fy}", writer)
            def dashboard_aggregates():
                for statement in reports.dashboard_statements(municipality_id, fy):
                    db.session.execute(statement).all()

            sql = measure_sql(dashboard_aggregates, writer, scoped=True)
            log(f"dashboard p95 {percentile(page, 95):.1f} ms, bare SQL p95 {percentile(sql, 95):.1f} ms")

            all_writer = Writer(None, fy, seed=5)
            log("platform comparison …")
            platform_page = measure_page(server.base_url, platform, f"/completion/compare?fy={fy}", all_writer)

            def comparison_aggregates():
                course_ids = reports.default_comparison_courses(fy)  # itself a GROUP BY
                db.session.execute(reports.comparison_query(fy, course_ids)).all()

            platform_sql = measure_sql(comparison_aggregates, all_writer, scoped=False)
            log(f"comparison p95 {percentile(platform_page, 95):.1f} ms, "
                f"bare SQL p95 {percentile(platform_sql, 95):.1f} ms")

            log("export …")
            export = measure_export(server.base_url, platform, "/completion/export/records.csv?fy=all&municipality=all",
                                    server.proc.pid)
            log(f"export {export}")

    dashboard_p95, dashboard_sql = percentile(page, 95), percentile(sql, 95)
    platform_p95, platform_sql = percentile(platform_page, 95), percentile(platform_sql, 95)
    emit({
        "dashboard_p95_ms": round(dashboard_p95, 1),
        "dashboard_sql_ms": round(dashboard_sql, 1),
        "dashboard_ratio": round(dashboard_p95 / dashboard_sql, 2) if dashboard_sql else None,
        "platform_p95_ms": round(platform_p95, 1),
        "platform_sql_ms": round(platform_sql, 1),
        "platform_ratio": round(platform_p95 / platform_sql, 2) if platform_sql else None,
        "export_rows_per_s": export["rows_per_s"],
        "export_peak_rss_mb": export["peak_rss_mb"],
        "export_rows": export["rows"],
        "export_seconds": export["seconds"],
        "export_worker_rss_before_mb": export["worker_rss_before_mb"],
        "dashboard_p50_ms": round(percentile(page, 50), 1),
        "platform_p50_ms": round(percentile(platform_page, 50), 1),
        # The cost moved to the writes: one enrollment + completion change, committed with
        # the summary keys it touches recomputed (lms.completion.summary).
        "write_p50_ms": round(percentile(writer.times, 50), 1),
        "write_p95_ms": round(percentile(writer.times, 95), 1),
        "requests_per_page": MEASURED,
        "writes_between_requests": writer.n + all_writer.n,
        **{f"data_{k}": v for k, v in size.items()},
        "fiscal_year": fy,
    })


if __name__ == "__main__":
    main()
