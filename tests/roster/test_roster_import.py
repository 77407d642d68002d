from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.common import signals
from lms.common.errors import InvalidInput
from lms.roster.models import ACTIVE, LEFT, StaffHistory, StaffMember
from lms.roster.services import export_roster_csv, import_roster, neutralise_cell

HEADER = ["職員番号", "氏名", "氏名カナ", "所属", "職名", "サインイン名", "メール", "採用日"]
ROWS = [
    ["1001", "山田 太郎", "ヤマダ タロウ", "総務部 総務課", "主事", "Taro.Yamada@city.example.lg.jp", "", "2020-04-01"],
    ["1002", "鈴木 花子", "スズキ ハナコ", "企画部 情報政策課", "主任", "hanako.suzuki@city.example.lg.jp", "hanako@city.example.lg.jp", "2015/4/1"],
    ["1003", "髙橋 一郎", "タカハシ イチロウ", "区民部 戸籍住民課", "係長", "ichiro.takahashi@city.example.lg.jp", "", "2010年4月1日"],
]


def _csv(rows, header=HEADER, encoding="utf-8", bom=False) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def _members(db, municipality):
    return {m.employee_number: m for m in db.session.scalars(select(StaffMember).where(StaffMember.municipality_id == municipality.id))}


@pytest.mark.parametrize(("encoding", "bom", "label"), [("utf-8", False, "UTF-8"), ("utf-8", True, "UTF-8 (BOM付き)"), ("cp932", False, "Shift_JIS (Windows-31J)")])
def test_import_detects_encoding_and_adds_everyone(app, db, chiyoda, admin, encoding, bom, label):
    report = import_roster(chiyoda.id, _csv(ROWS, encoding=encoding, bom=bom), admin)
    db.session.commit()
    assert report.applied and report.encoding == label
    assert report.counts["added"] == 3
    members = _members(db, chiyoda)
    assert members["1001"].sign_in_name == "taro.yamada@city.example.lg.jp"
    assert members["1002"].hired_on == date(2015, 4, 1)
    assert members["1003"].full_name == "髙橋 一郎" and members["1003"].hired_on == date(2010, 4, 1)
    assert members["1003"].source == "csv"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "roster.import")).details["added"] == 3


def test_invisible_and_direction_characters_do_not_make_a_second_department(app, db, chiyoda, admin):
    """A zero-width space (a paste from a web page) is dropped, a bidirectional override becomes
    a space: 「総務\u200b部 総務課」 is the 所属 「総務部 総務課」, and a name reads as written."""
    rows = [[*ROWS[0][:1], "山田\u202e 太郎\u202c", ROWS[0][2], "総務\u200b部 総務課", *ROWS[0][4:]], ROWS[1]]
    import_roster(chiyoda.id, _csv(rows), admin)
    db.session.commit()
    members = _members(db, chiyoda)
    assert members["1001"].department == "総務部 総務課" and members["1001"].full_name == "山田 太郎"


def test_same_file_twice_changes_nothing(app, db, chiyoda, admin):
    data = _csv(ROWS)
    import_roster(chiyoda.id, data, admin)
    db.session.commit()
    report = import_roster(chiyoda.id, data, admin)
    db.session.commit()
    assert report.applied and report.counts["unchanged"] == 3 and report.counts["added"] == 0
    assert db.session.scalar(select(func.count()).select_from(StaffHistory)) == 0


def test_transfer_keeps_history_and_updates(app, db, chiyoda, admin):
    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    rows = [list(r) for r in ROWS]
    rows[0][3], rows[0][4] = "財政部 財政課", "主任"
    rows[1][1] = "鈴木 花"  # a corrected name
    report = import_roster(chiyoda.id, _csv(rows), admin, effective_on=date(2027, 4, 1))
    db.session.commit()
    outcomes = {r.employee_number: r.outcome for r in report.rows}
    assert outcomes == {"1001": "transferred", "1002": "updated", "1003": "unchanged"}
    taro = _members(db, chiyoda)["1001"]
    assert (taro.department, taro.job_title) == ("財政部 財政課", "主任")
    [history] = taro.history
    assert (history.kind, history.effective_on) == ("transfer", date(2027, 4, 1))
    assert (history.from_department, history.from_job_title) == ("総務部 総務課", "主事")
    assert (history.to_department, history.to_job_title) == ("財政部 財政課", "主任")


def test_bad_rows_are_reported_and_nothing_is_written(app, db, chiyoda, admin, make_staff):
    make_staff("131016", employee_number="9000", sign_in_name="taken@city.example.lg.jp")
    rows = [
        ROWS[0],
        ["", "番号 なし", "", "", "", "", "", ""],
        ["1004", "日付 不正", "", "", "", "", "", "2026-13-40"],
        ["1001", "重複 太郎", "", "", "", "dup@city.example.lg.jp", "", ""],
        ["1005", "使用 済み", "", "", "", "taken@city.example.lg.jp", "", ""],
        ["1006", "", "", "", "", "", "", ""],
        ["1007", "形式 不正", "", "", "", "not-an-address", "", ""],
        ["1008", "年 不正", "", "", "", "", "", "0001-04-01"],
    ]
    report = import_roster(chiyoda.id, _csv(rows), admin)
    assert not report.applied
    refused = {r.line: r.message for r in report.refused}
    assert refused[3] == "職員番号がありません。"
    assert "採用日「2026-13-40」" in refused[4]
    assert "ファイル内で重複" in refused[5] and "2 行目" in refused[5]
    assert "すでに別の職員（職員番号 9000）" in refused[6]
    assert refused[7] == "氏名がありません。"
    assert "メールアドレスの形式ではありません" in refused[8]
    assert "採用日「0001-04-01」" in refused[9]  # no hire date falls in year 1
    db.session.rollback()
    assert set(_members(db, chiyoda)) == {"9000"}  # the good row was not written either


def test_mark_missing_as_left_keeps_their_records(app, db, chiyoda, admin):
    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    heard = []  # the departure is published (lms.enrollment gives up the later places)
    with signals.staff_member_left.connected_to(lambda _s, **kw: heard.append(kw)):
        report = import_roster(chiyoda.id, _csv(ROWS[:2]), admin, mark_missing_left=True,
                               effective_on=date(2026, 11, 30))
    db.session.commit()
    assert report.counts["left"] == 1
    ichiro = _members(db, chiyoda)["1003"]
    assert [(k["staff_member_id"], k["left_on"]) for k in heard] == [(ichiro.id, date(2026, 11, 30))]
    assert ichiro.status == LEFT and ichiro.left_on == date(2026, 11, 30)
    assert [h.kind for h in ichiro.history] == ["left"]
    # Back in the file: returned, active again.
    report = import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    assert {r.employee_number: r.outcome for r in report.rows}["1003"] == "returned"
    db.session.refresh(ichiro)
    assert ichiro.status == ACTIVE and ichiro.left_on is None


def test_a_file_that_cannot_be_the_whole_roster_retires_nobody(app, db, chiyoda, admin):
    """「ファイルにない職員を退職・転出として記録する」 with an empty file, or one missing more
    than half of those in service, is refused whole: nobody leaves, no place is given up."""
    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    heard = []
    with signals.staff_member_left.connected_to(lambda _s, **kw: heard.append(kw)):
        with pytest.raises(InvalidInput, match="ファイルに職員の行がありません.*全員（3 人）"):
            import_roster(chiyoda.id, _csv([]), admin, mark_missing_left=True, effective_on=date(2026, 11, 30))
        db.session.rollback()
        with pytest.raises(InvalidInput, match="2 人（在職中 3 人の半数超）"):
            import_roster(chiyoda.id, _csv(ROWS[:1]), admin, mark_missing_left=True, effective_on=date(2026, 11, 30))
        db.session.rollback()
    assert heard == []
    assert {m.status for m in _members(db, chiyoda).values()} == {ACTIVE}
    # Without the box ticked, the same partial file just updates the one row it has.
    report = import_roster(chiyoda.id, _csv(ROWS[:1]), admin)
    db.session.commit()
    assert report.applied and report.counts.get("left", 0) == 0


def test_missing_from_a_file_dated_ahead_leave_on_that_day(app, db, chiyoda, admin):
    """An import dated ahead (the 年度末 list) schedules the departures: in service until the
    day (their later places go at once), left from it."""
    from lms.roster.services import apply_due_departures

    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    report = import_roster(chiyoda.id, _csv(ROWS[:2]), admin, mark_missing_left=True, effective_on=date(2027, 3, 31))
    db.session.commit()
    assert report.counts["left"] == 1
    ichiro = _members(db, chiyoda)["1003"]
    assert ichiro.status == ACTIVE and ichiro.left_on == date(2027, 3, 31)
    assert apply_due_departures(date(2027, 3, 31)) == 1
    db.session.refresh(ichiro)
    assert ichiro.status == LEFT


def test_unusable_files_are_refused_with_a_message(app, chiyoda, admin):
    unicode_text = "\ufeff職員番号\t氏名\r\n1001\t山田\r\n".encode("utf-16-le")  # Excel's 「Unicode テキスト」
    with pytest.raises(InvalidInput, match="UTF-16 の「Unicode テキスト」には対応していません"):
        import_roster(chiyoda.id, unicode_text, admin)
    long_field = ("職員番号,氏名\n1001,山田\n1002," + "x" * 140_000 + "\n").encode()
    with pytest.raises(InvalidInput, match="^3 行目から始まる行を CSV として読み取れません。.*1つの欄が長すぎる"):
        import_roster(chiyoda.id, long_field, admin)
    with pytest.raises(InvalidInput, match="見出し行に必要な列"):
        import_roster(chiyoda.id, _csv(ROWS, header=["番号", "名前"]), admin)
    with pytest.raises(InvalidInput, match="空"):
        import_roster(chiyoda.id, b"", admin)
    with pytest.raises(InvalidInput, match="UTF-16"):  # (a UTF-16 byte order mark)
        import_roster(chiyoda.id, b"\xff\xfe\x00\x81\x00", admin)
    with pytest.raises(InvalidInput, match="文字コード"):
        import_roster(chiyoda.id, b"\x81\x00\xff\xff", admin)
    utf32 = "\ufeff職員番号,氏名\r\n1001,山田\r\n".encode("utf-32-le")  # (its mark begins like UTF-16's)
    with pytest.raises(InvalidInput, match="UTF-32 で保存されたファイルには対応していません"):
        import_roster(chiyoda.id, utf32, admin)
    old_excel = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504  # an Excel 97-2003 .xls (a compound file)
    with pytest.raises(InvalidInput, match=r"Excel 97-2003 形式（\.xls）のファイルは読み込めません。.*\.xlsx"):
        import_roster(chiyoda.id, old_excel, admin)
    with pytest.raises(InvalidInput, match="大きすぎます"):
        import_roster(chiyoda.id, b"a" * (16 * 1024 * 1024 + 1), admin)
    too_many = [[str(100000 + i), f"職員{i}", "", "", "", "", "", ""] for i in range(50001)]
    with pytest.raises(InvalidInput, match="行数が多すぎます"):
        import_roster(chiyoda.id, _csv(too_many), admin)


def test_export_is_excel_ready_and_formula_safe(app, db, chiyoda, make_staff):
    make_staff("131016", employee_number="2001", full_name="=HYPERLINK(\"http://evil\")", department="+課", job_title="-係長",
               full_name_kana="@カナ", sign_in_name="a@city.example.lg.jp")
    make_staff("131024", employee_number="2002", full_name="他区 職員")
    data = export_roster_csv(chiyoda.id)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))
    assert rows[0][:6] == HEADER[:6]
    assert len(rows) == 2  # only this municipality
    row = rows[1]
    assert row[1] == "'=HYPERLINK(\"http://evil\")" and row[2] == "'@カナ" and row[3] == "'+課" and row[4] == "'-係長"
    cp932 = export_roster_csv(chiyoda.id, encoding="cp932")
    assert "職員番号".encode("cp932") in cp932
    assert neutralise_cell("\tx") == "'\tx" and neutralise_cell("\rx") == "'\rx" and neutralise_cell("ok") == "ok"


def test_export_then_import_round_trips(app, db, chiyoda, admin):
    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    report = import_roster(chiyoda.id, export_roster_csv(chiyoda.id), admin)
    assert report.applied and report.counts["unchanged"] == 3


def test_the_supervisor_column_marks_heads_and_deputies(app, db, chiyoda, admin):
    """所属長: 「所属長」「代理」 or empty (also 1/○ and 2); a transfer by a file without the column
    ends the headship; an export carries it, so a round trip keeps it."""
    header = [*HEADER, "所属長"]
    rows = [[*ROWS[0], "所属長"], [*ROWS[1], "代理"], [*ROWS[2], ""]]
    report = import_roster(chiyoda.id, _csv(rows, header=header), admin)
    db.session.commit()
    assert report.applied
    members = _members(db, chiyoda)
    assert (members["1001"].department_head, members["1001"].deputy_head) == (True, False)
    assert (members["1002"].department_head, members["1002"].deputy_head) == (False, True)
    assert not members["1003"].department_head and not members["1003"].deputy_head

    exported = export_roster_csv(chiyoda.id).decode("utf-8-sig").splitlines()
    assert "所属長" in exported[0].split(",")
    again = import_roster(chiyoda.id, export_roster_csv(chiyoda.id), admin)
    assert again.counts.get("unchanged") == 3  # the export reads back as it is
    db.session.commit()

    # A file without the column keeps the flags; a transfer in it ends the headship.
    moved = [list(r) for r in ROWS]
    moved[0][3] = "企画部 企画課"
    import_roster(chiyoda.id, _csv(moved), admin)
    db.session.commit()
    db.session.expire_all()
    members = _members(db, chiyoda)
    assert members["1001"].department == "企画部 企画課" and not members["1001"].department_head
    assert members["1002"].deputy_head  # unchanged row: kept

    refused = import_roster(chiyoda.id, _csv([[*ROWS[0], "課長"]], header=header), admin)
    assert not refused.applied
    assert "所属長の欄「課長」" in refused.refused[0].message


def test_a_bom_followed_by_bytes_that_are_not_utf8_is_refused_with_a_message():
    """Found by a hostile-input sweep (a 500 on the roster import and the nomination CSV)."""
    from lms.roster.services import decode_csv

    with pytest.raises(InvalidInput, match="UTF-8"):
        decode_csv(b"\xef\xbb\xbf" + b"\xff\xfe\x00" * 50)
    assert decode_csv(b"\xef\xbb\xbf" + "職員番号".encode())[0] == "職員番号"


def test_a_nul_character_in_a_csv_is_refused_with_its_line(app, chiyoda, admin):
    """PostgreSQL cannot store U+0000 (a 500 before). (An .xlsx cannot carry one: XML has no
    NUL, and openpyxl leaves the _x0000_ escape as it is.)"""
    rows = [list(ROWS[0]), [ROWS[1][0], "山田\x00太郎", *ROWS[1][2:]]]
    with pytest.raises(InvalidInput, match="3 行目に NUL 文字"):
        import_roster(chiyoda.id, _csv(rows), admin)


def test_optional_columns_left_out_keep_what_is_stored(app, db, chiyoda, admin):
    """A file without メール and 採用日 (an HR export that has neither) keeps them; a file that
    has the column but leaves a row's cell empty clears it."""
    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    short_header = HEADER[:6]
    report = import_roster(chiyoda.id, _csv([row[:6] for row in ROWS], header=short_header), admin)
    db.session.commit()
    assert report.applied and report.counts["unchanged"] == 3, [r.message for r in report.rows]
    db.session.expire_all()
    members = _members(db, chiyoda)
    assert members["1002"].email == "hanako@city.example.lg.jp" and members["1002"].hired_on == date(2015, 4, 1)

    cleared = [list(row) for row in ROWS]
    cleared[1][6], cleared[1][7] = "", ""
    report = import_roster(chiyoda.id, _csv(cleared), admin)
    db.session.commit()
    assert report.counts["updated"] == 1
    db.session.expire_all()
    assert _members(db, chiyoda)["1002"].email == "" and _members(db, chiyoda)["1002"].hired_on is None

    # A new entry from such a file starts without them.
    report = import_roster(chiyoda.id, _csv([["1004", "新 職員", "シン ショクイン", "総務部 総務課", "主事", ""]],
                                            header=short_header), admin)
    db.session.commit()
    assert report.counts["added"] == 1
    new = _members(db, chiyoda)["1004"]
    assert new.email == "" and new.hired_on is None and new.job_grade == ""


def test_an_export_with_formula_characters_reads_back_unchanged(app, db, chiyoda, admin, make_staff):
    """The export puts an apostrophe before = + - @ (a spreadsheet would run them); importing the
    export takes it away again: nothing changes, no transfer is recorded."""
    make_staff("131016", employee_number="3001", full_name="@山田 太郎", department="@総務課", job_title="-主事",
               sign_in_name="yamada@city.example.lg.jp", email="yamada@city.example.lg.jp")
    make_staff("131016", employee_number="3002", full_name="鈴木 花子", department="=企画課", job_title="+主任")
    db.session.commit()
    exported = export_roster_csv(chiyoda.id)
    assert "'@総務課" in exported.decode("utf-8-sig")
    report = import_roster(chiyoda.id, exported, admin)
    db.session.commit()
    assert report.applied and report.counts["unchanged"] == 2, [r.message for r in report.rows]
    assert db.session.scalar(select(func.count()).select_from(StaffHistory)) == 0
    db.session.expire_all()
    members = _members(db, chiyoda)
    assert (members["3001"].department, members["3001"].job_title) == ("@総務課", "-主事")
    assert members["3002"].department == "=企画課"
    # A cell that merely starts with an apostrophe (no formula character after it) is kept.
    report = import_roster(chiyoda.id, _csv([["3003", "'t Hooft", "ト ホーフト", "'総務課", "主事", ""]],
                                            header=HEADER[:6]), admin)
    db.session.commit()
    assert report.applied
    member = _members(db, chiyoda)["3003"]
    assert member.full_name == "'t Hooft" and member.department == "'総務課"


def _count(db, model=StaffMember):
    return db.session.scalar(select(func.count()).select_from(model))


def test_an_unclosed_quote_refuses_the_file_naming_the_line(app, db, chiyoda, admin):
    """Found by QA: a 「"」 left open took the following lines into one field (氏名 「unterminated,x
    9000008,a,b,…」) and the next person was lost, reported as a success. The file is refused,
    naming the line where the unreadable record starts and why it may be."""
    data = ("職員番号,氏名,氏名カナ,所属,職名,サインイン名,メール,採用日\n"
            "9000006,ok,,総務課,主事,,,\n"
            '9000007,"unterminated,x\n'
            "9000008,a,b,c,d,e,f,g,h,i,j,k\n").encode()
    with pytest.raises(InvalidInput, match=r'^3 行目から始まる行を CSV として読み取れません。「"」で囲んだ欄が閉じられていない') as refused:
        import_roster(chiyoda.id, data, admin)
    assert "長すぎる" in refused.value.message and "読み取れない文字" in refused.value.message
    # A quote inside a value not doubled (「"ab"c」) is as unreadable.
    with pytest.raises(InvalidInput, match="^2 行目から始まる行"):
        import_roster(chiyoda.id, '職員番号,氏名,氏名カナ,所属,職名,サインイン名\n9000009,"ab"c,,総務課,主事,\n'.encode(), admin)
    db.session.rollback()
    assert _count(db) == 0


def test_a_row_with_more_values_than_the_header_is_refused(app, db, chiyoda, admin):
    """A 「,」 in a value not in 「"」 puts every later value a column off: refused, naming the
    line and the counts. Empty cells after the last value (as Excel writes them) are fine."""
    header = "職員番号,氏名,氏名カナ,所属,職名,サインイン名,メール,採用日\n"
    data = (header + "9000010,ok,,総務課,主事,,,\n9000011,山田,太郎,ヤマダ タロウ,総務課,主事,,,2020-04-01\n").encode()
    with pytest.raises(InvalidInput, match=r"^3 行目の欄の数（9）が見出し行の列の数（8）より多い"):
        import_roster(chiyoda.id, data, admin)
    db.session.rollback()
    assert _count(db) == 0
    report = import_roster(chiyoda.id, (header + "9000012,ok,,総務課,主事,,,,,,\n").encode(), admin)
    db.session.commit()
    assert report.applied and report.counts["added"] == 1


def test_a_value_over_several_lines_is_refused(app, db, chiyoda, admin):
    """A quoted value with a line break (a cell typed with Alt+Enter) is not stored as it is
    (nor with the break made a space): the row is refused, naming the column."""
    rows = [["9000013", "山田\n太郎", "ヤマダ タロウ", "総務課", "主事", "", "", ""],
            ["9000014", "鈴木 花子", "スズキ ハナコ", "総務課\r\n企画係", "主事", "", "", ""]]
    report = import_roster(chiyoda.id, _csv(rows), admin)
    assert not report.applied
    refused = {(r.line, r.employee_number): r.message for r in report.refused}
    assert refused == {
        (2, "9000013"): "氏名に改行が含まれています。1行で入力してください（Excel ではセル内の改行を取り除いてください）。",
        (4, "9000014"): "所属に改行が含まれています。1行で入力してください（Excel ではセル内の改行を取り除いてください）。",
    }
    db.session.rollback()
    assert _count(db) == 0


def test_row_numbers_count_the_blank_lines(app, db, chiyoda, admin):
    """Found by QA: blank lines were left out before the rows were numbered (lines 2 and 3 for
    rows on lines 4 and 6). Each row is reported on the line it starts on in the file."""
    data = "職員番号,氏名,氏名カナ,所属,職名,サインイン名,メール,採用日\n\n\n9000020,ok,,総務課,主事,,,\n\n9000021,,,総務課,主事,,,\n"
    report = import_roster(chiyoda.id, data.encode(), admin)
    assert [(r.line, r.employee_number, r.outcome) for r in report.rows] == [
        (4, "9000020", "added"), (6, "9000021", "refused")]
    # A header after blank lines, and a value over two lines: the next row starts after it.
    data = '\r\n職員番号,氏名,氏名カナ,所属,職名,サインイン名\r\n9000022,"山田\r\n太郎",,総務課,主事,\r\n9000023,,,総務課,主事,\r\n'
    report = import_roster(chiyoda.id, data.encode(), admin)
    assert [(r.line, r.employee_number) for r in report.rows] == [(3, "9000022"), (5, "9000023")]
    with pytest.raises(InvalidInput, match="^4 行目に NUL 文字"):
        import_roster(chiyoda.id, "職員番号,氏名,氏名カナ,所属,職名,サインイン名\n\n1,a,,,,\n2,\x00,,,,\n".encode(), admin)


def test_a_duplicate_number_is_flagged_after_a_refused_row(app, db, chiyoda, admin):
    """Found by QA: when the first of two rows with the same 職員番号 was refused for another
    reason, the second was shown as 追加. It is a duplicate whatever the first row's outcome
    (which of the two is meant?); so is a サインイン名."""
    rows = [["9000030", "山田 太郎", "", "総務課", "主事", "taro@city.example.lg.jp", "", "いつか"],
            ["9000030", "山田 太郎", "", "総務課", "主事", "", "", "2020-04-01"],
            ["9000031", "", "", "総務課", "主事", "hana@city.example.lg.jp", "", ""],
            ["9000032", "鈴木 花子", "", "総務課", "主事", "hana@city.example.lg.jp", "", ""],
            ["9000033", "佐藤 一郎", "", "総務課", "主事", "taro@city.example.lg.jp", "", ""]]
    report = import_roster(chiyoda.id, _csv(rows), admin)
    assert not report.applied
    assert [(r.line, r.outcome, r.message) for r in report.rows] == [
        (2, "refused", "採用日「いつか」が日付として読めません（例：2026-04-01、令和8年4月1日）。"),
        (3, "refused", "職員番号 9000030 がファイル内で重複しています（2 行目と同じ）。"),
        (4, "refused", "氏名がありません。"),
        (5, "refused", "サインイン名 hana@city.example.lg.jp がファイル内で重複しています（4 行目と同じ）。"),
        (6, "refused", "サインイン名 taro@city.example.lg.jp がファイル内で重複しています（2 行目と同じ）。"),
    ]


def test_a_value_too_long_names_the_column_in_the_readers_language(app, db, chiyoda, admin):
    """「%(column)s が長すぎます」 had a space after the Japanese name, and named the column in
    Japanese in English pages while every other message names it in English."""
    from flask_babel import force_locale

    rows = [["1" * 21, "山田 太郎", "", "総務課", "主事", "", "", ""], ["9000040", "山" * 101, "", "総務課", "主事", "", "", ""]]
    report = import_roster(chiyoda.id, _csv(rows), admin)
    assert [r.message for r in report.rows] == ["職員番号が長すぎます（20 文字まで）。", "氏名が長すぎます（100 文字まで）。"]
    with force_locale("en"):
        report = import_roster(chiyoda.id, _csv(rows), admin)
    messages = [r.message for r in report.rows]
    assert messages[0].startswith("Employee number") and messages[1].startswith("Name"), messages
    assert "職員番号" not in messages[0] and "氏名" not in messages[1]


def test_the_changed_columns_of_an_update_are_named_in_the_readers_language(app, db, chiyoda, admin):
    from flask_babel import force_locale

    import_roster(chiyoda.id, _csv(ROWS), admin)
    db.session.commit()
    renamed = [ROWS[0][:1] + ["山田 太朗", "ヤマダ タロウ"] + ROWS[0][3:6] + ["taro@city.example.lg.jp", ROWS[0][7]]]
    report = import_roster(chiyoda.id, _csv(renamed), admin)
    assert [(r.outcome, r.message) for r in report.rows] == [("updated", "変更：氏名、メール")]
    db.session.rollback()  # (the same file again, read by an English reader)
    with force_locale("en"):
        report = import_roster(chiyoda.id, _csv(renamed), admin)
    [row] = report.rows
    assert "Name" in row.message and "氏名" not in row.message and "メール" not in row.message, row.message


def test_hire_dates_in_wareki_are_read(app, db, chiyoda, admin):
    """Found by QA: rosters kept by personnel sections write 採用日 in 和暦 (令和2年4月1日,
    R2.4.1); they were refused as no date. One that does not exist still is."""
    rows = [["9000040", "和暦 一", "", "総務課", "主事", "", "", "令和2年4月1日"],
            ["9000041", "和暦 二", "", "総務課", "主事", "", "", "H31.4.1"],
            ["9000042", "和暦 三", "", "総務課", "主事", "", "", "平成元年４月１日"],
            ["9000043", "和暦 四", "", "総務課", "主事", "", "", "令和元年4月1日"]]  # (令和 began on 5月1日)
    report = import_roster(chiyoda.id, _csv(rows[:3]), admin)
    assert report.applied and [r.outcome for r in report.rows] == ["added"] * 3
    db.session.commit()
    hired = dict(db.session.execute(select(StaffMember.employee_number, StaffMember.hired_on)
                                    .where(StaffMember.employee_number.in_(["9000040", "9000041", "9000042"]))).all())
    assert hired == {"9000040": date(2020, 4, 1), "9000041": date(2019, 4, 1), "9000042": date(1989, 4, 1)}
    refused = import_roster(chiyoda.id, _csv(rows[3:]), admin)
    assert [(r.outcome, r.message) for r in refused.rows] == [
        ("refused", "採用日「令和元年4月1日」が日付として読めません（例：2026-04-01、令和8年4月1日）。")]
