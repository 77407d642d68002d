"""WebVTT parsing (captions and Teams transcripts) into cues for search and chapters."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_TIMING = re.compile(
    r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})(?:\s+.*)?$"
)
_VOICE = re.compile(r"<v(?:\.[^\s>]+)*\s+([^>]*)>")
_TAG = re.compile(r"</?[^>]+>")


class CaptionError(ValueError):
    pass


class TooManyCues(CaptionError):
    """WebVTT, but more cues than a captions file may have (``limit``)."""

    def __init__(self, limit: int):
        super().__init__(f"more than {limit} cues")
        self.limit = limit


# The most cues a captions file may have (a cue every second of a 13-hour recording).
MAX_CUES = 50_000


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    speaker: str
    text: str


# A cue's time is kept in milliseconds in an integer column (PostgreSQL's: about 596 hours);
# a later time is no video's.
MAX_CUE_MS = 2**31 - 1


def parse_timestamp(value: str) -> int:
    value = value.replace(",", ".")
    parts = value.split(":")
    seconds = float(parts[-1])
    minutes = int(parts[-2])
    if len(parts) == 3 and len(parts[-3]) > 6:  # (not converted: past MAX_CUE_MS in any case)
        raise CaptionError(value)
    hours = int(parts[-3]) if len(parts) == 3 else 0
    if minutes >= 60 or seconds >= 60:
        raise CaptionError(value)
    ms = int(round((hours * 3600 + minutes * 60 + seconds) * 1000))
    if ms > MAX_CUE_MS:
        raise CaptionError(value)
    return ms


def parse_vtt(text: str, *, max_cues: int = MAX_CUES) -> list[Cue]:
    """Cues of a WebVTT document; raises CaptionError if it is not WebVTT (TooManyCues if it
    has more than ``max_cues``). Blocks that are no cue (a mistyped timing line) are skipped,
    as browsers do: a document may come back with no cue at all."""
    # (WebVTT's parser replaces U+0000 with U+FFFD; a database cannot store NUL either)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    if not re.match(r"^WEBVTT(?:[ \t].*)?(?:\n|$)", text):
        raise CaptionError("missing WEBVTT header")
    cues: list[Cue] = []
    for block in re.split(r"\n{2,}", text)[1:]:
        lines = list(block.split("\n"))
        if not lines or not lines[0].strip():
            continue
        if lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        index = 0
        if "-->" not in lines[0]:
            index = 1  # cue identifier
        if index >= len(lines):
            continue
        match = _TIMING.match(lines[index])
        if not match:
            continue
        try:
            start, end = parse_timestamp(match.group(1)), parse_timestamp(match.group(2))
        except CaptionError:  # 99:99:99.000, or past any video's length: skipped as a browser does
            continue
        if end < start:
            continue
        payload = "\n".join(lines[index + 1 :]).strip()
        speaker = ""
        voice = _VOICE.search(payload)
        if voice:
            speaker = voice.group(1).strip()[:200]
        body = html.unescape(_TAG.sub("", payload)).strip()
        if not body:
            continue
        cues.append(Cue(start, end, speaker, body))
        if len(cues) > max_cues:
            raise TooManyCues(max_cues)
    return cues


def chapters_from(cues, spacing_ms: int | None = None, limit: int = 40) -> list:
    """A readable table of contents: the first cue after every ``spacing_ms`` of video
    (by default a twentieth of the captioned length, at least 5 seconds)."""
    if spacing_ms is None:
        end = max((cue.end_ms for cue in cues), default=0)
        spacing_ms = max(5_000, end // 20)
    chapters = []
    next_at = 0
    for cue in cues:
        if cue.start_ms >= next_at:
            chapters.append(cue)
            next_at = cue.start_ms + spacing_ms
            if len(chapters) >= limit:
                break
    return chapters
