"""Why an upload was refused or ended, kept without a language.

An upload's reason is stored as a code and its parameters (``UploadSession.error_code`` and
``error_params``) and put into words when it is read, in the reader's language: the uploader's
at the time of the failure (or the worker's Japanese) is not that of a platform admin reading
in English, nor the uploader's own after switching. A reason stored before the codes is free
text (``UploadSession.error``), shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from lms.archives.filetypes import KIND_LABELS, human_size

# The codes (stored: never rename one; a new reason gets a new code).
TOO_LARGE = "too_large"  # params: limit (bytes)
KIND_TOO_LARGE = "kind_too_large"  # params: kind (a file kind), limit (bytes)
UNSUPPORTED_TYPE = "unsupported_type"
UNKNOWN_TYPE = "unknown_type"
BEYOND_DECLARED_LENGTH = "beyond_declared_length"
DISK_FULL = "disk_full"
PPTX_UNREADABLE = "pptx_unreadable"
PDF_UNREADABLE = "pdf_unreadable"
VTT_UNREADABLE = "vtt_unreadable"
VTT_NO_CUES = "vtt_no_cues"
VTT_TOO_MANY_CUES = "vtt_too_many_cues"  # params: limit (cues)
INCOMPLETE = "incomplete"
CHECKSUM_MISMATCH = "checksum_mismatch"
UNVERIFIABLE = "unverifiable"  # the check itself failed on the file (logged)
CANCELLED = "cancelled"
EXPIRED = "expired"
CAPTIONS_VIDEO_GONE = "captions_video_gone"  # the video chosen for the captions was removed meanwhile


@dataclass(frozen=True)
class Reason:
    """A reason as stored: ``code`` and JSON-able ``params``; ``text()`` in the current language."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return describe(self.code, self.params) or self.code


def describe(code: str, params: dict[str, Any] | None = None) -> str | None:
    """The reason in the current language; None for a code this version does not know (or
    parameters it cannot read)."""
    params = params or {}
    try:
        return _describe(code, params)
    except (KeyError, TypeError, ValueError):
        return None


def _describe(code: str, params: dict[str, Any]) -> str | None:
    if code == TOO_LARGE:
        return _("ファイルが大きすぎます（上限 %(limit)s）。", limit=human_size(int(params["limit"])))
    if code == KIND_TOO_LARGE:
        kind = str(params["kind"])
        return _("%(kind)sファイルが大きすぎます（上限 %(limit)s）。", kind=KIND_LABELS.get(kind, kind),
                 limit=human_size(int(params["limit"])))
    if code == UNSUPPORTED_TYPE:
        return _("このファイルの形式には対応していません。動画（MP4・WebM）、資料（PDF・PowerPoint）、字幕（WebVTT）をアップロードしてください。")
    if code == UNKNOWN_TYPE:
        return _("このファイルの形式には対応していません。")
    if code == BEYOND_DECLARED_LENGTH:
        return _("宣言されたサイズを超えるデータが送信されました。")
    if code == DISK_FULL:
        return _("保存領域の空き容量が不足しているため、アップロードを保存できませんでした。"
                 "システム管理者に連絡してください。")
    if code == PPTX_UNREADABLE:
        return _("PowerPoint ファイルとして読み取れません（.pptx 形式のみ対応）。")
    if code == PDF_UNREADABLE:
        return _("PDF ファイルとして開けません（途中で切れているか壊れています）。PDF を保存し直してから追加してください。")
    if code == VTT_UNREADABLE:
        return _("字幕ファイル（WebVTT, UTF-8）として読み取れません。")
    if code == VTT_NO_CUES:
        return _("字幕が1件も読み取れません。各字幕の時刻が「00:00:01.000 --> 00:00:05.000」の形で書かれているか確かめてください。")
    if code == VTT_TOO_MANY_CUES:
        return _("字幕の数が多すぎます（上限 %(limit)s 件）。", limit=f"{int(params['limit']):,}")
    if code == INCOMPLETE:
        return _("ファイルが途中までしか届いていません。もう一度アップロードしてください。")
    if code == CHECKSUM_MISMATCH:
        return _("ファイルの検証（SHA-256）に失敗しました。通信中に内容が変わった可能性があります。もう一度アップロードしてください。")
    if code == UNVERIFIABLE:
        return _("ファイルの内容を確認できませんでした。ファイルを確かめて、もう一度アップロードしてください。")
    if code == CANCELLED:
        return _("アップロードは中止されました。")
    if code == EXPIRED:
        return _("アップロードの有効期限が切れました。最初からやり直してください。")
    if code == CAPTIONS_VIDEO_GONE:
        return _("字幕を付ける動画がアップロード中に削除されました。動画を選び直して、もう一度アップロードしてください。")
    return None
