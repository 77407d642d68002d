"""Mandatory assignments (必修指定): what the form accepts, duplicates, and overlapping groups."""

from __future__ import annotations

from sqlalchemy import func, select

from lms.completion.models import MandatoryAssignment


def _form(d, **changes):
    form = {"course_id": d["a"].id, "fiscal_year": d["fy"], "municipality_id": str(d["chiyoda"]),
            "department": "", "job_title": "", "due_on": f"{d['fy'] + 1}-03-31", "note": ""}
    return {**form, **changes}


def _count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(MandatoryAssignment))


def test_a_due_date_too_early_or_too_late_says_which_and_names_the_range(known_data, client, login_as, db):
    d = known_data
    fy = d["fy"]
    login_as("municipal_admin", "131016")
    before = _count(db)
    span = f"{fy}年4月1日から{fy + 2}年3月31日まで"
    late = client.post("/completion/assignments/new", data=_form(d, due_on=f"{fy + 2}-04-01"))
    assert late.status_code == 200
    assert "期限が遅すぎます" in late.get_data(as_text=True) and span in late.get_data(as_text=True)
    early = client.post("/completion/assignments/new", data=_form(d, due_on=f"{fy}-03-31"))
    assert "期限が早すぎます" in early.get_data(as_text=True) and span in early.get_data(as_text=True)
    assert _count(db) == before
    # The last day of the range is accepted.
    assert client.post("/completion/assignments/new", data=_form(d, due_on=f"{fy + 2}-03-31")).status_code == 302
    assert _count(db) == before + 1
