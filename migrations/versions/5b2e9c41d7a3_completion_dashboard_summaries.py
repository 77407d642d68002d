"""completion dashboard summaries: completion_course_summary and completion_staff_summary

Also ix_completion_course_year_status becomes ix_completion_course_year_status_municipality
(the municipality added, covering), so that one summary key's completions are read from the
index alone.

Per (municipality, fiscal year, course) and (municipality, fiscal year, staff member):
what the completion dashboards count, kept in step with every change by
lms.completion.summary. Filled from the existing data on upgrade (``fill_summaries``
below: the figures as that module computed them when this revision was written).

Revision ID: 5b2e9c41d7a3
Revises: a3c81f0e5d27
Create Date: 2026-11-27 11:00:00

"""
from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '5b2e9c41d7a3'
down_revision = 'a3c81f0e5d27'
branch_labels = None
depends_on = None

COURSE_COUNTS = ('enrolled', 'done', 'attended', 'completed_live', 'completed_archive', 'completed_both',
                 'completed_manual', *(f'm{i}' for i in range(1, 13)))


def upgrade():
    op.create_table(
        'completion_course_summary',
        sa.Column('municipality_id', sa.Integer(), nullable=False),
        sa.Column('fiscal_year', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COURSE_COUNTS),
        sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_completion_course_summary_course_id_course')),
        sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'],
                                name=op.f('fk_completion_course_summary_municipality_id_municipality')),
        sa.PrimaryKeyConstraint('municipality_id', 'fiscal_year', 'course_id', name=op.f('pk_completion_course_summary')),
    )
    op.create_table(
        'completion_staff_summary',
        sa.Column('municipality_id', sa.Integer(), nullable=False),
        sa.Column('fiscal_year', sa.Integer(), nullable=False),
        sa.Column('staff_member_id', sa.Integer(), nullable=False),
        sa.Column('enrolled_courses', sa.Integer(), nullable=False),
        sa.Column('completed_courses', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'],
                                name=op.f('fk_completion_staff_summary_municipality_id_municipality')),
        sa.ForeignKeyConstraint(['staff_member_id'], ['staff_member.id'],
                                name=op.f('fk_completion_staff_summary_staff_member_id_staff_member')),
        sa.PrimaryKeyConstraint('municipality_id', 'fiscal_year', 'staff_member_id',
                                name=op.f('pk_completion_staff_summary')),
    )
    # One summary key's completions from the index alone (replaces the index on
    # course_id, fiscal_year, status, of which it is an extension).
    with op.batch_alter_table('completion', schema=None) as batch_op:
        batch_op.drop_index('ix_completion_course_year_status')
        batch_op.create_index('ix_completion_course_year_status_municipality',
                              ['course_id', 'fiscal_year', 'status', 'municipality_id'], unique=False,
                              postgresql_include=['staff_member_id', 'method', 'completed_at'])
    # Fill them from the existing enrollments, attendance and completions
    # (`flask lms completion-summary --rebuild` does the same later).
    fill_summaries(op.get_bind())


# ---------------------------------------------------------------- the figures, frozen here

TOKYO = ZoneInfo('Asia/Tokyo')
METHOD_COLUMNS = {'live': 'completed_live', 'archive': 'completed_archive', 'both': 'completed_both',
                  'manual': 'completed_manual'}
STAFF_COUNTS = ('enrolled_courses', 'completed_courses')

enrollment = sa.table('enrollment', sa.column('session_id', sa.Integer), sa.column('staff_member_id', sa.Integer),
                      sa.column('municipality_id', sa.Integer), sa.column('status', sa.String))
training_session = sa.table('training_session', sa.column('id', sa.Integer), sa.column('course_id', sa.Integer),
                            sa.column('starts_at', sa.DateTime(timezone=True)))
completion = sa.table('completion', sa.column('staff_member_id', sa.Integer), sa.column('course_id', sa.Integer),
                      sa.column('municipality_id', sa.Integer), sa.column('fiscal_year', sa.Integer),
                      sa.column('status', sa.String), sa.column('method', sa.String),
                      sa.column('completed_at', sa.DateTime(timezone=True)))
attendance = sa.table('attendance', sa.column('session_id', sa.Integer), sa.column('staff_member_id', sa.Integer),
                      sa.column('attended', sa.Boolean))
staff_member = sa.table('staff_member', sa.column('id', sa.Integer), sa.column('municipality_id', sa.Integer))
course_summary = sa.table('completion_course_summary', sa.column('municipality_id', sa.Integer),
                          sa.column('fiscal_year', sa.Integer), sa.column('course_id', sa.Integer),
                          *(sa.column(name, sa.Integer) for name in COURSE_COUNTS))
staff_summary = sa.table('completion_staff_summary', sa.column('municipality_id', sa.Integer),
                         sa.column('fiscal_year', sa.Integer), sa.column('staff_member_id', sa.Integer),
                         *(sa.column(name, sa.Integer) for name in STAFF_COUNTS))


def fiscal_year_of(value):
    """年度 of a stored timestamp (naive on SQLite: UTC), judged in Tokyo."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    day = value.astimezone(TOKYO).date()
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(fiscal_year):
    return (datetime(fiscal_year, 4, 1, tzinfo=TOKYO).astimezone(UTC),
            datetime(fiscal_year + 1, 4, 1, tzinfo=TOKYO).astimezone(UTC))


def month_expression(dialect, column):
    """'YYYY-MM' of a UTC timestamp in Tokyo (no daylight saving: +9 hours on SQLite)."""
    if dialect == 'postgresql':
        return sa.func.to_char(sa.func.timezone(sa.literal_column("'Asia/Tokyo'"), column),
                               sa.literal_column("'YYYY-MM'"))
    return sa.func.strftime(sa.literal_column("'%Y-%m'"), column, sa.literal_column("'+9 hours'"))


def course_rows(connection, fy):
    """{(municipality_id, course_id): counts} of one fiscal year; only rows with a count."""
    start, end = fiscal_year_bounds(fy)
    in_year = sa.and_(training_session.c.starts_at >= start, training_session.c.starts_at < end)
    rows = defaultdict(lambda: dict.fromkeys(COURSE_COUNTS, 0))
    enrolled = (
        sa.select(enrollment.c.municipality_id, training_session.c.course_id,
                  sa.func.count(sa.func.distinct(enrollment.c.staff_member_id)),
                  sa.func.count(sa.func.distinct(completion.c.staff_member_id)))
        .select_from(
            enrollment.join(training_session, training_session.c.id == enrollment.c.session_id)
            .outerjoin(completion, sa.and_(
                completion.c.staff_member_id == enrollment.c.staff_member_id,
                completion.c.course_id == training_session.c.course_id,
                completion.c.fiscal_year == fy,
                completion.c.status == 'completed',
                completion.c.municipality_id == enrollment.c.municipality_id,
            )))
        .where(enrollment.c.status == 'confirmed', in_year)
        .group_by(enrollment.c.municipality_id, training_session.c.course_id)
    )
    for mid, cid, n_enrolled, n_done in connection.execute(enrolled):
        rows[(mid, cid)]['enrolled'], rows[(mid, cid)]['done'] = n_enrolled, n_done
    month = month_expression(connection.dialect.name, completion.c.completed_at)
    completed = (
        sa.select(completion.c.municipality_id, completion.c.course_id, completion.c.method, month, sa.func.count())
        .where(completion.c.fiscal_year == fy, completion.c.status == 'completed')
        .group_by(completion.c.municipality_id, completion.c.course_id, completion.c.method, month)
    )
    for mid, cid, method, month_text, n in connection.execute(completed):
        row = rows[(mid, cid)]
        if method in METHOD_COLUMNS:
            row[METHOD_COLUMNS[method]] += n
        if month_text:
            index = (int(month_text[:4]) - fy) * 12 + int(month_text[5:7]) - 3
            if 1 <= index <= 12:
                row[f'm{index}'] += n
    attended = (
        sa.select(staff_member.c.municipality_id, training_session.c.course_id,
                  sa.func.count(sa.func.distinct(attendance.c.staff_member_id)))
        .select_from(attendance)
        .join(training_session, training_session.c.id == attendance.c.session_id)
        .join(staff_member, staff_member.c.id == attendance.c.staff_member_id)
        .where(attendance.c.attended.is_(True), in_year)
        .group_by(staff_member.c.municipality_id, training_session.c.course_id)
    )
    for mid, cid, n in connection.execute(attended):
        rows[(mid, cid)]['attended'] = n
    return {key: row for key, row in rows.items() if any(row.values())}


def staff_rows(connection, fy):
    """{(municipality_id, staff_member_id): counts} of one fiscal year; only rows with a count."""
    start, end = fiscal_year_bounds(fy)
    rows = defaultdict(lambda: dict.fromkeys(STAFF_COUNTS, 0))
    enrolled = (
        sa.select(enrollment.c.municipality_id, enrollment.c.staff_member_id,
                  sa.func.count(sa.func.distinct(training_session.c.course_id)))
        .select_from(enrollment.join(training_session, training_session.c.id == enrollment.c.session_id))
        .where(enrollment.c.status == 'confirmed', training_session.c.starts_at >= start,
               training_session.c.starts_at < end)
        .group_by(enrollment.c.municipality_id, enrollment.c.staff_member_id)
    )
    for mid, sid, n in connection.execute(enrolled):
        rows[(mid, sid)]['enrolled_courses'] = n
    completed = (
        sa.select(completion.c.municipality_id, completion.c.staff_member_id, sa.func.count())
        .where(completion.c.fiscal_year == fy, completion.c.status == 'completed')
        .group_by(completion.c.municipality_id, completion.c.staff_member_id)
    )
    for mid, sid, n in connection.execute(completed):
        rows[(mid, sid)]['completed_courses'] = n
    return {key: row for key, row in rows.items() if any(row.values())}


def fill_summaries(connection):
    """Every summary row, for every fiscal year with sessions or completions."""
    first, last = connection.execute(
        sa.select(sa.func.min(training_session.c.starts_at), sa.func.max(training_session.c.starts_at))).one()
    years = set(connection.scalars(sa.select(completion.c.fiscal_year).distinct()))
    if first is not None:
        years.update(range(fiscal_year_of(first), fiscal_year_of(last) + 1))
    for fy in sorted(years):
        rows = [{'municipality_id': m, 'fiscal_year': fy, 'course_id': c, **counts}
                for (m, c), counts in course_rows(connection, fy).items()]
        if rows:
            connection.execute(course_summary.insert(), rows)
        rows = [{'municipality_id': m, 'fiscal_year': fy, 'staff_member_id': s, **counts}
                for (m, s), counts in staff_rows(connection, fy).items()]
        if rows:
            connection.execute(staff_summary.insert(), rows)


def downgrade():
    with op.batch_alter_table('completion', schema=None) as batch_op:
        batch_op.drop_index('ix_completion_course_year_status_municipality',
                            postgresql_include=['staff_member_id', 'method', 'completed_at'])
        batch_op.create_index('ix_completion_course_year_status', ['course_id', 'fiscal_year', 'status'],
                              unique=False)
    op.drop_table('completion_staff_summary')
    op.drop_table('completion_course_summary')
