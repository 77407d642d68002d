from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from lms.municipalities.models import TenantMapping
from lms.roster.models import ACTIVE, StaffHistory, StaffMember
from lms.roster.services import staff_member_for
from lms.teams.roster_sync import sync_roster_from_graph
from tests import factories


class FakeGraph:
    def __init__(self, users=None, error=None):
        self.users = users or []
        self.error = error
        self.calls = []

    def get_all(self, path, params=None):
        self.calls.append((path, params))
        if self.error:
            raise self.error
        return list(self.users)


def _user(upn, name, number="", department="", title="", mail="", **kw):
    return {"id": kw.pop("id", f"oid-{upn}"), "userPrincipalName": upn, "displayName": name, "employeeId": number,
            "department": department, "jobTitle": title, "mail": mail, "userType": kw.pop("userType", "Member"), **kw}


@pytest.fixture
def admin(make_user):
    return make_user("municipal_admin", "131016", with_staff=False)


def _members(db, municipality_id):
    return {m.employee_number: m for m in db.session.scalars(select(StaffMember).where(StaffMember.municipality_id == municipality_id))}


def test_sync_adds_updates_and_records_transfers(app, db, admin, make_staff):
    chiyoda = factories.municipality("131016")
    existing = make_staff("131016", employee_number="3001", full_name="旧姓 花子", department="総務課", job_title="主事",
                          sign_in_name="hanako@chiyoda.example.lg.jp")
    client = FakeGraph([
        _user("Hanako@chiyoda.example.lg.jp", "新姓 花子", "3001", "財政課", "主任", "hanako@chiyoda.example.lg.jp"),
        _user("taro@chiyoda.example.lg.jp", "山田 太郎", "3002", "企画課", "主事"),
        _user("noid@chiyoda.example.lg.jp", "番号 なし"),
        _user("guest_example.com#EXT#@chiyoda.onmicrosoft.com", "ゲスト", "9", userType="Guest"),
    ])
    report = sync_roster_from_graph(chiyoda.id, client, admin, effective_on=date(2027, 4, 1))
    db.session.commit()
    assert client.calls[0][0] == "/users"
    assert "employeeId" in client.calls[0][1]["$select"]
    assert (report.added, report.transferred) == (1, 1)
    assert len(report.skipped) == 1 and "noid@" in report.skipped[0]
    members = _members(db, chiyoda.id)
    db.session.refresh(existing)
    assert existing.full_name == "新姓 花子" and existing.department == "財政課" and existing.job_title == "主任"
    assert [(h.kind, h.from_department, h.to_department) for h in existing.history] == [("transfer", "総務課", "財政課")]
    assert members["3002"].sign_in_name == "taro@chiyoda.example.lg.jp" and members["3002"].source == "graph"
    assert len(members) == 2
    # Again: nothing changes.
    report = sync_roster_from_graph(chiyoda.id, client, admin)
    db.session.commit()
    assert (report.added, report.updated, report.transferred, report.unchanged) == (0, 0, 0, 2)


def test_sync_records_no_transfer_for_a_member_who_has_left(app, db, admin, make_staff):
    from lms.roster.models import LEFT

    chiyoda = factories.municipality("131016")
    gone = make_staff("131016", employee_number="3101", full_name="転出 済子", department="総務課", job_title="主事",
                      sign_in_name="sumiko@chiyoda.example.lg.jp")
    gone.status, gone.left_on = LEFT, date(2026, 3, 31)
    db.session.commit()
    report = sync_roster_from_graph(chiyoda.id, FakeGraph([
        _user("sumiko@chiyoda.example.lg.jp", "転出 済子", "3101", "財政課", "主任")]), admin)
    db.session.commit()
    db.session.refresh(gone)
    assert (gone.status, gone.department, gone.job_title) == (LEFT, "総務課", "主事")
    assert gone.history == [] and report.transferred == 0
    assert report.skipped == ["sumiko@chiyoda.example.lg.jp：退職・転出済みの職員のため、所属・職名は更新しませんでした。"]


def test_failed_page_aborts_and_changes_nothing(app, db, admin, make_staff):
    chiyoda = factories.municipality("131016")
    member = make_staff("131016", department="総務課")
    with pytest.raises(RuntimeError):
        sync_roster_from_graph(chiyoda.id, FakeGraph(error=RuntimeError("page 2: 503")), admin)
    db.session.rollback()
    db.session.refresh(member)
    assert member.status == ACTIVE and member.department == "総務課"
    assert db.session.scalar(select(func.count()).select_from(StaffHistory)) == 0


def test_people_missing_from_the_result_are_never_marked_left(app, db, admin, make_staff):
    chiyoda = factories.municipality("131016")
    members = [make_staff("131016") for _ in range(3)]
    sync_roster_from_graph(chiyoda.id, FakeGraph([]), admin)
    db.session.commit()
    for member in members:
        db.session.refresh(member)
        assert member.status == ACTIVE


def test_shared_tenant_only_brings_the_municipalitys_domain(app, db, admin):
    chiyoda = factories.municipality("131016")
    db.session.add(TenantMapping(tenant_id="shared-tenant", mail_domain="chiyoda.example.lg.jp", municipality=chiyoda))
    db.session.commit()
    client = FakeGraph([
        _user("a@chiyoda.example.lg.jp", "千代田 職員", "4001"),
        _user("b@chuo.example.lg.jp", "中央 職員", "4002"),
    ])
    report = sync_roster_from_graph(chiyoda.id, client, admin)
    db.session.commit()
    assert report.added == 1
    assert set(_members(db, chiyoda.id)) == {"4001"}


def test_first_sign_in_links_the_roster_entry_of_the_same_municipality(app, db, make_user, make_staff):
    entry = make_staff("131016", employee_number="5001", sign_in_name="jiro@chiyoda.example.lg.jp")
    other = make_staff("131024", employee_number="5001", sign_in_name="jiro@chiyoda.example.lg.jp")
    user = make_user("learner", "131016", email="Jiro@chiyoda.example.lg.jp", with_staff=False)
    linked = staff_member_for(user)
    db.session.commit()
    assert linked.id == entry.id
    assert (linked.user_id, linked.entra_object_id, linked.entra_tenant_id) == (user.id, user.object_id, user.tenant_id)
    db.session.refresh(other)
    assert other.user_id is None
    assert staff_member_for(user).id == entry.id  # stable


def test_sign_in_never_claims_an_entry_of_another_municipality_or_identity(app, db, make_user, make_staff):
    make_staff("131024", employee_number="6001", sign_in_name="saburo@example.lg.jp")
    user = make_user("learner", "131016", email="saburo@example.lg.jp", with_staff=False)
    assert staff_member_for(user, create=False) is None
    created = staff_member_for(user)
    assert created.municipality_id == user.municipality_id and created.source == "sign_in"
    # An entry already tied to another Entra identity is not taken over.
    make_staff("131016", employee_number="6002", sign_in_name="shiro@example.lg.jp",
               entra_object_id="someone-else", entra_tenant_id=user.tenant_id)
    other_user = make_user("learner", "131016", email="shiro@example.lg.jp", with_staff=False)
    assert staff_member_for(other_user).employee_number != "6002"
