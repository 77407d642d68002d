"""The same form posted several times at the same instant (a double click, two tabs), through
a live server: what each copy was answered."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests


def post_at_once(url: str, cookie: str, data: dict, copies: int = 3) -> list[tuple[int, str | None]]:
    """(status, Location) of each copy, in the order sent. ``cookie``: "name=value"."""
    start = threading.Barrier(copies)

    def post(_n):
        start.wait(10)
        response = requests.post(url, headers={"Cookie": cookie}, data=data, allow_redirects=False, timeout=60)
        return response.status_code, response.headers.get("Location")

    with ThreadPoolExecutor(copies) as pool:
        return list(pool.map(post, range(copies)))
