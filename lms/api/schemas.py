"""The API's request and response shapes (marshmallow): the OpenAPI document is built from them.

The messages of a refused input (the ``errors`` of a 422 problem) are Japanese, English for a
client that prefers it (Accept-Language, lms.common.i18n): every schema derives from
:class:`Schema`, whose fields take the messages below, and the validators are made by
:func:`length`, :func:`in_range`, :func:`one_of` and :func:`pattern` with theirs. They are lazy,
read in the request's language when the input is refused.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import marshmallow as ma
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from lms.common.ids import MAX_ID
from lms.common.said import braced, said
from lms.common.timeutil import FIRST_YEAR, LAST_YEAR
from lms.roster.services import normalise_text

# What a field answers when the value is not of its type ("invalid"): the first class it is an instance of.
_INVALID = (
    (fields.DateTime, _l("日時（RFC 3339、時差つき。例: 2026-04-01T09:00:00+09:00）で指定してください。")),
    (fields.Date, _l("日付（YYYY-MM-DD）で指定してください。")),
    (fields.Integer, _l("整数で指定してください。")),
    (fields.Boolean, _l("true または false で指定してください。")),
    (fields.List, _l("配列で指定してください。")),
    (fields.Mapping, _l("オブジェクトで指定してください。")),
    (fields.String, _l("文字列で指定してください。")),
)
# The other field messages, by marshmallow's key (a key the field does not have is left alone).
_FIELD_MESSAGES = {
    "required": _l("必須の項目です。"),
    "null": _l("null は指定できません。"),
    "validator_failed": _l("値が正しくありません。"),
    "too_large": _l("数が大きすぎます。"),
    "format": _l("値の形式が正しくありません。"),
    "invalid_awareness": _l("時差（タイムゾーン）つきの日時で指定してください。"),
    "invalid_utf8": _l("UTF-8 の文字列で指定してください。"),
    "type": _l("オブジェクトで指定してください。"),  # (Nested)
}


def _localize(field: fields.Field) -> None:
    messages = {key: text for key, text in _FIELD_MESSAGES.items() if key in field.error_messages}
    if "invalid" in field.error_messages:
        messages["invalid"] = next((text for kind, text in _INVALID if isinstance(field, kind)),
                                   _l("値の形式が正しくありません。"))
    field.error_messages = {**field.error_messages, **messages}
    if isinstance(field, fields.List):  # (its items are not bound to the schema)
        _localize(field.inner)


class Schema(ma.Schema):
    """The API's schemas: their refusals in the request's language."""

    error_messages = {"unknown": _l("この項目は受け付けません。"), "type": _l("オブジェクトで指定してください。")}

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        _localize(field_obj)


class _Length(validate.Length):
    """marshmallow's Length, its refusal keeping its message id (a bulk feed's results are
    worded for each reader: lms.common.said)."""

    def __call__(self, value):
        try:
            return super().__call__(value)
        except ma.ValidationError:
            raise ma.ValidationError(braced(self.error, min=self.min, max=self.max)) from None


class _Range(validate.Range):
    """marshmallow's Range, its refusal keeping its message id (as ``_Length``)."""

    def __call__(self, value):
        try:
            return super().__call__(value)
        except ma.ValidationError:
            raise ma.ValidationError(braced(self.error, min=self.min, max=self.max)) from None


def length(min: int | None = None, max: int | None = None, *, items: bool = False) -> validate.Length:
    """A length in characters (in entries with ``items``), with a message in the request's language."""
    if items:
        error = _l("{min}件以上{max}件以下で指定してください。")
    elif min is None:
        error = _l("{max}文字以内で指定してください。")
    elif max is None:
        error = _l("{min}文字以上で指定してください。")
    else:
        error = _l("{min}文字以上{max}文字以内で指定してください。")
    return _Length(min=min, max=max, error=error)


def in_range(min, max) -> validate.Range:
    """A number, date or time from ``min`` to ``max`` (both included)."""
    return _Range(min=min, max=max, error=_l("{min} から {max} までの値で指定してください。"))


def one_of(choices: list[str]) -> validate.OneOf:
    return validate.OneOf(choices, error=_l("次のいずれかで指定してください: {choices}"))


def pattern(regex: str, error) -> validate.Regexp:
    return validate.Regexp(regex, error=error)


MUNICIPALITY_CODE = pattern(r"^[0-9]{6}$", _l("全国地方公共団体コード（6桁の数字）で指定してください。"))

# Dates and times from a caller: the years Manabi's dates fall in (lms.common.timeutil).
DATE_RANGE = in_range(date(FIRST_YEAR, 1, 1), date(LAST_YEAR, 12, 31))
TIME_RANGE = in_range(datetime(FIRST_YEAR, 1, 1, tzinfo=UTC), datetime(LAST_YEAR, 12, 31, tzinfo=UTC))

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

Id = fields.Integer(validate=in_range(1, MAX_ID))


def no_nul(value: str) -> None:
    """PostgreSQL text cannot hold NUL (U+0000); no field has a use for one."""
    if "\x00" in value:
        raise ma.ValidationError(said("NUL 文字（U+0000）は使えません。"))


class Problem(Schema):
    """RFC 9457 problem details (application/problem+json)."""

    type = fields.String(required=True, metadata={"description": "URN naming the problem (urn:manabi:problem:…)"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String(metadata={"description": "the request's path"})
    request_id = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "refused input: field → messages (422)"})


class EmployeeNumberFilter(fields.String):
    """A 職員番号 to filter by, normalised as the roster stores one (NFKC: ＱＡ００７ is QA007)."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        return super().deserialize(normalise_text(value) if isinstance(value, str) else value, attr, data, **kwargs)


class PageArgs(Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=in_range(min=1, max=MAX_LIMIT))
    cursor = fields.String(validate=length(max=200),
                           metadata={"description": "the opaque cursor of the previous page's `next` link"})


class SyncArgs(PageArgs):
    updated_since = fields.AwareDateTime(
        default_timezone=None, validate=TIME_RANGE, metadata={"description": "only rows changed at or after this time (RFC 3339, with offset)"})


class CourseArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=in_range(min=2000, max=2100),
                                 metadata={"description": "年度: with a session starting in it (April–March)"})
    category = fields.Integer(validate=in_range(min=1, max=MAX_ID), metadata={"description": "category id"})
    from_ = fields.Date(data_key="from", validate=DATE_RANGE, metadata={"description": "with a session starting on or after (Tokyo)"})
    to = fields.Date(validate=DATE_RANGE, metadata={"description": "with a session starting on or before (Tokyo); "
                                                                     "not before from"})

    @ma.validates_schema
    def _an_ordered_window(self, data: dict, **kwargs) -> None:
        """A window ending before it starts names nothing: refused, as the audit log's filter refuses it."""
        if data.get("from_") and data.get("to") and data["to"] < data["from_"]:
            raise ma.ValidationError({"to": [_("終了日は開始日以降の日付を指定してください。")]})


class StaffArgs(SyncArgs):
    pass


class EnrollmentArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=in_range(min=2000, max=2100))
    session_id = fields.Integer(validate=in_range(min=1, max=MAX_ID))
    employee_number = EmployeeNumberFilter(validate=length(min=1, max=20))


class AttendanceArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=in_range(min=2000, max=2100),
                                 metadata={"description": "年度 of the session (April–March)"})
    session_id = fields.Integer(validate=in_range(min=1, max=MAX_ID))
    employee_number = EmployeeNumberFilter(validate=length(min=1, max=20))


class ViewingArgs(SyncArgs):
    course_id = fields.Integer(validate=in_range(min=1, max=MAX_ID))
    employee_number = EmployeeNumberFilter(validate=length(min=1, max=20))


class CompletionArgs(SyncArgs):
    fiscal_year = fields.Integer(validate=in_range(min=2000, max=2100))


class RosterJobResultArgs(PageArgs):
    outcome = fields.String(validate=one_of(["added", "updated", "unchanged", "transferred", "returned", "left",
                                                     "refused"]), metadata={"description": "only this outcome"})


class StaffLookupArgs(Schema):
    municipality_code = fields.String(validate=MUNICIPALITY_CODE,
                                      metadata={"description": "the platform client names the municipality"})


class Municipality(Schema):
    id = fields.Integer()
    code = fields.String(metadata={"description": "全国地方公共団体コード (6 digits)"})
    name = fields.String()
    kana = fields.String()
    kind = fields.String()


class Course(Schema):
    id = fields.Integer()
    title = fields.String()
    summary = fields.String()
    category_id = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    status = fields.String()
    requires_approval = fields.Boolean()
    published_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class Session(Schema):
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


class Staff(Schema):
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


class StaffInput(Schema):
    """A roster entry as a row of the roster CSV (the same checks and normalisation). The fields
    of the columns a CSV may leave out (KEPT_WHEN_ABSENT: メール, 採用日, 職層) have no default:
    left out, the stored value stays; sent empty (``""`` or ``null``), it is cleared, as an empty
    cell clears it."""

    full_name = fields.String(required=True, validate=[length(min=1, max=100), no_nul])
    full_name_kana = fields.String(load_default="", validate=[length(max=200), no_nul])
    department = fields.String(load_default="", validate=[length(max=200), no_nul])
    job_title = fields.String(load_default="", validate=[length(max=100), no_nul])
    job_grade = fields.String(allow_none=True, validate=[length(max=50), no_nul],
                              metadata={"description": "職層; left out, the stored value stays"})
    sign_in_name = fields.String(load_default="", validate=[length(max=320), no_nul])
    email = fields.String(allow_none=True, validate=[length(max=320), no_nul],
                          metadata={"description": "left out, the stored value stays"})
    hired_on = fields.Date(allow_none=True, validate=DATE_RANGE,
                           metadata={"description": "採用日; left out, the stored value stays; null clears it"})
    left_on = fields.Date(allow_none=True, validate=DATE_RANGE,
                          metadata={"description": "records a departure (退職・転出) on this date (not before "
                                                   "hired_on; an entry already left is not changed with it); "
                                                   "null cannot cancel a scheduled one"})
    municipality_code = fields.String(validate=[MUNICIPALITY_CODE, no_nul],
                                      metadata={"description": "required of the platform client"})


class StaffBulkEntry(StaffInput):
    """One entry of a bulk feed: a roster entry with its 職員番号."""

    class Meta:
        exclude = ("municipality_code",)

    employee_number = fields.String(required=True, validate=[length(min=1, max=20), no_nul],
                                    metadata={"description": "職員番号"})


class StaffBulkInput(Schema):
    entries = fields.List(fields.Nested(StaffBulkEntry), required=True,
                          validate=length(min=1, max=50_000, items=True),
                          metadata={"description": "1 to 50,000 entries; each checked on its own (a refused "
                                                   "entry does not stop the others)"})
    municipality_code = fields.String(validate=MUNICIPALITY_CODE,
                                      metadata={"description": "required of the platform client"})


class RosterJob(Schema):
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


class RosterJobResult(Schema):
    row = fields.Integer(metadata={"description": "the entry's position in the request, from 1"})
    employee_number = fields.String()
    outcome = fields.String(metadata={"description": "added, updated, unchanged, transferred, returned, left or refused"})
    message = fields.String(metadata={"description": "in the language of this request's Accept-Language"})


class UpsertResult(Schema):
    outcome = fields.String(metadata={"description": "added, updated, unchanged, transferred, returned or left"})
    message = fields.String()
    staff = fields.Nested(Staff)


class Enrollment(Schema):
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


class Completion(Schema):
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


class Attendance(Schema):
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


class Viewing(Schema):
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
    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item)),
         "next": fields.String(allow_none=True, metadata={"description": "the next page's URL, null on the last"})},
        name=name,
    )
