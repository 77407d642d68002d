"""Japanese substring search: one folded form for stored text and queries, and synonyms.

Staff type what they say: えくせる, エクセル, ｴｸｾﾙ, Excel; チームズ for Teams; コンピュータ or
コンピューター. ``normalise_for_search`` folds text and queries into one form, so that a plain
substring match finds them all:

- NFKC: full-width ASCII → half-width, half-width kana → full-width;
- case folding (ＴＥＡＭＳ, teams → teams);
- hiragana → katakana (せきゅりてぃ → セキュリティ);
- long-vowel marks dropped (ー, and the ～ ~ - typed for one after kana), so コンピューター,
  コンピュータ and こんぴゅーた meet.

Words that no folding can join (エクセル ↔ Excel, パワポ ↔ PowerPoint) are synonym groups the
platform admin keeps (lms.admin, /admin/search/synonyms): a query term equal to one word of a
group also matches the others. Groups are read once a minute per process (``synonyms()``).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata

from flask_babel import gettext as _
from sqlalchemy import select

from lms.audit.services import record_action
from lms.common.database import lock_table_for_writes
from lms.common.errors import InvalidInput, NotFound
from lms.courses.models import SearchSynonym
from lms.extensions import db

_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}
# A long-vowel mark (or what is typed for one) right after a kana character.
_LONG_VOWEL = re.compile(r"(?<=[\u30a1-\u30fa])[ー〜～~\-‐－]+")
SYNONYM_TTL_SECONDS = 60.0
# Seeded by the migration that created the table, and by the demo data.
DEFAULT_SYNONYMS = ("エクセル Excel", "パワポ パワーポイント PowerPoint", "チームズ Teams", "ワード Word",
                    "アウトルック Outlook")


def normalise_for_search(text: str) -> str:
    """The folded form of ``text`` (see the module's docstring)."""
    folded = unicodedata.normalize("NFKC", text or "").casefold().translate(_HIRAGANA_TO_KATAKANA)
    return _LONG_VOWEL.sub("", folded)


_cache: dict[str, object] = {"at": -1e9, "groups": {}}
_cache_lock = threading.Lock()


def synonyms() -> dict[str, tuple[str, ...]]:
    """word (folded) → every word of its group (folded), as stored at most a minute ago."""
    now = time.monotonic()
    if now - float(_cache["at"]) > SYNONYM_TTL_SECONDS:  # type: ignore[arg-type]
        with _cache_lock:
            if now - float(_cache["at"]) > SYNONYM_TTL_SECONDS:  # type: ignore[arg-type]
                groups: dict[str, tuple[str, ...]] = {}
                for words in db.session.scalars(select(SearchSynonym.words)):
                    group = tuple(dict.fromkeys(w for w in (normalise_for_search(x) for x in words.split()) if w))
                    for word in group:
                        groups[word] = tuple(dict.fromkeys(groups.get(word, ()) + group))
                _cache["groups"], _cache["at"] = groups, now
    return _cache["groups"]  # type: ignore[return-value]


def seed_default_synonyms() -> None:
    """The common groups, where none exist yet (demo data; a migrated database has them)."""
    if db.session.scalar(select(SearchSynonym.id).limit(1)) is None:
        db.session.add_all(SearchSynonym(words=words) for words in DEFAULT_SYNONYMS)
        forget_synonyms()


def forget_synonyms() -> None:
    """After an edit: this process reads the groups again on its next search."""
    _cache["at"] = -1e9


def expand(term: str) -> tuple[str, ...]:
    """A folded query term and its synonyms (the term first)."""
    return synonyms().get(term, (term,)) if term else ()


def search_terms(q: str) -> list[tuple[str, ...]]:
    """Every term of a query (words separated by spaces), folded, with its synonyms: each term
    must match one of its own (the catalogue's search and the captions' search read a query
    alike)."""
    return [expand(_without_leading_long_vowel(t)) for t in normalise_for_search(q).split() if t]


def _without_leading_long_vowel(term: str) -> str:
    """A term typed from the middle of a word (ード of パスワード) starts with a long-vowel mark
    that the stored text, where it followed a kana, no longer has: the term is looked for
    without it (which finds every text that has it, too). A term of marks alone stays."""
    return term.lstrip("ー") or term


# ---------------------------------------------------------------- editing (platform admins)

MAX_WORD_LENGTH = 50


def synonym_groups() -> list[SearchSynonym]:
    return list(db.session.scalars(select(SearchSynonym).order_by(SearchSynonym.words)))


def add_synonym_group(actor, text: str) -> SearchSynonym:
    """A group from words separated by spaces (or commas, 、): at least two different words
    once folded. The caller commits."""
    words = list(dict.fromkeys(w for w in re.split(r"[\s,、，]+", unicodedata.normalize("NFKC", text or "")) if w))
    if len({normalise_for_search(w) for w in words}) < 2:
        raise InvalidInput(_("同じ意味の語を 2 つ以上、空白で区切って入力してください（例：エクセル Excel）。"), field="words")
    if any(len(w) > MAX_WORD_LENGTH for w in words) or len(" ".join(words)) > 500:
        raise InvalidInput(_("語が長すぎます（1 語 %(n)s 文字まで）。", n=MAX_WORD_LENGTH), field="words")
    # Read under the table's write lock: the same group sent twice at once is added once.
    lock_table_for_writes(SearchSynonym.__tablename__)
    taken = {normalise_for_search(w) for group in synonym_groups() for w in group.words.split()}
    repeated = [w for w in words if normalise_for_search(w) in taken]
    if repeated:
        raise InvalidInput(_("「%(word)s」は別のグループにあります。そのグループを削除してから登録してください。",
                             word=repeated[0]), field="words")
    group = SearchSynonym(words=" ".join(words))
    db.session.add(group)
    db.session.flush()
    record_action(actor, "search.synonym_add", "search_synonym", group.id, None, words=group.words)
    forget_synonyms()
    return group


def delete_synonym_group(actor, group_id: int) -> str:
    """Remove a group; returns its words. The caller commits."""
    lock_table_for_writes(SearchSynonym.__tablename__)  # deleted twice at once: once (and one audit entry)
    group = db.session.get(SearchSynonym, group_id, populate_existing=True)
    if group is None:
        raise NotFound(_("同義語のグループが見つかりません。"))
    words = group.words
    db.session.delete(group)
    record_action(actor, "search.synonym_delete", "search_synonym", group_id, None, words=words)
    forget_synonyms()
    return words
