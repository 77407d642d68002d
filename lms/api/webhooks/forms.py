"""The form of a webhook endpoint (register and change)."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.validators import Length

from lms.common.forms import Form, Required, stripped
from lms.common.ids import coerce_id


class EndpointForm(Form):
    url = StringField(_l("送信先の URL"), filters=[stripped], validators=[Required(_l("送信先の URL を入力してください。")),
                                                   Length(max=2000)])
    description = StringField(_l("説明"), validators=[Length(max=200)])
    # Checked by the service (lms.api.webhooks.services.EVENT_TYPES), with its message.
    event_types = SelectMultipleField(_l("通知するイベント"), validate_choice=False)
    # Platform admins only (removed from a training office's form): 0 is the platform.
    municipality_id = SelectField(_l("対象の団体"), coerce=coerce_id)
