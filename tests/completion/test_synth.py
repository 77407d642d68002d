"""The synthetic data set: consistent with the completion rules, and never mixed into real data."""

from __future__ import annotations

from sqlalchemy import func, select

from lms.completion.models import Completion
from lms.completion.services import recompute_completion
from lms.enrollment.models import Enrollment
from lms.roster.models import StaffMember

ARGS = ["lms", "synth", "--users", "120", "--municipalities", "4", "--courses", "6", "--enrollments", "500",
        "--seed", "5"]


def test_synth_refuses_a_database_with_real_data(runner, make_staff, db):
    make_staff(full_name="本物 職員", source="csv")
    result = runner.invoke(args=ARGS)
    assert result.exit_code != 0 and "non-synthetic" in result.output
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 0


def test_synth_generates_consistent_data(runner, db):
    result = runner.invoke(args=ARGS)
    assert result.exit_code == 0, result.output
    db.session.rollback()
    staff = db.session.scalar(select(func.count()).select_from(StaffMember).where(StaffMember.source == "synth"))
    assert staff == 120
    assert db.session.scalar(select(func.count(func.distinct(StaffMember.municipality_id)))) == 4
    assert 400 <= db.session.scalar(select(func.count()).select_from(Enrollment)) <= 500
    before = {
        (c.staff_member_id, c.course_id, c.fiscal_year): (c.status, c.method, c.completed_at)
        for c in db.session.scalars(select(Completion))
    }
    assert before, "some completions are generated"
    # Recomputing every (staff, course, year) with the service gives exactly the same completions.
    pairs = db.session.execute(select(Enrollment.staff_member_id, Enrollment.session_id)).all()
    from lms.courses.models import TrainingSession

    courses = dict(db.session.execute(select(TrainingSession.id, TrainingSession.course_id)).all())
    years = {fy for (_s, _c, fy) in before}
    for staff_id, session_id in pairs:
        for fy in years:
            recompute_completion(staff_id, courses[session_id], fy)
    db.session.flush()
    after = {
        (c.staff_member_id, c.course_id, c.fiscal_year): (c.status, c.method, c.completed_at)
        for c in db.session.scalars(select(Completion))
    }
    assert after == before
    db.session.rollback()
    # A second run is refused unless forced.
    again = runner.invoke(args=ARGS)
    assert again.exit_code != 0 and "already" in again.output
