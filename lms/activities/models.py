"""Activities of a course before and after its session: 事前課題 (pre-work), 研修アンケート
(survey), 確認テスト (quiz) and 受講報告 (report), their questions and the learners' answers.

An anonymous survey keeps two things apart: ``ActivitySubmission`` records only that a person
submitted (what completion needs), and ``AnonymousAnswer`` holds the answers with nothing that
names or orders them (a random key, the day only), so no page, export or query can join an
answer to a person.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# Kinds of activity
PREWORK, SURVEY, QUIZ, REPORT = "prework", "survey", "quiz", "report"
KINDS = (PREWORK, SURVEY, QUIZ, REPORT)

# What the window's ends are counted from: the learner's session's start or end.
START, END = "start", "end"

# Kinds of question (a "section" is a heading between questions, not answered).
SINGLE, MULTIPLE, SCALE, NUMBER, DATE, TEXT, LONGTEXT, FILE, SECTION = (
    "single", "multiple", "scale", "number", "date", "text", "longtext", "file", "section")
QUESTION_KINDS = (SINGLE, MULTIPLE, SCALE, NUMBER, DATE, TEXT, LONGTEXT, FILE, SECTION)
# The activities whose questions may ask for a file (a survey's answers may be anonymous, a
# quiz's are scored).
FILE_ACTIVITY_KINDS = (PREWORK, REPORT)
# The questions a quiz can score.
SCORED = (SINGLE, MULTIPLE, NUMBER)

# A submission's life: a draft, submitted; a report is then confirmed (確認済) or returned
# (差し戻し) to its writer, who submits it again.
DRAFT, SUBMITTED, CONFIRMED, RETURNED = "draft", "submitted", "confirmed", "returned"


class Activity(Model):
    __tablename__ = "activity"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    instructions_md: Mapped[str] = mapped_column(Text, default="")
    # Required for completion (修了): submitted, passed (quiz) or confirmed (report).
    required: Mapped[bool] = mapped_column(default=True)
    # A survey whose answers are kept apart from who gave them.
    anonymous: Mapped[bool] = mapped_column(default=False)
    # Learners see it once published; its questions then change only where no answer is lost.
    published: Mapped[bool] = mapped_column(default=False)
    # Since when it has been a requirement of completion (published and required; None while it
    # is not one). It counts for a learner whose window (below) was still open then (one closed
    # before, they never saw) and whose completion was not granted before it (a certificate
    # issued stands on what was asked then).
    required_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The window, in hours from the learner's session's start or end (negative: before).
    opens_anchor: Mapped[str] = mapped_column(String(5), default=START)
    opens_offset_hours: Mapped[int] = mapped_column(default=-24 * 30)
    closes_anchor: Mapped[str] = mapped_column(String(5), default=END)
    closes_offset_hours: Mapped[int] = mapped_column(default=24 * 7)
    # Submissions after the close are accepted and marked late (else refused).
    allow_late: Mapped[bool] = mapped_column(default=False)
    # Quiz: the pass mark (% of points), attempts, a time limit kept by the server, the
    # questions' and choices' order shuffled, and whether the review shows the right answers.
    pass_pct: Mapped[int] = mapped_column(default=60)
    max_attempts: Mapped[int] = mapped_column(default=2)
    time_limit_minutes: Mapped[int | None] = mapped_column()
    shuffle: Mapped[bool] = mapped_column(default=False)
    show_answers: Mapped[bool] = mapped_column(default=True)
    # Quiz: each attempt asks this many of its questions, drawn at random (None: all of them).
    draw_count: Mapped[int | None] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    course = relationship("Course")
    questions = relationship("ActivityQuestion", order_by="ActivityQuestion.position, ActivityQuestion.id",
                             cascade="all, delete-orphan", back_populates="activity")


# A scale question's labels when the trainer gives none. Stored as these Japanese words,
# whatever the language of the page the question was written on, and shown in the reader's
# language (``ActivityQuestion.shown_choices``): a survey built on an English page is answered
# on Japanese ones too.
SCALE_LABELS_DEFAULT = (_l("不満"), _l("やや不満"), _l("どちらともいえない"), _l("おおむね満足"), _l("満足"))


def default_scale_labels() -> list[str]:
    """The default labels as stored (the Japanese words)."""
    with force_locale("ja"):
        return [str(label) for label in SCALE_LABELS_DEFAULT]


def is_default_scale(labels) -> bool:
    """Whether a scale's stored labels are the default ones: the Japanese words, or their
    English (as questions written on an English page stored them before)."""
    labels = list(labels or [])
    if len(labels) != len(SCALE_LABELS_DEFAULT):
        return False
    if labels == default_scale_labels():
        return True
    with force_locale("en"):
        return labels == [str(label) for label in SCALE_LABELS_DEFAULT]


def shown_choices(kind: str, choices) -> list[str]:
    """A question's choices as a reader sees them: a scale's default labels in the reader's language."""
    if kind == SCALE and is_default_scale(choices):
        return [str(label) for label in SCALE_LABELS_DEFAULT]
    return list(choices or [])


class ActivityQuestion(Model):
    __tablename__ = "activity_question"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(10))
    prompt: Mapped[str] = mapped_column(Text)
    help_text: Mapped[str] = mapped_column(Text, default="")
    required: Mapped[bool] = mapped_column(default=True)
    # Choices (single, multiple) or the scale's five labels (1 → 5).
    choices: Mapped[list] = mapped_column(JSON, default=list)
    # Quiz: the right choices' indexes (single, multiple) or the right number.
    correct: Mapped[list] = mapped_column(JSON, default=list)
    max_length: Mapped[int | None] = mapped_column()
    points: Mapped[int] = mapped_column(default=1)

    activity = relationship("Activity", back_populates="questions")

    @property
    def shown_choices(self) -> list[str]:
        """The choices as a reader sees them: a scale's default labels in the reader's language."""
        return shown_choices(self.kind, self.choices)


class ActivitySubmission(Model):
    """One learner's work on one activity for their session (for a quiz: one attempt)."""

    __tablename__ = "activity_submission"
    __table_args__ = (
        # (named: the convention's name would pass PostgreSQL's 63 characters)
        UniqueConstraint("activity_id", "staff_member_id", "session_id", "attempt", name="uq_activity_submission_attempt"),
        Index("ix_activity_submission_staff", "staff_member_id", "activity_id"),
        Index("ix_activity_submission_review", "municipality_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id", ondelete="CASCADE"))
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"))
    attempt: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    # The answers ({question id: value}); an anonymous survey's are moved out when submitted.
    answers: Mapped[dict | None] = mapped_column(JSON, default=dict)
    # Quiz: the order the questions were shown in (shuffled once per attempt).
    question_order: Mapped[list] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late: Mapped[bool] = mapped_column(default=False)
    score_pct: Mapped[int | None] = mapped_column()
    passed: Mapped[bool | None] = mapped_column()
    review_comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    activity = relationship("Activity")
    staff_member = relationship("StaffMember")
    session = relationship("TrainingSession")


class AnonymousAnswer(Model):
    """An anonymous survey's answers: no person, no time of day, no order (a random key).

    Nor an order of arrival on disk, which would line up with the submissions' (named) order:
    SQLite keeps the rows in key order (WITHOUT ROWID); PostgreSQL, which puts a row wherever
    there is room, has the table rewritten in key order every night (lms.activities.tasks)."""

    __tablename__ = "activity_anonymous_answer"
    __table_args__ = (Index("ix_activity_anonymous_answer_activity", "activity_id", "session_id"),
                      {"sqlite_with_rowid": False})

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    submitted_on: Mapped[date] = mapped_column(Date)


class ActivityFile(Model):
    """A file a learner attached to an answer (pre-work, report): stored under a generated key
    through the archives' storage; the answer holds its id, name and size."""

    __tablename__ = "activity_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("activity_submission.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("activity_question.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(String(220), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    submission = relationship("ActivitySubmission")


class BankQuestion(Model):
    """A course's question bank (問題バンク): quiz questions kept for reuse; a quiz takes a copy."""

    __tablename__ = "question_bank_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    prompt: Mapped[str] = mapped_column(Text)
    help_text: Mapped[str] = mapped_column(Text, default="")
    choices: Mapped[list] = mapped_column(JSON, default=list)
    correct: Mapped[list] = mapped_column(JSON, default=list)
    max_length: Mapped[int | None] = mapped_column()
    points: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def shown_choices(self) -> list[str]:
        """As ``ActivityQuestion.shown_choices``: a scale's default labels in the reader's language."""
        return shown_choices(self.kind, self.choices)
