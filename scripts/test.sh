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

status=0
echo "==> tests on SQLite"
LMS_TEST_DB=sqlite python -m pytest "$@" || status=$?

if python - <<'PY' 2>/dev/null
import os, psycopg
url = os.environ["TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
psycopg.connect(url, connect_timeout=3).close()
PY
then
  echo "==> tests on PostgreSQL"
  pg_args=("$@")
  if [ $# -eq 0 ] && [ "${TEST_BROWSER_ON_POSTGRESQL:-}" != "1" ]; then
    # The real-browser tests (marker "browser": page flows, axe-core, small screens) ran on
    # SQLite above; here every other test runs, the database-dependent ones. They are a
    # quarter of the suite's time on two cores and CI has 90 minutes: a slow machine took 95
    # with them. TEST_BROWSER_ON_POSTGRESQL=1 runs them on PostgreSQL too.
    pg_args=(-m "not browser")
  fi
  LMS_TEST_DB=postgresql python -m pytest "${pg_args[@]}" || status=$?
  if [ $# -eq 0 ]; then
    echo "==> enrollment, concurrency, summary and job tests through PgBouncer (transaction mode)"
    run_behind_pgbouncer || status=$?
  fi
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $TEST_DATABASE_URL is not reachable; CI=true requires it." >&2
  status=1
else
  echo "==> PostgreSQL not reachable at $TEST_DATABASE_URL: PostgreSQL run SKIPPED"
fi
exit $status
