"""Reading and editing the site pages. Only platform admins edit (checked by the route);
every edit is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lms.audit.services import record_action
from lms.common.database import begin_write, savepoint
from lms.common.errors import NotFound
from lms.extensions import db
from lms.sitepages.defaults import DEFAULTS
from lms.sitepages.models import SitePage

SLUGS = tuple(DEFAULTS)
FIELDS = ("title", "body_md", "title_en", "body_md_en")


@dataclass(frozen=True)
class PageView:
    """A page as shown in one language. ``lang`` is the language of the text, which is
    Japanese in an English page whose English version is empty."""

    slug: str
    title: str
    body_md: str
    lang: str
    updated_at: datetime | None


def _known(slug: str) -> None:
    if slug not in DEFAULTS:
        raise NotFound(_("ページが見つかりません。"))


def page_for_editing(slug: str) -> SitePage:
    """The stored page, or (not yet edited) a new unsaved one holding the default text."""
    _known(slug)
    page = db.session.get(SitePage, slug)
    if page is None:
        default = DEFAULTS[slug]
        page = SitePage(slug=slug, title=default.title, body_md=default.body_md,
                        title_en=default.title_en, body_md_en=default.body_md_en)
    return page


def _locked_page(slug: str) -> tuple[SitePage, bool]:
    """The page's row under lock for an edit (two admins saving at once take turns): created
    from the default text first if it was never saved (a concurrent first save that wins the
    race leaves its row, which is then locked and read). Returns it and whether this call
    created it."""
    _known(slug)
    begin_write()
    locked = select(SitePage).where(SitePage.slug == slug).with_for_update().execution_options(populate_existing=True)
    page = db.session.scalar(locked)
    if page is not None:
        return page, False
    default = DEFAULTS[slug]
    try:
        with savepoint():
            db.session.add(SitePage(slug=slug, title=default.title, body_md=default.body_md, title_en=default.title_en,
                                    body_md_en=default.body_md_en))
    except IntegrityError:
        return db.session.scalars(locked).one(), False  # saved first by another admin just now
    return db.session.scalars(locked).one(), True


def page_view(slug: str, locale: str) -> PageView:
    page = page_for_editing(slug)  # an unsaved default page has no updated_at yet
    if locale == "en" and page.body_md_en.strip():
        return PageView(slug, page.title_en.strip() or page.title, page.body_md_en, "en", page.updated_at)
    return PageView(slug, page.title, page.body_md, "ja", page.updated_at)


def update_page(slug: str, actor, *, title: str, body_md: str, title_en: str = "", body_md_en: str = "") -> bool:
    """Store the page's text (audited); False when nothing changed. The first save of a page
    stores its text even unchanged: the default text becomes the operator's own."""
    page, first_save = _locked_page(slug)
    values = {"title": title.strip(), "body_md": body_md, "title_en": title_en.strip(), "body_md_en": body_md_en}
    changed = [name for name in FIELDS if getattr(page, name) != values[name]]
    if not changed and not first_save:
        return False
    for name, value in values.items():
        setattr(page, name, value)
    page.updated_by_id = actor.id
    db.session.add(page)
    record_action(actor, "site_page.update", "site_page", slug, None, changed=changed, first_save=first_save)
    db.session.flush()
    return True
