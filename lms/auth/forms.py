from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField
from wtforms.validators import InputRequired


class DemoSignInForm(FlaskForm):
    user_id = RadioField(_l("サインインするデモ利用者"), coerce=int, validators=[InputRequired(_l("利用者を選んでください。"))])
    next = HiddenField()
