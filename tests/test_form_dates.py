"""Dates and times typed in Japanese order, whatever the browser's locale (#23 item 9)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from werkzeug.datastructures import MultiDict

from lms.common.forms import (
    Form,
    JapaneseDateField,
    JapaneseDateTimeField,
    impossible_date,
    parse_japanese_date,
    parse_japanese_datetime,
)


@pytest.mark.parametrize("text", ["2026-12-03", "2026/12/3", "2026年12月3日", "２０２６年１２月３日", " 2026.12.03 "])
def test_dates_in_japanese_order(text):
    assert parse_japanese_date(text) == date(2026, 12, 3)


@pytest.mark.parametrize(("text", "day"), [
    ("令和8年12月3日", date(2026, 12, 3)), ("令和８年１２月３日", date(2026, 12, 3)), ("R8.12.3", date(2026, 12, 3)),
    ("r8/12/3", date(2026, 12, 3)), ("㋿8年12月3日", date(2026, 12, 3)), ("令和元年5月1日", date(2019, 5, 1)),
    ("H31.4.30", date(2019, 4, 30)), ("平成31年5月1日", date(2019, 5, 1)),  # (after the era ended: read as meant)
    ("昭和64年1月7日", date(1989, 1, 7)), ("S50.4.1", date(1975, 4, 1)),
])
def test_dates_in_wareki(text, day):
    """Rosters and personnel orders (発令日, 採用日) are often written in 和暦."""
    assert parse_japanese_date(text) == day


@pytest.mark.parametrize("text", ["令和元年4月30日", "平成元年1月7日", "令和8年2月30日", "令和8年13月1日", "大正15年1月1日", "M8.1.1"])
def test_wareki_dates_that_never_were_are_refused(text):
    """Before the era began (令和 began on 2019-05-01), or a day the month has not."""
    assert parse_japanese_date(text) is None
    assert impossible_date(text) == (text == "令和8年2月30日")


@pytest.mark.parametrize("text", ["2026-12-03 14:05", "2026-12-03T14:05", "2026/12/3 14:05", "2026年12月3日 14時05分",
                                  "2026年12月3日14時05分", "２０２６／１２／０３　１４：０５"])
def test_date_times_in_japanese_order(text):
    assert parse_japanese_datetime(text) == datetime(2026, 12, 3, 14, 5)


@pytest.mark.parametrize("text", ["令和8年12月3日 14:05", "令和8年12月3日14時05分", "R8.12.3 14:05", "r8/12/3 14時5分",
                                  "令和８年１２月３日　１４：０５"])
def test_date_times_in_wareki(text):
    """Session forms (開始日時, 申込締切) read 和暦 as the date fields do."""
    assert parse_japanese_datetime(text) == datetime(2026, 12, 3, 14, 5)


@pytest.mark.parametrize("text", ["R9.3.1 100:00", "R9.3.1 110:00", "R9.3.1 1 10:00", "令和9年3月1 100:00",
                                  "2027/3/1 100:00", "2027/3/1 1 10:00", "2026 / 12 / 3 14:05"])
def test_a_digit_of_the_time_is_never_glued_to_the_day(text):
    """Found by review: spaces were dropped before reading, so R9.3.1 110:00 became the 11th, 10:00."""
    assert parse_japanese_datetime(text) is None


def test_a_digit_after_a_space_is_never_glued_to_the_day():
    assert parse_japanese_date("2027/3/1 1") is None
    assert parse_japanese_date("2026年 12月 3日") == date(2026, 12, 3)
    assert parse_japanese_datetime("2026年 12月 3日 14時") == datetime(2026, 12, 3, 14, 0)


@pytest.mark.parametrize("text", ["令和8年12月3日 24:00", "令和8年2月30日 10:00", "令和元年4月30日 10:00", "令和8年12月3日 10:60"])
def test_wareki_date_times_that_never_were_are_refused(text):
    assert parse_japanese_datetime(text) is None


@pytest.mark.parametrize("text", ["２０２７−０３−０５", "２０２７ー０３ー０５", "2027‐03‐05", "2027–03–05", "２０２７－０３－０５"])
def test_dashes_typed_by_input_methods_between_digits(text):
    """A minus sign, a hyphen, an en dash or ー typed between the digits in full-width mode."""
    assert parse_japanese_date(text) == date(2027, 3, 5)
    assert parse_japanese_datetime(text + " １０：００") == datetime(2027, 3, 5, 10, 0)


@pytest.mark.parametrize("text", ["12/03/2026", "2026-02-30", "2026-13-01", "明日", "2026-12-03 25:00", "12/24/2026, 02:00 PM"])
def test_other_orders_and_impossible_dates_are_not_guessed(text):
    assert parse_japanese_datetime(text) is None and parse_japanese_date(text.split(" ")[0]) in (None, date(2026, 12, 3))


def test_fields_render_text_boxes_and_say_why_in_japanese(app):
    class Sample(Form):
        class Meta:
            csrf = False

        day = JapaneseDateField("日付")
        when = JapaneseDateTimeField("日時")

    with app.test_request_context():
        form = Sample(formdata=MultiDict({"day": "2026/2/3O", "when": "12/24/2026, 02:00 PM"}))
        assert not form.validate()
        assert form.day.errors == ["日付は「2026-12-03」のように年・月・日の順で入力してください。"]
        assert form.when.errors == ["日時は「2026-12-03 14:00」のように年・月・日 時:分の順で入力してください。"]
        html = str(form.when())
        assert 'type="text"' in html and 'inputmode="numeric"' in html and 'value="12/24/2026, 02:00 PM"' in html
        shown = Sample(formdata=None, data={"day": date(2026, 4, 1), "when": datetime(2026, 4, 1, 9, 30)})
        assert 'value="2026-04-01"' in str(shown.day()) and 'value="2026-04-01 09:30"' in str(shown.when())


@pytest.mark.parametrize(("field", "text"), [(JapaneseDateField, "2026/2/30"), (JapaneseDateTimeField, "2026-02-30 10:00"),
                                             (JapaneseDateTimeField, "２０２６年４月３１日　１０時")])
def test_a_day_the_month_has_not_is_called_so(app, field, text):
    class Sample(Form):
        class Meta:
            csrf = False

        when = field("日時")

    with app.test_request_context():
        form = Sample(formdata=MultiDict({"when": text}))
        assert not form.validate()
        assert form.when.errors == ["存在しない日付です（その月にない日）。"]


@pytest.mark.parametrize("text", ["0001-01-01", "1899-12-31", "2200-01-01", "9999-12-31"])
def test_years_no_date_of_manabi_falls_in_are_refused(text):
    """Year 1 or 9999 cannot even be moved between Tokyo time and UTC (a 500 before); a year
    before 1900 or after 2199 is a typing mistake."""
    assert parse_japanese_date(text) is None
    assert parse_japanese_datetime(text + " 00:00") is None


def test_the_first_and_last_plausible_years_are_taken():
    assert parse_japanese_date("1900-01-01") == date(1900, 1, 1)
    assert parse_japanese_datetime("2199-12-31 23:59") == datetime(2199, 12, 31, 23, 59)
