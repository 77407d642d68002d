"""Ids beyond what the database holds: every route and every id parameter answers 404 or a
form error, never a 500 (PostgreSQL refuses such a number as out of range, SQLite's driver
overflows on it).

The walk takes every rule of app.url_map, puts each out-of-range value in every integer
part of its path, and calls it with each of its methods as each role. Then it calls every
route with real objects' ids but out-of-range values in every query parameter and form field
that names a row.
"""

from __future__ import annotations

import re

import pytest

from lms.common.ids import MAX_ID, parse_id, parse_ids
from lms.common.jobs import worker_heartbeat
from tests.factories import sign_in

ROLES = ("anonymous", "learner", "trainer", "admin_a", "platform")
OUT_OF_RANGE = (str(2**31), "99999999999999999999", "-1", "9" * 5000)
# Values that are no id at all: not ASCII digits (str.isdigit() says yes to "²" but int() fails).
NOT_IDS = ("²", "１２", "1e3", " ")
# Every query parameter and form field of the application that names a row, or a number.
ID_PARAMETERS = (
    "m", "municipality", "assignment", "course", "session", "category", "page", "t", "fy",
    "user_id", "staff_member_id", "municipality_id", "municipality_ids", "course_id", "session_id",
    "category_id", "present", "back_to_session", "archive_id", "file_id", "member_id", "fiscal_year",
    "new_staff_fiscal_year", "attended_pct", "capacity", "quotas-0-municipality_id", "quotas-0-seats",
    "u", "e",  # a signed media link's user and expiry
)
PATH_PART = re.compile(r"<(?:([^:<>(]+)(?:\([^)]*\))?:)?([^<>]+)>")


@pytest.fixture
def app_config(app_config):
    # A crash is recorded as an outcome (5xx) instead of stopping the walk.
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def _methods(rule) -> list[str]:
    return sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["OPTIONS"]


def _as(app, user):
    """A client signed in as ``user`` (anonymous for None): a new one for every request, as
    a walk that passes by sign-out (or the demo sign-in) must not carry on as someone else."""
    client = app.test_client()
    if user is not None:
        sign_in(client, user)
    return client


def _path(rule, params, int_value: str | None = None) -> str:
    def fill(match):
        converter, name = match.group(1), match.group(2)
        if converter == "int" and int_value is not None:
            return int_value
        return str(params[name])

    return PATH_PART.sub(fill, rule.rule)


def test_parse_id_takes_only_ids_the_database_can_hold():
    assert parse_id("42") == 42 and parse_id(" 7 ") == 7 and parse_id(str(MAX_ID)) == MAX_ID
    for bad in (*OUT_OF_RANGE, *NOT_IDS, "0", "", None, "12a", "-0"):
        assert parse_id(bad) is None, bad
    assert parse_ids(["3", "x", str(2**31), "5"]) == [3, 5]
    # A repeated id is one id, in the order first given.
    assert parse_ids(["5", "3", "5", " 3", "5"]) == [5, 3]


def test_out_of_range_ids_in_any_path_answer_404(app, world):
    params, users = world
    crashes, others = [], []
    walked = 0
    for rule in app.url_map.iter_rules():
        if "int" not in {match.group(1) for match in PATH_PART.finditer(rule.rule)}:
            continue
        walked += 1
        for value in OUT_OF_RANGE:
            url = _path(rule, params, value)
            for method in sorted({*_methods(rule), "GET", "POST"}):
                for role in ROLES:
                    status = _as(app, users[role]).open(url, method=method, buffered=True).status_code
                    if status >= 500:
                        crashes.append(f"{method} {url[:80]} as {role}: {status}")
                    elif status != 404 and not (status == 405 and method not in rule.methods):
                        # (a method the rule does not serve is a 405 before any id is read)
                        others.append(f"{method} {url[:80]} as {role}: {status}")
    assert walked > 40
    assert not crashes, "\n".join(crashes)
    assert not others, "\n".join(others)


def test_out_of_range_ids_in_query_and_form_are_refused_without_a_crash(app, world):
    params, users = world
    worker_heartbeat()  # /readyz: a worker is alive
    crashes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = _path(rule, params)
        for value in (*OUT_OF_RANGE[:3], *NOT_IDS[:2]):
            fields = dict.fromkeys(ID_PARAMETERS, value)
            for method in _methods(rule):
                for role in ROLES:
                    client = _as(app, users[role])
                    if method == "GET":
                        response = client.get(url, query_string=fields, buffered=True)
                    else:
                        response = client.open(url, method=method, query_string=fields, data=fields, buffered=True)
                    if response.status_code >= 500:
                        crashes.append(f"{method} {url} {value[:12]} as {role}: {response.status_code}")
    assert not crashes, "\n".join(crashes)


@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_IDS)
def test_demo_sign_in_with_an_out_of_range_user_id_is_a_form_error(client, world, value):
    response = client.post("/auth/demo", data={"user_id": value})
    assert response.status_code in (200, 400)
    with client.session_transaction() as session:
        assert "_user_id" not in session


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_a_municipal_page_asked_for_an_out_of_range_municipality(app, world, value):
    params, users = world
    admin, platform = _as(app, users["admin_a"]), _as(app, users["platform"])
    for url in ("/roster", "/completion/dashboard", "/completion/records", "/municipal"):
        assert platform.get(url, query_string={"m": value, "municipality": value}).status_code == 404, url
        assert admin.get(url, query_string={"m": value, "municipality": value}).status_code in (403, 404), url
    assert platform.get("/completion/export/missing.csv", query_string={"assignment": value}).status_code == 404
    # (a page number past any page leads to the last page, as any number past it does)
    answer = platform.get("/teams/status", query_string={"session": value, "page": value})
    assert answer.status_code == 200 or (answer.status_code == 302 and "page=" in answer.headers["Location"])
