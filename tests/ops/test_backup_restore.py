"""Backup and restore on the current database kind: a populated database and archive storage
are backed up with scripts/backup.sh, restored with scripts/restore.sh into a fresh database
and folder, and the copy is proved intact (row counts per table, rows compared, file hashes)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, table, text
from sqlalchemy.engine import make_url

from lms.audit.services import record_action
from tests.conftest import PG_ADMIN_URL, ROOT

BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _rows(url: str, name: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            columns = [c["name"] for c in inspect(conn).get_columns(name)]
            order = "id" if "id" in columns else columns[0]
            return [tuple(r) for r in conn.execute(select(text("*")).select_from(table(name)).order_by(text(order)))]
    finally:
        engine.dispose()


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {n: conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar() for n in inspect(conn).get_table_names()}
    finally:
        engine.dispose()


@pytest.fixture
def populated(app, db):
    """The demo data set, an audit entry with Japanese details, and archive files."""
    from lms.demo import load_demo

    load_demo()
    record_action(None, "test.backup", "thing", "1", None, note="バックアップ確認 ✓")
    db.session.commit()
    storage = Path(app.config["LMS_STORAGE_DIR"])
    (storage / "course-1" / "archive-2").mkdir(parents=True)
    (storage / "course-1" / "archive-2" / "録画.webm").write_bytes(os.urandom(300_000))
    (storage / "course-1" / "archive-2" / "captions.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nこんにちは\n")
    (storage / "top.bin").write_bytes(b"\x00" * 1024)
    db.session.remove()
    return storage


@pytest.fixture
def restore_target(app, tmp_path):
    """An empty database of the same kind, and an empty storage folder."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if make_url(url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'lms.db'}", tmp_path / "restored-archives"
        return
    name = f"lms_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False), tmp_path / "restored-archives"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _run(script: Path, *args: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "LMS_STORAGE_BACKEND": "local", **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=full_env, timeout=300)


def _backup(app, storage: Path, dest: Path) -> Path:
    done = _run(BACKUP, str(dest), DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], LMS_STORAGE_DIR=storage)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.is_dir() and folder.parent == dest
    return folder


def test_backup_and_restore_bring_back_an_intact_copy(app, populated, restore_target, tmp_path):
    source_url = app.config["SQLALCHEMY_DATABASE_URI"]
    folder = _backup(app, populated, tmp_path / "backups")

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "manabi-backup/1"
    assert manifest["database_kind"] == make_url(source_url).get_backend_name()
    assert manifest["row_counts"]["user_account"] >= 10
    assert manifest["row_counts"]["enrollment"] >= 10
    sums = (folder / "SHA256SUMS").read_text()
    for name in [*manifest["files"], "manifest.json"]:
        assert name in sums
    assert "archives.tar" in manifest["files"]
    assert oct((folder / manifest["files"][0]).stat().st_mode & 0o777) == "0o600"

    target_url, target_storage = restore_target
    done = _run(RESTORE, str(folder), DATABASE_URL=target_url, LMS_STORAGE_DIR=target_storage)
    assert done.returncode == 0, done.stderr
    assert "all counts match" in done.stdout

    source_counts = _counts(source_url)
    assert _counts(target_url) == source_counts
    assert sum(source_counts.values()) > 100
    for name in ("user_account", "course", "training_session", "enrollment", "staff_member", "audit_log"):
        assert _rows(target_url, name) == _rows(source_url, name), name
    assert _hashes(target_storage) == _hashes(populated)
    assert "course-1/archive-2/録画.webm" in _hashes(target_storage)


def test_restore_refuses_a_damaged_backup(app, populated, restore_target, tmp_path):
    folder = _backup(app, populated, tmp_path / "backups")
    with (folder / "archives.tar").open("r+b") as fh:
        fh.seek(2000)
        fh.write(b"X")
    target_url, target_storage = restore_target
    done = _run(RESTORE, str(folder), DATABASE_URL=target_url, LMS_STORAGE_DIR=target_storage)
    assert done.returncode != 0
    assert "damaged" in done.stderr
    assert not target_storage.exists()
    target = make_url(target_url)
    if target.get_backend_name() == "sqlite":
        assert not Path(target.database).exists()
        return
    engine = create_engine(target_url)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    engine.dispose()


def test_restore_never_overwrites_a_database_in_use(app, populated, tmp_path):
    folder = _backup(app, populated, tmp_path / "backups")
    before = _counts(app.config["SQLALCHEMY_DATABASE_URI"])
    done = _run(RESTORE, str(folder), DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
                LMS_STORAGE_DIR=tmp_path / "empty")
    assert done.returncode != 0
    assert "not empty" in done.stderr
    assert _counts(app.config["SQLALCHEMY_DATABASE_URI"]) == before


def test_restore_refuses_a_storage_folder_with_files(app, populated, restore_target, tmp_path):
    folder = _backup(app, populated, tmp_path / "backups")
    target_url, target_storage = restore_target
    target_storage.mkdir(parents=True)
    (target_storage / "keep.txt").write_text("keep")
    done = _run(RESTORE, str(folder), DATABASE_URL=target_url, LMS_STORAGE_DIR=target_storage)
    assert done.returncode != 0 and "not empty" in done.stderr
    assert (target_storage / "keep.txt").read_text() == "keep"


def test_the_database_password_never_appears_on_a_command_line(app, populated, restore_target, tmp_path):
    """`ps` shows every process's arguments: pg_dump, pg_restore and the helper get the password
    only through a password file of mode 0600, removed afterwards."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "postgresql":
        pytest.skip("SQLite has no password")
    secret = "s3cr:et\\pw-" + uuid.uuid4().hex[:6]  # trust authentication ignores it; the escaping does not
    shims = tmp_path / "shims"
    shims.mkdir()
    log = tmp_path / "argv.log"
    real_python = os.environ.get("PYTHON") or str(ROOT / ".venv" / "bin" / "python")
    for name, real in (("pg_dump", "/usr/bin/pg_dump"), ("pg_restore", "/usr/bin/pg_restore"),
                       ("python", real_python)):
        shim = shims / name
        shim.write_text(
            "#!/usr/bin/env bash\n"
            f'echo "{name} $*" >> "{log}"\n'
            f'if [ -n "${{PGPASSFILE:-}}" ]; then stat -c "pgpass mode %a" "$PGPASSFILE" >> "{log}"; '
            f'cat "$PGPASSFILE" >> "{log}"; echo "$PGPASSFILE" > "{tmp_path}/pgpass-path"; fi\n'
            f'exec "{real}" "$@"\n')
        shim.chmod(0o755)
    env = {"PATH": f"{shims}:{os.environ['PATH']}", "PYTHON": str(shims / "python")}
    done = _run(BACKUP, str(tmp_path / "backups"), LMS_STORAGE_DIR=populated,
                DATABASE_URL=url.set(password=secret).render_as_string(hide_password=False), **env)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip().splitlines()[-1])
    target_url, target_storage = restore_target
    done = _run(RESTORE, str(folder), LMS_STORAGE_DIR=target_storage,
                DATABASE_URL=make_url(target_url).set(password=secret).render_as_string(hide_password=False), **env)
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    commands = [line for line in lines if line.startswith(("pg_dump ", "pg_restore ", "python "))]
    assert any(c.startswith("pg_dump ") for c in commands) and any(c.startswith("pg_restore ") for c in commands)
    assert not [c for c in commands if secret in c or "s3cr" in c]
    escaped = secret.replace("\\", "\\\\").replace(":", "\\:")
    assert any(line.endswith(":" + escaped) for line in lines)  # what libpq read
    assert "pgpass mode 600" in lines
    assert not Path((tmp_path / "pgpass-path").read_text().strip()).exists()  # removed afterwards
