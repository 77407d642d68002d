"""``flask --app wsgi lms …`` commands: this module's, plus the areas' own, added to the
same ``lms`` group: ``sync-tenants`` and ``sign-out-everywhere`` (``lms.auth.commands``) and
the Teams area's group of ``graph-…`` commands (``lms.teams.cli``)."""

from __future__ import annotations

import logging

import click
from flask import Flask
from flask.cli import AppGroup, ScriptInfo

from lms import jobs
from lms.auth.commands import sign_out_everywhere_command, sync_tenants_command
from lms.common.jobs import use_app
from lms.completion import summary
from lms.demo import load_demo
from lms.extensions import db
from lms.municipalities.services import load_municipalities
from lms.synth import SyntheticRefused, generate_synthetic
from lms.teams.cli import graph_cli

lms_cli = AppGroup("lms", help="Manabi administration commands.")


@lms_cli.command("load-municipalities")
def load_municipalities_command():
    """Load 東京都 and its 62 区市町村 (check digits verified)."""
    added, updated = load_municipalities()
    db.session.commit()
    click.echo(f"municipalities: {added} added, {updated} updated")


@lms_cli.command("demo")
def demo_command():
    """Load the municipalities and a realistic demo data set (idempotent)."""
    summary = load_demo()
    db.session.commit()
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


@lms_cli.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, help="Worker threads.")
@click.option("--no-periodic", is_flag=True, help="Do not run periodic tasks (outbox sweep, reminders).")
def worker_command(workers: int, no_periodic: bool):
    """Run the background worker (huey): mail outbox, reminders and every area's tasks."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The tasks use this app, not a second one: the one flask's CLI loaded for this command.
    use_app(click.get_current_context().ensure_object(ScriptInfo).load_app())
    jobs.huey.immediate = False
    consumer = jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=not no_periodic)
    click.echo(f"worker: {workers} threads, storage {type(jobs.huey).__name__}")
    consumer.run()


@lms_cli.command("synth")
@click.option("--users", type=click.IntRange(1), default=200000, show_default=True, help="Staff members (職員).")
@click.option("--municipalities", type=click.IntRange(1, 63), default=63, show_default=True)
@click.option("--courses", type=click.IntRange(1), default=2000, show_default=True)
@click.option("--enrollments", type=click.IntRange(0), default=2000000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same data set.")
@click.option("--force", is_flag=True, help="Write even into a database holding non-synthetic data.")
def synth_command(users, municipalities, courses, enrollments, seed, force):
    """Generate a synthetic data set (staff, courses, sessions, enrollments, attendance,
    viewing and completions) in bulk, for benchmarks and for trying the dashboards."""
    try:
        summary = generate_synthetic(
            users=users, municipalities=municipalities, courses=courses, enrollments=enrollments,
            seed=seed, force=force, echo=click.echo,
        )
    except SyntheticRefused as exc:
        raise click.ClickException(str(exc)) from exc
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


@lms_cli.command("completion-summary")
@click.option("--check", "mode", flag_value="check", default=True, help="Compare with a fresh aggregate (default).")
@click.option("--rebuild", "mode", flag_value="rebuild", help="Recompute every summary row from the data.")
def completion_summary_command(mode):
    """The dashboards' summaries (per municipality, fiscal year and course / staff member):
    check them against a fresh aggregate of enrollments, attendance and completions, or
    rebuild them (after writing those tables other than through the app, e.g. by SQL)."""
    if mode == "rebuild":
        courses, staff = summary.rebuild(db.session())
        db.session.commit()
        click.echo(f"rebuilt: {courses} course rows, {staff} staff rows")
        return
    report = summary.check(db.session())
    db.session.rollback()
    if report.ok:
        click.echo(f"summaries match a fresh aggregate: {report.course_rows} course rows, {report.staff_rows} staff rows")
        return
    for line in report.differences:
        click.echo(line)
    raise click.ClickException(f"summaries differ from a fresh aggregate ({len(report.differences)} shown); "
                               "run with --rebuild")


# The areas' commands keep their names under ``lms`` (``flask lms graph-sync-meetings``).
for _command in (sync_tenants_command, sign_out_everywhere_command, *graph_cli.commands.values()):
    lms_cli.add_command(_command)


def register_cli(app: Flask) -> None:
    app.cli.add_command(lms_cli)
