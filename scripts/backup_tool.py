"""Helpers of scripts/backup.sh and scripts/restore.sh (database-kind aware, standard library + SQLAlchemy).

    backup_tool.py pg-url                libpq URI for pg_dump / pg_restore, WITHOUT the password
    backup_tool.py pgpass                the password as a line of a libpq password file
    backup_tool.py kind                  "postgresql" or "sqlite"
    backup_tool.py sqlite-path           the file of a sqlite:/// URL
    backup_tool.py sqlite-backup SRC DST online, consistent copy (sqlite3 backup API)
    backup_tool.py counts                JSON {table: rows} of every table
    backup_tool.py is-empty              exit 0 when the database has no tables
    backup_tool.py manifest DIR STORAGE FILE...  write DIR/manifest.json
    backup_tool.py verify-counts DIR     compare the restored database with the manifest

The database is the one in the environment's DATABASE_URL, never a command-line argument:
`ps` shows every process's arguments to every user of the machine, so a password there would
leak. The scripts give pg_dump / pg_restore the password through a password file of mode
0600 (PGPASSFILE), written from DATABASE_URL or provided by the operator.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, table
from sqlalchemy.engine import URL, make_url


def pg_url(url: str) -> str:
    u = make_url(url)
    # URL.set() keeps a password given None: build the URL without one.
    bare = URL.create("postgresql", username=u.username, host=u.host, port=u.port, database=u.database,
                      query=u.query)
    return bare.render_as_string(hide_password=False)


def _pgpass_field(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace(":", "\\:")


def pgpass(url: str) -> str:
    """``host:port:database:user:password`` (libpq's password file; ``:`` and ``\\`` escaped),
    or "" when the URL carries no password."""
    u = make_url(url)
    if not u.password:
        return ""
    fields = (u.host or "localhost", u.port or 5432, u.database or "*", u.username or "*", u.password)
    return ":".join(_pgpass_field(f) for f in fields)


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
    url = os.environ.get("DATABASE_URL", "")
    if not url and command not in ("sqlite-backup",):
        print("backup_tool: DATABASE_URL is not set", file=sys.stderr)
        return 2
    if command == "pg-url":
        print(pg_url(url))
    elif command == "pgpass":
        print(pgpass(url))
    elif command == "kind":
        print(kind(url))
    elif command == "sqlite-path":
        print(sqlite_path(url))
    elif command == "sqlite-backup":
        sqlite_backup(args[0], args[1])
    elif command == "counts":
        print(json.dumps(counts(url), indent=2))
    elif command == "is-empty":
        return 0 if is_empty(url) else 1
    elif command == "manifest":
        write_manifest(args[0], url, args[1], args[2:])
    elif command == "verify-counts":
        return verify_counts(args[0], url)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
