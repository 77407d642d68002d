"""氏名カナ in one form and roster order by kana; roster import from Excel; a Shift_JIS export
that would lose characters says which rows first and offers UTF-8."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from lms.common.errors import InvalidInput
from lms.roster.kana import normalise_kana
from lms.roster.models import StaffMember
from lms.roster.services import import_roster, save_staff_member

HEADER = ["職員番号", "氏名", "氏名カナ", "所属", "職名", "サインイン名", "メール", "採用日"]


@pytest.mark.parametrize(("typed", "stored"), [
    ("やまだ たろう", "ヤマダ タロウ"),
    ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ"),
    ("ヤマダ　　タロウ ", "ヤマダ タロウ"),
    ("すゞき ゔぃ", "スヾキ ヴィ"),
    ("", ""),
])
def test_kana_is_stored_as_full_width_katakana(typed, stored):
    assert normalise_kana(typed) == stored


def test_every_way_in_normalises_the_kana(app, db, chiyoda, admin):
    member = save_staff_member(chiyoda.id, {"employee_number": "9001", "full_name": "山田 太郎",
                                            "full_name_kana": "やまだ たろう"}, admin)
    db.session.commit()
    assert member.full_name_kana == "ヤマダ タロウ"
    data = _csv([["9002", "佐藤 花子", "ｻﾄｳ ﾊﾅｺ", "総務課", "主事", "hanako@x.lg.jp", "", ""]])
    assert import_roster(chiyoda.id, data, admin).applied
    db.session.commit()
    assert db.session.scalar(select(StaffMember.full_name_kana).where(StaffMember.employee_number == "9002")) == "サトウ ハナコ"
    # The model itself, for any other way in (Graph sync, sign-in, scripts).
    other = StaffMember(municipality_id=chiyoda.id, employee_number="9003", full_name="x", full_name_kana="あ い")
    assert other.full_name_kana == "ア イ"


def test_roster_is_in_kana_order_with_blank_kana_last(app, db, client, login_as, make_staff):
    make_staff(full_name="無カナ 一", full_name_kana="", employee_number="0001")
    make_staff(full_name="渡辺 一", full_name_kana="わたなべ はじめ", employee_number="0002")
    make_staff(full_name="青木 一", full_name_kana="ｱｵｷ ﾊｼﾞﾒ", employee_number="0003")
    make_staff(full_name="加藤 一", full_name_kana="カトウ ハジメ", employee_number="0004")
    login_as("municipal_admin", "131016")
    page = client.get("/roster").get_data(as_text=True)
    order = [page.index(name) for name in ("青木 一", "加藤 一", "渡辺 一", "無カナ 一")]
    assert order == sorted(order)


def _csv(rows) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _xlsx(rows, header=HEADER) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_roster_imports_from_an_excel_file(app, db, chiyoda, admin):
    """As HR sends it: 職員番号 typed as a number, 採用日 as a date cell, カナ in ひらがな."""
    data = _xlsx([
        [1001, "山田 太郎", "やまだ たろう", "総務部 総務課", "主事", "Taro.Yamada@city.example.lg.jp", None,
         datetime(2020, 4, 1)],
        ["1002", "𠮷田 花子", "ヨシダ ハナコ", "企画課", "主任", "hanako@city.example.lg.jp", "", "2015/4/1"],
    ])
    report = import_roster(chiyoda.id, data, admin)
    assert report.applied and report.encoding == "Excel (.xlsx)" and report.counts["added"] == 2
    db.session.commit()
    members = {m.employee_number: m for m in db.session.scalars(
        select(StaffMember).where(StaffMember.municipality_id == chiyoda.id))}
    assert members["1001"].full_name_kana == "ヤマダ タロウ" and members["1001"].hired_on == date(2020, 4, 1)
    assert members["1001"].sign_in_name == "taro.yamada@city.example.lg.jp"
    assert members["1002"].full_name == "𠮷田 花子" and members["1002"].hired_on == date(2015, 4, 1)


def test_a_damaged_or_incomplete_excel_file_is_refused_in_japanese(app, chiyoda, admin):
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    with pytest.raises(InvalidInput, match="Excel ファイル"):
        import_roster(chiyoda.id, broken.getvalue(), admin)
    with pytest.raises(InvalidInput, match="氏名カナ"):
        import_roster(chiyoda.id, _xlsx([], header=["職員番号", "氏名"]), admin)


def test_a_formula_without_its_result_or_a_true_false_cell_is_refused_naming_the_cell(app, chiyoda, admin):
    """A formula's value is what Excel saved with it; a file with none saved (written by a
    program) read it as empty. TRUE read as 1."""
    with pytest.raises(InvalidInput, match="A2 のセルは数式"):
        import_roster(chiyoda.id, _xlsx([["=1000+1", "江戸 一", "えど はじめ", "総務課", "主事", "", "", ""]]), admin)
    with pytest.raises(InvalidInput, match="E2 のセルは TRUE/FALSE"):
        import_roster(chiyoda.id, _xlsx([["2001", "江戸 一", "えど はじめ", "総務課", True, "", "", ""]]), admin)


def test_the_import_page_accepts_an_excel_upload(app, db, client, login_as):
    login_as("municipal_admin", "131016")
    data = _xlsx([["2001", "江戸 一", "えど はじめ", "総務課", "主事", "edo@city.example.lg.jp", "", ""]])
    response = client.post("/roster/import", data={"file": (io.BytesIO(data), "名簿.xlsx")},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    assert "Excel (.xlsx)" in response.get_data(as_text=True)
    assert db.session.scalar(select(StaffMember.full_name_kana).where(StaffMember.employee_number == "2001")) == "エド ハジメ"


def test_shift_jis_roster_export_names_the_rows_it_would_spoil(app, db, client, login_as, make_staff):
    make_staff(full_name="𠮷田 太郎", full_name_kana="ヨシダ タロウ", employee_number="7001")
    make_staff(full_name="髙橋 次郎", employee_number="7002")  # 髙 is in Windows-31J
    login_as("municipal_admin", "131016")
    page = client.get("/roster/export.csv?encoding=cp932")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Shift_JIS で表せない文字があります" in html and "7001" in html and "𠮷" in html
    assert "7002" not in html
    links = dict(re.findall(r'href="([^"]+)"[^>]*>([^<]+)</a>', html))
    utf8 = next(href for href, label in links.items() if label == "UTF-8 で出力する").replace("&amp;", "&")
    lossy = next(href for href, label in links.items() if "それでも" in label).replace("&amp;", "&")
    whole = client.get(utf8)
    assert whole.mimetype == "text/csv" and "𠮷田 太郎" in whole.data.decode("utf-8-sig")
    spoiled = client.get(lossy)
    assert "shift_jis" in spoiled.headers["Content-Type"].lower()
    assert "?田 太郎" in spoiled.data.decode("cp932") and "髙橋 次郎" in spoiled.data.decode("cp932")


def test_a_roster_that_fits_goes_straight_to_shift_jis(app, db, client, login_as, make_staff):
    make_staff(full_name="髙橋 次郎", employee_number="7002")
    login_as("municipal_admin", "131016")
    response = client.get("/roster/export.csv?encoding=cp932")
    assert response.mimetype == "text/csv" and "髙橋 次郎" in response.data.decode("cp932")


def test_excel_rows_are_reported_by_their_row_number(app, db, chiyoda, admin):
    """Found by QA: empty rows were left out before the rows were numbered. A row is reported by
    its row number in the sheet (as Excel shows it), a header further down too; a cell with a
    line break (Alt+Enter) refuses its row."""
    data = _xlsx([[], [], ["9000050", "江戸 一", "", "総務課", "主事", "", "", ""], [],
                  ["9000051", "", "", "総務課", "主事", "", "", ""],
                  ["9000052", "江戸\n二", "", "総務課", "主事", "", "", ""]])
    report = import_roster(chiyoda.id, data, admin)
    assert [(r.line, r.employee_number, r.outcome) for r in report.rows] == [
        (4, "9000050", "added"), (6, "9000051", "refused"), (7, "9000052", "refused")]
    assert report.rows[2].message.startswith("氏名に改行が含まれています。")
    wb = Workbook()
    ws = wb.active
    for column, name in enumerate(HEADER, start=1):
        ws.cell(row=3, column=column, value=name)
    for column, value in enumerate(["9000053", "", "", "総務課", "主事"], start=1):
        ws.cell(row=5, column=column, value=value)
    out = io.BytesIO()
    wb.save(out)
    report = import_roster(chiyoda.id, out.getvalue(), admin)
    assert [(r.line, r.employee_number, r.message) for r in report.rows] == [(5, "9000053", "氏名がありません。")]
