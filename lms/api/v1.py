"""API v1 (/api/v1): the routes, built with flask-smorest so that the OpenAPI 3.1 document
(/api/v1/openapi.json) is generated from this code and its marshmallow schemas.

Every view: ``@requires(role)`` first (token, registered client, app role, rate limit), then
the arguments; every query is limited to the caller's municipality (the platform client:
all). An object of another municipality is answered like one that does not exist (404).
"""

from __future__ import annotations

import re
from array import array
from datetime import datetime, time, timedelta
from functools import wraps

from flask import Flask, request, url_for
from flask_babel import gettext as _
from flask_smorest import Api, Blueprint
from sqlalchemy import exists, or_, select, true
from sqlalchemy.exc import IntegrityError

from lms.api import feed_json, roster_jobs, schemas
from lms.api.auth import READ, ROSTER_WRITE, SECURITY, Caller, current_caller, requires
from lms.api.models import ApiClient, RosterJob, RosterJobRow
from lms.api.paging import conditional, decode_row_cursor, encode_row_cursor, json_page, page
from lms.api.problems import ApiProblem, init_problems
from lms.api.representations import completion_item, enrollment_item
from lms.archives.models import Archive, ArchiveFile, ViewingProgress
from lms.attendance.models import Attendance
from lms.audit.names import register_detail_name
from lms.common.database import begin_write
from lms.common.errors import DomainError
from lms.common.public import public_blueprint
from lms.common.signals import access_denied
from lms.common.timeutil import TOKYO, fiscal_year_bounds, fiscal_year_of
from lms.common.web import allow_inline_styles
from lms.completion.certificates import verification_base
from lms.completion.models import Completion
from lms.courses.models import DRAFT, Category, Course, CourseEligibility, TrainingSession
from lms.enrollment.models import Enrollment
from lms.extensions import csrf, db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember
from lms.roster.services import normalise_text, upsert_staff_entry

blp = Blueprint("api_v1", __name__, url_prefix="/api/v1", description="Manabi API v1")

_PROBLEMS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
             422: "Unprocessable Content", 429: "Too Many Requests"}


def _documented(view):
    """The problems every view may answer, as application/problem+json in the document, and
    the operation's id (the view's name: what a generated client calls it)."""
    view = blp.doc(operationId=view.__name__)(view)
    for status, description in _PROBLEMS.items():
        view = blp.alt_response(status, schema=schemas.Problem, description=description,
                                content_type="application/problem+json")(view)
    return view


def _scope(caller: Caller, column):
    return true() if caller.is_platform else column == caller.municipality_id


def _missing(caller: Caller, target_type: str, target_id: object):
    access_denied.send(caller.actor, target_type=target_type, target_id=target_id)
    return ApiProblem(404, "not-found", _("見つかりません"), _("指定されたリソースはありません。"))


def _codes() -> dict[int, str]:
    return {row.id: row.code for row in db.session.execute(select(Municipality.id, Municipality.code))}


# ---------------------------------------------------------------- municipalities


@blp.route("/municipalities", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Municipality, "MunicipalityPage"))
@requires(READ)
def municipalities():
    """The municipalities (区市町村) and the prefecture: public facts, the same for every client."""
    rows = db.session.scalars(select(Municipality).where(Municipality.active.is_(True)).order_by(Municipality.sort_order,
                                                                                               Municipality.code))
    return {"items": [{"id": m.id, "code": m.code, "name": m.name, "kana": m.kana, "kind": m.kind} for m in rows],
            "next": None}


# ---------------------------------------------------------------- courses and sessions


def _visible_courses(caller: Caller):
    condition = Course.status != DRAFT
    if caller.is_platform:
        return condition
    eligible = exists().where(CourseEligibility.course_id == Course.id,
                              CourseEligibility.municipality_id == caller.municipality_id)
    return condition & or_(Course.eligible_all.is_(True), eligible)


def _session_window(args: dict) -> list:
    conditions = []
    if args.get("fiscal_year"):
        start, end = fiscal_year_bounds(args["fiscal_year"])
        conditions += [TrainingSession.starts_at >= start, TrainingSession.starts_at < end]
    if args.get("from_"):
        conditions.append(TrainingSession.starts_at >= datetime.combine(args["from_"], time(), TOKYO))
    if args.get("to"):
        conditions.append(TrainingSession.starts_at < datetime.combine(args["to"] + timedelta(days=1), time(), TOKYO))
    return conditions


@blp.route("/courses", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Course, "CoursePage"))
@requires(READ)
@blp.arguments(schemas.CourseArgs, location="query", as_kwargs=True)
def courses(**args):
    """研修: the published (and cancelled) courses open to the caller's municipality."""
    caller = current_caller()
    query = select(Course, Category.name).outerjoin(Category, Category.id == Course.category_id).where(
        _visible_courses(caller))
    if args.get("category"):
        query = query.where(Course.category_id == args["category"])
    window = _session_window(args)
    if window:
        query = query.where(exists().where(TrainingSession.course_id == Course.id, *window))

    def item(course: Course, category: str | None) -> dict:
        return {"id": course.id, "title": course.title, "summary": course.summary, "category_id": course.category_id,
                "category": category, "status": course.status, "requires_approval": course.requires_approval,
                "published_at": course.published_at, "updated_at": course.updated_at}

    return page(query, Course, args, item)


@blp.route("/sessions", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Session, "SessionPage"))
@requires(READ)
@blp.arguments(schemas.CourseArgs, location="query", as_kwargs=True)
def sessions(**args):
    """研修回: the sessions of the courses the caller sees."""
    caller = current_caller()
    query = select(TrainingSession).join(Course, Course.id == TrainingSession.course_id).where(
        _visible_courses(caller), *_session_window(args))
    if args.get("category"):
        query = query.where(Course.category_id == args["category"])

    def item(s: TrainingSession) -> dict:
        return {"id": s.id, "course_id": s.course_id, "title": s.title, "starts_at": s.starts_at, "ends_at": s.ends_at,
                "fiscal_year": fiscal_year_of(s.starts_at), "delivery": s.delivery, "location": s.location,
                "capacity": s.capacity, "status": s.status, "updated_at": s.updated_at}

    return page(query, TrainingSession, args, item)


# ---------------------------------------------------------------- the roster


def _staff_item(codes: dict[int, str]):
    def item(m: StaffMember) -> dict:
        return {"id": m.id, "municipality_code": codes.get(m.municipality_id, ""), "employee_number": m.employee_number,
                "full_name": m.full_name, "full_name_kana": m.full_name_kana, "department": m.department,
                "job_title": m.job_title, "job_grade": m.job_grade, "sign_in_name": m.sign_in_name, "email": m.email, "status": m.status,
                "hired_on": m.hired_on, "left_on": m.left_on, "updated_at": m.updated_at}

    return item


@blp.route("/staff", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Staff, "StaffPage"))
@requires(READ)
@blp.arguments(schemas.StaffArgs, location="query", as_kwargs=True)
def staff(**args):
    """職員名簿: the caller's municipality's roster (``updated_since`` for incremental sync)."""
    caller = current_caller()
    query = select(StaffMember).where(_scope(caller, StaffMember.municipality_id))
    return page(query, StaffMember, args, _staff_item(_codes()))


def _target_municipality(caller: Caller, code: str | None, employee_number: str) -> int:
    """The municipality a roster call is about: the caller's own; the platform client names one."""
    if not caller.is_platform:
        if code and db.session.scalar(select(Municipality.id).where(Municipality.code == code)) != caller.municipality_id:
            raise _missing(caller, "staff_member", employee_number)
        assert caller.municipality_id is not None
        return caller.municipality_id
    if not code:
        raise ApiProblem(422, "invalid-input", _("入力内容が正しくありません"),
                         _("プラットフォームのクライアントは municipality_code で団体を指定してください。"),
                         errors={"municipality_code": [_("団体コードを指定してください。")]})
    municipality_id = db.session.scalar(select(Municipality.id).where(Municipality.code == code))
    if municipality_id is None:
        unknown = _("団体コード %(code)s の団体はありません。", code=code)
        raise ApiProblem(422, "invalid-input", _("入力内容が正しくありません"), unknown,
                         errors={"municipality_code": [unknown]})
    return municipality_id


def _require_json() -> None:
    """A write's body must be JSON: anything else is 415, before its fields are read (a text
    body would otherwise be refused for the fields it seems to lack)."""
    if not request.is_json:
        raise ApiProblem(415, "unsupported-media-type", _("JSON を送ってください"),
                         _("Content-Type: application/json で送ってください。"))


def _json_body(view):
    """A view whose body is JSON: ``_require_json`` first; its 415 in the document."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        _require_json()
        return view(*args, **kwargs)

    return blp.alt_response(415, schema=schemas.Problem, description="Unsupported Media Type (not JSON)",
                            content_type="application/problem+json")(wrapped)


_EMPLOYEE_NUMBER = "/staff/<string(maxlength=20):employee_number>"


@blp.route(_EMPLOYEE_NUMBER, methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.Staff)
@requires(READ)
@blp.arguments(schemas.StaffLookupArgs, location="query", as_kwargs=True)
def staff_member(employee_number: str, municipality_code: str | None = None):
    """One roster entry by 職員番号."""
    caller = current_caller()
    municipality_id = _target_municipality(caller, municipality_code, employee_number)
    member = db.session.scalar(select(StaffMember).where(StaffMember.municipality_id == municipality_id,
                                                         StaffMember.employee_number == normalise_text(employee_number)))
    if member is None:
        raise _missing(caller, "staff_member", employee_number)
    return _staff_item(_codes())(member)


@blp.route(_EMPLOYEE_NUMBER, methods=["PUT"])
@_documented
@blp.response(200, schemas.UpsertResult, description="updated (or unchanged)")
@blp.alt_response(201, schema=schemas.UpsertResult, description="added")
@requires(ROSTER_WRITE)
@_json_body
@blp.arguments(schemas.StaffInput, as_kwargs=True)
def put_staff_member(employee_number: str, **body):
    """Add or update one roster entry by 職員番号, as a row of the roster CSV import: a changed
    所属/職名 is a transfer (人事異動), ``left_on`` a departure; audited with the client's id."""
    caller = current_caller()
    municipality_id = _target_municipality(caller, body.pop("municipality_code", None), employee_number)
    for attempt in (1, 2):
        begin_write()
        try:
            result, member = upsert_staff_entry(municipality_id, {**body, "employee_number": employee_number},
                                                caller.actor, **caller.audit_details)
            db.session.commit()
            break
        except DomainError as exc:
            db.session.rollback()
            raise ApiProblem(422, "invalid-input", _("入力内容が正しくありません"), exc.message) from exc
        except IntegrityError:
            # The same new entry was added a moment ago by another request (a client's retry):
            # run again, and this one finds it (PUT is idempotent).
            db.session.rollback()
            if attempt == 2:
                raise
    payload = {"outcome": result.outcome, "message": result.message, "staff": _staff_item(_codes())(member)}
    return payload, 201 if result.outcome == "added" else 200


# ---------------------------------------------------------------- the bulk roster feed


def _feed(caller: Caller) -> tuple[int, str, array]:
    """The request's feed, checked as a whole (each entry is checked by the job): its
    municipality, the text as received and where each entry's text starts and ends in it."""
    shape = ApiProblem(422, "invalid-input", _("入力内容が正しくありません"),
                       _("本文は entries（と municipality_code）だけを持つオブジェクトにしてください。"))
    try:
        text = request.get_data(cache=False).decode("utf-8")
        if text.lstrip()[:1] != "{":
            raise shape
        bounds, data = array("q"), {}
        for key, value, start, end in feed_json.spans(text):  # entry by entry: never one big list
            if key == feed_json.ENTRY:
                bounds.extend((start, end))
            else:
                data[key] = value
    except ValueError:  # (UnicodeDecodeError and json.JSONDecodeError are ValueErrors)
        raise ApiProblem(400, "bad-request", _("JSON として読めません"),
                         _("リクエストの本文が JSON として読めません。")) from None
    count = len(bounds) // 2
    if set(data) - {"municipality_code"}:  # ("entries" here: not an array)
        raise shape
    if not 1 <= count <= roster_jobs.MAX_ENTRIES:
        raise ApiProblem(422, "invalid-input", _("入力内容が正しくありません"),
                         _("entries は1件以上%(n)s件以下の配列にしてください。", n=f"{roster_jobs.MAX_ENTRIES:,}"),
                         errors={"entries": [_("1件以上%(n)s件以下の配列にしてください。",
                                               n=f"{roster_jobs.MAX_ENTRIES:,}")]})
    code = data.get("municipality_code")
    if code is not None and (not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code)):
        raise ApiProblem(422, "invalid-input", _("入力内容が正しくありません"), _("団体コードは6桁の数字です。"),
                         errors={"municipality_code": [_("団体コードは6桁の数字です。")]})
    return _target_municipality(caller, code, "bulk"), text, bounds


def _job_item(job: RosterJob) -> dict:
    code = db.session.scalar(select(Municipality.code).where(Municipality.id == job.municipality_id)) or ""
    return {"id": job.id, "status": job.status, "municipality_code": code, "total": job.total,
            "processed": job.processed, "counts": roster_jobs.job_counts(job), "error": job.error,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
            "results": url_for("api_v1.roster_job_results", job_id=job.id, _external=True)}


# 1–255 visible ASCII characters (no quote, no backslash), bare or as a structured-field string.
_KEY_PATTERN = r'^("[!#-\[\]-~]{1,255}"|[!#-\[\]-~]{1,255})$'


def _idempotency_key() -> str | None:
    """The request's ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header: a
    structured-field string; a bare token is taken too), or None when it has none."""
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    if re.fullmatch(_KEY_PATTERN, value.strip()) is None:
        raise ApiProblem(400, "invalid-idempotency-key", _("Idempotency-Key が正しくありません"),
                         _("Idempotency-Key は1〜255文字の英数字と記号にしてください（UUID を勧めます）。"))
    return value.strip().strip('"')


def _accepted(job: RosterJob, replayed: bool = False):
    headers = {"Location": url_for("api_v1.roster_job", job_id=job.id, _external=True)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return _job_item(job), 202, headers


def _earlier_job(caller: Caller, key: str, digest: str) -> RosterJob | None:
    """The job this key made before, when the feed is the same; a different feed is refused."""
    job = roster_jobs.job_of_key(caller.client_id, key)
    if job is not None and job.request_digest != digest:
        raise ApiProblem(422, "idempotency-key-reused", _("Idempotency-Key がすでに使われています"),
                         _("この Idempotency-Key は別の内容の送信（ジョブ %(id)s）に使われました。"
                           "新しい送信には新しいキーを使ってください。", id=job.id))
    return job


@blp.route("/staff/bulk", methods=["POST"])
@_documented
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": schemas.StaffBulkInput}}},
         parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                      "description": "a key of the client's choosing (a UUID) that names this feed: sent again "
                                     "with the same feed, the request is answered with the job the first made "
                                     "(and Idempotent-Replayed: true); with another feed, 422",
                      "schema": {"type": "string", "pattern": _KEY_PATTERN}}])
@blp.response(202, schemas.RosterJob, description="accepted: the job, also at the URL in Location")
@requires(ROSTER_WRITE)
@_json_body
def post_staff_bulk():
    """A bulk roster feed: up to 50,000 entries, each as ``PUT /staff/{職員番号}`` takes it,
    processed by the worker as a job. Answered at once (202) with the job; poll it, or take
    the ``roster.job_finished`` webhook. A refused entry does not stop the others. A feed sent
    again with the same ``Idempotency-Key`` (a retry after a timeout) makes no second job."""
    caller = current_caller()
    key = _idempotency_key()
    municipality_id, text, bounds = _feed(caller)
    digest = roster_jobs.feed_digest(municipality_id, text) if key else None  # once: a feed is up to 50,000 entries
    for attempt in (1, 2):
        begin_write()
        earlier = _earlier_job(caller, key, digest) if key and digest else None
        if earlier is not None:
            db.session.rollback()
            return _accepted(earlier, replayed=True)
        try:
            job = roster_jobs.accept_feed(caller, municipality_id, text, bounds, idempotency_key=key,
                                          request_digest=digest)
            db.session.commit()
            return _accepted(job)
        except IntegrityError:
            # The same key's first request committed while this one was writing: answer with its job.
            db.session.rollback()
            if attempt == 2 or key is None:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _visible_job(caller: Caller, job_id: int) -> RosterJob:
    job = db.session.get(RosterJob, job_id)
    if job is None or not (caller.is_platform or job.municipality_id == caller.municipality_id):
        raise _missing(caller, "api_roster_job", job_id)
    return job


@blp.route("/roster-jobs/<int:job_id>", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.RosterJob)
@requires(ROSTER_WRITE)
def roster_job(job_id: int):
    """A bulk feed's progress and counts by outcome."""
    return _job_item(_visible_job(current_caller(), job_id))


@blp.route("/roster-jobs/<int:job_id>/results", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.RosterJobResult, "RosterJobResultPage"))
@requires(ROSTER_WRITE)
@blp.arguments(schemas.RosterJobResultArgs, location="query", as_kwargs=True)
def roster_job_results(job_id: int, **args):
    """Each processed entry's result, in the order sent (``outcome`` filters)."""
    job = _visible_job(current_caller(), job_id)
    query = select(RosterJobRow).where(RosterJobRow.job_id == job.id)
    if args.get("outcome"):
        query = query.where(RosterJobRow.outcome == args["outcome"])
    if args.get("cursor"):
        query = query.where(RosterJobRow.row > decode_row_cursor(args["cursor"]))
    limit = args["limit"]
    rows = db.session.scalars(query.order_by(RosterJobRow.row).limit(limit + 1)).all()
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        params = {**request.args.to_dict(), "cursor": encode_row_cursor(rows[-1].row)}
        next_url = url_for("api_v1.roster_job_results", job_id=job.id, **params, _external=True)
    response = json_page([{"row": r.row, "employee_number": r.employee_number, "outcome": r.outcome,
                           "message": roster_jobs.result_message(r)} for r in rows], next_url)
    response.vary.add("Accept-Language")  # (the messages are worded for the reader)
    return response


# ---------------------------------------------------------------- enrollments and completions


@blp.route("/enrollments", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Enrollment, "EnrollmentPage"))
@requires(READ)
@blp.arguments(schemas.EnrollmentArgs, location="query", as_kwargs=True)
def enrollments(**args):
    """受講申込: the enrollments of the caller's municipality's staff."""
    caller = current_caller()
    query = (select(*_ENROLLMENT_COLUMNS, StaffMember.employee_number, TrainingSession.course_id)
             .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
             .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
             .where(_scope(caller, Enrollment.municipality_id)))
    if args.get("fiscal_year"):
        start, end = fiscal_year_bounds(args["fiscal_year"])
        query = query.where(TrainingSession.starts_at >= start, TrainingSession.starts_at < end)
    if args.get("session_id"):
        query = query.where(Enrollment.session_id == args["session_id"])
    if args.get("employee_number"):
        query = query.where(StaffMember.employee_number == args["employee_number"])
    codes = _codes()
    return page(query, Enrollment, args,
                lambda r: enrollment_item(r, r.employee_number, r.course_id, codes.get(r.municipality_id, "")),
                flat=True)


_ENROLLMENT_COLUMNS = (Enrollment.id, Enrollment.session_id, Enrollment.municipality_id, Enrollment.status,
                       Enrollment.requested_at, Enrollment.confirmed_at, Enrollment.cancelled_at, Enrollment.updated_at)


def _enrollment_item(codes: dict[int, str]):
    def item(e: Enrollment, employee_number: str, course_id: int) -> dict:
        return enrollment_item(e, employee_number, course_id, codes.get(e.municipality_id, ""))

    return item


@blp.route("/enrollments/<int:enrollment_id>", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.Enrollment)
@requires(READ)
def enrollment(enrollment_id: int):
    """One enrollment."""
    caller = current_caller()
    row = db.session.execute(
        select(Enrollment, StaffMember.employee_number, TrainingSession.course_id)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(Enrollment.id == enrollment_id)).first()
    if row is None or not (caller.is_platform or row[0].municipality_id == caller.municipality_id):
        raise _missing(caller, "enrollment", enrollment_id)
    return _enrollment_item(_codes())(*row)


@blp.route("/completions", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Completion, "CompletionPage"))
@requires(READ)
@blp.arguments(schemas.CompletionArgs, location="query", as_kwargs=True)
def completions(**args):
    """修了: the completions of the caller's municipality's staff, with the certificate's public
    verification URL."""
    caller = current_caller()
    query = (select(Completion.id, Completion.course_id, Completion.session_id, Completion.municipality_id,
                    Completion.fiscal_year, Completion.status, Completion.method, Completion.completed_at,
                    Completion.revoked_at, Completion.certificate_serial, Completion.updated_at,
                    StaffMember.employee_number)
             .join(StaffMember, StaffMember.id == Completion.staff_member_id)
             .where(_scope(caller, Completion.municipality_id)))
    if args.get("fiscal_year"):
        query = query.where(Completion.fiscal_year == args["fiscal_year"])
    codes = _codes()
    verify_base = verification_base()

    def item(c) -> dict:
        return completion_item(c, c.employee_number, codes.get(c.municipality_id, ""), verify_base)

    return page(query, Completion, args, item, flat=True)


# ---------------------------------------------------------------- attendance and viewing


@blp.route("/attendance", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Attendance, "AttendancePage"))
@requires(READ)
@blp.arguments(schemas.AttendanceArgs, location="query", as_kwargs=True)
def attendance(**args):
    """出席: each staff member's attendance at each session, as Manabi counts it (the time
    attended, its share of the session, and the verdict by the course's rule)."""
    caller = current_caller()
    query = (select(Attendance.id, Attendance.session_id, Attendance.source, Attendance.attended_seconds,
                    Attendance.attended_pct, Attendance.attended, Attendance.checked_in_at, Attendance.updated_at,
                    TrainingSession.course_id, StaffMember.employee_number, StaffMember.municipality_id)
             .join(StaffMember, StaffMember.id == Attendance.staff_member_id)
             .join(TrainingSession, TrainingSession.id == Attendance.session_id)
             .where(_scope(caller, StaffMember.municipality_id)))
    if args.get("fiscal_year"):
        start, end = fiscal_year_bounds(args["fiscal_year"])
        query = query.where(TrainingSession.starts_at >= start, TrainingSession.starts_at < end)
    if args.get("session_id"):
        query = query.where(Attendance.session_id == args["session_id"])
    if args.get("employee_number"):
        query = query.where(StaffMember.employee_number == args["employee_number"])
    codes = _codes()

    def item(r) -> dict:
        return {"id": r.id, "session_id": r.session_id, "course_id": r.course_id, "employee_number": r.employee_number,
                "municipality_code": codes.get(r.municipality_id, ""), "source": r.source,
                "attended_seconds": r.attended_seconds, "attended_pct": r.attended_pct, "attended": r.attended,
                "checked_in_at": r.checked_in_at, "updated_at": r.updated_at}

    return page(query, Attendance, args, item, flat=True)


@blp.route("/viewing", methods=["GET"])
@conditional
@_documented
@blp.response(200, schemas.page_of(schemas.Viewing, "ViewingPage"))
@requires(READ)
@blp.arguments(schemas.ViewingArgs, location="query", as_kwargs=True)
def viewing(**args):
    """視聴: each staff member's viewing of each recorded archive's video (unique seconds
    watched, the video's length, when it counted as complete)."""
    caller = current_caller()
    query = (select(ViewingProgress.id, ViewingProgress.watched_seconds, ViewingProgress.completed_at,
                    ViewingProgress.updated_at, ArchiveFile.archive_id, ArchiveFile.duration_seconds, Archive.course_id,
                    StaffMember.employee_number, StaffMember.municipality_id)
             .join(StaffMember, StaffMember.id == ViewingProgress.staff_member_id)
             .join(ArchiveFile, ArchiveFile.id == ViewingProgress.archive_file_id)
             .join(Archive, Archive.id == ArchiveFile.archive_id)
             .where(_scope(caller, StaffMember.municipality_id)))
    if args.get("course_id"):
        query = query.where(Archive.course_id == args["course_id"])
    if args.get("employee_number"):
        query = query.where(StaffMember.employee_number == args["employee_number"])
    codes = _codes()

    def item(r) -> dict:
        return {"id": r.id, "archive_id": r.archive_id, "course_id": r.course_id, "employee_number": r.employee_number,
                "municipality_code": codes.get(r.municipality_id, ""), "watched_seconds": r.watched_seconds,
                "duration_seconds": r.duration_seconds, "completed_at": r.completed_at, "updated_at": r.updated_at}

    return page(query, ViewingProgress, args, item, flat=True)


# ---------------------------------------------------------------- the app


def init_api(app: Flask) -> None:
    """Mount API v1 and its OpenAPI document on ``app`` (a plain Flask app: ``Api(app)``)."""
    api = Api(app, spec_kwargs={
        "info": {"description": "Manabi (学び) integration API: see docs/api.md."},
        "servers": [{"url": "/"}],
    })
    api.spec.components.security_scheme("entra", {
        "type": "oauth2",
        "description": "Microsoft Entra app-only access token (client credentials) with the app roles "
                       "Manabi.Api.Read and, for roster writes, Manabi.Api.RosterWrite.",
        "flows": {"clientCredentials": {"tokenUrl": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
                                        "scopes": {}}},
    })
    api.spec.options["security"] = SECURITY
    api.register_blueprint(blp)
    # No cookies: a bearer token authenticates each call, so the writing views need no CSRF
    # token (each exempted by name, as tests/security/test_web_security.py lists them).
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{blp.name}.") and rule.methods and rule.methods & {"POST", "PUT", "PATCH", "DELETE"}:
            csrf.exempt(app.view_functions[rule.endpoint])
    # The API and its document need no signed-in browser: each view checks its token itself.
    public_blueprint(app, blp.name)
    public_blueprint(app, "api-docs")
    # RapiDoc (/api/v1/docs) styles the elements it renders inline; its scripts are ours.
    allow_inline_styles(app, "api-docs.openapi_rapidoc")
    init_problems(app)
    register_detail_name("api_client_id", _client_name)


def _client_name(client_id: int) -> str | None:
    """An API client's name, for the audit log's readable details."""
    client = db.session.get(ApiClient, client_id)  # (the session's identity map: one query per client in an export)
    return client.name if client else None
