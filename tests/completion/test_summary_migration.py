"""The revision that adds the dashboard summaries fills them from the existing data with a
frozen copy of the figures: on today's data it writes what the application computes."""

from __future__ import annotations

import importlib.util

from sqlalchemy import delete

from lms.completion import summary
from lms.completion.models import CourseYearSummary, StaffYearSummary
from tests.conftest import ROOT

REVISION = ROOT / "migrations" / "versions" / "5b2e9c41d7a3_completion_dashboard_summaries.py"


def _revision():
    spec = importlib.util.spec_from_file_location("revision_5b2e9c41d7a3", REVISION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_migration_fills_the_summaries_as_the_application_computes_them(known_data, db, past_session, enroll,
                                                                           attend):
    d = known_data
    # One more fiscal year: an enrollment and attendance a year back.
    last_year = past_session(d["a"], at=known_data["session"].starts_at.replace(
        year=known_data["session"].starts_at.year - 1))
    enroll(d["staff"][0], last_year)
    attend(d["staff"][0], last_year, 100)
    assert summary.check(db.session).ok
    expected = {model: sorted(tuple(r) for r in db.session.execute(model.__table__.select()))
                for model in (CourseYearSummary, StaffYearSummary)}
    assert len({row[1] for row in expected[CourseYearSummary]}) == 2 and expected[StaffYearSummary]
    db.session.execute(delete(CourseYearSummary.__table__))
    db.session.execute(delete(StaffYearSummary.__table__))

    _revision().fill_summaries(db.session.connection())

    assert summary.check(db.session).ok
    for model, rows in expected.items():
        assert sorted(tuple(r) for r in db.session.execute(model.__table__.select())) == rows
    db.session.rollback()
