"""The base of Manabi's forms: Flask-WTF's, with WTForms' own messages from a cached catalogue.

Flask-WTF reads and parses WTForms' message catalogue from disk again in every request that
translates one of its messages ("Not a valid choice", …). ``Form`` asks Flask-Babel for the
catalogue instead (a translation ``Domain`` of its own, cached per language for the life of
the process), through WTForms' public hook ``Meta.get_translations``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, time
from typing import Any

import wtforms
from flask_babel import Domain
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.fields import Field
from wtforms.i18n import messages_path
from wtforms.validators import InputRequired, Length, NumberRange, StopValidation
from wtforms.widgets import TextInput

from lms.common.ids import parse_id
from lms.common.timeutil import ERAS, FIRST_YEAR, LAST_YEAR, plausible_year

WTFORMS_MESSAGES = Domain(translation_directories=messages_path(), domain="wtforms")

# WTForms' messages said in the user's terms: its catalogue speaks of "fields" and of its
# internals (「フィールドは 1000 文字を超えることはできません」, "could not coerce": a value that
# names no choice, which only a crafted request sends), and words some wrongly (「このフィールド
# は必須です」 for a field that cannot be edited). Each says what to do instead.
_CHOOSE_FROM_LIST = _l("一覧にある選択肢から選んでください。")
_OWN_WORDING = {
    "Invalid Choice: could not coerce.": _CHOOSE_FROM_LIST,
    "Invalid choice(s): one or more data inputs could not be coerced.": _CHOOSE_FROM_LIST,
    "Not a valid choice.": _CHOOSE_FROM_LIST,
    "This field is required.": _l("この項目を入力してください。"),
    "This field cannot be edited.": _l("この項目は変更できません。"),
    "Field must be between %(min)d and %(max)d characters long.": _l("%(min)d文字以上%(max)d文字以内で入力してください。"),
    "Number must be at least %(min)s.": _l("%(min)s以上の数で入力してください。"),
    "Number must be at most %(max)s.": _l("%(max)s以下の数で入力してください。"),
    "Number must be between %(min)s and %(max)s.": _l("%(min)sから%(max)sまでの数で入力してください。"),
    "Not a valid integer value.": _l("整数で入力してください。"),
    "Not a valid decimal value.": _l("数で入力してください。"),
    "Not a valid float value.": _l("数で入力してください。"),
    "Not a valid date value.": _l("正しい日付を入力してください。"),
    "Not a valid datetime value.": _l("正しい日時を入力してください。"),
    "Not a valid time value.": _l("正しい時刻を入力してください。"),
    "Invalid email address.": _l("メールアドレスの形式が正しくありません。"),
    "Invalid URL.": _l("URL の形式が正しくありません。"),
    "Invalid input.": _l("入力が正しくありません。"),
}
# (the singular's msgid names the pair)
_OWN_PLURAL_WORDING = {
    "Field must be at least %(min)d character long.": _l("%(min)d文字以上で入力してください。"),
    "Field cannot be longer than %(max)d character.": _l("%(max)d文字以内で入力してください。"),
    "Field must be exactly %(max)d character long.": _l("%(max)d文字で入力してください。"),
    "'%(value)s' is not a valid choice for this field.": _CHOOSE_FROM_LIST,
}


class _Messages:
    """WTForms' catalogue with our own wording in front (WTForms asks for ``gettext`` and
    ``ngettext``)."""

    def __init__(self, catalogue):
        self.catalogue = catalogue

    def gettext(self, string: str) -> str:
        own = _OWN_WORDING.get(string)
        return str(own) if own is not None else self.catalogue.gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        own = _OWN_PLURAL_WORDING.get(singular)
        return str(own) if own is not None else self.catalogue.ngettext(singular, plural, n)


# Control characters nobody types (C0 but tab and line breaks, DEL, C1): a paste from a PDF
# or a hostile post. Line breaks too in a one-line field (a title that would break a mail's
# header or a CSV row). Each becomes a space; what the person wrote is otherwise kept.
# (and the bidirectional overrides and isolates, U+202A–202E and U+2066–2069, which make a
# name or a comment display other than it reads: "Trojan Source" spoofing)
_CONTROLS_MULTI_LINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _without_controls(pattern: re.Pattern[str]):
    def clean(value):
        return pattern.sub(" ", value) if isinstance(value, str) else value
    return clean


def _clean_multi_line(value):
    """A text area's value: its line breaks as one LF each (browsers send CRLF but count a line
    break as one character against ``maxlength``, so ``within`` counts as the page does), and
    no control characters."""
    if isinstance(value, str):
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS_MULTI_LINE.sub(" ", value) if isinstance(value, str) else value


_CLEAN_MULTI_LINE = _clean_multi_line
_CLEAN_ONE_LINE = _without_controls(_CONTROLS_ONE_LINE)


# Spaces, and the invisible characters a paste brings along (zero-width space and joiners,
# word joiner, byte order mark), at either end of a value. (str.strip with the characters
# named: a regex anchored at the end would backtrack over every inner run of spaces.)
_EDGE_CHARACTERS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\u200b\u200c\u200d\u2060\ufeff"


def stripped(value: str | None) -> str | None:
    """A field's filter: the spaces and invisible characters around a pasted value go (a value
    of nothing else is missing: a title of one zero-width space would show as no title)."""
    return value.strip(_EDGE_CHARACTERS) if isinstance(value, str) else value


# WTForms' own message (its catalogue, in our wording: "この項目を入力してください。"), named so that
# our catalogue's extraction does not take it for one of ours.
_WTFORMS_REQUIRED = "This field is required."


class Required(InputRequired):
    """Every required field's validator: what was posted must hold more than spaces. WTForms'
    ``InputRequired`` passes a value of spaces (" ", a full-width space, a tab, a zero-width
    space pasted alone), which a date field then reads as no date (a deadline of None reached
    the service: a 500) and a text field keeps as a blank title or reason. The message is the
    field's own (``Required(_l("発令日を入力してください。"))``) or WTForms' "この項目を入力して
    ください。"; the field is marked ``required`` for the browser as before."""

    def __call__(self, form, field):
        value = field.raw_data[0] if field.raw_data else None
        if isinstance(value, str) and not stripped(one_line(value)):
            field.errors[:] = []
            raise StopValidation(self.message or field.gettext(_WTFORMS_REQUIRED))
        super().__call__(form, field)


def one_line(text: str) -> str:
    """A one-line text box's value read without a Form (a table of inputs named per row):
    control characters become spaces, as every Form's text fields do."""
    return str(_CLEAN_ONE_LINE(text))


class _OwnMeta:
    """What every form of Manabi's shares: WTForms' messages in our wording, in the page's
    language, and text fields without control characters."""

    def get_translations(self, form):
        return _Messages(WTFORMS_MESSAGES.get_translations())

    def bind_field(self, form, unbound_field, options):
        """Every text field drops control characters (see ``_CONTROLS_ONE_LINE``)."""
        field_class = unbound_field.field_class
        if issubclass(field_class, StringField) and not issubclass(field_class, (HiddenField, PasswordField)):
            clean = _CLEAN_MULTI_LINE if issubclass(field_class, TextAreaField) else _CLEAN_ONE_LINE
            options = {**options, "filters": (clean, *unbound_field.kwargs.get("filters", ()))}
        return unbound_field.bind(form=form, **options)


class Form(FlaskForm):
    class Meta(_OwnMeta):
        pass


class SubForm(wtforms.Form):
    """The rows of a ``FieldList(FormField(…))``: worded and cleaned as every ``Form``, without a
    CSRF field of their own (the page's form carries it)."""

    class Meta(_OwnMeta):
        pass


def put_error(form, exc) -> None:
    """A service's refusal (a DomainError) shown on ``form``: under the field it names
    (``field=`` in its context) when the form has one, else above the form."""
    name = exc.context.get("field")
    if name and name in form:
        form[name].errors = [*form[name].errors, exc.message]
    else:
        form.form_errors.append(exc.message)


class ActionForm(Form):
    """A button that changes state (publish, delete, roll call…): CSRF only."""


class IdField(IntegerField):
    """An id a page posts (a hidden field, a chosen row): a whole number the database can hold;
    anything else is the field's error, never a query."""

    def process_formdata(self, valuelist):
        if valuelist:
            self.data = parse_id(valuelist[0])
            if self.data is None:
                raise ValueError(_l("正しい ID ではありません。"))


# ---------------------------------------------------------------- dates and times, as offices write them

_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y年%m月%d")
_TIME_FORMATS = ("%H:%M", "%H時%M分", "%H時")


# Dashes that Japanese input methods type between digits for "-" and NFKC leaves as they are
# (minus sign, hyphens, en dash, the long-vowel mark ー): 2027−03−05.
_DIGIT_DASH = re.compile(r"(?<=\d)[\u2010-\u2013\u2212\u30fc](?=\d)")


def _normalised(text: str) -> str:
    """Full-width digits and punctuation folded (NFKC), dashes between digits as '-', 'T' and
    runs of spaces as one space."""
    folded = _DIGIT_DASH.sub("-", unicodedata.normalize("NFKC", text).strip().replace("T", " "))
    return " ".join(folded.split())


def _plausible(value):
    return value if value is not None and plausible_year(value.year) else None


def parse_japanese_date(text: str) -> date | None:
    """2026-12-03, 2026/12/3, 2026年12月3日 (full-width digits too); None if not a date (or
    not a year from 1900 to 2199)."""
    return _plausible(_any_year_date(text))


def parse_japanese_datetime(text: str) -> datetime | None:
    """A date as above, then a time: 14:00, 14時00分, 14時 (a space or none between)."""
    return _plausible(_any_year_datetime(text))


_DATE_SHAPE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")


def impossible_date(text: str) -> bool:
    """Written in Japanese order (or in 和暦), a month of the year, but a day the month has not
    (2026-02-30, 令和8年2月30日)."""
    found = _DATE_SHAPE.match(_normalised(text))
    wareki = _wareki_parts(_normalised(text).replace(" ", "")) if found is None else None
    if wareki is not None:
        _start, year, month, day = wareki
    elif found is not None:
        year, month, day = int(found.group(1)), int(found.group(2)), int(found.group(3))
    else:
        return False
    if not 1 <= month <= 12:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return True
    return False


# Spaces next to a non-digit (2026年 12月 3日, 令和9年3月1日 10時): dropped. A space between
# two digits is never dropped: "2027/3/1 1" is not the 11th.
_LOOSE_SPACE = re.compile(r"(?<=\D) +| +(?=\D)")


def _without_spaces(value: str) -> str | None:
    """``value`` without its spaces, or None when a space separates two digits."""
    joined = _LOOSE_SPACE.sub("", value)
    return None if " " in joined else joined


def _any_year_date(text: str) -> date | None:
    value = _without_spaces(_normalised(text))
    if value is None:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return _wareki_date(value)


# 和暦 as offices write it: 令和8年4月1日, 令和元年5月1日, R8.4.1, H31/4/30 (NFKC has already made
# ㋿ 令和 and ㍻ 平成, and full-width digits half-width).
_WAREKI = re.compile(r"(令和|平成|昭和|[RHSrhs])(元|\d{1,2})[年.\-/](\d{1,2})[月.\-/](\d{1,2})日?")
_ERA_LETTERS = {"R": "令和", "H": "平成", "S": "昭和"}


def _wareki_parts(value: str) -> tuple[date, int, int, int] | None:
    """(the era's first day, the western year, month, day) written, not yet checked as a date."""
    found = _WAREKI.fullmatch(value)
    if found is None:
        return None
    era = _ERA_LETTERS.get(found.group(1).upper(), found.group(1))
    start = next(first for first, name in ERAS if name == era)
    year = 1 if found.group(2) == "元" else int(found.group(2))
    return start, start.year + year - 1, int(found.group(3)), int(found.group(4))


def _wareki_date(value: str) -> date | None:
    """A 和暦 date, or None: not one, a day the month has not, or a day before its era began
    (令和元年4月1日). A day after the era ended (平成31年5月1日) is read as meant."""
    parts = _wareki_parts(value)
    if parts is None:
        return None
    start, year, month, day = parts
    try:
        written = date(year, month, day)
    except ValueError:
        return None
    return written if written >= start else None


def _any_year_datetime(text: str) -> datetime | None:
    value = _normalised(text)
    joined = _without_spaces(value)
    for date_fmt in _DATE_FORMATS:
        for time_fmt in _TIME_FORMATS:
            for sep, written in ((" ", value), ("", joined)):
                if written is None:
                    continue
                try:
                    return datetime.strptime(written, date_fmt + sep + time_fmt)
                except ValueError:
                    continue
    return _wareki_datetime(value)


# The time at the end of a date and time: 14:00, 14時00分, 14時.
_TIME_TAIL = re.compile(r"(?<!\d)\s*(\d{1,2})(?::(\d{2})|時(?:(\d{1,2})分)?)$")


def _wareki_datetime(value: str) -> datetime | None:
    """A 和暦 date then a time (令和9年3月1日 10:00, R9.3.1 10時), or None."""
    found = _TIME_TAIL.search(value)
    if found is None:
        return None
    written = _without_spaces(value[:found.start()].strip())
    day = _wareki_date(written) if written is not None else None
    hour, minute = int(found.group(1)), int(found.group(2) or found.group(3) or 0)
    if day is None or hour > 23 or minute > 59:
        return None
    return datetime.combine(day, time(hour, minute))


class _JapaneseOrderMixin:
    """A text box for a date (or date and time) in Japanese order: the browser's locale never
    reorders it (an <input type="date"> showed 12/24/2026 in an English-locale browser). The
    subclass names its display format, placeholder, parser and message."""

    widget = TextInput()
    data: Any  # a date or datetime once validated, else None
    display_format = ""
    placeholder = ""
    message: Any = ""

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"inputmode": "numeric", "autocomplete": "off", "placeholder": self.placeholder,
                     **(kwargs.pop("render_kw", None) or {})}
        kwargs.pop("format", None)
        super().__init__(label, validators, format=self.display_format, render_kw=render_kw, **kwargs)  # type: ignore[call-arg]

    def parse(self, text: str):
        """The value written, whatever its year (None: not written in a known order)."""
        raise NotImplementedError

    def process_formdata(self, valuelist):
        if not valuelist or not str(valuelist[0]).strip():
            self.data = None
            return
        self.raw_data = valuelist
        value = self.parse(str(valuelist[0]))
        self.data = _plausible(value)
        if value is None and impossible_date(str(valuelist[0])):
            raise ValueError(str(_l("存在しない日付です（その月にない日）。")))
        if value is None:
            raise ValueError(str(self.message))
        if self.data is None:  # written right, a year no record of Manabi can have (2999, 0202)
            raise ValueError(str(_l("年は%(first)d年から%(last)d年までで入力してください。", first=FIRST_YEAR, last=LAST_YEAR)))


class JapaneseDateField(_JapaneseOrderMixin, DateField):
    """A date: 2026-12-03, 2026/12/3, 2026年12月3日, full-width digits; shown as 2026-12-03."""

    display_format, placeholder = "%Y-%m-%d", "2026-12-03"
    message = _l("日付は「2026-12-03」のように年・月・日の順で入力してください。")

    def parse(self, text: str):
        return _any_year_date(text)


class JapaneseDateTimeField(_JapaneseOrderMixin, DateTimeField):
    """A date and time: as above, then 14:00 or 14時00分; shown as 2026-12-03 14:00. Naive
    (the caller's wall clock)."""

    display_format, placeholder = "%Y-%m-%d %H:%M", "2026-12-03 14:00"
    message = _l("日時は「2026-12-03 14:00」のように年・月・日 時:分の順で入力してください。")

    def parse(self, text: str):
        return _any_year_datetime(text)


class Between(NumberRange):
    """NumberRange with one Japanese message naming the range ("1から100までの数で入力してく
    ださい。"), silent when the text was not a number at all (the field has said so already)."""

    def __init__(self, min: int | None = None, max: int | None = None, message: str | None = None):  # noqa: A002
        super().__init__(min, max, message or _l("%(min)sから%(max)sまでの数で入力してください。", min=min, max=max))

    def __call__(self, form, field):
        if field.data is None and field.raw_data and field.process_errors:
            raise StopValidation()
        super().__call__(form, field)


def error_summary(form) -> list[tuple[Field | None, str]]:
    """Each error message of ``form`` with the field it is about (None: the form's own), in
    the order of the fields, for a page's error summary. A FieldList's rows and a FormField's
    fields are walked down to the field of each message: their errors, which WTForms keeps as
    lists of dicts, are never shown as such."""
    found: list[tuple[Field | None, str]] = []

    def messages(errors) -> list[str]:
        if isinstance(errors, dict):
            return [m for value in errors.values() for m in messages(value)]
        if isinstance(errors, list | tuple):
            return [m for value in errors for m in messages(value)]
        return [str(errors)]

    def walk(field: Field) -> None:
        if isinstance(field, FormField):
            found.extend((field, m) for m in messages(list(field.form.form_errors)))
            for sub in field.form:
                walk(sub)
        elif isinstance(field, FieldList):
            found.extend((field, str(m)) for m in field.errors if not isinstance(m, dict | list | tuple))
            for entry in field.entries:
                walk(entry)
        else:
            found.extend((field, m) for m in messages(field.errors))

    for field in form:
        walk(field)
    found.extend((None, m) for m in messages(list(form.form_errors)))
    return found


def within(max_length: int):
    """Length(max=…) with the app's message ("200文字以内で入力してください。")."""
    return Length(max=max_length, message=_l("%(max)d文字以内で入力してください。", max=max_length))
