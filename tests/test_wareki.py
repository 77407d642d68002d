"""和暦 and 年度 labels, across the era boundaries."""

from datetime import UTC, date, datetime

import pytest

from lms.common.timeutil import fiscal_year_label, format_wareki, wareki_year


def test_the_reiwa_boundary():
    assert wareki_year(date(2019, 4, 30)) == ("平成", 31)
    assert wareki_year(date(2019, 5, 1)) == ("令和", 1)
    assert format_wareki(date(2019, 4, 30)) == "平成31年4月30日"
    assert format_wareki(date(2019, 5, 1)) == "令和元年5月1日"
    assert format_wareki(date(2026, 12, 3)) == "令和8年12月3日"


def test_the_heisei_boundary_and_datetimes_judged_in_tokyo():
    assert format_wareki(date(1989, 1, 7)) == "昭和64年1月7日"
    assert format_wareki(date(1989, 1, 8)) == "平成元年1月8日"
    # 2019-04-30 15:00 UTC is already 1 May in Tokyo.
    assert format_wareki(datetime(2019, 4, 30, 15, 0, tzinfo=UTC)) == "令和元年5月1日"
    with pytest.raises(ValueError):
        wareki_year(date(1900, 1, 1))


def test_fiscal_year_labels():
    assert fiscal_year_label(2026) == "2026年度"
    assert fiscal_year_label(2026, wareki=True) == "令和8年度"
    assert fiscal_year_label(2019, wareki=True) == "令和元年度"
    assert fiscal_year_label(2018, wareki=True) == "平成30年度"
    assert fiscal_year_label(1989, wareki=True) == "平成元年度"
    assert fiscal_year_label(1988, wareki=True) == "昭和63年度"
