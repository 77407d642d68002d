"""Fixtures: a real local Graph server, and the app wired to it (no MSAL, a static test token)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

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
    """Confirm a staff member in a session the way the enrollment service does (row + count + signal)."""
    from lms.common.signals import attendees_changed

    def _confirm(session, *members, signal: bool = True):
        for member in members:
            db.session.add(Enrollment(session_id=session.id, staff_member_id=member.id,
                                      municipality_id=member.municipality_id, status=CONFIRMED))
            session.confirmed_count += 1
        db.session.flush()
        if signal:
            attendees_changed.send(session, actor=None)
        db.session.commit()

    return _confirm


def enrollments(db, session):
    return db.session.scalars(select(Enrollment).where(Enrollment.session_id == session.id)).all()


def past(minutes: int) -> timedelta:
    return -timedelta(minutes=minutes)
