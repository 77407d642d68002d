#!/usr/bin/env bash
# Back up Manabi: the database and the archive storage, into one timestamped folder.
#
#   scripts/backup.sh [DEST]          (DEST defaults to ./backups)
#
# Reads the same environment as the application: DATABASE_URL (default: the embedded
# SQLite file instance/lms.db), LMS_STORAGE_BACKEND / LMS_STORAGE_DIR (default
# instance/archives). Produces DEST/manabi-YYYYmmddTHHMMSSZ/ with
#   database.dump     PostgreSQL custom-format dump (pg_dump -Fc), or
#   database.sqlite3  an online copy of the SQLite file (sqlite3 backup API, integrity-checked)
#   archives.tar      the local archive storage folder (absent for Azure storage: see docs/operations.md)
#   manifest.json     when, what, application commit, migration revision, row counts per table
#   SHA256SUMS        checksums of every file above (restore.sh refuses a folder that does not match)
# Safe while the application runs (both dumps are consistent snapshots).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$([ -x "$ROOT/.venv/bin/python" ] && echo "$ROOT/.venv/bin/python" || echo python3)}"
TOOL=("$PYTHON" "$ROOT/scripts/backup_tool.py")

# shellcheck source=scripts/pgpass.sh
source "$ROOT/scripts/pgpass.sh"

DEST="${1:-$ROOT/backups}"
export DATABASE_URL="${DATABASE_URL:-sqlite:///$ROOT/instance/lms.db}"
STORAGE_BACKEND="${LMS_STORAGE_BACKEND:-local}"
STORAGE_DIR="${LMS_STORAGE_DIR:-$ROOT/instance/archives}"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
out="$DEST/manabi-$stamp"
if [ -e "$out" ]; then
  echo "backup: $out already exists" >&2
  exit 1
fi
mkdir -p "$out.partial"
trap 'rm -rf "$out.partial"' ERR
umask 077

kind="$("${TOOL[@]}" kind)"
files=()
case "$kind" in
  postgresql)
    use_password_file
    pg_dump --format=custom --no-owner --no-privileges --file="$out.partial/database.dump" \
      --dbname="$("${TOOL[@]}" pg-url)"
    files+=(database.dump)
    ;;
  sqlite)
    src="$("${TOOL[@]}" sqlite-path)"
    if [ ! -f "$src" ]; then
      echo "backup: SQLite database $src not found" >&2
      exit 1
    fi
    "${TOOL[@]}" sqlite-backup "$src" "$out.partial/database.sqlite3"
    files+=(database.sqlite3)
    ;;
  *)
    echo "backup: unsupported database kind: $kind" >&2
    exit 1
    ;;
esac

if [ "$STORAGE_BACKEND" = "local" ]; then
  mkdir -p "$STORAGE_DIR"
  # Relative paths inside the tar, numeric owners: restorable anywhere.
  tar --create --file="$out.partial/archives.tar" --numeric-owner --directory="$STORAGE_DIR" .
  files+=(archives.tar)
else
  echo "backup: storage backend '$STORAGE_BACKEND': archive files are protected by blob versioning/azcopy, not copied here" >&2
fi

"${TOOL[@]}" manifest "$out.partial" "$STORAGE_DIR" "${files[@]}"
(cd "$out.partial" && sha256sum "${files[@]}" manifest.json > SHA256SUMS)
mv "$out.partial" "$out"
trap - ERR
echo "$out"
