"""Helpers of scripts/backup.sh and scripts/restore.sh (database-kind aware, standard library + SQLAlchemy).

    backup_tool.py pg-url URL            SQLAlchemy URL -> libpq URI (for pg_dump / pg_restore)
    backup_tool.py kind URL              "postgresql" or "sqlite"
    backup_tool.py sqlite-path URL       the file of a sqlite:/// URL
    backup_tool.py sqlite-backup SRC DST online, consistent copy (sqlite3 backup API)
    backup_tool.py counts URL            JSON {table: rows} of every table
    backup_tool.py is-empty URL          exit 0 when the database has no tables
    backup_tool.py manifest DIR URL ...  write DIR/manifest.json
    backup_tool.py verify-counts DIR URL compare the restored database with the manifest
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, table
from sqlalchemy.engine import make_url


def pg_url(url: str) -> str:
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def kind(url: str) -> str:
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> str:
    return make_url(url).database or ""


def sqlite_backup(src: str, dst: str) -> None:
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        with target:
            source.backup(target)
        integrity = target.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            raise SystemExit(f"integrity check of the copy failed: {integrity}")
    finally:
        source.close()
        target.close()


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            return {name: conn.scalar(select(func.count()).select_from(table(name))) for name in names}
    finally:
        engine.dispose()


def is_empty(url: str) -> bool:
    if kind(url) == "sqlite":
        path = Path(sqlite_path(url))
        if not path.exists() or path.stat().st_size == 0:
            return True
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return not inspect(conn).get_table_names()
    finally:
        engine.dispose()


def write_manifest(directory: str, url: str, storage: str, files: list[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    tables = counts(url)
    revision = ""
    if "alembic_version" in tables:
        engine = create_engine(url)
        with engine.connect() as conn:
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() or ""
        engine.dispose()
    manifest = {
        "format": "manabi-backup/1",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database_kind": kind(url),
        "database": make_url(url).database,
        "alembic_revision": revision,
        "application_commit": commit,
        "storage_dir": storage,
        "files": files,
        "row_counts": tables,
    }
    Path(directory, "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")


def verify_counts(directory: str, url: str) -> int:
    expected = json.loads(Path(directory, "manifest.json").read_text())["row_counts"]
    actual = counts(url)
    problems = [f"{name}: expected {rows}, found {actual.get(name)}" for name, rows in expected.items()
                if actual.get(name) != rows]
    problems += [f"{name}: not in the backup" for name in actual if name not in expected]
    for line in problems:
        print(f"restore: row count mismatch: {line}", file=sys.stderr)
    if not problems:
        print(f"restore: {len(expected)} tables, {sum(expected.values())} rows, all counts match")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "pg-url":
        print(pg_url(args[0]))
    elif command == "kind":
        print(kind(args[0]))
    elif command == "sqlite-path":
        print(sqlite_path(args[0]))
    elif command == "sqlite-backup":
        sqlite_backup(args[0], args[1])
    elif command == "counts":
        print(json.dumps(counts(args[0]), indent=2))
    elif command == "is-empty":
        return 0 if is_empty(args[0]) else 1
    elif command == "manifest":
        write_manifest(args[0], args[1], args[2], args[3:])
    elif command == "verify-counts":
        return verify_counts(args[0], args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
