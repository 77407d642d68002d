"""Domain events that become webhook events (queued in the sender's transaction)."""

from __future__ import annotations

from sqlalchemy import select

from lms.api.representations import completion_item, enrollment_item
from lms.api.webhooks.services import publish, read_endpoints_early
from lms.common.signals import completion_changed, enrollment_arriving, enrollment_status_changed
from lms.completion.certificates import verification_base
from lms.completion.models import COMPLETED, REVOKED
from lms.enrollment.models import CANCELLED, CONFIRMED, REJECTED, WAITLISTED
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember

DECIDED = (CONFIRMED, WAITLISTED, REJECTED)


def _who(staff_member_id: int, municipality_id: int) -> tuple[str, str]:
    """The staff member's 職員番号 and the municipality's code."""
    number = db.session.scalar(select(StaffMember.employee_number).where(StaffMember.id == staff_member_id))
    code = db.session.scalar(select(Municipality.code).where(Municipality.id == municipality_id))
    return number or "", code or ""


def _event_of_enrollment(old_status: str | None, new_status: str, notice: str | None) -> str | None:
    if notice == "promoted":
        return "waitlist.promoted"
    if new_status == CANCELLED:
        return "enrollment.cancelled"
    if new_status in DECIDED:
        return "enrollment.decided"
    return None  # waiting for approval: nothing decided yet


@enrollment_arriving.connect
def _endpoints_before_the_lock(member, municipality_id=None, **_):
    """The enrollment's event will be published under its session's lock: read its endpoints now."""
    read_endpoints_early(municipality_id)


@enrollment_status_changed.connect
def _enrollment_event(enrollment, old_status=None, new_status=None, notice=None, **_):
    event_type = _event_of_enrollment(old_status, new_status or enrollment.status, notice)
    if event_type is None:
        return

    def data() -> dict:
        number, code = _who(enrollment.staff_member_id, enrollment.municipality_id)
        return {**enrollment_item(enrollment, number, enrollment.session.course_id, code),
                "previous_status": old_status}

    publish(event_type, enrollment.municipality_id, data)


@completion_changed.connect
def _completion_event(completion, old_status=None, new_status=None, **_):
    if new_status == COMPLETED:
        event_type = "completion.granted"
    elif new_status == REVOKED and old_status == COMPLETED:
        event_type = "completion.revoked"
    else:
        return

    def data() -> dict:
        number, code = _who(completion.staff_member_id, completion.municipality_id)
        return completion_item(completion, number, code, verification_base())

    publish(event_type, completion.municipality_id, data)
