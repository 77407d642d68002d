"""The browsable API docs (/api/v1/docs, RapiDoc served from static/vendor) in real Chromium,
under the site's strict Content-Security-Policy: the document renders, nothing comes from
another origin, and the browser refuses nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_the_docs_render_from_this_site_only(live_server, page):
    refused, requested = [], []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.get_by_text("Manabi API v1").first).to_be_visible(timeout=15000)
    # Operations of the document (RapiDoc renders them inside its shadow DOM).
    expect(page.get_by_text("/api/v1/completions").first).to_be_attached(timeout=15000)
    expect(page.get_by_text("/api/v1/staff/bulk").first).to_be_attached()
    assert all(url.startswith(live_server.url) for url in requested), [u for u in requested
                                                                       if not u.startswith(live_server.url)]
    assert not refused, refused
