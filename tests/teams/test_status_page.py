"""The platform admins' status page: per session what was done or failed and why; retry with CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.common.signals import session_created
from lms.teams.models import GraphOperation


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def test_failed_sessions_are_listed_first_and_retry_needs_the_csrf_token(
        graph_app, graph_server, client, db, login_as, make_course, make_session):
    admin = login_as("platform_admin")
    ok = make_session(make_course(title="成功する研修"), join_url="")
    broken = make_session(make_course(title="失敗する研修"), join_url="")
    session_created.send(ok, actor=admin, changes={})
    db.session.commit()
    graph_server.fail("/events", 503, times=None, method="POST")
    session_created.send(broken, actor=admin, changes={})
    db.session.commit()
    failed = db.session.scalar(select(GraphOperation).where(GraphOperation.session_id == broken.id))
    assert failed.status == "failed" and failed.attempts == 1
    assert failed.details["retryable"] is True

    html = client.get("/teams/status").get_data(as_text=True)
    attention = html.split('id="attention-heading"', 1)[1].split("</section>", 1)[0]
    assert "失敗する研修" in attention and "成功する研修" not in attention and "HTTP 503" in attention
    assert "成功する研修" in html  # in the full history
    only = client.get(f"/teams/status?session={ok.id}").get_data(as_text=True)
    assert "会議の作成" in only and "HTTP 503" not in only.split('id="attention-heading"')[-1].split("</section>")[-1]

    assert client.post(f"/teams/operations/{failed.id}/retry").status_code == 400  # no CSRF token
    graph_server.faults.clear()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post(f"/teams/operations/{failed.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    db.session.refresh(failed)
    assert failed.status == "done" and failed.attempts == 2
    assert 'id="attention-heading"' not in client.get("/teams/status").get_data(as_text=True)


def test_periodic_task_retries_failed_operations_when_due_and_gives_up_on_refusals(
        graph_app, graph_server, db, make_course, make_session):
    from lms.common.timeutil import utcnow
    from lms.teams.operations import due_operation_ids

    session = make_session(make_course(), join_url="")
    graph_server.fail("/events", 503, times=None, method="POST")
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    op = db.session.scalar(select(GraphOperation))
    assert op.status == "failed"
    assert due_operation_ids() == []  # not before its next attempt time
    assert due_operation_ids(utcnow() + timedelta(hours=1)) == [op.id]
    graph_server.faults.clear()
    graph_server.fail("/events", 400, times=None, method="POST")
    from lms.teams.services import execute_operation

    execute_operation(op.id)
    db.session.refresh(op)
    assert op.status == "failed" and op.details["retryable"] is False
    assert due_operation_ids(utcnow() + timedelta(days=1)) == []
