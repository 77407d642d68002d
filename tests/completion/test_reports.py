"""Dashboard numbers on a small known data set."""

from __future__ import annotations

from lms.common.signals import staff_member_moved
from lms.completion import reports
from tests.completion.oracle import fresh_dashboard


def test_course_summary_counts(known_data):
    d = known_data
    rows = {r.course_id: r for r in reports.course_summary(d["chiyoda"], d["fy"])}
    a, b = rows[d["a"].id], rows[d["b"].id]
    assert (a.enrolled, a.attended, a.completed_live, a.completed_archive, a.not_yet) == (3, 1, 1, 0, 2)
    assert a.rate == 33.3
    assert (b.enrolled, b.completed_archive, b.not_yet, b.rate) == (0, 1, 0, 100.0)
    everywhere = {r.course_id: r for r in reports.course_summary(None, d["fy"])}
    assert (everywhere[d["a"].id].enrolled, everywhere[d["a"].id].completed_live) == (4, 2)
    assert reports.course_summary(d["chiyoda"], d["fy"] - 1) == []


def test_breakdown_by_department_and_title(known_data):
    d = known_data
    deps = {g.name: (g.staff, g.enrolled, g.completed, g.rate) for g in
            reports.group_breakdown(d["chiyoda"], d["fy"], "department")}
    assert deps == {"総務課": (2, 2, 1, 50.0), "企画課": (2, 1, 1, 50.0)}
    titles = {g.name: (g.staff, g.completed) for g in reports.group_breakdown(d["chiyoda"], d["fy"], "job_title")}
    assert titles == {"主事": (3, 2), "主任": (1, 0)}
    only_a = {g.name: g.completed for g in
              reports.group_breakdown(d["chiyoda"], d["fy"], "department", course_id=d["a"].id)}
    assert only_a == {"総務課": 1, "企画課": 0}


def test_monthly_trend_has_twelve_months(known_data):
    d = known_data
    trend = reports.monthly_trend(d["chiyoda"], d["fy"])
    assert [m.month for m in trend][0] == f"{d['fy']}-04" and trend[-1].month == f"{d['fy'] + 1}-03"
    assert trend[0].completed >= 1  # s1 completed on 1 April (Tokyo)
    assert trend[-1].cumulative == 2


def test_mandatory_lists_include_staff_who_never_signed_in(known_data):
    d = known_data
    s1, s2, s3, s4, _s5 = d["staff"]
    statuses = {s.assignment.id: s for s in reports.assignment_statuses(d["chiyoda"], d["fy"])}
    a1, a2 = d["mandatory"]
    assert (statuses[a1.id].targets, statuses[a1.id].completed, statuses[a1.id].overdue) == (4, 1, True)
    assert (statuses[a2.id].targets, statuses[a2.id].completed, statuses[a2.id].overdue) == (1, 0, False)
    missing = reports.db.session.execute(reports.missing_staff_query(a1, d["chiyoda"])).all()
    assert {r.staff_member_id for r in missing} == {s2.id, s3.id, s4.id}
    never = [r for r in missing if r.staff_member_id == s4.id][0]
    assert never.user_id is None
    # 中央区 sees neither of 千代田区's assignments
    assert reports.assignment_statuses(d["chuo"], d["fy"]) == []


def test_comparison_per_municipality(known_data):
    d = known_data
    rows = {r.municipality_id: r for r in reports.comparison(d["fy"], [d["a"].id])}
    assert rows[d["chiyoda"]].cells[d["a"].id].rate == 33.3
    assert rows[d["chuo"]].cells[d["a"].id].rate == 100.0
    assert len(rows) == 63


def test_dashboard_page_shows_numbers_and_accessible_charts(known_data, client, login_as):
    login_as("municipal_admin", "131016")
    html = client.get("/completion/dashboard").get_data(as_text=True)
    assert "Teams 会議の基本" in html
    assert html.count('role="img"') == 3 and "<desc id=\"chart-course-desc\">" in html
    assert "<title id=\"chart-trend-title\">" in html
    assert "期限超過" in html
    assert "中央 太郎" not in html


def test_learner_history_shows_own_records_only(known_data, client, login_as):
    d = known_data
    login_as(user=d["learner"])
    html = client.get("/completion/history").get_data(as_text=True)
    assert "Teams 会議の基本" in html and "修了証（PDF）" in html
    assert "HYPERLINK" not in html  # s3's course, not mine


def test_transferred_staff_keep_their_records_where_they_were(known_data, db):
    """Enrollments and completions count for the municipality recorded on them; the 所属
    breakdown follows the current roster."""
    d = known_data
    s1 = d["staff"][0]
    s1.municipality_id = d["chuo"]
    db.session.flush()
    staff_member_moved.send(s1, old_municipality_id=d["chiyoda"], actor=None)  # as whoever moves them must
    db.session.commit()
    rows = {r.course_id: r for r in reports.course_summary(d["chiyoda"], d["fy"])}
    assert (rows[d["a"].id].enrolled, rows[d["a"].id].completed_live) == (3, 1)
    deps = {g.name: (g.staff, g.completed) for g in reports.group_breakdown(d["chiyoda"], d["fy"], "department")}
    assert deps["総務課"] == (1, 0)


def test_staff_who_left_count_where_they_took_part_so_no_rate_passes_100(known_data, db):
    """Someone who left (退職・転出) after enrolling or completing in the year still counts as
    staff of their 所属 and 職名 for that year (their completion is counted, so they must be
    in the denominator too); someone who left without taking part does not."""
    from lms.roster.models import LEFT

    d = known_data
    s1, _s2, s3, s4, _s5 = d["staff"]
    for member in (s1, s3, s4):  # s1 completed A, s3 completed B, s4 did nothing
        member.status = LEFT
    db.session.commit()
    deps = {g.name: (g.staff, g.enrolled, g.completed, g.rate) for g in
            reports.group_breakdown(d["chiyoda"], d["fy"], "department")}
    assert deps == {"総務課": (2, 2, 1, 50.0), "企画課": (1, 1, 1, 100.0)}
    titles = {g.name: (g.staff, g.completed) for g in reports.group_breakdown(d["chiyoda"], d["fy"], "job_title")}
    assert titles == {"主事": (2, 2), "主任": (1, 0)}
    only_a = {g.name: (g.staff, g.completed) for g in
              reports.group_breakdown(d["chiyoda"], d["fy"], "department", course_id=d["a"].id)}
    assert only_a == {"総務課": (2, 1), "企画課": (1, 0)}
    for scope in (d["chiyoda"], None):
        for course_id in (None, d["a"].id, d["b"].id):
            assert reports.dashboard(scope, d["fy"], course_id) == fresh_dashboard(scope, d["fy"], course_id)
            for group in (*reports.dashboard(scope, d["fy"], course_id).departments,
                          *reports.dashboard(scope, d["fy"], course_id).job_titles):
                assert group.completed <= group.staff and group.enrolled <= group.staff, group
    db.session.rollback()


def test_the_dashboard_equals_the_fresh_aggregate(known_data, db):
    """The dashboard (read from the summaries) shows what the base tables say, for every scope."""
    d = known_data
    for scope in (d["chiyoda"], d["chuo"], None):
        for course_id in (None, d["a"].id, d["b"].id):
            assert reports.dashboard(scope, d["fy"], course_id) == fresh_dashboard(scope, d["fy"], course_id)
    db.session.rollback()


def test_the_comparison_shows_each_municipalitys_dashboard_figures(known_data, db):
    d = known_data
    ids = [d["a"].id, d["b"].id]
    rows = {r.municipality_id: r for r in reports.comparison(d["fy"], ids)}
    for mid in (d["chiyoda"], d["chuo"]):
        courses = {r.course_id: r for r in fresh_dashboard(mid, d["fy"]).courses}
        assert {cid: (cell.completed, cell.not_yet) for cid, cell in rows[mid].cells.items()} == {
            cid: (courses[cid].completed, courses[cid].not_yet) for cid in ids if cid in courses}
    assert all(not r.cells for mid, r in rows.items() if mid not in (d["chiyoda"], d["chuo"]))
    db.session.rollback()
