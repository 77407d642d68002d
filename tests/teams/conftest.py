"""Fixtures: a real local Graph server, and the app wired to it (no MSAL, a static test token)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.common.signals import session_created
from lms.common.timeutil import as_utc
from lms.enrollment.models import CONFIRMED, Enrollment
from tests.teams.graph_server import GraphServer

ORGANIZER = "kenshu@metro.example.lg.jp"


@pytest.fixture
def graph_server():
    server = GraphServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app_config(app_config, graph_server):
    return {**app_config, "GRAPH_BASE_URL": graph_server.base_url, "GRAPH_ORGANIZER": ORGANIZER,
            "GRAPH_BACKOFF_CAP": 0.2, "GRAPH_READ_TIMEOUT": 20}


@pytest.fixture
def graph_app(app, graph_server):
    app.extensions["graph_token_provider"] = lambda: graph_server.token
    return app


@pytest.fixture
def confirm(db):
    """Confirm a staff member in a session the way the enrollment service does (row + count +
    signals). ``signal=False``: no attendees_changed (no Graph attendee sync queued)."""
    from lms.common.signals import attendees_changed, enrollment_status_changed

    def _confirm(session, *members, signal: bool = True):
        enrollments = []
        for member in members:
            enrollment = Enrollment(session_id=session.id, staff_member_id=member.id,
                                    municipality_id=member.municipality_id, status=CONFIRMED)
            db.session.add(enrollment)
            enrollments.append(enrollment)
            session.confirmed_count += 1
        db.session.flush()
        for enrollment in enrollments:
            enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None,
                                           notice="confirmed", position=None)
        if signal:
            attendees_changed.send(session, actor=None)
        db.session.commit()

    return _confirm


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the completion dashboard summaries equal to a fresh aggregate
    (attendance imported from Teams counts in them)."""


def enrollments(db, session):
    return db.session.scalars(select(Enrollment).where(Enrollment.session_id == session.id)).all()


def past(minutes: int) -> timedelta:
    return -timedelta(minutes=minutes)


# ---------------------------------------------------------------- an ended meeting with a recording

RECORDING_SIZE = 3 * 1024 * 1024 + 7  # not a whole number of the client's 1 MiB reads
TRANSCRIPT_VTT = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v 講師 山田>皆さん、こんにちは。Teams 活用研修を始めます。

00:00:05.000 --> 00:00:09.000
<v 講師 山田>まずチャネルとチャットの違いから説明します。
"""


@pytest.fixture
def ended(graph_app, graph_server, db, login_as, make_course, make_session):
    """A Teams session (created through Graph) that ended an hour ago, with one recording of
    RECORDING_SIZE bytes and its transcript."""
    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id, title="Teams 活用研修"),
                           starts_in=-timedelta(minutes=150), minutes=90, join_url="")
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    assert session.graph_online_meeting_id, "the meeting was created through Graph"
    rec = graph_server.add_recording(session.graph_online_meeting_id, "organizer-oid", RECORDING_SIZE,
                                     as_utc(session.ends_at))
    tr = graph_server.add_transcript(session.graph_online_meeting_id, "organizer-oid", rec, TRANSCRIPT_VTT)
    return {"session": session, "trainer": trainer, "recording": rec, "transcript": tr}
