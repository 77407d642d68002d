"""The fiscal years the completion area works with (services.fiscal_year_range): the forms
accept no year its pages cannot show, and a page or export asked for such a year never answers
with another year's figures."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from lms.common.errors import InvalidInput
from lms.completion import services
from lms.completion.models import Completion, MandatoryAssignment


def _years(d):
    return d["fy"] - services.YEARS_BACK, d["fy"] + services.YEARS_AHEAD


def _error(page: str, field: str) -> str:
    found = re.search(rf'id="{field}-error"[^>]*>(.*?)</', page, re.S)
    return found.group(1) if found else ""


def test_a_manual_completion_for_a_year_not_shown_is_refused(known_data, client, login_as, db):
    d = known_data
    first, _last = _years(d)
    trainer = login_as("trainer", "131016")
    d["a"].owner_id = trainer.id
    db.session.commit()
    s2 = d["staff"][1]
    before = db.session.scalar(select(func.count()).select_from(Completion))
    for year in (2005, first - 1):
        page = client.post(f"/completion/courses/{d['a'].id}", data={
            "municipality_id": s2.municipality_id, "employee_number": s2.employee_number,
            "fiscal_year": year, "reason": "会場で出席を確認",
        })
        assert page.status_code == 200
        assert _error(page.get_data(as_text=True), "fiscal_year") == \
            f"年度は{first}から{d['fy']}までの数で入力してください。"
    assert db.session.scalar(select(func.count()).select_from(Completion)) == before
    # The first year shown is accepted (and shown on the page it returns to).
    page = client.post(f"/completion/courses/{d['a'].id}", data={
        "municipality_id": s2.municipality_id, "employee_number": s2.employee_number,
        "fiscal_year": first, "reason": "会場で出席を確認",
    })
    assert page.status_code == 302 and f"fy={first}" in page.headers["Location"]
    assert s2.full_name in client.get(page.headers["Location"]).get_data(as_text=True)
    # The service refuses it too.
    with pytest.raises(InvalidInput, match=f"年度は{first}から"):
        services.complete_manually(s2.id, d["a"].id, first - 1, trainer, "理由")


def test_an_assignment_for_a_year_not_shown_is_refused(known_data, client, login_as, db):
    d = known_data
    first, last = _years(d)
    admin = login_as("municipal_admin", "131016")
    before = db.session.scalar(select(func.count()).select_from(MandatoryAssignment))
    for year in (2100, last + 1, first - 1):
        page = client.post("/completion/assignments/new", data={
            "course_id": d["a"].id, "fiscal_year": year, "municipality_id": str(d["chiyoda"]),
            "department": "", "job_title": "", "due_on": f"{year}-06-30", "note": "",
        })
        assert page.status_code == 200
        assert _error(page.get_data(as_text=True), "fiscal_year") == \
            f"年度は{first}から{last}までの数で入力してください。"
    assert db.session.scalar(select(func.count()).select_from(MandatoryAssignment)) == before
    with pytest.raises(InvalidInput, match=f"年度は{first}から{last}まで"):
        services.save_mandatory_assignment(admin, course_id=d["a"].id, fiscal_year=2100,
                                           municipality_id=d["chiyoda"], due_on=date(2100, 6, 30))


@pytest.mark.parametrize(("asked", "nearest"), [("2005", "first"), ("2100", "last"), ("-1", "first"),
                                                ("abc", "current")])
def test_a_page_asked_for_a_year_not_shown_goes_to_the_nearest_with_a_notice(known_data, client, login_as,
                                                                             asked, nearest):
    d = known_data
    first, last = _years(d)
    shown = {"first": first, "last": last, "current": d["fy"]}[nearest]
    login_as("municipal_admin", "131016")
    for path in ("/completion/dashboard", "/completion/records", "/completion/assignments/new"):
        response = client.get(f"{path}?fy={asked}&municipality={d['chiyoda']}")
        assert response.status_code == 302, path
        location = urlsplit(response.headers["Location"])
        assert location.path == path
        assert parse_qs(location.query) == {"fy": [str(shown)], "municipality": [str(d["chiyoda"])]}
        html = client.get(response.headers["Location"]).get_data(as_text=True)
        if nearest == "current":
            assert f"年度の指定が正しくないため、{shown}年度を表示しています。" in html
        else:
            assert f"{asked}年度は表示できません（表示できるのは{first}年度から{last}年度までです）。" \
                   f"{shown}年度を表示しています。" in html


def test_the_year_shown_instead_keeps_the_pages_own_address(known_data, client, login_as, db):
    d = known_data
    trainer = login_as("trainer", "131016")
    d["a"].owner_id = trainer.id
    db.session.commit()
    response = client.get(f"/completion/courses/{d['a'].id}?fy=2005&course_id=999&_external=1&page=2")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == f"/completion/courses/{d['a'].id}" and not location.netloc
    assert parse_qs(location.query) == {"fy": [str(d["fy"] - services.YEARS_BACK)], "page": ["2"]}


def test_a_page_in_the_range_is_shown_as_asked(known_data, client, login_as):
    d = known_data
    first, last = _years(d)
    login_as("platform_admin")
    for year in (first, last):
        response = client.get(f"/completion/compare?fy={year}")
        assert response.status_code == 200
        assert f'<option value="{year}" selected' in response.get_data(as_text=True)


def test_an_export_for_a_year_not_shown_is_not_found(known_data, client, login_as):
    d = known_data
    login_as("municipal_admin", "131016")
    for asked in ("2005", "2100", "-1", "abc", str(d["fy"] - services.YEARS_BACK - 1)):
        for path in ("/completion/export/records.csv", "/completion/export/courses.xlsx",
                     f"/completion/courses/{d['a'].id}/certificates.zip"):
            assert client.get(f"{path}?fy={asked}", buffered=True).status_code == 404, (path, asked)
    # Every year at once (the records only) and a year shown still work.
    whole = client.get("/completion/export/records.csv?fy=all", buffered=True)
    assert whole.status_code == 200 and "completions-all-" in whole.headers["Content-Disposition"]
    assert client.get("/completion/export/courses.csv?fy=all", buffered=True).status_code == 404
    first = d["fy"] - services.YEARS_BACK
    oldest = client.get(f"/completion/export/records.csv?fy={first}", buffered=True)
    assert oldest.status_code == 200 and f"completions-{first}-" in oldest.headers["Content-Disposition"]
