"""Names for the ids that audit details hold, registered by the area whose objects they are.

The audit log stores ids (``api_client_id: 2``); its readable form (``lms.admin.audit_text``)
shows names. An area the admin pages may not import (``lms.api``, beside them) registers how
its ids are named here, below both.
"""

from __future__ import annotations

from collections.abc import Callable

_NAMERS: dict[str, Callable[[int], str | None]] = {}


def register_detail_name(key: str, namer: Callable[[int], str | None]) -> None:
    """``namer(id)`` names the object a detail ``key`` holds the id of (None: it is gone)."""
    _NAMERS[key] = namer


def detail_name(key: str, value: object) -> str | None:
    """The name of the object a detail holds the id of, or None (no namer, not an id, gone)."""
    namer = _NAMERS.get(key)
    if namer is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    return namer(value)
