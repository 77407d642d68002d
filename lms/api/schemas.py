"""The API's request and response shapes (marshmallow): the OpenAPI document is built from them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import marshmallow as ma
from marshmallow import fields, validate

from lms.common.ids import MAX_ID
from lms.common.timeutil import FIRST_YEAR, LAST_YEAR

# Dates and times from a caller: the years Manabi's dates fall in (lms.common.timeutil).
DATE_RANGE = validate.Range(min=date(FIRST_YEAR, 1, 1), max=date(LAST_YEAR, 12, 31))
TIME_RANGE = validate.Range(min=datetime(FIRST_YEAR, 1, 1, tzinfo=UTC), max=datetime(LAST_YEAR, 12, 31, tzinfo=UTC))

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))


def no_nul(value: str) -> None:
    """PostgreSQL text cannot hold NUL (U+0000); no field has a use for one."""
    if "\x00" in value:
        raise ma.ValidationError("NUL (U+0000) is not allowed.")


class Problem(ma.Schema):
    """RFC 9457 problem details (application/problem+json)."""

    type = fields.String(required=True, metadata={"description": "URN naming the problem (urn:manabi:problem:…)"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String(metadata={"description": "the request's path"})
    request_id = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "refused input: field → messages (422)"})


class PageArgs(ma.Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(max=200),
                           metadata={"description": "the opaque cursor of the previous page's `next` link"})


class SyncArgs(PageArgs):
    updated_since = fields.AwareDateTime(
        default_timezone=None, validate=TIME_RANGE, metadata={"description": "only rows changed at or after this time (RFC 3339, with offset)"})


class CourseArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=validate.Range(min=2000, max=2100),
                                 metadata={"description": "年度: with a session starting in it (April–March)"})
    category = fields.Integer(validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "category id"})
    from_ = fields.Date(data_key="from", validate=DATE_RANGE, metadata={"description": "with a session starting on or after (Tokyo)"})
    to = fields.Date(validate=DATE_RANGE, metadata={"description": "with a session starting on or before (Tokyo)"})


class StaffArgs(SyncArgs):
    pass


class EnrollmentArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=validate.Range(min=2000, max=2100))
    session_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    employee_number = fields.String(validate=validate.Length(min=1, max=20))


class AttendanceArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=validate.Range(min=2000, max=2100),
                                 metadata={"description": "年度 of the session (April–March)"})
    session_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    employee_number = fields.String(validate=validate.Length(min=1, max=20))


class ViewingArgs(SyncArgs):
    course_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))
    employee_number = fields.String(validate=validate.Length(min=1, max=20))


class CompletionArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=validate.Range(min=2000, max=2100))


class RosterJobResultArgs(PageArgs):
    outcome = fields.String(validate=validate.OneOf(["added", "updated", "unchanged", "transferred", "returned", "left",
                                                     "refused"]), metadata={"description": "only this outcome"})


class StaffLookupArgs(ma.Schema):
    municipality_code = fields.String(validate=validate.Regexp(r"^[0-9]{6}$"),
                                      metadata={"description": "the platform client names the municipality"})


class Municipality(ma.Schema):
    id = fields.Integer()
    code = fields.String(metadata={"description": "全国地方公共団体コード (6 digits)"})
    name = fields.String()
    kana = fields.String()
    kind = fields.String()


class Course(ma.Schema):
    id = fields.Integer()
    title = fields.String()
    summary = fields.String()
    category_id = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    status = fields.String()
    requires_approval = fields.Boolean()
    published_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class Session(ma.Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    title = fields.String()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    fiscal_year = fields.Integer()
    delivery = fields.String()
    location = fields.String()
    capacity = fields.Integer()
    status = fields.String()
    updated_at = fields.DateTime()


class Staff(ma.Schema):
    id = fields.Integer()
    municipality_code = fields.String()
    employee_number = fields.String(metadata={"description": "職員番号"})
    full_name = fields.String()
    full_name_kana = fields.String()
    department = fields.String()
    job_title = fields.String()
    job_grade = fields.String(metadata={"description": "職層 (e.g. 係長級)"})
    sign_in_name = fields.String()
    email = fields.String()
    status = fields.String(metadata={"description": "active or left"})
    hired_on = fields.Date(allow_none=True)
    left_on = fields.Date(allow_none=True)
    updated_at = fields.DateTime()


class StaffInput(ma.Schema):
    """A roster entry as a row of the roster CSV (the same checks and normalisation)."""

    full_name = fields.String(required=True, validate=[validate.Length(min=1, max=100), no_nul])
    full_name_kana = fields.String(load_default="", validate=[validate.Length(max=200), no_nul])
    department = fields.String(load_default="", validate=[validate.Length(max=200), no_nul])
    job_title = fields.String(load_default="", validate=[validate.Length(max=100), no_nul])
    job_grade = fields.String(validate=[validate.Length(max=50), no_nul],
                              metadata={"description": "職層; left out, the stored value stays"})
    sign_in_name = fields.String(load_default="", validate=[validate.Length(max=320), no_nul])
    email = fields.String(load_default="", validate=[validate.Length(max=320), no_nul])
    hired_on = fields.Date(load_default=None, allow_none=True, validate=DATE_RANGE)
    left_on = fields.Date(load_default=None, allow_none=True, validate=DATE_RANGE,
                          metadata={"description": "records a departure (退職・転出) on this date"})
    municipality_code = fields.String(validate=[validate.Regexp(r"^[0-9]{6}$"), no_nul],
                                      metadata={"description": "required of the platform client"})


class StaffBulkEntry(StaffInput):
    """One entry of a bulk feed: a roster entry with its 職員番号."""

    class Meta:
        exclude = ("municipality_code",)

    employee_number = fields.String(required=True, validate=[validate.Length(min=1, max=20), no_nul],
                                    metadata={"description": "職員番号"})


class StaffBulkInput(ma.Schema):
    entries = fields.List(fields.Nested(StaffBulkEntry), required=True,
                          validate=validate.Length(min=1, max=50_000),
                          metadata={"description": "1 to 50,000 entries; each checked on its own (a refused "
                                                   "entry does not stop the others)"})
    municipality_code = fields.String(validate=validate.Regexp(r"^[0-9]{6}$"),
                                      metadata={"description": "required of the platform client"})


class RosterJob(ma.Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "queued, running, finished or failed"})
    municipality_code = fields.String()
    total = fields.Integer(metadata={"description": "entries received"})
    processed = fields.Integer(metadata={"description": "entries processed so far"})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "outcome → entries (added, updated, unchanged, transferred, "
                                                  "returned, left, refused)"})
    error = fields.String()
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    results = fields.String(metadata={"description": "the URL of the per-entry results"})


class RosterJobResult(ma.Schema):
    row = fields.Integer(metadata={"description": "the entry's position in the request, from 1"})
    employee_number = fields.String()
    outcome = fields.String(metadata={"description": "added, updated, unchanged, transferred, returned, left or refused"})
    message = fields.String()


class UpsertResult(ma.Schema):
    outcome = fields.String(metadata={"description": "added, updated, unchanged, transferred, returned or left"})
    message = fields.String()
    staff = fields.Nested(Staff)


class Enrollment(ma.Schema):
    id = fields.Integer()
    session_id = fields.Integer()
    course_id = fields.Integer()
    employee_number = fields.String()
    municipality_code = fields.String()
    status = fields.String()
    requested_at = fields.DateTime()
    confirmed_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class Completion(ma.Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    session_id = fields.Integer(allow_none=True)
    employee_number = fields.String()
    municipality_code = fields.String()
    fiscal_year = fields.Integer()
    status = fields.String()
    method = fields.String()
    completed_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    certificate_serial = fields.String(allow_none=True)
    verification_url = fields.String(allow_none=True, metadata={"description": "the certificate's public verification page"})
    updated_at = fields.DateTime()


class Attendance(ma.Schema):
    """出席: one staff member at one session, as Manabi counts it (Teams report, roll call or QR)."""

    id = fields.Integer()
    session_id = fields.Integer()
    course_id = fields.Integer()
    employee_number = fields.String()
    municipality_code = fields.String()
    source = fields.String(metadata={"description": "teams (the meeting's attendance report), roll_call or qr"})
    attended_seconds = fields.Integer(metadata={"description": "time in the session, in seconds"})
    attended_pct = fields.Integer(metadata={"description": "share of the session's scheduled time, 0–100"})
    attended = fields.Boolean(metadata={"description": "present by the course's rule"})
    checked_in_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class Viewing(ma.Schema):
    """視聴: one staff member's viewing of one recorded archive's video (unique seconds)."""

    id = fields.Integer()
    archive_id = fields.Integer()
    course_id = fields.Integer()
    employee_number = fields.String()
    municipality_code = fields.String()
    watched_seconds = fields.Integer(metadata={"description": "unique seconds watched"})
    duration_seconds = fields.Integer(allow_none=True, metadata={"description": "the video's length (null: not measured yet)"})
    completed_at = fields.DateTime(allow_none=True, metadata={"description": "when the viewing counted as complete"})
    updated_at = fields.DateTime()


def page_of(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    return ma.Schema.from_dict(
        {"items": fields.List(fields.Nested(item)),
         "next": fields.String(allow_none=True, metadata={"description": "the next page's URL, null on the last"})},
        name=name,
    )
