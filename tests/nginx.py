"""A real nginx for the tests, configured with blocks taken from docs/nginx.conf (so the
documented configuration is what is tested): ``with run_nginx(tmp_path, server=…) as url``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.archives.conftest import wait_for_port
from tests.conftest import require

NGINX = Path("/usr/sbin/nginx")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "nginx.conf"

_CONF = """
{user}
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    include /etc/nginx/mime.types;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
{http}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""


def docs_block(start_marker: str, end_marker: str = "\n    }\n") -> str:
    """The block of docs/nginx.conf that starts with ``start_marker`` (a location, a map)."""
    text = DOCS.read_text()
    start = text.index(start_marker)
    end = text.index(end_marker, start) + len(end_marker)
    return text[start:end]


@contextmanager
def run_nginx(tmp_path: Path, *, server: str, http: str = "", why: str = "this test") -> Iterator[str]:
    """nginx in the foreground with ``http`` (maps, upstreams) and ``server`` (locations);
    yields its base URL and stops it afterwards. Workers run as the app's user, as
    docs/nginx.conf asks (archive files are mode 0640)."""
    require(NGINX.exists(), f"Debian's nginx (apt-get install nginx-light) for {why}")
    run = tmp_path / "nginx"
    run.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = run / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(_CONF.format(user=user, run=run, port=port, http=http, server=server))
    process = subprocess.Popen([str(NGINX), "-c", str(conf), "-p", str(run), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "nginx", timeout=10, log=run / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(run, ignore_errors=True)
