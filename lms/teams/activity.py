"""Notices in the person's Teams activity feed (``teamwork/sendActivityNotification``).

The outbox (lms.notifications) offers each notice to ``send_activity_notice`` before its mail
(lms.notifications.channels). Here a notice becomes one of the activity types the app's
manifest declares (``app_package.ACTIVITY_TYPES``), with the template's parameters in the
person's language and a deep link into the personal tab, and goes to the person's feed:

1. The person must have an Entra identity in a tenant where Manabi has admin consent; the
   Graph client carries an app-only token of that tenant (``client_for_tenant``).
2. The app must be installed for the person: Manabi installs it itself
   (``POST /users/{id}/teamwork/installedApps``, the app found in the tenant's catalogue by
   its manifest id) where the tenant allows it, and remembers the outcome per person
   (``TeamsAppInstallation``) so that later notices cost one call. A refusal is asked again
   after ``REFUSAL_RECHECK``.
3. The notice carries ``chainId`` = the outbox row's id: if a worker dies after Graph took the
   notice but before the outbox recorded it, the repeat replaces the notice in the feed
   instead of adding a second one.

Where the person cannot be reached this way, ``ChannelUnavailable`` says why and the mail
goes; throttling longer than the client's waiting budget is ``ChannelDeferred`` with Graph's
Retry-After, and the outbox row waits that long.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from lms.activities.services import window
from lms.auth.models import User
from lms.common.links import app_url
from lms.common.timeutil import utcnow
from lms.enrollment.models import SUPERVISOR_STEP, Enrollment
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.notifications.activity_reminders import ACTIVITY_DUE as REMINDER_KIND
from lms.notifications.activity_reminders import reminded_activity
from lms.notifications.channels import ChannelDeferred, ChannelUnavailable
from lms.notifications.compose import format_when
from lms.notifications.models import OutboxMail
from lms.notifications.services import approval_step_of
from lms.teams import app_identity
from lms.teams.app_package import (
    ACTIVITY_DUE,
    APPROVAL_REQUESTED,
    ENROLLMENT_DECIDED,
    SESSION_REMINDER,
    WAITLIST_PROMOTED,
)
from lms.teams.graph import (
    GraphAuthError,
    GraphClient,
    GraphConflict,
    GraphError,
    GraphNotFound,
    graph_configured,
    odata_quote,
    user_path,
)
from lms.teams.models import INSTALLED, NOT_IN_CATALOGUE, REFUSED, TeamsAppInstallation
from lms.teams.roster_sync import client_for_tenant

log = logging.getLogger(__name__)

# The outbox's kinds of notice and the activity type each becomes (others go by mail only:
# an application received, a session's details changed, the offices' planning notices).
ACTIVITY_OF_KIND = {
    "approval": APPROVAL_REQUESTED,
    "confirmed": ENROLLMENT_DECIDED,
    "waitlisted": ENROLLMENT_DECIDED,
    "rejected": ENROLLMENT_DECIDED,
    "returned": ENROLLMENT_DECIDED,
    "cancelled": ENROLLMENT_DECIDED,
    "promoted": WAITLIST_PROMOTED,
    "reminder": SESSION_REMINDER,
    REMINDER_KIND: ACTIVITY_DUE,
}
REFUSAL_RECHECK = timedelta(days=1)
# How long a notice waits for a throttled or unavailable Teams before its mail goes instead.
PATIENCE = timedelta(hours=1)
PREVIEW_LENGTH = 150  # what Teams shows of previewText


def notices_enabled() -> bool:
    """Teams notices are offered when Graph is set up and LMS_TEAMS_NOTICES is on."""
    return bool(current_app.config.get("LMS_TEAMS_NOTICES")) and graph_configured()


def _decision(kind: str) -> str:
    return {
        "confirmed": _("受講確定"),
        "waitlisted": _("キャンセル待ち"),
        "rejected": _("承認されませんでした"),
        "returned": _("差し戻し（修正して申し込み直してください）"),
        "cancelled": _("取消"),
    }.get(kind, "")


def _topic_and_parameters(mail: OutboxMail, activity_type: str) -> tuple[str, list[dict], str, str]:
    """(topic text, templateParameters, tab entity, sub page) of the notice."""
    enrollment = db.session.get(Enrollment, mail.enrollment_id) if mail.enrollment_id else None
    if enrollment is None:
        raise ChannelUnavailable("the notice's enrollment no longer exists")
    session = enrollment.session
    course = session.course.title
    if activity_type == APPROVAL_REQUESTED:
        params = {"learner": enrollment.staff_member.full_name, "course": course}
        sub_page = "supervisor-approvals" if approval_step_of(mail) == SUPERVISOR_STEP else "approvals"
        return course, _pairs(params), "mypage", sub_page
    if activity_type == ENROLLMENT_DECIDED:
        return course, _pairs({"course": course, "decision": _decision(mail.kind)}), "mypage", ""
    if activity_type == WAITLIST_PROMOTED:
        return course, _pairs({"course": course}), "mypage", ""
    if activity_type == ACTIVITY_DUE:
        activity = reminded_activity(mail)
        if activity is None:
            raise ChannelUnavailable("the reminder's activity no longer exists")
        _opens, closes = window(activity, session)
        return course, _pairs({"course": course, "activity": activity.title, "dueAt": format_when(closes)}), "mypage", ""
    return course, _pairs({"course": course, "startsAt": format_when(session.starts_at)}), "mypage", ""


def _pairs(values: dict[str, str]) -> list[dict]:
    return [{"name": name, "value": value} for name, value in values.items()]


def activity_body(mail: OutboxMail, user: User) -> dict:
    """The sendActivityNotification body of an outbox row, in the person's language."""
    activity_type = ACTIVITY_OF_KIND[mail.kind]
    with force_locale(user.locale or "ja"):
        topic, parameters, entity, sub_page = _topic_and_parameters(mail, activity_type)
        web_url = app_url(app_identity.SUB_PAGES.get(sub_page) or app_identity.tab(entity).endpoint, "/")
        link = app_identity.deep_link(entity, web_url, sub_page=sub_page, label=topic[:60])
    preview = (mail.subject or topic).strip()
    return {
        "topic": {"source": "text", "value": topic[:200], "webUrl": link},
        "activityType": activity_type,
        "chainId": mail.id,
        "previewText": {"content": preview[:PREVIEW_LENGTH]},
        "templateParameters": parameters,
    }


def _consented(tenant_id: str) -> bool:
    return db.session.scalar(
        select(TenantMapping.id).where(TenantMapping.tenant_id == tenant_id, TenantMapping.consented_at.is_not(None))
        .limit(1)
    ) is not None


def _installation(user: User) -> TeamsAppInstallation:
    row = db.session.scalar(select(TeamsAppInstallation).where(TeamsAppInstallation.user_id == user.id))
    if row is None:
        row = TeamsAppInstallation(user_id=user.id, tenant_id=user.tenant_id, state="")
        db.session.add(row)
    return row


def _catalogue_id(client: GraphClient) -> str | None:
    """The app's id in the tenant's app catalogue (its manifest id is the ``externalId``)."""
    apps = client.get_all("/appCatalogs/teamsApps",
                          {"$filter": f"externalId eq {odata_quote(app_identity.app_id())}"})
    return str(apps[0]["id"]) if apps else None


def ensure_installed(client: GraphClient, user: User) -> TeamsAppInstallation:
    """The app installed in the person's personal scope (installed now if needed and allowed).
    The caller commits the remembered outcome. Raises ChannelUnavailable when it cannot be."""
    row = _installation(user)
    now = utcnow()
    if row.state == INSTALLED:
        return row
    if row.state in (REFUSED, NOT_IN_CATALOGUE) and row.checked_at and now - row.checked_at < REFUSAL_RECHECK:
        raise ChannelUnavailable(row.last_error or "the Teams app cannot be installed for this person")
    base = f"{user_path(user.object_id)}/teamwork/installedApps"
    installed = client.get_all(base, {"$expand": "teamsApp",
                                      "$filter": f"teamsApp/externalId eq {odata_quote(app_identity.app_id())}"})
    if not installed:
        catalogue_id = _catalogue_id(client)
        if catalogue_id is None:
            row.state, row.checked_at = NOT_IN_CATALOGUE, now
            row.last_error = "the Manabi app is not in the tenant's app catalogue (upload the app package)"
            raise ChannelUnavailable(row.last_error)
        try:
            # Installing is a POST Graph does once: a repeat answers 409 (already installed).
            client.post(base, {"teamsApp@odata.bind": f"{client.base_url}/appCatalogs/teamsApps/{catalogue_id}"})
        except GraphConflict:
            pass
        except (GraphAuthError, GraphNotFound) as exc:
            row.state, row.checked_at = REFUSED, now
            row.last_error = f"the tenant refused to install the app: {exc}"[:300]
            raise ChannelUnavailable(row.last_error) from exc
        installed = client.get_all(base, {"$expand": "teamsApp",
                                          "$filter": f"teamsApp/externalId eq {odata_quote(app_identity.app_id())}"})
    row.state, row.checked_at, row.last_error = INSTALLED, now, ""
    if installed:
        row.installation_id = str(installed[0].get("id") or "")[:200]
        row.teams_app_id = str((installed[0].get("teamsApp") or {}).get("id") or "")[:200]
    return row


def send_activity_notice(mail: OutboxMail, user: User | None) -> str | None:
    """The outbox's channel: send ``mail``'s notice to ``user``'s Teams activity feed.

    None when Teams does not carry this kind of notice; raises ChannelUnavailable (the mail
    goes) or ChannelDeferred (try the row again after Graph's Retry-After). Commits the
    remembered installation outcome."""
    if mail.kind not in ACTIVITY_OF_KIND:
        return None
    if user is None or not user.object_id or not user.tenant_id:
        raise ChannelUnavailable("the person has not signed in to Manabi with Microsoft Entra ID")
    if not _consented(user.tenant_id):
        raise ChannelUnavailable("Manabi has no admin consent in the person's tenant")
    client = client_for_tenant(user.tenant_id)
    try:
        try:
            installation = ensure_installed(client, user)
        finally:
            db.session.commit()  # what was learnt about the installation, whatever follows
        body = activity_body(mail, user)
        if installation.teams_app_id:
            body["teamsAppId"] = installation.teams_app_id
        try:
            client.post(f"{user_path(user.object_id)}/teamwork/sendActivityNotification", body)
        except (GraphAuthError, GraphNotFound) as exc:
            # Uninstalled since, or blocked by policy: ask again next time, mail this one.
            installation.state, installation.checked_at = "", utcnow()
            installation.last_error = f"the activity notice was refused: {exc}"[:300]
            db.session.commit()
            raise ChannelUnavailable(installation.last_error) from exc
    except GraphError as exc:
        if not exc.retryable:
            raise ChannelUnavailable(str(exc)) from exc
        if mail.created_at is not None and utcnow() - mail.created_at > PATIENCE:
            raise ChannelUnavailable(f"Teams has not taken the notice for {PATIENCE}: {exc}") from exc
        # Throttled or unavailable: the row waits as long as Graph asked (a repeat replaces
        # the notice, chainId, so a POST that half-happened is safe to send again).
        raise ChannelDeferred(str(exc), exc.retry_after if exc.retry_after is not None else 60.0) from exc
    return f"teams:{user.object_id}"
