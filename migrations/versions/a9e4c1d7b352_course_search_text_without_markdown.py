"""Courses' stored search text holds a description's words, not its Markdown marks

Descriptions were indexed as typed (「## 対象」, 「**…**」, list dashes, link targets), so a
search for 「#」 or 「**」 found every course using them. The text is built again as
lms.courses.services.refresh_search_text now builds it: title, summary, the description's
words (Markdown rendered, tags removed) and the category, folded as lms.courses.search folds
(NFKC, case folding, hiragana → katakana, long-vowel marks after kana dropped). Both rules are
written out here, so this revision stays what it is when the code changes.

Revision ID: a9e4c1d7b352
Revises: f2a6c8e4b1d9
Create Date: 2026-12-06 20:00:00

"""
import re
import unicodedata
from html import unescape

import nh3
import sqlalchemy as sa
from alembic import op
from markdown_it import MarkdownIt

revision = 'a9e4c1d7b352'
down_revision = 'f2a6c8e4b1d9'
branch_labels = None
depends_on = None

_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}
_LONG_VOWEL = re.compile(r"(?<=[\u30a1-\u30fa])[ー〜～~\-‐－]+")
_BLOCK_END = re.compile(r"(</(?:p|li|h[1-6]|td|th|tr|blockquote|pre)>|<br\s*/?>|<hr\s*/?>)")
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def _fold(text):
    folded = unicodedata.normalize("NFKC", text or "").casefold().translate(_HIRAGANA_TO_KATAKANA)
    return _LONG_VOWEL.sub("", folded)


def _words(markdown):
    html = _BLOCK_END.sub(r"\1\n", _md.render(markdown or ""))
    return " ".join(unescape(nh3.clean(html, tags=set())).split())


def upgrade():
    bind = op.get_bind()
    course = sa.table("course", sa.column("id", sa.Integer), sa.column("title", sa.String),
                      sa.column("summary", sa.String), sa.column("description_md", sa.Text),
                      sa.column("category_id", sa.Integer), sa.column("search_text", sa.Text))
    category = sa.table("category", sa.column("id", sa.Integer), sa.column("name", sa.String))
    names = dict(bind.execute(sa.select(category.c.id, category.c.name)).all())
    rows = bind.execute(sa.select(course.c.id, course.c.title, course.c.summary, course.c.description_md,
                                  course.c.category_id)).all()
    for start in range(0, len(rows), 1000):
        batch = [{"row_id": r.id, "folded": _fold("\n".join([r.title, r.summary or "", _words(r.description_md),
                                                              names.get(r.category_id, "")]))}
                 for r in rows[start:start + 1000]]
        bind.execute(course.update().where(course.c.id == sa.bindparam("row_id"))
                     .values(search_text=sa.bindparam("folded")), batch)


def downgrade():
    pass  # (the text indexed with the marks is not worth restoring)
