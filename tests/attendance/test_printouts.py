"""Printed lists of a session (出席簿, 受講者名簿) and the printed QR poster: who sees whom,
what they list and in which order, and what the poster's code lets in."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from lms.attendance.models import Attendance
from lms.audit.models import AuditLog
from lms.enrollment.models import CANCELLED, CONFIRMED, PENDING, WAITLISTED, Enrollment
from tests.factories import municipality

A, B, C = "131016", "131024", "131032"  # 千代田区, 中央区, 港区

PEOPLE = [
    # (municipality, name, kana, department, job title, status)
    (A, "渡辺 花子", "ワタナベ ハナコ", "総務部 総務課", "主事", CONFIRMED),
    (A, "青木 一郎", "アオキ イチロウ", "危機管理部 防災課", "主任", CONFIRMED),
    (B, "山田 太郎", "ヤマダ タロウ", "企画部 企画課", "係長", CONFIRMED),
    (B, "佐藤 次郎", "サトウ ジロウ", "区民部 区民課", "主事", WAITLISTED),
    (A, "伊藤 三郎", "イトウ サブロウ", "福祉部 福祉課", "主事", PENDING),
    (A, "取消 四郎", "トリケシ シロウ", "総務部 人事課", "主事", CANCELLED),
]


def _enroll(db, session, member, status, seq):
    """Written directly, with the event the enrollment area publishes (the summaries follow it)."""
    from lms.common.signals import enrollment_status_changed

    row = Enrollment(session_id=session.id, staff_member_id=member.id,
                     municipality_id=member.municipality_id, status=status, arrival_seq=seq)
    db.session.add(row)
    db.session.flush()
    enrollment_status_changed.send(row, old_status=None, new_status=status, actor=None, notice=None, position=None)


@pytest.fixture
def printable(db, make_user, make_course, make_staff, make_session):
    trainer = make_user("trainer", "130001", name="講師 一")
    course = make_course(title="防災の基礎", owner_id=trainer.id, eligible=[A, B])
    session = make_session(course, delivery="onsite", location="都庁第一本庁舎 32階 研修室", join_url="")
    members = {}
    for seq, (code, name, kana, department, job, status) in enumerate(PEOPLE, start=1):
        member = make_staff(code, full_name=name, full_name_kana=kana, department=department, job_title=job)
        members[name] = member
        _enroll(db, session, member, status, seq)
    session.confirmed_count = 3
    db.session.commit()
    return {"trainer": trainer, "course": course, "session": session, "members": members}


def _names_in_order(html: str) -> list[str]:
    names = [name for _code, name, *_rest in PEOPLE]
    found = [(html.index(name), name) for name in names if name in html]
    return [name for _pos, name in sorted(found)]


def _audit(db, action):
    db.session.rollback()
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def test_sign_in_sheet_lists_confirmed_participants_in_kana_order_with_a_signature_column(printable, client, login_as, db):
    login_as(user=printable["trainer"])
    session = printable["session"]
    response = client.get(f"/attendance/sessions/{session.id}/sign-in-sheet")
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    # 五十音順 across municipalities: アオキ, ヤマダ, ワタナベ; nobody who is not confirmed.
    assert _names_in_order(html) == ["青木 一郎", "山田 太郎", "渡辺 花子"]
    for header in ("所属", "氏名", "署名"):
        assert f'<th scope="col">{header}</th>' in html
    assert "都庁第一本庁舎 32階 研修室" in html and "危機管理部 防災課" in html and "中央区" in html
    assert html.count('<td class="signature"></td>') == 3
    assert 'class="print-sheet"' in html  # printed without the site's header and footer
    entry = _audit(db, "attendance.print_sign_in_sheet")[-1]
    assert entry.target_id == str(session.id) and entry.details == {"rows": 3} and entry.municipality_id is None


def test_participant_list_shows_every_active_application_with_its_status(printable, client, login_as, db):
    login_as(user=printable["trainer"])
    response = client.get(f"/attendance/sessions/{printable['session'].id}/participants")
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    # By municipality (千代田区 before 中央区), then 五十音順; the cancelled application is left out.
    assert _names_in_order(html) == ["青木 一郎", "伊藤 三郎", "渡辺 花子", "佐藤 次郎", "山田 太郎"]
    for header in ("所属", "職名", "氏名", "区市町村", "申込状況"):
        assert f'<th scope="col">{header}</th>' in html
    assert "受講確定 3 名、承認待ち 1 名、キャンセル待ち 1 名" in html
    assert "係長" in html and "キャンセル待ち</span>" in html and "承認待ち</span>" in html
    assert _audit(db, "attendance.print_participants")[-1].details == {"rows": 5}


def test_municipal_admin_sees_only_their_own_staff(printable, client, login_as, db):
    admin = login_as("municipal_admin", A)
    session = printable["session"]
    for path, expected in (("sign-in-sheet", ["青木 一郎", "渡辺 花子"]),
                           ("participants", ["青木 一郎", "伊藤 三郎", "渡辺 花子"])):
        response = client.get(f"/attendance/sessions/{session.id}/{path}")
        assert response.status_code == 200, path
        html = unescape(response.get_data(as_text=True))
        assert _names_in_order(html) == expected, path
        assert "千代田区 の受講者のみ" in html
    assert {e.municipality_id for e in _audit(db, "attendance.print_participants")} == {admin.municipality_id}
    # Asking for another municipality's list is refused (and recorded as a denied access).
    other = municipality(B).id
    assert client.get(f"/attendance/sessions/{session.id}/participants?m={other}").status_code == 403
    assert _audit(db, "access.denied")


def test_municipal_admin_of_another_municipality_sees_nobody(printable, client, login_as, db, make_course, make_session):
    login_as("municipal_admin", C)  # 港区: the course is not open to it, none of its staff applied
    session = printable["session"]
    for path in ("sign-in-sheet", "participants"):
        response = client.get(f"/attendance/sessions/{session.id}/{path}")
        assert response.status_code == 404, path
        assert "山田 太郎" not in response.get_data(as_text=True)
    # A session open to everyone: 港区's admin may print it, and finds only 港区's staff (none).
    open_session = make_session(make_course(owner_id=printable["trainer"].id), delivery="onsite", location="会場")
    for seq, member in enumerate(printable["members"].values(), start=1):
        _enroll(db, open_session, member, CONFIRMED, seq)
    db.session.commit()
    response = client.get(f"/attendance/sessions/{open_session.id}/participants")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _names_in_order(html) == [] and "この研修回への申込者はいません。" in html


def test_platform_admin_sees_everyone_or_one_municipality(printable, client, login_as):
    login_as("platform_admin", "130001")
    session = printable["session"]
    html = unescape(client.get(f"/attendance/sessions/{session.id}/participants").get_data(as_text=True))
    assert len(_names_in_order(html)) == 5
    response = client.get(f"/attendance/sessions/{session.id}/participants?m={municipality(B).id}")
    assert _names_in_order(unescape(response.get_data(as_text=True))) == ["佐藤 次郎", "山田 太郎"]
    assert client.get(f"/attendance/sessions/{session.id}/participants?m=999999").status_code == 404
    assert client.get("/attendance/sessions/999999/participants").status_code == 404


@pytest.mark.parametrize("role", ["learner", "trainer"])
def test_learners_and_other_trainers_are_refused(printable, client, login_as, role):
    login_as(role, A)  # a trainer who does not own the course
    session = printable["session"]
    for path in ("sign-in-sheet", "participants", "qr/poster"):
        response = client.get(f"/attendance/sessions/{session.id}/{path}")
        assert response.status_code == 404, path  # answered as for a session that does not exist
        assert "渡辺 花子" not in response.get_data(as_text=True)


def test_no_sign_in_sheet_for_a_session_held_in_teams(printable, client, login_as, make_session):
    login_as(user=printable["trainer"])
    online = make_session(printable["course"])  # delivered in Teams
    response = client.get(f"/attendance/sessions/{online.id}/sign-in-sheet")
    assert response.status_code == 302 and response.location.endswith(f"/attendance/sessions/{online.id}/participants")
    page = client.get(response.location)
    assert "会場で実施する研修回ではないため、出席簿はありません" in page.get_data(as_text=True)


def test_session_pages_link_to_the_printouts(printable, client, login_as):
    session = printable["session"]
    login_as(user=printable["trainer"])
    html = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    for path in ("sign-in-sheet", "participants", "qr/poster"):
        assert f"/attendance/sessions/{session.id}/{path}" in html
    login_as("municipal_admin", A)
    html = client.get(f"/municipal/sessions/{session.id}").get_data(as_text=True)
    assert f"/attendance/sessions/{session.id}/participants" in html
    assert f"/attendance/sessions/{session.id}/sign-in-sheet" in html


# ---------------------------------------------------------------- the printed QR poster


@pytest.fixture
def running(db, make_user, make_course, make_session):
    """An onsite session that started ten minutes ago (check-in open), one confirmed learner."""
    trainer = make_user("trainer", "130001")
    session = make_session(make_course(owner_id=trainer.id), starts_in=-timedelta(minutes=10), minutes=120,
                           delivery="onsite", location="会場", join_url="")
    learner = make_user("learner", A)
    _enroll(db, session, learner.staff_member, CONFIRMED, 1)
    session.confirmed_count = 1
    db.session.commit()
    return {"trainer": trainer, "session": session, "learner": learner}


def _poster_link(client, session) -> str:
    html = unescape(client.get(f"/attendance/sessions/{session.id}/qr/poster").get_data(as_text=True))
    match = re.search(r"<code>https?://[^/]+(/attendance/check-in/\d+\?code=p[0-9a-f]{24})</code>", html)
    assert match, html[-2000:]
    return match.group(1)


def test_poster_code_checks_in_through_the_window_until_the_code_is_remade(running, app, client, login_as, db):
    session = running["session"]
    login_as(user=running["trainer"])
    link = _poster_link(client, session)
    assert len(_audit(db, "attendance.qr_poster")) == 1  # issuing a long-lived code is recorded
    assert _poster_link(client, session) == link  # the same code on every print of the poster

    learner_client = app.test_client()
    login_as(user=running["learner"], on=learner_client)
    response = learner_client.get(link)
    assert response.status_code == 200
    row = db.session.scalar(select(Attendance).where(Attendance.session_id == session.id))
    assert row is not None and row.attended and row.source == "qr"

    # "QR コードを作り直す" ends the printed code too.
    client.post(f"/attendance/sessions/{session.id}/qr/rotate")
    from lms.common.signals import attendance_changed

    staff_member_id = row.staff_member_id
    db.session.delete(row)
    db.session.flush()
    attendance_changed.send(None, staff_member_id=staff_member_id, session_id=session.id)  # as the app's writers do
    db.session.commit()
    response = learner_client.get(link)
    assert response.status_code == 403 and "有効期限が切れています" in response.get_data(as_text=True)
    assert _poster_link(client, session) != link


def test_poster_code_is_refused_outside_the_window_and_for_another_session(running, client, login_as, db,
                                                                        make_session):
    from lms.attendance import services

    session = running["session"]
    login_as(user=running["trainer"])
    link = _poster_link(client, session)
    code = link.rsplit("=", 1)[1]
    staff = running["learner"]
    with pytest.raises(services.Conflict):
        services.check_in(session.id, code, staff, at=session.ends_at + timedelta(minutes=1))
    other = make_session(session.course, starts_in=-timedelta(minutes=5), delivery="onsite", location="会場")
    services.ensure_checkin_secret(other)
    _enroll(db, other, staff.staff_member, CONFIRMED, 1)
    db.session.commit()
    with pytest.raises(services.NotAllowed):
        services.check_in(other.id, code, staff)


def test_poster_is_only_for_sessions_held_on_site(running, client, login_as, make_session):
    login_as(user=running["trainer"])
    online = make_session(running["session"].course)
    response = client.get(f"/attendance/sessions/{online.id}/qr/poster")
    assert response.status_code == 302
