from __future__ import annotations

import html
import io
import re

from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.common.errors import InvalidInput
from lms.enrollment.models import CANCELLED, CONFIRMED, PENDING, REJECTED, WAITLISTED, Enrollment
from lms.enrollment.municipal import nominate_from_csv
from lms.enrollment.services import enroll
from lms.notifications.models import OutboxMail
from tests import factories


def _denied(db):
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied"))


def _all(db, session_id):
    db.session.rollback()
    return {
        (e.staff_member.employee_number, e.status)
        for e in db.session.scalars(select(Enrollment).where(Enrollment.session_id == session_id))
    }


def test_home_lists_pending_quota_and_open_sessions(app, db, client, login_as, make_user, make_course, make_session):
    course = make_course(title="承認が必要な研修", requires_approval=True)
    session = make_session(course, quotas={"131016": 3})
    learner = make_user("learner", "131016", name="申込 花子")
    other = make_user("learner", "131024", name="他区 太郎")
    enroll(session.id, learner.staff_member.id, learner)
    enroll(session.id, other.staff_member.id, other)
    closed = make_session(make_course(title="中央区だけの研修", eligible=["131024"]))
    login_as("municipal_admin", "131016")
    page = client.get("/municipal").get_data(as_text=True)
    assert "申込 花子" in page and "他区 太郎" not in page
    assert "承認が必要な研修" in page and "割当人数の利用状況" in page
    assert "中央区だけの研修" not in page
    assert client.get(f"/municipal/sessions/{closed.id}").status_code == 404


def test_a_session_page_is_not_found_where_its_course_page_is_not(app, db, client, login_as, make_course, make_session):
    """A draft or cancelled course: 404 for the 研修担当 as its course page is; a cancelled
    session of a published course shows, as it does on the course page, saying it is called off."""
    from lms.courses.models import CANCELLED as COURSE_CANCELLED
    from lms.courses.models import DRAFT

    draft = make_session(make_course(title="下書きの研修", status=DRAFT, published_at=None))
    dropped = make_session(make_course(title="中止した研修", status=COURSE_CANCELLED))
    published = make_course(title="公開中の研修")
    called_off = make_session(published, status="cancelled")
    login_as("municipal_admin", "131016")
    for session in (draft, dropped):
        assert client.get(f"/courses/{session.course_id}").status_code == 404
        assert client.get(f"/municipal/sessions/{session.id}").status_code == 404
    assert client.get(f"/courses/{published.id}").status_code == 200
    page = client.get(f"/municipal/sessions/{called_off.id}")
    text = page.get_data(as_text=True)
    # It says so, and offers neither free seats nor a nomination (one would be refused).
    assert page.status_code == 200 and "この回は中止になりました。" in text
    assert "職員を推薦する" not in text and "空き" not in text


def test_approve_and_reject_with_reason(app, db, client, login_as, make_user, make_course, make_session):
    session = make_session(make_course(requires_approval=True))
    first, second = make_user("learner", "131016"), make_user("learner", "131016")
    e1 = enroll(session.id, first.staff_member.id, first)
    e2 = enroll(session.id, second.staff_member.id, second)
    assert e1.status == PENDING
    login_as("municipal_admin", "131016")
    assert client.post(f"/municipal/enrollments/{e1.id}/approve").status_code == 302
    # A reason is required.
    assert client.post(f"/municipal/enrollments/{e2.id}/reject", data={"reason": ""}).status_code == 422  # the request's own page, the error beside the field
    assert db.session.get(Enrollment, e2.id).status == PENDING
    assert client.post(f"/municipal/enrollments/{e2.id}/reject", data={"reason": "業務の都合のため"}).status_code == 302
    db.session.rollback()
    assert db.session.get(Enrollment, e1.id).status == CONFIRMED
    rejected = db.session.get(Enrollment, e2.id)
    assert rejected.status == REJECTED and rejected.reason == "業務の都合のため"
    kinds = set(db.session.scalars(select(OutboxMail.kind)))
    assert {"confirmed", "rejected"} <= kinds


def test_admin_of_another_municipality_gets_404(app, db, client, login_as, make_user, make_course, make_session):
    """Another municipality's enrollments and staff are answered as if they did not exist (and
    audited); asking for its pages (``?m=``) is a 403."""
    session = make_session(make_course(requires_approval=True))
    learner = make_user("learner", "131024")
    pending = enroll(session.id, learner.staff_member.id, learner)
    chiyoda_staff = factories.make_staff("131016")
    login_as("municipal_admin", "131016")
    assert client.post(f"/municipal/enrollments/{pending.id}/approve").status_code == 404
    assert client.post(f"/municipal/enrollments/{pending.id}/reject", data={"reason": "x"}).status_code == 404
    assert client.post(f"/municipal/enrollments/{pending.id}/swap", data={"employee_number": chiyoda_staff.employee_number}).status_code == 404
    assert client.post("/municipal/enrollments/2147483647/approve").status_code == 404
    chuo_staff = factories.make_staff("131024")
    assert client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": chuo_staff.id}).status_code == 404
    assert client.get(f"/municipal?m={learner.municipality_id}").status_code == 403
    assert _denied(db) == 5
    assert db.session.get(Enrollment, pending.id).status == PENDING


def test_nominate_one_from_search(app, db, client, login_as, make_staff, make_session):
    session = make_session()
    member = make_staff("131016", full_name="推薦 される", full_name_kana="スイセン サレル")
    login_as("municipal_admin", "131016")
    search = client.get(f"/municipal/sessions/{session.id}?q=スイセン").get_data(as_text=True)
    assert "推薦 される" in search
    # The search comes back at its results, below the applicants (found by QA: at the page's top).
    assert f'action="/municipal/sessions/{session.id}#nominate-results"' in search
    assert '<div id="nominate-results" tabindex="-1">' in search and "「スイセン」の検索結果" in search
    assert client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": member.id}).status_code == 302
    assert _all(db, session.id) == {(member.employee_number, CONFIRMED)}
    assert '<div class="flash flash-success" role="status">推薦 される さんの受講が確定しました。</div>' in client.get(
        f"/municipal/sessions/{session.id}").get_data(as_text=True)
    # Onto the waitlist (the session is full): news to act on, not a success.
    session.capacity = 1
    db.session.commit()
    other = make_staff("131016", full_name="待つ 人")
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": other.id})
    page = client.get(f"/municipal/sessions/{session.id}").get_data(as_text=True)
    assert re.search(r'<div class="flash flash-info" role="status">待つ 人 さん：[^<]+</div>', page)
    # Twice: nothing new, and the message still names the person.
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": member.id})
    assert "推薦 される さん：すでにこの研修回の受講が確定しています。" in client.get(
        f"/municipal/sessions/{session.id}").get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 2
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "enrollment.nominate")) is not None
    # no person chosen, or an id the page never offers: said on the page, nothing done (was a bare 400)
    for chosen in ("", "abc", "99999999999999999999"):
        answer = client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": chosen},
                             headers={"Referer": f"http://localhost/municipal/sessions/{session.id}"})
        assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/municipal/sessions/{session.id}")
        assert "推薦する職員を検索して選んでください。" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 2


def test_a_nomination_to_a_course_with_selection_says_it_waits_for_the_organiser(
        app, db, client, login_as, make_staff, make_course, make_session):
    session = make_session(make_course(selection=True, requires_approval=True))
    member = make_staff("131016", full_name="選考 待ち")
    login_as("municipal_admin", "131016")
    assert client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": member.id}).status_code == 302
    assert _all(db, session.id) == {(member.employee_number, PENDING)}
    assert "選考 待ち さんを推薦しました。主催者の選考を待っています。" in client.get(
        f"/municipal/sessions/{session.id}").get_data(as_text=True)


def test_nomination_outcomes_in_english_speak_of_the_nominee_not_to_the_office(app, db, client, login_as, make_staff,
                                                                               make_session):
    """The service's sentences are the learner's too; in English they must not say "You" to the
    training office about someone else."""
    session = make_session(capacity=1)
    member, other = make_staff("131016", full_name="加藤 彩"), make_staff("131016", full_name="待つ 人")
    login_as("municipal_admin", "131016", locale="en")
    for person in (member, member, other):
        client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": person.id})
        page = client.get(f"/municipal/sessions/{session.id}").get_data(as_text=True)
        flashes = re.findall(r'<div class="flash[^"]*" role="status">([^<]+)</div>', page)
        assert flashes and not any(re.search(r"\b(you|your)\b", text, re.IGNORECASE) for text in flashes), flashes
    assert _all(db, session.id) == {(member.employee_number, CONFIRMED), (other.employee_number, WAITLISTED)}
    assert "加藤 彩: Already confirmed for this session." in html.unescape(" ".join(
        re.findall(r'role="status">([^<]+)<', client.post(
            f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": member.id},
            follow_redirects=True).get_data(as_text=True))))


def test_swap_keeps_the_seat(app, db, client, login_as, make_staff, make_session, make_user):
    session = make_session(capacity=1, quotas={"131016": 1})
    admin = make_user("municipal_admin", "131016", with_staff=False)
    first, second = make_staff("131016"), make_staff("131016")
    login_as(user=admin)
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": first.id})
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.staff_member_id == first.id))
    response = client.post(f"/municipal/enrollments/{enrollment.id}/swap", data={"employee_number": second.employee_number, "reason": "担当者変更"})
    assert response.status_code == 302
    assert f"{first.full_name} さんを {second.full_name} さんに差し替えました。" in client.get(
        f"/municipal/sessions/{session.id}").get_data(as_text=True)
    assert _all(db, session.id) == {(first.employee_number, CANCELLED), (second.employee_number, CONFIRMED)}
    db.session.refresh(session)
    assert session.confirmed_count == 1
    # Unknown number: a message beside the row, nothing changes.
    new = db.session.scalar(select(Enrollment).where(Enrollment.staff_member_id == second.id))
    page = client.post(f"/municipal/enrollments/{new.id}/swap", data={"employee_number": "NOPE"})
    assert page.status_code == 422
    assert re.search(rf'id="swap-row-{new.id}".*?職員番号 NOPE の職員が名簿にありません。', page.get_data(as_text=True), re.S)


def test_swap_by_searching_the_roster_with_errors_beside_the_row(app, db, client, login_as, make_staff, make_session,
                                                                 make_user):
    session = make_session(capacity=2)
    admin = make_user("municipal_admin", "131016", with_staff=False)
    first = make_staff("131016", full_name="山田 一郎", full_name_kana="ヤマダ イチロウ")
    second = make_staff("131016", full_name="佐々木 花子", full_name_kana="ササキ ハナコ")
    busy = make_staff("131016", full_name="佐々木 次郎", full_name_kana="ササキ ジロウ")
    outsider = make_staff("131032", full_name="佐々木 三郎", full_name_kana="ササキ サブロウ")
    login_as(user=admin)
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": first.id})
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": busy.id})
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.staff_member_id == first.id))
    # Hiragana finds katakana; another municipality's staff never appear.
    page = client.get(f"/municipal/sessions/{session.id}?swap={enrollment.id}&swap_q=ささき").get_data(as_text=True)
    assert "佐々木 花子" in page and "佐々木 次郎" in page and "佐々木 三郎" not in page
    assert f'name="staff_member_id" value="{second.id}"' in page and 'value="ささき"' in page
    # Choosing someone already in the session: refused beside the row, the search and reason kept.
    refused = client.post(f"/municipal/enrollments/{enrollment.id}/swap",
                          data={"staff_member_id": busy.id, "swap_q": "ささき", "reason": "体調不良のため"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "すでにこの研修回に申し込んでいます" in text
    assert 'value="体調不良のため"' in text and f'name="staff_member_id" value="{second.id}"' in text
    # Another municipality's staff member (a forged id): refused, nothing changes.
    forged = client.post(f"/municipal/enrollments/{enrollment.id}/swap", data={"staff_member_id": outsider.id})
    assert forged.status_code == 422 and "名簿にありません" in forged.get_data(as_text=True)
    done = client.post(f"/municipal/enrollments/{enrollment.id}/swap",
                       data={"staff_member_id": second.id, "reason": "体調不良のため"})
    assert done.status_code == 302
    assert _all(db, session.id) >= {(first.employee_number, CANCELLED), (second.employee_number, CONFIRMED)}
    # The same swap again (a second click, a stale tab): its row is gone, the reason is said above the list.
    again = client.post(f"/municipal/enrollments/{enrollment.id}/swap",
                        data={"staff_member_id": second.id, "reason": "体調不良のため"})
    text = again.get_data(as_text=True)
    assert again.status_code == 422 and f'id="swap-row-{enrollment.id}"' not in text
    assert f'<p class="error-message" role="alert">この申込はすでに {second.full_name} さんに差し替えられています。</p>' in text


def _nomination_csv(rows, encoding="utf-8", header=("研修回ID", "職員番号")) -> bytes:
    lines = [",".join(header)] + [",".join(map(str, row)) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def test_csv_nomination_reports_each_row_and_is_idempotent(app, db, make_user, make_staff, make_session, make_course):
    admin = make_user("municipal_admin", "131016", with_staff=False)
    open_session = make_session(capacity=1)
    other_only = make_session(make_course(eligible=["131024"]))
    a, b = make_staff("131016"), make_staff("131016")
    left = make_staff("131016", status="left")
    chuo = make_staff("131024")
    rows = [
        (open_session.id, a.employee_number),
        (open_session.id, b.employee_number),  # full: waitlisted
        (open_session.id, a.employee_number),  # duplicate in the file
        (open_session.id, "UNKNOWN"),
        (open_session.id, chuo.employee_number),  # another municipality's number: not in our roster
        ("abc", a.employee_number),
        (999999, a.employee_number),
        (other_only.id, b.employee_number),
        (open_session.id, left.employee_number),
        (open_session.id, ""),
    ]
    data = _nomination_csv(rows, encoding="cp932")
    report = nominate_from_csv(a.municipality_id, data, admin)
    assert report.encoding == "Shift_JIS (Windows-31J)"
    outcome = {row.line: (row.outcome, row.message) for row in report.rows}
    assert outcome[2] == ("nominated", "受講が確定しました。")
    assert outcome[3][0] == "nominated" and "キャンセル待ち 1 番目" in outcome[3][1]
    assert outcome[4][0] == "already" and "2 行目" in outcome[4][1]
    assert outcome[5] == ("refused", "職員番号 UNKNOWN の職員が名簿にありません。")
    assert outcome[6][0] == "refused" and chuo.employee_number != a.employee_number
    assert outcome[7] == ("refused", "研修回ID「abc」は研修回の番号ではありません。研修回の一覧にある番号（1以上の整数）を入れてください。")
    assert outcome[8] == ("refused", "研修回ID 999999 の研修回がありません。")
    assert outcome[9][0] == "refused" and "対象としていません" in outcome[9][1]
    assert outcome[10][0] == "refused" and "在籍中の職員ではない" in outcome[10][1]
    assert outcome[11] == ("refused", "職員番号がありません。")
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 2
    again = nominate_from_csv(a.municipality_id, data, admin)
    assert again.counts["nominated"] == 0 and again.counts["already"] == 3
    assert db.session.scalar(select(func.count()).select_from(Enrollment)) == 2


def test_csv_nomination_rows_by_their_line_and_ids_out_of_range(app, db, make_user, make_staff, make_session):
    """Found by QA: blank lines were left out before the rows were numbered, and a 研修回ID that
    is a number but no id (0, 24 digits) was called 「not a number」. A 「"」 left open refuses
    the file (it took the following rows into one field)."""
    admin = make_user("municipal_admin", "131016", with_staff=False)
    session = make_session()
    member = make_staff("131016")
    data = (f"研修回ID,職員番号\r\n\r\n0,{member.employee_number}\r\n\r\n\r\n"
            f"999999999999999999999999,{member.employee_number}\r\n{session.id},{member.employee_number}\r\n").encode()
    report = nominate_from_csv(member.municipality_id, data, admin)
    assert [(row.line, row.outcome, row.message) for row in report.rows] == [
        (3, "refused", "研修回ID 0 の研修回がありません。"),
        (6, "refused", "研修回ID 999999999999999999999999 の研修回がありません。"),
        (7, "nominated", "受講が確定しました。"),
    ]
    broken = f'研修回ID,職員番号\r\n{session.id},"{member.employee_number}\r\n{session.id},X\r\n'.encode()
    try:
        nominate_from_csv(member.municipality_id, broken, admin)
    except InvalidInput as exc:
        assert exc.message.startswith("2 行目から始まる行を CSV として読み取れません。")
    else:
        raise AssertionError("an unclosed quote was read")


def test_csv_nomination_page(app, db, client, login_as, make_staff, make_session):
    session = make_session()
    member = make_staff("131016")
    login_as("municipal_admin", "131016")
    data = b"\xef\xbb\xbf" + _nomination_csv([(session.id, member.employee_number)], header=("session_id", "職員番号"))
    page = client.post("/municipal/nominations/upload", data={"file": (io.BytesIO(data), "n.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "UTF-8 (BOM付き)" in page and "受講が確定しました。" in page
    bad = client.post("/municipal/nominations/upload", data={"file": (io.BytesIO(b"a,b\r\n"), "n.csv")},
                      content_type="multipart/form-data").get_data(as_text=True)
    assert "見出し行に必要な列がありません" in bad


def test_english_pages_bracket_and_colon_in_english(app, db, client, login_as, make_staff, make_session):
    """Found by QA passes: titles and counts put a name in 「（…）」 and a label before 「：」 in the
    English pages too (「Nominate by CSV（千代田区）」): brackets and colons follow the reader's language."""
    import re

    session = make_session()
    member = make_staff("131016")
    login_as("municipal_admin", "131016")
    data = b"\xef\xbb\xbf" + _nomination_csv([(session.id, member.employee_number)], header=("session_id", "職員番号"))
    japanese = client.get("/municipal/nominations/upload").get_data(as_text=True)
    assert re.search(r"<h1>[^<]*（千代田区）</h1>", japanese)
    client.post("/lang", data={"lang": "en", "next": "/"})
    for path in ("/municipal/nominations/upload", "/roster/import"):
        heading = re.search(r"<h1>([^<]*)</h1>", client.get(path).get_data(as_text=True)).group(1)
        assert heading.endswith(" (千代田区)") and "（" not in heading, heading
    report = client.post("/municipal/nominations/upload", data={"file": (io.BytesIO(data), "n.csv")},
                         content_type="multipart/form-data").get_data(as_text=True)
    counts = re.search(r'<ul class="counts">(.*?)</ul>', report, re.S).group(1)
    assert ": 1" in counts and "：" not in counts


def test_an_officer_swapping_themselves_in_is_refused_beside_the_row(db, client, login_as, make_staff, make_session,
                                                                      make_user):
    session = make_session(capacity=2)
    admin = make_user("municipal_admin", "131016")
    first = make_staff("131016", full_name="山田 一郎")
    db.session.commit()
    login_as(user=admin)
    client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": first.id})
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.staff_member_id == first.id))
    refused = client.post(f"/municipal/enrollments/{enrollment.id}/swap",
                          data={"staff_member_id": admin.staff_member.id, "reason": "代わりに"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and f'id="swap-row-{enrollment.id}"' in text
    assert f'id="swap-error-{enrollment.id}" role="alert">ご自身を推薦・差し替えの対象にはできません。' in text
    nominated = client.post(f"/municipal/sessions/{session.id}/nominate", data={"staff_member_id": admin.staff_member.id},
                            follow_redirects=True)
    assert "ご自身を推薦・差し替えの対象にはできません。" in nominated.get_data(as_text=True)
    assert _all(db, session.id) == {(first.employee_number, CONFIRMED)}
