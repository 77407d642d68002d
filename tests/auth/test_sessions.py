"""Signing out ends the session on the server: a copy of the cookie taken before is refused
everywhere, other devices stay signed in, and 「すべての端末からサインアウト」 ends them all
(for oneself, or by an admin for a user: a platform admin for anyone, a municipal admin for
the users of their own municipality)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from lms.audit.models import AuditLog
from lms.auth.models import User, UserSession
from lms.common.timeutil import utcnow
from tests import factories

COOKIE = "manabi_session"


@pytest.fixture
def learner(db):
    return factories.make_user("learner", "131016", is_demo=True, name="千代田 学")


def _demo_sign_in(app, user):
    """A browser signed in through the demo sign-in page."""
    client = app.test_client()
    response = client.post("/auth/demo", data={"user_id": user.id})
    assert response.status_code == 302
    return client


def _copy(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def _sent_to_sign_in(response) -> bool:
    return response.status_code == 302 and "/auth/login" in response.headers["Location"]


def _audit(db, action):
    db.session.rollback()
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def test_a_copied_cookie_is_refused_everywhere_after_sign_out(app, db, learner):
    client = _demo_sign_in(app, learner)
    thief = _copy(app, client)
    assert thief.get("/me").status_code == 200  # the copy works while the session lives

    assert client.post("/auth/logout").status_code == 302

    for path in ("/me", "/courses", "/archives/", "/completion/history"):
        assert _sent_to_sign_in(thief.get(path)), path
    assert _sent_to_sign_in(thief.post("/auth/logout/everywhere"))
    assert thief.get("/auth/login").status_code == 200  # the sign-in page, not a redirect home
    tus = thief.open("/archives/uploads", method="OPTIONS")
    assert tus.status_code in (302, 401)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_signing_out_one_device_leaves_the_others_signed_in(app, db, learner):
    phone, desk = _demo_sign_in(app, learner), _demo_sign_in(app, learner)
    assert phone.post("/auth/logout").status_code == 302
    assert _sent_to_sign_in(phone.get("/me"))
    assert desk.get("/me").status_code == 200


def test_a_session_timed_out_is_ended_on_the_server_too(app, db, learner):
    client = _demo_sign_in(app, learner)
    thief = _copy(app, client)
    with client.session_transaction() as sess:
        sess["last_seen"] -= app.config["LMS_SESSION_IDLE_MINUTES"] * 60 + 5
    assert _sent_to_sign_in(client.get("/me"))
    assert _sent_to_sign_in(thief.get("/me"))  # its last_seen is recent, but the record is gone


JSON_POST = {"Accept": "application/json", "X-CSRFToken": "x"}


def test_a_script_signed_out_is_told_in_json_and_a_page_goes_back_to_where_it_was(app, db, learner):
    """The player's progress report, sent by a tab whose session ended elsewhere: a 401 in JSON
    (was a redirect to the sign-in page, which fetch followed to a 200 HTML page the player
    took for success, dropping the seconds it was sending). A form posted after sign-out goes
    to sign-in and back to the page the form was on (its own address answers only posts)."""
    client = _demo_sign_in(app, learner)
    other = _copy(app, client)
    assert client.post("/auth/logout/everywhere").status_code == 302

    answer = other.post("/archives/files/1/progress", json={"report_id": "r1", "intervals": [[0, 2]], "position": 2},
                        headers=JSON_POST)
    assert answer.status_code == 401 and answer.is_json
    assert "もう一度サインイン" in answer.json["message"] and answer.json["sign_in"] == "/auth/login"
    assert other.get("/archives/1/files/1/link", headers={"Accept": "application/json"}).status_code == 401
    # a page still goes to the sign-in page, and back after it
    page = other.get("/me")
    assert _sent_to_sign_in(page) and "next=%2Fme" in page.headers["Location"]
    posted = other.post("/sessions/1/enroll", headers={"Referer": "http://localhost/courses/3?tab=sessions"})
    assert _sent_to_sign_in(posted) and "next=%2Fcourses%2F3%3Ftab%3Dsessions" in posted.headers["Location"]
    assert "enroll" not in posted.headers["Location"]
    elsewhere = other.post("/sessions/1/enroll", headers={"Referer": "https://evil.example/courses/3"})
    assert _sent_to_sign_in(elsewhere) and "next=" not in elsewhere.headers["Location"]


def test_a_script_whose_session_timed_out_is_told_in_json(app, db, learner):
    client = _demo_sign_in(app, learner)
    with client.session_transaction() as sess:
        sess["last_seen"] -= app.config["LMS_SESSION_IDLE_MINUTES"] * 60 + 5
    answer = client.post("/archives/files/1/progress", json={"report_id": "r1", "intervals": [[0, 2]], "position": 2},
                         headers=JSON_POST)
    assert answer.status_code == 401 and "一定時間操作がなかった" in answer.json["message"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(UserSession)) == 0


def test_sign_out_everywhere_ends_every_session_of_the_learner(app, db, learner):
    phone, desk = _demo_sign_in(app, learner), _demo_sign_in(app, learner)
    thief = _copy(app, desk)
    other = factories.make_user("learner", "131016", is_demo=True)
    others = _demo_sign_in(app, other)
    version = learner.session_version
    page = desk.get("/me").get_data(as_text=True)
    assert "すべての端末からサインアウト" in page and "/auth/logout/everywhere" in page

    response = desk.post("/auth/logout/everywhere")

    assert response.status_code == 302
    for client in (phone, desk, thief):
        assert _sent_to_sign_in(client.get("/me"))
    assert others.get("/me").status_code == 200  # someone else's sessions are not touched
    db.session.rollback()
    assert db.session.get(User, learner.id).session_version == version + 1
    [entry] = _audit(db, "auth.signed_out_everywhere")
    assert entry.actor_id == learner.id and entry.target_id == str(learner.id)
    assert entry.details == {"sessions": 2, "by_self": True}  # phone and desk (the copy is desk's)
    # Signing in again starts afresh.
    assert _demo_sign_in(app, learner).get("/me").status_code == 200


def test_sign_out_everywhere_needs_a_signed_in_user_and_the_csrf_token(app, db, learner):
    anonymous = app.test_client()
    assert _sent_to_sign_in(anonymous.post("/auth/logout/everywhere"))
    client = app.test_client()
    factories.sign_in(client, learner)
    app.config["WTF_CSRF_ENABLED"] = True  # (a page elsewhere cannot make the browser post it)
    try:
        assert client.post("/auth/logout/everywhere").status_code == 400
        assert client.get("/me").status_code == 200
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_a_municipal_admin_signs_out_a_user_of_their_municipality(app, db, learner):
    admin = factories.make_user("municipal_admin", "131016")
    device = _demo_sign_in(app, learner)
    member = learner.staff_member
    office = app.test_client()
    factories.sign_in(office, admin)
    page = office.get(f"/roster/{member.id}").get_data(as_text=True)
    assert f"/admin/users/{learner.id}/sign-out-everywhere" in page

    response = office.post(f"/admin/users/{learner.id}/sign-out-everywhere", data={"next": f"/roster/{member.id}"})

    assert response.status_code == 302 and response.headers["Location"] == f"/roster/{member.id}"
    assert _sent_to_sign_in(device.get("/me"))
    assert office.get("/me").status_code == 200  # the admin's own session goes on
    [entry] = _audit(db, "auth.signed_out_everywhere")
    assert entry.actor_id == admin.id and entry.target_id == str(learner.id)
    assert entry.municipality_id == learner.municipality_id
    assert entry.details == {"sessions": 1, "by_self": False}


def test_a_municipal_admin_cannot_sign_out_a_user_of_another_municipality(app, db):
    admin = factories.make_user("municipal_admin", "131016")
    stranger = factories.make_user("learner", "132012", is_demo=True)
    device = _demo_sign_in(app, stranger)
    office = app.test_client()
    factories.sign_in(office, admin)

    refused = office.post(f"/admin/users/{stranger.id}/sign-out-everywhere")
    unknown = office.post("/admin/users/2147483647/sign-out-everywhere")

    assert refused.status_code == unknown.status_code == 404  # no telling which users exist
    assert device.get("/me").status_code == 200
    assert _audit(db, "auth.signed_out_everywhere") == []
    denied = _audit(db, "access.denied")
    assert [(e.actor_id, e.target_type, e.target_id) for e in denied] == [(admin.id, "user", str(stranger.id))]


def test_a_platform_admin_signs_out_anyone_and_a_learner_no_one(app, db, learner):
    stranger = factories.make_user("trainer", "132012", is_demo=True, with_staff=False)
    device = _demo_sign_in(app, stranger)
    nosy = app.test_client()
    factories.sign_in(nosy, learner)
    assert nosy.post(f"/admin/users/{stranger.id}/sign-out-everywhere").status_code == 403
    assert device.get("/me").status_code == 200

    platform = app.test_client()
    factories.sign_in(platform, factories.make_user("platform_admin", "130001"))
    assert platform.post(f"/admin/users/{stranger.id}/sign-out-everywhere").status_code == 302
    assert _sent_to_sign_in(device.get("/me"))


def test_sign_in_tidies_the_users_records_past_the_absolute_limit(app, db, learner):
    limit = timedelta(minutes=app.config["LMS_SESSION_ABSOLUTE_MINUTES"])
    db.session.add_all([
        UserSession(id="stale-1", user_id=learner.id, method="demo", created_at=utcnow() - limit - timedelta(minutes=1)),
        UserSession(id="recent-1", user_id=learner.id, method="demo", created_at=utcnow() - limit + timedelta(minutes=5)),
    ])
    db.session.commit()
    _demo_sign_in(app, learner)
    db.session.rollback()
    ids = set(db.session.scalars(select(UserSession.id).where(UserSession.user_id == learner.id)))
    assert "stale-1" not in ids and "recent-1" in ids and len(ids) == 2


def test_the_session_check_rides_on_the_users_load(app, db, learner):
    """One statement per request loads the user and finds their session record."""
    client = _demo_sign_in(app, learner)
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get("/me").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    touching = [s for s in statements if "user_session" in s]
    assert len(touching) == 1 and "user_account" in touching[0]


def test_the_command_line_signs_a_user_out_everywhere(app, db, runner, learner):
    device = _demo_sign_in(app, learner)
    result = runner.invoke(args=["lms", "sign-out-everywhere", learner.email.upper()])
    assert result.exit_code == 0 and "1 sessions ended" in result.output
    assert _sent_to_sign_in(device.get("/me"))
    [entry] = _audit(db, "auth.signed_out_everywhere")
    assert entry.actor_id is None and entry.target_id == str(learner.id)
    missing = runner.invoke(args=["lms", "sign-out-everywhere", "99999999999999999999"])
    assert missing.exit_code != 0 and "no user" in missing.output
