"""Japanese substring search helpers."""

from __future__ import annotations

import unicodedata


def normalise_for_search(text: str) -> str:
    """NFKC (full-width ASCII → half-width, half-width kana → full-width) and case-folded."""
    return unicodedata.normalize("NFKC", text or "").casefold()
