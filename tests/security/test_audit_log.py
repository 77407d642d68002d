"""The audit log page: platform admins only, filters, pagination, a safe CSV export, append-only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from lms.audit.export import csv_bytes, neutralise_cell
from lms.audit.models import AuditLog
from lms.audit.services import record_action
from tests.factories import municipality


def _entry(db, action, *, actor=None, when=None, municipality_id=None, target=("course", "1"), **details):
    entry = record_action(actor, action, target[0], target[1], municipality_id, **details)
    if when is not None:
        entry.occurred_at = when
    db.session.commit()
    return entry


@pytest.mark.parametrize("role", ["learner", "trainer", "municipal_admin"])
def test_audit_page_refuses_everyone_but_platform_admins(client, login_as, role):
    login_as(role)
    assert client.get("/admin/audit/").status_code == 403
    assert client.post("/admin/audit/export").status_code == 403


def test_admin_index_links_to_audit_log(client, login_as):
    login_as("platform_admin")
    page = client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/audit/"' in page


def test_audit_page_lists_newest_first_and_filters(db, client, login_as):
    admin = login_as("platform_admin", name="監査 管理者")
    chiyoda, shinjuku = municipality("131016"), municipality("131041")
    _entry(db, "course.publish", actor=admin, when=datetime(2026, 4, 1, 1, 0, tzinfo=UTC),
           municipality_id=chiyoda.id, target=("course", "11"))
    _entry(db, "roster.import", actor=None, when=datetime(2026, 4, 2, 1, 0, tzinfo=UTC),
           municipality_id=shinjuku.id, target=("staff", "22"))
    # 2026-04-02 23:30 JST is still 4月2日 in Tokyo but 14:30 UTC.
    _entry(db, "enrollment.approve", actor=admin, when=datetime(2026, 4, 2, 14, 30, tzinfo=UTC),
           municipality_id=chiyoda.id, target=("enrollment", "33"))

    body = client.get("/admin/audit/").get_data(as_text=True)
    assert body.index("<td>申込の承認</td>") < body.index("<td>職員名簿の取込</td>") < body.index("<td>研修の公開</td>")

    body = client.get("/admin/audit/?action=roster.import").get_data(as_text=True)
    assert "roster.import" in body and "<td>研修の公開</td>" not in body

    body = client.get(f"/admin/audit/?municipality={chiyoda.id}").get_data(as_text=True)
    assert "<td>研修の公開</td>" in body and "<td>職員名簿の取込</td>" not in body

    body = client.get(f"/admin/audit/?actor={admin.id}").get_data(as_text=True)
    assert "<td>申込の承認</td>" in body and "<td>職員名簿の取込</td>" not in body
    body = client.get("/admin/audit/?actor=監査").get_data(as_text=True)
    assert "<td>研修の公開</td>" in body and "<td>職員名簿の取込</td>" not in body

    # Date range in Tokyo time: 4月2日 holds the 10:00 JST entry and the 23:30 JST one.
    body = client.get("/admin/audit/?date_from=2026-04-02&date_to=2026-04-02").get_data(as_text=True)
    assert "<td>職員名簿の取込</td>" in body and "<td>申込の承認</td>" in body
    assert "<td>研修の公開</td>" not in body

    body = client.get("/admin/audit/?target=staff:22").get_data(as_text=True)
    assert "<td>職員名簿の取込</td>" in body and "<td>研修の公開</td>" not in body
    body = client.get("/admin/audit/?target=33").get_data(as_text=True)
    assert "<td>申込の承認</td>" in body and "<td>職員名簿の取込</td>" not in body
    # The filter names the actions in words too (the code stays the value).
    assert '<option value="roster.import">職員名簿の取込</option>' in body


def test_targets_are_named_with_a_link_and_details_read_as_a_list(db, client, login_as, make_course):
    admin = login_as("platform_admin", name="監査 管理者")
    course = make_course(title="情報公開請求の研修")
    _entry(db, "course.update", actor=admin, when=datetime(2026, 4, 1, 1, 0, tzinfo=UTC),
           target=("course", str(course.id)),
           changes={"title": ["旧題", "情報公開請求の研修"]}, reason="誤字の訂正", personal=True)
    body = client.get("/admin/audit/").get_data(as_text=True)
    assert "<td>研修の編集</td>" in body
    assert f'<a href="/manage/courses/{course.id}">情報公開請求の研修</a>' in body
    assert "<dt>題名</dt><dd>旧題 → 情報公開請求の研修</dd>" in body
    assert "<dt>理由</dt><dd>誤字の訂正</dd>" in body and "<dt>個人情報を含む</dt><dd>はい</dd>" in body
    assert "\\u" not in body and "{&#34;" not in body  # no raw JSON
    exported = client.post("/admin/audit/export").data.decode("utf-8-sig")
    assert "研修の編集" in exported and "研修：情報公開請求の研修" in exported
    assert "題名：旧題 → 情報公開請求の研修" in exported and "理由：誤字の訂正" in exported


def test_a_detail_named_alike_in_two_actions_reads_as_each_action_means_it(db, client, login_as):
    """``sessions`` is a number of 研修回 in an allocation, of sign-ins in a sign-out everywhere."""
    admin = login_as("platform_admin")
    _entry(db, "auth.signed_out_everywhere", actor=admin, target=("user", str(admin.id)), sessions=15, by_self=True)
    _entry(db, "plan.allocate", actor=admin, target=("training_plan", "1"), sessions=3)
    body = client.get("/admin/audit/").get_data(as_text=True)
    assert "<dt>終了したサインイン</dt><dd>15</dd>" in body and "<dt>研修回</dt><dd>3</dd>" in body
    exported = client.post("/admin/audit/export").data.decode("utf-8-sig")
    assert "終了したサインイン：15 / 本人による操作：はい" in exported and "研修回：3" in exported
    assert "研修回：15" not in exported


def test_codes_and_ids_in_details_read_as_words_and_names(db, client, login_as, make_course, municipality):
    """An export's table, format and encoding, an activity's kind and the ids of a municipality,
    a course or a session read as the pages say them (the log showed trend, csv, cp932, survey, 25)."""
    admin = login_as("platform_admin")
    course = make_course(title="公文書管理の研修")
    town = municipality("132012")
    _entry(db, "export.completion", actor=admin, target=("export", "trend"), table="trend", format="csv",
           encoding="cp932", scope_municipality_id=town.id, course_id=course.id)
    _entry(db, "activity.create", actor=admin, target=("activity", "1"), course_id=course.id, kind="survey")
    _entry(db, "course.update", actor=admin, course_id=2**31 + 5)  # (no such course: the number as it is)
    body = client.get("/admin/audit/").get_data(as_text=True)
    for words in ("<dt>表</dt><dd>月別推移</dd>", "<dt>形式</dt><dd>CSV</dd>", "<dt>文字コード</dt><dd>Shift_JIS</dd>",
                  "<dt>対象の区市町村</dt><dd>八王子市</dd>", "<dt>研修</dt><dd>公文書管理の研修</dd>",
                  "<dt>種類</dt><dd>研修アンケート</dd>", f"<dt>研修</dt><dd>{2**31 + 5}</dd>"):
        assert words in body, words
    exported = client.post("/admin/audit/export").data.decode("utf-8-sig")
    assert "表：月別推移 / 形式：CSV / 文字コード：Shift_JIS / 対象の区市町村：八王子市 / 研修：公文書管理の研修" in exported


def test_the_ids_of_a_page_are_named_in_one_query_per_kind(db, client, login_as, make_course):
    """Thirty entries naming thirty courses cost the page as many statements as three do."""
    from sqlalchemy import event

    admin = login_as("platform_admin")
    courses = [make_course(title=f"研修{n:02d}") for n in range(30)]

    def statements() -> int:
        seen = []
        listener = lambda *args, **kw: seen.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            body = client.get("/admin/audit/").get_data(as_text=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen), body

    for course in courses[:3]:
        _entry(db, "activity.create", actor=admin, target=("activity", "1"), course_id=course.id, kind="quiz")
    few, _body = statements()
    for course in courses[3:]:
        _entry(db, "activity.create", actor=admin, target=("activity", "1"), course_id=course.id, kind="quiz")
    many, body = statements()
    assert many == few and all(f"<dd>研修{n:02d}</dd>" in body for n in range(30))


def test_bad_filters_answer_a_clear_message_not_an_error(client, login_as):
    login_as("platform_admin")
    response = client.get("/admin/audit/?date_from=2026-05-01&date_to=2026-04-01")
    assert response.status_code == 200
    assert "終了日は開始日以降の日付を指定してください。" in response.get_data(as_text=True)
    response = client.get("/admin/audit/?date_from=yesterday&municipality=x&page=abc")
    assert response.status_code == 200


def test_a_wrong_filter_lists_and_exports_nothing_instead_of_everything(db, client, login_as):
    """A mistyped date must not widen the search: the page says what to correct and lists no
    entry (nor offers the CSV), and an export asked with it is refused, not the whole log."""
    login_as("platform_admin")
    record_action(None, "test.first", "staff_member", 1)
    record_action(None, "test.second", "course", 2)
    db.session.commit()
    assert "<td>test.first</td>" in client.get("/admin/audit/?action=test.first").get_data(as_text=True)
    body = client.get("/admin/audit/?action=test.first&date_from=2026-02-30").get_data(as_text=True)
    assert "絞り込みの条件に誤りがあります" in body
    assert "<td>test.second</td>" not in body and "<td>test.first</td>" not in body
    assert "この条件で CSV を出力" not in body
    for bad in ({"action": "test.first", "date_from": "2026-02-30"}, {"municipality": "x"}):
        response = client.post("/admin/audit/export", data=bad)
        assert response.status_code == 302 and response.mimetype != "text/csv"
    assert not db.session.scalars(select(AuditLog).where(AuditLog.action == "export.audit")).all()
    body = client.get("/admin/audit/").get_data(as_text=True)
    assert "書き出していません" in body
    response = client.post("/admin/audit/export", data={"action": "test.first"})
    assert response.mimetype == "text/csv" and "test.second" not in response.get_data(as_text=True)


def test_audit_page_paginates(db, client, login_as):
    login_as("platform_admin")
    for n in range(55):
        record_action(None, "test.bulk", "thing", n)
    db.session.commit()
    first = client.get("/admin/audit/?action=test.bulk").get_data(as_text=True)
    second = client.get("/admin/audit/?action=test.bulk&page=2").get_data(as_text=True)
    assert first.count("<td>test.bulk</td>") == 50
    assert second.count("<td>test.bulk</td>") == 5
    assert "action=test.bulk" in first and 'rel="next"' in first


def test_export_is_bom_csv_formula_safe_and_itself_audited(db, client, login_as):
    admin = login_as("platform_admin")
    _entry(db, "course.publish", actor=admin, target=("course", "=HYPERLINK(\"http://evil\")"),
           note="+cmd|' /C calc'!A0")
    response = client.post("/admin/audit/export", data={"action": "course.publish"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][2] == "操作"
    assert len(rows) == 2
    row = rows[1]
    assert row[2] == "course.publish"
    assert row[6] == "'=HYPERLINK(\"http://evil\")"
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    exported = db.session.scalars(select(AuditLog).where(AuditLog.action == "export.audit")).all()
    assert len(exported) == 1
    assert exported[0].actor_id == admin.id
    assert exported[0].details == {"filters": {"action": "course.publish"}}


def test_export_requires_csrf_token(app, client, login_as):
    login_as("platform_admin")
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/admin/audit/export").status_code == 400


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=x", "'\t=x"),
    ("＝1+1", "'＝1+1"), ("普通の文字", "普通の文字"), (None, ""), (12, "12"),
])
def test_neutralise_cell(value, expected):
    assert neutralise_cell(value) == expected


def test_csv_bytes_has_bom_and_neutralises_header_and_rows():
    data = csv_bytes(["=h"], [["-2"], ["ok"]])
    assert data.startswith("\ufeff".encode())
    assert data.decode("utf-8-sig").splitlines() == ["'=h", "'-2", "ok"]


def test_orm_refuses_update_and_delete(db):
    entry = _entry(db, "course.publish")
    entry.action = "changed"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.get(AuditLog, entry.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 1


def test_postgresql_trigger_refuses_raw_update_and_delete(db, audit_trigger):
    entry = _entry(db, "course.publish")
    for statement in (
        f"UPDATE audit_log SET action = 'x' WHERE id = {entry.id}",
        f"DELETE FROM audit_log WHERE id = {entry.id}",
    ):
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_log (occurred_at, actor_label, action, target_type, target_id, "
                          "ip_address, request_id, details) VALUES (now(), 'system', 'raw.insert', '', '', '', '', '{}')"))
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 2


def test_every_detail_the_code_records_has_a_plain_name():
    """The audit page and its CSV read every detail in words: each keyword that any call of
    ``record_action`` or ``record_access`` in lms/ passes (and the denial's ``path``) has a
    label, so a new one cannot slip in as a raw code."""
    import ast
    from pathlib import Path

    import lms
    from lms.admin.audit_text import DETAIL_LABELS

    positional = {"actor", "action", "target_type", "target_id", "municipality_id"}
    used: dict[str, str] = {}
    for path in Path(lms.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("record_action", "record_access"):
                    used.update({kw.arg: str(path) for kw in node.keywords if kw.arg and kw.arg not in positional})
    assert len(used) > 50  # (the scan found the calls)
    missing = {key: where for key, where in {**used, "path": "lms/audit/services.py"}.items() if key not in DETAIL_LABELS}
    assert not missing, missing
