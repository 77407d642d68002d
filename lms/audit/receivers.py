"""The audit log's subscriptions: refusals announced by the access checks."""

from __future__ import annotations

from lms.audit.services import record_denied
from lms.common.signals import access_denied


@access_denied.connect
def _record_refusal(user, *, target_type: str, target_id: object, **_extra) -> None:
    record_denied(user, target_type, target_id)
