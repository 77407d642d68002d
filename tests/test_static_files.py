"""Static files under content-hashed URLs: cached for a year, a new URL after a change —
answered so by the app (embedded default) and by nginx with docs/nginx.conf."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
import requests

from lms.common.static_files import VERSION_LENGTH, file_version
from tests.nginx import docs_block, run_nginx

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


def test_the_templates_remembered_urls_follow_the_root_the_file_and_the_arguments(app):
    """Templates build URLs through lms.common.templating.page_url_for, which remembers them:
    the result is Flask's url_for's under another application root (a proxy's prefix), for
    other arguments, and for a static file that changed since (a new version, not the
    remembered one)."""
    from flask import render_template_string, url_for
    from markupsafe import escape

    source = ("{{ url_for('static', filename='js/app.js') }}|{{ url_for('courses.catalogue') }}|"
              "{{ url_for('courses.catalogue', page=2, q='a b') }}|{{ url_for('courses.catalogue', _external=True) }}")
    for root in ("", "/manabi", ""):
        with app.test_request_context("/", base_url=f"http://localhost{root}/"):
            page = render_template_string(source)
            assert page == "|".join(map(escape, (url_for("static", filename="js/app.js"), url_for("courses.catalogue"),
                                              url_for("courses.catalogue", page=2, q="a b"),
                                              url_for("courses.catalogue", _external=True))))
            assert page.startswith(f"{root}/static/js/app.js?v=") and f"{root}/courses?" in page
    asset = Path(app.static_folder) / "js" / f"test-{os.getpid()}.js"  # removed below
    asset.write_text("console.log(1);")
    try:
        with app.test_request_context("/"):
            link = "{{ url_for('static', filename='js/' ~ name) }}"
            first = render_template_string(link, name=asset.name)
            asset.write_text("console.log(2); // a deploy")
            os.utime(asset, ns=(asset.stat().st_atime_ns, asset.stat().st_mtime_ns + 1_000_000))
            second = render_template_string(link, name=asset.name)
        assert first != second and second.endswith("?v=" + file_version(app.static_folder, f"js/{asset.name}"))
    finally:
        asset.unlink()


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

@pytest.fixture
def nginx_static(tmp_path):
    """nginx with docs/nginx.conf's static map and location, serving this checkout's static/."""
    cache_map = docs_block("map $arg_v $manabi_static_cache {", "\n}\n")
    location = docs_block("    location /static/ {").replace("/srv/manabi/app/static/", f"{ROOT / 'static'}/")
    with run_nginx(tmp_path, http=cache_map, server=location, why="the static caching test") as url:
        yield url


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
