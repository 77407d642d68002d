"""Viva Learning with the real worker killed mid-run: the new worker takes the run over, looks
up the activity whose creation the dead one had sent, and every learner ends with exactly one
activity in Viva Learning."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

from sqlalchemy import select

from lms.common.timeutil import fiscal_year_of, today_tokyo
from lms.completion.models import MandatoryAssignment
from lms.teams.models import GraphOperation
from lms.teams.viva import services as viva
from lms.teams.viva.models import VivaActivity, VivaTenant
from tests.factories import municipality, tenant_for
from tests.notifications.test_worker_process import _wait_for
from tests.teams.test_graph_faults import start_worker, worker_env  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
CODE = "131016"
LEARNERS = 4


def queue_elsewhere(env: dict, tenant_id: str, course_id: int, fiscal_year: int) -> None:
    """A change committed by another process (as the web app would): the operation goes to the
    worker's queue after the commit."""
    script = (
        "from lms import create_app\n"
        "from lms.extensions import db\n"
        "from lms.teams.viva import services\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    services.queue_changes([{tenant_id!r}], course_years=[({course_id}, {fiscal_year})])\n"
        "    db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=120)


def viva_op(db):
    db.session.rollback()  # a fresh snapshot: the worker commits
    return db.session.scalar(select(GraphOperation).where(GraphOperation.kind == viva.VIVA_SYNC)
                             .order_by(GraphOperation.id.desc()).limit(1))


def test_worker_killed_mid_run_ends_with_each_activity_sent_once(
        graph_app, graph_server, db, make_course, make_user, worker_env, start_worker, tmp_path):  # noqa: F811
    tenant_id = tenant_for(CODE)
    registration_id = graph_server.register_learning_provider()
    learners = [make_user("learner", CODE, name=f"受講者 {i}") for i in range(LEARNERS)]
    course = make_course(title="コンプライアンス研修")
    fiscal_year = fiscal_year_of(today_tokyo())
    db.session.add(VivaTenant(tenant_id=tenant_id, enabled=True, registration_id=registration_id))
    db.session.commit()
    # The course is in Viva Learning already (sent in this process).
    viva.queue_changes([tenant_id], courses=[course.id])
    db.session.commit()
    assert f"manabi-course-{course.id}" in graph_server.viva_contents[registration_id]
    # A 指名研修 for every staff member of the municipality, written without its event: the
    # change is queued by another process, for the worker.
    db.session.add(MandatoryAssignment(course_id=course.id, fiscal_year=fiscal_year,
                                       municipality_id=municipality(CODE).id, due_on=date(fiscal_year + 1, 3, 1)))
    db.session.commit()
    log = tmp_path / "worker.log"
    held = graph_server.hold("learningCourseActivities")  # the first activity's POST
    queue_elsewhere(worker_env, tenant_id, course.id, fiscal_year)
    worker = start_worker()
    assert held.reached.wait(90), Path(log).read_text(errors="replace")[-3000:]
    # The POST has reached Graph; the worker waits for the answer: kill it there, then let
    # Graph create the activity (the dead worker never learns its id).
    worker.kill(signal.SIGKILL)
    held.release()
    _wait_for(lambda: len(graph_server.viva_activities[registration_id]) == 1, timeout=30, what="the held POST")
    op = viva_op(db)
    assert op.status == "running" and op.attempts == 1
    (pending,) = db.session.scalars(select(VivaActivity)).all()
    assert pending.activity_id == "" and pending.pending_by.split(":")[1] == str(worker.proc.pid)

    start_worker()
    _wait_for(lambda: viva_op(db).status == "done", timeout=180, what="the take-over", log=log)
    op = viva_op(db)
    assert op.attempts == 2 and op.last_error == ""

    on_graph = list(graph_server.viva_activities[registration_id].values())
    learner_ids = sorted(a["learnerUserId"] for a in on_graph)
    assert len(set(learner_ids)) == len(learner_ids)  # nobody has two
    assert {u.object_id for u in learners} <= set(learner_ids)
    posts = graph_server.calls("POST", "learningCourseActivities")
    assert len(posts) == len(on_graph)  # each created once: the held one was looked up, not posted again
    lookups = [r for r in graph_server.calls("GET", "learningCourseActivities(") if r.status == 200]
    assert len(lookups) == 1
    db.session.rollback()
    rows = db.session.scalars(select(VivaActivity)).all()
    assert len(rows) == len(on_graph) and all(r.activity_id and r.pending_by is None for r in rows)
    assert {r.activity_id for r in rows} == {a["id"] for a in on_graph}
