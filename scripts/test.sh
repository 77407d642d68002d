#!/usr/bin/env bash
# Run the whole test suite: once on SQLite, and again on PostgreSQL where one is reachable
# (TEST_DATABASE_URL, default postgresql+psycopg://root@127.0.0.1:5432/test).
# Installs what the tests need: Python packages, Debian's Chromium/fonts/poppler (as root),
# and the npm test peers (OpenID Connect provider, Azurite, axe-core).
# Under CI=true a missing peer or PostgreSQL fails the run instead of being skipped.
set -euo pipefail
REQ=requirements-dev.lock source "$(dirname "$0")/setup.sh"
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql+psycopg://root@127.0.0.1:5432/test}

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
[ -d /usr/share/fonts/opentype/noto ] || need_apt+=(fonts-noto-cjk)
[ -f /usr/share/fonts/truetype/ipamj/ipamjm.ttf ] || need_apt+=(fonts-ipamj-mincho)
command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v wrk >/dev/null || need_apt+=(wrk)
[ -x /usr/sbin/pgbouncer ] || need_apt+=(pgbouncer)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "==> missing Debian packages (${need_apt[*]}); the tests that need them will be skipped"
  fi
fi
if command -v npm >/dev/null; then
  if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    echo "==> installing npm test peers"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
else
  echo "==> npm not found: sign-in and blob-storage tests will be skipped"
fi

echo "==> ruff"
ruff check .
echo "==> import layers (import-linter)"
lint-imports
echo "==> types (mypy)"
mypy
echo "==> translations"
python scripts/check_translations.py

# PgBouncer in transaction mode in front of the test PostgreSQL (as Azure Database for
# PostgreSQL runs it), for the tests whose transactions, locks and jobs it could break.
run_behind_pgbouncer() {
  if [ ! -x /usr/sbin/pgbouncer ]; then
    echo "==> pgbouncer not installed: PgBouncer run SKIPPED"
    [ "${CI:-}" = "true" ] && return 1
    return 0
  fi
  local dir port rc=0
  dir=$(mktemp -d)
  port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local pg_host pg_port
  pg_host=$(python -c 'import os; from sqlalchemy.engine import make_url; print(make_url(os.environ["TEST_DATABASE_URL"]).host or "127.0.0.1")')
  pg_port=$(python -c 'import os; from sqlalchemy.engine import make_url; print(make_url(os.environ["TEST_DATABASE_URL"]).port or 5432)')
  local pg_user
  pg_user=$(python -c 'import os; from sqlalchemy.engine import make_url; print(make_url(os.environ["TEST_DATABASE_URL"]).username or "root")')
  cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port user=$pg_user
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  local as_user=()
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres "$dir" 2>/dev/null && chmod 755 "$dir" && as_user=(-u postgres)
  fi
  /usr/sbin/pgbouncer -d "${as_user[@]}" "$dir/pgbouncer.ini" || { echo "pgbouncer did not start" >&2; return 1; }
  TEST_PGBOUNCER_URL="postgresql+psycopg://$pg_user@127.0.0.1:$port" LMS_TEST_DB=postgresql \
    python -m pytest -q -k "not browser" tests/enrollment tests/ops/test_pgbouncer.py \
      tests/completion/test_summary.py tests/notifications/test_outbox.py tests/notifications/test_worker_process.py \
      tests/ops/test_readiness.py || rc=$?
  kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  rm -rf "$dir"
  return $rc
}

pg_reachable() {
  python - <<'PY' 2>/dev/null
import os, psycopg
url = os.environ["TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
psycopg.connect(url, connect_timeout=3).close()
PY
}

status=0
if [ $# -gt 0 ]; then
  # A part of the suite (arguments as for pytest): on SQLite, then on PostgreSQL if reachable.
  echo "==> tests on SQLite"
  LMS_TEST_DB=sqlite python -m pytest "$@" || status=$?
  if pg_reachable; then
    echo "==> tests on PostgreSQL"
    LMS_TEST_DB=postgresql python -m pytest "$@" || status=$?
  elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL at $TEST_DATABASE_URL is not reachable; CI=true requires it." >&2
    status=1
  fi
  exit $status
fi

if ! pg_reachable; then
  if [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL at $TEST_DATABASE_URL is not reachable; CI=true requires it." >&2
    exit 1
  fi
  echo "==> PostgreSQL not reachable at $TEST_DATABASE_URL: PostgreSQL run SKIPPED"
  echo "==> tests on SQLite"
  LMS_TEST_DB=sqlite python -m pytest || status=$?
  exit $status
fi

# The whole suite. Each run has its own database (SQLite file, PostgreSQL database), ports
# and temporary directory, so the runs without a browser go side by side: one pytest
# process is one core, and the machine has two. CI has 90 minutes; one after the other they
# took 80 to 87 on a slow machine. The real-browser tests (marker "browser": page flows,
# axe-core, small screens) then run alone on SQLite, where no other run competes for the CPU
# their timeouts count on; TEST_BROWSER_ON_POSTGRESQL=1 runs them on PostgreSQL as well.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "==> tests without a browser on SQLite and on PostgreSQL, side by side (SQLite's output follows PostgreSQL's)"
LMS_TEST_DB=sqlite python -m pytest -m "not browser" --basetemp="$work/sqlite" > "$work/sqlite.log" 2>&1 &
sqlite_run=$!
echo "==> tests on PostgreSQL (no browser)"
LMS_TEST_DB=postgresql python -m pytest -m "not browser" --basetemp="$work/postgresql" || status=$?
sqlite_status=0
wait $sqlite_run || sqlite_status=$?
echo "==> tests on SQLite (no browser)"
cat "$work/sqlite.log"
[ $sqlite_status -eq 0 ] || status=$sqlite_status

echo "==> real-browser tests on SQLite"
LMS_TEST_DB=sqlite python -m pytest -m browser --basetemp="$work/browser" || status=$?
if [ "${TEST_BROWSER_ON_POSTGRESQL:-}" = "1" ]; then
  echo "==> real-browser tests on PostgreSQL"
  LMS_TEST_DB=postgresql python -m pytest -m browser --basetemp="$work/browser-pg" || status=$?
fi

echo "==> enrollment, concurrency, summary and job tests through PgBouncer (transaction mode)"
run_behind_pgbouncer || status=$?
exit $status
