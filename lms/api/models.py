"""Client applications registered for the integration API."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model


class ApiClient(Model):
    """An Entra application (its application id, the token's ``azp``/``appid``) allowed to call
    the API for one municipality, or for all of them (``municipality_id`` NULL: the platform
    client of the metropolitan government). Revoked clients stay, for the audit log."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(String(36), unique=True)
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    municipality = relationship("Municipality")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_platform(self) -> bool:
        return self.municipality_id is None

    def __repr__(self) -> str:
        return f"<ApiClient {self.application_id} {self.name}>"


# Roster job states
JOB_QUEUED = "queued"
JOB_RUNNING = "running"
JOB_FINISHED = "finished"
JOB_FAILED = "failed"


class RosterJob(Model):
    """A bulk roster feed (POST /api/v1/staff/bulk), processed by the worker in parts, each
    committed with its rows' results and the progress (a job resumes where it stopped)."""

    __tablename__ = "api_roster_job"
    # A client's Idempotency-Key names one feed: the same key again is answered with its job.
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_client.id"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))  # as the client sent it, or None
    request_digest: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the municipality and the body
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    status: Mapped[str] = mapped_column(String(10), default=JOB_QUEUED)
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    counts: Mapped[str] = mapped_column(Text, default="{}")  # JSON: outcome → rows
    effective_on: Mapped[date] = mapped_column(Date)
    # The language the client asked for (Accept-Language): the stored text of the entries'
    # results (``RosterJobRow.message``) is worded in it; a reader gets them in their own.
    language: Mapped[str] = mapped_column(String(5), default="ja", server_default="ja")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Renewed with every part; a running job silent for long is taken over (its worker died).
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    municipality = relationship("Municipality")


class RosterJobPart(Model):
    """A part of a job's feed until the job has finished: up to ``roster_jobs.PART`` entries as
    one JSON array (UTF-8), each entry's text as the request sent it. The worker reads one part
    at a time, so its memory does not grow with the feed."""

    __tablename__ = "api_roster_job_part"

    job_id: Mapped[int] = mapped_column(ForeignKey("api_roster_job.id", ondelete="CASCADE"), primary_key=True)
    part: Mapped[int] = mapped_column(primary_key=True)  # from 0; its first entry is row part × PART + 1
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class RosterJobRow(Model):
    """One entry's result (rows counted from 1, in the order sent)."""

    __tablename__ = "api_roster_job_row"

    job_id: Mapped[int] = mapped_column(ForeignKey("api_roster_job.id", ondelete="CASCADE"), primary_key=True)
    row: Mapped[int] = mapped_column(primary_key=True)
    employee_number: Mapped[str] = mapped_column(String(40), default="")
    outcome: Mapped[str] = mapped_column(String(20))
    # The result as worded for the feed's request (its job's ``language``): shown as it is only
    # when it has no message id (kept before results had one) or this version cannot word it.
    message: Mapped[str] = mapped_column(Text, default="")
    # The result without a language (lms.common.said): its message id and parameters, worded
    # in the language of each reader.
    message_id: Mapped[str] = mapped_column(Text, default="", server_default="")
    message_params: Mapped[dict | None] = mapped_column(JSON)
