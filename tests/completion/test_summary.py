"""The dashboard summaries equal a fresh aggregate after every kind of change.

The summaries follow the domain events (lms/completion/receivers.py). After each change
(through the services where there is one; a row written directly is published as the
services publish it), every view of the dashboard
— 千代田区, 中央区 and the platform; all courses and each course — built from the
summaries is compared with the same view aggregated afresh from the base tables
(``fresh_dashboard`` in tests/completion/oracle.py), and ``summary.check`` finds no difference.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select, text, update

from lms.attendance import services as attendance_services
from lms.common.database import run_in_transaction
from lms.common.signals import enrollment_status_changed, session_updated, staff_member_moved
from lms.common.timeutil import as_utc, fiscal_year_of
from lms.completion import reports, services, summary
from lms.completion.models import Completion, CourseYearSummary, StaffYearSummary
from lms.courses import services as courses_services
from lms.enrollment import services as enrollment_services
from lms.enrollment.models import Enrollment
from lms.roster import services as roster_services
from tests.completion.oracle import fresh_dashboard


def assert_consistent(db, d, years=None):
    report = summary.check(db.session)
    assert report.ok, report.differences
    for fy in years or (d["fy"],):
        for scope in (d["chiyoda"], d["chuo"], None):
            for course_id in (None, d["a"].id, d["b"].id):
                assert reports.dashboard(scope, fy, course_id) == fresh_dashboard(scope, fy, course_id), (
                    scope, fy, course_id)
    db.session.rollback()
    return report


def course_row(d, scope, course, fy=None):
    return next((r for r in reports.dashboard(scope, fy or d["fy"]).courses if r.course_id == course.id), None)


def stored_summaries(db):
    return {model: sorted(tuple(r) for r in db.session.execute(select(model.__table__)))
            for model in (CourseYearSummary, StaffYearSummary)}


def test_known_data_summaries_match(known_data, db):
    d = known_data
    report = assert_consistent(db, d)
    assert report.course_rows == 3 and report.staff_rows == 4  # A in both, B in 千代田区; s1, s2, s3, s5
    a = course_row(d, d["chiyoda"], d["a"])
    assert (a.enrolled, a.attended, a.completed_live, a.not_yet) == (3, 1, 1, 2)


def test_attendance_and_viewing_changes(known_data, db, attend, watch, make_video):
    d = known_data
    s1, s2, s3, _s4, s5 = d["staff"]
    attend(s2, d["session"], 100)  # s2 now completes A (live)
    assert course_row(d, d["chiyoda"], d["a"]).completed_live == 2
    assert_consistent(db, d)
    attend(s1, d["session"], 10)  # s1's basis disappears: the completion is revoked
    assert course_row(d, d["chiyoda"], d["a"]).completed_live == 1
    assert_consistent(db, d)
    watch(s1, make_video(d["b"]), 100)  # s1 completes B (archive)
    assert course_row(d, d["chiyoda"], d["b"]).completed_archive == 2
    assert_consistent(db, d)
    watch(s3, make_video(d["a"]), 100)  # A counts attendance only: viewing changes nothing
    assert_consistent(db, d)


def test_enrollment_status_changes_through_the_service(known_data, db, make_user, make_session, make_staff):
    d = known_data
    admin = make_user("platform_admin")
    later = make_session(d["a"], starts_in=timedelta(days=3), capacity=5)
    newcomer = make_staff(full_name="新規 受講者", department="税務課", job_title="係長")
    enrollment = enrollment_services.nominate(later.id, newcomer.id, admin).enrollment
    assert enrollment.status == "confirmed"
    if later.starts_at < reports.fiscal_year_bounds(d["fy"])[1]:
        assert course_row(d, d["chiyoda"], d["a"]).enrolled == 4
    assert_consistent(db, d, years=(d["fy"], d["fy"] + 1))
    enrollment_services.cancel_enrollment(enrollment.id, admin, reason="都合により")
    assert course_row(d, d["chiyoda"], d["a"]).enrolled == 3
    assert_consistent(db, d, years=(d["fy"], d["fy"] + 1))


def test_waitlist_and_promotion_keep_the_summaries(known_data, db, make_user, make_session, make_staff):
    """Waitlisted arrivals leave the summaries alone (they count confirmed enrollments only);
    a promotion and a cancellation of someone waiting are still reflected exactly."""
    d = known_data
    admin = make_user("platform_admin")
    later = make_session(d["a"], starts_in=timedelta(days=3), capacity=1)
    first, second, third = (make_staff(full_name=f"待機 {n}", department="税務課", job_title="主事") for n in "一二三")
    seated = enrollment_services.nominate(later.id, first.id, admin).enrollment
    waiting = enrollment_services.nominate(later.id, second.id, admin).enrollment
    behind = enrollment_services.nominate(later.id, third.id, admin).enrollment
    assert (seated.status, waiting.status, behind.status) == ("confirmed", "waitlisted", "waitlisted")
    years = (d["fy"], d["fy"] + 1)
    assert_consistent(db, d, years=years)
    enrollment_services.cancel_enrollment(behind.id, admin, reason="都合により")  # waiting -> cancelled
    assert_consistent(db, d, years=years)
    enrollment_services.cancel_enrollment(seated.id, admin, reason="都合により")  # promotes `waiting`
    assert db.session.get(Enrollment, waiting.id).status == "confirmed"
    assert_consistent(db, d, years=years)


def test_manual_completion_and_revocation(known_data, db, make_user):
    d = known_data
    s1, s2, _s3, s4, _s5 = d["staff"]
    trainer = make_user("platform_admin")
    done = services.complete_manually(s4.id, d["a"].id, d["fy"], trainer, "会場で受講（記録漏れ）")
    db.session.commit()
    assert course_row(d, d["chiyoda"], d["a"]).completed_manual == 1
    assert_consistent(db, d)
    services.revoke_completion(done.id, trainer, "誤登録")
    db.session.commit()
    assert course_row(d, d["chiyoda"], d["a"]).completed_manual == 0
    assert_consistent(db, d)
    first = db.session.scalar(select(Completion).where(Completion.staff_member_id == s1.id))
    services.revoke_completion(first.id, trainer, "不正受講")
    db.session.commit()
    assert_consistent(db, d)
    # The manual completion of a staff member who was only enrolled: counts as done.
    services.complete_manually(s2.id, d["a"].id, d["fy"], trainer, "補講で修了")
    db.session.commit()
    row = course_row(d, d["chiyoda"], d["a"])
    assert (row.completed_manual, row.not_yet) == (1, 2)
    assert_consistent(db, d)


def test_roster_transfer_and_move(known_data, db, make_user):
    d = known_data
    s1, s2, _s3, _s4, _s5 = d["staff"]
    admin = make_user("platform_admin")
    roster_services.transfer_staff(s1.id, "情報政策課", "主任", date.today(), admin)
    db.session.commit()
    deps = {g.name: g.completed for g in reports.dashboard(d["chiyoda"], d["fy"]).departments}
    assert deps.get("情報政策課") == 1
    assert_consistent(db, d)
    # Staff members moved to another municipality (no page offers it; whoever does it
    # publishes staff_member_moved): attendance counts where the staff member now is.
    s5 = d["staff"][4]
    for member, to in ((s2, d["chuo"]), (s5, d["chiyoda"])):
        old = member.municipality_id
        member.municipality_id = to
        db.session.flush()
        staff_member_moved.send(member, old_municipality_id=old, actor=admin)
        db.session.commit()
    assert course_row(d, d["chiyoda"], d["a"]).attended == 2  # s1, and s5 now
    assert course_row(d, d["chuo"], d["a"]).attended == 0  # s5's enrollment and completion stay in 中央区
    assert_consistent(db, d)


def test_session_rescheduled_into_another_year(known_data, db):
    """A past session moved back a year (the service only moves sessions into the future:
    written directly and published as it publishes its changes)."""
    d = known_data
    session = d["session"]
    start, _end = reports.fiscal_year_bounds(d["fy"])
    changes = {"starts_at": (session.starts_at, start - timedelta(days=10)),
               "ends_at": (session.ends_at, start - timedelta(days=10) + timedelta(hours=1))}
    session.starts_at, session.ends_at = changes["starts_at"][1], changes["ends_at"][1]
    db.session.flush()
    session_updated.send(session, actor=None, changes=changes)
    db.session.commit()
    assert course_row(d, d["chiyoda"], d["a"]) is None or course_row(d, d["chiyoda"], d["a"]).enrolled == 0
    assert course_row(d, d["chiyoda"], d["a"], fy=d["fy"] - 1).enrolled == 3
    assert_consistent(db, d, years=(d["fy"] - 1, d["fy"]))


def test_session_moved_into_the_next_year_through_the_service(known_data, db, make_user, make_session, make_staff):
    d = known_data
    admin = make_user("platform_admin")
    later = make_session(d["a"], starts_in=timedelta(days=3), capacity=5)
    newcomer = make_staff(full_name="翌年度 受講者", department="税務課", job_title="主事")
    enrollment_services.nominate(later.id, newcomer.id, admin)
    fy = fiscal_year_of(as_utc(later.starts_at))
    assert course_row(d, d["chiyoda"], d["a"], fy=fy).enrolled == (4 if fy == d["fy"] else 1)
    new_start = reports.fiscal_year_bounds(fy + 1)[0] + timedelta(days=10)
    data = courses_services.SessionInput(
        title=later.title, starts_at=new_start, ends_at=new_start + timedelta(hours=1), delivery=later.delivery,
        join_url=later.join_url, capacity=later.capacity, enroll_opens_at=as_utc(later.enroll_opens_at),
        enroll_closes_at=new_start - timedelta(hours=1), cancel_deadline=new_start - timedelta(hours=1))
    changes = run_in_transaction(courses_services.update_session, admin, later.id, data)
    assert "starts_at" in changes
    assert course_row(d, d["chiyoda"], d["a"], fy=fy + 1).enrolled == 1
    row = course_row(d, d["chiyoda"], d["a"], fy=fy)
    assert (row.enrolled if row else 0) == (3 if fy == d["fy"] else 0)
    assert_consistent(db, d, years=(d["fy"], fy, fy + 1))


def test_a_cancelled_session_leaves_the_summaries(known_data, db, make_user, make_session, make_staff):
    d = known_data
    admin = make_user("platform_admin")
    later = make_session(d["a"], starts_in=timedelta(days=3), capacity=5)
    for n in "一二":
        enrollment_services.nominate(later.id, make_staff(full_name=f"中止 {n}").id, admin)
    fy = fiscal_year_of(as_utc(later.starts_at))
    before = course_row(d, d["chiyoda"], d["a"], fy=fy).enrolled
    courses_services.cancel_session(admin, later, "講師の都合")
    row = course_row(d, d["chiyoda"], d["a"], fy=fy)
    assert (row.enrolled if row else 0) == before - 2
    assert_consistent(db, d, years=(d["fy"], fy))


def test_attendance_correction_through_the_service(known_data, db, make_user):
    d = known_data
    s2 = d["staff"][1]
    trainer = make_user("platform_admin")
    attendance_services.correct_attendance(d["session"], s2.id, True, "出席簿で確認", trainer, attended_pct=100)
    db.session.commit()
    row = course_row(d, d["chiyoda"], d["a"])
    assert (row.attended, row.completed_live, row.not_yet) == (2, 2, 1)
    assert_consistent(db, d)


def test_a_trainers_verdict_by_hand_counts_whatever_percentage_was_measured(known_data, db, make_user):
    """Teams measured 40 %; the trainer corrects the verdict to 出席 leaving the percentage blank
    (the form says it stays as it is): the learner looked present but was never completed."""
    d = known_data
    s2 = d["staff"][1]
    trainer = make_user("platform_admin")
    attendance_services.correct_attendance(d["session"], s2.id, False, "途中退席", trainer, attended_pct=40)
    db.session.commit()
    attendance_services.correct_attendance(d["session"], s2.id, True, "出席簿で確認", trainer)
    db.session.commit()
    row = course_row(d, d["chiyoda"], d["a"])
    assert (row.attended, row.completed_live, row.not_yet) == (2, 2, 1)
    assert_consistent(db, d)


def test_a_rolled_back_change_leaves_the_summaries(known_data, db, make_user):
    """The summaries follow a change inside its transaction, and a rollback takes them back."""
    d = known_data
    before = stored_summaries(db)
    row = Enrollment(session_id=d["session"].id, staff_member_id=d["staff"][3].id,
                     municipality_id=d["chiyoda"], status="confirmed", arrival_seq=99)
    db.session.add(row)
    db.session.flush()
    enrollment_status_changed.send(row, old_status=None, new_status="confirmed", actor=None, notice="confirmed",
                                   position=None)
    assert course_row(d, d["chiyoda"], d["a"]).enrolled == 4  # in the transaction
    db.session.rollback()
    assert stored_summaries(db) == before
    # Through a service: an attendance correction (and the completion it earns), rolled back.
    trainer = make_user("platform_admin")
    before = stored_summaries(db)
    attendance_services.correct_attendance(d["session"], d["staff"][1].id, True, "確認", trainer, attended_pct=100)
    assert (course_row(d, d["chiyoda"], d["a"]).attended, course_row(d, d["chiyoda"], d["a"]).completed_live) == (2, 2)
    db.session.rollback()
    assert stored_summaries(db) == before
    assert_consistent(db, d)


def test_check_finds_and_rebuild_repairs_a_difference(known_data, db, runner):
    d = known_data
    db.session.execute(update(CourseYearSummary).values(enrolled=CourseYearSummary.enrolled + 5))
    db.session.execute(StaffYearSummary.__table__.delete().where(StaffYearSummary.staff_member_id == d["staff"][1].id))
    db.session.commit()
    report = summary.check(db.session)
    assert not report.ok and len(report.differences) == 4
    result = runner.invoke(args=["lms", "completion-summary", "--check"])
    assert result.exit_code == 1 and "differ" in result.output
    result = runner.invoke(args=["lms", "completion-summary", "--rebuild"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert_consistent(db, d)
    result = runner.invoke(args=["lms", "completion-summary", "--check"])
    assert result.exit_code == 0 and "3" in result.output


def test_synthetic_data_set_has_consistent_summaries(runner, db):
    result = runner.invoke(args=["lms", "synth", "--users", "90", "--municipalities", "3", "--courses", "5",
                                 "--enrollments", "400", "--seed", "7"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    report = summary.check(db.session)
    assert report.ok, report.differences
    assert report.course_rows > 0 and report.staff_rows > 0
    fy = reports.current_fiscal_year()
    municipalities = db.session.scalars(select(Enrollment.municipality_id).distinct()).all()
    for scope in [*municipalities, None]:
        assert reports.dashboard(scope, fy) == fresh_dashboard(scope, fy)
        assert reports.dashboard(scope, fy - 1) == fresh_dashboard(scope, fy - 1)
    assert db.session.scalar(select(func.count()).select_from(CourseYearSummary)) == report.course_rows


def test_concurrent_writers_of_one_key_lose_nothing(known_data, db, app, make_staff):
    """Eight transactions enroll eight staff of one municipality in the same session and
    publish it at the same moment: each recomputes the same summary row, after the others."""
    import threading

    from tests.conftest import DB_KIND

    if DB_KIND != "postgresql":
        return  # SQLite has one writer at a time
    d = known_data
    staff_ids = [make_staff(full_name=f"同時 {i}").id for i in range(8)]
    session_id, chiyoda = d["session"].id, d["chiyoda"]
    barrier = threading.Barrier(len(staff_ids))
    errors = []

    def writer(staff_id):
        try:
            with app.app_context():
                row = Enrollment(session_id=session_id, staff_member_id=staff_id, municipality_id=chiyoda,
                                 status="confirmed", arrival_seq=1000 + staff_id)
                db.session.add(row)
                db.session.flush()
                barrier.wait(timeout=30)
                # Published as the enrollment area does: each writer recomputes the key.
                enrollment_status_changed.send(row, old_status=None, new_status="confirmed", actor=None,
                                               notice=None, position=None)
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(sid,)) for sid in staff_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    db.session.rollback()
    assert course_row(d, d["chiyoda"], d["a"]).enrolled == 3 + len(staff_ids)
    assert_consistent(db, d)


def test_rebuild_gathers_planner_statistics_first(known_data, db, runner):
    """After a bulk load (synth, an SQL import) the tables have no statistics yet; the rebuild
    analyzes what it reads before it plans its aggregates."""
    if db.engine.dialect.name == "postgresql":
        analyzed = text("SELECT min(coalesce(last_analyze, 'epoch')) FROM pg_stat_user_tables "
                        "WHERE relname IN ('enrollment', 'staff_member')")
    else:
        db.session.execute(text("ANALYZE"))  # creates sqlite_stat1
        db.session.execute(text("DELETE FROM sqlite_stat1"))
        db.session.commit()
        analyzed = text("SELECT count(DISTINCT tbl) FROM sqlite_stat1 WHERE tbl IN ('enrollment', 'staff_member')")
    before = db.session.execute(analyzed).scalar()
    db.session.rollback()
    result = runner.invoke(args=["lms", "completion-summary", "--rebuild"])
    assert result.exit_code == 0, result.output
    after = db.session.execute(analyzed).scalar()
    db.session.rollback()
    assert after > before
    if db.engine.dialect.name == "sqlite":
        assert after == 2
