"""Exports: xlsx (headers, frozen pane, rows), CSV with BOM, cp932, formula injection, audit."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.completion.exports import Column, Table, csv_chunks, neutralise


def test_neutralise_prefixes_formula_triggers():
    for value in ("=1+1", "+81", "-3", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(value) == "'" + value
    assert neutralise("佐藤") == "佐藤" and neutralise(-3) == -3


def test_xlsx_courses_export(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    response = client.get(f"/completion/export/courses.xlsx?fy={d['fy']}", buffered=True)
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(response.data)).active
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width == 44
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("研修", "申込者数", "出席者数")
    by_title = {r[0]: r for r in rows[1:]}
    assert by_title["Teams 会議の基本"][1:4] == (3, 1, 1)
    # A course title starting with "=" arrives as text, not as a formula.
    evil = [r for r in rows[1:] if "HYPERLINK" in r[0]][0]
    assert evil[0].startswith("'=")
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
    assert response.status_code == 200 and "shift_jis" in response.headers["Content-Type"]
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
    names = {r[4]: r for r in rows[1:]}
    # The admin's own roster entry is in the group too (the whole of 千代田区).
    assert {"鈴木 一郎", "髙橋 次郎", "田中 新人"} <= set(names) and "佐藤 花子" not in names
    assert names["田中 新人"][8] == "なし" and names["田中 新人"][9] == "期限超過"


def test_bad_export_parameters_are_not_errors(known_data, client, login_as):
    login_as("municipal_admin", "131016")
    assert client.get("/completion/export/nope.csv", buffered=True).status_code == 404
    assert client.get("/completion/export/courses.pdf", buffered=True).status_code == 404
    assert client.get("/completion/export/courses.csv?encoding=latin1", buffered=True).status_code == 400
    assert client.get("/completion/export/missing.csv?assignment=abc", buffered=True).status_code == 404
    assert client.get("/completion/export/courses.csv?fy=zzz", buffered=True).status_code == 200
