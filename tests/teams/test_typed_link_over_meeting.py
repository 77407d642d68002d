"""A trainer types a join link over the Teams meeting Manabi made: the typed link is the
trainer's choice — Manabi's meeting is cancelled (after commit, through the operation
queue) and never made again or written over the typed link; clearing the link hands the
session back to Manabi, which makes a new meeting. Enrollees hear of each real change once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from lms.common.timeutil import to_tokyo, utcnow
from lms.courses.models import TrainingSession
from lms.notifications.models import OutboxMail
from lms.teams.models import GraphOperation

TYPED = "https://teams.microsoft.com/l/meetup-join/trainers-own-meeting"


def _edit(client, session, *, join_url, starts=None):
    start_local = to_tokyo(starts or session.starts_at)
    return client.post(f"/manage/sessions/{session.id}/edit", data={
        "title": session.title, "starts_at": f"{start_local:%Y-%m-%dT%H:%M}",
        "ends_at": f"{start_local + timedelta(minutes=90):%Y-%m-%dT%H:%M}", "delivery": session.delivery,
        "location": session.location, "join_url": join_url, "capacity": str(session.capacity), "save": "保存"})


def _created(graph_server) -> list:
    return [c for c in graph_server.calls("POST", "/events") if c.path.endswith("/events")]


def _mails(db, learner) -> list[OutboxMail]:
    return db.session.scalars(select(OutboxMail).where(OutboxMail.staff_member_id == learner.staff_member.id)
                              .order_by(OutboxMail.id)).all()


def _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    from lms.common.signals import session_created

    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), join_url="", minutes=90)
    session.starts_at = session.starts_at.replace(second=0)  # as the form gives it
    session.ends_at = session.starts_at + timedelta(minutes=90)
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    assert session.graph_event_id and session.join_url and session.graph_online_meeting_id
    learner = make_user("learner")
    confirm(session, learner.staff_member)
    return session, learner


def test_a_link_typed_over_our_meeting_detaches_it_and_is_never_overwritten(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    session, learner = _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm)
    old_event, old_link = session.graph_event_id, session.join_url
    page = client.get(f"/manage/sessions/{session.id}/edit").get_data(as_text=True)
    assert "Manabi が作成した Teams 会議" in page  # the form says what typing another link does

    before = len(_mails(db, learner))
    response = _edit(client, session, join_url=TYPED)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(session)
    assert session.join_url == TYPED
    assert (session.graph_event_id, session.graph_transaction_id, session.graph_online_meeting_id) == ("", "", "")
    # Manabi's meeting is cancelled in Outlook through the operation queue, once
    cancels = graph_server.calls("POST", "/cancel")
    assert len(cancels) == 1 and old_event in cancels[0].path and cancels[0].body["comment"]
    assert graph_server.events[old_event]["isCancelled"] is True
    op = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id,
                                                         GraphOperation.kind == "cancel_event")).one()
    assert op.status == "done" and op.details["event_id"] == old_event

    # the learner is told of the new link exactly once (and not of the old one again)
    told = _mails(db, learner)[before:]
    assert len(told) == 1 and TYPED in told[0].body_text

    # later syncs (another enrollee, a move) keep the typed link and make no meeting
    confirm(session, make_user("learner", "131024").staff_member)
    response = _edit(client, session, join_url=TYPED, starts=session.starts_at + timedelta(hours=1))
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(session)
    assert session.join_url == TYPED and session.graph_event_id == ""
    assert len(_created(graph_server)) == 1
    assert graph_server.calls("PATCH", "/events/") == [] or all(
        old_event in c.path for c in graph_server.calls("PATCH", "/events/"))
    told = _mails(db, learner)[before:]  # the new link, then the move (with the typed link)
    assert len(told) == 2 and TYPED in told[1].body_text and old_link not in told[1].body_text
    # the edit form no longer speaks of a Manabi meeting
    page = client.get(f"/manage/sessions/{session.id}/edit").get_data(as_text=True)
    assert "Manabi が作成した Teams 会議" not in page


def test_a_detached_meeting_is_not_read_for_attendance_or_recordings(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    from lms.teams.services import catch_up_recordings_with, execute_operation, queue_import

    session, _learner = _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm)
    old_meeting = session.graph_online_meeting_id
    assert _edit(client, session, join_url=TYPED).status_code == 302
    graph_server.add_attendance_report(old_meeting, session.starts_at, session.ends_at, [])
    db.session.execute(update(TrainingSession).where(TrainingSession.id == session.id).values(
        starts_at=utcnow() - timedelta(hours=3), ends_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    db.session.refresh(session)
    op = queue_import(session, "import_attendance")
    db.session.commit()
    execute_operation(op.id)
    assert not [c for c in graph_server.calls("GET", "/attendanceReports") if old_meeting in c.path]
    db.session.refresh(session)
    assert session.graph_online_meeting_id != old_meeting
    # the nightly catch-up does not tie the old meeting's recordings to the session
    graph_server.add_recording(old_meeting, "organizer-oid", 10, utcnow() - timedelta(hours=1))
    from lms.teams.graph import client_from_app

    result = catch_up_recordings_with(client_from_app(), session.graph_organizer or "kenshu@metro.example.lg.jp",
                                      utcnow() - timedelta(days=1), utcnow())
    assert session.id not in result["sessions"]


def test_clearing_the_typed_link_hands_the_session_back_to_manabi_told_once(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    session, learner = _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm)
    assert _edit(client, session, join_url=TYPED).status_code == 302
    db.session.refresh(session)
    before = len(_mails(db, learner))

    response = _edit(client, session, join_url="")
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(session)
    assert len(_created(graph_server)) == 2  # a new meeting of Manabi's
    assert session.graph_event_id and session.join_url and session.join_url != TYPED
    told = _mails(db, learner)[before:]
    assert len(told) == 1 and session.join_url[:40] in told[0].body_text


def test_an_empty_link_field_over_our_meeting_keeps_the_meeting(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    session, learner = _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm)
    link, revision, before = session.join_url, session.revision, len(_mails(db, learner))
    response = _edit(client, session, join_url="")
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(session)
    assert session.join_url == link and session.revision == revision
    assert graph_server.calls("POST", "/cancel") == []
    assert len(_mails(db, learner)) == before


def test_a_failed_cancel_of_the_detached_meeting_is_shown_and_retried_keeping_the_typed_link(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user, confirm):
    from lms.teams.services import retry_operation

    session, _learner = _managed(graph_server, client, db, login_as, make_course, make_session, make_user, confirm)
    old_event = session.graph_event_id
    graph_server.fail("/cancel", 403, times=1)
    assert _edit(client, session, join_url=TYPED).status_code == 302
    db.session.refresh(session)
    op = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id,
                                                         GraphOperation.kind == "cancel_event")).one()
    assert op.status == "failed"
    assert session.graph_sync_status == "failed" and session.join_url == TYPED
    assert not graph_server.events[old_event].get("isCancelled")

    retry_operation(op.id, session.course.owner)  # the status page's retry button
    db.session.commit()
    db.session.refresh(session)
    db.session.refresh(op)
    assert op.status == "done" and graph_server.events[old_event]["isCancelled"] is True
    assert session.join_url == TYPED and session.graph_sync_status == "cancelled"
    assert len(_created(graph_server)) == 1


class _TrainerTypesDuringThePost:
    """A Graph client whose meeting POST is overtaken: while Graph makes the meeting, the
    trainer saves a link of their own (the edit form, its own request and transaction)."""

    def __init__(self, inner, on_post):
        self.inner, self.on_post = inner, on_post

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def post(self, path, json=None, **kwargs):
        result = self.inner.post(path, json, **kwargs)
        if path.endswith("/events") and self.on_post:
            self.on_post()
            self.on_post = None
        return result


def test_a_link_typed_while_the_meeting_is_being_made_is_kept_and_the_new_meeting_withdrawn(
        graph_app, graph_server, client, db, login_as, make_course, make_session, monkeypatch):
    from lms.common.signals import session_created
    from lms.teams import tasks
    from lms.teams.graph import client_from_app
    from lms.teams.services import execute_operation

    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), join_url="", minutes=90)
    session.starts_at = session.starts_at.replace(second=0)
    session.ends_at = session.starts_at + timedelta(minutes=90)
    monkeypatch.setattr(tasks, "run_graph_operation", lambda operation_id: None)  # the worker runs it below
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    create = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id)).one()
    assert create.kind == "create_event" and session.graph_transaction_id

    def trainer_saves_own_link():
        response = _edit(client, session, join_url=TYPED)
        assert response.status_code == 302, response.get_data(as_text=True)

    execute_operation(create.id, client=_TrainerTypesDuringThePost(client_from_app(graph_app), trainer_saves_own_link))
    db.session.expire_all()
    session = db.session.get(TrainingSession, session.id)
    # the typed link stands: the worker wrote nothing of the meeting it had just made
    assert session.join_url == TYPED
    assert (session.graph_event_id, session.graph_transaction_id, session.graph_online_meeting_id) == ("", "", "")
    made = _created(graph_server)
    assert len(made) == 1
    (event_id,) = graph_server.events
    # ... and that meeting is withdrawn through the queue (the attendees' calendars drop it)
    cancel = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id,
                                                             GraphOperation.kind == "cancel_event")).one()
    assert cancel.status == "queued" and cancel.details["event_id"] == event_id
    execute_operation(cancel.id)
    db.session.expire_all()
    assert graph_server.events[event_id]["isCancelled"] is True
    assert db.session.get(GraphOperation, cancel.id).status == "done"
    assert db.session.get(TrainingSession, session.id).join_url == TYPED
