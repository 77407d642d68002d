"""氏名カナ stored as full-width katakana

Rows written before this revision hold 氏名カナ as typed (ひらがな, half-width ｶﾅ, doubled
spaces). The application now normalises every way in (lms.roster.kana); this revision
brings the existing rows to the same form, so that rosters sort by kana. The rule is
written out here (not imported), so this revision stays what it is when the code changes.

Revision ID: b1c5a7e3d9f2
Revises: e4b7d1c9a2f0
Create Date: 2026-12-03 07:00:00

"""
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = 'b1c5a7e3d9f2'
down_revision = 'e4b7d1c9a2f0'
branch_labels = None
depends_on = None

_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in (*range(0x3041, 0x3097), 0x309D, 0x309E)}


def _kana(value):
    text = unicodedata.normalize("NFKC", value or "")
    return " ".join(text.translate(_HIRAGANA_TO_KATAKANA).split())


def upgrade():
    bind = op.get_bind()
    staff = sa.table("staff_member", sa.column("id", sa.Integer), sa.column("full_name_kana", sa.String))
    changes = []
    rows = bind.execute(sa.select(staff.c.id, staff.c.full_name_kana).where(staff.c.full_name_kana != "")).all()
    for row in rows:
        kana = _kana(row.full_name_kana)
        if kana != row.full_name_kana:
            changes.append({"row_id": row.id, "kana": kana})
        if len(changes) >= 5000:
            _write(bind, staff, changes)
            changes = []
    _write(bind, staff, changes)


def _write(bind, staff, changes):
    if changes:
        bind.execute(staff.update().where(staff.c.id == sa.bindparam("row_id"))
                     .values(full_name_kana=sa.bindparam("kana")), changes)


def downgrade():
    pass  # the kana as typed is not kept; the normalised form is valid for older code too
