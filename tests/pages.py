"""Comparing two rendered pages: "answered exactly as an unknown id" must not depend on the
second the page was signed in (a CSRF token carries its timestamp)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r'(name="csrf_token" value=")[^"]+(")')


def same_page(first, first_path: str, second, second_path: str) -> bool:
    """Whether two responses render the same page once each one's own path and the per-request
    CSRF token are masked."""
    def masked(response, path):
        return _TOKEN.sub(r"\1TOKEN\2", response.get_data(as_text=True).replace(path, "PATH"))

    return masked(first, first_path) == masked(second, second_path)
