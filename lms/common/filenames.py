"""File names given by users (an upload's name), made safe to show and to offer as a
download's name. Storage keys never derive from them."""

from __future__ import annotations

import re
import unicodedata

_RESERVED = re.compile(r"[<>:\"/\\|?*]+")
# Control characters (Cc) and the invisible formatting ones (Cf: the bidirectional overrides
# and isolates U+202A–202E and U+2066–2069, the marks U+200E/200F, zero-width spaces and
# joiners, U+FEFF), and the line and paragraph separators: 「研修\u202egpj.exe」 was shown
# as 「研修exe.jpg」.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def sanitise_filename(name: str, fallback: str = "file") -> str:
    """A display/download name: no directories, no control, formatting or reserved
    characters, ≤ 120 chars."""
    name = unicodedata.normalize("NFC", name or "")
    name = "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _RESERVED.sub("_", name).strip(" .")
    name = re.sub(r"\.{2,}", ".", name)
    if not name:
        name = fallback
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 120 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:120]
    return name
