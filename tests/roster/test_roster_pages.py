from __future__ import annotations

import io
from datetime import date

from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.roster import services
from lms.roster.models import ACTIVE, LEFT, StaffHistory, StaffMember
from tests import factories
from tests.pages import same_page


def _denied(db):
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied"))


def test_municipal_admin_sees_own_roster_only(app, db, client, login_as, make_staff):
    make_staff("131016", full_name="千代田 一郎", department="総務課")
    make_staff("131024", full_name="中央 次郎")
    login_as("municipal_admin", "131016")
    page = client.get("/roster").get_data(as_text=True)
    assert "千代田 一郎" in page and "中央 次郎" not in page
    filtered = client.get("/roster?department=総務課&q=一郎").get_data(as_text=True)
    assert "千代田 一郎" in filtered
    assert "千代田 一郎" not in client.get("/roster?status=left").get_data(as_text=True)


def test_cross_municipality_access_is_refused_and_audited(app, db, client, login_as, make_staff):
    """Another municipality's pages: 403. Its staff members: 404, exactly as an unknown id."""
    theirs = make_staff("131024", full_name="中央 次郎")
    chuo = factories.municipality("131024")
    login_as("municipal_admin", "131016")
    assert client.get(f"/roster?m={chuo.id}").status_code == 403
    refused, unknown = client.get(f"/roster/{theirs.id}"), client.get("/roster/2147483647")
    assert refused.status_code == unknown.status_code == 404
    assert same_page(refused, f"/roster/{theirs.id}", unknown, "/roster/2147483647")
    assert client.post(f"/roster/{theirs.id}/edit", data={"employee_number": "X", "full_name": "改ざん"}).status_code == 404
    assert client.post(f"/roster/{theirs.id}/transfer", data={"department": "X", "effective_on": "2027-04-01"}).status_code == 404
    assert client.post(f"/roster/{theirs.id}/leave", data={"left_on": "2027-04-01"}).status_code == 404
    assert client.get(f"/roster/export.csv?m={chuo.id}").status_code == 403
    assert _denied(db) == 6
    db.session.refresh(theirs)
    assert theirs.full_name == "中央 次郎" and theirs.status == "active"


def test_learner_and_trainer_cannot_open_the_roster(app, client, login_as):
    login_as("trainer")
    assert client.get("/roster").status_code == 403
    assert client.get("/municipal").status_code == 403


def test_platform_admin_chooses_a_municipality(app, db, client, login_as, make_staff):
    make_staff("131024", full_name="中央 次郎")
    login_as("platform_admin")
    chooser = client.get("/roster").get_data(as_text=True)
    assert "区市町村を選ぶ" in chooser
    chuo = factories.municipality("131024")
    assert "中央 次郎" in client.get(f"/roster?m={chuo.id}").get_data(as_text=True)


def test_add_transfer_and_leave_through_the_pages(app, db, client, login_as):
    login_as("municipal_admin", "131016")
    response = client.post("/roster/new", data={
        "employee_number": "7001", "full_name": "新規 職員", "full_name_kana": "シンキ ショクイン",
        "department": "総務課", "job_title": "主事", "sign_in_name": "Shinki@city.example.lg.jp", "email": "",
    })
    assert response.status_code == 302
    member = db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "7001"))
    assert member.sign_in_name == "shinki@city.example.lg.jp"
    # Duplicate number: the form says why.
    again = client.post("/roster/new", data={"employee_number": "7001", "full_name": "重複"})
    assert again.status_code == 200 and "職員番号 7001 はすでに" in again.get_data(as_text=True)
    # A date of spaces only (a full-width one, a tab) is no date: the form says so and keeps what was typed.
    for blank in (" ", "\u3000", "\t"):
        refused = client.post(f"/roster/{member.id}/transfer", data={"department": "財政課", "job_title": "", "effective_on": blank})
        assert refused.status_code == 422 and "発令日を入力してください。" in refused.get_data(as_text=True)
        assert 'value="財政課"' in refused.get_data(as_text=True)
        refused = client.post(f"/roster/{member.id}/leave", data={"left_on": blank})
        assert refused.status_code == 422 and "退職・転出日を入力してください。" in refused.get_data(as_text=True)
    db.session.refresh(member)
    assert member.department == "総務課" and member.left_on is None and member.history == []
    assert client.post(f"/roster/{member.id}/transfer", data={"department": "財政課", "job_title": "", "effective_on": "2027-04-01"}).status_code == 302
    # A departure recorded ahead (年度末): in service until the day, then left.
    assert client.post(f"/roster/{member.id}/leave", data={"left_on": "2028-03-31"}).status_code == 302
    db.session.refresh(member)
    assert member.department == "財政課" and member.job_title == "主事" and member.status == ACTIVE
    assert member.left_on == date(2028, 3, 31)
    assert [h.kind for h in member.history] == ["transfer", "left"]
    detail = client.get(f"/roster/{member.id}").get_data(as_text=True)
    assert "人事異動" in detail and "2028年3月31日 に退職・転出予定" in detail
    assert "2028年3月31日 に退職・転出予定" in client.get("/roster").get_data(as_text=True)
    assert services.apply_due_departures(date(2028, 3, 30)) == 0
    assert services.apply_due_departures(date(2028, 3, 31)) == 1
    db.session.refresh(member)
    assert member.status == LEFT
    detail = client.get(f"/roster/{member.id}").get_data(as_text=True)
    assert "退職・転出（2028年3月31日）" in detail
    actions = set(db.session.scalars(select(AuditLog.action)))
    assert {"roster.add", "roster.transfer", "roster.leave"} <= actions


def test_a_departed_member_gets_no_transfer(app, db, client, login_as, make_staff):
    """Found by QA: a 人事異動 posted for someone already left (a page opened before the
    departure was recorded) was recorded and moved them; it is refused, and they stay as they were."""
    login_as("municipal_admin", "131016")
    member = make_staff("131016", department="総務課", job_title="主事")
    db.session.commit()
    assert client.post(f"/roster/{member.id}/leave", data={"left_on": "2026-03-31"}).status_code == 302
    db.session.refresh(member)
    assert member.status == LEFT
    response = client.post(f"/roster/{member.id}/transfer", data={"department": "財政課", "job_title": "主任",
                                                                 "effective_on": "2027-04-01"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "退職・転出済みの職員には人事異動を記録できません。" in page and "人事異動を記録しました。" not in page
    db.session.expire_all()
    member = db.session.get(StaffMember, member.id)
    assert (member.department, member.job_title, member.status) == ("総務課", "主事", LEFT)
    assert [h.kind for h in member.history] == ["left"]
    assert "roster.transfer" not in set(db.session.scalars(select(AuditLog.action)))


def test_a_refused_entry_names_the_field_it_is_about(app, db, client, login_as, make_staff):
    """The form marks the field the problem is in (not always the 職員番号), and a 職員番号 that
    an import would refuse (so the roster's own export could not be read back) is refused here too."""
    login_as("municipal_admin", "131016")
    make_staff("131016", employee_number="7100", full_name="既存 職員", sign_in_name="taken@city.example.lg.jp")
    db.session.commit()
    base = {"employee_number": "7101", "full_name": "新規 職員", "full_name_kana": "", "department": "総務課",
            "job_title": "主事", "email": ""}

    def error_of(data, field):
        page = client.post("/roster/new", data=data)
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        start = html.find(f'id="{field}-error"')
        assert start != -1, html
        return html[start:html.index("</p>", start)]

    assert "メールアドレスの形式" in error_of({**base, "sign_in_name": "bad sign in"}, "sign_in_name")
    assert "すでに別の職員" in error_of({**base, "sign_in_name": "Taken@city.example.lg.jp"}, "sign_in_name")
    assert "使えない文字" in error_of({**base, "employee_number": "=1+2", "sign_in_name": ""}, "employee_number")
    assert "すでに" in error_of({**base, "employee_number": "7100", "sign_in_name": ""}, "employee_number")
    assert db.session.scalar(select(func.count()).select_from(StaffMember).where(  # nothing added
        StaffMember.employee_number.in_(["7101", "=1+2"]))) == 0
    # Full-width digits are the same number (NFKC), and accepted.
    assert client.post("/roster/new", data={**base, "employee_number": "７１０１", "sign_in_name": ""}).status_code == 302
    assert db.session.scalar(select(StaffMember.id).where(StaffMember.employee_number == "7101")) is not None


def test_csv_upload_and_export_through_the_pages(app, db, client, login_as):
    login_as("municipal_admin", "131016")
    data = "職員番号,氏名,氏名カナ,所属,職名,サインイン名\r\n8001,表計算 太郎,ヒョウケイサン タロウ,総務課,主事,hyo@city.example.lg.jp\r\n".encode("cp932")
    response = client.post("/roster/import", data={"file": (io.BytesIO(data), "meibo.csv")}, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Shift_JIS (Windows-31J)" in page and "名簿に反映しました" in page
    bad = client.post("/roster/import", data={"file": (io.BytesIO(b"x,y\r\n1,2\r\n"), "bad.csv")}, content_type="multipart/form-data")
    assert "見出し行に必要な列がありません" in bad.get_data(as_text=True)
    export = client.get("/roster/export.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert export.data.startswith(b"\xef\xbb\xbf") and "表計算 太郎".encode() in export.data
    assert "表計算 太郎".encode("cp932") in client.get("/roster/export.csv?encoding=cp932").data
    exports = db.session.scalars(select(AuditLog).where(AuditLog.action == "roster.export")).all()
    assert [e.details["encoding"] for e in exports] == ["utf-8", "cp932"]


def test_graph_sync_without_configuration_says_so(app, client, login_as):
    login_as("municipal_admin", "131016")
    assert client.post("/roster/sync").status_code == 302
    assert "Microsoft Graph が設定されていない" in client.get("/roster").get_data(as_text=True)


def test_search_finds_kana_typed_in_hiragana_or_without_spaces(app, db, client, login_as, make_staff):
    make_staff("131016", full_name="山田 太郎", full_name_kana="ヤマダ タロウ")
    make_staff("131016", full_name="鈴木 花子", full_name_kana="スズキ ハナコ")
    login_as("municipal_admin", "131016")
    for q in ("やまだ", "ヤマダタロウ", "山田", "ﾔﾏﾀﾞ"):
        page = client.get("/roster", query_string={"q": q}).get_data(as_text=True)
        assert "山田 太郎" in page and "鈴木 花子" not in page, q
    # % and _ are characters like any other (they matched everyone), here and in the
    # nomination search that shares the condition.
    make_staff("131016", full_name="達成率100%チーム 一郎")
    for q in ("%", "_", "%%", "山%"):
        page = client.get("/roster", query_string={"q": q}).get_data(as_text=True)
        assert "山田 太郎" not in page and "鈴木 花子" not in page, q
    assert "達成率100%チーム 一郎" in client.get("/roster", query_string={"q": "0%"}).get_data(as_text=True)


def test_roster_csv_is_labelled_with_its_own_charset(app, client, login_as, make_staff):
    make_staff("131016", full_name="髙橋 一郎")
    login_as("municipal_admin", "131016")
    utf8 = client.get("/roster/export.csv")
    sjis = client.get("/roster/export.csv?encoding=cp932")
    assert utf8.headers.getlist("Content-Type") == ["text/csv; charset=UTF-8"]
    assert sjis.headers.getlist("Content-Type") == ["text/csv; charset=Shift_JIS"]
    assert "髙橋 一郎" in sjis.data.decode("cp932")
    # Saved side by side, the two files keep their own names.
    assert 'filename="roster-131016.csv"' in utf8.headers["Content-Disposition"]
    assert 'filename="roster-131016-sjis.csv"' in sjis.headers["Content-Disposition"]


def test_a_transfer_or_departure_sent_three_times_at_once_is_recorded_once(app, live_server):
    """Two tabs, a double click: the entry's row is locked and read fresh, so the repeats
    meet the first one's result (「所属・職名が現在と同じです」, 「すでに退職・転出」)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from lms.extensions import db

    admin = factories.make_user("municipal_admin", "131016")
    member = factories.make_staff("131016", department="総務課", job_title="主事")
    member_id = member.id
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    db.session.commit()

    def three_at_once(path, data):
        start = threading.Barrier(3)

        def post(_n):
            start.wait(10)
            return requests.post(f"{live_server.url}{path}", headers={"Cookie": cookie}, data=data,
                                 allow_redirects=False, timeout=60).status_code

        with ThreadPoolExecutor(3) as pool:
            return sorted(pool.map(post, range(3)))

    # The first transfer is recorded; the others find the member already there and say so beside the form
    # (the departures: already recorded, said on the member's page).
    assert three_at_once(f"/roster/{member_id}/transfer",
                         {"department": "財政課", "job_title": "主任", "effective_on": "2027-04-01"}) == [302, 422, 422]
    assert three_at_once(f"/roster/{member_id}/leave", {"left_on": "2028-03-31"}) == [302, 302, 302]
    db.session.rollback()
    kinds = db.session.scalars(select(StaffHistory.kind).where(StaffHistory.staff_member_id == member_id)).all()
    assert sorted(kinds) == ["left", "transfer"]


def test_a_departure_before_the_hire_date_is_refused(app, db, client, login_as):
    login_as("municipal_admin", "131016")
    member = factories.make_staff("131016", hired_on=date(2016, 4, 1))
    db.session.commit()
    page = client.post(f"/roster/{member.id}/leave", data={"left_on": "1900-01-01"},
                       follow_redirects=True).get_data(as_text=True)
    assert "採用日（2016年4月1日）より前です" in page
    db.session.refresh(member)
    assert member.status == ACTIVE and member.left_on is None


def test_a_scheduled_departure_given_another_day_keeps_one_history_entry(app, db, client, login_as):
    """Recorded for 3月31日, then moved to 4月30日: one 'left' entry, on the new day (the audit
    log keeps both); a year no record can have is named as such, not as a wrong format."""
    login_as("municipal_admin", "131016")
    member = factories.make_staff("131016")
    db.session.commit()
    this_year = date.today().year
    first, second = date(this_year + 1, 3, 31), date(this_year + 1, 4, 30)
    for day in (first, second):
        assert client.post(f"/roster/{member.id}/leave", data={"left_on": day.isoformat()}).status_code == 302
    db.session.expire_all()
    entries = db.session.scalars(select(StaffHistory).where(StaffHistory.staff_member_id == member.id,
                                                            StaffHistory.kind == "left")).all()
    assert [e.effective_on for e in entries] == [second]
    assert db.session.get(StaffMember, member.id).left_on == second
    logged = db.session.scalars(select(AuditLog.details).where(AuditLog.action == "roster.leave")).all()
    assert len(logged) == 2
    page = client.post(f"/roster/{member.id}/leave", data={"left_on": "2999-03-31"}, follow_redirects=True)
    html = page.get_data(as_text=True)
    assert "年は1900年から2199年までで入力してください。" in html and "年・月・日の順で" not in html
    assert db.session.get(StaffMember, member.id).left_on == second


def test_a_refused_transfer_or_departure_keeps_what_was_typed(app, db, client, login_as):
    """Found by QA: a transfer with a date that does not exist came back as the member's page
    with the department and title emptied and the date set to today (pressing the button again
    recorded today); the form comes back as sent, its error beside the date."""
    login_as("municipal_admin", "131016")
    member = factories.make_staff("131016", department="総務課", job_title="主事")
    db.session.commit()
    response = client.post(f"/roster/{member.id}/transfer",
                           data={"department": "新しい課", "job_title": "係長", "effective_on": "2026-02-30"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="新しい課"' in page and 'value="係長"' in page and 'value="2026-02-30"' in page
    assert 'id="effective_on-error"' in page and "存在しない日付です" in page
    assert 'id="left_on"' in page and "入力内容に誤りがあります" in page
    response = client.post(f"/roster/{member.id}/leave", data={"left_on": "99999999999999999999"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'value="99999999999999999999"' in page and 'id="left_on-error"' in page
    db.session.refresh(member)
    assert (member.department, member.job_title, member.status, member.history) == ("総務課", "主事", ACTIVE, [])
