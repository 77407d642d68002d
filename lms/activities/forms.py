"""The activity pages' forms (the answers themselves are read question by question)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from lms.activities.models import (
    DATE,
    END,
    FILE,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    PREWORK,
    QUIZ,
    REPORT,
    SCALE,
    SECTION,
    SINGLE,
    START,
    SURVEY,
    TEXT,
)
from lms.common.forms import Between, Form, Required, stripped, within
from lms.courses.forms import WholeNumberField, choices_of

KIND_LABELS = {PREWORK: _l("事前課題"), SURVEY: _l("研修アンケート"), QUIZ: _l("確認テスト"), REPORT: _l("受講報告")}
ANCHOR_LABELS = {START: _l("研修回の開始"), END: _l("研修回の終了")}
QUESTION_LABELS = {
    SINGLE: _l("単一選択"), MULTIPLE: _l("複数選択"), SCALE: _l("5段階評価（満足度）"), NUMBER: _l("数値"),
    DATE: _l("日付"), TEXT: _l("短い文章"), LONGTEXT: _l("長い文章"),
    FILE: _l("ファイルの添付（事前課題・受講報告）"), SECTION: _l("見出し（区切り）"),
}
HOURS = [Between(-24 * 366, 24 * 366, _l("-8784から8784までの時間数で入力してください。"))]


class ActivityForm(Form):
    kind = SelectField(_l("種類"), choices=choices_of(KIND_LABELS), default=SURVEY)
    title = StringField(_l("名前"), filters=[stripped], validators=[Required(_l("名前を入力してください。")), within(200)])
    instructions_md = TextAreaField(_l("説明（Markdown）"), validators=[within(20000)])
    required = BooleanField(_l("修了に必要（アンケート・事前課題は提出、確認テストは合格、受講報告は確認済）"), default=True)
    anonymous = BooleanField(_l("無記名（アンケートのみ：回答と回答者を結びつけません）"))
    opens_anchor = SelectField(_l("受付開始の基準"), choices=choices_of(ANCHOR_LABELS), default=START)
    opens_offset_hours = WholeNumberField(_l("受付開始（基準からの時間。マイナスは前）"), default=-24 * 30,
                                           validators=[Required(_l("時間数を入力してください。")), *HOURS])
    closes_anchor = SelectField(_l("締切の基準"), choices=choices_of(ANCHOR_LABELS), default=END)
    closes_offset_hours = WholeNumberField(_l("締切（基準からの時間。マイナスは前）"), default=24 * 7,
                                            validators=[Required(_l("時間数を入力してください。")), *HOURS])
    allow_late = BooleanField(_l("締切後の提出も受け付ける（遅れて提出と記録します）"))
    pass_pct = WholeNumberField(_l("合格点（%）"), default=60, validators=[Optional(), Between(1, 100)])
    max_attempts = WholeNumberField(_l("受験できる回数"), default=2, validators=[Optional(), Between(1, 20)])
    time_limit_minutes = WholeNumberField(_l("制限時間（分、空欄なら制限なし）"), validators=[Optional(), Between(1, 600)])
    draw_count = WholeNumberField(_l("出題数（受験ごとに採点する質問からこの数だけ無作為に出題。空欄なら全問）"),
                                  validators=[Optional(), Between(1, 200)])
    shuffle = BooleanField(_l("質問と選択肢の順番を受験ごとに入れ替える"))
    show_answers = BooleanField(_l("締切後の振り返りで正解を見せる（すべての研修回の締切後、もう受験できない人に。締切後の提出を受け付けている間は見せません）"),
                                default=True)


class QuestionForm(Form):
    kind = SelectField(_l("質問の種類"), choices=choices_of(QUESTION_LABELS), default=SINGLE)
    prompt = TextAreaField(_l("質問文"), validators=[Required(_l("質問文を入力してください。")), within(2000)])
    help_text = StringField(_l("補足（任意）"), validators=[within(1000)])
    required = BooleanField(_l("回答を必須にする"), default=True)
    choices = TextAreaField(_l("選択肢（1行に1つ。5段階評価では5行で目盛りの言葉）"), validators=[within(6000)])
    correct = StringField(_l("正解（確認テスト：選択肢の番号をカンマ区切り、数値はその値）"), validators=[within(100)])
    max_length = WholeNumberField(_l("文字数の上限（文章のみ、任意）"), validators=[Optional(), Between(1, 4000)])
    points = WholeNumberField(_l("配点"), default=1, validators=[Optional(), Between(1, 100)])


class ReviewForm(Form):
    comment = TextAreaField(_l("コメント（差し戻すときは必須）"), validators=[within(2000)])
