#!/usr/bin/env bash
# Restore a Manabi backup (made by scripts/backup.sh) into an EMPTY database and storage folder.
#
#   DATABASE_URL=... LMS_STORAGE_DIR=... scripts/restore.sh BACKUP_DIR
#
# Steps: verify SHA256SUMS (refuse a damaged backup); refuse a target database that has
# tables or a storage folder that has files (never overwrite); restore the database
# (pg_restore, or copy the SQLite file); unpack archives.tar; compare the row count of
# every table with the manifest. Exit status 0 only when everything matches.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
TOOL=("$PYTHON" "$ROOT/scripts/backup_tool.py")

# shellcheck source=scripts/pgpass.sh
source "$ROOT/scripts/pgpass.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: DATABASE_URL=... LMS_STORAGE_DIR=... $0 BACKUP_DIR" >&2
  exit 2
fi
backup="$(cd "$1" && pwd)"
export DATABASE_URL="${DATABASE_URL:?DATABASE_URL must name the (empty) target database}"
STORAGE_BACKEND="${LMS_STORAGE_BACKEND:-local}"
STORAGE_DIR="${LMS_STORAGE_DIR:-$ROOT/instance/archives}"

echo "restore: checking sums of $backup"
(cd "$backup" && sha256sum --check --strict --quiet SHA256SUMS) || {
  echo "restore: the backup is damaged (SHA256SUMS do not match); nothing restored" >&2
  exit 1
}

if ! "${TOOL[@]}" is-empty; then
  echo "restore: the target database is not empty; restore only into an empty database" >&2
  exit 1
fi
if [ "$STORAGE_BACKEND" = "local" ] && [ -d "$STORAGE_DIR" ] && [ -n "$(ls -A "$STORAGE_DIR")" ]; then
  echo "restore: the storage folder $STORAGE_DIR is not empty; restore only into an empty folder" >&2
  exit 1
fi

kind="$("${TOOL[@]}" kind)"
case "$kind" in
  postgresql)
    [ -f "$backup/database.dump" ] || { echo "restore: no database.dump (backup of another database kind?)" >&2; exit 1; }
    use_password_file
    pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
      --dbname="$("${TOOL[@]}" pg-url)" "$backup/database.dump"
    ;;
  sqlite)
    [ -f "$backup/database.sqlite3" ] || { echo "restore: no database.sqlite3 (backup of another database kind?)" >&2; exit 1; }
    target="$("${TOOL[@]}" sqlite-path)"
    mkdir -p "$(dirname "$target")"
    rm -f "$target"
    "${TOOL[@]}" sqlite-backup "$backup/database.sqlite3" "$target"
    ;;
  *)
    echo "restore: unsupported database kind: $kind" >&2
    exit 1
    ;;
esac

if [ -f "$backup/archives.tar" ]; then
  if [ "$STORAGE_BACKEND" = "local" ]; then
    mkdir -p "$STORAGE_DIR"
    tar --extract --file="$backup/archives.tar" --directory="$STORAGE_DIR" --no-same-owner
  else
    echo "restore: archives.tar present but the storage backend is '$STORAGE_BACKEND'; upload it with azcopy (docs/operations.md)" >&2
  fi
fi

"${TOOL[@]}" verify-counts "$backup"
echo "restore: done"
