"""Exports: xlsx (headers, frozen pane, rows), CSV with BOM, cp932, formula injection, audit."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.common.spreadsheet import neutralise_cell, neutralise_text
from lms.common.xlsx import xlsx_stream
from lms.completion.exports import Column, Table, csv_chunks, xlsx_chunks

TRIGGERED = ("=1+1", "+81", "-3", "@SUM(A1)", "\tx", "\rx", "\nx", "＝1+1", "＋81", "－3", "＠SUM(A1)")
PLAIN = ("佐藤", "1+1", "a=b", " =x", "'=x")


@pytest.mark.parametrize("value", TRIGGERED)
def test_neutralise_prefixes_half_and_full_width_formula_triggers(value):
    assert neutralise_text(value) == "'" + value
    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", PLAIN)
def test_neutralise_leaves_other_text(value):
    assert neutralise_text(value) == value


def test_neutralise_leaves_empty_text():
    assert neutralise_text("") == ""


def test_neutralise_cell_makes_text_of_any_value():
    assert neutralise_cell(None) == "" and neutralise_cell(-3) == "'-3" and neutralise_cell(12) == "12"


def _table(rows):
    return Table("t", "シート", [Column("=見出し"), Column("数")], lambda: iter(rows))


def test_csv_prefixes_formula_cells_with_an_apostrophe():
    rows = [(value, 1) for value in (*TRIGGERED, *PLAIN)] + [("-", -3)]
    data = b"".join(csv_chunks(_table(rows))).decode("utf-8-sig")
    read = list(csv.reader(io.StringIO(data, newline="")))
    assert read[0] == ["'=見出し", "数"]
    assert [r[0] for r in read[1:]] == ["'" + v for v in TRIGGERED] + list(PLAIN) + ["'-"]
    assert read[-1][1] == "-3"  # a number stays a number


def test_xlsx_keeps_text_as_string_cells_without_an_apostrophe():
    rows = [(value, 1) for value in (*TRIGGERED, *PLAIN)]
    ws = load_workbook(io.BytesIO(b"".join(xlsx_chunks(_table(rows))))).active
    cells = list(ws.iter_rows())
    assert (cells[0][0].value, cells[0][0].data_type) == ("=見出し", "s")
    texts = [(row[0].value, row[0].data_type) for row in cells[1:]]
    # (XML reads a carriage return back as a line feed.)
    assert texts == [(v.replace("\r", "\n"), "s") for v in (*TRIGGERED, *PLAIN)]
    assert all(row[1].data_type == "n" for row in cells[1:])


def test_xlsx_streams_its_first_bytes_before_the_last_row_is_read():
    """A large export starts at once: no proxy read timeout while the whole file is built."""
    read = 0

    def rows():
        nonlocal read
        for i in range(20000):
            read += 1
            yield (f"職員{i:05d}", i, 50.0)

    table = Table("t", "シート", [Column("氏名"), Column("数"), Column("率", percent=True)], rows)
    chunks = xlsx_chunks(table)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04") and read < 20000
    data = first + b"".join(chunks)
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    values = list(ws.iter_rows(values_only=True))
    assert len(values) == 1 + 20000 and values[-1] == ("職員19999", 19999, 0.5)


def test_xlsx_goes_on_to_a_second_sheet_past_the_sheet_row_limit():
    columns = [Column("氏名"), Column("数")]
    rows = [(f"n{i}", i) for i in range(7)]
    data = b"".join(xlsx_stream("修了記録", columns, iter(rows), title_lines=("修了記録",), max_rows=5))
    wb = load_workbook(io.BytesIO(data))
    # Rows 4 and 5 of each sheet hold data (1-3: title, blank, headers): 7 rows, 4 sheets.
    assert wb.sheetnames == ["修了記録", "修了記録(2)", "修了記録(3)", "修了記録(4)"]
    got = []
    for ws in wb.worksheets:
        values = list(ws.iter_rows(values_only=True))
        assert values[0][0] == "修了記録" and values[2] == ("氏名", "数") and ws.freeze_panes == "A4"
        got += values[3:]
    assert got == rows


def test_xlsx_courses_export(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    response = client.get(f"/completion/export/courses.xlsx?fy={d['fy']}", buffered=True)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(response.data)).active
    # Four title rows (what, whose, which year, when), a blank row, then the headers.
    assert ws.freeze_panes == "A7"
    assert ws.column_dimensions["A"].width == 44
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "修了状況：研修別"
    assert rows[1][0] == "区市町村：千代田区"
    assert rows[2][0].startswith(f"年度：{d['fy']}年度")
    assert rows[3][0].startswith("出力日時：20")
    assert rows[5][:3] == ("研修", "申込者数", "出席者数")
    by_title = {r[0]: r for r in rows[6:]}
    assert by_title["Teams 会議の基本"][1:4] == (3, 1, 1)
    # A course title starting with "=" arrives as text (a string cell), not as a formula.
    evil = [r for r in rows[6:] if "HYPERLINK" in r[0]][0]
    assert evil[0].startswith("=HYPERLINK")
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)


def test_csv_records_export_has_bom_and_is_audited(known_data, client, login_as, db):
    d = known_data
    admin = login_as("municipal_admin", "131016")
    response = client.get(f"/completion/export/records.csv?fy={d['fy']}", buffered=True)
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["区市町村", "職員番号", "氏名"]
    names = {r[2] for r in rows[1:]}
    assert names == {"佐藤 花子", "髙橋 次郎"}  # own municipality only
    assert any(r[5].startswith("'=HYPERLINK") for r in rows[1:])
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "export.completion"))
    assert entry.actor_id == admin.id
    assert entry.details["table"] == "records" and entry.details["fiscal_year"] == d["fy"]


def test_csv_cp932_replaces_unencodable_characters(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    response = client.get(f"/completion/export/records.csv?fy={d['fy']}&encoding=cp932", buffered=True)
    assert response.status_code == 200 and "shift_jis" in response.headers["Content-Type"].lower()
    assert not response.data.startswith(b"\xef\xbb\xbf")
    text = response.data.decode("cp932")
    assert "佐藤 花子" in text
    assert "髙橋 次郎" in text  # 髙 exists in Windows-31J (NEC/IBM extension)


def test_csv_cp932_replacement_is_safe():
    table = Table("t", "t", [Column("氏名")], lambda: iter([("𠮷野 家",), ("=cmd",)]))
    data = b"".join(csv_chunks(table, "cp932")).decode("cp932")
    assert "?野 家" in data and "'=cmd" in data


def test_missing_export_lists_never_signed_in_staff(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    a1 = d["mandatory"][0]
    response = client.get(f"/completion/export/missing.xlsx?fy={d['fy']}&assignment={a1.id}", buffered=True)
    rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(values_only=True))
    names = {r[4]: r for r in rows[6:]}
    # The admin's own roster entry is in the group too (the whole of 千代田区).
    assert {"鈴木 一郎", "髙橋 次郎", "田中 新人"} <= set(names) and "佐藤 花子" not in names
    assert names["田中 新人"][8] == "なし" and names["田中 新人"][9] == "期限超過"


def test_bad_export_parameters_are_not_errors(known_data, client, login_as):
    login_as("municipal_admin", "131016")
    assert client.get("/completion/export/nope.csv", buffered=True).status_code == 404
    assert client.get("/completion/export/courses.pdf", buffered=True).status_code == 404
    assert client.get("/completion/export/courses.csv?encoding=latin1", buffered=True).status_code == 400
    assert client.get("/completion/export/missing.csv?assignment=abc", buffered=True).status_code == 404
    # No year (nor one not shown) is answered with another year's file.
    assert client.get("/completion/export/courses.csv?fy=zzz", buffered=True).status_code == 404


def test_xlsx_rates_are_percent_cells(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    response = client.get(f"/completion/export/courses.xlsx?fy={d['fy']}", buffered=True)
    ws = load_workbook(io.BytesIO(response.data)).active
    rows = list(ws.iter_rows())
    header = [c.value for c in rows[5]]
    rate_col = header.index("修了率（%）")
    teams = next(r for r in rows[6:] if r[0].value == "Teams 会議の基本")
    # One of three enrolled staff of 千代田区 completed: 33.3 % shown (0.333 held).
    assert teams[rate_col].value == pytest.approx(0.333)
    assert teams[rate_col].number_format == "0.0%"


def test_csv_content_type_names_one_charset(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    utf8 = client.get(f"/completion/export/records.csv?fy={d['fy']}", buffered=True)
    sjis = client.get(f"/completion/export/records.csv?fy={d['fy']}&encoding=cp932", buffered=True)
    assert utf8.headers.getlist("Content-Type") == ["text/csv; charset=UTF-8"]
    assert sjis.headers.getlist("Content-Type") == ["text/csv; charset=Shift_JIS"]
    # The CSV stays machine-readable: its first line is the header, no title rows.
    assert utf8.data.decode("utf-8-sig").splitlines()[0].startswith("区市町村,職員番号")


def test_dashboard_offers_only_years_with_data_and_the_current_one(known_data, client, login_as, app):
    from lms.completion.reports import current_fiscal_year

    login_as("municipal_admin", "131016")
    html = client.get("/completion/dashboard").get_data(as_text=True)
    offered = {int(y) for y in re.findall(r'<option value="(\d{4})"', html)}
    current = current_fiscal_year()
    assert current in offered and known_data["fy"] in offered
    assert current + 1 not in offered  # no empty future year
    assert offered <= {current, known_data["fy"]}


def test_dashboard_headline_figures(known_data, client, login_as):
    login_as("municipal_admin", "131016")
    html = client.get(f"/completion/dashboard?fy={known_data['fy']}").get_data(as_text=True)
    assert "修了率（全研修）" in html and "必修研修の未修了（人）" in html
    figures = re.findall(r'<dd class="num">([^<]+)', html)
    assert len(figures) == 4 and figures[0].endswith("%")


def test_csv_cp932_names_the_rows_it_would_spoil_and_offers_utf8(known_data, client, login_as, db):
    d = known_data
    s1 = d["staff"][0]
    s1.full_name = "𠮷田 花子"
    db.session.commit()
    login_as("municipal_admin", "131016")
    url = f"/completion/export/records.csv?fy={d['fy']}&encoding=cp932"
    page = client.get(url)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Shift_JIS で表せない文字があります" in html and "𠮷" in html and s1.employee_number in html
    assert "髙橋 次郎" not in html  # only the rows that would lose characters
    # Counted by the names checked (one person, several rows each), and said so: 「1 行」 was wrong.
    assert "修了記録に出てくる職員名・研修名のうち 1 件に" in html and "表せない文字を含む職員・研修" in html
    utf8 = re.search(r'href="([^"]+)"[^>]*>UTF-8 で出力する', html).group(1).replace("&amp;", "&")
    assert "encoding=utf-8" in utf8 and f"fy={d['fy']}" in utf8
    assert "𠮷田 花子" in client.get(utf8, buffered=True).data.decode("utf-8-sig")
    lossy = client.get(url + "&lossy=1", buffered=True)
    assert lossy.mimetype == "text/csv" and "?田 花子" in lossy.data.decode("cp932")
    # A summary table is checked row by row (a course title outside Windows-31J).
    d["a"].title = "Teams 会議の基本 ①〜⑳ 𠀋"
    db.session.commit()
    courses = client.get(f"/completion/export/courses.csv?fy={d['fy']}&encoding=cp932").get_data(as_text=True)
    assert "𠀋" in courses and "Shift_JIS で表せない文字があります" in courses
    assert " の 1 行に" in courses and "職員名・研修名" not in courses  # a summary table counts its rows


def test_export_file_names_carry_the_tokyo_date_and_tell_shift_jis_apart(known_data, client, login_as,
                                                                         monkeypatch):
    """At 06:25 in Tokyo on 5 December it is still 4 December in UTC: the file is dated the 5th,
    as its 出力日時 line; the Shift_JIS file is not named as the UTF-8 one."""
    from datetime import UTC, datetime

    class _Morning(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 4, 21, 25, tzinfo=UTC)

    monkeypatch.setattr("lms.completion.routes.datetime", _Morning)
    login_as("municipal_admin", "131016")

    def name(url):
        response = client.get(url, buffered=True)
        assert response.status_code == 200
        return re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"]).group(1)

    assert name("/completion/export/courses.csv?fy=2026") == "completion-courses-2026-20261205.csv"
    assert name("/completion/export/courses.csv?fy=2026&encoding=cp932") == "completion-courses-2026-20261205-sjis.csv"
    assert name("/completion/export/courses.xlsx?fy=2026") == "completion-courses-2026-20261205.xlsx"
    assert name("/completion/export/courses.xlsx?fy=2026&encoding=cp932") == "completion-courses-2026-20261205.xlsx"


def test_a_course_named_twice_is_compared_once(known_data, client, login_as):
    d = known_data
    login_as("platform_admin")
    a = d["a"].id
    html = client.get(f"/completion/compare?fy={d['fy']}&course={a}&course={a}&course={a}").get_data(as_text=True)
    assert html.count(f'<th scope="col">{d["a"].title}</th>') == 1
    response = client.get(f"/completion/export/comparison.csv?fy={d['fy']}&course={a}&course={a}", buffered=True)
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))[1:]
    names = [r[0] for r in rows]
    assert sorted(names) == sorted({"千代田区", "中央区"})  # each municipality once


def test_an_export_narrowed_to_a_course_names_it_in_its_title_and_file_name(known_data, client, login_as):
    """The dashboard's links carry ?course= when a course is chosen: a sheet of one course's
    trend did not say so, and looked like the whole municipality's."""
    d = known_data
    a = d["a"]
    login_as("municipal_admin", "131016")

    def name(response):
        assert response.status_code == 200
        return re.search(r'filename="([^"]+)"', response.headers["Content-Disposition"]).group(1)

    trend = client.get(f"/completion/export/trend.xlsx?fy={d['fy']}&course={a.id}", buffered=True)
    assert re.fullmatch(rf"completion-trend-{d['fy']}-course{a.id}-\d{{8}}\.xlsx", name(trend))
    ws = load_workbook(io.BytesIO(trend.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert [r[0] for r in rows[:3]] == ["修了状況：月別推移", "区市町村：千代田区", f"研修：{a.title}"]
    assert rows[3][0].startswith(f"年度：{d['fy']}年度") and rows[4][0].startswith("出力日時：")
    assert rows[6][:3] == ("年月", "修了件数", "累計") and ws.freeze_panes == "A8"
    for table in ("departments", "job_titles", "activities", "records"):
        response = client.get(f"/completion/export/{table}.csv?fy={d['fy']}&course={a.id}", buffered=True)
        assert f"-{d['fy']}-course{a.id}-" in name(response), table
    # The list of courses is every course's, as on the dashboard: nothing narrowed, nothing said.
    courses = client.get(f"/completion/export/courses.xlsx?fy={d['fy']}&course={a.id}", buffered=True)
    assert "course" not in name(courses).removeprefix("completion-courses")
    rows = list(load_workbook(io.BytesIO(courses.data)).active.iter_rows(values_only=True))
    assert not any(str(r[0]).startswith("研修：") for r in rows[:5])
    whole = client.get(f"/completion/export/trend.xlsx?fy={d['fy']}", buffered=True)
    assert "course" not in name(whole).removeprefix("completion-trend")
    assert client.get(f"/completion/export/trend.xlsx?fy={d['fy']}&course=999999", buffered=True).status_code == 404


def test_the_dashboard_links_a_course_only_to_the_exports_it_narrows(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    html = client.get(f"/completion/dashboard?fy={d['fy']}&course={d['a'].id}").get_data(as_text=True)
    links = {m.group(1): m.group(2).replace("&amp;", "&")
             for m in re.finditer(r'href="/completion/export/(\w+)\.xlsx\?([^"]*)"', html)}
    assert f"course={d['a'].id}" in links["trend"] and f"course={d['a'].id}" in links["departments"]
    assert "course=" not in links["courses"] and "course=" not in links["missing"]


def test_the_sheets_by_group_are_titled_alike_in_english(app, db):
    """"By Department" / "By Job title" beside "By course": the group's own label was
    capitalised into the title."""
    from flask_babel import force_locale

    from lms.completion.tables import build_table

    with app.test_request_context(), force_locale("en"):
        titles = [build_table(name, scope=None, fiscal_year=2026).sheet_title for name in ("departments", "job_titles")]
    assert titles == ["By department", "By job title"]
