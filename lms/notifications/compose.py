"""Composing notification mails (Japanese first) with an .ics calendar attachment.

Every enrollment notice says where the person stands, when and where the session takes
place (Asia/Tokyo), the cancellation deadline and the way to マイページ. Kinds that put the
session in (or take it out of) the person's calendar carry an RFC 5545 ``.ics``:
METHOD:REQUEST for confirmed/promoted/changed/reminder, METHOD:CANCEL for
cancelled/rejected (only for a place that had been confirmed: nobody else was sent an
invitation to take back), with one stable UID per session and staff member and SEQUENCE = the
session's revision plus the member's earlier places in it (``calendar_sequence``), so a
calendar client updates the same entry — an invitation after a cancellation included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from flask import current_app, has_app_context, has_request_context
from flask_babel import force_locale, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from lms.common.i18n import brand_name, portal_name
from lms.common.links import app_url, base_url
from lms.common.templating import format_datetime_jst, format_period_jst
from lms.common.timeutil import TOKYO, as_utc, to_tokyo, utcnow
from lms.courses.models import DELIVERY_LABELS, TEAMS
from lms.enrollment.approvals import awaited, received_message
from lms.enrollment.models import CONFIRMED
from lms.enrollment.queries import earlier_places, replaced_name, swapped_for, waitlist_position

REQUEST_KINDS = ("confirmed", "promoted", "changed", "reminder")
# The subject of a place given by a swap (差し替え): its notice is the kind of the place it
# passes on (confirmed, waitlisted, pending), told as a nomination in someone's place.
SWAPPED_IN = "swapped_in"
SWAP_KINDS = ("confirmed", "waitlisted", "pending")
CANCEL_KINDS = ("cancelled", "rejected")


@dataclass(frozen=True)
class ComposedMail:
    subject: str
    body: str
    ics: str  # "" when the kind carries no calendar entry

    def __iter__(self):  # (subject, body, ics) unpacking, as callers did before
        return iter((self.subject, self.body, self.ics))


def _setting(name: str, default: str) -> str:
    if has_app_context():
        return current_app.config.get(name) or default
    return default


def my_page_url() -> str:
    return app_url("enrollment.my_page", "/me")


def format_when(value) -> str:
    """A date and time in the mail's language (Tokyo time): the pages' own format."""
    return format_datetime_jst(value)


def session_period(starts_at, ends_at) -> str:
    return format_period_jst(starts_at, ends_at)


def session_place_lines(delivery: str, location: str | None, join_url: str | None, *, link: bool = True,
                        later: bool = False) -> list[str]:
    """The 「■ 場所」 lines; ``link=False`` (a place cancelled or refused): Teams without its
    join link, nothing to join; ``later`` (a place not decided yet: waiting, or awaiting
    approval): the link comes with the confirmation, not before (a seat nobody gave them)."""
    lines = []
    if delivery in ("onsite", "hybrid") and location:
        lines.append(_("会場：%(place)s", place=location))
    if delivery in ("teams", "hybrid"):
        if not link:
            lines.append(str(DELIVERY_LABELS[TEAMS]))
        elif later:
            lines.append(_("Teams 会議への参加リンク：受講が確定したときにお知らせします"))
        elif join_url:
            lines.append(_("Teams 会議への参加リンク：%(url)s", url=join_url))
        else:
            lines.append(_("Teams 会議への参加リンク：開催前にマイページでお知らせします"))
    if not lines:
        lines.append(_("会場：追ってお知らせします"))
    return lines


_SUBJECT_TITLES = {
    "confirmed": _l("受講が確定しました"),
    "waitlisted": _l("キャンセル待ちに登録しました"),
    "pending": _l("受講申込を受け付けました（承認待ち）"),
    "promoted": _l("キャンセル待ちから受講確定になりました"),
    "rejected": _l("受講申込が承認されませんでした"),
    "returned": _l("受講申込が差し戻されました"),
    "changed": _l("研修の内容が変更されました"),
    "cancelled": _l("受講申込が取り消されました"),
    "reminder": _l("明日は研修の受講日です"),
    SWAPPED_IN: _l("差し替えにより受講者に指名されました"),
}


def _subject_title(kind: str) -> str:
    title = _SUBJECT_TITLES.get(kind)
    return str(title) if title is not None else kind  # translated now, for this kind only


def _swapped_in(kind: str, enrollment) -> bool:
    """The notice of a place passed on by a swap (差し替え): the person did not apply for it."""
    return kind in SWAP_KINDS and getattr(enrollment, "source", None) == "swap"


def _swap_lead(kind: str, enrollment, position: int | None) -> list[str]:
    name = replaced_name(enrollment)
    lines = [_("%(name)s さんに代わって、次の研修の受講者に指名されました（差し替え）。", name=name) if name
             else _("差し替えにより、次の研修の受講者に指名されました。")]
    if kind == "confirmed":
        lines.append(_("受講が確定しています。当日は開始時刻までにご参加ください。"))
    elif kind == "waitlisted":
        if position:
            lines.append(_("現在のキャンセル待ち順位：%(position)s 番目", position=position))
        lines.append(_("受講できることになった場合は、改めてメールでお知らせします。"))
    else:
        lines.append(_("%(step)sの結果は、改めてメールでお知らせします。",
                       step=awaited(getattr(enrollment, "approval_step", None))))
    return lines


def _lead(kind: str, enrollment, *, position: int | None, changes: dict | None) -> list[str]:
    if _swapped_in(kind, enrollment):
        return _swap_lead(kind, enrollment, position)
    if kind == "confirmed":
        return [_("次の研修の受講が確定しました。当日は開始時刻までにご参加ください。")]
    if kind == "waitlisted":
        lines = [_("空いている席がないため、キャンセル待ちに登録しました。")]
        if position:
            lines.append(_("現在のキャンセル待ち順位：%(position)s 番目", position=position))
        lines.append(_("受講できることになった場合は、改めてメールでお知らせします。"))
        return lines
    if kind == "pending":
        return [received_message(getattr(enrollment, "approval_step", None)),
                _("承認の結果は、改めてメールでお知らせします。")]
    if kind == "returned":
        lines = [_("次の研修への受講申込が、修正のために差し戻されました。")]
        if enrollment.reason:
            lines.append(_("理由：%(reason)s", reason=enrollment.reason))
        lines.append(_("マイページで内容を確かめ、補足を書いて申し込み直すか、申込を取り消してください。"))
        return lines
    if kind == "promoted":
        return [_("席が空いたため、キャンセル待ちから受講確定になりました。")]
    if kind == "rejected":
        lines = [_("次の研修への受講申込は承認されませんでした。")]
        if enrollment.reason:
            lines.append(_("理由：%(reason)s", reason=enrollment.reason))
        return lines
    if kind == "changed":
        lines = [_("受講予定の研修の内容が変更されました。変更後の内容をご確認ください。")]
        for label in describe_changes(changes, link=not _undecided(kind, enrollment)):
            lines.append("・" + label)
        return lines
    if kind == "cancelled":
        lines = [_("差し替えにより、次の研修の受講者が別の職員に変わりました。あなたの受講申込は取り消されました。")
                 if swapped_for(enrollment) else _("次の研修への受講申込が取り消されました。")]
        if enrollment.reason:
            lines.append(_("理由：%(reason)s", reason=enrollment.reason))
        if getattr(enrollment.session, "status", "") == "cancelled":
            lines.append(_("この研修回は中止になりました。"))
        return lines
    if kind == "reminder":
        return [_("明日、次の研修の受講日です。開始時刻までにご参加ください。")]
    return []


CHANGE_LABELS = {
    "starts_at": _l("開始日時"),
    "ends_at": _l("終了日時"),
    "location": _l("会場"),
    "join_url": _l("Teams 会議の参加リンク"),
    "delivery": _l("実施方法"),
    "cancel_deadline": _l("キャンセル期限"),
    "title": _l("研修回の名称"),
}


def _delivery_label(delivery) -> str:
    return str(DELIVERY_LABELS.get(delivery, delivery or ""))


def describe_changes(changes: dict | None, *, link: bool = True) -> list[str]:
    """Human lines for a ``{field: (old, new)}`` mapping (unknown fields are skipped);
    ``link=False``: a new join link is said to have changed, not given (a place not decided)."""
    lines = []
    for field, value in (changes or {}).items():
        if field not in CHANGE_LABELS:
            continue
        label = str(CHANGE_LABELS[field])
        if field == "join_url" and not link:
            lines.append(_("%(label)s：変更しました（受講が確定したときにお知らせします）", label=label))
            continue
        old, new = value if isinstance(value, list | tuple) and len(value) == 2 else (None, value)
        if hasattr(new, "hour"):
            new_text = format_when(new)
            old_text = format_when(old) if hasattr(old, "hour") else ""
        elif field == "delivery":
            new_text, old_text = _delivery_label(new), _delivery_label(old)
        else:
            new_text, old_text = str(new or ""), str(old or "")
        if old_text and not new_text:  # a value taken away (a join link when held at a venue only)
            new_text = _("（なし）")
        if old_text:
            lines.append(_("%(label)s：%(old)s → %(new)s", label=label, old=old_text, new=new_text))
        else:
            lines.append(_("%(label)s：%(new)s", label=label, new=new_text))
    return lines


def compose_enrollment_notice(
    enrollment, kind: str, *, position: int | None = None, changes: dict | None = None
) -> ComposedMail:
    """Subject, plain-text body and .ics (or "") of the ``kind`` notice for ``enrollment``."""
    if kind == "waitlisted" and position is None and enrollment.id is not None:
        position = waitlist_position(enrollment)
    return _in_reader_language(enrollment.staff_member,
                               lambda: _compose(enrollment, kind, position=position, changes=changes))


def _in_reader_language(member, compose: Callable[[], ComposedMail]) -> ComposedMail:
    """``compose()`` in the language of ``member``'s user (Japanese when none is chosen)."""
    locale = getattr(getattr(member, "user", None), "locale", None) or "ja"
    if has_request_context() and str(get_locale()) == locale:
        # Already in that language: force_locale would reload the catalogue from disk.
        return compose()
    with force_locale(locale):
        return compose()


def _compose(enrollment, kind, *, position, changes) -> ComposedMail:
    session = enrollment.session
    course = session.course
    member = enrollment.staff_member
    session_name = f"{course.title} {session.title}".strip()
    locale = str(get_locale() or "ja")
    lines = [_("%(name)s 様", name=member.full_name), ""]
    lines += _lead(kind, enrollment, position=position, changes=changes)
    # Everything after the lead is the same for every enrollee of the session: composed
    # once per language, kind and content (an enrollment rush sends hundreds of them).
    calendar = kind in REQUEST_KINDS or (kind in CANCEL_KINDS and was_invited(enrollment))
    tail = _body_tail(locale, kind, session_name, session.starts_at, session.ends_at, session.delivery,
                      session.location, session.meeting_link, session.cancel_deadline, my_page_url(), calendar,
                      _undecided(kind, enrollment))
    ics = session_ics(session, member, kind, sequence=calendar_sequence(enrollment)) if calendar else ""
    subject = _subject(locale, SWAPPED_IN if _swapped_in(kind, enrollment) else kind, session_name)
    return ComposedMail(subject=subject, body="\n".join(lines) + "\n" + tail, ics=ics)


def compose_series_cancellation(enrollments) -> ComposedMail:
    """One "cancelled" notice for a learner's places in a 連続講座 that went together
    (``enrollments``: its days and make-ups, in date order): the reason, each day and make-up
    with its date and time, and a calendar cancellation (.ics) for each."""
    return _in_reader_language(enrollments[0].staff_member, lambda: _compose_series_cancellation(enrollments))


def _compose_series_cancellation(enrollments) -> ComposedMail:
    lead = enrollments[0]
    member = lead.staff_member
    course = lead.session.course
    locale = str(get_locale() or "ja")
    lines = [_("%(name)s 様", name=member.full_name), "",
             _("次の連続講座の受講が取り消されました。取り消された日程（%(count)s 回）は次のとおりです。",
               count=len(enrollments))]
    if lead.reason:
        lines.append(_("理由：%(reason)s", reason=lead.reason))
    lines += ["", _("■ 研修"), course.title, "", _("■ 取り消された日程")]
    for enrollment in enrollments:
        session = enrollment.session
        title = session.title or course.title
        when = session_period(session.starts_at, session.ends_at)
        if session.status == "cancelled":
            lines.append(_("・%(session)s：%(when)s（この回は中止になりました）", session=title, when=when))
        else:
            lines.append(_("・%(session)s：%(when)s", session=title, when=when))
    lines += ["", _("■ マイページ（申込状況の確認・取消）"), my_page_url()]
    invited = [enrollment for enrollment in enrollments if was_invited(enrollment)]
    if invited:
        lines += ["", _("添付の予定表ファイル（.ics）で、カレンダーの予定を取り消すことができます。")]
    lines += ["", "--", portal_name(), _("このメールは送信専用のアドレスから自動で送信しています。返信はできません。")]
    # One calendar per day (an iTIP message cancels one event): attached one by one (lms.notifications.mail).
    ics = "".join(session_ics(enrollment.session, member, "cancelled", sequence=calendar_sequence(enrollment))
                  for enrollment in invited)
    return ComposedMail(subject=_subject(locale, "cancelled", course.title), body="\n".join(lines) + "\n", ics=ics)


def calendars(ics: str) -> list[str]:
    """The calendars of a mail's ``ics`` (a series' cancellation carries one per day)."""
    marker = "BEGIN:VCALENDAR"
    return [marker + part for part in ics.split(marker)[1:]] if ics else []


@lru_cache(maxsize=512)
def _subject(locale: str, kind: str, session_name: str) -> str:
    """(``locale`` is the language in force: part of the key, not read.)"""
    return _("【%(brand)s】%(title)s：%(session)s", brand=brand_name(), title=_subject_title(kind), session=session_name)


def _undecided(kind: str, enrollment) -> bool:
    """A place still waiting for a seat or an approval (its mail gives no join link yet)."""
    return kind not in CANCEL_KINDS and kind not in ("confirmed", "promoted", "reminder") \
        and enrollment.status != CONFIRMED


@lru_cache(maxsize=512)
def _body_tail(locale, kind, session_name, starts_at, ends_at, delivery, location, join_url, cancel_deadline,
               my_page, calendar: bool = True, undecided: bool = False) -> str:
    """The body after its lead (``locale``, the language in force, is part of the key);
    ``calendar``: a calendar file is attached (and the body says what it is for);
    ``undecided``: a place waiting for a seat or an approval (no join link yet)."""
    lines = ["", _("■ 研修"), session_name, "", _("■ 日時"), session_period(starts_at, ends_at)]
    # (a place cancelled or refused: no join link, there is nothing to join)
    lines += ["", _("■ 場所")] + session_place_lines(delivery, location, join_url, link=kind not in CANCEL_KINDS,
                                                    later=undecided)
    if kind not in ("cancelled", "rejected") and cancel_deadline:
        lines += ["", _("■ キャンセル期限"), format_when(cancel_deadline)]
        lines.append(_("期限を過ぎてからの取消は、遅刻・欠席扱いとなる場合があります。"))
    lines += ["", _("■ マイページ（申込状況の確認・取消）"), my_page]
    if calendar and kind in REQUEST_KINDS:
        lines += ["", _("添付の予定表ファイル（.ics）をカレンダーに取り込むことができます。")]
    elif calendar and kind in CANCEL_KINDS:
        lines += ["", _("添付の予定表ファイル（.ics）で、カレンダーの予定を取り消すことができます。")]
    lines += [
        "",
        "--",
        portal_name(),
        _("このメールは送信専用のアドレスから自動で送信しています。返信はできません。"),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- .ics


def was_invited(enrollment) -> bool:
    """Whether the place was ever confirmed: only then was the learner sent an invitation (a
    request waiting for approval, a waitlisted place and a refused one had none)."""
    return enrollment.confirmed_at is not None


def calendar_sequence(enrollment) -> int:
    """SEQUENCE of the learner's entry for the session: the session's revision (a change of
    time or place), plus their earlier places in it — an invitation after a cancellation is a
    newer version of the same entry (UID), which a calendar client would otherwise ignore."""
    return int(enrollment.session.revision or 0) + earlier_places(enrollment)


def event_uid(session, member) -> str:
    """Stable per session and staff member: every later notice updates the same entry."""
    host = base_url().split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "manabi"
    if member is None:
        return f"manabi-session-{session.id}@{host}"
    return f"manabi-session-{session.id}-staff-{member.id}@{host}"


@lru_cache(maxsize=64)
def _tokyo_vtimezone(year: int) -> Timezone:
    """Asia/Tokyo as a VTIMEZONE valid from 1 January of ``year`` (Japan has had no
    daylight saving time since 1951: one STANDARD component at +0900).

    Building one from zoneinfo takes over 10 ms (50 ms the first time), and parsing one back
    a good part of a millisecond; every calendar mail needs one. Keyed by year, the few
    there are are built once per process (``warm_up`` builds this year's and next year's
    when the app starts)."""
    parsed = Timezone.from_ical(Timezone.from_tzinfo(TOKYO, first_date=date(year, 1, 1)).to_ical())
    assert isinstance(parsed, Timezone)  # from_ical is typed as returning a Component
    return parsed


def warm_up() -> None:
    """Build what the first calendar mails of a new process would otherwise wait for."""
    this_year = to_tokyo(utcnow()).year
    for year in (this_year, this_year + 1):
        _tokyo_vtimezone(year)


def session_ics(session, member, kind: str = "confirmed", *, download: bool = False, tentative: bool = False,
                sequence: int | None = None) -> str:
    """An RFC 5545 calendar with one VEVENT for ``member`` (or nobody: the trainer's copy).

    The session's part of the calendar (time zone, times, title, place, organizer) is the
    same in every enrollee's mail: it is serialised once per content and kept; each mail
    adds its own UID, DTSTAMP and ATTENDEE, serialised by icalendar too.

    ``download``: the file a person saves from the site (METHOD:PUBLISH, no attendee): a
    calendar adds it as an event of its own instead of treating it as an invitation to answer.
    The organiser is the course's organiser mailbox, else the configured one.

    ``tentative``: a place not yet decided (awaiting approval, on the waitlist): the event is
    TENTATIVE and carries no Teams join link (given only with a confirmed place).
    A cancellation (and the file of a cancelled session) carries none either: nothing to join.

    ``sequence``: the entry's SEQUENCE (``calendar_sequence``; by default the session's revision)."""
    method = "PUBLISH" if download else "CANCEL" if kind in CANCEL_KINDS else "REQUEST"
    cancelled = method == "CANCEL" or session.status == "cancelled"
    course = session.course
    shared = _shared_calendar(
        str(get_locale() or "ja"),
        method,
        as_utc(session.starts_at),
        as_utc(session.ends_at),
        f"{course.title} {session.title}".strip(),
        course.summary or "",
        session.delivery,
        session.location or "",
        "" if tentative or cancelled else session.meeting_link,  # (nothing to join)
        my_page_url(),
        organizer_address(course),
        _setting("LMS_ISSUER_NAME", "Manabi"),
        "CANCELLED" if cancelled else "TENTATIVE" if tentative
        else "CONFIRMED",
    )
    own = Event()
    own.add("uid", event_uid(session, member))
    own.add("sequence", int(session.revision or 0) if sequence is None else sequence)
    own.add("dtstamp", as_utc(utcnow()))
    address = (member.email or member.sign_in_name or "").strip() if member is not None else ""
    if address and not download:
        attendee = vCalAddress(f"mailto:{address}")
        attendee.params["cn"] = vText(member.full_name)
        attendee.params["role"] = vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = vText("ACCEPTED" if method == "REQUEST" else "DECLINED")
        attendee.params["rsvp"] = vText("FALSE")
        own.add("attendee", attendee)
    # The event's own properties, folded and escaped by icalendar, between its BEGIN and END.
    lines = own.to_ical().decode("utf-8")
    lines = lines[len("BEGIN:VEVENT\r\n"):-len("END:VEVENT\r\n")]
    return shared.replace("BEGIN:VEVENT\r\n", "BEGIN:VEVENT\r\n" + lines, 1)


def organizer_address(course) -> str:
    """The session organiser's address: the course's organiser mailbox (who holds the Teams
    meeting), else GRAPH_ORGANIZER, else MAIL_FROM."""
    return (course.organizer_mailbox or _setting("GRAPH_ORGANIZER", "") or _setting("MAIL_FROM", "")
            or "manabi@example.lg.jp")


@lru_cache(maxsize=512)
def _shared_calendar(locale, method, starts_at, ends_at, summary, course_summary, delivery, location,
                     join_url, my_page, mail_from, organizer_name, status) -> str:
    """The session's texts in the language in force (``locale``, part of the key), then
    its calendar."""
    description = [course_summary]
    if status == "TENTATIVE":
        description.append(_("受講はまだ確定していません（承認待ち・キャンセル待ち）。確定したら参加方法をお知らせします。"))
    if join_url:
        description.append(_("Teams 会議への参加リンク：%(url)s", url=join_url))
    description.append(_("マイページ：%(url)s", url=my_page))
    if delivery in ("onsite", "hybrid") and location:
        place = location
    elif join_url:
        place = _("Microsoft Teams 会議")
    else:
        place = ""
    return _session_calendar(method, starts_at, ends_at, summary,
                             "\n".join(line for line in description if line), place, join_url, mail_from,
                             organizer_name, status)


@lru_cache(maxsize=512)
def _session_calendar(method, starts_at, ends_at, summary, description, location, url, mail_from,
                      organizer_name, status) -> str:
    """The calendar of a session without the enrollee's own properties (see session_ics)."""
    cal = Calendar()
    cal.add("prodid", "-//Manabi//Training portal//JA")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    start, end = to_tokyo(starts_at), to_tokyo(ends_at)
    cal.add_component(_tokyo_vtimezone(start.year))
    event = Event()  # (its SEQUENCE is the enrollee's own: see session_ics)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", description)
    if location:
        event.add("location", location)
    if url:
        event.add("url", url)
    organizer = vCalAddress(f"mailto:{mail_from}")
    organizer.params["cn"] = vText(organizer_name)
    event.add("organizer", organizer)
    event.add("status", status)
    event.add("transp", "OPAQUE")
    cal.add_component(event)
    return cal.to_ical().decode("utf-8")


# ---------------------------------------------------------------- approval requests to the 所属長 and the training office


def approvals_url(step: str = "office") -> str:
    if step == "supervisor":
        return app_url("enrollment.supervisor_approvals", "/approvals")
    return app_url("enrollment.admin_home", "/municipal")


def compose_approval_request(enrollment, recipient_name: str, locale: str | None, step: str = "office") -> ComposedMail:
    """Subject and body of "an enrollment awaits your approval" for its 所属長 or training office."""
    with force_locale(locale or "ja"):
        session = enrollment.session
        member = enrollment.staff_member
        session_name = f"{session.course.title} {session.title}".strip()
        department = f"（{member.department}）" if getattr(member, "department", "") else ""
        subject = _("【%(brand)s】承認依頼：%(session)s", brand=brand_name(), session=session_name)
        lines = [
            _("%(name)s 様", name=recipient_name) if recipient_name else _("研修担当 各位"),
            "",
            _("%(learner)s さん%(department)sから次の研修への受講申込があり、承認を待っています。",
              learner=member.full_name, department=department),
            "",
            _("研修：%(session)s", session=session_name),
            _("日時：%(when)s", when=format_when(session.starts_at)),
            "",
            (_("承認・却下は所属長の承認画面から行えます：%(url)s", url=approvals_url(step)) if step == "supervisor"
             else _("承認・却下は研修担当の画面から行えます：%(url)s", url=approvals_url(step))),
            "",
            "-- ",
            portal_name(),
        ]
        return ComposedMail(subject=subject, body="\n".join(lines) + "\n", ics="")


def compose_approver_digest(recipient_name: str, locale: str | None, items: list[dict], *, overdue_days: int,
                            shown: int = 30) -> ComposedMail:
    """An approver's daily digest: requests waiting for their approval, oldest first, with the way
    to the page where they answer them (the training office's, or the 所属長's 承認 page).
    ``items``: learner, session, requested_at, waited (working days), new (not told before) and
    step ("office", the default, or "supervisor": the page that answers it). Someone who answers
    both steps (a 所属長 who is also in the training office) gets them in two parts."""
    with force_locale(locale or "ja"):
        new = sum(1 for item in items if item["new"])
        overdue = sum(1 for item in items if item["waited"] >= overdue_days)
        subject = ngettext("【%(brand)s】承認待ちの申込 %(count)s 件", "【%(brand)s】承認待ちの申込 %(count)s 件", len(items),
                           brand=brand_name(), count=len(items))
        lines = [_("%(name)s 様", name=recipient_name) if recipient_name else _("研修担当 各位"), "",
                 ngettext("承認を待っている受講申込が %(count)s 件あります。", "承認を待っている受講申込が %(count)s 件あります。",
                          len(items), count=len(items))]
        if new:
            lines.append(_("うち %(count)s 件は、まだお知らせしていない新しい申込です。", count=new))
        if overdue:
            lines.append(_("うち %(count)s 件は、申込から %(days)s 開庁日以上たっています。", count=overdue,
                           days=overdue_days))
        parts = [(step, [item for item in items if item.get("step", "office") == step])
                 for step in ("supervisor", "office")]
        parts = [(step, part) for step, part in parts if part]
        links = []
        for step, part in parts:
            lines.append("")
            if len(parts) > 1:
                lines.append("■ " + (_("所属長の承認待ち") if step == "supervisor" else _("研修担当の承認待ち")))
            for item in part[:shown]:
                marks = []
                if item["new"]:
                    marks.append(_("新着"))
                if item["waited"] >= overdue_days:
                    marks.append(_("%(days)s 開庁日経過", days=item["waited"]))
                mark = f"［{'・'.join(marks)}］" if marks else ""
                lines.append(_("・%(mark)s%(learner)s さん「%(session)s」（申込 %(when)s）", mark=mark,
                               learner=item["learner"], session=item["session"], when=format_when(item["requested_at"])))
            if len(part) > shown:
                lines.append(_("ほか %(count)s 件", count=len(part) - shown))
            links.append(_("承認・却下は所属長の承認画面から行えます：%(url)s", url=approvals_url(step))
                         if step == "supervisor"
                         else _("承認・却下は研修担当の画面から行えます：%(url)s", url=approvals_url(step)))
        lines += ["", *links, "", "-- ", portal_name()]
        return ComposedMail(subject=subject, body="\n".join(lines) + "\n", ics="")


def compose_activity_reminder(activity, closes_at, recipient_name: str, locale: str | None) -> ComposedMail:
    """A required activity (事前課題, アンケート, 確認テスト, 受講報告) closes soon and is not done."""
    with force_locale(locale or "ja"):
        course = activity.course
        subject = _("【%(brand)s】期限が近づいています：%(title)s", brand=brand_name(), title=activity.title)
        lines = [
            _("%(name)s 様", name=recipient_name), "",
            _("研修「%(course)s」の「%(title)s」の締切が近づいています。修了に必要です。", course=course.title,
              title=activity.title),
            "", _("■ 締切"), format_when(closes_at),
            "", _("■ 回答・提出"), app_url("activities.answer", f"/activities/{activity.id}", activity_id=activity.id),
            "", "--", portal_name(),
            _("このメールは送信専用のアドレスから自動で送信しています。返信はできません。"),
        ]
        return ComposedMail(subject=subject, body="\n".join(lines) + "\n", ics="")


def compose_report_returned(submission, comment: str, recipient_name: str, locale: str | None) -> ComposedMail:
    """A 受講報告 returned to its writer (差し戻し): why, and where to rewrite it."""
    with force_locale(locale or "ja"):
        activity = submission.activity
        subject = _("【%(brand)s】受講報告が差し戻されました：%(course)s「%(title)s」", brand=brand_name(),
                    course=activity.course.title, title=activity.title)
        lines = [
            _("%(name)s 様", name=recipient_name), "",
            _("研修「%(course)s」の「%(title)s」が研修担当から差し戻されました。書き直して、もう一度提出してください。",
              course=activity.course.title, title=activity.title),
            "", _("■ 研修担当からのコメント"), comment,
            "", _("■ 書き直し・提出"), app_url("activities.answer", f"/activities/{activity.id}", activity_id=activity.id),
            "", "--", portal_name(),
            _("このメールは送信専用のアドレスから自動で送信しています。返信はできません。"),
        ]
        return ComposedMail(subject=subject, body="\n".join(lines) + "\n", ics="")


def compose_moved_notice(enrollment, recipient_name: str, locale: str | None) -> ComposedMail:
    """"The request no longer waits for you": its learner moved to another 所属 (人事異動)."""
    with force_locale(locale or "ja"):
        session = enrollment.session
        member = enrollment.staff_member
        session_name = f"{session.course.title} {session.title}".strip()
        subject = _("【%(brand)s】承認依頼の移動：%(session)s", brand=brand_name(), session=session_name)
        lines = [
            _("%(name)s 様", name=recipient_name), "",
            _("%(learner)s さんが %(department)s に異動したため、次の研修への申込の承認は異動先の所属長（所属長がいないときは研修担当）に移りました。あなたの操作は不要です。",
              learner=member.full_name, department=member.department),
            "", _("研修：%(session)s", session=session_name), "", "-- ", portal_name(),
        ]
        return ComposedMail(subject=subject, body="\n".join(lines) + "\n", ics="")
