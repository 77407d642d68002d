"""Signed out in this very browser (another tab's 「サインアウト」): the session, and the CSRF secret
of every form and script still open, went with it. A script's post is told it is signed out
(401 in JSON, as the player reads it), and a page's form goes to sign-in and back to where it
was, instead of 「フォームの有効期限が切れました」 (a 400 the player took for a network failure)."""

from __future__ import annotations

import re

import pytest

from tests import factories


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def _token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def test_a_tab_left_open_after_signing_out_in_another_is_asked_to_sign_in(app, db):
    learner = factories.make_user("learner", "131016", is_demo=True)
    client = app.test_client()
    csrf = _token(client, "/auth/demo")
    assert client.post("/auth/demo", data={"user_id": learner.id, "csrf_token": csrf}).status_code == 302
    old_token = _token(client, "/me")  # the token of a page (the player's) left open
    assert client.post("/auth/logout", data={"csrf_token": old_token}).status_code == 302

    answer = client.post("/archives/files/1/progress", json={"report_id": "r", "intervals": [[0, 2]], "position": 2},
                         headers={"Accept": "application/json", "X-CSRFToken": old_token})
    assert answer.status_code == 401 and "もう一度サインイン" in answer.json["message"]
    page = client.post("/sessions/1/enroll", data={"csrf_token": old_token},
                       headers={"Referer": "http://localhost/courses/1"})
    assert page.status_code == 302 and "/auth/login?next=%2Fcourses%2F1" in page.headers["Location"]
    # a public form (the sign-in page's own) with a stale token still says the form expired
    stale = client.post("/auth/demo", data={"user_id": learner.id, "csrf_token": "stale"})
    assert stale.status_code == 400 and "フォームの有効期限が切れました" in stale.get_data(as_text=True)
