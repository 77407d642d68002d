#!/usr/bin/env bash
# Run Manabi on the embedded default: SQLite in instance/, archives on the local disk,
# the demo sign-in, the background worker; served on http://127.0.0.1:5000 (or on $PORT).
set -euo pipefail
source "$(dirname "$0")/setup.sh"
export LMS_ENV=${LMS_ENV:-development}
export LMS_DEMO_LOGIN=${LMS_DEMO_LOGIN:-1}
PORT=${PORT:-5000}
# (mails and calendar files link to the port the app is on)
export LMS_BASE_URL=${LMS_BASE_URL:-http://127.0.0.1:$PORT}
mkdir -p instance
echo "==> migrating the database"
flask --app wsgi db upgrade
echo "==> loading demo data"
flask --app wsgi lms demo
if [ -f lms/jobs.py ]; then
  # Mail outbox, reminders and every area's background tasks (huey on instance/huey.db).
  # Same as `huey_consumer lms.jobs.huey -w 2 -k thread`.
  echo "==> starting the background worker (log: instance/worker.log)"
  flask --app wsgi lms worker --workers 2 > instance/worker.log 2>&1 &
  WORKER=$!
  trap 'kill -INT $WORKER 2>/dev/null || true' EXIT
fi
echo "==> Manabi on http://127.0.0.1:$PORT (demo sign-in: http://127.0.0.1:$PORT/auth/demo)"
flask --app wsgi run --host 127.0.0.1 --port "$PORT"
