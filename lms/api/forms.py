"""The form registering an API client application (platform admins)."""

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import InputRequired, Length, ValidationError

from lms.common.forms import Form
from lms.common.ids import coerce_id
from lms.municipalities.services import is_tenant_id


class ApiClientForm(Form):
    name = StringField(_l("名前"), validators=[InputRequired(_l("名前を入力してください。")), Length(max=200)])
    application_id = StringField(
        _l("アプリケーション（クライアント）ID"),
        validators=[InputRequired(_l("アプリケーション ID を入力してください。")), Length(max=36)],
    )
    municipality_id = SelectField(_l("団体"), coerce=coerce_id)

    def validate_application_id(self, field):
        if not is_tenant_id(field.data):  # (a GUID, like a tenant id)
            raise ValidationError(_l("アプリケーション ID は GUID（例: 72f988bf-86f1-41af-91ab-2d7cd011db47）で入力してください。"))
