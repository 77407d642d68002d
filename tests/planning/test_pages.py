"""年間研修計画 pages: the platform admin's plan and allocation, the offices' survey."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.common.timeutil import fiscal_year_of, to_tokyo, utcnow
from lms.courses.models import SessionQuota
from lms.extensions import db
from lms.planning.models import PlanAllocation, PlanDemand, TrainingPlan
from tests import factories


def _plan_flow(client, login_as, make_session):
    session = make_session(starts_in=timedelta(days=40), capacity=10)
    admin = login_as("platform_admin", "130001")
    year = fiscal_year_of(session.starts_at)
    response = client.post("/plans/", data={"fiscal_year": str(year), "guaranteed_minimum": "1", "note": "",
                                           "survey_unit": "session"})
    assert response.status_code == 302
    plan = db.session.scalar(select(TrainingPlan).where(TrainingPlan.fiscal_year == year))
    deadline = to_tokyo(utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    # A deadline of spaces only is no deadline: said on the page, the plan not published.
    for blank in (" ", "\u3000"):
        refused = client.post(f"/plans/{plan.id}/publish", data={"survey_deadline": blank})
        assert refused.status_code == 400 and "この項目を入力してください。" in refused.get_data(as_text=True)
        db.session.refresh(plan)
        assert plan.published_at is None
    assert client.post(f"/plans/{plan.id}/publish", data={"survey_deadline": deadline}).status_code == 302
    return admin, plan, session


def test_the_year_from_plan_to_quotas(app, client, login_as, make_session):
    admin, plan, session = _plan_flow(client, login_as, make_session)
    page = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert "未回答" in page and session.course.title in page
    # Two offices answer; 千代田区 types full-width digits.
    login_as("municipal_admin", "131016")
    answer = client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "８",
                                                           f"priority-{session.id}": "1",
                                                           f"comment-{session.id}": "新任職員"})
    assert answer.status_code == 302
    login_as("municipal_admin", "131024")
    client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "6", f"priority-{session.id}": "3"})
    rows = {d.municipality.code: d.requested for d in db.session.scalars(select(PlanDemand))}
    assert rows == {"131016": 8, "131024": 6}
    # The platform admin allocates: 10 seats, guarantee 1 each, 8 over 7 + 5 → 4.67, 3.33 → 4, 3 (+1 to 千代田区).
    login_as(user=admin)
    assert client.post(f"/plans/{plan.id}/allocate").status_code == 302
    page = client.get(f"/plans/{plan.id}/sessions/{session.id}").get_data(as_text=True)
    assert "保障 1 ・ 按分 4.7 → 4 ・ 端数 +1" in page
    seats = {r.municipality.code: r.final_seats for r in db.session.scalars(select(PlanAllocation))}
    assert seats == {"131016": 6, "131024": 4}
    row = db.session.scalar(select(PlanAllocation).join(PlanAllocation.municipality)
                            .where(PlanAllocation.municipality.has(code="131024")))
    # An adjustment without a reason keeps the typed number and says why.
    refused = client.post(f"/plans/{plan.id}/allocations/{row.id}/adjust",
                          data={f"a{row.id}-seats": "3", f"a{row.id}-reason": ""})
    assert refused.status_code == 400 and 'value="3"' in refused.get_data(as_text=True)
    # A refusal of the service (more than the capacity) is in the summary too, linked to the field.
    over = client.post(f"/plans/{plan.id}/allocations/{row.id}/adjust",
                       data={f"a{row.id}-seats": "999", f"a{row.id}-reason": "多め"}).get_data(as_text=True)
    summary = over.split('<div class="error-summary"', 1)[1].split("</div>", 1)[0] if 'class="error-summary"' in over else ""
    assert f'href="#a{row.id}-seats"' in summary and 'value="999"' in over
    assert client.post(f"/plans/{plan.id}/allocations/{row.id}/adjust",
                       data={f"a{row.id}-seats": "3", f"a{row.id}-reason": "会場の都合"}).status_code == 302
    assert client.post(f"/plans/{plan.id}/sessions/{session.id}/publish").status_code == 302
    quotas = {q.municipality.code: q.seats for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session.id))}
    assert quotas == {"131016": 6, "131024": 3}
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("plan.%"))))
    assert {"plan.create", "plan.publish", "plan.survey_answer", "plan.allocate", "plan.adjust",
            "plan.publish_allocation"} <= actions
    # The office sees its published quota beside its answer.
    login_as("municipal_admin", "131024")
    survey = client.get(f"/plans/{plan.id}/survey").get_data(as_text=True)
    assert 'value="6"' in survey


def test_bad_answers_keep_every_row_and_name_the_row(app, client, login_as, make_session):
    _admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(session.course, starts_in=timedelta(days=45), capacity=10)
    login_as("municipal_admin", "131016")
    response = client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "abc",
                                                             f"requested-{other.id}": "4",
                                                             f"comment-{other.id}": "残してほしい"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "希望人数は0〜9999の整数で入力してください。" in page
    assert 'value="abc"' in page and 'value="4"' in page and "残してほしい" in page
    assert db.session.scalar(select(PlanDemand.id)) is None  # nothing half-saved
    # A character that is a digit to Python's isdigit() but no number ("𐩀", U+10A40) or a
    # number of thousands of digits: the same message, not a server error.
    for odd in ("\U00010a40", "9" * 5000):
        response = client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": odd,
                                                                 f"priority-{other.id}": odd})
        assert response.status_code == 400, odd[:5]
        assert "希望人数は0〜9999の整数で入力してください。" in response.get_data(as_text=True)
    # Every error of a row at once, each beside its own field and linked from the summary.
    response = client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "abc",
                                                             f"priority-{session.id}": "9",
                                                             f"comment-{session.id}": "長" * 501})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for name, message in (("requested", "希望人数は0〜9999の整数で入力してください。"),
                          ("priority", "優先度は1〜5で選んでください。"),
                          ("comment", "コメントは500文字以内で入力してください。")):
        assert re.search(rf'id="{name}-{session.id}"[^>]*aria-describedby="{name}-error-{session.id}"', page), name
        assert f'<p class="error-message" id="{name}-error-{session.id}">{message}</p>' in page
        assert re.search(rf'<a href="#{name}-{session.id}">[^<]*</a>[^<]*{message}</li>', page), name


def test_an_office_answers_only_for_its_own_municipality_and_drafts_are_hidden(app, client, login_as, make_session):
    session = make_session(starts_in=timedelta(days=40))
    admin = login_as("platform_admin", "130001")
    client.post("/plans/", data={"fiscal_year": str(fiscal_year_of(session.starts_at)), "guaranteed_minimum": "1",
                                "survey_unit": "session"})
    plan = db.session.scalar(select(TrainingPlan))
    login_as("municipal_admin", "131016")
    assert client.get("/plans/").status_code == 200
    assert client.get(f"/plans/{plan.id}/survey").status_code == 404  # a draft does not exist for offices
    login_as(user=admin)
    deadline = to_tokyo(utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/plans/{plan.id}/publish", data={"survey_deadline": deadline})
    login_as("municipal_admin", "131016")
    other = factories.municipality("131024")
    assert client.get(f"/plans/{plan.id}/survey?m={other.id}").status_code == 403
    assert client.post(f"/plans/{plan.id}/survey?m={other.id}",
                       data={f"requested-{session.id}": "5"}).status_code == 403
    assert db.session.scalar(select(PlanDemand.id)) is None
    assert client.get(f"/plans/{plan.id}").status_code == 403
    assert client.get("/plans/999999999/survey").status_code == 404


def _filled(sheet_bytes: bytes, fill) -> bytes:
    import io

    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(sheet_bytes))
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows())
    header_row = next(i for i, row in enumerate(rows) if row[0].value == "研修回ID")
    headers = [c.value for c in rows[header_row]]
    for row in rows[header_row + 1:]:
        fill(row[0].value, {h: row[i] for i, h in enumerate(headers)})
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_the_survey_as_an_excel_round_trip(app, client, login_as, make_session):
    import io

    _admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(session.course, starts_in=timedelta(days=50), capacity=10)
    login_as("municipal_admin", "131016")
    client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "2", f"comment-{session.id}": "前回"})
    download = client.get(f"/plans/{plan.id}/survey.xlsx")
    assert download.status_code == 200 and download.data.startswith(b"PK")
    assert "filename*=UTF-8''" in download.headers["Content-Disposition"]

    def fill(session_id, cells):
        if session_id == session.id:
            assert cells["希望人数"].value == 2 and cells["コメント"].value == "前回"  # current answers filled in
            cells["希望人数"].value = "５"
        elif session_id == other.id:
            cells["希望人数"].value = 3
            cells["優先度（1〜5）"].value = 1
            cells["コメント"].value = "新任 3 名"

    upload = client.post(f"/plans/{plan.id}/survey/upload",
                         data={"sheet": (io.BytesIO(_filled(download.data, fill)), "survey.xlsx")},
                         content_type="multipart/form-data")
    assert upload.status_code == 302
    demands = {d.session_id: (d.requested, d.priority, d.comment) for d in db.session.scalars(select(PlanDemand))}
    assert demands == {session.id: (5, 3, "前回"), other.id: (3, 1, "新任 3 名")}
    # The same file again changes nothing (idempotent).
    again = client.post(f"/plans/{plan.id}/survey/upload",
                        data={"sheet": (io.BytesIO(_filled(download.data, fill)), "survey.xlsx")},
                        content_type="multipart/form-data")
    assert again.status_code == 302


def _with_results(sheet_bytes: bytes, results: dict[str, str]) -> bytes:
    """The sheet as Excel saves it: each formula's result stored beside it ({cell: value})."""
    import io
    import zipfile

    source, out = zipfile.ZipFile(io.BytesIO(sheet_bytes)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/"):
                for cell, value in results.items():
                    data = re.sub(rf'(<c r="{cell}"[^>]*>\s*<f>[^<]*</f>)\s*(<v\s*/>|<v>\s*</v>)?'.encode(),
                                  rb"\1<v>" + value.encode() + b"</v>", data)
            target.writestr(item, data)
    return out.getvalue()


def test_a_formula_cell_gives_its_saved_result_and_one_without_is_refused(app, client, login_as, make_session):
    """A formula with no saved result (or TRUE/FALSE) was read as 0 and erased the answer."""
    import io

    _admin, plan, session = _plan_flow(client, login_as, make_session)
    login_as("municipal_admin", "131016")
    client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "2"})
    sheet = client.get(f"/plans/{plan.id}/survey.xlsx").data
    where = {}

    def fill(value):
        def to(session_id, cells):
            if session_id == session.id:
                cells["希望人数"].value = value
                where["cell"] = cells["希望人数"].coordinate
        return to

    def upload(data):
        return client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(data), "survey.xlsx")},
                           content_type="multipart/form-data")

    for value, refusal in (("=2+3", "のセルは数式で、計算結果が保存されていません"), (True, "のセルは TRUE/FALSE です")):
        response = upload(_filled(sheet, fill(value)))
        assert response.status_code == 400 and f"{where['cell']} {refusal}" in response.get_data(as_text=True)
        assert db.session.scalar(select(PlanDemand.requested)) == 2
    assert upload(_with_results(_filled(sheet, fill("=2+3")), {where["cell"]: "5"})).status_code == 302
    assert db.session.scalar(select(PlanDemand.requested)) == 5


def test_every_row_with_content_is_read_however_far_down_or_the_sheet_is_refused(app, client, login_as,
                                                                                  make_session):
    """A row moved far below the others was left unread and the upload reported success."""
    import io

    from openpyxl import load_workbook

    _admin, plan, session = _plan_flow(client, login_as, make_session)
    login_as("municipal_admin", "131016")
    sheet = client.get(f"/plans/{plan.id}/survey.xlsx").data

    def upload(extra_rows):
        workbook = load_workbook(io.BytesIO(sheet))
        for row in workbook.worksheets[0].iter_rows():
            if row[0].value == session.id:  # the session's row moves down
                for cell in row:
                    cell.value = None
        for at, row in extra_rows.items():
            for column, value in enumerate(row, start=1):
                workbook.worksheets[0].cell(at, column, value)
        out = io.BytesIO()
        workbook.save(out)
        return client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(out.getvalue()), "survey.xlsx")},
                           content_type="multipart/form-data")

    far = upload({300: [session.id, "", "", "", "", 4]})  # ID, 研修名, 回, 開始日時, 定員, 希望人数
    assert far.status_code == 302
    assert db.session.scalar(select(PlanDemand.requested)) == 4
    crowded = upload({300: [session.id, "", "", "", "", 4]} | {400 + n: ["", "メモ"] for n in range(60)})
    assert crowded.status_code == 400
    assert "記入された行が多すぎます（445行目で 51 行を超えました" in crowded.get_data(as_text=True)
    assert db.session.scalar(select(PlanDemand.requested)) == 4


def test_a_bad_sheet_names_every_bad_cell_and_stores_nothing(app, client, login_as, make_session):
    import io

    _admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(session.course, starts_in=timedelta(days=50), capacity=10)
    login_as("municipal_admin", "131016")
    sheet = client.get(f"/plans/{plan.id}/survey.xlsx").data

    def fill(session_id, cells):
        if session_id == session.id:
            cells["希望人数"].value = "たくさん"
        elif session_id == other.id:
            cells["希望人数"].value = 4
            cells["優先度（1〜5）"].value = 9

    response = client.post(f"/plans/{plan.id}/survey/upload",
                           data={"sheet": (io.BytesIO(_filled(sheet, fill)), "survey.xlsx")},
                           content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "「希望人数」：0〜9999の整数で入力してください（たくさん）" in page
    assert "「優先度」：1〜5の数字で入力してください（9）" in page
    assert db.session.scalar(select(PlanDemand.id)) is None
    # Another municipality's sheet, a file that is not Excel, and no file: refused with a reason.
    login_as("municipal_admin", "131024")
    foreign = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(sheet), "survey.xlsx")},
                          content_type="multipart/form-data")
    assert foreign.status_code == 400 and "別の自治体" in foreign.get_data(as_text=True)
    text = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
                       content_type="multipart/form-data")
    assert text.status_code == 400 and "Excel ファイル（.xlsx）を選んでください" in text.get_data(as_text=True)
    empty = client.post(f"/plans/{plan.id}/survey/upload", data={}, content_type="multipart/form-data")
    assert empty.status_code == 400 and "ファイルを選んでください" in empty.get_data(as_text=True)  # as every upload form says
    unnamed = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(b""), "")},
                          content_type="multipart/form-data")
    assert unnamed.status_code == 400 and "ファイルを選んでください" in unnamed.get_data(as_text=True)
    zero = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(b""), "survey.xlsx")},
                       content_type="multipart/form-data")
    assert zero.status_code == 400 and "ファイルが空です" in zero.get_data(as_text=True)
    assert db.session.scalar(select(PlanDemand.id)) is None


def test_the_plan_prints_and_downloads_for_offices_once_published(app, client, login_as, make_session):
    import io

    from openpyxl import load_workbook

    admin, plan, session = _plan_flow(client, login_as, make_session)
    page = client.get(f"/plans/{plan.id}/print").get_data(as_text=True)
    assert session.course.title in page and 'class="print-sheet"' in page
    login_as("municipal_admin", "131016")
    sheet = client.get(f"/plans/{plan.id}/plan.xlsx")
    assert sheet.status_code == 200
    cells = [c for row in load_workbook(io.BytesIO(sheet.data)).worksheets[0].iter_rows(values_only=True) for c in row]
    assert session.course.title in cells and f"{plan.fiscal_year}年度 年間研修計画" in cells
    # A draft plan exists for the platform admin only.
    login_as(user=admin)
    draft_year = plan.fiscal_year + 1
    client.post("/plans/", data={"fiscal_year": str(draft_year), "guaranteed_minimum": "1",
                                "survey_unit": "session"})
    draft = db.session.scalar(select(TrainingPlan).where(TrainingPlan.fiscal_year == draft_year))
    assert client.get(f"/plans/{draft.id}/print").status_code == 200
    login_as("municipal_admin", "131016")
    assert client.get(f"/plans/{draft.id}/print").status_code == 404
    assert client.get(f"/plans/{draft.id}/plan.xlsx").status_code == 404


def test_an_office_offers_seats_and_the_platform_admin_approves_on_the_pages(app, client, login_as, make_session):
    from lms.planning.models import SeatExchange

    admin, plan, session = _plan_flow(client, login_as, make_session)
    chiyoda, chuo = factories.municipality("131016"), factories.municipality("131024")
    db.session.add(SessionQuota(session_id=session.id, municipality_id=chiyoda.id, seats=5))
    db.session.commit()
    login_as("municipal_admin", "131016")
    page = client.get(f"/plans/{plan.id}/survey").get_data(as_text=True)
    assert f'id="exchange-{session.id}"' in page
    refused = client.post(f"/plans/{plan.id}/sessions/{session.id}/exchange",
                          data={"kind": "offer", "seats": "9", "to_municipality_id": str(chuo.id)})
    assert refused.status_code == 400 and db.session.scalar(select(SeatExchange.id)) is None
    for odd in ("\U00010a40", "100000"):  # (no number at all / past the limit: said, not a server error)
        refused = client.post(f"/plans/{plan.id}/sessions/{session.id}/exchange", follow_redirects=True,
                              data={"kind": "request", "seats": odd, "to_municipality_id": ""})
        assert "人数は1から9999までの整数で入力してください。" in refused.get_data(as_text=True), odd
    assert db.session.scalar(select(SeatExchange.id)) is None
    sent = client.post(f"/plans/{plan.id}/sessions/{session.id}/exchange",
                       data={"kind": "offer", "seats": "２", "to_municipality_id": str(chuo.id), "reason": "不要"})
    assert sent.status_code == 302
    exchange = db.session.scalar(select(SeatExchange))
    assert exchange.seats == 2 and exchange.status == "pending"
    # Another office cannot decide, nor file for 千代田区.
    login_as("municipal_admin", "131024")
    assert client.post(f"/plans/{plan.id}/exchanges/{exchange.id}/decide", data={"decision": "approve"}).status_code == 403
    assert client.post(f"/plans/{plan.id}/sessions/{session.id}/exchange?m={chiyoda.id}",
                       data={"kind": "ask", "seats": "1", "reason": "x"}).status_code == 403
    login_as(user=admin)
    assert "2 席を譲る" in client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert client.post(f"/plans/{plan.id}/exchanges/{exchange.id}/decide", data={"decision": "approve"}).status_code == 302
    quotas = {q.municipality.code: q.seats for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session.id))}
    assert quotas == {"131016": 3, "131024": 2}
    assert client.post(f"/plans/{plan.id}/exchanges/999999/decide", data={"decision": "approve"}).status_code == 404


def test_one_course_is_allocated_alone(app, client, login_as, make_session):
    admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(starts_in=timedelta(days=42), capacity=10)  # another course
    login_as("municipal_admin", "131016")
    client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "3", f"requested-{other.id}": "2"})
    login_as(user=admin)
    assert client.post(f"/plans/{plan.id}/allocate", data={"course_id": str(other.course_id)}).status_code == 302
    assert {r.session_id for r in db.session.scalars(select(PlanAllocation))} == {other.id}
    assert client.post(f"/plans/{plan.id}/allocate", data={"course_id": "999999"}).status_code == 404
    for crafted in ("abc", "-1", "99999999999999999999"):  # a course named, never the whole plan instead
        assert client.post(f"/plans/{plan.id}/allocate", data={"course_id": crafted}).status_code == 404


def test_a_plan_surveyed_per_course_from_the_form_to_the_sessions(app, client, login_as, make_session):
    """The plan form's default: offices answer per course (on the page and through Excel);
    the allocation page shows the course's arithmetic and this session's part of it."""
    import io

    first = make_session(starts_in=timedelta(days=40), capacity=6)
    second = make_session(first.course, starts_in=timedelta(days=70), capacity=4)
    login_as("platform_admin", "130001")
    form = client.get("/plans/").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="course"', form) and "研修回ごと" in form
    year = fiscal_year_of(first.starts_at)
    assert client.post("/plans/", data={"fiscal_year": str(year), "guaranteed_minimum": "1",
                                        "survey_unit": "course"}).status_code == 302
    plan = db.session.scalar(select(TrainingPlan).where(TrainingPlan.fiscal_year == year))
    assert plan.survey_unit == "course"
    deadline = to_tokyo(utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/plans/{plan.id}/publish", data={"survey_deadline": deadline})
    course_id = first.course_id

    login_as("municipal_admin", "131016")
    page = client.get(f"/plans/{plan.id}/survey").get_data(as_text=True)
    assert f'name="requested-{course_id}"' in page and "全 2 回" in page and "研修ごとに" in page
    bad = client.post(f"/plans/{plan.id}/survey", data={f"requested-{course_id}": "多め", f"comment-{course_id}": "新任"})
    assert bad.status_code == 400 and 'value="新任"' in bad.get_data(as_text=True)
    assert client.post(f"/plans/{plan.id}/survey", data={f"requested-{course_id}": "７"}).status_code == 302
    assert db.session.scalar(select(PlanDemand.course_id)) == course_id

    # Excel: one row per course, keyed by 研修ID; a sheet keyed by session is not this plan's.
    sheet = client.get(f"/plans/{plan.id}/survey.xlsx").data
    from openpyxl import load_workbook

    rows = [[c.value for c in row] for row in load_workbook(io.BytesIO(sheet)).worksheets[0].iter_rows()]
    header = next(i for i, row in enumerate(rows) if row[0] == "研修ID")
    assert rows[header][:6] == ["研修ID", "研修名", "回数", "最初の回", "最後の回", "定員（合計）"]
    assert rows[header + 1][0] == course_id and rows[header + 1][2] == 2 and rows[header + 1][5] == 10
    assert rows[header + 1][6] == 7  # the current answer filled in
    workbook = load_workbook(io.BytesIO(sheet))
    ws = workbook.worksheets[0]
    ws.cell(row=header + 2, column=7, value=9)
    out = io.BytesIO()
    workbook.save(out)
    upload = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(out.getvalue()), "survey.xlsx")},
                         content_type="multipart/form-data")
    assert upload.status_code == 302
    assert db.session.scalar(select(PlanDemand.requested)) == 9
    ws.cell(row=header + 1, column=1, value="研修回ID")
    out = io.BytesIO()
    workbook.save(out)
    refused = client.post(f"/plans/{plan.id}/survey/upload", data={"sheet": (io.BytesIO(out.getvalue()), "survey.xlsx")},
                          content_type="multipart/form-data")
    assert refused.status_code == 400 and "この計画は研修ごとに回答します" in refused.get_data(as_text=True)

    login_as("platform_admin", "130001")
    overview = client.get(f"/plans/{plan.id}").get_data(as_text=True)
    assert "研修ごとの希望と定員" in overview and "回答済み（1 研修分）" in overview
    assert client.post(f"/plans/{plan.id}/allocate", data={"course_id": str(course_id)}).status_code == 302
    rows_ = {r.session_id: r for r in db.session.scalars(select(PlanAllocation))}
    assert rows_[first.id].seats + rows_[second.id].seats == 9 and rows_[first.id].course_seats == 9
    detail = client.get(f"/plans/{plan.id}/sessions/{second.id}").get_data(as_text=True)
    assert f"研修全体で 9 人 → この回 {rows_[second.id].seats} 人" in detail and "希望（研修全体）" in detail


def test_rows_not_sent_keep_their_answer(app, client, login_as, make_session):
    """A post that names only some rows (or none) changes only those: never a silent 0 that
    wipes an office's answers. Control characters in a comment become spaces."""
    _admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(session.course, starts_in=timedelta(days=45), capacity=10)
    login_as("municipal_admin", "131016")
    assert client.post(f"/plans/{plan.id}/survey", data={
        f"requested-{session.id}": "8", f"priority-{session.id}": "1", f"comment-{session.id}": "新任職員を優先",
        f"requested-{other.id}": "2", f"priority-{other.id}": "3", f"comment-{other.id}": ""}).status_code == 302
    assert client.post(f"/plans/{plan.id}/survey", data={}).status_code == 302
    assert client.post(f"/plans/{plan.id}/survey", data={f"requested-{other.id}": "5",
                                                         f"comment-{other.id}": "a\x07b\u202ec"}).status_code == 302
    db.session.expire_all()
    rows = {d.session_id: (d.requested, d.priority, d.comment) for d in db.session.scalars(select(PlanDemand))}
    assert rows == {session.id: (8, 1, "新任職員を優先"), other.id: (5, 3, "a b c")}


def test_a_refused_seat_offer_or_request_is_shown_again_as_typed_with_its_error(app, client, login_as, make_session):
    """It answered with a redirect and a flash: the seats and reason typed were lost."""
    _admin, plan, session = _plan_flow(client, login_as, make_session)
    office = login_as("municipal_admin", "131016")
    chuo = factories.municipality("131024")
    db.session.add(SessionQuota(session_id=session.id, municipality_id=office.municipality_id, seats=4,
                                confirmed_count=1))
    db.session.commit()
    url = f"/plans/{plan.id}/sessions/{session.id}/exchange"
    offer = client.post(url, data={"kind": "offer", "seats": "5", "reason": "余剰です",
                                   "to_municipality_id": str(chuo.id)})
    page = offer.get_data(as_text=True)
    assert offer.status_code == 400
    assert f'id="offer-seats-{session.id}" name="seats" size="4" value="5" aria-invalid="true"' in page
    assert 'value="余剰です"' in page and f'<option value="{chuo.id}" selected>' in page
    message = "千代田区 が譲れるのは未使用の割当（3席）までです。"
    assert re.search(rf'<p class="error-message" id="offer-seats-error-{session.id}">{message}', page)
    summary = page.split('<div class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert f'href="#offer-seats-{session.id}"' in summary and message in summary
    ask = client.post(url, data={"kind": "ask", "seats": "2", "reason": " "}).get_data(as_text=True)
    assert f'id="ask-seats-{session.id}" name="seats" size="4" value="2"' in ask
    assert f'<p class="error-message" id="ask-reason-error-{session.id}">追加を希望する理由を入力してください。' in ask
    assert f'href="#ask-reason-{session.id}"' in ask
    from lms.planning.models import SeatExchange

    assert db.session.scalar(select(SeatExchange.id)) is None


def test_two_people_on_one_survey_keep_each_other_s_answers(app, client, login_as, make_session):
    """The office saves a row; the platform admin, on the page opened before, changes another row
    and saves: the office's answer stays (it was overwritten by the stale page's value). Where both
    changed the same row, the later one is told and nothing of theirs is stored until they look."""
    admin, plan, session = _plan_flow(client, login_as, make_session)
    other = make_session(course=session.course, starts_in=timedelta(days=45), capacity=10)
    login_as(user=admin)
    page = client.get(f"/plans/{plan.id}/survey?m={factories.municipality('131016').id}").get_data(as_text=True)

    def was(item) -> str:
        return re.search(rf'name="was-{item.id}" value="([^"]*)"', page).group(1)

    stale = {f"was-{session.id}": was(session), f"was-{other.id}": was(other)}
    login_as("municipal_admin", "131016")
    assert client.post(f"/plans/{plan.id}/survey", data={f"requested-{session.id}": "7"}).status_code == 302

    login_as(user=admin)
    m = factories.municipality("131016").id
    saved = client.post(f"/plans/{plan.id}/survey?m={m}", data={
        **stale, f"requested-{session.id}": "", f"priority-{session.id}": "3", f"comment-{session.id}": "",
        f"requested-{other.id}": "3", f"priority-{other.id}": "3", f"comment-{other.id}": ""})
    assert saved.status_code == 302
    db.session.expire_all()
    rows = {d.session_id: d.requested for d in db.session.scalars(select(PlanDemand))}
    assert rows == {session.id: 7, other.id: 3}

    # both change the same row: the later one is told, and stores nothing until they look again
    clash = client.post(f"/plans/{plan.id}/survey?m={m}", data={
        **stale, f"requested-{session.id}": "2", f"priority-{session.id}": "3", f"comment-{session.id}": ""})
    body = clash.get_data(as_text=True)
    assert clash.status_code == 400 and "ほかの担当者が変更しました（現在の希望人数 7 人）" in body
    db.session.expire_all()
    assert {d.session_id: d.requested for d in db.session.scalars(select(PlanDemand))} == {session.id: 7, other.id: 3}
    fresh = re.search(rf'name="was-{session.id}" value="([^"]*)"', body).group(1)
    again = client.post(f"/plans/{plan.id}/survey?m={m}", data={
        f"was-{session.id}": fresh, f"requested-{session.id}": "2", f"priority-{session.id}": "3",
        f"comment-{session.id}": ""})
    assert again.status_code == 302
    db.session.expire_all()
    assert {d.session_id: d.requested for d in db.session.scalars(select(PlanDemand))} == {session.id: 2, other.id: 3}
