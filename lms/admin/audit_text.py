"""The audit log in plain words: what was done, to what (by name, with a link), and the details
as a readable list — for a 監査 or an 情報公開 request, without a developer.

The log stores codes (``enrollment.swap``, ``course: 168``, JSON details) so that it never
changes; the names here are looked up when a page or an export is made. A code without a
name here is shown as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from lms.activities.forms import KIND_LABELS as ACTIVITY_KIND_LABELS
from lms.archives.models import Archive
from lms.audit.models import AuditLog
from lms.audit.names import detail_name
from lms.auth.models import User
from lms.common.templating import colon, list_separator
from lms.common.timeutil import to_tokyo
from lms.completion.tables import TABLE_TITLES
from lms.courses.models import Course, TrainingSession
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember
from lms.roster.services import OUTCOME_LABELS

ACTION_LABELS = {
    "access.denied": _l("権限のない操作の拒否"),
    "api_client.register": _l("API クライアントの登録"),
    "api_client.revoke": _l("API クライアントの登録の取消"),
    "roster.upsert": _l("連携 API による職員の登録・更新"),
    "archive.create": _l("アーカイブの作成"),
    "archive.file_remove": _l("アーカイブのファイル削除"),
    "archive.import": _l("録画の取り込み"),
    "archive.publish": _l("アーカイブの公開"),
    "archive.update": _l("アーカイブの編集"),
    "archive.withdraw": _l("アーカイブの公開終了"),
    "attendance.check_in": _l("QR コードでの受付"),
    "attendance.correct": _l("出欠の訂正"),
    "attendance.match": _l("出席記録の照合"),
    "attendance.roll_call": _l("点呼による出欠登録"),
    "attendance.report_upload": _l("Teams 出席者レポート（ファイル）の取り込み"),
    "attendance.rotate_checkin": _l("受付用 QR コードの更新"),
    "auth.logout": _l("サインアウト"),
    "auth.roles_changed": _l("役割の変更"),
    "auth.sign_in": _l("サインイン"),
    "auth.sign_in_failed": _l("サインインの失敗"),
    "auth.signed_out_everywhere": _l("すべての端末からのサインアウト"),
    "auth.tenant_added": _l("テナントの対応付けの追加"),
    "auth.tenant_consented": _l("テナント管理者の同意"),
    "auth.tenant_refused": _l("登録のないテナントからのサインインの拒否"),
    "auth.tenant_removed": _l("テナントの対応付けの削除"),
    "auth.user_created": _l("利用者の登録"),
    "completion.assignment_create": _l("必修研修の指定"),
    "completion.assignment_delete": _l("必修研修の指定の削除"),
    "completion.assignment_update": _l("必修研修の指定の変更"),
    "completion.manual": _l("修了の手動登録"),
    "completion.revoke": _l("修了の取消"),
    "course.cancel": _l("研修の中止"),
    "course.create": _l("研修の作成"),
    "course.copy": _l("研修のコピー"),
    "course.prerequisites": _l("受講要件の設定"),
    "course.publish": _l("研修の公開"),
    "course.unpublish": _l("研修の非公開化"),
    "course.update": _l("研修の編集"),
    "enrollment.approve_step": _l("受講申込の承認（次の承認者へ）"),
    "enrollment.delegate": _l("承認の代理の指名"),
    "enrollment.return": _l("受講申込の差し戻し"),
    "enrollment.select": _l("選考の結果の確定"),
    "activity.create": _l("課題の作成"),
    "activity.update": _l("課題の設定の変更"),
    "activity.publish": _l("課題の公開"),
    "activity.unpublish": _l("課題の非公開"),
    "activity.question_add": _l("課題の質問の追加"),
    "activity.question_update": _l("課題の質問の変更"),
    "activity.question_delete": _l("課題の質問の削除"),
    "activity.bank_add": _l("問題バンクへの質問の追加"),
    "activity.bank_delete": _l("問題バンクからの質問の削除"),
    "activity.attempt": _l("確認テストの受験開始"),
    "activity.report_confirm": _l("受講報告の確認"),
    "activity.report_return": _l("受講報告の差し戻し"),
    "enrollment.resubmit": _l("受講申込の申し込み直し"),
    "enrollment.delegate_end": _l("承認の代理の取消"),
    "enrollment.approve": _l("申込の承認"),
    "enrollment.cancel": _l("申込の取消"),
    "enrollment.cancel_session": _l("研修回の中止による申込の取消"),
    "enrollment.nominate": _l("推薦"),
    "enrollment.reject": _l("申込の却下"),
    "enrollment.swap": _l("受講者の差し替え"),
    "export.audit": _l("監査ログの出力"),
    "export.completion": _l("修了状況の出力"),
    "notifications.retry": _l("メールの再送"),
    "notifications.channel": _l("お知らせの受け取り方の変更"),
    "roster.add": _l("職員の登録"),
    "roster.edit": _l("職員情報の訂正"),
    "roster.export": _l("職員名簿の出力"),
    "roster.graph_sync": _l("Microsoft 365 からの名簿の同期"),
    "roster.import": _l("職員名簿の取込"),
    "roster.leave": _l("退職・転出の記録"),
    "roster.transfer": _l("人事異動の記録"),
    "search.synonym_add": _l("検索の同義語の追加"),
    "search.synonym_delete": _l("検索の同義語の削除"),
    "session.cancel": _l("研修回の中止"),
    "path.create": _l("研修体系の作成"),
    "path.delete": _l("研修体系の削除"),
    "path.update": _l("研修体系の編集"),
    "session.create": _l("研修回の作成"),
    "session.update": _l("研修回の変更"),
    "teams.app_package_downloaded": _l("Teams アプリ パッケージのダウンロード"),
    "teams.detach_meeting": _l("入力された参加リンクによる Teams 会議の取り消し"),
    "teams.retry": _l("Teams 連携の再試行"),
    "teams.sync_meeting": _l("Teams 会議の作成・更新"),
    "teams.viva_disable": _l("Viva Learning 連携の停止"),
    "teams.viva_reconcile": _l("Viva Learning との照合"),
    "teams.viva_settings": _l("Viva Learning 連携の設定"),
    "teams.queue_import_attendance": _l("Teams からの出席記録の取り込みの依頼"),
    "teams.queue_import_recording": _l("Teams からの録画の取り込みの依頼"),
    "attendance.print_participants": _l("受講者名簿の表示・印刷"),
    "attendance.print_sign_in_sheet": _l("出席簿の表示・印刷"),
    "attendance.qr_poster": _l("受付ポスター（QR コード）の表示・印刷"),
    "session.release_quotas": _l("研修回の割当の未使用分の解放"),
    "site_page.update": _l("アクセシビリティ方針・個人情報の取扱いの編集"),
    "roster.bulk_accepted": _l("連携 API による職員名簿の一括更新の受付"),
    "roster.bulk_upsert": _l("連携 API による職員名簿の一括更新の完了"),
    "plan.create": _l("年間研修計画の作成"),
    "plan.publish": _l("年間研修計画の公開"),
    "plan.remind": _l("予定調査の回答の催促"),
    "plan.survey_answer": _l("予定調査への回答"),
    "plan.allocate": _l("割当の計算"),
    "plan.adjust": _l("割当の調整"),
    "plan.publish_allocation": _l("割当の公開（研修回の割当人数）"),
    "plan.exchange_offer": _l("割当を譲る申請"),
    "plan.exchange_ask": _l("割当の追加の申請"),
    "plan.exchange_decide": _l("割当の申請の承認・見送り"),
    "plan.fees": _l("研修負担金の設定"),
    "plan.exemption": _l("研修負担金の減免の登録"),
    "plan.statement": _l("研修負担金の請求書の発行"),
    "webhook.register": _l("Webhook の送信先の登録"),
    "webhook.update": _l("Webhook の送信先の変更"),
    "webhook.rotate_secret": _l("Webhook の署名シークレットの更新"),
    "webhook.disable": _l("Webhook の送信先の停止"),
    "webhook.enable": _l("Webhook の送信先の再開"),
    "webhook.delete": _l("Webhook の送信先の削除"),
    "webhook.test": _l("Webhook のテストイベントの送信"),
    "webhook.replay": _l("Webhook の配信のやり直し"),
    "webhook.replay_failed": _l("Webhook の失敗した配信のやり直し"),
    "webhook.auto_disable": _l("Webhook の送信先の自動停止（送信の失敗が続いたため）"),
}

TARGET_LABELS = {
    "api_client": _l("API クライアント"),
    "archive": _l("アーカイブ"),
    "archive_file": _l("アーカイブのファイル"),
    "attendance": _l("出欠"),
    "attendance_record": _l("出席記録"),
    "attendance_upload": _l("出席レポートの取り込み"),
    "audit_log": _l("監査ログ"),
    "completion": _l("修了"),
    "course": _l("研修"),
    "enrollment": _l("受講申込"),
    "export": _l("出力"),
    "graph_operation": _l("Teams 連携の処理"),
    "mandatory_assignment": _l("必修研修の指定"),
    "municipality": _l("区市町村"),
    "municipality_fees": _l("区市町村の研修負担金"),
    "outbox_mail": _l("送信メール"),
    "search_synonym": _l("検索の同義語"),
    "sign_in": _l("サインイン"),
    "staff_member": _l("職員"),
    "tenant": _l("テナント"),
    "teams_app": _l("Teams アプリ"),
    "tenant_mapping": _l("テナントの対応付け"),
    "training_path": _l("研修体系"),
    "training_session": _l("研修回"),
    "user": _l("利用者"),
    "viva_tenant": _l("Viva Learning 連携"),
    "activity": _l("課題"),
    "activity_submission": _l("課題の回答"),
    "api_roster_job": _l("連携 API による職員名簿の一括更新"),
    "fee_statement": _l("研修負担金の請求書"),
    "plan_allocation": _l("割当"),
    "plan_fee_exemption": _l("研修負担金の減免"),
    "seat_exchange": _l("割当の申請"),
    "site_page": _l("サイトのページ"),
    "training_plan": _l("年間研修計画"),
    "webhook_delivery": _l("Webhook の配信"),
    "webhook_endpoint": _l("Webhook の送信先"),
}

DETAIL_LABELS = {
    "api_client_id": _l("API クライアント"),
    "application_id": _l("アプリケーション ID"),
    "outcome": _l("結果"),
    "extended": _l("既存の期間を延長"),
    "changes": _l("変更内容"),
    "course": _l("研修"),
    "course_id": _l("研修"),
    "employee_number": _l("職員番号"),
    "encoding": _l("文字コード"),
    "fiscal_year": _l("年度"),
    "format": _l("形式"),
    "kind": _l("種類"),
    "left_on": _l("退職・転出日"),
    "mail_domain": _l("メールドメイン"),
    "mappings": _l("対応付けの数"),
    "municipality_code": _l("区市町村コード"),
    "personal": _l("個人情報を含む"),
    "reason": _l("理由"),
    "scope_municipality_id": _l("対象の区市町村"),
    "session_id": _l("研修回"),
    "source": _l("登録元"),
    "subject": _l("件名"),
    "table": _l("表"),
    "tenant_id": _l("テナント ID"),
    "title": _l("題名"),
    "version": _l("バージョン"),
    "words": _l("語"),
    "added": _l("追加"),
    "updated": _l("更新"),
    "unchanged": _l("変更なし"),
    "transferred": _l("異動"),
    "left": _l("退職・転出"),
    "returned": _l("復帰"),
    "mark_missing_left": _l("ファイルにない職員を退職・転出として記録"),
    "filters": _l("絞り込み条件"),
    "required": _l("先に修了が必要な研修"),
    "within_fiscal_years": _l("修了の期限（年度数）"),
    "name": _l("名前"),
    "courses": _l("研修"),
    "absent": _l("欠席"),
    "after": _l("変更後"),
    "approved": _l("承認"),
    "archive_id": _l("アーカイブ"),
    "assignment": _l("必修の指定"),
    "attempt": _l("受験回"),
    "attended": _l("出席"),
    "attended_pct": _l("出席率（%）"),
    "before": _l("変更前"),
    "by_self": _l("本人による操作"),
    "capacity": _l("定員"),
    "changed": _l("変更した件数"),
    "charge_late_cancellation": _l("期限後の取消に負担金を求める"),
    "charge_no_show": _l("欠席に負担金を求める"),
    "comment": _l("コメント"),
    "content_type": _l("ファイルの種類"),
    "count": _l("件数"),
    "declined": _l("見送り"),
    "department": _l("所属"),
    "digest": _l("ファイルのダイジェスト"),
    "display_name": _l("表示名"),
    "due_on": _l("期限"),
    "effective_on": _l("発令日"),
    "email": _l("メール"),
    "enabled": _l("有効"),
    "ends_on": _l("終了日"),
    "event_types": _l("イベントの種類"),
    "failing_since": _l("配信の失敗が始まった日時"),
    "fees": _l("負担金"),
    "fields": _l("変更した項目"),
    "filename": _l("ファイル名"),
    "captions_removed": _l("一緒に削除した字幕"),
    "first_save": _l("初めての保存"),
    "from_department": _l("異動前の所属"),
    "from_job_title": _l("異動前の職名"),
    "from_staff_member_id": _l("差し替え前の職員"),
    "guaranteed_minimum": _l("最低保証人数"),
    "ignored": _l("対象外の件数"),
    "in_order": _l("申込順に決定"),
    "item_id": _l("問題"),
    "job_title": _l("職名"),
    "late": _l("期限後"),
    "lines": _l("明細の行数"),
    "method": _l("方法"),
    "msg_id": _l("メッセージ ID"),
    "municipalities": _l("区市町村"),
    "new_roles": _l("変更後の権限"),
    "new_staff_fiscal_year": _l("新規採用の年度"),
    "new_staff_member_id": _l("差し替え後の職員"),
    "object_id": _l("オブジェクト ID"),
    "old_roles": _l("変更前の権限"),
    "old_staff_member_id": _l("差し替え前の職員"),
    "operation_id": _l("操作 ID"),
    "event_id": _l("Outlook の予定 ID"),
    "path": _l("アクセスしたページ"),
    "percent": _l("割合（%）"),
    "plan_id": _l("研修計画"),
    "present": _l("出席"),
    "question_id": _l("質問"),
    "quotas": _l("割当人数"),
    "recording_id": _l("録画"),
    "registration_id": _l("登録"),
    "replaced_enrollment_id": _l("差し替えた申込"),
    "reserved": _l("補欠"),
    "revision": _l("版"),
    "roles": _l("権限"),
    "rows": _l("行数"),
    "seats": _l("席数"),
    "selected": _l("受講決定"),
    "sessions": _l("研修回"),
    "sha256": _l("SHA-256"),
    "skipped": _l("スキップした件数"),
    "source_id": _l("コピー元"),
    "staff": _l("職員"),
    "staff_member_id": _l("職員"),
    "starts_at": _l("開始日時"),
    "starts_on": _l("開始日"),
    "status": _l("状態"),
    "step": _l("承認の段階"),
    "survey_deadline": _l("予定調査の締切"),
    "survey_unit": _l("予定調査の単位"),
    "to_department": _l("異動後の所属"),
    "to_job_title": _l("異動後の職名"),
    "to_municipality_id": _l("異動先の区市町村"),
    "to_staff_member_id": _l("差し替え後の職員"),
    "total": _l("合計"),
    "total_yen": _l("合計（円）"),
    "url": _l("URL"),
    "users": _l("利用者"),
    "written": _l("書き込んだ件数"),
}


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


def action_choices(actions: Iterable[str]) -> list[tuple[str, str]]:
    """The filter's choices: the code as the value, the plain name as the text (sorted by it)."""
    return sorted(((a, action_label(a)) for a in actions), key=lambda choice: choice[1])


@dataclass(frozen=True)
class Target:
    kind: str  # the plain name of the kind of object
    name: str  # the object's name, or its id when it no longer exists
    url: str | None = None  # its page, where there is one


def _int(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def _course_titles(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Course.id, Course.title).where(Course.id.in_(ids))).all())


def _sessions(ids: set[int]) -> dict[int, tuple[str, int]]:
    """Session id → (its name: course, title and start, its course's id)."""
    rows = db.session.execute(select(TrainingSession.id, TrainingSession.title, TrainingSession.starts_at,
                                     Course.id, Course.title).join(Course).where(TrainingSession.id.in_(ids)))
    return {session_id: (f"{course_title} {title}（{to_tokyo(starts_at):%Y-%m-%d %H:%M}）", course_id)
            for session_id, title, starts_at, course_id, course_title in rows}


def _municipality_names(ids: set[int]) -> dict[int, str]:
    return dict(db.session.execute(select(Municipality.id, Municipality.name).where(Municipality.id.in_(ids))).all())


def targets(entries: Iterable[AuditLog]) -> dict[int, Target]:
    """Entry id → what it acted on, by name: one query per kind of object on the page."""
    entries = list(entries)
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        ident = _int(entry.target_id or "")
        if ident is not None:
            wanted.setdefault(entry.target_type, set()).add(ident)
    names: dict[tuple[str, int], tuple[str, str | None]] = {}
    if ids := wanted.get("course"):
        for course_id, title in _course_titles(ids).items():
            names[("course", course_id)] = (title, url_for("courses.manage_course", course_id=course_id))
    if ids := wanted.get("training_session"):
        for session_id, (name, course_id) in _sessions(ids).items():
            names[("training_session", session_id)] = (name, url_for("courses.manage_course", course_id=course_id))
    if ids := wanted.get("archive"):
        for archive_id, title in db.session.execute(select(Archive.id, Archive.title).where(Archive.id.in_(ids))):
            names[("archive", archive_id)] = (title, url_for("archives.detail", archive_id=archive_id))
    if ids := wanted.get("staff_member"):
        members = db.session.execute(select(StaffMember.id, StaffMember.full_name, StaffMember.employee_number)
                                     .where(StaffMember.id.in_(ids)))
        for member_id, name, number in members:
            names[("staff_member", member_id)] = (f"{name}（{number}）", url_for("roster.detail", member_id=member_id))
    if ids := wanted.get("user"):
        for user_id, name in db.session.execute(select(User.id, User.display_name).where(User.id.in_(ids))):
            names[("user", user_id)] = (name, None)
    if ids := wanted.get("municipality"):
        for m_id, name in _municipality_names(ids).items():
            names[("municipality", m_id)] = (name, None)
    out = {}
    for entry in entries:
        if not entry.target_type:
            continue
        kind = TARGET_LABELS.get(entry.target_type)
        ident = _int(entry.target_id or "")
        found = names.get((entry.target_type, ident)) if ident is not None else None
        name, url = found if found else (entry.target_id or "", None)
        out[entry.id] = Target(str(kind) if kind is not None else entry.target_type, name, url)
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return _("はい") if value else _("いいえ")
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return list_separator().join(_value(v) for v in value) or "—"
    if isinstance(value, dict):
        return list_separator().join(f"{_key(k)}{colon()}{_value(v)}" for k, v in value.items()) or "—"
    return str(value)


# A detail key that means something else in one action than DETAIL_LABELS says.
ACTION_DETAIL_LABELS = {
    ("auth.signed_out_everywhere", "sessions"): _l("終了したサインイン"),
}


# Detail values that are codes, by key: their words (a roster upsert's outcome as the roster
# pages say it, an export's table by its title).
VALUE_LABELS: dict[str, dict[str, Any]] = {
    "outcome": OUTCOME_LABELS,
    "table": {**TABLE_TITLES, "certificates": _l("修了証")},
    "format": {"csv": "CSV", "xlsx": _l("Excel（.xlsx）"), "pdf": "PDF", "zip": "ZIP"},
    "encoding": {"cp932": "Shift_JIS", "utf-8": "UTF-8", "utf8": "UTF-8"},
}
# A code whose words depend on the action (an activity's kind).
ACTION_VALUE_LABELS: dict[tuple[str, str], dict[str, Any]] = {
    ("activity.create", "kind"): ACTIVITY_KIND_LABELS,
}


# Ids in details, by key: named as the entries' own targets are (the same queries), one query
# per kind for a page or an export's partition (an id no longer there stays a number).
ID_NAMES: dict[str, Any] = {
    "scope_municipality_id": _municipality_names,
    "course_id": _course_titles,
    "session_id": lambda ids: {sid: name for sid, (name, _course_id) in _sessions(ids).items()},
}


def detail_names(entries: Iterable[AuditLog]) -> dict[tuple[str, int], str]:
    """The names of the ids the entries' details hold ({(key, id): name}), for ``detail_lines``."""
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        for key, value in (entry.details or {}).items():
            if key in ID_NAMES and isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
                wanted.setdefault(key, set()).add(value)
    return {(key, ident): name for key, ids in wanted.items() for ident, name in ID_NAMES[key](ids).items() if name}


def _detail_value(key: str, value: Any, action: str | None = None,
                  names: dict[tuple[str, int], str] | None = None) -> str:
    """A detail's value: a code in words, an id by its object's name (``names``, from
    ``detail_names``) or the name its area registered, else as it is."""
    if isinstance(value, str):
        labels = ACTION_VALUE_LABELS.get((action or "", key)) or VALUE_LABELS.get(key, {})
        label = labels.get(value)
        if label is not None:
            return str(label)
    elif isinstance(value, int) and not isinstance(value, bool) and (key, value) in (names or {}):
        return (names or {})[(key, value)]
    return detail_name(key, value) or _value(value)


def _key(key: str, action: str | None = None) -> str:
    label = ACTION_DETAIL_LABELS.get((action or "", key)) or DETAIL_LABELS.get(key)
    return str(label) if label is not None else key


def detail_lines(details: dict | None, action: str | None = None,
                 names: dict[tuple[str, int], str] | None = None) -> list[tuple[str, str]]:
    """The details (of an entry of ``action``) as (label, text) pairs; a change reads "old → new";
    ids by the names ``detail_names`` found for the page."""
    lines = []
    for key, value in (details or {}).items():
        if key == "changes" and isinstance(value, dict):
            for field, change in value.items():
                if isinstance(change, list | tuple) and len(change) == 2:
                    lines.append((_key(field, action), f"{_value(change[0])} → {_value(change[1])}"))
                else:
                    lines.append((_key(field, action), _value(change)))
            continue
        lines.append((_key(key, action), _detail_value(key, value, action, names)))
    return lines


def details_text(details: dict | None, action: str | None = None,
                 names: dict[tuple[str, int], str] | None = None) -> str:
    """The details on one line, for the CSV export."""
    return " / ".join(f"{label}{colon()}{text}" for label, text in detail_lines(details, action, names))
