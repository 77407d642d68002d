"""How an enrollment and a completion look to an integrator: one shape for the API's answers
(lms.api.v1) and for the webhooks' event data (lms.api.webhooks)."""

from __future__ import annotations


def enrollment_item(e, employee_number: str, course_id: int, municipality_code: str) -> dict:
    return {"id": e.id, "session_id": e.session_id, "course_id": course_id, "employee_number": employee_number,
            "municipality_code": municipality_code, "status": e.status,
            "requested_at": e.requested_at, "confirmed_at": e.confirmed_at, "cancelled_at": e.cancelled_at,
            "updated_at": e.updated_at}


def completion_item(c, employee_number: str, municipality_code: str, verify_base: str) -> dict:
    return {"id": c.id, "course_id": c.course_id, "session_id": c.session_id, "employee_number": employee_number,
            "municipality_code": municipality_code, "fiscal_year": c.fiscal_year,
            "status": c.status, "method": c.method, "completed_at": c.completed_at, "revoked_at": c.revoked_at,
            "certificate_serial": c.certificate_serial,
            "verification_url": verify_base.replace("SERIAL", c.certificate_serial) if c.certificate_serial else None,
            "updated_at": c.updated_at}
