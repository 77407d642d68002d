#!/usr/bin/env bash
# Shared set-up for dev.sh and test.sh: a virtual environment with the pinned packages.
# Sourced, not run. Needs Python 3.11 on PATH (python3.11 or python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=$(command -v python3.11 || command -v python3)
# The lock files pin every package that gets installed, with its hashes: two installs a month
# apart are the same, and a tampered download is refused (pip --require-hashes).
REQ=${REQ:-requirements.lock}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat "$REQ" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages ($REQ, hashes checked)"
  .venv/bin/python -m pip install -q --require-hashes -r "$REQ"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export FLASK_APP=wsgi
