"""Safe Markdown: rendered by markdown-it (raw HTML off), then cleaned by nh3 (allow-list)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from html import unescape

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")

_TAGS = {
    "p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h2", "h3", "h4", "h5", "h6", "a", "hr", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


# markdown-it-py spends time on every mark it scans (about 50 µs for each of 20,000 「[」, a
# second in all; nesting is cut at the commonmark preset's maxNesting): a text is rendered once,
# not on every view of its page. The fields rendered here are capped (20,000 characters for a
# course's description and an activity's instructions, 50,000 for a site page), so the cache's
# entries stay small; older, longer texts are rendered (once) all the same.
_CACHED = 64


@lru_cache(maxsize=_CACHED)
def render_markdown(text: str) -> str:
    html = _md.render(text)
    # h1 is the page's own title: demote author headings by keeping only h2+.
    html = html.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def markdown_text(text: str) -> str:
    """The words of Markdown without its marks (#, **, list dashes, link targets): what a
    reader sees, for a search to match."""
    html = _BLOCK_END.sub(r"\1\n", _md.render(text or ""))  # (a block's end stays a word break)
    return " ".join(unescape(nh3.clean(html, tags=set())).split())


_BLOCK_END = re.compile(r"(</(?:p|li|h[1-6]|td|th|tr|blockquote|pre)>|<br\s*/?>|<hr\s*/?>)")


# Headings an author writes at the top of a description that say what the page's own
# section heading already says (「内容」).
_SECTION_WORDS = {
    "内容", "概要", "研修内容", "研修の内容", "研修概要", "研修の概要", "説明", "内容・概要",
    "contents", "content", "overview", "description", "summary", "course contents", "course overview",
}
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")


def _heading_key(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).strip().strip("#:：").strip().lower()
    return re.sub(r"\s+", " ", folded)


def split_section_heading(text: str) -> tuple[str | None, str]:
    """(the description's own first heading, the rest) when the Markdown begins with a heading
    like 「内容」 or 「概要」, so the page shows that heading once; else (None, text)."""
    lines = (text or "").lstrip("\r\n").splitlines()
    if not lines:
        return None, text or ""
    match = _ATX.match(lines[0])
    if match is None or _heading_key(match.group(1)) not in _SECTION_WORDS:
        return None, text
    return match.group(1).strip(), "\n".join(lines[1:])
