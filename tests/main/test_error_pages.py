"""A change refused by the database answers a page that says so, in Japanese, and nothing of
it is saved: a unique index refusing a form sent twice at once (409), a deadlock or a busy
database (503, try again). The page renders even though the failed flush left the request's
database session unusable (its menu reads the signed-in user)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from lms.courses.models import SearchSynonym
from lms.extensions import db
from lms.roster.models import StaffMember
from tests import factories


def _signed_in(app, client, role="platform_admin"):
    user = factories.make_user(role)
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], factories.session_cookie(app, user))
    return user


def test_a_change_refused_by_a_unique_index_answers_409_and_saves_nothing(app, client):
    _signed_in(app, client)
    taken = SearchSynonym(words="既存 同義語")
    db.session.add(taken)
    db.session.commit()
    taken_id = taken.id

    @app.post("/__twice")
    def twice():
        db.session.add(SearchSynonym(words="新しい 語"))
        db.session.add(SearchSynonym(id=taken_id, words="重複"))
        db.session.flush()  # the duplicate key is refused here
        return "saved"

    response = client.post("/__twice")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "同じ操作がほぼ同時に行われました" in page and "保存されていません" in page
    assert "サインアウト" in page  # the page's menu, with the signed-in user, rendered
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SearchSynonym).where(SearchSynonym.words == "新しい 語")) == 0


def test_a_busy_database_answers_503_with_retry_after(app, client):
    _signed_in(app, client)

    @app.post("/__busy")
    def busy():
        raise OperationalError("UPDATE training_session …", {}, Exception("database is locked"))

    response = client.post("/__busy")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "ただいま混み合っています" in response.get_data(as_text=True)


def test_other_database_errors_stay_500(app, client):
    _signed_in(app, client)

    @app.post("/__broken")
    def broken():
        raise OperationalError("SELECT …", {}, Exception("no such column: nothing"))

    response = client.post("/__broken")
    assert response.status_code == 500
    assert "システムエラーが発生しました" in response.get_data(as_text=True)


def test_a_roster_entry_sent_three_times_at_once_is_added_once(app, live_server):
    """The same 職員 added from three tabs at once: one is added, the others are told (the
    form's message, or the 409 page when they met at the unique index) — never a 500."""
    admin = factories.make_user("municipal_admin", "131016")
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    db.session.commit()
    start = threading.Barrier(3)

    def post(_n):
        start.wait(10)
        return requests.post(f"{live_server.url}/roster/new", headers={"Cookie": cookie}, allow_redirects=False,
                             timeout=60, data={"employee_number": "7700123", "full_name": "同時 登録",
                                               "full_name_kana": "ドウジ トウロク", "department": "総務課"}).status_code

    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(post, range(3)))
    assert any(s in (302, 303) for s in statuses) and all(s in (200, 302, 303, 409) for s in statuses), statuses
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(StaffMember)
                             .where(StaffMember.employee_number == "7700123")) == 1
