"""A million-row export through nginx with docs/nginx.conf: streamed from the first byte,
never cut by a proxy timeout (a large municipality's 修了記録 for every year)."""

from __future__ import annotations

import io
import os
import re
import time
import zipfile

import pytest
import requests
from sqlalchemy import func, select, text

from lms.completion.models import Completion
from lms.municipalities.models import Municipality
from tests.nginx import docs_block, run_nginx

STAFF, COURSES, YEARS = 10_000, 20, 5  # 1,000,000 completions

@pytest.fixture
def nginx_in_front(tmp_path, live_server):
    """nginx with the exports' location block of docs/nginx.conf, as documented."""
    upstream = f"    upstream manabi_app {{ server 127.0.0.1:{live_server.port}; }}"
    location = docs_block('    location ~ "^/(completion/export/')
    with run_nginx(tmp_path, http=upstream, server=location, why="the export test") as url:
        yield url


def _load_a_million_completions(db, municipality_id: int) -> int:
    """10,000 staff × 20 courses × 5 fiscal years, written by SQL as an import would."""
    stamp = "2026-04-01 00:00:00"
    numbers = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {STAFF}) "
    db.session.execute(text(
        numbers + "INSERT INTO staff_member (municipality_id, employee_number, full_name, full_name_kana, department,"
        " job_title, sign_in_name, email, status, source, created_at, updated_at)"
        f" SELECT :m, 'E' || i, '職員 ' || i, '', '総務課', '主事', '', '', 'active', 'csv', '{stamp}', '{stamp}'"
        " FROM n"), {"m": municipality_id})
    db.session.execute(text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :c) "
        "INSERT INTO course (title, summary, description_md, target_audience, eligible_all, requires_approval,"
        " status, search_text, completion_mode, attendance_threshold_pct, viewing_threshold_pct,"
        f" organizer_mailbox, created_at, updated_at) SELECT '研修 ' || i, '', '', '', true, false, 'published', '',"
        f" 'either', 75, 90, '', '{stamp}', '{stamp}' FROM n"), {"c": COURSES})
    db.session.execute(text(
        "WITH RECURSIVE y(fy) AS (SELECT 2022 UNION ALL SELECT fy + 1 FROM y WHERE fy < :last) "
        "INSERT INTO completion (staff_member_id, course_id, municipality_id, fiscal_year, status, method,"
        " completed_at, reason, created_at, updated_at)"
        f" SELECT s.id, c.id, s.municipality_id, y.fy, 'completed', 'live', '{stamp}', '', '{stamp}', '{stamp}'"
        " FROM staff_member s CROSS JOIN course c CROSS JOIN y WHERE s.municipality_id = :m"),
        {"m": municipality_id, "last": 2022 + YEARS - 1})
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(Completion))


@pytest.mark.bulk_sql  # a million completions loaded by SQL, as an import would; the summaries are not its subject
@pytest.mark.skipif(os.environ.get("LMS_TEST_DB", "sqlite") != "postgresql",
                    reason="production's database; the SQLite run exports the smaller tables below")
def test_a_million_row_export_streams_through_nginx_without_a_cut(db, client, login_as, nginx_in_front, app):
    municipality = db.session.scalar(select(Municipality).where(Municipality.code == "131016"))
    assert _load_a_million_completions(db, municipality.id) == STAFF * COURSES * YEARS
    login_as("municipal_admin", "131016")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    started = time.monotonic()
    with requests.get(nginx_in_front + "/completion/export/records.csv?fy=all",
                      headers={"Cookie": f"{cookie.key}={cookie.value}"}, stream=True, timeout=120) as response:
        assert response.status_code == 200
        lines = 0
        first_byte = None
        tail = b""
        for chunk in response.iter_content(256 * 1024):
            if first_byte is None:
                first_byte = time.monotonic() - started
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-400:]
    assert lines == 1 + STAFF * COURSES * YEARS  # the header and every row: nothing cut
    assert tail.decode("utf-8", "replace").rstrip().splitlines()[-1].startswith(f"千代田区,E{STAFF},職員 {STAFF}")
    assert first_byte is not None and first_byte < 10, first_byte  # streamed, not built first


def test_excel_and_certificate_downloads_stream_through_nginx(db, client, login_as, nginx_in_front, app, known_data):
    """The same location serves the XLSX and the certificates ZIP, whole."""
    d = known_data
    login_as("municipal_admin", "131016")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    headers = {"Cookie": f"{cookie.key}={cookie.value}"}
    response = requests.get(nginx_in_front + f"/completion/export/records.xlsx?fy={d['fy']}", headers=headers,
                            timeout=30)
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "xl/worksheets/sheet1.xml" in names and "[Content_Types].xml" in names
    zipped = requests.get(nginx_in_front + f"/completion/courses/{d['a'].id}/certificates.zip?fy={d['fy']}",
                          headers=headers, timeout=30)
    assert zipped.status_code == 200
    pdfs = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert pdfs and all(re.fullmatch(r"[^/]+\.pdf", name) for name in pdfs)
