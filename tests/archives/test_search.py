"""Transcript search: Japanese substrings (2 characters: plain LIKE; 3+: trigram on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from lms.archives import search
from tests.archives.conftest import VTT_TEXT, add_file, make_archive


@pytest.fixture
def archives(db, owned_course):
    course = owned_course[1]
    visible = make_archive(course, title="第1回 録画")
    add_file(visible, VTT_TEXT.encode(), "captions.vtt")
    hidden = make_archive(course, title="下書きの録画", status="draft")
    add_file(hidden, VTT_TEXT.encode(), "captions.vtt")
    return visible, hidden


def test_three_or_more_characters(db, make_user, archives):
    visible, _hidden = archives
    user = make_user("learner", "131016")
    hits = search.search_transcripts(user, "活用研修")
    assert [(h.archive.id, h.start_seconds) for h in hits] == [(visible.id, 0)]
    # Full-width / half-width and case do not matter (NFKC + casefold).
    assert search.search_transcripts(user, "ｔｅａｍｓ") and search.search_transcripts(user, "TEAMS")


def test_two_characters_fall_back_to_substring(db, make_user, archives):
    visible, _hidden = archives
    user = make_user("learner", "131016")
    hits = search.search_transcripts(user, "操作")
    assert [(h.archive.id, h.start_seconds, h.speaker) for h in hits] == [(visible.id, 2, "講師 山田")]
    assert search.search_transcripts(user, "録画")[0].start_seconds == 4


def test_search_only_covers_archives_the_user_may_watch(db, make_user, archives):
    user = make_user("learner", "131032")  # 港区: not eligible
    assert search.search_transcripts(user, "活用研修") == []
    assert search.search_transcripts(make_user("learner", "131016"), "%") == []  # LIKE wildcards escaped


def test_search_pages_link_to_the_cue_time(client, login_as, archives):
    visible, _hidden = archives
    login_as("learner", "131016")
    page = client.get("/archives/search?q=操作").get_data(as_text=True)
    assert f"/archives/{visible.id}?t=2" in page
    assert "下書きの録画" not in page
    within = client.get(f"/archives/{visible.id}?q=録画").get_data(as_text=True)
    assert 'data-seek="4"' in within and "検索結果：1件" in within


def test_trigram_index_exists_on_postgresql(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("pg_trgm index is PostgreSQL-only (SQLite uses LIKE)")
    definition = db.session.scalar(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_transcript_cue_search_trgm'")
    )
    assert "gin" in definition and "gin_trgm_ops" in definition
