"""Whether an uploaded PDF is whole: a file cut short (an upload or a save that stopped half
way) keeps its ``%PDF-`` header but loses its end, and no reader opens it.

A PDF ends with its cross-reference offset and the end-of-file marker (ISO 32000-1, 7.5.5:
``startxref``, the offset, ``%%EOF``); readers look for them in the last kilobyte or so, and
incremental updates keep that shape. No PDF library is needed for this much."""

from __future__ import annotations

# Bytes read from the end of the file: Acrobat wants %%EOF in the last kilobyte, but other
# readers open a PDF with more padding after it (a mail gateway's or a scanner's), so the
# check allows plenty.
TAIL_BYTES = 64 * 1024


def is_whole(tail: bytes) -> bool:
    """``tail``: the file's last ``TAIL_BYTES`` bytes (or all of a smaller file)."""
    marker = tail.rfind(b"%%EOF")
    return marker > 0 and b"startxref" in tail[:marker]
