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
