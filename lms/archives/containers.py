"""How long a stored video is: read from its container (MP4, WebM), in pure Python.

Two ways, both over ``reader(start, length) -> bytes`` of the stored object:

* ``header_duration``: what the container's headers say (MP4: ``moov/mvhd``, else the
  fragmented file's ``moov/mvex/mehd``; WebM: ``Segment/Info/Duration``). Cheap; run when an
  upload is verified. A duration of zero counts as absent.
* ``scanned_duration``: the time of the last media sample, for files whose headers say
  nothing — browser and screen recordings (MediaRecorder writes WebM without a Duration, with
  clusters of unknown size) and fragmented MP4 (``mvhd`` duration 0). WebM: the last
  cluster's ``Timecode`` plus its last block's relative timecode (and ``BlockDuration`` where
  given), times ``TimecodeScale``. MP4: per track, the end of the last fragment (``tfdt`` of
  the ``traf`` plus the durations of its ``trun`` samples, defaulting to ``tfhd`` then
  ``trex``), in the track's ``mdhd`` timescale; a file without fragments: the tracks' ``mdhd``
  durations, else their ``stts`` tables. Reads through a window, hopping over sample data
  whose size is known (``mdat``, clusters of known size but the last), so it reads the whole
  file only when it must (clusters of unknown size). Run by the worker
  (``lms.archives.durations``), never on a request.

Both return whole seconds (at least 1) or None when the file does not tell. A scanned
duration beyond ``MAX_SECONDS`` is not believed (timestamps that do not start near zero).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Reader = Callable[[int, int], bytes]

# A scan reads through a window that starts small (hopping from header to header costs a
# little each) and doubles while the reads run on sequentially (a cluster of unknown size is
# read through), up to WINDOW.
FIRST_WINDOW = 64 * 1024
WINDOW = 4 * 1024 * 1024
# No training video lasts a day; a larger figure means timestamps that do not start near zero.
MAX_SECONDS = 24 * 3600


class _Truncated(Exception):
    """The file ends inside a header."""


class _Source:
    """Random access to ``reader`` through one window."""

    def __init__(self, reader: Reader, size: int, window: int = WINDOW):
        self.reader = reader
        self.size = size
        self.max_window = window
        self.window = min(FIRST_WINDOW, window)
        self.start = 0
        self.buffer = b""
        self.bytes_read = 0

    def read(self, pos: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``pos`` (fewer at the end of the file)."""
        length = max(0, min(length, self.size - pos))
        if length == 0:
            return b""
        offset = pos - self.start
        if offset < 0 or offset + length > len(self.buffer):
            sequential = self.start <= pos <= self.start + len(self.buffer) and self.buffer
            self.window = min(self.window * 2, self.max_window) if sequential else min(FIRST_WINDOW, self.max_window)
            self.buffer = self.reader(pos, min(max(self.window, length), self.size - pos))
            self.bytes_read += len(self.buffer)
            self.start = pos
            offset = 0
        return self.buffer[offset : offset + length]

    def exactly(self, pos: int, length: int) -> bytes:
        data = self.read(pos, length)
        if len(data) < length:
            raise _Truncated
        return data


def _seconds(value: float) -> int | None:
    """Whole seconds of a positive, finite duration (at least 1), else None."""
    if not math.isfinite(value) or value <= 0:
        return None
    return max(1, round(value))


def header_duration(reader: Reader, size: int, code: str) -> int | None:
    """The duration the container's headers state (``code``: ``mp4`` or ``webm``), or None."""
    source = _Source(reader, size, window=64 * 1024)
    try:
        if code == "mp4":
            return _mp4_header_duration(source)
        if code == "webm":
            return _webm_header_duration(source)
    except (_Truncated, struct.error, ValueError, IndexError, ZeroDivisionError):
        return None
    return None


def scanned_duration(reader: Reader, size: int, code: str) -> int | None:
    """The time of the last media sample (``code``: ``mp4`` or ``webm``), or None."""
    source = _Source(reader, size)
    try:
        seconds = _mp4_scan(source) if code == "mp4" else _webm_scan(source) if code == "webm" else None
    except (struct.error, ValueError, IndexError, ZeroDivisionError):
        return None
    if seconds is None or seconds > MAX_SECONDS:
        return None
    return seconds


# ====================================================================== MP4 (ISO BMFF)


def _boxes(source: _Source, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, end) of the boxes between ``start`` and ``end``; stops at a
    broken header, and clips a box that claims to run past ``end``."""
    pos = start
    while pos + 8 <= end:
        header = source.read(pos, 16)
        if len(header) < 8:
            return
        size, box = struct.unpack(">I4s", header[:8])
        head = 8
        if size == 1:
            if len(header) < 16:
                return
            size = struct.unpack(">Q", header[8:16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head:
            return
        yield box, pos + head, min(pos + size, end)
        pos += size


def _child(source: _Source, start: int, end: int, name: bytes) -> tuple[int, int] | None:
    for box, body, box_end in _boxes(source, start, end):
        if box == name:
            return body, box_end
    return None


def _time_and_duration(data: bytes) -> tuple[int, int]:
    """(timescale, duration) of an ``mvhd`` or ``mdhd`` body (versions 0 and 1)."""
    if data[0] == 1:
        return struct.unpack(">IQ", data[20:32])
    return struct.unpack(">II", data[12:20])


def _mp4_header_duration(source: _Source) -> int | None:
    moov = _child(source, 0, source.size, b"moov")
    if moov is None:
        return None
    mvhd = _child(source, *moov, b"mvhd")
    if mvhd is None:
        return None
    timescale, duration = _time_and_duration(source.exactly(mvhd[0], 32))
    if timescale and duration:
        return _seconds(duration / timescale)
    # Fragmented: the optional Movie Extends Header gives the whole duration.
    mvex = _child(source, *moov, b"mvex")
    mehd = _child(source, *mvex, b"mehd") if mvex else None
    if mehd is None or not timescale:
        return None
    data = source.exactly(mehd[0], 12)
    fragment_duration = struct.unpack(">Q", data[4:12])[0] if data[0] == 1 else struct.unpack(">I", data[4:8])[0]
    return _seconds(fragment_duration / timescale)


@dataclass
class _Track:
    timescale: int = 0
    header_duration: int = 0  # mdhd
    table_duration: int = 0  # stts
    default_sample_duration: int = 0  # trex
    next_decode: int | None = None  # where the next fragment starts without a tfdt
    end: int = 0  # end of the last sample seen, in the track's timescale


def _mp4_scan(source: _Source) -> int | None:
    tracks: dict[int, _Track] = {}
    fragmented = False
    for box, body, end in _boxes(source, 0, source.size):
        if box == b"moov":
            _read_moov(source, body, end, tracks)
        elif box == b"moof":
            fragmented = True
            _read_moof(source, body, end, tracks)
    best = 0.0
    for track in tracks.values():
        if not track.timescale:
            continue
        ticks = track.end if fragmented else (track.header_duration or track.table_duration)
        best = max(best, ticks / track.timescale)
    return _seconds(best)


def _read_moov(source: _Source, start: int, end: int, tracks: dict[int, _Track]) -> None:
    for box, body, box_end in _boxes(source, start, end):
        if box == b"trak":
            tkhd = _child(source, body, box_end, b"tkhd")
            if tkhd is None:
                continue
            data = source.exactly(tkhd[0], 24)
            track_id = struct.unpack(">I", data[20:24] if data[0] == 1 else data[12:16])[0]
            track = tracks.setdefault(track_id, _Track())
            mdia = _child(source, body, box_end, b"mdia")
            if mdia is None:
                continue
            mdhd = _child(source, *mdia, b"mdhd")
            if mdhd is not None:
                track.timescale, track.header_duration = _time_and_duration(source.exactly(mdhd[0], 32))
            minf = _child(source, *mdia, b"minf")
            stbl = _child(source, *minf, b"stbl") if minf else None
            stts = _child(source, *stbl, b"stts") if stbl else None
            if stts is not None:
                track.table_duration = _stts_total(source, *stts)
                track.next_decode = track.table_duration
                track.end = max(track.end, track.table_duration)
        elif box == b"mvex":
            for inner, ibody, _iend in _boxes(source, body, box_end):
                if inner == b"trex":
                    data = source.exactly(ibody, 16)
                    track_id, _index, default_duration = struct.unpack(">III", data[4:16])
                    tracks.setdefault(track_id, _Track()).default_sample_duration = default_duration


def _stts_total(source: _Source, start: int, end: int) -> int:
    count = struct.unpack(">I", source.exactly(start + 4, 4))[0]
    count = min(count, (end - start - 8) // 8)
    total = 0
    pos = start + 8
    for _ in range(count):
        samples, delta = struct.unpack(">II", source.exactly(pos, 8))
        total += samples * delta
        pos += 8
    return total


_TRUN_FIELDS = (0x100, 0x200, 0x400, 0x800)  # per sample: duration, size, flags, composition offset


def _read_moof(source: _Source, start: int, end: int, tracks: dict[int, _Track]) -> None:
    for box, body, box_end in _boxes(source, start, end):
        if box != b"traf":
            continue
        tfhd = _child(source, body, box_end, b"tfhd")
        if tfhd is None:
            continue
        data = source.exactly(tfhd[0], 8)
        flags = int.from_bytes(data[1:4], "big")
        track_id = struct.unpack(">I", data[4:8])[0]
        track = tracks.setdefault(track_id, _Track())
        default_duration = track.default_sample_duration
        if flags & 0x08:
            offset = tfhd[0] + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
            default_duration = struct.unpack(">I", source.exactly(offset, 4))[0]
        decode = track.next_decode or 0
        tfdt = _child(source, body, box_end, b"tfdt")
        if tfdt is not None:
            data = source.exactly(tfdt[0], 12)
            decode = struct.unpack(">Q", data[4:12])[0] if data[0] == 1 else struct.unpack(">I", data[4:8])[0]
        for inner, ibody, iend in _boxes(source, body, box_end):
            if inner == b"trun":
                decode += _trun_total(source, ibody, iend, default_duration)
        track.next_decode = decode
        track.end = max(track.end, decode)


def _trun_total(source: _Source, start: int, end: int, default_duration: int) -> int:
    data = source.exactly(start, 8)
    flags = int.from_bytes(data[1:4], "big")
    count = struct.unpack(">I", data[4:8])[0]
    if not flags & 0x100:
        return count * default_duration
    pos = start + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    entry = 4 * sum(1 for field in _TRUN_FIELDS if flags & field)
    count = min(count, (end - pos) // entry)
    total = 0
    for _ in range(count):
        total += struct.unpack(">I", source.exactly(pos, 4))[0]
        pos += entry
    return total


# ====================================================================== WebM (Matroska, EBML)

EBML_HEADER = 0x1A45DFA3
SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
INFO = 0x1549A966
TIMECODE_SCALE = 0x2AD7B1
DURATION = 0x4489
TRACKS = 0x1654AE6B
CLUSTER = 0x1F43B675
CUES = 0x1C53BB6B
ATTACHMENTS = 0x1941A469
CHAPTERS = 0x1043A770
TAGS = 0x1254C367
TIMECODE = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0
BLOCK = 0xA1
BLOCK_DURATION = 0x9B
# Elements that can only stand at the top of a Segment: one of them ends a cluster of
# unknown size.
_TOP_LEVEL = {EBML_HEADER, SEGMENT, SEEK_HEAD, INFO, TRACKS, CLUSTER, CUES, ATTACHMENTS, CHAPTERS, TAGS}


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, next position, all value bits set — an "unknown" size)."""
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise ValueError("bad EBML length")
    if pos + length > len(data):
        raise _Truncated
    bits = first & (mask - 1)
    value = first if keep_marker else bits
    all_ones = bits == mask - 1
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    return value, pos + length, all_ones


def _element(source: _Source, pos: int) -> tuple[int, int | None, int]:
    """(ID, body size or None when unknown, body start) of the element at ``pos``."""
    header = source.read(pos, 12)
    if len(header) < 2:
        raise _Truncated
    element, at, _ = _vint(header, 0, keep_marker=True)
    size, at, unknown = _vint(header, at, keep_marker=False)
    return element, None if unknown else size, pos + at


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _webm_header_duration(source: _Source) -> int | None:
    scale = 1_000_000
    duration = None
    pos = 0
    limit = min(source.size, 64 * 1024)
    while pos < limit:
        element, size, body = _element(source, pos)
        if element in (SEGMENT, INFO):  # descend
            pos = body
            continue
        if element == CLUSTER or size is None:  # the headers are over
            break
        if element == TIMECODE_SCALE:
            scale = _uint(source.exactly(body, size))
        elif element == DURATION:
            data = source.exactly(body, size)
            duration = struct.unpack(">f", data)[0] if size == 4 else struct.unpack(">d", data)[0]
        pos = body + size
    if duration is None:
        return None
    return _seconds(duration * scale / 1_000_000_000)


def _webm_scan(source: _Source) -> int | None:
    scale = 1_000_000
    best: int | None = None
    try:
        element, size, body = _element(source, 0)
        if element != EBML_HEADER or size is None:
            return None
        element, size, body = _element(source, body + size)
        if element != SEGMENT:
            return None
        segment_end = source.size if size is None else min(body + size, source.size)
        last_cluster: tuple[int, int] | None = None
        pos = body
        while pos < segment_end:
            element, size, body = _element(source, pos)
            if element == CLUSTER and size is not None and body + size <= segment_end:
                last_cluster = (body, body + size)  # clusters come in time order: keep the last
                pos = body + size
            elif element == CLUSTER:  # unknown size (a live recording), or cut short
                end = segment_end if size is None else min(body + size, segment_end)
                pos, ticks = _walk_cluster(source, body, end, until_top_level=size is None)
                best = _later(best, ticks)
            elif size is None:
                break  # nothing else may have an unknown size
            else:
                if element == INFO:
                    scale = _timecode_scale(source, body, body + size) or scale
                pos = body + size
    except _Truncated:
        pass  # a recording cut off mid-element: what was read stands
    if last_cluster is not None:
        try:
            _end, ticks = _walk_cluster(source, *last_cluster, until_top_level=False)
        except _Truncated:
            ticks = None
        best = _later(best, ticks)
    if best is None:
        return None
    return _seconds(best * scale / 1_000_000_000)


def _later(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _timecode_scale(source: _Source, start: int, end: int) -> int | None:
    pos = start
    while pos < end:
        element, size, body = _element(source, pos)
        if size is None:
            return None
        if element == TIMECODE_SCALE:
            return _uint(source.exactly(body, size)) or None
        pos = body + size
    return None


def _block_time(source: _Source, body: int, size: int) -> int:
    """The signed 16-bit timecode of a (Simple)Block, relative to its cluster."""
    header = source.read(body, min(size, 11))
    if not header:
        raise _Truncated
    _track, at, _ = _vint(header, 0, keep_marker=False)
    if len(header) < at + 2:
        raise _Truncated
    return struct.unpack(">h", header[at : at + 2])[0]


def _walk_cluster(source: _Source, start: int, end: int, until_top_level: bool) -> tuple[int, int | None]:
    """(where the cluster ends, the latest block end in it in timecode ticks, or None)."""
    cluster_time = 0
    best: int | None = None
    pos = start
    try:
        while pos < end:
            element, size, body = _element(source, pos)
            if until_top_level and element in _TOP_LEVEL:
                return pos, best
            if size is None:
                return end, best
            if element == TIMECODE:
                cluster_time = _uint(source.exactly(body, size))
            elif element == SIMPLE_BLOCK:
                best = _later(best, cluster_time + _block_time(source, body, size))
            elif element == BLOCK_GROUP:
                best = _later(best, _block_group_end(source, body, min(body + size, end), cluster_time))
            pos = body + size
    except _Truncated:
        return end, best
    return min(pos, end), best


def _block_group_end(source: _Source, start: int, end: int, cluster_time: int) -> int | None:
    relative, duration = None, 0
    pos = start
    while pos < end:
        element, size, body = _element(source, pos)
        if size is None:
            break
        if element == BLOCK:
            relative = _block_time(source, body, size)
        elif element == BLOCK_DURATION:
            duration = _uint(source.exactly(body, size))
        pos = body + size
    return None if relative is None else cluster_time + relative + duration
