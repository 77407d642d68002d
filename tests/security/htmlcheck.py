"""Helpers of the web security suite: a same-site crawler and a DOM check for injected markup."""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:text/html", "data:image/svg")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "poster", "background", "srcset", "ping"}
FORBIDDEN_TAGS = {"iframe", "object", "embed", "base", "frame", "frameset", "applet", "style", "math"}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.links: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}> element")
        if tag == "meta" and (attributes.get("http-equiv") or "").lower() == "refresh":
            self.problems.append("<meta http-equiv=refresh>")
        if tag == "script":
            src = attributes.get("src")
            if not src:
                self.problems.append("inline <script>")
            elif not src.startswith("/static/"):
                self.problems.append(f"script from {src!r}")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> event handler attribute")
            if name == "style":
                self.problems.append(f"<{tag} style=…> (blocked by the CSP)")
            if name in URL_ATTRIBUTES and value:
                compact = re.sub(r"[\x00-\x20]", "", value).lower()
                if compact.startswith(DANGEROUS_SCHEMES):
                    self.problems.append(f"<{tag} {name}={value[:60]!r}> dangerous URL")
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


def dom_problems(html: str) -> list[str]:
    """Markup that must never be in a Manabi page: script other than /static, event handlers,
    style attributes, javascript: URLs, frames/objects/base/style elements."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.problems


def links(html: str) -> list[str]:
    collector = _Collector()
    collector.feed(html)
    return collector.links


SKIP_PATHS = ("/static/", "/auth/logout", "/auth/login/microsoft", "/auth/callback")


def crawl(client, start: list[str], limit: int = 400, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """GET every same-site page reachable by links from ``start`` (query strings kept, at most
    two variants per path). Returns {url: response}."""
    seen: dict[str, object] = {}
    per_path: dict[str, int] = {}
    queue = deque(start)
    while queue and len(seen) < limit:
        url = queue.popleft()
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        url = parts.path + (f"?{parts.query}" if parts.query else "")
        if url in seen or parts.path.startswith(SKIP_PATHS + skip):
            continue
        if per_path.get(parts.path, 0) >= 2:
            continue
        per_path[parts.path] = per_path.get(parts.path, 0) + 1
        response = client.get(url, buffered=True)
        seen[url] = response
        if response.mimetype == "text/html" and response.status_code == 200:
            for href in links(response.get_data(as_text=True)):
                target = urljoin(url, href.split("#")[0])
                if target:
                    queue.append(target)
    return seen
