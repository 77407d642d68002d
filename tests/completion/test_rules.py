"""Completion rules: modes, thresholds, idempotence, manual decisions, fiscal-year bounds."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.common.errors import InvalidInput, NotAllowed
from lms.common.timeutil import as_utc, fiscal_year_of, utcnow
from lms.completion.models import COMPLETED, REVOKED, Completion
from lms.completion.services import complete_manually, recompute_completion, revoke_completion
from tests.completion.conftest import tokyo


def completions(db, staff=None):
    q = select(Completion)
    if staff is not None:
        q = q.where(Completion.staff_member_id == staff.id)
    return db.session.scalars(q).all()


def test_live_attendance_at_threshold_completes(db, make_course, make_staff, past_session, attend):
    course = make_course(completion_mode="attendance", attendance_threshold_pct=75)
    session = past_session(course)
    staff = make_staff()
    attend(staff, session, 74)
    assert completions(db, staff) == []
    attend(staff, session, 75)
    [c] = completions(db, staff)
    assert (c.status, c.method, c.session_id) == (COMPLETED, "live", session.id)
    assert c.fiscal_year == fiscal_year_of(session.starts_at)
    assert c.completed_at == session.ends_at
    assert re.fullmatch(rf"MNB-{c.fiscal_year}-[A-Z2-7]{{16}}", c.certificate_serial)


def test_attendance_mode_ignores_archive(db, make_course, make_staff, make_video, watch):
    course = make_course(completion_mode="attendance")
    staff = make_staff()
    watch(staff, make_video(course), 100)
    assert completions(db, staff) == []


def test_archive_mode_uses_viewing_threshold(db, make_course, make_staff, make_video, watch, past_session, attend):
    course = make_course(completion_mode="archive", viewing_threshold_pct=90)
    staff = make_staff()
    attend(staff, past_session(course), 100)
    assert completions(db, staff) == []
    video = make_video(course)
    watch(staff, video, 89)
    assert completions(db, staff) == []
    watch(staff, video, 90)
    [c] = completions(db, staff)
    assert (c.method, c.archive_id) == ("archive", video.archive_id)


def test_an_archive_in_parts_counts_once_every_ready_video_is_watched(db, make_course, make_staff, make_video, watch):
    """A recording split in parts: watching one part is not watching the archive. A video
    whose length was never read, or one not ready, cannot be credited and does not hold the
    archive back."""
    from lms.archives.models import ArchiveFile

    course = make_course(completion_mode="archive", viewing_threshold_pct=90)
    staff = make_staff()
    first = make_video(course, duration=1800)
    first.created_at = utcnow() - timedelta(days=10)  # (every part ready before it is watched)
    second = ArchiveFile(created_at=utcnow() - timedelta(days=10), archive_id=first.archive_id, kind="video", filename="part2.mp4", content_type="video/mp4",
                         storage_key="test/part2.mp4", status="ready", duration_seconds=30)
    unknown_length = ArchiveFile(created_at=utcnow() - timedelta(days=10), archive_id=first.archive_id, kind="video", filename="x.webm",
                                 content_type="video/webm", storage_key="test/x.webm", status="ready")
    failed = ArchiveFile(archive_id=first.archive_id, kind="video", filename="y.mp4", content_type="video/mp4",
                         storage_key="test/y.mp4", status="failed", duration_seconds=60)
    db.session.add_all([second, unknown_length, failed])
    db.session.commit()
    watch(staff, second, 100, at=utcnow() - timedelta(days=3))  # the short part alone
    assert completions(db, staff) == []
    watch(staff, first, 95, at=utcnow() - timedelta(days=1))
    [c] = completions(db, staff)
    assert (c.method, c.archive_id) == ("archive", first.archive_id)
    # Completed when the last part was watched through.
    assert abs((as_utc(c.completed_at) - (utcnow() - timedelta(days=1))).total_seconds()) < 60


def test_a_part_added_after_an_archive_was_watched_through_does_not_undo_the_completion(
        db, make_course, make_staff, make_video, watch):
    """The trainer adds a second part later: the learner who had watched the archive through
    keeps the completion (and its date) on every later recomputation; a learner who had not is
    asked for both parts."""
    from lms.archives import progress
    from lms.archives.models import ArchiveFile
    from lms.completion.services import recompute_for_archive

    course = make_course(completion_mode="archive", viewing_threshold_pct=90)
    done, halfway = make_staff(), make_staff()
    first = make_video(course, duration=600)
    watch(done, first, 100, at=utcnow() - timedelta(days=2))
    watch(halfway, first, 50, at=utcnow() - timedelta(days=2))
    [before] = completions(db, done)
    second = ArchiveFile(archive_id=first.archive_id, kind="video", filename="part2.mp4", content_type="video/mp4",
                         storage_key="test/part2-later.mp4", status="ready", duration_seconds=60)
    db.session.add(second)
    db.session.commit()
    recompute_for_archive(done.id, first.archive_id)
    db.session.commit()
    [after] = completions(db, done)
    assert (after.status, after.completed_at) == (before.status, before.completed_at) == (COMPLETED, before.completed_at)
    assert progress.archive_completed_at(done.id, first.archive_id) == as_utc(before.completed_at)
    watch(halfway, first, 100)
    assert completions(db, halfway) == []  # the part added meanwhile is required of them
    assert progress.archive_completed_at(halfway.id, first.archive_id) is None
    watch(halfway, second, 100)
    [c] = completions(db, halfway)
    assert c.status == COMPLETED


def test_removing_the_part_a_learner_had_not_watched_completes_the_archive(
        db, make_course, make_staff, make_user, make_video, watch):
    """The trainer removes a part (a duplicate, a broken export): whoever had watched all the
    others has now watched the archive through, without touching the player again."""
    from lms.archives import services as archives
    from lms.archives.models import ArchiveFile

    trainer = make_user("platform_admin")
    course = make_course(completion_mode="archive", viewing_threshold_pct=90)
    staff = make_staff()
    first = make_video(course, duration=600)
    first.created_at = utcnow() - timedelta(days=10)
    extra = ArchiveFile(archive_id=first.archive_id, kind="video", filename="重複.mp4", content_type="video/mp4",
                        storage_key="test/duplicate-part", status="ready", duration_seconds=600,
                        created_at=utcnow() - timedelta(days=10))
    db.session.add(extra)
    db.session.commit()
    watch(staff, first, 100, at=utcnow() - timedelta(days=1))
    assert completions(db, staff) == []
    archives.remove_file(trainer, db.session.get(ArchiveFile, extra.id))
    db.session.commit()  # (the recomputation runs once the removal is committed)
    db.session.expire_all()
    [c] = completions(db, staff)
    assert (c.status, c.method, c.archive_id) == (COMPLETED, "archive", first.archive_id)


def test_either_mode_takes_earliest(db, make_course, make_staff, make_video, watch, past_session, attend):
    course = make_course(completion_mode="either")
    staff = make_staff()
    session = past_session(course)  # ended ~10 days ago
    watch(staff, make_video(course), 95, at=utcnow() - timedelta(days=20))
    attend(staff, session, 100)
    [c] = completions(db, staff)
    assert c.method == "archive"
    assert c.completed_at < session.ends_at


def test_both_mode_needs_both(db, make_course, make_staff, make_video, watch, past_session, attend):
    course = make_course(completion_mode="both")
    staff = make_staff()
    session = past_session(course)
    attend(staff, session, 100)
    assert completions(db, staff) == []
    watched_at = utcnow() - timedelta(days=1)
    watch(staff, make_video(course), 100, at=watched_at)
    [c] = completions(db, staff)
    assert c.method == "both"
    assert c.completed_at == watched_at.replace(microsecond=c.completed_at.microsecond)  # the later one
    assert (c.session_id is not None) and (c.archive_id is not None)


def test_recompute_is_idempotent_and_keeps_serial(db, make_course, make_staff, past_session, attend):
    course = make_course(completion_mode="attendance")
    session = past_session(course)
    staff = make_staff()
    attend(staff, session, 100)
    [c] = completions(db, staff)
    serial, at, updated = c.certificate_serial, c.completed_at, c.updated_at
    for _ in range(3):
        recompute_completion(staff.id, course.id, c.fiscal_year)
    db.session.commit()
    [again] = completions(db, staff)
    assert (again.id, again.certificate_serial, again.completed_at, again.updated_at) == (c.id, serial, at, updated)
    assert db.session.scalar(select(func.count()).select_from(Completion)) == 1


def test_lost_basis_revokes_automatic_and_restores_with_same_serial(db, make_course, make_staff, past_session, attend):
    course = make_course(completion_mode="attendance")
    session = past_session(course)
    staff = make_staff()
    attend(staff, session, 100)
    [c] = completions(db, staff)
    serial = c.certificate_serial
    attend(staff, session, 10)
    db.session.refresh(c)
    assert c.status == REVOKED and c.revoked_at is not None
    attend(staff, session, 90)
    db.session.refresh(c)
    assert (c.status, c.certificate_serial, c.revoked_at) == (COMPLETED, serial, None)


def test_manual_completion_is_audited_and_survives_recompute(db, make_course, make_staff, make_user):
    trainer = make_user("trainer")
    course = make_course(completion_mode="attendance", owner_id=trainer.id)
    staff = make_staff()
    fy = fiscal_year_of(utcnow())
    c = complete_manually(staff.id, course.id, fy, trainer, "会場で出席を確認（記録漏れ）")
    db.session.commit()
    recompute_completion(staff.id, course.id, fy)
    db.session.commit()
    db.session.refresh(c)
    assert (c.status, c.method, c.decided_by_id) == (COMPLETED, "manual", trainer.id)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "completion.manual"))
    assert entry.actor_id == trainer.id and entry.details["reason"] == "会場で出席を確認（記録漏れ）"


def test_manual_revocation_is_never_flipped_back(db, make_course, make_staff, make_user, past_session, attend):
    admin = make_user("platform_admin")
    course = make_course(completion_mode="attendance")
    session = past_session(course)
    staff = make_staff()
    attend(staff, session, 100)
    [c] = completions(db, staff)
    revoke_completion(c.id, admin, "なりすまし受講が判明")
    db.session.commit()
    attend(staff, session, 100)  # recompute runs again
    db.session.refresh(c)
    assert c.status == REVOKED
    assert db.session.scalar(select(AuditLog.details).where(AuditLog.action == "completion.revoke"))["reason"]


def test_manual_decisions_need_reason_and_right_person(db, make_course, make_staff, make_user):
    owner = make_user("trainer")
    other_trainer = make_user("trainer")
    learner = make_user("learner")
    course = make_course(owner_id=owner.id)
    staff = make_staff()
    fy = fiscal_year_of(utcnow())
    with pytest.raises(InvalidInput):
        complete_manually(staff.id, course.id, fy, owner, "   ")
    for person in (other_trainer, learner):
        with pytest.raises(NotAllowed):
            complete_manually(staff.id, course.id, fy, person, "理由")
    # Next fiscal year (found by a QA pass: its certificate was dated 4月1日 of a year to come).
    with pytest.raises(InvalidInput, match="まだ始まっていない年度"):
        complete_manually(staff.id, course.id, fy + 1, owner, "来年度分")
    c = complete_manually(staff.id, course.id, fy, owner, "理由")
    assert as_utc(c.completed_at) <= utcnow()
    with pytest.raises(InvalidInput):
        revoke_completion(c.id, owner, "")
    with pytest.raises(NotAllowed):
        revoke_completion(c.id, other_trainer, "理由")


@pytest.mark.parametrize(
    ("start", "fiscal_year"),
    [(tokyo(2026, 3, 31, 23, 0), 2025), (tokyo(2026, 4, 1, 0, 0), 2026), (tokyo(2026, 4, 1, 8, 30), 2026)],
)
def test_fiscal_year_follows_tokyo_session_start(db, make_course, make_staff, past_session, attend, start, fiscal_year):
    course = make_course(completion_mode="attendance")
    session = past_session(course, at=start, minutes=30)
    staff = make_staff()
    attend(staff, session, 100)
    [c] = completions(db, staff)
    assert c.fiscal_year == fiscal_year


def test_viewing_counts_in_the_fiscal_year_it_was_reached(db, make_course, make_staff, make_video, watch):
    course = make_course(completion_mode="archive")
    staff = make_staff()
    video = make_video(course)
    watch(staff, video, 100, at=tokyo(2025, 3, 31, 23, 59))
    [c] = completions(db, staff)
    assert c.fiscal_year == 2024
    watch(staff, video, 100, at=tokyo(2025, 4, 1, 0, 1))
    # the same viewing, now reached in FY2025: FY2024's automatic completion loses its basis
    rows = {c.fiscal_year: c.status for c in completions(db, staff)}
    assert rows == {2024: REVOKED, 2025: COMPLETED}


def test_the_manual_completion_form_puts_each_error_under_its_field(db, client, login_as, make_course, make_staff):
    """An unknown 職員番号 is said under 職員番号 (not under 理由), a missing reason under 理由,
    in Japanese; nothing is recorded."""
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    staff = make_staff()
    fy = fiscal_year_of(utcnow())

    def post(**values):
        form = {"employee_number": staff.employee_number, "municipality_id": str(staff.municipality_id),
                "fiscal_year": str(fy), "reason": "会場で出席を確認", **values}
        page = client.post(f"/completion/courses/{course.id}", data=form).get_data(as_text=True)
        return {m.group(1): m.group(2) for m in re.finditer(
            r'id="(employee_number|reason|fiscal_year)-error"[^>]*>(.*?)</', page, re.S)}, page

    errors, page = post(employee_number="NOBODY-1")
    assert "この職員番号の職員はいません" in errors.get("employee_number", ""), page
    assert "reason" not in errors
    errors, _page = post(reason="")
    assert "理由を入力してください" in errors.get("reason", "")
    assert "This field is required" not in _page
    assert db.session.scalar(select(func.count()).select_from(Completion)) == 0


def test_a_requirement_dropped_lets_the_viewers_it_held_back_complete(db, make_course, make_staff, make_user,
                                                                       make_video, watch):
    """Completion by the recording: a required survey (which needs a place to answer) holds a
    viewer back; made optional, the course's held-back viewers complete (recomputed once the
    change is committed)."""
    from lms.activities import services as activities
    from lms.activities.models import SCALE, SURVEY
    from lms.completion.tasks import recompute_course_now

    owner = make_user("trainer")
    course = make_course(completion_mode="archive", owner_id=owner.id)
    data = activities.ActivityInput(kind=SURVEY, title="研修アンケート")
    survey = activities.create_activity(owner, course, data)
    activities.add_question(owner, survey, activities.QuestionInput(kind=SCALE, prompt="満足度"))
    activities.set_published(owner, survey, True)
    db.session.commit()
    staff = make_staff()
    watch(staff, make_video(course), 100, at=utcnow())
    db.session.commit()
    assert [c.status for c in completions(db, staff)] == []  # watched, but the survey is required
    activities.update_activity(owner, survey, activities.ActivityInput(kind=SURVEY, title="研修アンケート", required=False))
    db.session.commit()
    db.session.expire_all()
    assert [c.status for c in completions(db, staff)] == [COMPLETED]
    assert recompute_course_now(course.id) == 0  # nobody left to recompute
