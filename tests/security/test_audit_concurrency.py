"""Pages that only read, then record who saw what (an export, a printed list, the QR poster),
answered to several people at once: none fails with "database is locked".

On SQLite a request's transaction begins as a reader (the signed-in user is read first); a
reader that turns writer for its audit entry while another request writes fails at once
(SQLITE_BUSY; busy_timeout does not help it). These pages take the write lock before their
first write (``lms.audit.services.record_access``, ``lms.common.database.ensure_writer``);
a changing request (a form post) takes it at its first use of the database
(``lms.common.database.write_lock_for_changes``).
Run on both databases; PostgreSQL never had the failure and must keep answering the same."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.courses.models import ONSITE, SearchSynonym
from lms.extensions import db
from tests import factories

ROUNDS = 3


def _cookie(app, user) -> str:
    return f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, user)}"


def test_read_then_audit_pages_answer_concurrent_requests(app, live_server):
    session = factories.make_session(delivery=ONSITE, join_url=None, quotas={"131016": 5})
    platform = factories.make_user("platform_admin")
    admin = factories.make_user("municipal_admin", "131016")
    platform_cookie, admin_cookie = _cookie(app, platform), _cookie(app, admin)
    sid, course_id = session.id, session.course_id
    requests_ = [
        ("GET", f"/attendance/sessions/{sid}/participants", platform_cookie),
        ("GET", f"/attendance/sessions/{sid}/participants", admin_cookie),
        ("GET", f"/attendance/sessions/{sid}/sign-in-sheet", platform_cookie),
        ("GET", f"/attendance/sessions/{sid}/sign-in-sheet", admin_cookie),
        ("GET", f"/attendance/sessions/{sid}/qr/poster", platform_cookie),
        ("GET", f"/attendance/sessions/{sid}/qr", platform_cookie),
        ("GET", "/completion/export/courses.xlsx", admin_cookie),
        ("GET", "/completion/export/courses.csv", platform_cookie),
        ("GET", f"/completion/courses/{course_id}/certificates.zip", admin_cookie),
        ("POST", "/admin/audit/export", platform_cookie),
    ] * 2
    audited = {"attendance.print_participants", "attendance.print_sign_in_sheet", "attendance.qr_poster",
               "export.completion", "export.audit"}
    before = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action.in_(audited)))
    db.session.commit()

    failures = []
    for _round in range(ROUNDS):
        start = threading.Barrier(len(requests_))

        def call(item):
            method, path, cookie = item
            start.wait(10)
            response = requests.request(method, live_server.url + path, headers={"Cookie": cookie},
                                        allow_redirects=False, timeout=60)
            response.content  # the whole body: a streamed export fails, if at all, while it streams
            return method, path, response.status_code

        with ThreadPoolExecutor(len(requests_)) as pool:
            results = list(pool.map(call, requests_))
        failures += [r for r in results if r[2] != 200]
    assert not failures, failures

    db.session.rollback()
    after = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action.in_(audited)))
    # Every audited request left its entry (the QR page records nothing).
    assert after - before == ROUNDS * (len(requests_) - 2)


def test_changes_posted_at_once_wait_their_turn(app, live_server):
    """Forms posted by several people at once (here the site pages' editor, whose first save
    creates the page's row): the edit takes the page's lock (on SQLite the write lock, before
    it reads), so each waits its turn; none fails, and each change is recorded."""
    platform = factories.make_user("platform_admin")
    cookie = _cookie(app, platform)
    before = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "site_page.update"))
    db.session.commit()
    posts = [(slug, n) for n in range(8) for slug in ("accessibility", "privacy")]
    start = threading.Barrier(len(posts))

    def post(item):
        slug, n = item
        start.wait(10)
        response = requests.post(f"{live_server.url}/admin/pages/{slug}", headers={"Cookie": cookie}, timeout=60,
                                 allow_redirects=False,
                                 data={"title": f"方針 {n}", "body_md": f"本文 {n} " + "あ" * 50, "title_en": "", "body_md_en": ""})
        return slug, n, response.status_code

    with ThreadPoolExecutor(len(posts)) as pool:
        results = list(pool.map(post, posts))
    assert [r for r in results if r[2] not in (302, 303)] == []
    db.session.rollback()
    after = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "site_page.update"))
    assert after - before == len(posts)


def test_forms_that_read_then_write_and_refusals_at_once(app, live_server):
    """Changes whose service reads before it writes (a synonym group checks the words already
    taken) posted by several people at once, beside posts refused for another municipality's
    record: every change is made, every refusal answers 403/404 and leaves its audit entry
    (on SQLite a changing request begins with the write lock, and the refusal is recorded once
    its request's transaction has ended — lms.common.database.write_lock_for_changes)."""
    platform = factories.make_user("platform_admin")
    admin = factories.make_user("municipal_admin", "131016")
    stranger = factories.make_staff("131024")
    platform_cookie, admin_cookie = _cookie(app, platform), _cookie(app, admin)
    stranger_id = stranger.id
    before_denied = db.session.scalar(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied"))
    db.session.commit()
    posts = [("synonym", n) for n in range(10)] + [("refused", n) for n in range(6)]
    start = threading.Barrier(len(posts))

    def post(item):
        kind, n = item
        start.wait(10)
        if kind == "synonym":
            response = requests.post(f"{live_server.url}/admin/search/synonyms", headers={"Cookie": platform_cookie},
                                     data={"words": f"同義語{n}甲 同義語{n}乙"}, allow_redirects=False, timeout=60)
        else:
            response = requests.post(f"{live_server.url}/roster/{stranger_id}/edit", headers={"Cookie": admin_cookie},
                                     data={"full_name": f"書換 {n}"}, allow_redirects=False, timeout=60)
        return kind, n, response.status_code

    with ThreadPoolExecutor(len(posts)) as pool:
        results = list(pool.map(post, posts))
    assert [r for r in results if r[0] == "synonym" and r[2] not in (302, 303)] == []
    assert [r for r in results if r[0] == "refused" and r[2] not in (403, 404)] == []
    db.session.rollback()
    groups = db.session.scalars(select(SearchSynonym.words).where(SearchSynonym.words.like("同義語%"))).all()
    assert sorted(groups) == sorted(f"同義語{n}甲 同義語{n}乙" for n in range(10))
    denied = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied"))
    assert denied - before_denied == 6
    assert db.session.get(type(stranger), stranger_id).full_name == stranger.full_name
