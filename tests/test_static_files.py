"""Static files under content-hashed URLs: cached for a year, a new URL after a change —
answered so by the app (embedded default) and by nginx with docs/nginx.conf."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from lms.common.static_files import VERSION_LENGTH, file_version
from tests.archives.conftest import wait_for_port
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
NGINX = Path("/usr/sbin/nginx")


def _version_of(relative: str) -> str:
    return hashlib.sha256((ROOT / "static" / relative).read_bytes()).hexdigest()[:VERSION_LENGTH]


def test_every_static_url_of_a_page_carries_its_content_version(client):
    html = client.get("/auth/login").get_data(as_text=True)
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert urls, "the sign-in page links its stylesheet and scripts"
    for url in urls:
        path, _, query = url.partition("?v=")
        assert query == _version_of(path.removeprefix("/static/")), url


def test_a_changed_file_gets_a_new_version(tmp_path):
    asset = tmp_path / "js" / "app.js"
    asset.parent.mkdir()
    asset.write_text("console.log(1);")
    first = file_version(str(tmp_path), "js/app.js")
    asset.write_text("console.log(2); // a deploy")
    os.utime(asset, ns=(asset.stat().st_atime_ns, asset.stat().st_mtime_ns + 1_000_000))
    second = file_version(str(tmp_path), "js/app.js")
    assert first and second and first != second
    assert file_version(str(tmp_path), "js/missing.js") is None
    assert file_version(str(tmp_path), "../etc/passwd") is None


def test_app_caches_only_the_current_version_for_a_year(client):
    current = _version_of("css/app.css")
    fresh = client.get(f"/static/css/app.css?v={current}")
    assert fresh.status_code == 200
    assert fresh.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for url in ("/static/css/app.css", "/static/css/app.css?v=0123456789ab"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-cache", url
    assert client.get("/static/nope.js?v=1").status_code == 404


# ------------------------------------------------------------------ nginx with docs/nginx.conf

NGINX_CONF = """
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
{map}
    server {{
        listen 127.0.0.1:{port};
{location}
    }}
}}
"""


def _docs_block(text: str, start_marker: str, end_marker: str) -> str:
    start = text.index(start_marker)
    end = text.index(end_marker, start) + len(end_marker)
    return text[start:end]


@pytest.fixture
def nginx_static(tmp_path):
    require(NGINX.exists(), "Debian's nginx (apt-get install nginx-light) for the static caching test")
    docs = (ROOT / "docs" / "nginx.conf").read_text()
    map_block = _docs_block(docs, "map $arg_v $manabi_static_cache {", "\n}\n")
    location = _docs_block(docs, "    location /static/ {", "\n    }\n").replace(
        "/srv/manabi/app/static/", f"{ROOT / 'static'}/")
    run = tmp_path / "nginx"
    run.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = run / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, run=run, port=port, map=map_block, location=location))
    process = subprocess.Popen([str(NGINX), "-c", str(conf), "-p", str(run), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process, "nginx", timeout=10, log=run / "error.log")
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGQUIT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(run, ignore_errors=True)


def test_nginx_caches_versioned_static_urls_for_a_year_and_revalidates_the_rest(client, nginx_static):
    html = client.get("/auth/login").get_data(as_text=True)
    versioned = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]+)"', html).group(1)
    answer = requests.get(nginx_static + versioned, timeout=5)
    assert answer.status_code == 200
    assert answer.content == (ROOT / "static" / "css" / "app.css").read_bytes()
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    bare = requests.get(nginx_static + "/static/css/app.css", timeout=5)
    assert bare.status_code == 200 and bare.headers["Cache-Control"] == "no-cache"
    # Revalidation of the bare URL costs no body.
    again = requests.get(nginx_static + "/static/css/app.css", timeout=5,
                         headers={"If-None-Match": bare.headers["ETag"]})
    assert again.status_code == 304
