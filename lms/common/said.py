"""Words kept without a language: a message id and its parameters, worded when read.

``said(message_id, **params)`` is ``gettext`` that remembers what it said: a ``str`` in the
current language (so code that shows it at once, a CSV import's report, is unchanged) which
also carries its message id and parameters. Whoever keeps it for a later reader stores
``stored(...)`` — the id and the parameters as JSON — next to the text, and words it again in
the reader's language with ``reworded(message_id, params, text)``; a row kept before it had
an id, or one whose id or parameters this version cannot word, is shown as its stored text.
This is the pattern of the webhook attempts' ``error_code``/``error_params`` and the uploads'
reasons (a code and its parameters, worded when shown), for messages too many and too varied
to be given codes of their own: the message id is the code.

A parameter is kept as it is (text, a number) unless it is itself worded in the language:
another ``said`` (or a ``lazy_gettext`` label), a ``Dated`` day (the pages' date format), a
``Listed`` list (joined as the language joins names) or a ``Joined`` one (joined by a fixed
separator)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import force_locale, gettext
from flask_babel.speaklater import LazyString

from lms.common.i18n import join_list
from lms.common.templating import format_date_jst

# The language of the message ids (the source strings): gettext in it answers the id itself.
SOURCE_LANGUAGE = "ja"


class Said(str):
    """Text in the current language that knows its message id and parameters."""

    message_id: Any  # the id, or a lazy_gettext of it (read in the source language when stored)
    params: dict[str, Any]
    braces: bool  # formatted as str.format formats ("{max}"), as marshmallow's validators word theirs

    def __new__(cls, text: str = "", message_id: Any = "", params: dict[str, Any] | None = None,
                braces: bool = False) -> Said:
        self = super().__new__(cls, text)  # (defaults: a copy or a pickle restores the attributes after)
        self.message_id, self.params, self.braces = message_id, params or {}, braces
        return self


@dataclass(frozen=True)
class Dated:
    """A day, worded as the pages word dates (format_date_jst)."""

    day: date

    def __str__(self) -> str:
        return format_date_jst(self.day)


@dataclass(frozen=True)
class Listed:
    """Names joined as the language joins a list (「A、B」, "A, B")."""

    items: tuple

    def __str__(self) -> str:
        return join_list(str(item) for item in self.items)


@dataclass(frozen=True)
class Joined:
    """Parts joined by a fixed separator."""

    items: tuple
    separator: str

    def __str__(self) -> str:
        return self.separator.join(str(item) for item in self.items)


def said(message_id: str, **params: Any) -> Said:
    """``gettext(message_id, **params)``, remembering both (the parameters as given: ``stored``
    turns them into JSON)."""
    text = gettext(message_id, **{key: str(value) for key, value in params.items()})  # noqa: INT001
    return Said(text, message_id, params)


def braced(message: Any, **params: Any) -> Said:
    """``message`` (a ``lazy_gettext``, as marshmallow's validators take theirs) formatted by
    ``str.format`` with ``params``, remembering both."""
    return Said(str(message).format(**{key: str(value) for key, value in params.items()}), message, params,
                braces=True)


def _kept(value: Any) -> Any:
    """A parameter as JSON: as it is, or what it needs to be worded again. (Called in the source
    language, Japanese: a ``lazy_gettext`` label then reads as its message id.)"""
    if isinstance(value, Said):
        kept = {"said": str(value.message_id), "params": {key: _kept(item) for key, item in value.params.items()}}
        return {**kept, "braces": True} if value.braces else kept
    if isinstance(value, LazyString):  # a label, _l("…"): its message id is its Japanese
        return {"said": str(value), "params": {}}
    if isinstance(value, Dated):
        return {"date": value.day.isoformat()}
    if isinstance(value, Listed):
        return {"list": [_kept(item) for item in value.items]}
    if isinstance(value, Joined):
        return {"join": [_kept(item) for item in value.items], "separator": value.separator}
    if isinstance(value, bool | int | float) or value is None:
        return value
    return str(value)


def stored(text: str, clean: Callable[[str], str] = lambda s: s) -> tuple[str, dict[str, Any] | None]:
    """What to keep of ``text`` besides the text: its message id and parameters (``"", None``
    for text that is not ``said``). ``clean`` is applied to every text kept (say, to keep out
    what the database cannot store)."""
    if not isinstance(text, Said):
        return "", None
    if _has_lazy(text):
        with force_locale(SOURCE_LANGUAGE):
            kept = _kept(text)
    else:
        kept = _kept(text)
    if text.braces:  # (kept within a message of the usual kind, one that says only it)
        return "%(text)s", _cleaned({"text": kept}, clean)
    return clean(kept["said"]), _cleaned(kept["params"], clean) or None


def _has_lazy(value: Any) -> bool:
    if isinstance(value, LazyString):
        return True
    if isinstance(value, Said):
        return isinstance(value.message_id, LazyString) or any(_has_lazy(item) for item in value.params.values())
    if isinstance(value, Listed | Joined):
        return any(_has_lazy(item) for item in value.items)
    return False


def _cleaned(value: Any, clean: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(key): _cleaned(item, clean) for key, item in value.items()}
    if isinstance(value, list):
        return [_cleaned(item, clean) for item in value]
    return value


def reworded(message_id: str | None, params: dict[str, Any] | None, text: str) -> str:
    """The kept message in the current language; ``text`` (as stored) when there is no message
    id, or the id or the parameters cannot be worded."""
    if not message_id:
        return text
    try:
        return _worded(message_id, params or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        return text


def _worded(message_id: str, params: dict[str, Any], braces: bool = False) -> str:
    words = {str(key): _param(value) for key, value in params.items()}
    if braces:
        return gettext(message_id).format(**words)  # noqa: INT001
    return gettext(message_id, **words)  # noqa: INT001


def _param(value: Any) -> str:
    if isinstance(value, dict):
        if "said" in value:
            return _worded(str(value["said"]), value.get("params") or {}, bool(value.get("braces")))
        if "date" in value:
            return format_date_jst(date.fromisoformat(value["date"]))
        if "list" in value:
            return join_list(_params(value["list"]))
        if "join" in value:
            return str(value["separator"]).join(_params(value["join"]))
        raise ValueError(value)
    return str(value)


def _params(values: Iterable[Any]) -> list[str]:
    return [_param(value) for value in values]
