"""Viva Learning: Manabi's courses, 指名研修 and completions in each municipality's tenant.

Manabi is a learning provider registered in the tenant (its ``registrationId`` comes from the
tenant's admin: the registration itself needs a delegated token, see docs/viva-learning.md).
With an app-only token of that tenant (``roster_sync.client_for_tenant``) it

- upserts each published course open to the tenant's municipalities as ``learningContent``
  (``PATCH …/learningContents(externalId='manabi-course-<id>')``); a course withdrawn (back to
  draft, cancelled, no longer open to the tenant) is sent once more with ``isActive: false``;
- keeps one ``learningCourseActivity`` per learner, course and fiscal year: a
  ``learningAssignment`` (required, with assigned and due dates and the assigner) while a
  mandatory assignment covers the learner, else a ``learningSelfInitiatedCourse`` once the
  learner holds a confirmed place or a completion; its status follows the completion.

Changes are queued as GraphOperation rows (kind ``viva_sync``, one per tenant and
transaction) by the receivers, in the transaction of the change, and run after commit; the
operation machinery (lms.teams.operations) retries throttled runs no earlier than Graph's
Retry-After and runs again what a killed worker left. Each run works from the current state
and compares the hash of what it would send with the hash last sent (the mirror tables): a
change is sent once, a run repeated sends nothing. A creation is announced in the mirror
before its POST, so that a run after a crash looks the activity up by its external id
instead of creating it twice. The nightly reconciliation (kind ``viva_reconcile``) reads back
what Graph holds and repairs any drift.

No transaction stays open during a Graph call (SQLite: a reading transaction could not write
after another writer's commit): each item is read, sent, then recorded in a short write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from lms.audit.services import record_action
from lms.auth.models import User
from lms.common.after_commit import pending_keys
from lms.common.database import begin_write
from lms.common.errors import InvalidInput, NotFound
from lms.common.i18n import brand_name
from lms.common.ids import parse_id
from lms.common.timeutil import as_utc, fiscal_year_bounds, fiscal_year_of, today_tokyo, utcnow
from lms.completion.models import COMPLETED, Completion, MandatoryAssignment
from lms.completion.services import assignment_members_filter
from lms.courses.models import PUBLISHED, SCHEDULED, Course, CourseEligibility, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality, TenantMapping
from lms.roster.models import StaffMember
from lms.teams import operations as ops
from lms.teams.graph import GraphClient, GraphError, GraphNotFound, graph_configured, odata_quote
from lms.teams.models import GraphOperation
from lms.teams.viva.models import ASSIGNMENT, SELF_INITIATED, VivaActivity, VivaContent, VivaTenant

log = logging.getLogger(__name__)

# GraphOperation.kind
VIVA_SYNC = "viva_sync"
VIVA_RECONCILE = "viva_reconcile"
KINDS = (VIVA_SYNC, VIVA_RECONCILE)

LANGUAGE_TAG = "ja-jp"
CONTENT_PREFIX = "manabi-course-"
TOKYO_WINDOWS_TZ = "Tokyo Standard Time"
# External ids of course activities: a GUID per (tenant, learner, course, fiscal year, kind).
ACTIVITY_NAMESPACE = uuid.UUID("5b0f7c3e-2f4d-4d7a-9a51-6a1d7c0e9b42")

STATUS_OK = "ok"
STATUS_FAILED = "failed"

# What one item's sync did (counted in the operation's details).
SENT, UNCHANGED, SKIPPED, DELETED, BUSY = "sent", "unchanged", "skipped", "deleted", "busy"


class VivaBusy(Exception):
    """Another run is creating one of the activities: this run is retried later."""


# ---------------------------------------------------------------- tenants


def provider_path(registration_id: str) -> str:
    return f"/employeeExperience/learningProviders/{quote(registration_id, safe='')}"


def enabled_tenant_ids() -> list[str]:
    if not graph_configured():
        return []
    return list(db.session.scalars(
        select(VivaTenant.tenant_id).where(VivaTenant.enabled.is_(True), VivaTenant.registration_id != "")
        .order_by(VivaTenant.tenant_id)))


def tenant_row(tenant_id: str) -> VivaTenant | None:
    return db.session.scalar(select(VivaTenant).where(VivaTenant.tenant_id == tenant_id))


def active_tenant(tenant_id: str) -> VivaTenant | None:
    row = tenant_row(tenant_id)
    return row if row is not None and row.enabled and row.registration_id else None


def municipality_ids_of(tenant_id: str) -> set[int]:
    return set(db.session.scalars(select(TenantMapping.municipality_id).where(TenantMapping.tenant_id == tenant_id)))


@dataclass
class TenantView:
    """One mapped tenant on the Viva Learning page."""

    mapping_id: int  # the first mapping row of the tenant (the page's address)
    tenant_id: str
    municipalities: list[str]
    consented: bool
    row: VivaTenant | None
    contents: int = 0
    activities: int = 0


def mapped_tenants() -> list[TenantView]:
    rows = db.session.execute(
        select(TenantMapping.id, TenantMapping.tenant_id, TenantMapping.consented_at, Municipality.name)
        .join(Municipality, Municipality.id == TenantMapping.municipality_id)
        .order_by(Municipality.sort_order, Municipality.code, TenantMapping.id)
    ).all()
    views: dict[str, TenantView] = {}
    for mapping_id, tenant_id, consented_at, name in rows:
        view = views.get(tenant_id)
        if view is None:
            view = views[tenant_id] = TenantView(mapping_id, tenant_id, [], False, None)
        if name not in view.municipalities:
            view.municipalities.append(name)
        view.consented = view.consented or consented_at is not None
    for row in db.session.scalars(select(VivaTenant).where(VivaTenant.tenant_id.in_(list(views)))):
        views[row.tenant_id].row = row
    contents = dict(db.session.execute(select(VivaContent.tenant_id, func.count()).group_by(VivaContent.tenant_id)).all())
    activities = dict(db.session.execute(
        select(VivaActivity.tenant_id, func.count()).group_by(VivaActivity.tenant_id)).all())
    for view in views.values():
        view.contents = contents.get(view.tenant_id, 0)
        view.activities = activities.get(view.tenant_id, 0)
    return list(views.values())


def tenant_of_mapping(mapping_id: int) -> TenantView:
    mapping = db.session.get(TenantMapping, mapping_id)
    if mapping is None:
        raise NotFound(_("テナントが見つかりません。"))
    return next(v for v in mapped_tenants() if v.tenant_id == mapping.tenant_id)


def tenant_operations(tenant_id: str, limit: int = 20) -> list[GraphOperation]:
    """The latest Viva Learning runs of a tenant (newest first)."""
    recent = db.session.scalars(
        select(GraphOperation).where(GraphOperation.kind.in_(KINDS)).order_by(GraphOperation.id.desc()).limit(500))
    return [op for op in recent if (op.details or {}).get("tenant_id") == tenant_id][:limit]


def save_tenant(actor, tenant_id: str, *, registration_id: str, enabled: bool) -> VivaTenant:
    """The platform admin's settings of a tenant: the provider's registration id and the switch.
    Switching on (or changing the registration) queues a full reconciliation: the first load."""
    registration_id = (registration_id or "").strip()
    if enabled and not registration_id:
        raise InvalidInput(_("連携を有効にするには、学習プロバイダーの登録 ID を入力してください。"),
                           field="registration_id")
    if registration_id and (len(registration_id) > 100 or any(c.isspace() or c in "/?#'\"" for c in registration_id)):
        raise InvalidInput(_("学習プロバイダーの登録 ID の形式が正しくありません。"), field="registration_id")
    if not municipality_ids_of(tenant_id):
        raise NotFound(_("テナントが見つかりません。"))
    row = tenant_row(tenant_id)
    if row is None:
        row = VivaTenant(tenant_id=tenant_id)
        db.session.add(row)
    before = (row.enabled, row.registration_id)
    row.registration_id = registration_id
    row.enabled = bool(enabled)
    row.updated_by_id = getattr(actor, "id", None)
    db.session.flush()
    if before != (row.enabled, row.registration_id):
        record_action(actor, "teams.viva_settings", "viva_tenant", row.id, None, tenant_id=tenant_id,
                      enabled=row.enabled, registration_id=registration_id)
        if row.enabled and graph_configured():
            queue_reconcile(tenant_id)
    return row


def queue_reconcile(tenant_id: str) -> GraphOperation:
    return ops.queue_operation(None, VIVA_RECONCILE, tenant_id=tenant_id)


def reconcile_now(actor, tenant_id: str) -> GraphOperation:
    if active_tenant(tenant_id) is None:
        raise InvalidInput(_("このテナントの Viva Learning 連携は有効になっていません。"))
    op = queue_reconcile(tenant_id)
    row = tenant_row(tenant_id)
    record_action(actor, "teams.viva_reconcile", "viva_tenant", row.id if row else None, None,
                  tenant_id=tenant_id, operation_id=op.id)
    return op


# ---------------------------------------------------------------- learners


def _tenant_expr():
    return func.coalesce(func.nullif(StaffMember.entra_tenant_id, ""), User.tenant_id)


def _object_expr():
    return func.coalesce(func.nullif(StaffMember.entra_object_id, ""), User.object_id)


def learner_identity(staff_member_id: int) -> tuple[str, str] | None:
    """The learner's (tenant id, Entra object id): the roster's, else their user account's."""
    row = db.session.execute(
        select(_tenant_expr(), _object_expr()).select_from(StaffMember)
        .outerjoin(User, User.id == StaffMember.user_id).where(StaffMember.id == staff_member_id)
    ).first()
    if row is None or not row[0] or not row[1]:
        return None
    return str(row[0]), str(row[1])


def _members_in_tenant(assignment: MandatoryAssignment, tenant_id: str) -> set[int]:
    return set(db.session.scalars(
        select(StaffMember.id).outerjoin(User, User.id == StaffMember.user_id)
        .where(assignment_members_filter(assignment, None), _tenant_expr() == tenant_id)))


# ---------------------------------------------------------------- queueing (receivers)


def _pending_sync(tenant_id: str) -> GraphOperation | None:
    """The viva_sync operation of the tenant queued in this very transaction, if any."""
    ids = [key[1] for key in pending_keys() if isinstance(key, tuple) and key[0] == "graph-operation"]
    if not ids:
        return None
    for op in db.session.scalars(select(GraphOperation).where(GraphOperation.id.in_(ids),
                                                              GraphOperation.kind == VIVA_SYNC)):
        if op.status == ops.QUEUED and (op.details or {}).get("tenant_id") == tenant_id:
            return op
    return None


def queue_changes(tenant_ids, *, courses=(), learners=(), course_years=()) -> None:
    """Add what changed to each tenant's viva_sync operation of this transaction (one per
    tenant, created at the first change); it runs after commit."""
    for tenant_id in tenant_ids:
        op = _pending_sync(tenant_id)
        if op is None:
            op = ops.queue_operation(None, VIVA_SYNC, tenant_id=tenant_id, courses=[], learners=[], course_years=[])
        details = dict(op.details or {})
        merged_courses = list(dict.fromkeys([*details.get("courses", []), *courses]))
        merged_learners = [list(k) for k in dict.fromkeys(
            [tuple(k) for k in details.get("learners", [])] + [tuple(k) for k in learners])]
        merged_years = [list(k) for k in dict.fromkeys(
            [tuple(k) for k in details.get("course_years", [])] + [tuple(k) for k in course_years])]
        details.update(courses=merged_courses, learners=merged_learners, course_years=merged_years)
        op.details = details


def queue_learner(staff_member_id: int, course_id: int, fiscal_year: int) -> None:
    tenants = enabled_tenant_ids()
    if not tenants:
        return
    identity = learner_identity(staff_member_id)
    if identity is None or identity[0] not in tenants:
        return
    queue_changes([identity[0]], learners=[(staff_member_id, course_id, fiscal_year)])


# ---------------------------------------------------------------- what is sent


def digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def graph_time(value: datetime) -> str:
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_duration(minutes: int) -> str:
    hours, rest = divmod(max(minutes, 1), 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest else "")


def content_external_id(course_id: int) -> str:
    return f"{CONTENT_PREFIX}{course_id}"


def course_is_for(course: Course, municipality_ids: set[int]) -> bool:
    """Published and open to one of the tenant's municipalities."""
    if course.status != PUBLISHED or not municipality_ids:
        return False
    return course.eligible_all or bool(course.eligible_municipality_ids & municipality_ids)


def _base_url() -> str:
    return str(current_app.config.get("LMS_BASE_URL") or "").rstrip("/")


def content_body(course: Course, active: bool) -> dict:
    """The learningContent of a course (properties of microsoft.graph.learningContent)."""
    base = _base_url()
    body: dict = {
        "externalId": content_external_id(course.id),
        "title": course.title[:255],
        "description": (course.summary or course.description_md or "")[:2000],
        "languageTag": LANGUAGE_TAG,
        "contentWebUrl": f"{base}/courses/{course.id}",
        "thumbnailWebUrl": f"{base}/teams/viva/thumbnail.png",
        "sourceName": brand_name(),
        "format": "Course",
        "isActive": active,
    }
    session = db.session.scalar(
        select(TrainingSession).where(TrainingSession.course_id == course.id, TrainingSession.status == SCHEDULED)
        .order_by(TrainingSession.starts_at, TrainingSession.id).limit(1))
    if session is not None:
        minutes = int((as_utc(session.ends_at) - as_utc(session.starts_at)).total_seconds() // 60)
        body["duration"] = iso_duration(minutes)
    return body


@dataclass
class ActivityPlan:
    kind: str
    status: str  # notStarted, inProgress, completed
    body: dict  # without learningContentId (added once the content's id is known)


def _completion_of(staff_member_id: int, course_id: int, fiscal_year: int) -> Completion | None:
    return db.session.scalar(select(Completion).where(
        Completion.staff_member_id == staff_member_id, Completion.course_id == course_id,
        Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED))


def _confirmed_at(staff_member_id: int, course_id: int, fiscal_year: int) -> datetime | None:
    """When the learner's first confirmed place in a session of the course in the year was
    confirmed (None: no confirmed place)."""
    start, end = fiscal_year_bounds(fiscal_year)
    row = db.session.execute(
        select(Enrollment.confirmed_at, Enrollment.requested_at, TrainingSession.starts_at)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(Enrollment.staff_member_id == staff_member_id, Enrollment.status == CONFIRMED,
               TrainingSession.course_id == course_id, TrainingSession.starts_at >= start,
               TrainingSession.starts_at < end)
        .order_by(TrainingSession.starts_at).limit(1)
    ).first()
    if row is None:
        return None
    return as_utc(row[0] or row[1] or row[2])


def plan_activity(tenant_id: str, staff_member_id: int, course_id: int, fiscal_year: int) -> ActivityPlan | None:
    """What Viva Learning should show for the learner and the course in the year (None: nothing)."""
    identity = learner_identity(staff_member_id)
    if identity is None or identity[0] != tenant_id:
        return None
    object_id = identity[1]
    completion = _completion_of(staff_member_id, course_id, fiscal_year)
    confirmed = _confirmed_at(staff_member_id, course_id, fiscal_year)
    covering = [a for a in db.session.scalars(
        select(MandatoryAssignment).where(MandatoryAssignment.course_id == course_id,
                                          MandatoryAssignment.fiscal_year == fiscal_year)
        .order_by(MandatoryAssignment.id))
        if db.session.scalar(select(StaffMember.id).where(StaffMember.id == staff_member_id,
                                                          assignment_members_filter(a, None))) is not None]
    status = "completed" if completion is not None else ("inProgress" if confirmed is not None else "notStarted")
    progress = {"status": status, "completionPercentage": 100 if completion is not None else 0,
                "completedDateTime": graph_time(completion.completed_at) if completion is not None else None}
    if covering:
        first = min(covering, key=lambda a: (as_utc(a.created_at), a.id))
        due = min(a.due_on for a in covering)
        body = {
            "@odata.type": "#microsoft.graph.learningAssignment",
            "learnerUserId": object_id,
            "assignmentType": "required",
            "assignedDateTime": graph_time(first.created_at),
            "dueDateTime": {"dateTime": f"{due.isoformat()}T23:59:59", "timeZone": TOKYO_WINDOWS_TZ},
            **progress,
        }
        assigner = db.session.get(User, first.created_by_id) if first.created_by_id else None
        if assigner is not None and assigner.tenant_id == tenant_id:
            body["assignerUserId"] = assigner.object_id  # a user id of the learner's own tenant
        return ActivityPlan(ASSIGNMENT, status, body)
    if completion is None and confirmed is None:
        return None
    started = confirmed or as_utc(completion.completed_at)  # type: ignore[union-attr]
    body = {
        "@odata.type": "#microsoft.graph.learningSelfInitiatedCourse",
        "learnerUserId": object_id,
        "startedDateTime": graph_time(started),
        **progress,
    }
    return ActivityPlan(SELF_INITIATED, status, body)


def activity_external_id(tenant_id: str, staff_member_id: int, course_id: int, fiscal_year: int, kind: str) -> str:
    return str(uuid.uuid5(ACTIVITY_NAMESPACE, f"{tenant_id}/{staff_member_id}/{course_id}/{fiscal_year}/{kind}"))


def _same_time(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return as_utc(datetime.fromisoformat(str(a).replace("Z", "+00:00"))) == \
            as_utc(datetime.fromisoformat(str(b).replace("Z", "+00:00")))
    except ValueError:
        return str(a) == str(b)


def differs(body: dict, item: dict) -> list[str]:
    """The properties of ``body`` that Graph's ``item`` does not hold as sent."""
    changed = []
    for key, value in body.items():
        if key == "@odata.type":
            continue
        theirs = item.get(key)
        if key.endswith("DateTime") and not isinstance(value, dict):
            same = _same_time(value, theirs)
        elif isinstance(value, dict) and "dateTime" in value:
            same = isinstance(theirs, dict) and theirs.get("timeZone") == value.get("timeZone") and \
                str(theirs.get("dateTime", ""))[:19] == str(value["dateTime"])[:19]
        else:
            same = theirs == value
        if not same:
            changed.append(key)
    return changed


# ---------------------------------------------------------------- sending: content


def _content_mirror(tenant_id: str, course_id: int) -> VivaContent | None:
    return db.session.scalar(select(VivaContent).where(VivaContent.tenant_id == tenant_id,
                                                       VivaContent.course_id == course_id))


def _record_content(tenant_id: str, course_id: int, content_id: str, sent_hash: str, active: bool) -> None:
    begin_write()
    row = _content_mirror(tenant_id, course_id)
    if row is None:
        row = VivaContent(tenant_id=tenant_id, course_id=course_id, external_id=content_external_id(course_id))
        db.session.add(row)
    row.content_id = content_id or row.content_id
    row.sent_hash = sent_hash
    row.is_active = active
    row.synced_at = utcnow()
    db.session.commit()


def _content_url(registration_id: str, course_id: int) -> str:
    return f"{provider_path(registration_id)}/learningContents(externalId={odata_quote(content_external_id(course_id))})"


def sync_content(client: GraphClient, tenant_id: str, registration_id: str, course_id: int,
                 server: dict | None | bool = False) -> str:
    """Upsert the course's learningContent when what would be sent changed. ``server``: the
    item Graph holds (reconciliation; None: Graph has none), False: compare with the mirror."""
    course = db.session.get(Course, course_id)
    mirror = _content_mirror(tenant_id, course_id)
    if course is None:
        return SKIPPED
    wanted = course_is_for(course, municipality_ids_of(tenant_id))
    if not wanted and (server is None or (server is False and mirror is None)):
        db.session.commit()
        return SKIPPED  # not in Viva Learning: nothing to withdraw
    body = content_body(course, wanted)
    sent_hash = digest(body)
    if server is False:
        if mirror is not None and mirror.sent_hash == sent_hash and mirror.content_id:
            db.session.commit()
            return UNCHANGED
    elif isinstance(server, dict) and not differs(body, server):
        if mirror is None or mirror.sent_hash != sent_hash or mirror.content_id != server.get("id"):
            db.session.commit()
            _record_content(tenant_id, course_id, str(server.get("id") or ""), sent_hash, wanted)
        db.session.commit()
        return UNCHANGED
    db.session.commit()  # no transaction open across the call
    result = client.patch(_content_url(registration_id, course_id), body)
    _record_content(tenant_id, course_id, str(result.get("id") or ""), sent_hash, wanted)
    return SENT


# ---------------------------------------------------------------- sending: course activities


def _activity_mirror(tenant_id: str, staff_member_id: int, course_id: int, fiscal_year: int) -> VivaActivity | None:
    return db.session.scalar(select(VivaActivity).where(
        VivaActivity.tenant_id == tenant_id, VivaActivity.staff_member_id == staff_member_id,
        VivaActivity.course_id == course_id, VivaActivity.fiscal_year == fiscal_year))


def _activities_path(registration_id: str) -> str:
    return f"{provider_path(registration_id)}/learningCourseActivities"


def _activity_url(registration_id: str, activity_id: str) -> str:
    return f"{_activities_path(registration_id)}/{quote(activity_id, safe='')}"


def find_activity(client: GraphClient, registration_id: str, external_id: str) -> dict | None:
    """The activity with this external id (GET by the alternate key), None when Graph has none."""
    try:
        return client.get(f"{_activities_path(registration_id)}(externalCourseActivityId={external_id})")
    except GraphNotFound:
        return None


def _pending_elsewhere(row: VivaActivity) -> bool:
    """A creation announced by a worker that may still be at it (alive, or its lease not run out)."""
    if not row.pending_by:
        return False
    alive = ops.owner_alive(row.pending_by)
    if alive is False:
        return False
    pending_at = as_utc(row.pending_at)
    return pending_at is not None and pending_at > utcnow() - ops.lease()


def _forget_activity(row_id: int) -> None:
    begin_write()
    row = db.session.get(VivaActivity, row_id)
    if row is not None:
        db.session.delete(row)
    db.session.commit()


def _delete_on_graph(client: GraphClient, registration_id: str, activity_id: str, external_id: str) -> None:
    if not activity_id:
        found = find_activity(client, registration_id, external_id)
        activity_id = str((found or {}).get("id") or "")
    if activity_id:
        with contextlib.suppress(GraphNotFound):  # gone already: the goal is reached
            client.delete(_activity_url(registration_id, activity_id))


def _record_activity(row_id: int, *, activity_id: str, sent_hash: str, status: str) -> None:
    begin_write()
    row = db.session.get(VivaActivity, row_id)
    if row is not None:
        row.activity_id = activity_id
        row.sent_hash = sent_hash
        row.sent_status = status
        row.pending_by = None
        row.pending_at = None
        row.synced_at = utcnow()
    db.session.commit()


def _announce_creation(tenant_id: str, key: tuple[int, int, int], kind: str, external_id: str,
                       row_id: int | None) -> int | None:
    """Write (or take over) the mirror row before the POST; None when another run holds it."""
    begin_write()
    row = db.session.get(VivaActivity, row_id) if row_id is not None else None
    if row is None:
        row = VivaActivity(tenant_id=tenant_id, staff_member_id=key[0], course_id=key[1], fiscal_year=key[2],
                           kind=kind, external_id=external_id)
        db.session.add(row)
    elif _pending_elsewhere(row):
        db.session.rollback()
        return None
    row.pending_by = ops.worker_identity()
    row.pending_at = utcnow()
    try:
        db.session.commit()
    except IntegrityError:  # another run announced it meanwhile
        db.session.rollback()
        return None
    return row.id


def sync_activity(client: GraphClient, tenant_id: str, registration_id: str, key: tuple[int, int, int],
                  server: dict | None | bool = False) -> str:
    """Bring the learner's course activity in step. ``server``: the activity Graph holds
    (reconciliation; None: none), False: compare with the mirror only."""
    staff_member_id, course_id, fiscal_year = key
    plan = plan_activity(tenant_id, staff_member_id, course_id, fiscal_year)
    mirror = _activity_mirror(tenant_id, staff_member_id, course_id, fiscal_year)
    if mirror is not None and (plan is None or plan.kind != mirror.kind):
        # No longer wanted, or of the other kind (a type cannot change): remove it.
        if _pending_elsewhere(mirror):
            db.session.commit()
            return BUSY
        mirror_id, activity_id, external_id = mirror.id, mirror.activity_id, mirror.external_id
        db.session.commit()
        _delete_on_graph(client, registration_id, activity_id, external_id)
        _forget_activity(mirror_id)
        if plan is None:
            return DELETED
        mirror = None
    if plan is None:
        db.session.commit()
        return SKIPPED
    content = _content_mirror(tenant_id, course_id)
    if content is None or not content.content_id:
        db.session.commit()
        sync_content(client, tenant_id, registration_id, course_id)
        content = _content_mirror(tenant_id, course_id)
        if content is None or not content.content_id:
            db.session.commit()
            return SKIPPED  # the course is not (and never was) in this tenant's Viva Learning
    external_id = activity_external_id(tenant_id, staff_member_id, course_id, fiscal_year, plan.kind)
    body = {**plan.body, "learningContentId": content.content_id, "learningProviderId": registration_id,
            "externalcourseActivityId": external_id}
    sent_hash = digest(body)
    if mirror is not None and mirror.activity_id:
        mirror_id, activity_id = mirror.id, mirror.activity_id
        if server is False and mirror.sent_hash == sent_hash:
            db.session.commit()
            return UNCHANGED
        if isinstance(server, dict) and not differs(body, server):
            if mirror.sent_hash != sent_hash:
                db.session.commit()
                _record_activity(mirror_id, activity_id=activity_id, sent_hash=sent_hash, status=plan.status)
            db.session.commit()
            return UNCHANGED
        db.session.commit()
        if server is not None:
            try:
                client.patch(_activity_url(registration_id, activity_id), body)
            except GraphNotFound:
                server = None  # deleted in Viva Learning: created again below
            else:
                _record_activity(mirror_id, activity_id=activity_id, sent_hash=sent_hash, status=plan.status)
                return SENT
        begin_write()
        row = db.session.get(VivaActivity, mirror_id)
        if row is not None:
            row.activity_id = ""
        db.session.commit()
    return _create_activity(client, tenant_id, registration_id, key, plan, external_id, body, sent_hash,
                            mirror.id if mirror is not None else None, look_up=server is not None)


def _create_activity(client: GraphClient, tenant_id: str, registration_id: str, key: tuple[int, int, int],
                     plan: ActivityPlan, external_id: str, body: dict, sent_hash: str, row_id: int | None,
                     *, look_up: bool = True) -> str:
    had_row = row_id is not None
    db.session.commit()
    row_id = _announce_creation(tenant_id, key, plan.kind, external_id, row_id)
    if row_id is None:
        return BUSY
    # A row that existed without an activity id: an earlier run may have created it and died
    # (or it was deleted in Viva Learning): look it up before creating it (unless the caller
    # has just been told that Graph holds none).
    found = find_activity(client, registration_id, external_id) if had_row and look_up else None
    if found is not None:
        if differs(body, found):
            client.patch(_activity_url(registration_id, str(found["id"])), body)
        _record_activity(row_id, activity_id=str(found["id"]), sent_hash=sent_hash, status=plan.status)
        return SENT
    created = client.post(_activities_path(registration_id), body)
    _record_activity(row_id, activity_id=str(created.get("id") or ""), sent_hash=sent_hash, status=plan.status)
    return SENT


# ---------------------------------------------------------------- running an operation


def _learners_of_course_year(tenant_id: str, course_id: int, fiscal_year: int) -> set[tuple[int, int, int]]:
    """Members of the course's assignments of the year in the tenant, and every learner with
    an activity of it there (an assignment removed or narrowed)."""
    keys = {(staff_id, course_id, fiscal_year) for staff_id in db.session.scalars(
        select(VivaActivity.staff_member_id).where(VivaActivity.tenant_id == tenant_id,
                                                   VivaActivity.course_id == course_id,
                                                   VivaActivity.fiscal_year == fiscal_year))}
    for assignment in db.session.scalars(select(MandatoryAssignment).where(
            MandatoryAssignment.course_id == course_id, MandatoryAssignment.fiscal_year == fiscal_year)):
        keys |= {(staff_id, course_id, fiscal_year) for staff_id in _members_in_tenant(assignment, tenant_id)}
    return keys


def _set_tenant_status(tenant_id: str, *, error: str = "", reconciled: bool = False) -> None:
    db.session.rollback()
    begin_write()
    row = tenant_row(tenant_id)
    if row is not None:
        row.status = STATUS_FAILED if error else STATUS_OK
        row.last_error = error[:4000]
        if not error:
            row.last_sync_at = utcnow()
            if reconciled:
                row.last_reconciled_at = row.last_sync_at
    db.session.commit()


def run_operation(op: GraphOperation, client: GraphClient) -> dict:
    """Run a viva_sync or viva_reconcile operation (lms.teams.services.execute_operation)."""
    details = dict(op.details or {})
    tenant_id = str(details.get("tenant_id") or "")
    tenant = active_tenant(tenant_id)
    if tenant is None:
        return {"skipped": "disabled"}  # switched off meanwhile: nothing is sent
    registration_id = tenant.registration_id
    try:
        if op.kind == VIVA_RECONCILE:
            counts = reconcile_with(client, tenant_id, registration_id)
        else:
            counts = sync_with(client, tenant_id, registration_id, details)
    except GraphError as exc:
        _set_tenant_status(tenant_id, error=str(exc))
        raise
    busy = counts.pop(BUSY, 0)
    if busy:
        raise VivaBusy(f"{busy} course activities are being created by another run; tried again later")
    _set_tenant_status(tenant_id, reconciled=op.kind == VIVA_RECONCILE)
    return counts


def _count(counts: dict, outcome: str) -> None:
    counts[outcome] = counts.get(outcome, 0) + 1


def sync_with(client: GraphClient, tenant_id: str, registration_id: str, details: dict) -> dict:
    counts: dict[str, int] = {}
    for course_id in details.get("courses", []):
        _count(counts, "content_" + sync_content(client, tenant_id, registration_id, int(course_id)))
    keys: set[tuple[int, int, int]] = {(int(s), int(c), int(y)) for s, c, y in details.get("learners", [])}
    for course_id, fiscal_year in details.get("course_years", []):
        keys |= _learners_of_course_year(tenant_id, int(course_id), int(fiscal_year))
    db.session.commit()
    for key in sorted(keys):
        outcome = sync_activity(client, tenant_id, registration_id, key)
        _count(counts, BUSY if outcome == BUSY else "activity_" + outcome)
    return counts


# ---------------------------------------------------------------- nightly reconciliation


def _courses_for_tenant(tenant_id: str) -> set[int]:
    municipality_ids = municipality_ids_of(tenant_id)
    if not municipality_ids:
        return set()
    open_here = or_(Course.eligible_all.is_(True), exists().where(
        and_(CourseEligibility.course_id == Course.id, CourseEligibility.municipality_id.in_(municipality_ids))))
    return set(db.session.scalars(select(Course.id).where(Course.status == PUBLISHED, open_here)))


def candidate_learners(tenant_id: str, fiscal_year: int) -> set[tuple[int, int, int]]:
    """Every (learner, course, year) that should have an activity in the tenant this year."""
    start, end = fiscal_year_bounds(fiscal_year)
    in_tenant = _tenant_expr() == tenant_id
    keys = {(s, c, fiscal_year) for s, c in db.session.execute(
        select(Enrollment.staff_member_id, TrainingSession.course_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .outerjoin(User, User.id == StaffMember.user_id)
        .where(Enrollment.status == CONFIRMED, TrainingSession.starts_at >= start, TrainingSession.starts_at < end,
               in_tenant).distinct())}
    keys |= {(s, c, fiscal_year) for s, c in db.session.execute(
        select(Completion.staff_member_id, Completion.course_id)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .outerjoin(User, User.id == StaffMember.user_id)
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED, in_tenant))}
    for assignment in db.session.scalars(select(MandatoryAssignment).where(MandatoryAssignment.fiscal_year == fiscal_year)):
        keys |= {(s, assignment.course_id, fiscal_year) for s in _members_in_tenant(assignment, tenant_id)}
    return keys


def reconcile_with(client: GraphClient, tenant_id: str, registration_id: str) -> dict:
    """Read back the provider's learningContents (every page) and each activity Manabi keeps,
    and repair what differs from what Manabi would send: content missing or altered is sent
    again, withdrawn courses are made inactive, activities missing are created again and
    stale ones patched; learners of this fiscal year without an activity get one."""
    counts: dict[str, int] = {}
    items = {str(i.get("externalId")): i for i in client.get_all(f"{provider_path(registration_id)}/learningContents")}
    course_ids = _courses_for_tenant(tenant_id)
    course_ids |= set(db.session.scalars(select(VivaContent.course_id).where(VivaContent.tenant_id == tenant_id)))
    course_ids |= {course_id for ext in items if ext.startswith(CONTENT_PREFIX)
                   and (course_id := parse_id(ext[len(CONTENT_PREFIX):])) is not None}
    db.session.commit()
    for course_id in sorted(course_ids):
        outcome = sync_content(client, tenant_id, registration_id, course_id,
                               server=items.get(content_external_id(course_id)))
        _count(counts, "content_" + outcome)
    known = db.session.execute(
        select(VivaActivity.staff_member_id, VivaActivity.course_id, VivaActivity.fiscal_year, VivaActivity.external_id)
        .where(VivaActivity.tenant_id == tenant_id).order_by(VivaActivity.id)).all()
    keys = {(s, c, y) for s, c, y, _e in known}
    missing = candidate_learners(tenant_id, fiscal_year_of(today_tokyo())) - keys
    db.session.commit()
    for staff_id, course_id, fiscal_year, external_id in known:
        server = find_activity(client, registration_id, external_id)
        outcome = sync_activity(client, tenant_id, registration_id, (staff_id, course_id, fiscal_year), server=server)
        _count(counts, BUSY if outcome == BUSY else "activity_" + outcome)
    for key in sorted(missing):
        outcome = sync_activity(client, tenant_id, registration_id, key)
        _count(counts, BUSY if outcome == BUSY else "activity_" + outcome)
    return counts


def queue_nightly_reconciliation() -> list[int]:
    """One viva_reconcile operation per enabled tenant (committed; they run after commit)."""
    queued = [queue_reconcile(tenant_id).id for tenant_id in enabled_tenant_ids()]
    db.session.commit()
    return queued

