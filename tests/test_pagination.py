"""lms.common.pagination.Page: what the pager macro reads, as Flask-SQLAlchemy's pages give it."""

from lms.common.pagination import Page


def test_page_numbers_and_gaps_like_flask_sqlalchemy():
    page = Page(items=[], total=1000, page=10, per_page=20)
    assert page.pages == 50
    assert (page.has_prev, page.prev_num, page.has_next, page.next_num) == (True, 9, True, 11)
    assert list(page.iter_pages()) == [1, 2, None, 8, 9, 10, 11, 12, 13, 14, None, 49, 50]


def test_first_last_and_empty_pages():
    first = Page(items=[], total=45, page=1, per_page=20)
    assert (first.pages, first.has_prev, first.prev_num, first.next_num) == (3, False, None, 2)
    assert list(first.iter_pages()) == [1, 2, 3]
    last = Page(items=[], total=45, page=3, per_page=20)
    assert (last.has_next, last.next_num) == (False, None)
    empty = Page(items=[], total=0, page=1, per_page=20)
    assert (empty.pages, empty.has_next, list(empty.iter_pages())) == (0, False, [])


def test_a_list_asked_past_its_last_page_goes_to_the_last_one(app, client, login_as, make_course):
    """?page=2 of a one-page list: a redirect to page 1 with the other conditions kept (an empty
    page said "nothing found" beside the total); within the pages, and with no rows at all,
    the page itself answers."""
    from urllib.parse import parse_qs, urlsplit

    from tests import factories

    for n in range(3):
        make_course(title=f"頁送り研修{n}")
    login_as("platform_admin")
    # (a number past any page, however long, is a number past the last page too)
    for path in ("/courses?q=頁送り&page=2", "/manage/courses?page=7", "/roster?m={m}&page=3",
                 "/courses?q=頁送り&page=99999999999999999999999", "/completion/records?page=99999"):
        path = path.format(m=factories.municipality("131016").id)
        answer = client.get(path)
        if answer.status_code == 200:  # (no rows at all: the page says so itself)
            assert "/completion/records" in path
            continue
        assert answer.status_code == 302, path
        target = urlsplit(answer.headers["Location"])
        wanted = parse_qs(urlsplit(path).query)
        assert target.path == urlsplit(path).path
        assert parse_qs(target.query) == {**wanted, "page": ["1"]}
        assert client.get(answer.headers["Location"]).status_code == 200
    assert client.get("/courses?q=頁送り&page=1").status_code == 200
    # A query argument named like the path's own (a crafted link) is dropped from the redirect.
    course = make_course(title="頁送り研修X")
    answer = client.get(f"/completion/courses/{course.id}?course_id=5&page=99999999999")
    assert answer.status_code in (200, 302)
    if answer.status_code == 302:
        assert f"/completion/courses/{course.id}" in answer.headers["Location"] and "course_id=5" not in answer.headers["Location"]
    # What is no page number at all is the first page.
    for odd in ("abc", "-3", "0", "１", "1e5", ""):
        assert client.get(f"/courses?q=頁送り&page={odd}").status_code == 200, odd
