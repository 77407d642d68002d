"""A client generated from the OpenAPI document (openapi-python-client) lists completions
from a running server: the document is a contract an integrator can build on."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

from lms.common.timeutil import utcnow
from lms.completion.models import Completion
from tests.api.conftest import A
from tests.factories import make_course, make_staff

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


def test_a_generated_client_lists_completions(app, clients, db, token, live_server, tmp_path):
    member = make_staff(A)
    course = make_course()
    db.session.add(Completion(staff_member_id=member.id, course_id=course.id, municipality_id=member.municipality_id,
                              fiscal_year=2026, method="manual", completed_at=utcnow(), certificate_serial="T-GEN00001"))
    db.session.commit()
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.test_client().get("/api/v1/openapi.json").get_json()))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--config", str(config), "--meta", "none",
         "--output-path", str(tmp_path / "manabi_api")], capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module("manabi_api")
        completions = importlib.import_module("manabi_api.api.api_v1.completions")
        client = package.AuthenticatedClient(base_url=live_server.url, token=token("reader_a"))
        page = completions.sync(client=client, fiscal_year=2026)
        assert [(c.employee_number, c.certificate_serial) for c in page.items] == [(member.employee_number, "T-GEN00001")]
        assert page.items[0].verification_url.endswith("/certificates/verify/T-GEN00001")
        assert page.items[0].completed_at.tzinfo is not None  # parsed as a date-time, with its offset
        # Another municipality's client gets its own (none), through the same generated code.
        assert completions.sync(client=package.AuthenticatedClient(base_url=live_server.url,
                                                                   token=token("reader_b"))).items == []
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "manabi_api" or n.startswith("manabi_api.")]:
            del sys.modules[name]
