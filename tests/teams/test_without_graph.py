"""Without Graph configured everything else keeps working: join links are typed by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.common.timeutil import to_tokyo, utcnow
from lms.courses.models import TrainingSession
from lms.teams.graph import DEFAULT_BASE_URL, graph_configured
from lms.teams.models import GraphOperation


@pytest.fixture
def app_config(app_config):
    return {**app_config, "GRAPH_BASE_URL": DEFAULT_BASE_URL, "ENTRA_CLIENT_ID": None}


def test_sessions_keep_their_hand_typed_link_and_nothing_is_queued(app, client, db, login_as, make_course, make_user):
    assert not graph_configured(app)
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    start = to_tokyo(utcnow() + timedelta(days=5))
    link = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0"
    response = client.post(f"/manage/courses/{course.id}/sessions/new", data={
        "title": "第2回", "starts_at": f"{start:%Y-%m-%dT%H:%M}",
        "ends_at": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M}", "delivery": "teams", "join_url": link,
        "capacity": "10", "save": "保存"})
    assert response.status_code == 302
    session = db.session.scalars(select(TrainingSession)).one()
    assert session.join_url == link and session.graph_event_id == ""
    assert db.session.scalars(select(GraphOperation)).all() == []
    page = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "Microsoft Graph 連携は設定されていません" in page
    admin = make_user("platform_admin")
    admin_client = app.test_client()
    login_as(user=admin, on=admin_client)
    assert "Microsoft Graph 連携は設定されていません" in admin_client.get("/teams/status").get_data(as_text=True)
