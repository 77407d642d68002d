"""PUT /staff/{職員番号} is idempotent under concurrency too (a client's retries in flight)."""

from __future__ import annotations


def test_the_same_put_sent_three_times_at_once_adds_one_entry_and_answers_each(token, clients, live_server):
    """An HR system retries a PUT that timed out while the first is still running: one entry,
    one 201 and two 200s ("unchanged"), never a 409 or a 500; a transfer sent three times is
    recorded once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from sqlalchemy import func, select

    from lms.extensions import db
    from lms.roster.models import StaffHistory, StaffMember

    headers = {"Authorization": f"Bearer {token('writer_a')}"}

    def three_at_once(body: dict) -> list[int]:
        start = threading.Barrier(3)

        def put(_n):
            start.wait(10)
            return requests.put(f"{live_server.url}/api/v1/staff/R0001", json=body, headers=headers,
                                timeout=60).status_code

        with ThreadPoolExecutor(3) as pool:
            return sorted(pool.map(put, range(3)))

    assert three_at_once({"full_name": "再送 太郎", "department": "総務課"}) == [200, 200, 201]
    assert three_at_once({"full_name": "再送 太郎", "department": "財政課"}) == [200, 200, 200]
    db.session.rollback()
    member_id = db.session.scalars(select(StaffMember.id).where(StaffMember.employee_number == "R0001")).one()
    assert db.session.scalar(select(func.count()).select_from(StaffHistory).where(
        StaffHistory.staff_member_id == member_id, StaffHistory.kind == "transfer")) == 1
