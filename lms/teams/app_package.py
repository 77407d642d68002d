"""The Teams app package a tenant admin uploads (Teams admin center → Manage apps → Upload new
app): ``manifest.json`` (Microsoft's manifest schema, MANIFEST_VERSION), its English
localisation ``en-us.json``, and two icons drawn here — everything made from the deployment's
settings, so that a download is all a tenant needs (docs/teams-app.md).

Who the app is (its id, host, single sign-on resource, personal tabs) comes from
``app_identity``; what it says (names, descriptions, the activity notices) is written here in
Japanese, the default language, and English. The same settings give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from lms.auth.entra import GUID
from lms.common.errors import DomainError
from lms.common.i18n import brand_name, portal_name
from lms.common.links import app_url
from lms.teams import app_identity

if TYPE_CHECKING:
    from PIL import Image

# The newest non-preview schema of @microsoft/app-manifest 1.1.2 (tests/node): the tests
# validate the package against it.
MANIFEST_VERSION = "1.30"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
LOCALIZATION_SCHEMA_URL = (f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
                           "MicrosoftTeams.Localization.schema.json")

# The package's own version (semver). Raise it whenever a release changes what the package
# holds (texts, tabs, activity types, icons, manifest fields): Microsoft asks for a higher
# version with every change of a manifest, and an upload with the same id updates the app.
VERSION = "1.0.0"

DEFAULT_LANGUAGE = "ja-jp"
ENGLISH = "en-us"
ENGLISH_FILE = "en-us.json"
COLOR_ICON, OUTLINE_ICON = "color.png", "outline.png"
COLOR_SIZE, OUTLINE_SIZE = 192, 32

_HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Fixed entry times: the same settings give the same zip, byte for byte.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


class PackageUnavailable(DomainError):
    """The deployment's settings cannot make a valid package (``message`` says which, translated)."""


@dataclass(frozen=True)
class ActivityType:
    """A Teams activity-feed notice the app may send (``activities.activityTypes``). The
    template's ``{…}`` parameters are filled in by the sender (``templateParameters``)."""

    type: str
    description_ja: str
    description_en: str
    template_ja: str
    template_en: str


# The notices a later step sends through Graph (teamwork/sendActivityNotification): ``type`` is
# what the sender names.
APPROVAL_REQUESTED = "approvalRequested"
ENROLLMENT_DECIDED = "enrollmentDecided"
WAITLIST_PROMOTED = "waitlistPromoted"
SESSION_REMINDER = "sessionReminder"
ACTIVITY_DUE = "activityDue"
ACTIVITY_TYPES = (
    ActivityType(APPROVAL_REQUESTED, "研修担当の承認を待つ受講申込", "An enrollment awaiting the training office's approval",
                 "{learner} さんの「{course}」への申込が承認を待っています",
                 "{learner}'s enrollment in {course} awaits your approval"),
    ActivityType(ENROLLMENT_DECIDED, "受講申込の結果", "The outcome of an enrollment",
                 "「{course}」の申込の結果：{decision}", "Your enrollment in {course}: {decision}"),
    ActivityType(WAITLIST_PROMOTED, "キャンセル待ちからの繰り上げ", "Moved up from the waitlist",
                 "「{course}」のキャンセル待ちから繰り上がり、受講が決まりました",
                 "A place opened in {course}: you are moved up from the waitlist"),
    ActivityType(SESSION_REMINDER, "研修回の開始が近いお知らせ", "A session starts soon",
                 "「{course}」は {startsAt} に始まります", "{course} starts at {startsAt}"),
    ActivityType(ACTIVITY_DUE, "期限が近い課題", "An activity falls due",
                 "「{course}」の「{activity}」の期限は {dueAt} です", "{activity} in {course} is due {dueAt}"),
)

_SHORT_DESCRIPTION = ("研修を探して申し込み、受講予定・アーカイブ・受講履歴を Teams で確認できます。",
                      "Find and enroll in training; see your sessions, archives and record in Teams.")
_FULL_DESCRIPTION = (
    "自治体職員のための Microsoft Teams・Microsoft 365 研修の学習管理システムです。研修を探して申し込み、"
    "受講予定と参加リンクを確かめ、研修アーカイブを視聴し、受講履歴と修了証を確認できます。"
    "申込の承認、キャンセル待ちからの繰り上げ、研修回の開始前のお知らせは Teams のアクティビティに届きます。",
    "The learning management system for local government staff's Microsoft Teams and Microsoft 365 "
    "training. Find courses and enroll, check your sessions and their join links, watch recorded archives, "
    "and see your training record and certificates. Approvals, moves up from a waitlist and reminders before "
    "a session arrive in your Teams activity feed.",
)


def _texts() -> dict[str, tuple[str, str]]:
    """Each localisable text of the manifest, by its localisation key: (Japanese, English)."""
    brand = brand_name()
    with force_locale("ja"):
        full_ja = portal_name()
    with force_locale("en"):
        full_en = portal_name()
    texts = {
        "name.short": (brand[:30], brand[:30]),
        "name.full": (full_ja[:100], full_en[:100]),
        "description.short": _SHORT_DESCRIPTION,
        "description.full": _FULL_DESCRIPTION,
    }
    for i, tab in enumerate(app_identity.TABS):
        texts[f"staticTabs[{i}].name"] = (tab.name_ja, tab.name_en)
    for i, activity in enumerate(ACTIVITY_TYPES):
        texts[f"activities.activityTypes[{i}].description"] = (activity.description_ja, activity.description_en)
        texts[f"activities.activityTypes[{i}].templateText"] = (activity.template_ja, activity.template_en)
    return texts


def accent_color() -> str:
    """LMS_TEAMS_ACCENT_COLOR as ``#RRGGBB`` (upper case), or PackageUnavailable."""
    color = str(current_app.config.get("LMS_TEAMS_ACCENT_COLOR") or "").strip()
    if not _HEX_COLOR.match(color):
        raise PackageUnavailable(_("LMS_TEAMS_ACCENT_COLOR は #1D4F91 のような 6 桁の 16 進数の色で設定してください。"))
    return color.upper()


def _client_id() -> str:
    client_id = str(current_app.config.get("ENTRA_CLIENT_ID") or "").strip()
    if not client_id:
        raise PackageUnavailable(_("ENTRA_CLIENT_ID（Microsoft Entra ID のアプリのクライアント ID）が設定されていないため、"
                                   "シングルサインオンのある Teams アプリ パッケージを作れません。"))
    if not GUID.match(client_id):
        raise PackageUnavailable(_("ENTRA_CLIENT_ID は Microsoft Entra ID のアプリのクライアント ID（GUID）で設定してください。"))
    return client_id


def _app_id() -> str:
    app_id = app_identity.app_id()
    if not GUID.match(app_id):
        raise PackageUnavailable(_("LMS_TEAMS_APP_ID は GUID で設定してください（空欄にすると自動で決まります）。"))
    return app_id


def manifest() -> dict:
    """The manifest (Japanese, with the English in ``en-us.json``); PackageUnavailable when the
    settings cannot make a valid one (no Entra client id, a malformed app id or colour)."""
    texts = _texts()
    tabs = [{
        "entityId": tab.entity_id,
        "name": texts[f"staticTabs[{i}].name"][0],
        "contentUrl": app_url("teams_tab.tab", f"/teams/tab?tab={tab.entity_id}", tab=tab.entity_id),
        "websiteUrl": app_url(tab.endpoint, "/"),
        "scopes": ["personal"],
    } for i, tab in enumerate(app_identity.TABS)]
    activity_types = [{
        "type": activity.type,
        "description": texts[f"activities.activityTypes[{i}].description"][0],
        "templateText": texts[f"activities.activityTypes[{i}].templateText"][0],
    } for i, activity in enumerate(ACTIVITY_TYPES)]
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": VERSION,
        "id": _app_id(),
        "localizationInfo": {
            "defaultLanguageTag": DEFAULT_LANGUAGE,
            "additionalLanguages": [{"languageTag": ENGLISH, "file": ENGLISH_FILE}],
        },
        "developer": {
            "name": str(current_app.config.get("LMS_ISSUER_NAME") or brand_name())[:32],
            "websiteUrl": app_identity.base_url(),
            "privacyUrl": app_url("site.privacy", "/privacy"),
            "termsOfUseUrl": app_url("site.accessibility", "/accessibility"),
        },
        "name": {"short": texts["name.short"][0], "full": texts["name.full"][0]},
        "description": {"short": texts["description.short"][0], "full": texts["description.full"][0]},
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": accent_color(),
        "staticTabs": tabs,
        "validDomains": [app_identity.host()],
        "webApplicationInfo": {"id": _client_id(), "resource": app_identity.sso_resource()},
        "activities": {"activityTypes": activity_types},
    }


def localization() -> dict:
    """``en-us.json``: the manifest's texts in English, by their localisation keys."""
    return {"$schema": LOCALIZATION_SCHEMA_URL, **{key: en for key, (_ja, en) in _texts().items()}}


# ---------------------------------------------------------------- the icons

# 学, drawn as polygons on a 32-unit grid (x right, y down): the header's brand mark, without a
# font (the same pixels on every server).
_GLYPH = (
    ((9, 3), (11, 3), (13, 7), (11, 7)),  # ⺍
    ((15, 2), (17, 2), (17, 7), (15, 7)),
    ((21, 3), (23, 3), (21, 7), (19, 7)),
    ((4, 9), (28, 9), (28, 11), (4, 11)),  # 冖
    ((4, 9), (6, 9), (6, 14), (4, 14)),
    ((26, 9), (28, 9), (28, 14), (26, 14)),
    ((9, 13), (23, 13), (23, 15), (9, 15)),  # 子
    ((21, 13), (23, 14), (18, 19), (16, 18)),
    ((3, 20), (29, 20), (29, 22), (3, 22)),
    ((15, 18), (17, 18), (17, 30), (15, 30)),
    ((11, 27), (13, 27), (15, 28), (15, 30), (13, 30)),
)
_WHITE = (255, 255, 255)
_DARK = (0x1B, 0x1B, 0x1B)


def _draw_glyph(image: Image.Image, fill, *, units: float, offset: float) -> None:
    """The glyph on ``image``, scaled so that the image spans ``units`` grid units, moved by ``offset``."""
    from PIL import ImageDraw  # (drawn for a package download only: Pillow stays out of every worker)

    draw = ImageDraw.Draw(image)
    scale = image.width / units
    for polygon in _GLYPH:
        draw.polygon([((x + offset) * scale, (y + offset) * scale) for x, y in polygon], fill=fill)


def _luminance(rgb: tuple[int, ...]) -> float:
    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ink_for(background: tuple[int, ...]) -> tuple[int, int, int]:
    """White or near-black, whichever contrasts more with ``background`` (a light accent colour
    gets a dark mark)."""
    lum = _luminance(background)
    return _WHITE if (1.05 / (lum + 0.05)) >= ((lum + 0.05) / (_luminance(_DARK) + 0.05)) else _DARK


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def color_icon(color: str) -> bytes:
    """192×192, the accent colour with the mark (about half as wide) in its middle, drawn four
    times larger and reduced (smooth edges)."""
    from PIL import Image  # (drawn for a package download only: Pillow stays out of every worker)

    background = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    big = Image.new("RGB", (COLOR_SIZE * 4, COLOR_SIZE * 4), background)
    _draw_glyph(big, ink_for(background), units=56, offset=12)
    return _png(big.resize((COLOR_SIZE, COLOR_SIZE), Image.Resampling.LANCZOS))


def outline_icon() -> bytes:
    """32×32, the mark in white on transparent and nothing else, as Teams requires (no smoothing:
    every pixel is either white or fully transparent)."""
    from PIL import Image  # (drawn for a package download only: Pillow stays out of every worker)

    image = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (*_WHITE, 0))
    _draw_glyph(image, (*_WHITE, 255), units=32, offset=0)
    return _png(image)


# ---------------------------------------------------------------- the zip


def package_name() -> str:
    return f"manabi-teams-app-{VERSION}.zip"


def package() -> bytes:
    """The zip a tenant admin uploads; PackageUnavailable as ``manifest()``."""
    the_manifest = manifest()
    files = {
        "manifest.json": _json(the_manifest),
        ENGLISH_FILE: _json(localization()),
        COLOR_ICON: color_icon(the_manifest["accentColor"]),
        OUTLINE_ICON: outline_icon(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(value: dict) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
