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


def test_words_separated_by_spaces_must_all_be_in_the_cue_and_synonyms_count(db, make_user, archives):
    """As the catalogue reads a query: 「会議 録画」 finds the cue holding both (it looked for the
    phrase with its space), and チームズ finds Teams where the platform admin made them one."""
    from lms.courses.models import SearchSynonym
    from lms.courses.search import forget_synonyms

    visible, _hidden = archives
    user = make_user("learner", "131016")
    assert [h.start_seconds for h in search.search_transcripts(user, "会議　録画")] == [4]  # (a full-width space too)
    assert search.search_transcripts(user, "会議 チャット") == []  # not in one cue
    assert search.search_transcripts(user, "チームズ") == []
    db.session.add(SearchSynonym(words="チームズ Teams"))
    db.session.commit()
    forget_synonyms()
    try:
        assert [h.start_seconds for h in search.search_transcripts(user, "ちーむず 研修")] == [0]
    finally:
        forget_synonyms()
