"""Why a Graph operation failed, stored as a code and put into words when shown.

The worker stores a code (and, apart, the technical detail for the platform admin); the page
words it in the reader's language, saying what happened and what to do. A refusal of our
own (a ``DomainError``) keeps its message id, translated when shown.
"""

from __future__ import annotations

from flask_babel import gettext as _

from lms.auth.entra import ProviderUnavailable
from lms.common.errors import DomainError
from lms.teams.graph import GraphAuthError, GraphError, GraphNotFound, GraphThrottled, GraphTransportError

UNAVAILABLE = "unavailable"  # Graph or the network did not answer (retried)
THROTTLED = "throttled"  # Graph asked us to slow down (retried)
FORBIDDEN = "forbidden"  # the app may not do this (permissions, application access policy)
NOT_FOUND = "not_found"  # the event or meeting is gone
REFUSED = "refused"  # one of our own rules: the detail is its (translatable) message
OTHER = "other"


def failure_code(exc: Exception) -> str:
    if isinstance(exc, DomainError):
        return REFUSED
    if isinstance(exc, GraphThrottled) or getattr(exc, "status", None) == 429:
        return THROTTLED
    if isinstance(exc, GraphAuthError) or getattr(exc, "status", None) in (401, 403):
        return FORBIDDEN
    if isinstance(exc, GraphNotFound):
        return NOT_FOUND
    if isinstance(exc, GraphTransportError) or (isinstance(exc, GraphError) and (exc.status or 0) >= 500):
        return UNAVAILABLE
    if isinstance(exc, ProviderUnavailable):  # the token could not be fetched
        return UNAVAILABLE
    return OTHER


def failure_text(code: str | None, detail: str = "") -> str:
    """What happened and what to do, in the reader's language ("" for no failure). ``code``
    is one of the codes above; anything else is a message id stored as it is (a refusal's,
    or a text stored before codes were)."""
    if not code:
        return ""
    texts = {
        UNAVAILABLE: _("Microsoft Graph に接続できませんでした。しばらくして自動で再試行します。続く場合はプラットフォーム管理者に連絡してください。"),
        THROTTLED: _("Microsoft Graph が混み合っています。しばらくして自動で再試行します。"),
        FORBIDDEN: _("Microsoft Graph がこの操作を許可しませんでした。プラットフォーム管理者に、アプリの権限とテナントのアプリケーション アクセス ポリシーの確認を依頼してください。"),
        NOT_FOUND: _("Teams 会議または Outlook の予定が見つかりませんでした（Outlook や Teams で削除された可能性があります）。"),
        OTHER: _("Microsoft Graph の処理に失敗しました。続く場合はプラットフォーム管理者に連絡してください。"),
    }
    if code in texts:
        return texts[code]
    message_id = detail if code == REFUSED else code
    return _(message_id)  # noqa: INT001 - a message id stored by the worker, translated when shown
