"""A new worker's warm-up (lms.common.warmup, gunicorn.conf.py): it rehearses the hot paths
for real and leaves nothing behind."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from lms.auth.models import User
from lms.common import warmup
from lms.completion.models import CourseYearSummary, StaffYearSummary
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import Enrollment
from lms.notifications.models import OutboxMail
from lms.roster.models import StaffMember

ROOT = Path(__file__).resolve().parent.parent
_TABLES = (Course, TrainingSession, User, StaffMember, Enrollment, OutboxMail, CourseYearSummary, StaffYearSummary)


def _counts(db) -> dict[str, int]:
    db.session.rollback()
    return {model.__name__: db.session.scalar(select(func.count()).select_from(model)) for model in _TABLES}


@pytest.fixture(autouse=True)
def _unfreeze():
    yield
    gc.unfreeze()  # the rest of the run collects as usual


def _one_learner_enrolled(db, make_session, make_staff) -> dict[str, int]:
    """Real data beside the rehearsal's: one learner enrolled (with a notice and summaries)."""
    from lms.enrollment import services

    session = make_session(capacity=5)
    member = make_staff()
    db.session.commit()
    services.enroll(session.id, member.id, None, source="self")
    return _counts(db)


def test_the_rehearsals_run_and_leave_nothing_behind(app, db, make_session, make_staff):
    before = _one_learner_enrolled(db, make_session, make_staff)
    assert before["Enrollment"] == before["OutboxMail"] == 1
    outcome = warmup.warm_up_worker(app)
    assert outcome == dict.fromkeys(warmup.REHEARSALS, True)
    assert _counts(db) == before
    assert gc.get_freeze_count() > 0


def test_the_enrollment_rehearsal_goes_down_the_real_path(app, db, monkeypatch):
    """On PostgreSQL it enrolls (confirmed, then waitlisted) and cancels; the embedded
    SQLite default skips it."""
    from lms.enrollment import services
    from lms.enrollment import warmup as enrollment_warmup

    calls = []
    monkeypatch.setattr(enrollment_warmup, "_enroll_tx", lambda *a, **k: calls.append("enroll") or services._enroll_tx(*a, **k))
    monkeypatch.setattr(enrollment_warmup, "_cancel_tx", lambda *a, **k: calls.append("cancel") or services._cancel_tx(*a, **k))
    assert warmup.warm_up_worker(app, ("lms.enrollment.warmup:rehearse_enrollment",)) == {
        "lms.enrollment.warmup:rehearse_enrollment": True}
    expected = [] if db.engine.dialect.name == "sqlite" else ["enroll", "enroll", "cancel"]
    assert calls == expected
    assert _counts(db) == dict.fromkeys((m.__name__ for m in _TABLES), 0)


def _commits():
    from lms.extensions import db
    from lms.municipalities.models import TenantMapping

    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-00000000abcd", municipality_id=1))
    db.session.commit()


def _fails():
    raise OSError("the store is down")


def test_a_rehearsal_may_not_commit_and_a_failing_one_does_not_stop_the_rest(app, db, caplog, monkeypatch):
    from lms.municipalities.models import TenantMapping

    # (An app configured for JSON logs stops the "lms" loggers propagating to the root, and
    # Alembic's logging set-up in an earlier test disables the loggers that exist by then.)
    monkeypatch.setattr(warmup.log, "handlers", [*warmup.log.handlers, caplog.handler])
    monkeypatch.setattr(warmup.log, "disabled", False)
    outcome = warmup.warm_up_worker(app, (f"{__name__}:_commits", f"{__name__}:_fails", "lms.common.warmup:rehearse_connections"))
    assert outcome == {f"{__name__}:_commits": False, f"{__name__}:_fails": False,
                       "lms.common.warmup:rehearse_connections": True}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TenantMapping)) == 0
    assert "may not commit" in caplog.text and "the store is down" in caplog.text
    # Outside a rehearsal, commits go through as ever.
    _commits()
    assert db.session.scalar(select(func.count()).select_from(TenantMapping)) == 1


def test_switched_off_it_only_freezes(app, monkeypatch):
    monkeypatch.setitem(app.config, "LMS_WARM_UP", False)
    assert warmup.warm_up_worker(app) == {}
    assert gc.get_freeze_count() > 0


def test_gunicorn_warms_each_worker_up_before_it_serves(app, monkeypatch):
    """gunicorn.conf.py, read by every gunicorn started in the project's directory."""
    seen = []
    monkeypatch.setattr(warmup, "warm_up_worker", lambda flask_app: seen.append(flask_app))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    hooks["post_worker_init"](SimpleNamespace(wsgi=app))
    hooks["post_worker_init"](SimpleNamespace(wsgi=lambda environ, start_response: None))  # not a Flask app: left alone
    assert seen == [app]
