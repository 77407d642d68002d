"""Roster sync through the real GraphClient against a local fake of Graph's /users (paged)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from lms.common.timeutil import utcnow
from lms.municipalities.models import TenantMapping
from lms.roster.models import ACTIVE, StaffMember
from tests import factories


class FakeGraph(BaseHTTPRequestHandler):
    fail_page_two = False
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        FakeGraph.requests.append((self.path, self.headers.get("Authorization")))
        base = f"http://127.0.0.1:{self.server.server_port}/v1.0"
        if "page=2" in self.path:
            if FakeGraph.fail_page_two:
                self._send(503, {"error": {"code": "serviceNotAvailable", "message": "try later"}})
                return
            users = [{"id": "oid-2", "userPrincipalName": "b@chiyoda.example.lg.jp", "displayName": "二頁 花子",
                      "employeeId": "H002", "department": "企画課", "jobTitle": "主任", "mail": "", "userType": "Member"}]
            self._send(200, {"value": users})
            return
        users = [{"id": "oid-1", "userPrincipalName": "a@chiyoda.example.lg.jp", "displayName": "一頁 太郎",
                  "employeeId": "H001", "department": "総務課", "jobTitle": "主事", "mail": "", "userType": "Member"}]
        self._send(200, {"value": users, "@odata.nextLink": f"{base}/users?page=2"})

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def graph_server():
    FakeGraph.fail_page_two = False
    FakeGraph.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGraph)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1.0"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def app_config(app_config, graph_server):
    return {**app_config, "GRAPH_BASE_URL": graph_server, "GRAPH_MAX_ATTEMPTS": 1}


@pytest.fixture
def consented(app, db):
    app.extensions["graph_token_provider"] = lambda: "test-token"
    chiyoda = factories.municipality("131016")
    db.session.add(TenantMapping(tenant_id=factories.tenant_for("131016"), mail_domain="chiyoda.example.lg.jp",
                                 municipality=chiyoda, consented_at=utcnow()))
    db.session.commit()
    return chiyoda


def _numbers(db, municipality_id):
    db.session.rollback()
    return set(db.session.scalars(select(StaffMember.employee_number).where(StaffMember.municipality_id == municipality_id)))


def test_sync_reads_every_page(app, db, client, login_as, consented):
    login_as("municipal_admin", "131016", with_staff=False)
    assert client.post("/roster/sync").status_code == 302
    assert _numbers(db, consented.id) == {"H001", "H002"}
    assert FakeGraph.requests[0][1] == "Bearer test-token"
    assert "%24select=" in FakeGraph.requests[0][0] or "$select=" in FakeGraph.requests[0][0]


def test_a_failed_page_changes_nothing(app, db, client, login_as, consented, make_staff):
    keep = make_staff("131016", employee_number="K001", department="総務課")
    FakeGraph.fail_page_two = True
    login_as("municipal_admin", "131016", with_staff=False)
    assert client.post("/roster/sync").status_code == 302
    assert _numbers(db, consented.id) == {"K001"}
    db.session.refresh(keep)
    assert keep.status == ACTIVE
    page = client.get("/roster").get_data(as_text=True)
    assert "名簿は変更していません" in page
    assert db.session.scalar(select(func.count()).select_from(StaffMember)) == 1


def test_no_consent_no_sync(app, db, client, login_as):
    app.extensions["graph_token_provider"] = lambda: "test-token"
    login_as("municipal_admin", "131024", with_staff=False)
    client.post("/roster/sync")
    assert "管理者の同意がまだない" in client.get("/roster").get_data(as_text=True)
    assert FakeGraph.requests == []
