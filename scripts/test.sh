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
command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v wrk >/dev/null || need_apt+=(wrk)
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
  LMS_TEST_DB=postgresql python -m pytest "$@" || status=$?
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $TEST_DATABASE_URL is not reachable; CI=true requires it." >&2
  status=1
else
  echo "==> PostgreSQL not reachable at $TEST_DATABASE_URL: PostgreSQL run SKIPPED"
fi
exit $status
