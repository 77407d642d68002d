"""予定調査 as an Excel round trip: a training office downloads its own sheet, fills it in
Excel, and uploads it back. The upload is checked cell by cell; one bad cell stores nothing,
and every bad cell is named (row and column) in one message list."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from flask_babel import gettext as _

from lms.common.errors import InvalidInput
from lms.common.spreadsheet import read_xlsx_rows
from lms.common.timeutil import fiscal_year_label, to_tokyo, utcnow
from lms.common.xlsx import SheetColumn, xlsx_stream
from lms.municipalities.models import Municipality
from lms.planning.models import PRIORITIES, SURVEY_BY_SESSION, FeeStatement, TrainingPlan
from lms.planning.services import Answer, demands_of, plan_sessions, survey_items

MAX_SHEET_BYTES = 2 * 1024 * 1024
_SESSION_KEY = "研修回ID"
_COURSE_KEY = "研修ID"
_CODE = re.compile(r"（(\d{6})）")


class SheetErrors(InvalidInput):
    """The upload's bad cells, each a sentence naming its row and column."""

    def __init__(self, errors: list[str]):
        super().__init__(_("Excel の内容に誤りがあります。直してからもう一度アップロードしてください（何も保存していません）。"))
        self.errors = errors


def _key(plan: TrainingPlan) -> str:
    """The first column: what a row answers for (a session or a course)."""
    return _SESSION_KEY if plan.survey_unit == SURVEY_BY_SESSION else _COURSE_KEY


def _columns(plan: TrainingPlan) -> list[SheetColumn]:
    answer = [SheetColumn("希望人数", 10), SheetColumn("優先度（1〜5）", 12), SheetColumn("コメント", 40)]
    if plan.survey_unit == SURVEY_BY_SESSION:
        return [SheetColumn(_SESSION_KEY, 10), SheetColumn("研修名", 40), SheetColumn("回", 16),
                SheetColumn("開始日時", 18), SheetColumn("定員", 8), *answer]
    return [SheetColumn(_COURSE_KEY, 10), SheetColumn("研修名", 40), SheetColumn("回数", 8),
            SheetColumn("最初の回", 18), SheetColumn("最後の回", 18), SheetColumn("定員（合計）", 10), *answer]


def survey_workbook(plan: TrainingPlan, municipality: Municipality) -> Iterator[bytes]:
    """The municipality's sheet: one row per survey item of the plan (course, or session),
    its current answers filled in. The headers stay in Japanese in every language: they are
    what the upload reads."""
    answers = demands_of(plan, municipality.id)
    deadline = to_tokyo(plan.survey_deadline).strftime("%Y-%m-%d %H:%M") if plan.survey_deadline else "—"
    title = [
        f"{fiscal_year_label(plan.fiscal_year)} 研修計画 予定調査",
        f"自治体：{municipality.name}（{municipality.code}）",
        f"回答期限：{deadline}　出力日時：{to_tokyo(utcnow()):%Y-%m-%d %H:%M}",
        f"「希望人数」「優先度」「コメント」の列だけを記入してください。行と「{_key(plan)}」は変えないでください。",
    ]
    rows: list[tuple] = []
    for item in survey_items(plan):
        answer = answers.get(item.id)
        given = (answer.requested if answer else None, answer.priority if answer else None,
                 answer.comment if answer else "")
        start = to_tokyo(item.starts_at).replace(tzinfo=None)
        if item.per_session:
            rows.append((item.id, item.course.title, item.sessions[0].title, start, item.capacity, *given))
        else:
            rows.append((item.id, item.title, len(item.sessions), start,
                         to_tokyo(item.last_starts_at).replace(tzinfo=None), item.capacity, *given))
    return xlsx_stream("予定調査", _columns(plan), rows, title_lines=title)


def _number(text: str) -> int | None:
    value = unicodedata.normalize("NFKC", text or "").strip().replace(",", "")
    if value == "":
        return 0
    if value.endswith(".0"):
        value = value[:-2]
    # (ASCII digits only after NFKC: "𐩀" is a digit to isdigit() but no number to int())
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


def read_survey_workbook(plan: TrainingPlan, municipality: Municipality, data: bytes) -> dict[int, Answer]:
    """The answers in an uploaded sheet ({survey item id: Answer}), or SheetErrors naming every
    bad cell. The sheet must be this municipality's, for this plan's courses (or sessions)."""
    if not data:
        raise InvalidInput(_("ファイルが空です。"))
    if len(data) > MAX_SHEET_BYTES:
        raise InvalidInput(_("ファイルが大きすぎます（上限 %(mb)s MB）。", mb=MAX_SHEET_BYTES // (1024 * 1024)))
    if not data.startswith(b"PK\x03\x04"):
        raise InvalidInput(_("Excel ファイル（.xlsx）を選んでください。ダウンロードした予定調査のファイルに記入してアップロードします。"))
    per_session = plan.survey_unit == SURVEY_BY_SESSION
    items = {item.id for item in survey_items(plan)}
    key_name = _key(plan)
    limit = len(items) + 50  # the title and heading rows, one row per item, and room for notes
    rows = read_xlsx_rows(data, max_rows=limit)  # (row number, cells) of the rows with content
    if len(rows) > limit:
        raise InvalidInput(_("記入された行が多すぎます（%(line)d行目で %(limit)d 行を超えました。予定調査の行は %(n)d 行です）。回答の行のほかは消してからアップロードしてください。",
                             line=rows[-1][0], limit=limit, n=len(items)))
    header_at = next((i for i, (_line, row) in enumerate(rows) if row and row[0].strip() == key_name), None)
    if header_at is None:
        raise InvalidInput(_("予定調査のファイルではありません（「研修回ID」の見出しが見つかりません）。") if per_session else
                           _("予定調査のファイルではありません（「研修ID」の見出しが見つかりません）。この計画は研修ごとに回答します。"))
    for _line, row in rows[:header_at]:
        found = _CODE.search(" ".join(row))
        if found and found.group(1) != municipality.code:
            raise InvalidInput(_("別の自治体（団体コード %(code)s）の予定調査のファイルです。%(name)s のファイルをダウンロードして記入してください。",
                                 code=found.group(1), name=municipality.name))
    header = [cell.strip() for cell in rows[header_at][1]]
    try:
        at = {name: header.index(name) for name in (key_name, "希望人数", "優先度（1〜5）", "コメント")}
    except ValueError:
        raise InvalidInput(_("見出しの列が足りません。ダウンロードしたファイルの列を消さずに記入してください。")) from None
    errors: list[str] = []
    answers: dict[int, Answer] = {}

    def cell(row: list[str], name: str) -> str:
        index = at[name]
        return row[index] if index < len(row) else ""

    for line, row in rows[header_at + 1:]:
        key = _number(cell(row, key_name))
        if not key or key not in items:
            errors.append(_("%(line)d行目「研修回ID」：この計画の研修回ではありません（%(value)s）。", line=line,
                            value=cell(row, key_name)) if per_session else
                          _("%(line)d行目「研修ID」：この計画の研修ではありません（%(value)s）。", line=line,
                            value=cell(row, key_name)))
            continue
        if key in answers:
            errors.append(_("%(line)d行目「研修回ID」：同じ研修回が2行あります。", line=line) if per_session else
                          _("%(line)d行目「研修ID」：同じ研修が2行あります。", line=line))
            continue
        requested = _number(cell(row, "希望人数"))
        priority_text = cell(row, "優先度（1〜5）").strip()
        priority = 3 if priority_text == "" else _number(priority_text)
        comment = cell(row, "コメント").strip()
        bad = False
        if requested is None or requested > 9999:
            errors.append(_("%(line)d行目「希望人数」：0〜9999の整数で入力してください（%(value)s）。", line=line, value=cell(row, "希望人数")))
            bad = True
        if priority not in PRIORITIES:
            errors.append(_("%(line)d行目「優先度」：1〜5の数字で入力してください（%(value)s）。", line=line, value=priority_text))
            bad = True
        if len(comment) > 500:
            errors.append(_("%(line)d行目「コメント」：500文字以内にしてください。", line=line))
            bad = True
        if not bad:
            assert requested is not None and priority is not None
            answers[key] = Answer(requested, priority, comment)
    if errors:
        raise SheetErrors(errors)
    return answers


_KIND_LABELS = {"participant": "受講", "late_cancellation": "直前取消", "no_show": "欠席", "correction": "訂正"}


def fees_sheet(plan: TrainingPlan, statement: FeeStatement) -> Iterator[bytes]:
    """An issued statement as an invoice-ready sheet: title rows (body, municipality, version,
    issue date, total), then one row per line; amounts as whole-yen numbers."""
    from flask import current_app

    issuer = current_app.config.get("LMS_ISSUER_NAME") or ""
    issued = to_tokyo(statement.issued_at)
    title = [
        f"{fiscal_year_label(plan.fiscal_year)} 研修負担金 請求明細（第{statement.version}版）",
        f"請求先：{statement.municipality.name}（{statement.municipality.code}）",
        f"発行：{issuer}　発行日：{issued.year}年{issued.month}月{issued.day}日",
        f"合計：{statement.total_yen:,}円",
    ]
    columns = [SheetColumn("区分", 10), SheetColumn("研修名", 36), SheetColumn("開催日時", 18), SheetColumn("職員番号", 12),
               SheetColumn("氏名", 18), SheetColumn("負担金（円）", 12), SheetColumn("減免（%）", 10),
               SheetColumn("請求額（円）", 12), SheetColumn("備考", 36)]
    rows = [(_KIND_LABELS.get(line.kind, line.kind), line.course_title,
             to_tokyo(line.session_starts_at).replace(tzinfo=None), line.employee_number, line.staff_name,
             line.fee_yen, line.exemption_percent, line.amount_yen, line.note) for line in statement.lines]
    return xlsx_stream("請求明細", columns, rows, title_lines=title)


def plan_rows(plan: TrainingPlan) -> list[tuple]:
    """The plan as published: one row per session, with its course's fee and audience."""
    from lms.planning.fees import fees_of

    fees = fees_of(plan)
    rows = []
    for session in plan_sessions(plan):
        course = session.course
        audience = "全自治体" if course.eligible_all else "、".join(
            sorted(row.municipality.name for row in course.eligibility))
        rows.append((course.title, session.title, to_tokyo(session.starts_at).replace(tzinfo=None),
                     to_tokyo(session.ends_at).replace(tzinfo=None), _DELIVERY.get(session.delivery, session.delivery),
                     session.location or "", session.capacity, fees.get(course.id, 0), audience,
                     course.target_audience or ""))
    return rows


_DELIVERY = {"teams": "オンライン（Teams）", "onsite": "会場", "hybrid": "ハイブリッド"}


def plan_workbook(plan: TrainingPlan) -> Iterator[bytes]:
    from flask import current_app

    issuer = current_app.config.get("LMS_ISSUER_NAME") or ""
    title = [f"{fiscal_year_label(plan.fiscal_year, wareki=bool(current_app.config.get('LMS_WAREKI')))} 年間研修計画",
             f"{issuer}　出力日時：{to_tokyo(utcnow()):%Y-%m-%d %H:%M}".strip()]
    columns = [SheetColumn("研修名", 36), SheetColumn("回", 14), SheetColumn("開始", 18), SheetColumn("終了", 18),
               SheetColumn("形式", 16), SheetColumn("会場", 24), SheetColumn("定員", 8), SheetColumn("負担金（円）", 12),
               SheetColumn("対象自治体", 30), SheetColumn("対象者", 24)]
    return xlsx_stream("年間研修計画", columns, plan_rows(plan), title_lines=title)
