"""Search as staff type: hiragana for katakana, long-vowel marks, width, and synonyms the
platform admin keeps (エクセル ↔ Excel), on both databases, the trigram index still used."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from lms.audit.models import AuditLog
from lms.courses.catalogue import CatalogueFilters, catalogue_page
from lms.courses.models import SearchSynonym
from lms.courses.search import forget_synonyms, normalise_for_search, seed_default_synonyms
from tests import factories


def _q(q: str) -> list[str]:
    _pagination, rows = catalogue_page(CatalogueFilters(q=q), None, 1)
    return sorted(r.course.title for r in rows)


@pytest.fixture
def courses(db):
    for title in ("Excel 関数入門", "チーム運営の基本", "情報セキュリティ基礎", "コンピューター入門", "PowerPoint 資料作成",
                  "Teams 会議の基本"):
        factories.make_course(title=title)


@pytest.mark.parametrize(("typed", "folded"), [
    ("えくせる", "エクセル"), ("ｴｸｾﾙ", "エクセル"), ("ＥＸＣＥＬ", "excel"), ("ちーむ", "チム"),
    ("コンピューター", "コンピュタ"), ("コンピュータ", "コンピュタ"), ("せきゅりてぃ", "セキュリティ"),
])
def test_text_and_queries_fold_into_one_form(typed, folded):
    assert normalise_for_search(typed) == folded


@pytest.mark.parametrize(("query", "title"), [
    ("ちーむ", "チーム運営の基本"), ("せきゅりてぃ", "情報セキュリティ基礎"), ("こんぴゅーた", "コンピューター入門"),
    ("コンピュータ", "コンピューター入門"), ("ｾｷｭﾘﾃｨ", "情報セキュリティ基礎"), ("EXCEL", "Excel 関数入門"),
    # typed from the middle of a word, starting with its long-vowel mark
    ("ーター", "コンピューター入門"), ("ーた", "コンピューター入門"), ("ーム運営", "チーム運営の基本"),
])
def test_kana_long_vowels_and_width_are_folded(courses, query, title):
    assert _q(query) == [title]


def test_synonyms_find_what_no_folding_can(db, courses):
    assert _q("エクセル") == []
    seed_default_synonyms()
    db.session.commit()
    assert _q("えくせる") == ["Excel 関数入門"]
    assert _q("パワポ") == ["PowerPoint 資料作成"]
    assert _q("チームズ") == ["Teams 会議の基本"]
    assert _q("エクセル 関数") == ["Excel 関数入門"]  # every term must still match
    assert _q("エクセル 資料") == []


def test_synonyms_keep_the_trigram_index(db, courses):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite scans, which is correct and fast enough")
    seed_default_synonyms()
    # A catalogue of realistic size, so that the planner weighs the indexes as it would.
    db.session.execute(text(
        "INSERT INTO course (title, summary, description_md, target_audience, eligible_all, requires_approval, status,"
        " search_text, completion_mode, attendance_threshold_pct, viewing_threshold_pct, organizer_mailbox,"
        " published_at, created_at, updated_at)"
        " SELECT '研修 ' || i, '', '', '', true, false, 'published', 'けんしゅう ' || md5(i::text), 'either', 75, 90, '',"
        " now(), now(), now() FROM generate_series(1, 5000) AS i"))
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE course"))  # flushes the GIN index's pending list, as autovacuum does
    from lms.courses.catalogue import catalogue_select

    stmt, params = catalogue_select(CatalogueFilters(q="エクセル"), None)  # the page's own statement
    compiled = stmt.compile(dialect=db.engine.dialect)
    with db.engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # as the other trigram test: weigh indexes only
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + compiled.string,
                                                                  compiled.construct_params(params)))
    assert "ix_course_search_trgm" in plan and "BitmapOr" in plan, plan


def test_platform_admin_keeps_the_synonym_groups(db, client, login_as, courses):
    admin = login_as("platform_admin", "130001")
    page = client.get("/admin/search/synonyms")
    assert page.status_code == 200 and "検索の同義語" in page.get_data(as_text=True)
    refused = client.post("/admin/search/synonyms", data={"words": "エクセル"})
    assert refused.status_code == 400 and "2 つ以上" in refused.get_data(as_text=True)
    assert client.post("/admin/search/synonyms", data={"words": "ワード  Word"}).status_code == 302
    group = db.session.scalar(select(SearchSynonym))
    assert group.words == "ワード Word"
    group_id = group.id
    again = client.post("/admin/search/synonyms", data={"words": "わーど 文書"})
    assert again.status_code == 400 and "別のグループ" in again.get_data(as_text=True)
    # Deleting names the group on a page of its own first.
    confirm = client.get(f"/admin/search/synonyms/{group_id}/delete").get_data(as_text=True)
    assert "ワード、Word" in confirm and "削除する" in confirm
    assert db.session.get(SearchSynonym, group_id) is not None
    assert client.post(f"/admin/search/synonyms/{group_id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(SearchSynonym, group_id) is None
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.actor_id == admin.id)))
    assert {"search.synonym_add", "search.synonym_delete"} <= actions
    assert client.get("/admin/search/synonyms/999999/delete").status_code == 404


def test_only_platform_admins_edit_synonyms(client, login_as):
    login_as("municipal_admin", "131016")
    assert client.get("/admin/search/synonyms").status_code == 403
    assert client.post("/admin/search/synonyms", data={"words": "a b"}).status_code == 403
    forget_synonyms()


def test_a_synonym_group_added_or_deleted_three_times_at_once_counts_once(app, live_server):
    """Sent three times together (a double click, two tabs): the words are checked under the
    table's write lock, so one group is stored; deleted at once, it is deleted (and audited)
    once and the other copies find it gone."""
    import re

    import requests
    from sqlalchemy import delete, func

    from lms.extensions import db
    from tests.at_once import post_at_once

    admin = factories.make_user("platform_admin", "130001")
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    db.session.commit()
    added = post_at_once(f"{live_server.url}/admin/search/synonyms", cookie, {"words": "年休 年次休暇"})
    assert sorted(status for status, _ in added) == [302, 400, 400]
    db.session.rollback()
    groups = db.session.scalars(select(SearchSynonym)).all()
    assert [g.words for g in groups] == ["年休 年次休暇"]
    # From the page (its one-time token): every copy is sent back to the list, none refused.
    page = requests.get(f"{live_server.url}/admin/search/synonyms", headers={"Cookie": cookie}).text
    token = re.search(r'name="once" value="([^"]+)"', page).group(1)
    resent = post_at_once(f"{live_server.url}/admin/search/synonyms", cookie, {"words": "育休 育児休業", "once": token})
    assert resent == [(302, "/admin/search/synonyms")] * 3
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SearchSynonym)) == 2
    db.session.execute(delete(SearchSynonym).where(SearchSynonym.words == "育休 育児休業"))
    db.session.commit()
    group_id = groups[0].id
    deleted = post_at_once(f"{live_server.url}/admin/search/synonyms/{group_id}/delete", cookie, {})
    # A copy that arrives once the group is gone meets a missing group (404); one that read it
    # just before is told it is already deleted.
    assert {status for status, _ in deleted} <= {302, 404} and deleted.count((302, "/admin/search/synonyms")) >= 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SearchSynonym)) == 0
    audited = db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "search.synonym_delete", AuditLog.target_id == str(group_id)))
    assert audited == 1


def test_the_description_is_searched_as_read_not_as_its_markdown(db):
    """「#」 found every course with a heading, 「**」 every one with bold text."""
    from lms.courses.services import refresh_search_text

    course = factories.make_course(title="文書管理研修", description_md=(
        "## 対象\n\n- **全**職員（[案内](https://example.com/guide)）\n\n---\n\n`ファイル名` の付け方"))
    refresh_search_text(course)
    db.session.commit()
    for marks in ("#", "**", "- ", "](", "https", "---", "`"):
        assert _q(marks) == [], marks
    for words in ("全職員", "案内", "対象", "ファイル名 の付け方"):
        assert _q(words) == ["文書管理研修"], words
