"""研修負担金: charges from confirmed participation, no-shows and late cancellations;
exemptions; statements that never change (corrections are new lines)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask_babel import force_locale

from lms.attendance.models import Attendance
from lms.common.errors import InvalidInput, NotAllowed
from lms.common.timeutil import fiscal_year_of, utcnow
from lms.enrollment.models import CANCELLED, CONFIRMED, WAITLISTED, Enrollment
from lms.extensions import db
from lms.planning import fees, services
from lms.planning.models import LINE_CORRECTION, LINE_LATE_CANCELLATION, LINE_NO_SHOW, LINE_PARTICIPANT
from tests import factories

A = "131016"


def enroll(session, member, status=CONFIRMED, **kw):
    row = Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                     status=status, arrival_seq=1, **kw)
    db.session.add(row)
    db.session.flush()
    return row


@pytest.fixture
def year(make_user, make_course, make_session, make_staff):
    """A plan with a course of 3,000 yen: in its past session one attended, one did not, one
    cancelled late, one in time; in its future session one confirmed, one waitlisted."""
    admin = make_user("platform_admin", "130001")
    course = make_course(title="新任職員研修")
    past = make_session(course, starts_in=timedelta(days=-3))
    future = make_session(course, starts_in=timedelta(days=20))
    if fiscal_year_of(past.starts_at) != fiscal_year_of(future.starts_at):  # (near 1 April)
        future.starts_at = past.starts_at + timedelta(hours=3)
        future.ends_at = future.starts_at + timedelta(hours=1)
    plan = services.create_plan(admin, fiscal_year_of(past.starts_at), survey_unit="session")
    services.publish_plan(admin, plan, utcnow() + timedelta(days=7))
    people = [make_staff(A, full_name=f"負担 {n}") for n in range(6)]
    came, absent, late, in_time, later, waiting = people
    enroll(past, came)
    db.session.add(Attendance(session_id=past.id, staff_member_id=came.id, attended=True, attended_pct=100))
    enroll(past, absent)
    enroll(past, late, status=CANCELLED, late_cancellation=True, cancelled_at=utcnow())
    enroll(past, in_time, status=CANCELLED, late_cancellation=False, cancelled_at=utcnow())
    enroll(future, later)
    enroll(future, waiting, status=WAITLISTED)
    fees.set_fees(admin, plan, {course.id: 3000}, charge_late_cancellation=True, charge_no_show=True)
    db.session.commit()
    return admin, plan, course, people


def test_charges_follow_the_plan_rules(year):
    admin, plan, course, (came, absent, late, *_rest) = year
    mid = came.municipality_id
    kinds = {c.staff_name: (c.kind, c.amount_yen) for c in fees.charges(plan, mid)}
    assert kinds == {"負担 0": (LINE_PARTICIPANT, 3000), "負担 1": (LINE_NO_SHOW, 3000),
                     "負担 2": (LINE_LATE_CANCELLATION, 3000), "負担 4": (LINE_PARTICIPANT, 3000)}
    fees.set_fees(admin, plan, {course.id: 3000}, charge_late_cancellation=False, charge_no_show=False)
    assert {c.staff_name for c in fees.charges(plan, mid)} == {"負担 0", "負担 4"}
    assert fees.totals(plan, [mid, factories.municipality("131024").id]) == {mid: 6000,
                                                                            factories.municipality("131024").id: 0}


def test_a_series_is_one_place_billed_once(year, make_course, make_session, make_staff):
    """A 連続講座 of three days: each person is charged once, on the first day's enrollment; a
    no-show only when no day was attended and the last day is over."""
    admin, plan, _course, (came, *_rest) = year
    course = make_course(title="連続講座")
    past = db.session.scalar(db.select(Enrollment).where(Enrollment.staff_member_id == came.id)).session

    def series(*starts):
        days = [make_session(course, starts_in=timedelta(days=1)) for _ in starts]
        for day, starts_at in zip(days, starts, strict=True):
            day.starts_at, day.ends_at, day.series_id = starts_at, starts_at + timedelta(hours=1), days[0].id
        db.session.flush()
        return days

    over = series(past.starts_at + timedelta(hours=2), past.starts_at + timedelta(hours=4),
                  past.starts_at + timedelta(hours=6))
    going_on = series(past.starts_at + timedelta(hours=8), utcnow() + timedelta(hours=2))
    second_day, none, to_come = (make_staff(A, full_name=f"連続 {n}") for n in range(3))
    for member, days in ((second_day, over), (none, over), (to_come, going_on)):
        enroll(days[0], member)
        for day in days[1:]:
            enroll(day, member, source="series")
    db.session.add(Attendance(session_id=over[1].id, staff_member_id=second_day.id, attended=True, attended_pct=100))
    fees.set_fees(admin, plan, {course.id: 5000}, charge_late_cancellation=True, charge_no_show=True)
    db.session.commit()
    lines = [(c.staff_name, c.kind, c.amount_yen) for c in fees.charges(plan, came.municipality_id)
             if c.course_id == course.id]
    assert sorted(lines) == [("連続 0", LINE_PARTICIPANT, 5000), ("連続 1", LINE_NO_SHOW, 5000),
                             ("連続 2", LINE_PARTICIPANT, 5000)]


def test_the_most_specific_exemption_applies_and_amounts_round_down(year):
    admin, plan, course, (came, *_rest) = year
    mid = came.municipality_id
    fees.add_exemption(admin, plan, municipality_id=mid, course_id=None, percent=50, reason="被災")
    assert {c.amount_yen for c in fees.charges(plan, mid)} == {1500}
    fees.add_exemption(admin, plan, municipality_id=mid, course_id=course.id, percent=33, reason="共催")
    assert {c.amount_yen for c in fees.charges(plan, mid)} == {2010}  # 3000 x 67 / 100
    with pytest.raises(InvalidInput):
        fees.add_exemption(admin, plan, municipality_id=mid, course_id=course.id, percent=10, reason="二重")
    with pytest.raises(InvalidInput):
        fees.add_exemption(admin, plan, municipality_id=None, course_id=None, percent=10, reason="対象なし")
    with pytest.raises(InvalidInput):
        fees.add_exemption(admin, plan, municipality_id=mid, course_id=None, percent=0, reason="0%")


def test_statements_never_change_and_corrections_are_new_lines(year):
    admin, plan, course, (came, absent, late, in_time, later, waiting) = year
    mid = came.municipality_id
    first = fees.issue_statement(admin, plan, mid)
    db.session.commit()
    assert first.version == 1 and first.total_yen == 12000 and len(first.lines) == 4
    with pytest.raises(InvalidInput):
        fees.issue_statement(admin, plan, mid)  # nothing new
    # After billing: the future participant cancels in time, the absent one's attendance is
    # corrected (still charged: no new line), and the fee changes.
    row = db.session.scalar(db.select(Enrollment).where(Enrollment.staff_member_id == later.id))
    row.status, row.cancelled_at = CANCELLED, utcnow()
    fees.set_fees(admin, plan, {course.id: 3500}, charge_late_cancellation=True, charge_no_show=True)
    db.session.commit()
    with force_locale("en"):  # the issuer reads the site in English: the statement stays Japanese
        second = fees.issue_statement(admin, plan, mid)
    db.session.commit()
    assert {line.staff_name: line.note for line in second.lines} == {
        "負担 0": "訂正（前回までの請求 3,000円）", "負担 1": "訂正（前回までの請求 3,000円）",
        "負担 2": "訂正（前回までの請求 3,000円）", "負担 4": "訂正（請求の取消し。前回までの請求 3,000円）"}
    lines = {(line.staff_name, line.kind): line.amount_yen for line in second.lines}
    assert lines == {("負担 0", LINE_CORRECTION): 500, ("負担 1", LINE_CORRECTION): 500,
                     ("負担 2", LINE_CORRECTION): 500, ("負担 4", LINE_CORRECTION): -3000}
    assert second.version == 2 and second.total_yen == -1500
    db.session.refresh(first)
    assert first.total_yen == 12000 and sum(line.amount_yen for line in first.lines) == 12000  # unchanged
    # Everything billed so far equals what is owed now.
    assert first.total_yen + second.total_yen == sum(c.amount_yen for c in fees.charges(plan, mid))


def test_only_the_platform_admin_bills(year, make_user):
    _admin, plan, course, (came, *_rest) = year
    office = make_user("municipal_admin", A)
    with pytest.raises(NotAllowed):
        fees.issue_statement(office, plan, came.municipality_id)
    with pytest.raises(NotAllowed):
        fees.set_fees(office, plan, {course.id: 0}, charge_late_cancellation=True, charge_no_show=True)
    with pytest.raises(InvalidInput):
        fees.set_fees(_admin, plan, {course.id: -1}, charge_late_cancellation=True, charge_no_show=True)


def test_fee_pages_bill_and_show_only_your_own(app, client, login_as, year):
    admin, plan, course, (came, *_rest) = year
    mid = came.municipality_id
    login_as(user=admin)
    page = client.get(f"/plans/{plan.id}/fees")
    assert page.status_code == 200 and "12,000円" in page.get_data(as_text=True)
    bad = client.post(f"/plans/{plan.id}/fees", data={f"fee-{course.id}": "三千", "charge_no_show": "1"})
    assert bad.status_code == 400 and 'value="三千"' in bad.get_data(as_text=True)
    ok = client.post(f"/plans/{plan.id}/fees", data={f"fee-{course.id}": "４,０００", "charge_no_show": "1",
                                                      "charge_late_cancellation": "1"})
    assert ok.status_code == 302 and fees.fees_of(plan)[course.id] == 4000
    # A post without a course's field leaves its fee alone (never a silent ¥0).
    kept = client.post(f"/plans/{plan.id}/fees", data={"charge_no_show": "1", "charge_late_cancellation": "1"})
    assert kept.status_code == 302 and fees.fees_of(plan)[course.id] == 4000
    exempt = client.post(f"/plans/{plan.id}/fees/exemptions", data={"municipality_id": str(mid), "course_id": "0",
                                                                      "percent": "25", "reason": "共同開催"})
    assert exempt.status_code == 302
    issued = client.post(f"/plans/{plan.id}/fees/{mid}/issue")
    assert issued.status_code == 302
    statement = fees.statements_of(plan, mid)[0]
    assert statement.total_yen == 4 * 3000  # 4,000 yen less 25 %
    sheet = client.get(f"/plans/{plan.id}/statements/{statement.id}.xlsx")
    assert sheet.status_code == 200 and sheet.data.startswith(b"PK")
    import io

    from openpyxl import load_workbook

    cells = [c for row in load_workbook(io.BytesIO(sheet.data)).worksheets[0].iter_rows(values_only=True) for c in row]
    assert "合計：12,000円" in cells and 3000 in cells
    # The municipality's own office sees its statement; another municipality's does not.
    login_as("municipal_admin", A)
    assert client.get(f"/plans/{plan.id}/statements/{statement.id}").status_code == 200
    assert client.get(f"/plans/{plan.id}/fees/{mid}").status_code == 200
    login_as("municipal_admin", "131024")
    assert client.get(f"/plans/{plan.id}/statements/{statement.id}").status_code == 404
    assert client.get(f"/plans/{plan.id}/statements/{statement.id}.xlsx").status_code == 404
    assert client.get(f"/plans/{plan.id}/fees/{mid}").status_code == 404
    assert client.get(f"/plans/{plan.id}/fees").status_code == 403


def test_the_statement_as_pdf_embeds_its_font_and_carries_every_line(app, client, login_as, year, tmp_path):
    import shutil
    import subprocess

    from tests.conftest import require

    require(shutil.which("pdftotext") is not None and shutil.which("pdffonts") is not None,
            "poppler-utils (pdftotext, pdffonts) for the PDF checks")
    admin, plan, course, (came, *_rest) = year
    statement = fees.issue_statement(admin, plan, came.municipality_id)
    db.session.commit()
    login_as("municipal_admin", A)
    response = client.get(f"/plans/{plan.id}/statements/{statement.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    path = tmp_path / "statement.pdf"
    path.write_bytes(response.data)
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "研修負担金 請求明細（第1版）" in text and "合計：12,000円" in text
    everyone = [came, *_rest]
    charged = [everyone[i] for i in (0, 1, 2, 4)]
    assert all(p.employee_number in text for p in charged), text  # (names wrap inside their cells)
    assert "直前取消" in text and "欠席" in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    if app.config["LMS_CERTIFICATE_FONT"] and Path(app.config["LMS_CERTIFICATE_FONT"]).exists():
        assert "yes yes" in " ".join(fonts.split())  # embedded, as a subset
    login_as("municipal_admin", "131024")
    assert client.get(f"/plans/{plan.id}/statements/{statement.id}.pdf").status_code == 404


def test_an_exemption_sent_three_times_at_once_is_stored_once(year, app, live_server):
    """"Every course" of a municipality is a NULL course: no unique index can refuse the copies,
    so the check runs under the plan's lock."""
    from sqlalchemy import func, select

    from lms.planning.models import PlanFeeExemption
    from tests.at_once import post_at_once

    admin, plan, _course, (came, *_rest) = year
    plan_id = plan.id
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    db.session.commit()
    answers = post_at_once(f"{live_server.url}/plans/{plan_id}/fees/exemptions", cookie,
                           {"municipality_id": str(came.municipality_id), "course_id": "0", "percent": "50",
                            "reason": "被災"})
    assert sorted(status for status, _ in answers) == [302, 400, 400]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PlanFeeExemption)
                             .where(PlanFeeExemption.plan_id == plan_id)) == 1
