"""The deployment files under deploy/ and gunicorn.conf.py say what docs/deploy.md says."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

from tests.test_config import variables_read

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / name)
    return parser


def test_web_and_worker_units_run_the_documented_commands():
    web = _unit("manabi-web.service")
    assert web["Service"]["ExecStart"].endswith("gunicorn -c gunicorn.conf.py wsgi:app")
    assert web["Service"]["Type"] == "notify" and web["Service"]["Restart"] == "always"
    assert web["Service"]["EnvironmentFile"] == "/etc/manabi/manabi.env"
    worker = _unit("manabi-worker.service")
    assert " lms worker" in worker["Service"]["ExecStart"]
    assert worker["Service"]["KillSignal"] == "SIGINT"  # huey: finish the jobs under way
    # Background work yields the CPU to requests; the benchmarks run the worker the same way.
    from bench.common import WORKER_NICE

    assert worker["Service"]["Nice"] == str(WORKER_NICE) == "10"
    timer = _unit("manabi-backup.timer")
    assert timer["Timer"]["OnCalendar"]
    assert "scripts/backup.sh" in _unit("manabi-backup.service")["Service"]["ExecStart"]
    for unit in ("manabi-web.service", "manabi-worker.service"):
        paths = _unit(unit)["Service"]["ReadWritePaths"].split()
        assert "/srv/manabi/archives" in paths


def test_the_example_environment_names_only_variables_manabi_reads():
    names = set()
    for line in (ROOT / "deploy" / "manabi.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    assert names - variables_read() == set()
    assert {"LMS_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LMS_DB_TRANSACTION_POOLER"} <= names


def test_gunicorn_reads_its_configuration_file():
    env = {**os.environ, "LMS_ENV": "development"}
    printed = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf.py", "--print-config", "wsgi:app"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    settings = {name.strip(): value.strip() for name, _, value in
                (line.partition(" = ") for line in printed.stdout.splitlines() if " = " in line)}
    assert settings["timeout"] == "660" and settings["workers"] == "4"
    assert settings["worker_class"] == "sync" and "127.0.0.1:8000" in settings["bind"]
    checked = subprocess.run([str(GUNICORN), "-c", "gunicorn.conf.py", "--check-config", "wsgi:app"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
