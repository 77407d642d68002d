"""Small synthetic video containers, written byte by byte, for the duration tests.

* ``webm(seconds, …)``: a WebM (EBML) file with one VP8 track and ``fps`` blocks a second,
  by default as MediaRecorder writes it: no Duration in Info, a Segment and Clusters of
  unknown size.
* ``fragmented_mp4(seconds, …)``: a fragmented MP4 whose ``mvhd`` duration is 0: an empty
  sample table in ``moov``, then ``moof``/``mdat`` pairs with ``tfdt`` and ``trun``.

The frames are a few filler bytes: the files are containers a browser would refuse to
decode, but every structure that says how long they are is real.
"""

from __future__ import annotations

import struct

# ---------------------------------------------------------------- WebM

UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _ebml_id(element: int) -> bytes:
    return element.to_bytes((element.bit_length() + 7) // 8, "big")


def _size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(n)


def el(element: int, body: bytes, *, unknown_size: bool = False) -> bytes:
    return _ebml_id(element) + (UNKNOWN_SIZE if unknown_size else _size(len(body))) + body


def uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def simple_block(relative: int, payload: bytes = b"\x00" * 8, track: int = 1) -> bytes:
    return el(0xA3, bytes([0x80 | track]) + struct.pack(">hB", relative, 0x80) + payload)


def block_group(relative: int, duration: int, payload: bytes = b"\x00" * 8, track: int = 1) -> bytes:
    block = el(0xA1, bytes([0x80 | track]) + struct.pack(">hB", relative, 0x00) + payload)
    return el(0xA0, block + el(0x9B, uint(duration)))


def webm(seconds: float, *, fps: int = 10, duration: float | None = None, unknown_sizes: bool = True,
         cluster_seconds: int = 5, timecode_scale: int = 1_000_000, last_block_duration: int | None = None,
         cues: bool = False) -> bytes:
    """``seconds`` of blocks (one every 1/fps s). ``duration`` (in seconds) writes a Duration
    element; ``last_block_duration`` (in ticks) ends the file with a BlockGroup."""
    header = el(0x1A45DFA3, b"".join([
        el(0x4286, uint(1)), el(0x42F7, uint(1)), el(0x42F2, uint(4)), el(0x42F3, uint(8)),
        el(0x4282, b"webm"), el(0x4287, uint(4)), el(0x4285, uint(2)),
    ]))
    info = [el(0x2AD7B1, uint(timecode_scale)), el(0x4D80, b"tests"), el(0x5741, b"tests")]
    if duration is not None:
        info.append(el(0x4489, struct.pack(">d", duration * 1_000_000_000 / timecode_scale)))
    tracks = el(0x1654AE6B, el(0xAE, b"".join([
        el(0xD7, uint(1)), el(0x73C5, uint(1)), el(0x83, uint(1)), el(0x86, b"V_VP8"),
        el(0xE0, el(0xB0, uint(16)) + el(0xBA, uint(16))),
    ])))
    ticks_per_second = 1_000_000_000 // timecode_scale
    frames = int(seconds * fps)
    clusters = []
    per_cluster = cluster_seconds * fps
    for first in range(0, frames, per_cluster):
        cluster_time = first * ticks_per_second // fps
        blocks = [el(0xE7, uint(cluster_time))]
        for frame in range(first, min(first + per_cluster, frames)):
            relative = frame * ticks_per_second // fps - cluster_time
            if frame == frames - 1 and last_block_duration is not None:
                blocks.append(block_group(relative, last_block_duration))
            else:
                blocks.append(simple_block(relative))
        clusters.append(el(0x1F43B675, b"".join(blocks), unknown_size=unknown_sizes))
    body = el(0x1549A966, b"".join(info)) + tracks + b"".join(clusters)
    if cues:
        body += el(0x1C53BB6B, el(0xBB, el(0xB3, uint(0)) + el(0xB7, el(0xF7, uint(1)) + el(0xF1, uint(0)))))
    return header + el(0x18538067, body, unknown_size=unknown_sizes)


# ---------------------------------------------------------------- MP4


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _trak(track_id: int, timescale: int, handler: bytes, mdhd_duration: int = 0) -> bytes:
    tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, track_id, 0, 0) + bytes(8)
                    + struct.pack(">hhhH", 0, 0, 0, 0) + MATRIX + struct.pack(">II", 16 << 16, 16 << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, mdhd_duration, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, handler) + bytes(12) + b"\x00")
    stbl = box(b"stbl", b"".join([
        full_box(b"stsd", 0, 0, struct.pack(">I", 0)), full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)), full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    ]))
    minf = box(b"minf", full_box(b"vmhd", 0, 1, bytes(8))
               + box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1) + full_box(b"url ", 0, 1, b"")))
               + stbl)
    return box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf))


def fragmented_mp4(seconds: float, *, timescale: int = 90_000, fps: int = 25, fragment_seconds: int = 2,
                   per_sample_durations: bool = True, tfdt: bool = True, default_in: str = "tfhd",
                   mvhd_duration: int = 0, mehd_seconds: float | None = None,
                   audio_timescale: int | None = None) -> bytes:
    """A fragmented MP4 of ``seconds``: one video track (``fps`` samples a second in the
    track's ``timescale``), and an AAC-like audio track of 1024-sample frames when
    ``audio_timescale`` is given. Sample durations are written per sample in ``trun``, or as
    a default in ``tfhd`` or ``trex`` (``default_in``)."""
    movie_timescale = 1000
    sample = timescale // fps
    tracks = [(1, timescale, b"vide", sample, int(seconds * fps))]
    if audio_timescale:
        tracks.append((2, audio_timescale, b"soun", 1024, int(seconds * audio_timescale / 1024)))
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, movie_timescale, mvhd_duration)
                    + struct.pack(">IH", 0x10000, 0x100) + bytes(10) + MATRIX + bytes(24)
                    + struct.pack(">I", len(tracks) + 1))
    mvex = b""
    if mehd_seconds is not None:
        mvex += full_box(b"mehd", 0, 0, struct.pack(">I", int(mehd_seconds * movie_timescale)))
    for track_id, _ts, _handler, duration, _count in tracks:
        trex_default = duration if default_in == "trex" else 0
        mvex += full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, trex_default, 0, 0))
    moov = box(b"moov", mvhd + b"".join(_trak(t, ts, h) for t, ts, h, _d, _c in tracks) + box(b"mvex", mvex))
    out = [box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso6mp41"), moov]
    sequence = 0
    decode = {track_id: 0 for track_id, *_rest in tracks}
    done = {track_id: 0 for track_id, *_rest in tracks}
    while any(done[t] < count for t, _ts, _h, _d, count in tracks):
        sequence += 1
        trafs = []
        payload = b""
        for track_id, ts, _handler, duration, count in tracks:
            per_fragment = max(1, fragment_seconds * ts // duration)
            n = min(per_fragment, count - done[track_id])
            if n <= 0:
                continue
            tfhd_flags = 0x020000
            tfhd_body = struct.pack(">I", track_id)
            if default_in == "tfhd" and not per_sample_durations:
                tfhd_flags |= 0x08
                tfhd_body += struct.pack(">I", duration)
            parts = [full_box(b"tfhd", 0, tfhd_flags, tfhd_body)]
            if tfdt:
                parts.append(full_box(b"tfdt", 1, 0, struct.pack(">Q", decode[track_id])))
            trun_flags = 0x001 | 0x200 | (0x100 if per_sample_durations else 0)
            entries = b"".join(
                (struct.pack(">I", duration) if per_sample_durations else b"") + struct.pack(">I", 4) for _ in range(n)
            )
            parts.append(full_box(b"trun", 0, trun_flags, struct.pack(">Ii", n, 0) + entries))
            trafs.append(box(b"traf", b"".join(parts)))
            payload += b"\x00" * (4 * n)
            decode[track_id] += n * duration
            done[track_id] += n
        out.append(box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)) + b"".join(trafs)))
        out.append(box(b"mdat", payload))
    return b"".join(out)


# ---------------------------------------------------------------- real files, headers removed


def without_webm_duration(data: bytes) -> bytes:
    """A real WebM with its Duration element turned into a Void element of the same length."""
    at = data.index(b"\x44\x89")
    size = data[at + 2]
    assert size & 0x80, "a one-byte size"
    length = size & 0x7F
    # Void (0xEC) with a one-byte size covers the same 3 + length bytes.
    return data[:at] + b"\xec" + bytes([0x80 | (length + 1)]) + b"\x00" * (length + 1) + data[at + 3 + length :]


def without_mp4_durations(data: bytes) -> bytes:
    """A real (unfragmented) MP4 with the durations of ``mvhd``, ``tkhd`` and ``mdhd`` zeroed:
    only the sample tables (``stts``) still tell."""
    out = bytearray(data)
    for kind, offset in ((b"mvhd", 16), (b"mdhd", 16), (b"tkhd", 20)):
        start = 0
        while (at := out.find(kind, start)) != -1:
            version = out[at + 4]
            assert version == 0, "version 0 boxes"
            out[at + 4 + offset : at + 4 + offset + 4] = b"\x00\x00\x00\x00"
            start = at + 4
    return bytes(out)
