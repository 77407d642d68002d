"""Reading a bulk feed's JSON entry by entry: ``{"entries": [ {…}, {…}, … ], …}`` of up to
50,000 entries is never held as one list of dictionaries (about 60 MB more for a whole
feed). The request counts and checks it this way and stores it cut into parts, each part the
entries' own texts; the worker then holds one part at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
ENTRY = "entries[]"  # the key under which each element of the "entries" array is yielded


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _expect(text: str, at: int, char: str) -> int:
    if text[at:at + 1] != char:
        raise json.JSONDecodeError(f"expected {char!r}", text, at)
    return _skip(text, at + 1)


def members(text: str) -> Iterator[tuple[str, Any]]:
    """The members of the top-level JSON object, in order, as ``(key, value)``; the elements
    of an ``"entries"`` array come one by one as ``(ENTRY, element)``. Raises ValueError
    (json.JSONDecodeError) where the text is not one JSON object."""
    for key, value, _start, _end in spans(text):
        yield key, value


def spans(text: str) -> Iterator[tuple[str, Any, int, int]]:
    """As ``members``, with where each value's text starts and ends: ``text[start:end]`` is
    the value as sent (an entry's own JSON, to be stored without being written again)."""
    at = _expect(text, _skip(text, 0), "{")
    if text[at:at + 1] == "}":
        at += 1
    else:
        while True:
            if text[at:at + 1] != '"':
                raise json.JSONDecodeError("expected a member name", text, at)
            key, at = _DECODER.raw_decode(text, at)
            at = _expect(text, _skip(text, at), ":")
            if key == "entries" and text[at:at + 1] == "[":
                at = _skip(text, at + 1)
                if text[at:at + 1] == "]":
                    at = _skip(text, at + 1)
                else:
                    while True:
                        start = at
                        value, at = _DECODER.raw_decode(text, at)
                        yield ENTRY, value, start, at
                        at = _skip(text, at)
                        if text[at:at + 1] == "]":
                            at = _skip(text, at + 1)
                            break
                        at = _expect(text, at, ",")
            else:
                start = at
                value, at = _DECODER.raw_decode(text, at)
                yield key, value, start, at
                at = _skip(text, at)
            if text[at:at + 1] == "}":
                at += 1
                break
            at = _expect(text, at, ",")
    if _skip(text, at) != len(text):
        raise json.JSONDecodeError("extra data after the object", text, at)


def entries(text: str) -> Iterator[Any]:
    """The elements of the feed's ``"entries"`` array, one by one."""
    for key, value in members(text):
        if key == ENTRY:
            yield value


def parts(text: str, bounds: Sequence[int], size: int) -> Iterator[bytes]:
    """The entries whose texts lie at ``text[bounds[2i]:bounds[2i + 1]]``, ``size`` at a time,
    each group as one JSON array in UTF-8, the entries' texts as they were sent."""
    for first in range(0, len(bounds), 2 * size):
        pairs = bounds[first:first + 2 * size]
        yield ("[" + ",".join(text[pairs[i]:pairs[i + 1]] for i in range(0, len(pairs), 2)) + "]").encode()
