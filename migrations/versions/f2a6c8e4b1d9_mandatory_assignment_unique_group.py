"""One mandatory assignment per course, fiscal year and group: a unique index over (course,
year, municipality, 所属, 職名, new staff's year) — with "every municipality" and "not only new
staff" (NULL) clashing too: one partial index for each combination of them. Copies already made (the same form posted
twice) are removed first: of each set the first one made is kept, the notes of the others
added to its own when they differ.

Revision ID: f2a6c8e4b1d9
Revises: e7a3d5c2b914
Create Date: 2026-12-06 19:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f2a6c8e4b1d9'
down_revision = 'e7a3d5c2b914'
branch_labels = None
depends_on = None

_INDEXES = (
    ("uq_mandatory_assignment_group", "municipality_id, new_staff_fiscal_year, ", ""),
    ("uq_mandatory_assignment_group_everywhere", "new_staff_fiscal_year, ", " WHERE municipality_id IS NULL"),
    ("uq_mandatory_assignment_group_all_staff", "municipality_id, ", " WHERE new_staff_fiscal_year IS NULL"),
    ("uq_mandatory_assignment_group_everywhere_all_staff", "",
     " WHERE municipality_id IS NULL AND new_staff_fiscal_year IS NULL"),
)

_SAME_GROUP = """
    other.course_id = mandatory_assignment.course_id
    AND other.fiscal_year = mandatory_assignment.fiscal_year
    AND coalesce(other.municipality_id, 0) = coalesce(mandatory_assignment.municipality_id, 0)
    AND other.department = mandatory_assignment.department
    AND other.job_title = mandatory_assignment.job_title
    AND coalesce(other.new_staff_fiscal_year, 0) = coalesce(mandatory_assignment.new_staff_fiscal_year, 0)
"""


def upgrade():
    bind = op.get_bind()
    # The first of each set (the lowest id) keeps the notes the copies made after it carry.
    kept = bind.execute(sa.text(f"""
        SELECT id, note FROM mandatory_assignment
        WHERE NOT EXISTS (SELECT 1 FROM mandatory_assignment other WHERE {_SAME_GROUP} AND other.id < mandatory_assignment.id)
          AND EXISTS (SELECT 1 FROM mandatory_assignment other WHERE {_SAME_GROUP} AND other.id > mandatory_assignment.id)
    """)).all()
    for kept_id, note in kept:
        copies = bind.execute(sa.text(f"""
            SELECT mandatory_assignment.note FROM mandatory_assignment
            JOIN mandatory_assignment other ON other.id = :kept AND {_SAME_GROUP}
            WHERE mandatory_assignment.id > :kept ORDER BY mandatory_assignment.id
        """), {"kept": kept_id}).scalars().all()
        notes = [note or ""]
        for text in copies:
            if text and text not in notes:
                notes.append(text)
        merged = "\n".join(n for n in notes if n)
        if merged != (note or ""):
            bind.execute(sa.text("UPDATE mandatory_assignment SET note = :note WHERE id = :id"),
                         {"note": merged, "id": kept_id})
    op.execute(f"""
        DELETE FROM mandatory_assignment
        WHERE EXISTS (SELECT 1 FROM mandatory_assignment other WHERE {_SAME_GROUP} AND other.id < mandatory_assignment.id)
    """)
    # "Every municipality" and "not only new staff" are NULL, and NULLs never clash in a unique
    # index: one partial index for each combination (an index on coalesce() is not reflected on
    # SQLite).
    for name, columns, where in _INDEXES:
        op.execute(f"CREATE UNIQUE INDEX {name} ON mandatory_assignment "
                   f"(course_id, fiscal_year, {columns}department, job_title){where}")


def downgrade():
    # (the copies removed are not made again)
    for name, _columns, _where in _INDEXES:
        op.execute(f"DROP INDEX {name}")
