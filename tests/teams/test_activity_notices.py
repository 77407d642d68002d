"""Notices in the Teams activity feed: through the outbox, the app installed by Graph, mail where
Teams cannot reach the person, each person's choice of Teams, mail or both, Graph's throttling."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from lms.auth.models import NOTICE_MAIL, NOTICE_TEAMS
from lms.common.timeutil import utcnow
from lms.enrollment import services as enrollment_services
from lms.municipalities.models import TenantMapping
from lms.notifications.models import QUEUED, SENT, SKIPPED, TEAMS_SENT, TEAMS_UNAVAILABLE, OutboxMail
from lms.notifications.services import TEAMS_MESSAGE_ID, deliver_due_mail
from lms.teams import app_identity, app_package
from lms.teams.models import INSTALLED, NOT_IN_CATALOGUE, REFUSED, TeamsAppInstallation
from tests.factories import tenant_for


@pytest.fixture
def app_config(app_config):
    return {**app_config, "GRAPH_MAX_WAIT": 5, "LMS_BASE_URL": "https://manabi.example.lg.jp",
            "ENTRA_CLIENT_ID": "3c6b1f0e-5d2a-4c8e-9b7f-2a1d0e4c6b8a"}


@pytest.fixture
def sleeps(graph_app):
    waited: list[float] = []
    graph_app.extensions["graph_sleep"] = waited.append
    return waited


@pytest.fixture
def published(graph_app, graph_server, db):
    """The tenant admin uploaded Manabi's app package; Manabi has admin consent in every tenant."""
    graph_server.publish_app(app_package.manifest())
    consent_all(db)
    return graph_server


@pytest.fixture
def approval_course(db, make_course, make_session):
    course = make_course(title="情報セキュリティ研修", requires_approval=True)
    return make_session(course)


def consent_all(db):
    for code in ("131016", "131024"):
        tenant_for(code)
    for mapping in db.session.scalars(select(TenantMapping)):
        mapping.consented_at = utcnow()
    db.session.commit()


def teams_calls(server) -> list:
    """Graph requests about Teams apps and notices (not the sessions' meetings)."""
    return [c for c in server.requests if "/teamwork/" in c.path or c.path.startswith("/appCatalogs")]


def mail_files(app) -> list[Path]:
    return sorted(Path(app.config["LMS_MAIL_DIR"]).glob("*.eml"))


def rows(db, kind: str | None = None) -> list[OutboxMail]:
    db.session.expire_all()
    stmt = select(OutboxMail).order_by(OutboxMail.id)
    if kind:
        stmt = stmt.where(OutboxMail.kind == kind)
    return list(db.session.scalars(stmt))


def apply(db, session, learner):
    enrollment = enrollment_services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    return enrollment


def test_an_approval_request_reaches_the_office_in_teams_and_by_mail(app, db, published, make_user, approval_course):
    office = make_user("municipal_admin", name="研修担当 高橋")
    other_office = make_user("municipal_admin", "131024")
    learner = make_user("learner", name="青木 一郎")
    apply(db, approval_course, learner)
    [request] = rows(db, "approval")
    assert request.user_id == office.id and request.to_address == office.email
    assert other_office.id not in {r.user_id for r in rows(db)}  # another municipality's office hears nothing

    report = deliver_due_mail()
    assert request.id in report.sent
    assert rows(db, "approval")[0].teams_error == ""
    # Installed for the office member by Graph (found in the tenant's catalogue by its manifest id).
    install = published.calls("POST", "/teamwork/installedApps")
    assert [c.path for c in install] == [f"/users/{office.object_id}/teamwork/installedApps"]
    assert install[0].body["teamsApp@odata.bind"].endswith(published.catalogue[app_identity.app_id()]["id"])
    [notice] = [n for n in published.activity_notices if n["user"] == office.object_id]
    body = notice["body"]
    assert body["activityType"] == app_package.APPROVAL_REQUESTED
    assert {p["name"]: p["value"] for p in body["templateParameters"]} == {"learner": "青木 一郎",
                                                                          "course": "情報セキュリティ研修"}
    assert body["chainId"] == request.id
    assert body["topic"]["source"] == "text" and body["topic"]["value"] == "情報セキュリティ研修"
    assert body["previewText"]["content"].startswith("【")
    link = urlsplit(body["topic"]["webUrl"])
    assert link.netloc == "teams.microsoft.com" and link.path == f"/l/entity/{app_identity.app_id()}/mypage"
    query = parse_qs(link.query)
    assert json.loads(query["context"][0]) == {"subEntityId": "approvals"}
    assert query["webUrl"] == ["https://manabi.example.lg.jp/municipal"]
    assert body["teamsAppId"] == published.catalogue[app_identity.app_id()]["id"]
    # Both (the default): the mail went too.
    row = rows(db, "approval")[0]
    assert row.status == SENT and row.teams_state == TEAMS_SENT and row.teams_sent_at is not None
    assert row.message_id != TEAMS_MESSAGE_ID
    assert any("承認依頼" in f.read_text(encoding="utf-8", errors="replace") or f.stat().st_size for f in mail_files(app))
    installation = db.session.scalar(select(TeamsAppInstallation).where(TeamsAppInstallation.user_id == office.id))
    assert installation.state == INSTALLED

    # The next notice to the same person costs one Graph call (the installation is remembered).
    published.requests.clear()
    learner2 = make_user("learner")
    apply(db, approval_course, learner2)
    deliver_due_mail()
    assert [c.path.rsplit("/", 1)[-1] for c in teams_calls(published)] == ["sendActivityNotification"]


def test_teams_only_sends_no_mail_and_a_decision_reaches_the_learner(app, db, published, make_user, make_session,
                                                                      make_course):
    learner = make_user("learner")
    learner.notice_channel = NOTICE_TEAMS
    db.session.commit()
    session = make_session(make_course(title="Teams 活用研修"))
    apply(db, session, learner)
    deliver_due_mail()
    [row] = rows(db, "confirmed")
    assert row.status == SENT and row.message_id == TEAMS_MESSAGE_ID and row.teams_state == TEAMS_SENT
    assert mail_files(app) == []
    [notice] = published.activity_notices
    assert notice["body"]["activityType"] == app_package.ENROLLMENT_DECIDED
    assert {p["name"]: p["value"] for p in notice["body"]["templateParameters"]} == {
        "course": "Teams 活用研修", "decision": "受講確定"}


def test_mail_only_never_calls_graph(app, db, published, make_user, make_session):
    learner = make_user("learner")
    learner.notice_channel = NOTICE_MAIL
    db.session.commit()
    apply(db, make_session(), learner)
    published.requests.clear()
    deliver_due_mail()
    assert teams_calls(published) == []
    [row] = rows(db, "confirmed")
    assert row.status == SENT and row.teams_state == "not_used" and len(mail_files(app)) == 1


def test_a_tenant_without_the_app_gets_mail(app, db, graph_app, graph_server, make_user, make_session):
    consent_all(db)  # consented, but the app was never uploaded to the tenant's catalogue
    learner = make_user("learner")
    learner.notice_channel = NOTICE_TEAMS
    db.session.commit()
    apply(db, make_session(), learner)
    deliver_due_mail()
    [row] = rows(db, "confirmed")
    assert row.status == SENT and row.teams_state == TEAMS_UNAVAILABLE and "catalogue" in row.teams_error
    assert graph_server.activity_notices == [] and len(mail_files(app)) == 1
    installation = db.session.scalar(select(TeamsAppInstallation).where(TeamsAppInstallation.user_id == learner.id))
    assert installation.state == NOT_IN_CATALOGUE
    # Not asked again for a day: the next notice goes by mail without a Graph call.
    graph_server.requests.clear()
    apply(db, make_session(starts_in=timedelta(days=20)), learner)
    deliver_due_mail()
    assert teams_calls(graph_server) == [] and len(mail_files(app)) == 2


def test_a_tenant_that_refuses_installation_gets_mail(app, db, published, make_user, make_session):
    learner = make_user("learner")
    published.install_blocked.add(learner.object_id)
    apply(db, make_session(), learner)
    deliver_due_mail()
    [row] = rows(db, "confirmed")
    assert row.status == SENT and row.teams_state == TEAMS_UNAVAILABLE and "refused" in row.teams_error
    assert published.activity_notices == [] and len(mail_files(app)) == 1
    installation = db.session.scalar(select(TeamsAppInstallation).where(TeamsAppInstallation.user_id == learner.id))
    assert installation.state == REFUSED


def test_a_tenant_without_consent_or_a_person_never_signed_in_gets_mail(app, db, graph_app, graph_server,
                                                                         make_user, make_staff, make_session):
    learner = make_user("learner", "131032")  # its tenant has no admin consent
    apply(db, make_session(), learner)
    member = make_staff("131032")  # on the roster, never signed in
    session = make_session(starts_in=timedelta(days=21))
    enrollment_services.nominate(session.id, member.id, make_user("municipal_admin", "131032"))
    db.session.commit()
    deliver_due_mail()
    states = {r.staff_member_id: (r.status, r.teams_state, r.teams_error) for r in rows(db) if r.kind == "confirmed"}
    assert states[learner.staff_member.id][:2] == (SENT, TEAMS_UNAVAILABLE)
    assert "consent" in states[learner.staff_member.id][2]
    assert states[member.id][:2] == (SENT, TEAMS_UNAVAILABLE)
    assert "signed in" in states[member.id][2]
    assert teams_calls(graph_server) == []


def test_a_throttled_notice_is_sent_once_after_retry_after(app, db, published, sleeps, make_user, make_session):
    learner = make_user("learner")
    apply(db, make_session(), learner)
    published.fail("sendActivityNotification", status=429, times=1, retry_after="2")
    deliver_due_mail()
    assert sleeps == [2.0]  # exactly what Graph asked
    posts = published.calls("POST", "sendActivityNotification")
    assert [c.status for c in posts] == [429, 204]
    assert len(published.activity_notices) == 1
    assert rows(db, "confirmed")[0].status == SENT


def test_a_long_throttle_puts_the_notice_back_until_retry_after(app, db, published, sleeps, make_user, make_session):
    learner = make_user("learner")
    learner.notice_channel = NOTICE_TEAMS
    db.session.commit()
    apply(db, make_session(), learner)
    published.fail("sendActivityNotification", status=429, times=1, retry_after="600")
    start = utcnow()
    report = deliver_due_mail(now=start)
    [row] = rows(db, "confirmed")
    assert row.id in report.retried and sleeps == []  # never holds the worker for ten minutes
    assert row.status == QUEUED and row.teams_state == "" and row.attempts == 0
    assert row.next_attempt_at >= start + timedelta(seconds=600)
    assert mail_files(app) == [] and published.activity_notices == []
    assert deliver_due_mail(now=start + timedelta(seconds=300)).sent == []  # not before Retry-After
    report = deliver_due_mail(now=start + timedelta(seconds=601))
    assert report.sent == [row.id]
    assert len(published.activity_notices) == 1 and mail_files(app) == []


def test_a_notice_is_never_sent_twice(app, db, published, make_user, make_session, monkeypatch):
    """The mail fails after Teams took the notice: the retry sends the mail, not the notice."""
    from lms.notifications import mail as mail_module

    learner = make_user("learner")
    apply(db, make_session(), learner)
    calls = {"n": 0}
    real = mail_module.send_mail

    def flaky(mail):
        calls["n"] += 1
        if calls["n"] == 1:
            raise mail_module.MailError("SMTP 421 try later")
        return real(mail)

    monkeypatch.setattr(mail_module, "send_mail", flaky)
    first = deliver_due_mail()
    [row] = rows(db, "confirmed")
    assert row.id in first.retried and row.teams_state == TEAMS_SENT
    deliver_due_mail(now=utcnow() + timedelta(hours=1))
    assert rows(db, "confirmed")[0].status == SENT
    assert len(published.calls("POST", "sendActivityNotification")) == 1
    assert len(mail_files(app)) == 1


def test_a_repeat_after_a_crash_replaces_the_notice(db, published, make_user, make_session):
    """A worker that died between Graph taking the notice and the outbox recording it sends it
    again with the same chainId: the feed holds it once."""
    from lms.teams.activity import send_activity_notice

    learner = make_user("learner")
    apply(db, make_session(), learner)
    [row] = rows(db, "confirmed")
    send_activity_notice(row, learner)
    send_activity_notice(row, learner)
    assert len(published.calls("POST", "sendActivityNotification")) == 2
    assert len(published.activity_notices) == 1


def test_a_decided_request_is_not_sent(app, db, published, make_user, approval_course):
    office = make_user("municipal_admin")
    learner = make_user("learner")
    enrollment = apply(db, approval_course, learner)
    enrollment_services.approve_enrollment(enrollment.id, office)
    db.session.commit()
    deliver_due_mail()
    [request] = rows(db, "approval")
    assert request.status == SKIPPED
    assert all(n["body"]["activityType"] != app_package.APPROVAL_REQUESTED for n in published.activity_notices)


def test_changed_details_go_by_mail_only(db, published, make_user, make_session):
    from lms.teams.activity import send_activity_notice

    learner = make_user("learner")
    apply(db, make_session(), learner)
    [row] = rows(db, "confirmed")
    row.kind = "changed"
    assert send_activity_notice(row, learner) is None
    db.session.rollback()


def test_with_teams_notices_off_nothing_is_offered_to_teams(app, db, published, make_user, make_session):
    app.config["LMS_TEAMS_NOTICES"] = False
    learner = make_user("learner")
    learner.notice_channel = NOTICE_TEAMS
    db.session.commit()
    apply(db, make_session(), learner)
    deliver_due_mail()
    [row] = rows(db, "confirmed")
    assert row.status == SENT and row.teams_state == "" and len(mail_files(app)) == 1
    assert teams_calls(published) == []


# ---------------------------------------------------------------- the person's choice


def test_each_person_chooses_teams_mail_or_both(client, db, login_as):
    user = login_as("learner")
    page = client.get("/settings/notices")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "お知らせの受け取り方" in html and 'checked id="notice_channel-0"' in html and 'value="both"' in html
    answer = client.post("/settings/notices", data={"notice_channel": "teams"})
    assert answer.status_code == 302
    db.session.expire_all()
    assert user.notice_channel == "teams"
    assert "保存しました" in client.get("/settings/notices").get_data(as_text=True)
    again = client.post("/settings/notices", data={"notice_channel": "teams"}, follow_redirects=True)
    assert "すでにこの設定になっています" in again.get_data(as_text=True)  # a second press is answered too
    refused = client.post("/settings/notices", data={"notice_channel": "fax"})
    assert refused.status_code == 200 and 'class="error-summary"' in refused.get_data(as_text=True)
    db.session.expire_all()
    assert user.notice_channel == "teams"


def test_the_choice_needs_a_sign_in(client):
    assert client.get("/settings/notices").status_code in (302, 401)


def test_a_required_activity_about_to_close_reaches_the_learner_in_teams(app, db, published, make_user, make_session,
                                                                         make_course):
    from lms.activities import services as activities
    from lms.notifications.activity_reminders import ACTIVITY_DUE, queue_activity_reminders

    learner = make_user("learner")
    learner.notice_channel = NOTICE_TEAMS
    trainer = make_user("trainer")
    course = make_course(title="文書事務研修", owner_id=trainer.id)
    session = make_session(course)
    db.session.commit()
    apply(db, session, learner)
    prework = activities.create_activity(trainer, course, activities.ActivityInput(
        kind="prework", title="事前課題：職場の課題", closes_anchor="start", closes_offset_hours=-24))
    activities.add_question(trainer, prework, activities.QuestionInput(kind="longtext", prompt="職場の課題"))
    activities.set_published(trainer, prework, True)
    db.session.commit()
    closes = session.starts_at - timedelta(hours=24)
    assert queue_activity_reminders(closes - timedelta(hours=10)) == 1
    db.session.commit()
    deliver_due_mail()
    [row] = rows(db, ACTIVITY_DUE)
    assert row.status == SENT and row.teams_state == TEAMS_SENT and row.enrollment_id is not None
    notices = [n for n in published.activity_notices if n["body"]["activityType"] == app_package.ACTIVITY_DUE]
    [notice] = notices
    parameters = {p["name"]: p["value"] for p in notice["body"]["templateParameters"]}
    assert parameters["course"] == "文書事務研修" and parameters["activity"] == "事前課題：職場の課題"
    assert parameters["dueAt"] and parameters["dueAt"][:4].isdigit()
