"""Forms for managing courses and sessions (trainers, platform admins)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Length, NumberRange, Optional

from lms.common import forms as base
from lms.common.ids import coerce_id
from lms.courses.models import BY_ARCHIVE, BY_ATTENDANCE, BY_BOTH, BY_EITHER, DELIVERY_LABELS, TEAMS

COMPLETION_LABELS = {
    BY_ATTENDANCE: _l("当日の出席で修了"),
    BY_ARCHIVE: _l("アーカイブ視聴で修了"),
    BY_EITHER: _l("出席またはアーカイブ視聴のどちらかで修了"),
    BY_BOTH: _l("出席とアーカイブ視聴の両方で修了"),
}

def completion_terms(course, has_series: bool) -> list[str]:
    """What completing ``course`` takes, in the figures its mode uses: the attendance rate
    (出席), the viewing rate (アーカイブ視聴), and for a 連続講座 the share of days attended.
    The learner's course page and the trainer's say the same."""
    mode = course.completion_mode
    terms = []
    if mode in (BY_ATTENDANCE, BY_EITHER, BY_BOTH):
        terms.append(_l("出席率 %(a)d%% 以上", a=course.attendance_threshold_pct))
    if mode in (BY_ARCHIVE, BY_EITHER, BY_BOTH):
        terms.append(_l("視聴率 %(v)d%% 以上", v=course.viewing_threshold_pct))
    if has_series and mode != BY_ARCHIVE:
        terms.append(_l("連続講座は日程の %(s)d%% 以上に出席", s=course.series_threshold_pct))
    return [str(term) for term in terms]


def choices_of(pairs) -> list[SelectChoice]:
    """WTForms 3.3 wants SelectChoice objects (tuples are deprecated)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return [SelectChoice(value, label) for value, label in items]


class TokyoDateTimeField(base.JapaneseDateTimeField):
    """A date and time on the Asia/Tokyo wall clock, typed in Japanese order (2026-12-03 14:00)."""


class WholeNumberField(IntegerField):
    """An integer input with a Japanese parse error."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(str(_l("半角数字で入力してください。"))) from None


class MultiCheckboxField(SelectMultipleField):
    """Rendered by the template as grouped checkboxes."""

    def pre_validate(self, form):
        # Unknown ids are reported by the service with a clearer message.
        pass


# As long as an activity's instructions (Markdown, activities.forms): rendering stays bounded.
DESCRIPTION_MAX = 20000


class CourseForm(base.Form):
    title = StringField(_l("研修名"), validators=[base.Required(_l("研修名を入力してください。")), Length(max=200)])
    summary = TextAreaField(_l("概要（一覧に表示されます）"), validators=[Length(max=500)])
    description_md = TextAreaField(_l("詳しい説明（Markdown）"), validators=[base.within(DESCRIPTION_MAX)])
    category_id = SelectField(_l("分類"), coerce=coerce_id, default=0)
    target_audience = StringField(_l("対象者"), validators=[Length(max=500)])
    eligibility = RadioField(
        _l("対象の自治体"),
        choices=[SelectChoice("all", _l("すべての自治体")), SelectChoice("list", _l("選んだ自治体のみ"))],
        default="all",
    )
    municipality_ids = MultiCheckboxField(_l("対象とする自治体"), coerce=coerce_id)
    audience_grades = TextAreaField(_l("対象の職層"), validators=[Length(max=2000)])
    audience_titles = TextAreaField(_l("対象の職名"), validators=[Length(max=2000)])
    min_years_of_service = WholeNumberField(_l("経験年数（下限）"), validators=[
        Optional(), NumberRange(0, 60, _l("0から60までの数で入力してください。"))])
    max_years_of_service = WholeNumberField(_l("経験年数（上限）"), validators=[
        Optional(), NumberRange(0, 60, _l("0から60までの数で入力してください。"))])
    new_hires_only = BooleanField(_l("今年度の新規採用職員のみ"))
    supervisor_approval = BooleanField(_l("申込に所属長の承認が必要（研修担当の承認より先）"))
    requires_approval = BooleanField(_l("申込に所属自治体の研修担当の承認が必要"))
    selection = BooleanField(_l("主催者が選考して受講者を決める（選考あり：承認のあと、研修回ごとの選考ページで受講決定・補欠・見送りを決めます）"))
    completion_mode = SelectField(_l("修了条件"), choices=choices_of(COMPLETION_LABELS), default=BY_EITHER)
    attendance_threshold_pct = WholeNumberField(
        _l("出席率の基準（%）"), default=75,
        validators=[base.Required(_l("出席率の基準を入力してください。")), NumberRange(1, 100, _l("1から100までの数で入力してください。"))],
    )
    viewing_threshold_pct = WholeNumberField(
        _l("視聴率の基準（%）"), default=90,
        validators=[base.Required(_l("視聴率の基準を入力してください。")), NumberRange(1, 100, _l("1から100までの数で入力してください。"))],
    )
    series_threshold_pct = WholeNumberField(
        _l("連続講座の出席日数の基準（%）"), default=75,
        validators=[Optional(), NumberRange(1, 100, _l("1から100までの数で入力してください。"))],
    )
    organizer_mailbox = StringField(_l("Teams 会議の主催者メールボックス（任意）"), validators=[Length(max=320)])
    # The version of the course the form was opened on (services.course_edit_version).
    version = HiddenField()
    preview = SubmitField(_l("説明をプレビュー"))
    save = SubmitField(_l("保存"))


class QuotaRowForm(base.SubForm):
    municipality_id = SelectField(_l("自治体"), coerce=coerce_id, default=0, validate_choice=False)
    seats = WholeNumberField(_l("割当人数"), validators=[
        Optional(), base.Between(0, 100000)])
    remove = BooleanField(_l("この割当を削除"))


class SessionForm(base.Form):
    title = StringField(_l("回の名前（例: 第1回）"), validators=[Length(max=200)])
    starts_at = TokyoDateTimeField(_l("開始日時"), validators=[base.Required(_l("開始日時を入力してください。"))])
    ends_at = TokyoDateTimeField(_l("終了日時"), validators=[base.Required(_l("終了日時を入力してください。"))])
    delivery = RadioField(_l("開催方法"), choices=choices_of(DELIVERY_LABELS), default=TEAMS)
    location = StringField(_l("会場"), validators=[Length(max=300)])
    join_url = StringField(_l("Teams 会議の参加リンク"), validators=[Length(max=2000)])
    capacity = WholeNumberField(
        _l("定員"), validators=[base.Required(_l("定員を入力してください。")), base.Between(1, 100000, _l("定員は1から100000までの数で入力してください。"))]
    )
    enroll_opens_at = TokyoDateTimeField(_l("申込開始"), validators=[Optional()])
    enroll_closes_at = TokyoDateTimeField(_l("申込締切"), validators=[Optional()])
    cancel_deadline = TokyoDateTimeField(_l("キャンセル期限"), validators=[Optional()])
    quotas = FieldList(FormField(QuotaRowForm), _l("割当人数"), min_entries=0)
    add_quota = SubmitField(_l("割当の行を追加"))
    # Shown when a move would give confirmed enrollees two sessions at once (see the template).
    accept_clashes = BooleanField(_l("時間が重なる受講者がいることを確認のうえ変更する"))
    # The version of the session the form was opened on (services.session_edit_version).
    version = HiddenField()
    save = SubmitField(_l("保存"))


class CancelForm(base.Form):
    reason = TextAreaField(_l("中止の理由（受講者に通知されます）"), validators=[Length(max=1000)])
    submit = SubmitField(_l("中止する"))


ActionForm = base.ActionForm  # a bare POST (publish, unpublish) with its CSRF token


class PrerequisiteForm(base.Form):
    """受講要件: the courses to complete first, and how recent a completion must be."""

    required_ids = MultiCheckboxField(_l("先に修了が必要な研修"), coerce=coerce_id)
    within_fiscal_years = WholeNumberField(
        _l("修了の期限（年度数）"),
        validators=[Optional(), NumberRange(1, 20, _l("1から20までの数で入力してください。"))],
    )
    save = SubmitField(_l("受講要件を保存"))


class PathForm(base.Form):
    """研修体系: a name, a description and up to ten courses in the order they are taken."""

    name = StringField(_l("研修体系の名前"), validators=[base.Required(_l("研修体系の名前を入力してください。")),
                                                    Length(max=200)])
    description = TextAreaField(_l("説明"), validators=[Length(max=2000)])
    steps = FieldList(SelectField(coerce=coerce_id, default=0, validate_choice=False), min_entries=10, max_entries=10)
    save = SubmitField(_l("保存"))
