# Sourced by backup.sh and restore.sh (after TOOL is set): pg_dump / pg_restore get the
# password from a password file (mode 0600), never from their command line, where `ps` would
# show it: the operator's PGPASSFILE (or ~/.pgpass) when DATABASE_URL carries no password,
# else a temporary one written from DATABASE_URL and removed on exit.
use_password_file() {
  local line
  line="$("${TOOL[@]}" pgpass)"
  if [ -n "$line" ]; then
    PGPASSFILE="$(mktemp)"
    chmod 600 "$PGPASSFILE"
    printf '%s\n' "$line" > "$PGPASSFILE"
    export PGPASSFILE
    trap 'rm -f "$PGPASSFILE"' EXIT
  fi
}
