from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, RadioField

from lms.common.forms import Form, Required
from lms.common.ids import coerce_id


class DemoSignInForm(Form):
    user_id = RadioField(_l("サインインするデモ利用者"), coerce=coerce_id, validators=[Required(_l("利用者を選んでください。"))])
    next = HiddenField()
