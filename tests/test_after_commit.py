"""The one after-commit mechanism: work runs once the transaction is durable, never for a
change that rolled back (whole transaction or the savepoint it was registered in)."""

from sqlalchemy import text

from lms.common.after_commit import after_commit, discard, on_rollback, pending_keys


def test_runs_after_commit_only(app, db):
    ran = []
    db.session.execute(text("SELECT 1"))
    after_commit(lambda: ran.append("a"))
    assert ran == []
    db.session.commit()
    assert ran == ["a"]
    db.session.commit()
    assert ran == ["a"]


def test_rollback_drops_the_work(app, db):
    ran = []
    db.session.execute(text("SELECT 1"))
    after_commit(lambda: ran.append("a"))
    db.session.rollback()
    db.session.execute(text("SELECT 1"))
    db.session.commit()
    assert ran == []


def test_savepoint_rollback_drops_only_its_own_work(app, db):
    ran = []
    db.session.execute(text("SELECT 1"))
    after_commit(lambda: ran.append("outer"))
    savepoint = db.session.begin_nested()
    after_commit(lambda: ran.append("inner"))
    savepoint.rollback()
    released = db.session.begin_nested()
    after_commit(lambda: ran.append("kept"))
    released.commit()
    db.session.commit()
    assert ran == ["outer", "kept"]


def test_same_key_runs_once_and_can_be_discarded(app, db):
    ran = []
    db.session.execute(text("SELECT 1"))
    after_commit(lambda: ran.append(1), key="wake")
    after_commit(lambda: ran.append(2), key="wake")
    after_commit(lambda: ran.append(3), key="other")
    assert pending_keys() == ["wake", "other"]
    discard("other")
    db.session.commit()
    assert ran == [1]


def test_a_failing_callback_does_not_stop_the_others(app, db):
    ran = []

    def broken():
        raise RuntimeError("queue down")

    db.session.execute(text("SELECT 1"))
    after_commit(broken)
    after_commit(lambda: ran.append("b"))
    db.session.commit()
    assert ran == ["b"]


def test_without_a_transaction_runs_at_once(app, db):
    db.session.commit()
    db.session.close()
    ran = []
    after_commit(lambda: ran.append("now"))
    assert ran == ["now"]


def test_on_rollback_undoes_outside_work_only_when_the_transaction_rolls_back(app, db):
    undone = []
    db.session.execute(text("SELECT 1"))
    on_rollback(lambda: undone.append("committed"))
    db.session.commit()
    db.session.execute(text("SELECT 1"))
    db.session.rollback()
    assert undone == []  # forgotten once its transaction committed
    db.session.execute(text("SELECT 1"))
    on_rollback(lambda: undone.append("outer"))
    savepoint = db.session.begin_nested()
    on_rollback(lambda: undone.append("inner"))
    savepoint.rollback()
    assert undone == ["inner"]
    db.session.rollback()
    assert undone == ["inner", "outer"]


def test_handing_work_to_the_worker_after_commit(app, db, caplog, monkeypatch):
    """``hand_over_after_commit``: once per key, after the commit; inline runs (tests) run it in
    a fresh application context or leave it to the caller; a queue that refuses is logged and
    the committed change stands; with the queue on (not inline) the task is enqueued."""
    from flask import current_app

    from lms.common import jobs

    ran = []

    def enqueue():
        ran.append(current_app._get_current_object() is app)  # noqa: SLF001 - a test's check of the context
    db.session.execute(text("SELECT 1"))
    jobs.hand_over_after_commit(enqueue, key="k", inline=True, what="a test job")
    jobs.hand_over_after_commit(enqueue, key="k", inline=True, what="a test job")
    jobs.hand_over_after_commit(lambda: ran.append("skipped"), key="other", inline=False, what="a test job")
    assert ran == []
    db.session.commit()
    assert ran == [True]  # once, in the app (a context of its own), the not-inline one left out

    def refuse():
        raise ConnectionError("queue down")
    monkeypatch.setattr(jobs.huey, "immediate", False)
    db.session.execute(text("SELECT 1"))
    jobs.hand_over_after_commit(refuse, key="down", inline=False, what="a refused job")
    jobs.hand_over_after_commit(lambda: ran.append("queued"), key="up", inline=False, what="a test job")
    db.session.commit()
    assert ran == [True, "queued"]
    assert "could not enqueue a refused job" in caplog.text
