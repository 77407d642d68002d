"""氏名カナ as one form: full-width katakana, whatever way it came in.

People type カナ as ひらがな, as half-width ｶﾀｶﾅ, with full-width or doubled spaces; Excel
files and HR systems add their own. Stored as typed, a roster sorted by kana puts
ひらがな after every カタカナ and splits one surname in two. Every way in (the form, CSV and
Excel imports, the model itself) stores ``normalise_kana(value)``.
"""

from __future__ import annotations

import unicodedata

# ぁ (U+3041) … ゖ (U+3096) and the iteration marks ゝ ゞ → the katakana 0x60 above them.
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}


def to_katakana(value: str) -> str:
    """ひらがな → カタカナ (other characters unchanged)."""
    return value.translate(_HIRAGANA_TO_KATAKANA)


def normalise_kana(value: str | None) -> str:
    """NFKC (half-width ｶﾅ → full-width, full-width spaces → spaces), hiragana → katakana,
    trimmed, inner whitespace collapsed to one space (between family and given name)."""
    text = unicodedata.normalize("NFKC", value or "")
    return " ".join(to_katakana(text).split())
