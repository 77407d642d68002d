"""Reading the attendance report a Teams meeting organiser downloads (出席者レポート, .csv).

Teams writes it as UTF-16 (little endian, with a byte order mark), tab separated, in the
organiser's language. The current layout has numbered sections::

    1. Summary / 1. 概要                  key<TAB>value lines (title, start, end, …)
    2. Participants / 2. 参加者            Name, First Join, Last Leave, In-Meeting Duration,
                                          Email, Participant ID (UPN), Role
    3. In-Meeting Activities / 3. 会議中のアクティビティ
                                          Name, Join Time, Leave Time, Duration, Email, Role

An older layout is one flat table: Full Name, User Action (Joined / Left), Timestamp.
Times are the organiser's local time without a zone (read as Japan time); durations look
like "1h 2m 3s" or "1 時間 2 分 3 秒".

``parse_report`` returns one ``ReportPerson`` per participant with their intervals in UTC;
anything it cannot read raises ``ReportError`` with a message for the trainer.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from lms.common.errors import InvalidInput
from lms.common.timeutil import plausible_year

REPORT_TZ = ZoneInfo("Asia/Tokyo")
MAX_ROWS = 20000


class ReportError(InvalidInput):
    """The file is not a Teams attendance report this reader understands."""


@dataclass
class ReportPerson:
    name: str
    email: str = ""
    upn: str = ""
    role: str = ""
    seconds: int = 0  # as the report states it
    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)  # aware UTC
    # A join or leave time written in the file but not readable (an edited file): the time
    # present counts only what could be read (0 minutes, perhaps); the preview says so.
    unreadable_times: bool = False

    def key(self) -> str:
        return (self.upn or self.email).strip().lower() or "name:" + normalise_name(self.name)


@dataclass
class Report:
    title: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    layout: str = ""  # "sections" or "flat"
    people: list[ReportPerson] = field(default_factory=list)


def normalise_name(name: str) -> str:
    """NFKC, every kind of space removed, case folded: 「山田　太郎」 == 「山田太郎」."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name or "")).casefold()


def _key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or "")).casefold()


# Header aliases (compared after _key): English and Japanese, old and new wording.
COLUMNS = {
    "name": ("name", "fullname", "名前", "氏名", "フルネーム", "表示名"),
    "first_join": ("firstjoin", "最初の参加", "最初の参加時刻", "最初の参加時間"),
    "last_leave": ("lastleave", "最後の退出", "最後の退出時刻", "最後の退出時間"),
    "duration": ("in-meetingduration", "inmeetingduration", "duration", "会議中の時間", "会議の長さ", "期間",
                 "出席時間", "時間"),
    "email": ("email", "emailaddress", "メールアドレス", "メール", "電子メール"),
    "upn": ("participantid(upn)", "participantid", "upn", "参加者id(upn)", "参加者id"),
    "role": ("role", "役割"),
    "join": ("jointime", "参加時刻", "参加時間", "参加"),
    "leave": ("leavetime", "退出時刻", "退出時間", "退出"),
    "action": ("useraction", "action", "ユーザーのアクション", "ユーザーアクション", "アクション"),
    "timestamp": ("timestamp", "タイムスタンプ", "日時"),
}
SUMMARY = {
    "title": ("meetingtitle", "title", "会議のタイトル", "会議タイトル", "タイトル"),
    "start": ("starttime", "meetingstarttime", "開始時刻", "開始時間", "会議の開始時刻"),
    "end": ("endtime", "meetingendtime", "終了時刻", "終了時間", "会議の終了時刻"),
}
JOINED = {"joined", "joinedbeforemeeting", "参加済み", "参加", "参加しました", "参加済"}
LEFT = {"left", "退出済み", "退出", "退席済み", "退席", "退出しました"}

_SECTION = re.compile(r"^\s*([1-9])\s*[.．]\s*\S")
_DATE_FORMATS = (
    "%m/%d/%y %I:%M:%S %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%y %I:%M %p", "%m/%d/%Y %I:%M %p",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %I:%M:%S %p",
    "%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
)


def decode(data: bytes) -> str:
    """The report's text: UTF-16 with a BOM (as Teams writes it), UTF-8 with or without one, or
    Shift_JIS (CP932: the report opened in Excel and saved again as CSV on a Japanese Windows)."""
    if not data.strip():
        raise ReportError(_("ファイルが空です。"))
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        elif data.startswith(b"\xef\xbb\xbf"):
            text = data[3:].decode("utf-8")
        elif len(data) > 1 and data[1:2] == b"\x00" and data[0:1] != b"\x00":
            text = data.decode("utf-16-le")  # UTF-16 whose BOM was lost
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("cp932")
    except UnicodeDecodeError:
        raise ReportError(_("ファイルの文字コードを読み取れません。Teams からダウンロードした出席者レポート（.csv）をそのまま選んでください。")) from None
    if "\x00" in text or any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in text[:4096]):
        raise ReportError(_("Teams の出席者レポートではないようです。Teams からダウンロードした .csv ファイルを選んでください。"))
    return text


# The longest time anyone can have spent in one meeting (Teams ends a meeting after 30 hours):
# a longer duration in a file is unreadable, not a time to count (nor one too large for a date).
LONGEST_MEETING_SECONDS = 31 * 24 * 3600


def parse_duration(text: str) -> int:
    """Seconds of "1h 2m 3s", "1 時間 2 分 3 秒", "45m", "1:02:03"; 0 when empty, unreadable
    or longer than any meeting."""
    value = unicodedata.normalize("NFKC", text or "").strip().lower()
    if not value:
        return 0
    clock = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2})", value)
    if clock:
        h, m, s = (int(x) for x in clock.groups())
        total = h * 3600 + m * 60 + s
        return total if total <= LONGEST_MEETING_SECONDS else 0
    total, found = 0, False
    for number, unit in re.findall(r"(\d+)\s*(hours?|hrs?|h|時間|minutes?|mins?|m|分|seconds?|secs?|s|秒)", value):
        found = True
        if unit in ("h", "hr", "hrs", "hour", "hours", "時間"):
            total += int(number) * 3600
        elif unit in ("m", "min", "mins", "minute", "minutes", "分"):
            total += int(number) * 60
        else:
            total += int(number)
    return total if found and total <= LONGEST_MEETING_SECONDS else 0


def parse_time(text: str) -> datetime | None:
    """A time as Teams writes it ("12/3/26, 2:00:05 PM", "2026/12/3 14:00:05"), read as Japan time, in UTC."""
    value = unicodedata.normalize("NFKC", text or "").strip().replace(",", " ")
    value = re.sub(r"\s+", " ", value)
    if not value:
        return None
    value = value.replace("午前 ", "AM ").replace("午後 ", "PM ").replace("午前", "AM ").replace("午後", "PM ")
    am_pm = re.match(r"^(AM|PM) (.*)$", value)
    if am_pm:  # 「2026/12/3 午後 2:00:05」 → "2026/12/3 2:00:05 PM"
        value = f"{am_pm.group(2)} {am_pm.group(1)}"
    am_pm_inside = re.match(r"^(\S+) (AM|PM) (\S+)$", value)
    if am_pm_inside:
        value = f"{am_pm_inside.group(1)} {am_pm_inside.group(3)} {am_pm_inside.group(2)}"
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - naive on purpose: the organiser's local time
        except ValueError:
            continue
        return parsed.replace(tzinfo=REPORT_TZ).astimezone(UTC) if plausible_year(parsed.year) else None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if not plausible_year(parsed.year):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=REPORT_TZ)
    return parsed.astimezone(UTC)


def _rows(text: str) -> list[list[str]]:
    delimiter = "\t" if "\t" in text[:65536] else ","
    rows = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            rows.append([cell.strip() for cell in row])
            if len(rows) > MAX_ROWS:
                raise ReportError(_("行が多すぎます（%(max)s 行まで）。", max=MAX_ROWS))
    except csv.Error as exc:  # a field over the csv module's limit (128 KiB), a stray NUL
        raise ReportError(_("%(line)s 行目を読み取れませんでした。Teams の出席者レポートをそのままアップロードしてください。",
                            line=len(rows) + 1)) from exc
    return rows


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = _key(cell)
        for name, aliases in COLUMNS.items():
            if key in aliases and name not in found:
                found[name] = index
                break
    return found


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return row[index] if index is not None and index < len(row) else ""


def parse_report(data: bytes) -> Report:
    rows = _rows(decode(data))
    for index, row in enumerate(rows):
        columns = _columns(row)
        if {"name", "action", "timestamp"} <= columns.keys():
            return _parse_flat(rows[index + 1:], columns)
    report = _parse_sections(rows)
    if not report.people:
        raise ReportError(_("出席者が見つかりません。Teams の出席者レポート（「参加者」の一覧を含む .csv）を選んでください。"))
    return report


def _person(people: dict[str, ReportPerson], name: str, email: str, upn: str, role: str) -> ReportPerson:
    candidate = ReportPerson(name=name[:300], email=email[:320], upn=upn[:320], role=role[:40])
    return people.setdefault(candidate.key(), candidate)


def _parse_sections(rows: list[list[str]]) -> Report:
    report = Report(layout="sections")
    people: dict[str, ReportPerson] = {}
    from_activities: set[str] = set()
    unreadable: dict[int, set[str]] = {2: set(), 3: set()}  # section → people with a time not read
    section = 0
    columns: dict[str, int] = {}
    participants: list[tuple[ReportPerson, datetime | None, datetime | None, int]] = []
    for row in rows:
        if not any(row):
            continue
        heading = _SECTION.match(row[0])
        if heading and not any(row[1:]):
            section, columns = int(heading.group(1)), {}
            continue
        if section == 1 or (section == 0 and len([c for c in row if c]) == 2):
            key = _key(row[0])
            value = row[1] if len(row) > 1 else ""
            if key in SUMMARY["title"]:
                report.title = value[:300]
            elif key in SUMMARY["start"]:
                report.starts_at = parse_time(value)
            elif key in SUMMARY["end"]:
                report.ends_at = parse_time(value)
            continue
        if section not in (2, 3):
            continue
        if not columns:
            columns = _columns(row)
            if "name" not in columns:
                raise ReportError(_("「参加者」の見出しを読み取れません。Teams の出席者レポートを編集せずに選んでください。"))
            continue
        name = _cell(row, columns, "name")
        if not name:
            continue
        person = _person(people, name, _cell(row, columns, "email"), _cell(row, columns, "upn"), _cell(row, columns, "role"))
        times = [_cell(row, columns, name) for name in (("first_join", "last_leave") if section == 2 else ("join", "leave"))]
        first, last = (parse_time(text) for text in times)
        if (times[0] and first is None) or (times[1] and last is None):
            unreadable[section].add(person.key())
        if section == 2:
            participants.append((person, first, last, parse_duration(_cell(row, columns, "duration"))))
        else:
            joined, left = first, last
            if joined and left and left > joined:
                if person.key() not in from_activities:
                    person.intervals, person.seconds = [], 0
                    from_activities.add(person.key())
                person.intervals.append((joined, left))
                person.seconds += parse_duration(_cell(row, columns, "duration")) or int((left - joined).total_seconds())
    for person in people.values():  # (the times that were counted are the ones that matter)
        person.unreadable_times = person.key() in unreadable[3 if person.key() in from_activities else 2]
    for person, first, last, seconds in participants:
        if person.key() in from_activities:
            continue  # the join-by-join activities say more than the first and last times
        person.seconds = seconds
        if first and last and last > first:
            # One span from the first join, as long as the time stated (gaps are not known).
            end = min(last, first + timedelta(seconds=seconds)) if seconds else last
            person.intervals = [(first, end)]
    report.people = list(people.values())
    return report


def _parse_flat(rows: list[list[str]], columns: dict[str, int]) -> Report:
    """The older layout: one line per join or leave."""
    report = Report(layout="flat")
    people: dict[str, ReportPerson] = {}
    open_joins: dict[str, datetime] = {}
    last_seen: datetime | None = None
    for row in rows:
        name = _cell(row, columns, "name")
        stamp = _cell(row, columns, "timestamp")
        at = parse_time(stamp)
        if not name:
            continue
        if at is None:
            if stamp:  # (listed with 0 minutes, and the preview says why)
                _person(people, name, _cell(row, columns, "email"), _cell(row, columns, "upn"), "").unreadable_times = True
            continue
        last_seen = max(last_seen, at) if last_seen else at
        person = _person(people, name, _cell(row, columns, "email"), _cell(row, columns, "upn"), "")
        action = _key(_cell(row, columns, "action"))
        if action in JOINED:
            open_joins.setdefault(person.key(), at)
        elif action in LEFT and person.key() in open_joins:
            joined = open_joins.pop(person.key())
            if at > joined:
                person.intervals.append((joined, at))
    for key, joined in open_joins.items():  # still in the meeting when the list was saved
        if last_seen and last_seen > joined:
            people[key].intervals.append((joined, last_seen))
    for person in people.values():
        person.seconds = int(sum((b - a).total_seconds() for a, b in person.intervals))
    report.people = list(people.values())
    if not report.people:
        raise ReportError(_("出席者が見つかりません。Teams の出席者レポート（「参加者」の一覧を含む .csv）を選んでください。"))
    return report
