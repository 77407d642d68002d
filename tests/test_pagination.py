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
