#!/usr/bin/env bash
# Shared set-up for dev.sh and test.sh: a virtual environment with the pinned packages.
# Sourced, not run. Needs Python 3.11 on PATH (python3.11 or python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=$(command -v python3.11 || command -v python3)
REQ=${REQ:-requirements.txt}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat requirements.txt "$REQ" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages ($REQ)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$REQ"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export FLASK_APP=wsgi
