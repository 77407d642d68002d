"""schemathesis: calls generated from the OpenAPI document itself (valid and invalid
arguments and bodies), with real tokens, against the app in process. Every answer must be
one the document describes: no server error, a documented status and content type, a body
matching its schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from tests.api.conftest import A
from tests.factories import make_course, make_session, make_staff


def _world(db):
    from lms.common.timeutil import utcnow
    from lms.completion.models import Completion
    from lms.enrollment.models import CONFIRMED, Enrollment

    member = make_staff(A)
    session = make_session(make_course())
    db.session.add(Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                              status=CONFIRMED, confirmed_at=utcnow()))
    db.session.add(Completion(staff_member_id=member.id, course_id=session.course_id,
                              municipality_id=member.municipality_id, fiscal_year=2026, method="manual",
                              completed_at=utcnow(), certificate_serial="T-SCHEMA0001"))
    db.session.commit()


def test_every_operation_answers_as_documented(app, clients, db, token):
    # schemathesis's own pytest plugin (from_fixture) does not run on pytest 9: each
    # operation's strategy is driven by Hypothesis here instead.
    _world(db)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:
        for client in ("writer_a", "platform"):
            _check(operation, {"Authorization": f"Bearer {token(client)}"})


def _check(operation, headers: dict) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def call(case):
        # Not "schema-valid data is accepted": a cursor is opaque (any string fits its schema,
        # only a server-made one is accepted), and a roster entry that fits the schema may
        # still break a roster rule (a sign-in name in use: 422) — both documented answers.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    call()
