"""Signed media links: issued only after the access check, validated like nginx's secure_link
(expiry, signature over a structured string of version, expiry, path, user and viewer cookie),
and a real nginx serving ranges for a valid link and refusing tampered, foreign, spliced,
old-format and expired ones."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from lms.archives import links
from tests import factories
from tests.archives.conftest import add_file, video_bytes
from tests.nginx import docs_block, run_nginx

NGINX = Path("/usr/sbin/nginx")
SECRET = "media-link-secret-for-tests-0123456789abcdef"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LMS_MEDIA_LINKS": True, "LMS_MEDIA_LINK_SECRET": SECRET, "LMS_MEDIA_LINK_TTL": 60}


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def _with(url: str, **changes) -> str:
    path, query = _split(url)
    query.update({k: str(v) for k, v in changes.items()})
    return path + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def legacy_signature(expires: int, path: str, user_id: str, viewer: str, secret: str = SECRET) -> str:
    """The signature of the earlier releases: the fields concatenated with nothing between."""
    digest = hashlib.md5(f"{expires}{path}{user_id}{viewer} {secret}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def spliced_links(path: str, expires: int):
    """A link for user 10 and two re-cuts of its fields that the plain concatenation could not
    tell apart: one digit of the user ID moved into the path (…/1.webm?u=10 → …/1.webm1?u=0),
    or into the viewer cookie. Returns (genuine, [(path, user, cookie), …])."""
    viewer = links.viewer_token(10)
    genuine = (path, "10", viewer)
    recuts = [(path + "1", "0", viewer), (path, "1", "0" + viewer)]
    for recut in recuts:  # the attack worked on the earlier signature
        assert legacy_signature(expires, *recut) == legacy_signature(expires, *genuine)
    return genuine, recuts


# ------------------------------------------------------------------ signing and validation


def test_a_link_is_valid_for_its_user_file_and_lifetime_only(app, db, published, make_user):
    archive, video = published
    other_video = add_file(archive, video_bytes("mp4"), "第2回.mp4")
    viewer = make_user("learner", "131016")
    someone = make_user("learner", "131016")
    now = time.time()
    link = links.issue(viewer, video, now=now)
    path, query = _split(link.url)
    assert path == f"/archives/media/{video.storage_key}/{video.id}.webm"
    assert query["u"] == str(viewer.id) and int(query["e"]) == int(now) + 60
    assert link.cookie == links.viewer_token(viewer.id) != links.viewer_token(someone.id)

    checked = links.check(path, query, link.cookie, now=now)
    assert (checked.outcome, checked.storage_key, checked.file_id) == (links.VALID, video.storage_key, video.id)
    # Expired: one second after e.
    assert links.check(path, query, link.cookie, now=int(query["e"]) + 1).outcome == links.EXPIRED
    # Tampered: the expiry pushed back, the signature altered, the user changed.
    assert links.check(path, {**query, "e": str(int(query["e"]) + 3600)}, link.cookie, now).outcome == links.INVALID
    assert links.check(path, {**query, "s": query["s"][:-1] + ("A" if query["s"][-1] != "A" else "B")},
                       link.cookie, now).outcome == links.INVALID
    assert links.check(path, {**query, "u": str(someone.id)}, link.cookie, now).outcome == links.INVALID
    # Another user's browser (their viewer cookie), or no cookie at all.
    assert links.check(path, query, links.viewer_token(someone.id), now).outcome == links.INVALID
    assert links.check(path, query, None, now).outcome == links.INVALID
    # The signature of one file does not open another.
    other_path = f"/archives/media/{other_video.storage_key}/{other_video.id}.mp4"
    assert links.check(other_path, query, link.cookie, now).outcome == links.INVALID
    # Missing pieces and paths outside the media prefix.
    assert links.check(path, {k: v for k, v in query.items() if k != "e"}, link.cookie, now).outcome == links.INVALID
    assert links.check("/archives/media/../etc/passwd", query, link.cookie, now).outcome == links.INVALID


def test_the_fields_of_a_link_cannot_be_recut_into_another(app, db, published):
    _archive, video = published
    now = int(time.time())
    expires = now + 60
    (path, user_id, viewer), recuts = spliced_links(links.media_path(video), expires)
    signed = links.signature(expires, path, user_id, viewer)
    assert links.check(path, {"u": user_id, "e": str(expires), "s": signed}, viewer, now).outcome == links.VALID
    for recut_path, recut_user, recut_viewer in recuts:
        query = {"u": recut_user, "e": str(expires), "s": signed}
        assert links.check(recut_path, query, recut_viewer, now).outcome == links.INVALID


@pytest.mark.parametrize("fields", [
    (1, "/archives/media/a/1.webm", "1|2", "abc"),
    (1, "/archives/media/a/1.webm", "12", "ab|c"),
    (1, "/archives/media/a|b/1.webm", "12", "abc"),
    (1, "/archives/media/a/1.webm1", "12", "abc"),
    (-1, "/archives/media/a/1.webm", "12", "abc"),
    (1, "/archives/media/a/1.webm", "١٢", "abc"),
])
def test_no_field_may_hold_the_separator_or_leave_its_alphabet(app, fields):
    with pytest.raises(ValueError):
        links.signature(*fields)


def test_a_link_signed_the_earlier_way_is_refused_and_a_fresh_link_plays(app, client, login_as, published):
    archive, video = published
    viewer = login_as("learner", "131016")
    fresh = client.get(f"/archives/{archive.id}/files/{video.id}/link").json["url"]  # sets the viewer cookie
    path, query = _split(fresh)
    old = _with(fresh, s=legacy_signature(int(query["e"]), path, query["u"], links.viewer_token(viewer.id)))
    assert links.check(path, _split(old)[1], links.viewer_token(viewer.id)).outcome == links.INVALID
    assert client.get(old).status_code == 403  # the player then asks for a fresh link (player.js)
    assert client.get(fresh, headers={"Range": "bytes=0-9"}).status_code == 206


def test_the_link_lifetime_is_bounded(app, db, published, make_user):
    _archive, video = published
    viewer = make_user("learner", "131016")
    app.config["LMS_MEDIA_LINK_TTL"] = 10 ** 6
    assert links.issue(viewer, video, now=1000).expires_at == 1000 + links.MAX_TTL
    app.config["LMS_MEDIA_LINK_TTL"] = 1
    assert links.issue(viewer, video, now=1000).expires_at == 1000 + links.MIN_TTL


def test_without_media_links_the_player_uses_the_checked_file_url(app, db, published, make_user):
    archive, video = published
    app.config["LMS_MEDIA_LINKS"] = False
    with app.test_request_context():
        link = links.issue(make_user("learner", "131016"), video)
    assert unquote(link.url) == f"/archives/{archive.id}/files/{video.id}/{video.filename}" and link.cookie is None


def test_production_refuses_media_links_without_a_secret(monkeypatch):
    from config import ConfigError, ProductionConfig

    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.delenv("LMS_DEMO_LOGIN", raising=False)
    monkeypatch.delenv("ENTRA_CA_BUNDLE", raising=False)
    monkeypatch.setenv("LMS_MEDIA_LINKS", "1")
    monkeypatch.delenv("LMS_MEDIA_LINK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="LMS_MEDIA_LINK_SECRET"):
        ProductionConfig.validate()
    monkeypatch.setenv("LMS_MEDIA_LINK_SECRET", "short")
    with pytest.raises(ConfigError, match="LMS_MEDIA_LINK_SECRET"):
        ProductionConfig.validate()
    monkeypatch.setenv("LMS_MEDIA_LINK_SECRET", SECRET)
    ProductionConfig.validate()


# ------------------------------------------------------------------ issued only when authorised


def test_the_player_gets_a_link_only_when_authorised(client, login_as, published):
    archive, video = published
    login_as("learner", "131016")  # 千代田区: eligible
    page = client.get(f"/archives/{archive.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'src="/archives/media/{video.storage_key}/{video.id}.webm?u=' in html
    cookie = page.headers.getlist("Set-Cookie")
    assert any(c.startswith(f"{links.COOKIE}=") and "Path=/archives/media/" in c and "HttpOnly" in c for c in cookie)

    fresh = client.get(f"/archives/{archive.id}/files/{video.id}/link", headers={"Accept": "application/json"})
    assert fresh.status_code == 200 and fresh.headers["Cache-Control"] == "no-store"
    assert fresh.json["url"].startswith(f"/archives/media/{video.storage_key}/") and fresh.json["expires_at"]

    login_as("learner", "132012")  # 八王子市: not eligible
    refused = client.get(f"/archives/{archive.id}/files/{video.id}/link")
    assert refused.status_code == 404 and refused.json["error"] and "url" not in refused.json
    assert client.get(f"/archives/{archive.id}").status_code == 404  # as if there were none
    assert client.get(f"/archives/{archive.id}/files/999999/link").status_code == 404


def test_a_withdrawn_archive_gets_no_fresh_link(db, client, login_as, published):
    from lms.extensions import db as _db

    archive, video = published
    login_as("learner", "131016")
    assert client.get(f"/archives/{archive.id}/files/{video.id}/link").status_code == 200
    archive.status = "withdrawn"
    _db.session.commit()
    refused = client.get(f"/archives/{archive.id}/files/{video.id}/link")
    assert refused.status_code == 403 and refused.json["error"]


def test_unknown_file_of_a_viewable_archive_is_404_json(client, login_as, published):
    archive, _video = published
    login_as("learner", "131016")
    missing = client.get(f"/archives/{archive.id}/files/999999/link")
    assert missing.status_code == 404 and missing.json["error"]
    assert client.get("/archives/999999/files/1/link").status_code == 404


# ------------------------------------------------------------------ the app validates links without nginx


def test_the_app_serves_a_valid_link_and_refuses_the_others(app, client, login_as, published, make_user):
    archive, video = published
    data = video_bytes("webm")
    login_as("learner", "131016")
    url = client.get(f"/archives/{archive.id}/files/{video.id}/link").json["url"]
    ranged = client.get(url, headers={"Range": "bytes=10-109"})
    assert ranged.status_code == 206 and ranged.data == data[10:110]
    assert ranged.headers["Content-Range"] == f"bytes 10-109/{len(data)}"
    assert client.get(_with(url, e=int(time.time()) + 3000)).status_code == 403  # tampered expiry
    # Another signed-in user's browser: their own viewer cookie does not match the link.
    other = app.test_client()
    factories.sign_in(other, make_user("learner", "131016"))
    other.set_cookie(links.COOKIE, links.viewer_token(999999), path=links.MEDIA_PATH)
    assert other.get(url).status_code == 403
    # Anyone without the cookie (the link pasted elsewhere).
    assert app.test_client().get(url).status_code == 403
    # Expired: 410 with a Japanese message (the player then asks for a fresh link).
    viewer = make_user("learner", "131016")
    old = links.issue(viewer, video, now=time.time() - 120)
    stranger = app.test_client()
    stranger.set_cookie(links.COOKIE, old.cookie, path=links.MEDIA_PATH)
    expired = stranger.get(old.url)
    assert expired.status_code == 410 and "有効期限" in expired.get_data(as_text=True)
    assert client.get("/archives/media/archives/1/zz/1.webm?u=1&e=1&s=x").status_code == 403


# ------------------------------------------------------------------ a real nginx


def _media_location(objects: Path, secret: str) -> str:
    """The location block of docs/nginx.conf, with this test's storage and secret."""
    block = docs_block("    location ~ \"^/archives/media/")
    assert "secure_link_md5" in block and "/srv/manabi/archives/objects/" in block
    return (block.replace("/srv/manabi/archives/objects/", f"{objects}/")
            .replace("CHANGE-ME-LMS_MEDIA_LINK_SECRET", secret))


@pytest.fixture
def nginx(app, tmp_path):
    objects = Path(app.config["LMS_STORAGE_DIR"]) / "objects"
    with run_nginx(tmp_path, server=_media_location(objects, SECRET), why="the media link test") as url:
        yield url


def test_nginx_serves_ranges_for_a_valid_link_and_refuses_the_others(app, db, published, make_user, nginx):
    _archive, video = published
    data = video_bytes("webm")
    viewer, someone = make_user("learner", "131016"), make_user("learner", "131016")
    link = links.issue(viewer, video)
    mine = {links.COOKIE: link.cookie}

    ranged = requests.get(nginx + link.url, cookies=mine, headers={"Range": "bytes=100-1123"}, timeout=5)
    assert ranged.status_code == 206
    assert ranged.content == data[100:1124]
    assert ranged.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
    assert ranged.headers["Content-Type"] == "video/webm"
    assert "no-store" not in ranged.headers.get("Cache-Control", "") and "private" in ranged.headers["Cache-Control"]
    whole = requests.get(nginx + link.url, cookies=mine, timeout=5)
    assert whole.status_code == 200 and whole.content == data and whole.headers["Accept-Ranges"] == "bytes"
    beyond = requests.get(nginx + link.url, cookies=mine, headers={"Range": f"bytes={len(data) + 5}-"}, timeout=5)
    assert beyond.status_code == 416

    def status(url, cookies=mine):
        return requests.get(nginx + url, cookies=cookies, headers={"Range": "bytes=0-9"}, timeout=5).status_code

    assert status(_with(link.url, e=int(time.time()) + 3600)) == 403  # expiry pushed back
    assert status(_with(link.url, u=someone.id)) == 403  # another user's ID
    assert status(link.url, {links.COOKIE: links.viewer_token(someone.id)}) == 403  # another user's browser
    assert status(link.url, {}) == 403  # the link pasted elsewhere
    other_video = add_file(published[0], video_bytes("mp4"), "第2回.mp4")
    path, query = _split(link.url)
    assert status(f"/archives/media/{other_video.storage_key}/{other_video.id}.mp4?" + urlsplit(link.url).query) == 403
    assert status(path) == 403  # no signature at all
    # A link issued two minutes ago (60 s lifetime): expired, 410.
    old = links.issue(viewer, video, now=time.time() - 120)
    assert status(old.url, {links.COOKIE: old.cookie}) == 410
    # And nginx agrees with the app's own validation on every one of these.
    assert links.check(path, query, link.cookie).outcome == links.VALID


def test_nginx_refuses_spliced_and_old_format_links(app, db, published, nginx):
    _archive, video = published
    expires = int(time.time()) + 60
    (path, user_id, viewer), recuts = spliced_links(links.media_path(video), expires)
    signed = links.signature(expires, path, user_id, viewer)

    def status(link_path, user, cookie, signature=signed):
        url = f"{nginx}{link_path}?u={user}&e={expires}&s={signature}"
        return requests.get(url, cookies={links.COOKIE: cookie}, headers={"Range": "bytes=0-9"}, timeout=5).status_code

    assert status(path, user_id, viewer) == 206
    # …/1.webm1 is not even a media location for nginx (404); the cookie re-cut is refused.
    assert [status(*recut) for recut in recuts] == [404, 403]
    assert status(path, user_id, viewer, legacy_signature(expires, path, user_id, viewer)) == 403
