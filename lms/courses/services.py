"""Course and session rules for trainers and platform admins.

Functions take plain values and an explicit ``actor``; they raise ``lms.common.errors``
exceptions with Japanese messages (``InvalidInput`` carries ``field=`` naming the form
field at fault). Except where noted they do not commit: the route commits once (through
``lms.common.database.run_in_transaction`` where a lock is taken).

Trainers manage the courses they own; platform admins manage every course.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common import signals
from lms.common.database import begin_write, for_update, lock_fresh
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.markdown import markdown_text
from lms.common.templating import format_datetime_jst
from lms.common.timeutil import as_utc, utcnow
from lms.courses import audience
from lms.courses.models import (
    CANCELLED,
    COMPLETION_MODES,
    DELIVERIES,
    DRAFT,
    HYBRID,
    ONSITE,
    PUBLISHED,
    SCHEDULED,
    TEAMS,
    Category,
    Course,
    CourseEligibility,
    CoursePrerequisite,
    SessionQuota,
    TrainingSession,
)
from lms.courses.search import normalise_for_search
from lms.extensions import db
from lms.municipalities.models import Municipality

# Session fields whose change enrollees must hear about (bumps ``revision``).
NOTIFIED_FIELDS = ("starts_at", "ends_at", "delivery", "location", "join_url")


# ---------------------------------------------------------------- access


def can_create_courses(user) -> bool:
    return bool(user and user.is_authenticated and user.has_role(TRAINER, PLATFORM_ADMIN))


def can_manage_course(user, course: Course) -> bool:
    """Platform admins manage every course; trainers the courses they own."""
    if not (user and user.is_authenticated):
        return False
    if user.has_role(PLATFORM_ADMIN):
        return True
    return user.has_role(TRAINER) and course.owner_id is not None and course.owner_id == user.id


def can_see_course(user, course: Course) -> bool:
    """A course (its page, and its sessions' pages a municipality's 研修担当 opens) is seen
    when published, as the catalogue lists it; a draft or a cancelled one only by those who
    manage it."""
    return course.status == PUBLISHED or can_manage_course(user, course)


def require_manage(user, course: Course) -> None:
    if not can_manage_course(user, course):
        raise NotAllowed(_("この研修を管理する権限がありません。"))


def managed_courses_query(user, status: str | None = None):
    """The courses ``user`` manages, newest first (a select for ``db.paginate``)."""
    stmt = select(Course).order_by(Course.updated_at.desc(), Course.id.desc())
    if not user.has_role(PLATFORM_ADMIN):
        stmt = stmt.where(Course.owner_id == user.id)
    if status in (DRAFT, PUBLISHED, CANCELLED):
        stmt = stmt.where(Course.status == status)
    return stmt


def session_counts(course_ids: list[int]) -> dict[int, int]:
    """Number of sessions (cancelled ones included) of each course, in one query."""
    if not course_ids:
        return {}
    rows = db.session.execute(
        select(TrainingSession.course_id, func.count())
        .where(TrainingSession.course_id.in_(course_ids))
        .group_by(TrainingSession.course_id)
    ).all()
    return {int(cid): int(n) for cid, n in rows}


# ---------------------------------------------------------------- courses


@dataclass
class CourseInput:
    title: str
    summary: str = ""
    description_md: str = ""
    category_id: int | None = None
    target_audience: str = ""
    eligible_all: bool = True
    municipality_ids: list[int] = field(default_factory=list)
    requires_approval: bool = False
    supervisor_approval: bool = False
    selection: bool = False
    completion_mode: str = "either"
    attendance_threshold_pct: int = 75
    viewing_threshold_pct: int = 90
    series_threshold_pct: int = 75
    organizer_mailbox: str = ""
    # Audience rules (lms.courses.audience): lists as typed (one per line, or 、-separated).
    audience_grades: str = ""
    audience_titles: str = ""
    min_years_of_service: int | None = None
    max_years_of_service: int | None = None
    new_hires_only: bool = False
    # The course's ``edit_version`` when its form was opened: a save from a form opened
    # before someone else's change is refused (None: no check).
    expected_version: str | None = None


# The fields a course's edit form shows (and ``edit_version`` covers).
COURSE_FORM_FIELDS = (
    "title", "summary", "description_md", "category_id", "target_audience", "eligible_all", "requires_approval",
    "supervisor_approval", "selection", "completion_mode", "attendance_threshold_pct", "viewing_threshold_pct",
    "series_threshold_pct", "organizer_mailbox", "audience_grades", "audience_titles", "min_years_of_service",
    "max_years_of_service", "new_hires_only")


class StaleEdit(Conflict):
    """An edit form opened on an older version of its course or session (nothing was saved)."""


def _fingerprint(values: dict) -> str:
    text = json.dumps({k: _plain(v) for k, v in values.items()}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def course_edit_version(course: Course) -> str:
    """A fingerprint of what the course's edit form shows, as stored: it changes with every
    saved edit of the form's fields (and only then — not when the course is published or
    its sessions fill up), so a form carries the version it was opened on."""
    values: dict[str, Any] = {name: getattr(course, name) for name in COURSE_FORM_FIELDS}
    values["municipality_ids"] = sorted(db.session.scalars(
        select(CourseEligibility.municipality_id).where(CourseEligibility.course_id == course.id)))
    return _fingerprint(values)


def refresh_search_text(course: Course) -> None:
    category = db.session.get(Category, course.category_id) if course.category_id else None
    parts = [course.title, course.summary or "", markdown_text(course.description_md or ""),
             category.name if category else ""]
    course.search_text = normalise_for_search("\n".join(parts))


# A mail address as the Teams meeting's organiser (Graph) and the calendar's ORGANIZER
# (mailto:) need it: one @, a local part, a domain with a dot and no empty label; no spaces,
# control characters or the characters that end an address in a header.
_NOT_IN_ADDRESS = r'@\s\x00-\x1f\x7f<>()\[\]\\,;:"'
_MAILBOX_RE = re.compile(rf"[^{_NOT_IN_ADDRESS}]+@(?:[^{_NOT_IN_ADDRESS}.]+\.)+[^{_NOT_IN_ADDRESS}.]+")


def is_mailbox_address(value: str) -> bool:
    """Whether ``value`` is a plausible mail address (UPN): kenshu@metro.tokyo.lg.jp."""
    return len(value) <= 320 and _MAILBOX_RE.fullmatch(value) is not None


def _validate_course(data: CourseInput) -> None:
    if not (data.title or "").strip():
        raise InvalidInput(_("研修名を入力してください。"), field="title")
    if len(data.title.strip()) > 200:
        raise InvalidInput(_("研修名は200文字以内で入力してください。"), field="title")
    if len(data.summary or "") > 500:
        raise InvalidInput(_("概要は500文字以内で入力してください。"), field="summary")
    if len(data.target_audience or "") > 500:
        raise InvalidInput(_("対象者は500文字以内で入力してください。"), field="target_audience")
    if data.completion_mode not in COMPLETION_MODES:
        raise InvalidInput(_("修了条件を選んでください。"), field="completion_mode")
    for name, value in (("attendance_threshold_pct", data.attendance_threshold_pct),
                        ("viewing_threshold_pct", data.viewing_threshold_pct),
                        ("series_threshold_pct", data.series_threshold_pct)):
        if value is None or not 1 <= int(value) <= 100:
            raise InvalidInput(_("1から100までの数で入力してください。"), field=name)
    if data.category_id is not None and db.session.get(Category, data.category_id) is None:
        raise InvalidInput(_("分類が見つかりません。"), field="category_id")
    if not data.eligible_all:
        ids = set(data.municipality_ids or [])
        if not ids:
            raise InvalidInput(_("対象の自治体を1つ以上選ぶか、「すべての自治体」を選んでください。"),
                               field="municipality_ids")
        known = set(db.session.scalars(select(Municipality.id).where(Municipality.id.in_(ids))))
        if known != ids:
            raise InvalidInput(_("選ばれた自治体の一部が見つかりません。"), field="municipality_ids")
    for name, text in (("audience_grades", data.audience_grades), ("audience_titles", data.audience_titles)):
        values = audience.parse_values(text)
        if len(values) > audience.MAX_VALUES:
            raise InvalidInput(_("対象の職層・職名は%(n)d件までにしてください。", n=audience.MAX_VALUES), field=name)
        if any(len(v) > audience.MAX_VALUE_LENGTH for v in values):
            raise InvalidInput(_("対象の職層・職名は1件%(n)d文字までにしてください。", n=audience.MAX_VALUE_LENGTH), field=name)
    low, high = data.min_years_of_service, data.max_years_of_service
    for name, years in (("min_years_of_service", low), ("max_years_of_service", high)):
        if years is not None and not 0 <= years <= 60:
            raise InvalidInput(_("経験年数は0〜60の整数で入力してください。"), field=name)
    if low is not None and high is not None and low > high:
        raise InvalidInput(_("経験年数の下限が上限より大きくなっています。"), field="min_years_of_service")
    if data.new_hires_only and low is not None and low > 0:
        raise InvalidInput(_("新規採用職員のみの研修では、経験年数の下限は0にするか空けてください。"),
                           field="min_years_of_service")
    mailbox = (data.organizer_mailbox or "").strip()
    if mailbox and not is_mailbox_address(mailbox):
        raise InvalidInput(_("主催者メールボックスはメールアドレス（UPN）の形式で入力してください。"),
                           field="organizer_mailbox")


def _apply_course(course: Course, data: CourseInput) -> dict[str, tuple[Any, Any]]:
    """Copy ``data`` into ``course``; returns {field: (old, new)} of what changed."""
    values = {
        "title": data.title.strip(),
        "summary": (data.summary or "").strip(),
        "description_md": data.description_md or "",
        "category_id": data.category_id,
        "target_audience": (data.target_audience or "").strip(),
        "eligible_all": bool(data.eligible_all),
        "requires_approval": bool(data.requires_approval),
        "supervisor_approval": bool(data.supervisor_approval),
        "selection": bool(data.selection),
        "completion_mode": data.completion_mode,
        "attendance_threshold_pct": int(data.attendance_threshold_pct),
        "viewing_threshold_pct": int(data.viewing_threshold_pct),
        "series_threshold_pct": int(data.series_threshold_pct),
        "organizer_mailbox": (data.organizer_mailbox or "").strip(),
        "audience_grades": audience.stored(audience.parse_values(data.audience_grades)),
        "audience_titles": audience.stored(audience.parse_values(data.audience_titles)),
        "min_years_of_service": data.min_years_of_service,
        "max_years_of_service": data.max_years_of_service,
        "new_hires_only": bool(data.new_hires_only),
    }
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in values.items():
        old = getattr(course, name)
        if old != value:
            changes[name] = (old, value)
            setattr(course, name, value)
    wanted = set() if data.eligible_all else set(data.municipality_ids or [])
    current = {row.municipality_id for row in course.eligibility}
    if wanted != current:
        changes["municipality_ids"] = (sorted(current), sorted(wanted))
        course.eligibility = [row for row in course.eligibility if row.municipality_id in wanted] + [
            CourseEligibility(municipality_id=mid) for mid in sorted(wanted - current)
        ]
    refresh_search_text(course)
    return changes


def _audit_changes(changes: dict) -> dict:
    # Descriptions can be long: the audit log records that they changed, not their text.
    return {k: ("…" if k == "description_md" else [_plain(v[0]), _plain(v[1])]) for k, v in changes.items()}


def _plain(value):
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def create_course(actor, data: CourseInput) -> Course:
    if not can_create_courses(actor):
        raise NotAllowed(_("研修を作成する権限がありません。"))
    _validate_course(data)
    course = Course(status=DRAFT, owner_id=actor.id, title="")
    db.session.add(course)
    _apply_course(course, data)
    db.session.flush()
    record_action(actor, "course.create", "course", course.id, None, title=course.title)
    return course


def update_course(actor, course: Course, data: CourseInput) -> dict:
    """Change the course. With ``data.expected_version``, the course is read again under its
    row lock and a form opened on an older version is refused (``StaleEdit``, nothing
    changed): two saves at once queue on the lock, and the second finds the first's change."""
    require_manage(actor, course)
    if data.expected_version is not None:
        lock_fresh(course)
        db.session.expire(course, ["eligibility"])
    if course.status == CANCELLED:
        raise InvalidInput(_("中止した研修は編集できません。"))
    if data.expected_version is not None and data.expected_version != course_edit_version(course):
        raise StaleEdit(_("このページを開いた後に、ほかの人がこの研修を変更しました。最新の内容を確認して、もう一度変更してください。"))
    _validate_course(data)
    changes = _apply_course(course, data)
    if changes:
        course.updated_at = utcnow()
        record_action(actor, "course.update", "course", course.id, None, changes=_audit_changes(changes))
        db.session.flush()
        signals.course_changed.send(course, actor=actor, changes=changes)
    return changes


def copy_course(actor, source: Course) -> Course:
    """A new draft course like ``source`` (its texts, rules, municipalities and 受講要件; no
    sessions), owned by ``actor``, titled 「…（コピー）」. Other areas copy what they keep for a
    course on ``course_copied`` (lms.activities: the activities and the question bank)."""
    require_manage(actor, source)
    if not can_create_courses(actor):
        raise NotAllowed(_("研修を作成する権限がありません。"))
    suffix = _("（コピー）")
    data = CourseInput(
        title=source.title[: 200 - len(suffix)] + suffix, municipality_ids=sorted(source.eligible_municipality_ids),
        **{name: getattr(source, name) for name in (
            "summary", "description_md", "category_id", "target_audience", "eligible_all", "requires_approval",
            "supervisor_approval", "selection", "completion_mode", "attendance_threshold_pct", "viewing_threshold_pct",
            "series_threshold_pct", "organizer_mailbox", "audience_grades", "audience_titles", "min_years_of_service",
            "max_years_of_service", "new_hires_only")})
    course = Course(status=DRAFT, owner_id=actor.id, title="")
    db.session.add(course)
    _apply_course(course, data)
    course.prerequisites.extend(CoursePrerequisite(required_course_id=p.required_course_id,
                                                   within_fiscal_years=p.within_fiscal_years)
                                for p in source.prerequisites)
    course.has_prerequisites = bool(source.prerequisites)
    db.session.flush()
    record_action(actor, "course.copy", "course", course.id, None, source_id=source.id, title=course.title)
    signals.course_copied.send(course, source=source, actor=actor)
    return course


def prerequisite_choices(course: Course, user) -> list[Course]:
    """Courses ``user`` may require before ``course``, by title: every other published course,
    the drafts ``user`` manages (a series is often prepared together), and those already
    required. Another trainer's draft is not shown, as nowhere else (can_see_course)."""
    seen = [Course.status == PUBLISHED, Course.id.in_([p.required_course_id for p in course.prerequisites])]
    if user.has_role(PLATFORM_ADMIN):
        seen.append(Course.status == DRAFT)
    else:
        seen.append(and_(Course.status == DRAFT, Course.owner_id == user.id))
    return list(db.session.scalars(
        select(Course).where(Course.id != course.id, Course.status != CANCELLED, or_(*seen)).order_by(Course.title, Course.id)))


def _requires(course_id: int) -> dict[int, list[int]]:
    edges: dict[int, list[int]] = {}
    for source, target in db.session.execute(select(CoursePrerequisite.course_id, CoursePrerequisite.required_course_id)):
        edges.setdefault(int(source), []).append(int(target))
    return edges


def set_prerequisites(actor, course: Course, required_ids: list[int], within_fiscal_years: int | None) -> bool:
    """Replace the course's 受講要件. Refuses unknown or cancelled courses, the course itself,
    and a requirement that would go round in a circle (A needs B, B needs A). Returns whether
    anything changed; audited."""
    require_manage(actor, course)
    wanted = list(dict.fromkeys(int(i) for i in required_ids))
    if course.id in wanted:
        raise InvalidInput(_("研修そのものを受講要件にはできません。"), field="required_ids")
    if within_fiscal_years is not None and not 1 <= within_fiscal_years <= 20:
        raise InvalidInput(_("1から20までの数で入力してください。"), field="within_fiscal_years")
    found = {c.id: c for c in db.session.scalars(select(Course).where(Course.id.in_(wanted)))} if wanted else {}
    already = {p.required_course_id for p in course.prerequisites}
    # (a draft of someone else's is as unknown to the actor as on every page: can_see_course)
    unknown = [i for i in wanted if i not in found or found[i].status == CANCELLED
               or (i not in already and not can_see_course(actor, found[i]))]
    if unknown:
        raise InvalidInput(_("選べない研修が含まれています（存在しないか中止されています）。"), field="required_ids")
    edges = _requires(course.id)
    edges[course.id] = wanted
    # A circle through this course: walk what the required courses themselves require.
    seen: set[int] = set()
    stack = list(wanted)
    while stack:
        current = stack.pop()
        if current == course.id:
            raise InvalidInput(_("受講要件が循環しています（選んだ研修が、この研修の修了を要件にしています）。"),
                               field="required_ids")
        if current not in seen:
            seen.add(current)
            stack.extend(edges.get(current, []))
    before = [(p.required_course_id, p.within_fiscal_years) for p in course.prerequisites]
    after = [(i, within_fiscal_years) for i in wanted]
    if before == after:
        return False
    course.prerequisites.clear()
    db.session.flush()
    course.prerequisites.extend(
        CoursePrerequisite(required_course_id=i, within_fiscal_years=within_fiscal_years) for i in wanted)
    course.has_prerequisites = bool(wanted)
    db.session.flush()
    record_action(actor, "course.prerequisites", "course", course.id, None,
                  required=[found[i].title for i in wanted], within_fiscal_years=within_fiscal_years)
    return True


def sessions_without_join_link(course: Course) -> list[TrainingSession]:
    """Scheduled Teams (or hybrid) sessions that have no join link yet: learners are told the
    link will follow, and the trainer is warned."""
    return [s for s in course.sessions
            if s.status == SCHEDULED and s.delivery in (TEAMS, HYBRID) and not (s.join_url or "").strip()]


def publish_course(actor, course: Course) -> None:
    require_manage(actor, course)
    if course.status == CANCELLED:
        raise InvalidInput(_("中止した研修は公開できません。"))
    if course.status == PUBLISHED:
        return
    if not any(s.status == SCHEDULED for s in course.sessions):
        raise InvalidInput(_("研修回がまだありません。研修回を追加してから公開してください（研修回のない研修には申し込めません）。"))
    old_status = course.status
    course.status = PUBLISHED
    course.published_at = utcnow()
    record_action(actor, "course.publish", "course", course.id, None)
    db.session.flush()
    signals.course_changed.send(course, actor=actor, changes={"status": (old_status, PUBLISHED)})


def unpublish_course(actor, course: Course) -> None:
    """Back to draft (hidden from the catalogue). Refused while people hold places: those
    must hear about it, so the course is cancelled instead."""
    require_manage(actor, course)
    if course.status != PUBLISHED:
        raise InvalidInput(_("公開中の研修ではありません。"))
    # The enrollment area refuses (InvalidInput) while people hold places in its sessions.
    signals.course_unpublishing.send(course, actor=actor)
    course.status = DRAFT
    record_action(actor, "course.unpublish", "course", course.id, None)
    db.session.flush()
    signals.course_changed.send(course, actor=actor, changes={"status": (PUBLISHED, DRAFT)})


def cancel_course(actor, course: Course, reason: str = "") -> list[TrainingSession]:
    """Cancel the course and each of its sessions still to come (their enrollees are told);
    returns the sessions this call cancelled (not those cancelled before).

    Commits: the course is marked cancelled first, so nobody can enroll meanwhile, then each
    session in a transaction of its own; repeating the call finishes a cancellation that
    was interrupted.
    """
    require_manage(actor, course)
    reason = (reason or "").strip()
    course_id = course.id
    lock_fresh(course)  # sent twice at once: cancelled (and recorded) once
    if course.status != CANCELLED:
        old_status = course.status
        course.status = CANCELLED
        course.cancelled_at = utcnow()
        record_action(actor, "course.cancel", "course", course.id, None, reason=reason)
        db.session.flush()
        signals.course_changed.send(course, actor=actor, changes={"status": (old_status, CANCELLED)})
        db.session.commit()
    now = utcnow()
    session_ids = db.session.scalars(
        select(TrainingSession.id).where(TrainingSession.course_id == course_id).order_by(TrainingSession.starts_at)
    ).all()
    cancelled = []
    for session_id in session_ids:
        session = db.session.get_one(TrainingSession, session_id)
        if session.status == CANCELLED or as_utc(session.starts_at) <= now:
            continue
        if cancel_session(actor, session, reason or _("研修の中止")):
            cancelled.append(session)
    return cancelled


# ---------------------------------------------------------------- sessions


@dataclass
class SessionInput:
    starts_at: datetime
    ends_at: datetime
    title: str = ""
    delivery: str = TEAMS
    location: str = ""
    join_url: str = ""
    capacity: int = 0
    enroll_opens_at: datetime | None = None
    enroll_closes_at: datetime | None = None
    cancel_deadline: datetime | None = None
    # municipality id -> seats (割当人数)
    quotas: dict[int, int] = field(default_factory=dict)
    # moved knowing some confirmed enrollees then have another session at the same time
    accept_clashes: bool = False
    # The session's ``edit_version`` when its form was opened: a save from a form opened
    # before someone else's change is refused (None: no check).
    expected_version: str | None = None


# Where a Teams meeting's join link lives: Microsoft 365 (commercial, and the new
# teams.cloud.microsoft), Teams (free), and the US government clouds. A link elsewhere is not
# a Teams meeting, and learners would follow it as one from the 「Teams 会議に参加する」 button.
TEAMS_LINK_DOMAINS = ("teams.microsoft.com", "teams.cloud.microsoft", "teams.live.com", "teams.microsoft.us")


def is_teams_link(url: str) -> bool:
    """An https link on a Teams host (a subdomain included), with no user name or password in it
    (``https://teams.microsoft.com@evil.example/`` is evil.example) and no other port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").rstrip(".")
    # A host of letters, digits, dots and hyphens only: a browser reads 「\」 as 「/」, so
    # https://evil.example\.teams.microsoft.com/ leads to evil.example (and 「%」 escapes are
    # read differently from one parser to another).
    return (parts.scheme == "https" and not any(c.isspace() or c == "\\" for c in url) and "@" not in parts.netloc
            and port in (None, 443) and _HOST_NAME.fullmatch(host) is not None
            and any(host == domain or host.endswith("." + domain) for domain in TEAMS_LINK_DOMAINS))


_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def _validate_session(data: SessionInput, session: TrainingSession | None) -> None:
    starts, ends = as_utc(data.starts_at), as_utc(data.ends_at)
    if starts is None:
        raise InvalidInput(_("開始日時を入力してください。"), field="starts_at")
    if ends is None:
        raise InvalidInput(_("終了日時を入力してください。"), field="ends_at")
    if ends <= starts:
        raise InvalidInput(_("終了日時は開始日時より後にしてください。"), field="ends_at")
    if (ends - starts).days >= 7:
        raise InvalidInput(_("1回の研修は7日未満にしてください。"), field="ends_at")
    if len(data.title or "") > 200:
        raise InvalidInput(_("回の名前は200文字以内で入力してください。"), field="title")
    if data.delivery not in DELIVERIES:
        raise InvalidInput(_("開催方法を選んでください。"), field="delivery")
    url = (data.join_url or "").strip()
    # (a link stored before this rule, kept unchanged, does not stop an edit of the rest)
    if url and not is_teams_link(url) and not (session is not None and url == (session.join_url or "").strip()):
        raise InvalidInput(_("Teams 会議の参加リンク（https://teams.microsoft.com/ で始まる URL）を入力してください。"),
                           field="join_url")
    if data.delivery in (ONSITE, HYBRID) and not (data.location or "").strip():
        raise InvalidInput(_("会場で開催する回は会場を入力してください。"), field="location")
    if len(data.location or "") > 300:
        raise InvalidInput(_("会場は300文字以内で入力してください。"), field="location")
    if data.capacity is None or data.capacity < 1:
        raise InvalidInput(_("定員は1以上の数で入力してください。"), field="capacity")
    if data.capacity > 100000:
        raise InvalidInput(_("定員が大きすぎます。"), field="capacity")
    confirmed = session.confirmed_count if session is not None else 0
    if data.capacity < confirmed:
        raise InvalidInput(
            _("定員は確定済みの人数（%(n)d人）より少なくできません。", n=confirmed), field="capacity"
        )
    opens, closes, deadline = as_utc(data.enroll_opens_at), as_utc(data.enroll_closes_at), as_utc(data.cancel_deadline)
    if opens is not None and closes is not None and closes <= opens:
        raise InvalidInput(_("申込締切は申込開始より後にしてください。"), field="enroll_closes_at")
    if closes is not None and closes > starts:
        raise InvalidInput(_("申込締切は開始日時より前にしてください。"), field="enroll_closes_at")
    if opens is not None and opens >= starts:
        raise InvalidInput(_("申込開始は開始日時より前にしてください。"), field="enroll_opens_at")
    if deadline is not None and deadline > starts:
        raise InvalidInput(_("キャンセル期限は開始日時より前にしてください。"), field="cancel_deadline")
    existing = {q.municipality_id: q for q in (session.quotas if session is not None else [])}
    total = 0
    if data.quotas:
        known = set(db.session.scalars(select(Municipality.id).where(Municipality.id.in_(list(data.quotas)))))
        for mid, seats in data.quotas.items():
            if mid not in known:
                raise InvalidInput(_("割当の自治体が見つかりません。"), field="quotas")
            if seats is None or seats < 0:
                raise InvalidInput(_("割当人数は0以上の数で入力してください。"), field="quotas")
            held = existing[mid].confirmed_count if mid in existing else 0  # (a new row: _apply_quotas)
            if seats < held:
                raise _quota_below_confirmed(mid, held)
            total += seats
    if total > data.capacity:
        raise InvalidInput(
            _("割当人数の合計（%(total)d人）が定員（%(capacity)d人）を超えています。", total=total, capacity=data.capacity),
            field="quotas",
        )
    # Removing a quota row is allowed: that municipality's confirmed people keep their
    # seats, which then count against the shared capacity only.


def _session_values(data: SessionInput) -> dict:
    return {
        "title": (data.title or "").strip(),
        "starts_at": as_utc(data.starts_at),
        "ends_at": as_utc(data.ends_at),
        "delivery": data.delivery,
        "location": (data.location or "").strip(),
        "join_url": (data.join_url or "").strip(),
        "capacity": int(data.capacity),
        "enroll_opens_at": as_utc(data.enroll_opens_at),
        "enroll_closes_at": as_utc(data.enroll_closes_at),
        "cancel_deadline": as_utc(data.cancel_deadline),
    }


def session_edit_version(session: TrainingSession) -> str:
    """A fingerprint of what the session's edit form shows, as stored (its times, place,
    link, capacity, request period and 割当人数): it changes with every saved edit of them
    (and only then — not when people enrol), so a form carries the version it was opened on."""
    values: dict[str, Any] = {name: getattr(session, name) for name in (
        "title", "starts_at", "ends_at", "delivery", "location", "join_url", "capacity", "enroll_opens_at",
        "enroll_closes_at", "cancel_deadline")}
    values["quotas"] = sorted((int(mid), int(seats)) for mid, seats in db.session.execute(
        select(SessionQuota.municipality_id, SessionQuota.seats).where(SessionQuota.session_id == session.id)))
    return _fingerprint(values)


def _same(old, new) -> bool:
    if isinstance(old, datetime) or isinstance(new, datetime):
        return as_utc(old) == as_utc(new)
    return old == new


def _quota_below_confirmed(municipality_id: int, held: int) -> InvalidInput:
    with db.session.no_autoflush:  # (a new row's count above its seats is never written: refused)
        name = db.session.get_one(Municipality, municipality_id).name
    return InvalidInput(_("%(name)s の割当人数は確定済みの人数（%(n)d人）より少なくできません。", name=name, n=held),
                        field="quotas")


def _add_quotas(session: TrainingSession, seats: dict[int, int]) -> list[SessionQuota]:
    """New 割当 rows of an existing session: each counts its municipality's people confirmed in
    the session already (the enrollment area's receiver of ``quotas_added``)."""
    if not seats:
        return []
    added = [SessionQuota(municipality_id=mid, seats=n) for mid, n in seats.items()]
    session.quotas.extend(added)
    db.session.flush()
    signals.quotas_added.send(session, quotas=added)
    return added


def _apply_quotas(session: TrainingSession, quotas: dict[int, int]) -> dict:
    current = {q.municipality_id: q for q in session.quotas}
    before = {mid: q.seats for mid, q in current.items()}
    for mid, quota in current.items():
        if mid not in quotas:
            session.quotas.remove(quota)
    for mid, seats in quotas.items():
        if mid in current:
            current[mid].seats = seats
    new = {mid: seats for mid, seats in quotas.items() if mid not in current}
    if session.id is None:  # (a session being created: nobody is confirmed in it yet)
        session.quotas.extend(SessionQuota(municipality_id=mid, seats=seats) for mid, seats in new.items())
    elif new:
        for quota in _add_quotas(session, new):
            if quota.seats < quota.confirmed_count:
                raise _quota_below_confirmed(quota.municipality_id, quota.confirmed_count)
    if session.id is not None and quotas:
        # Seats held for municipalities come out of what the people on the shared seats
        # (confirmed, of a municipality without a quota) leave: no quota promises seats the
        # session does not have.
        shared = session.confirmed_count - sum(q.confirmed_count for q in session.quotas)
        total = sum(quotas.values())
        if shared > 0 and total + shared > session.capacity:
            raise InvalidInput(
                _("割当人数の合計（%(total)d人）と、割当のない自治体の確定済みの人数（%(shared)d人）を合わせると、定員（%(capacity)d人）を超えます。",
                  total=total, shared=shared, capacity=session.capacity), field="quotas")
    after = dict(quotas)
    return {"quotas": (before, after)} if before != after else {}


def create_session(actor, course: Course, data: SessionInput, *, part_of: TrainingSession | None = None,
                   makeup_for: TrainingSession | None = None) -> TrainingSession:
    """A new session of ``course``; with ``part_of``, a later part of that session's 連続講座
    (which it starts, if it is a session on its own: the capacity is the first part's and
    its places follow the first's — lms.enrollment.series); with ``makeup_for``, a make-up
    part (補講) of the series for that part (its own capacity)."""
    require_manage(actor, course)
    if course.status == CANCELLED:
        raise InvalidInput(_("中止した研修には回を追加できません。"))
    first = None
    if part_of is not None or makeup_for is not None:
        anchor = part_of if part_of is not None else makeup_for
        assert anchor is not None
        if anchor.course_id != course.id or anchor.makeup_for_id is not None:
            raise InvalidInput(_("連続講座の日程は、同じ研修の回（補講を除く）に追加してください。"))
        if anchor.status == CANCELLED:
            raise InvalidInput(_("中止した回には日程や補講を追加できません。"))
        if makeup_for is not None and makeup_for.series_id is None:
            raise InvalidInput(_("補講は連続講座の回に追加できます。先に日程を追加して連続講座にしてください。"))
        if part_of is not None and part_of.series_id is None and as_utc(part_of.starts_at) <= utcnow():
            # (its attendees would be given places in the new day, and told so)
            raise InvalidInput(past_series_message())
        # The series' first part is locked before anything is written, as the places that
        # follow a new part lock it (lms.enrollment.series): two days added at once queue here
        # instead of deadlocking with the course row's trigger lock.
        first = lock_session(anchor.id if anchor.series_id in (None, anchor.id) else anchor.series_id)
        if part_of is not None:
            data.capacity, data.quotas = first.capacity, {}  # one capacity for the whole series
    _validate_session(data, None)
    if as_utc(data.starts_at) <= utcnow():
        raise InvalidInput(_("開始日時は現在より後にしてください。"), field="starts_at")
    if first is not None:
        _check_series_order(data, None, first if part_of is not None else None, makeup_for)
    # (ids read before the new session exists: a load then would flush it half-made)
    first_id = first.id if first is not None else None
    makeup_id = makeup_for.id if makeup_for is not None else None
    session = TrainingSession(course=course, status=SCHEDULED, revision=1, **_session_values(data))
    if first is not None:
        first.series_id = session.series_id = first_id
        session.makeup_for_id = makeup_id
    db.session.add(session)
    _apply_quotas(session, data.quotas)
    db.session.flush()
    record_action(actor, "session.create", "training_session", session.id, None, course_id=course.id,
                  starts_at=session.starts_at.isoformat(), capacity=session.capacity,
                  **({"series_id": session.series_id, "makeup_for_id": session.makeup_for_id} if first else {}))
    signals.session_created.send(session, actor=actor, changes={})
    return session


def _check_series_order(data: SessionInput, session: TrainingSession | None, first: TrainingSession | None,
                        makeup_for: TrainingSession | None) -> None:
    """A 連続講座 keeps its order: a later part after the first part, a make-up (補講) after
    the part it makes up for (also when that part is the one moved), the first part before
    every later one, a later part moved between the parts either side of it (``session``:
    the one being moved, None for a new one)."""
    starts, ends = as_utc(data.starts_at), as_utc(data.ends_at)
    if makeup_for is not None and starts < as_utc(makeup_for.ends_at):
        raise InvalidInput(_("補講は、補う回が終わる %(when)s 以降の日時にしてください。",
                             when=format_datetime_jst(makeup_for.ends_at)), field="starts_at")
    if first is not None and starts < as_utc(first.ends_at):
        raise InvalidInput(_("連続講座の日程は、最初の回が終わる %(when)s 以降の日時にしてください。",
                             when=format_datetime_jst(first.ends_at)), field="starts_at")
    if session is not None and session.makeup_for_id is None:
        # A day with make-ups (補講) ends before the first of them starts, as a make-up is
        # added after the day it makes up for.
        makeup_at = db.session.scalar(
            select(func.min(TrainingSession.starts_at)).where(
                TrainingSession.makeup_for_id == session.id, TrainingSession.status != CANCELLED))
        if makeup_at is not None and ends > as_utc(makeup_at):
            raise InvalidInput(_("この回の補講（%(when)s）より前に終わる日時にしてください。",
                                 when=format_datetime_jst(makeup_at)), field="starts_at")
    # A later day stays between the days either side of it: a day moved past the next one
    # would swap their order (第2日 after 第3日), and a new day fits between two (not over one).
    series_id, exclude = None, None
    if session is not None and session.series_id not in (None, session.id) and session.makeup_for_id is None:
        series_id, exclude, pivot, later = session.series_id, session.id, as_utc(session.starts_at), False
    elif session is None and first is not None and makeup_for is None:
        series_id, pivot, later = first.id, starts, True
    if series_id is not None:
        days = (select(TrainingSession)
                .where(TrainingSession.series_id == series_id, TrainingSession.id != (exclude or 0),
                       TrainingSession.makeup_for_id.is_(None), TrainingSession.status != CANCELLED)
                .limit(1))
        before = db.session.scalar(days.where(TrainingSession.starts_at < pivot)
                                   .order_by(TrainingSession.starts_at.desc()))
        after = db.session.scalar(days.where(TrainingSession.starts_at >= pivot if later
                                             else TrainingSession.starts_at > pivot)
                                  .order_by(TrainingSession.starts_at))
        if before is not None and starts < as_utc(before.ends_at):
            raise InvalidInput(_("連続講座の日程の順番は変えられません。前の日程が終わる %(when)s 以降の日時にしてください。",
                                 when=format_datetime_jst(before.ends_at)), field="starts_at")
        if after is not None and ends > as_utc(after.starts_at):
            raise InvalidInput(_("連続講座の日程の順番は変えられません。次の日程（%(when)s）より前に終わる日時にしてください。",
                                 when=format_datetime_jst(after.starts_at)), field="starts_at")
    if session is not None and session.series_id == session.id:
        earliest = db.session.scalar(
            select(func.min(TrainingSession.starts_at)).where(
                TrainingSession.series_id == session.id, TrainingSession.id != session.id,
                TrainingSession.status != CANCELLED))
        if earliest is not None and ends > as_utc(earliest):
            raise InvalidInput(_("最初の回は、連続講座のほかの日程（%(when)s から）より前に終わる日時にしてください。",
                                 when=format_datetime_jst(earliest)), field="starts_at")


def past_series_message() -> str:
    """Why a session already begun does not start a 連続講座 (one message for page and service)."""
    return _("開始済みの回を連続講座にすることはできません。新しい回として追加してください。")


def ended_session_message() -> str:
    """Why an ended session is not edited (one message for the page and the service)."""
    return _("終了した回は編集できません（出欠や修了の記録はそのまま残ります）。")


def update_session(actor, session_id: int, data: SessionInput) -> dict:
    """Change a session under its row lock; with ``data.expected_version``, a form opened on an
    older version of the session is refused (``StaleEdit``, nothing changed). Enrollees hear
    about changes of time, place, link or delivery (``revision`` goes up, a "changed" notice is queued for each active
    enrollment); added seats go to the waitlist at once. Returns {field: (old, new)}.
    Run it through ``run_in_transaction`` (it starts the write transaction itself).

    The enrollees' notices and the waitlist's promotion are the receivers' work of
    ``session_updated`` (notifications, enrollment), in this transaction.

    The join link of a session with a meeting Manabi made (``has_managed_meeting``): an
    empty field keeps it; a different link is the trainer's own (the Teams area's receiver
    lets Manabi's meeting go). A typed link cleared for a meeting Manabi makes now
    (``meeting_link_cleared``) is not told as a removal: its new link is told when known."""
    session = lock_session(session_id)
    require_manage(actor, session.course)
    if session.status == CANCELLED:
        raise InvalidInput(_("中止した回は編集できません。"))
    if session.course.status == CANCELLED:
        raise InvalidInput(_("中止した研修の回は編集できません。"))
    if as_utc(session.ends_at) <= utcnow():  # its enrollees would be told of a change to the past
        raise InvalidInput(ended_session_message())
    # Quota rows are locked with the session so their confirmed counts are current.
    db.session.scalars(
        for_update(select(SessionQuota).where(SessionQuota.session_id == session.id)).execution_options(
            populate_existing=True
        )
    ).all()
    # Read under the lock: of two saves from forms opened on the same version, the second
    # finds the first's change and is refused.
    if data.expected_version is not None and data.expected_version != session_edit_version(session):
        raise StaleEdit(_("このページを開いた後に、ほかの人がこの回を変更しました。最新の内容を確認して、もう一度変更してください。"))
    _validate_session(data, session)
    if not _same(session.starts_at, data.starts_at) and as_utc(data.starts_at) <= utcnow():
        raise InvalidInput(_("開始日時は現在より後にしてください。"), field="starts_at")
    if not (_same(session.starts_at, data.starts_at) and _same(session.ends_at, data.ends_at)):
        if session.series_id is not None:
            first = db.session.get(TrainingSession, session.series_id) if session.series_id != session.id else None
            makeup_for = db.session.get(TrainingSession, session.makeup_for_id) if session.makeup_for_id else None
            _check_series_order(data, session, None if makeup_for is not None else first, makeup_for)
        signals.session_moving.send(session, actor=actor, starts_at=as_utc(data.starts_at),
                                    ends_at=as_utc(data.ends_at), accept_clashes=data.accept_clashes)
    values = _session_values(data)
    if session.has_managed_meeting and not values["join_url"]:
        # An empty field keeps the meeting Manabi made (its link is Manabi's to write); a
        # different link typed over it is the trainer's choice (the Teams area lets it go).
        values["join_url"] = session.join_url
    changes = {}
    for name, value in values.items():
        old = getattr(session, name)
        if not _same(old, value):
            changes[name] = (old, value)
            setattr(session, name, value)
    changes.update(_apply_quotas(session, data.quotas))
    if not changes:
        return {}
    told = changes
    if "join_url" in changes and not session.join_url and any(
            made for _receiver, made in signals.meeting_link_cleared.send(session, actor=actor)):
        # A typed link cleared for a meeting Manabi makes now: the enrollees hear of its link
        # once it is known (record_meeting_link), not of the removal first.
        told = {name: value for name, value in changes.items() if name != "join_url"}
    notify = any(name in told for name in NOTIFIED_FIELDS)
    if notify:
        session.revision = (session.revision or 1) + 1
    session.updated_at = utcnow()
    db.session.flush()
    record_action(actor, "session.update", "training_session", session.id, None, course_id=session.course_id,
                  revision=session.revision, changes=_audit_changes({k: v for k, v in changes.items() if k != "quotas"}),
                  quotas=[{str(k): v for k, v in changes["quotas"][0].items()},
                          {str(k): v for k, v in changes["quotas"][1].items()}] if "quotas" in changes else None)
    if told:
        signals.session_updated.send(session, actor=actor, changes=told)
    return changes


def record_meeting_link(session: TrainingSession, join_url: str) -> dict:
    """The join link of the Teams meeting made for the session replaces the stored one (the
    Teams area calls this when Graph creates the meeting or gives it a new link). Enrollees
    hear of it like of an edit — ``revision`` up, ``session_updated`` with the change —
    since their mail and calendar entry carry the link. In the caller's transaction."""
    old = session.join_url or ""
    if not join_url or join_url == old:
        return {}
    changes = {"join_url": (old, join_url)}
    session.join_url = join_url
    session.revision = (session.revision or 1) + 1
    session.updated_at = utcnow()
    db.session.flush()
    record_action(None, "session.update", "training_session", session.id, None, course_id=session.course_id,
                  revision=session.revision, changes=_audit_changes(changes))
    signals.session_updated.send(session, actor=None, changes=changes, from_meeting=True)
    return changes


def set_session_quotas(actor, session_id: int, quotas: dict[int, int]) -> dict:
    """Replace a session's 割当人数 (an allocation being published): everything else as it
    stands, read under the session's row lock, and then the same checks, locks and events as
    an edit of the session (a quota below a municipality's confirmed people is refused; added
    seats promote its waitlist). Run it through ``run_in_transaction``."""
    session = lock_session(session_id)
    data = SessionInput(
        title=session.title, starts_at=session.starts_at, ends_at=session.ends_at, delivery=session.delivery,
        location=session.location, join_url=session.join_url, capacity=session.capacity,
        enroll_opens_at=session.enroll_opens_at, enroll_closes_at=session.enroll_closes_at,
        cancel_deadline=session.cancel_deadline, quotas=dict(quotas),
    )
    return update_session(actor, session_id, data)


def release_session_quotas(session_id: int, *, municipality_id: int | None = None, actor=None,
                           keep: dict[int, int] | None = None) -> dict:
    """Give held seats back to everyone. With ``municipality_id``: that municipality's
    unfilled seats only (its quota becomes what it has confirmed; a training office letting
    its seats go early). Without: at the nomination deadline, every quota row goes — the
    confirmed people keep their seats, the unfilled ones join the shared capacity, and the
    waitlist (in order of arrival) is promoted into them by the enrollment area's receiver of
    ``session_updated``. ``keep`` ({municipality id: seats}) first hands the freed seats to
    some municipalities (their quotas become these, and their waiting staff are promoted into
    them) before the rest is shared. The caller authorises; run it through
    ``run_in_transaction``. Returns ``{"quotas": (before, after)}``, or {} when nothing was held."""
    session = lock_session(session_id)
    quotas = list(db.session.scalars(
        for_update(select(SessionQuota).where(SessionQuota.session_id == session.id)).execution_options(
            populate_existing=True)
    ))
    before = {q.municipality_id: q.seats for q in quotas}
    if not before:
        return {}
    if municipality_id is not None:
        after = dict(before)
        for quota in quotas:
            if quota.municipality_id == municipality_id and quota.seats > quota.confirmed_count:
                quota.seats = quota.confirmed_count
                after[municipality_id] = quota.seats
        if after == before:
            return {}
        _announce_quotas(session, actor, before, after, municipality_id)
        return {"quotas": (before, after)}
    current = dict(before)
    if keep:
        for quota in quotas:
            if quota.municipality_id in keep:
                quota.seats = max(keep[quota.municipality_id], quota.confirmed_count)
            else:
                quota.seats = quota.confirmed_count  # its unused seats are the ones handed on
        for quota in _add_quotas(session, {mid: seats for mid, seats in keep.items() if mid not in before and seats > 0}):
            quota.seats = max(quota.seats, quota.confirmed_count)
        after = {q.municipality_id: q.seats for q in session.quotas}
        _announce_quotas(session, actor, current, after, None)
        current = after
    for quota in list(session.quotas):
        session.quotas.remove(quota)
    _announce_quotas(session, actor, current, {}, None)
    return {"quotas": (before, {})}


def _announce_quotas(session: TrainingSession, actor, before: dict, after: dict, municipality_id: int | None) -> None:
    db.session.flush()
    record_action(actor, "session.release_quotas", "training_session", session.id, municipality_id,
                  before={str(k): v for k, v in before.items()}, after={str(k): v for k, v in after.items()})
    signals.session_updated.send(session, actor=actor, changes={"quotas": (before, after)})


def lock_session(session_id: int) -> TrainingSession:
    """Start the write transaction and lock the session row (fresh, with its course)."""
    begin_write()
    session = db.session.scalar(
        for_update(select(TrainingSession).where(TrainingSession.id == session_id)).execution_options(
            populate_existing=True)
    )
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    return session


def cancel_session_refusal(session: TrainingSession) -> str | None:
    """Why a scheduled session cannot be cancelled (None: it can): the cancel page says so
    before asking, the service refuses with it."""
    if as_utc(session.ends_at) <= utcnow():
        return _("終了した回は中止できません。")
    return None


def cancel_session(actor, session: TrainingSession, reason: str = "") -> bool:
    """Cancel a session and every active enrollment in it (each enrollee is told), in one
    transaction that this commits: the session's row is locked, marked cancelled, and
    ``session_cancelled`` is sent (the enrollment area cancels the enrollments, Teams the
    meeting). Repeating the call on a cancelled session changes nothing (returns False).
    """
    require_manage(actor, session.course)
    reason = (reason or "").strip()
    if len(reason) > 1000:
        raise InvalidInput(_("理由は1000文字以内で入力してください。"), field="reason")
    session = lock_session(session.id)
    if session.status == CANCELLED:
        db.session.rollback()
        return False
    refusal = cancel_session_refusal(session)
    if refusal is not None:
        db.session.rollback()
        raise InvalidInput(refusal)
    session.status = CANCELLED
    session.cancelled_at = utcnow()
    record_action(actor, "session.cancel", "training_session", session.id, None,
                  course_id=session.course_id, reason=reason)
    signals.session_cancelled.send(session, actor=actor, changes={"status": (SCHEDULED, CANCELLED)},
                                   reason=reason or _("研修回の中止"))
    db.session.commit()
    return True


