"""Search folds hiragana/katakana and long-vowel marks; synonym groups for the catalogue

A new table search_synonym (groups of words a search treats as one), seeded with the common
ones; the stored search texts of courses and transcript cues are folded again the new way
(lms.courses.search): NFKC, case folding, hiragana → katakana, long-vowel marks after kana
dropped. The rule is written out here, so this revision stays what it is when the code changes.

Revision ID: c7d2e9a4f1b6
Revises: b1c5a7e3d9f2
Create Date: 2026-12-03 07:10:00

"""
import re
import unicodedata
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = 'c7d2e9a4f1b6'
down_revision = 'b1c5a7e3d9f2'
branch_labels = None
depends_on = None

_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}
_LONG_VOWEL = re.compile(r"(?<=[\u30a1-\u30fa])[ー〜～~\-‐－]+")
SEED = ("エクセル Excel", "パワポ パワーポイント PowerPoint", "チームズ Teams", "ワード Word", "アウトルック Outlook")


def _fold(text):
    folded = unicodedata.normalize("NFKC", text or "").casefold().translate(_HIRAGANA_TO_KATAKANA)
    return _LONG_VOWEL.sub("", folded)


def upgrade():
    table = op.create_table(
        'search_synonym',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('words', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_search_synonym')),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(table, [{"words": words, "created_at": now} for words in SEED])

    bind = op.get_bind()
    course = sa.table("course", sa.column("id", sa.Integer), sa.column("title", sa.String),
                      sa.column("summary", sa.String), sa.column("description_md", sa.Text),
                      sa.column("category_id", sa.Integer), sa.column("search_text", sa.Text))
    category = sa.table("category", sa.column("id", sa.Integer), sa.column("name", sa.String))
    names = dict(bind.execute(sa.select(category.c.id, category.c.name)).all())
    rows = bind.execute(sa.select(course.c.id, course.c.title, course.c.summary, course.c.description_md,
                                  course.c.category_id)).all()
    changes = [{"row_id": r.id, "folded": _fold("\n".join([r.title, r.summary or "", r.description_md or "",
                                                              names.get(r.category_id, "")]))} for r in rows]
    if changes:
        bind.execute(course.update().where(course.c.id == sa.bindparam("row_id"))
                     .values(search_text=sa.bindparam("folded")), changes)

    cue = sa.table("transcript_cue", sa.column("id", sa.Integer), sa.column("speaker", sa.String),
                   sa.column("text", sa.Text), sa.column("search_text", sa.Text))
    rows = bind.execute(sa.select(cue.c.id, cue.c.speaker, cue.c.text)).all()
    for start in range(0, len(rows), 5000):
        batch = [{"row_id": r.id, "folded": _fold(f"{r.speaker} {r.text}" if r.speaker else r.text)}
                 for r in rows[start:start + 5000]]
        bind.execute(cue.update().where(cue.c.id == sa.bindparam("row_id")).values(search_text=sa.bindparam("folded")),
                     batch)


def downgrade():
    op.drop_table('search_synonym')
