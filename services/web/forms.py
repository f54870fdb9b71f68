"""The pages' forms. Each is a FlaskForm, so each carries and checks a CSRF token; labels are the
accessible names the contract promises."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Email, Length

EMAIL = [DataRequired(_l("Enter your email address.")), Email(_l("Enter an email address like name@example.com.")),
         Length(max=254)]
NAME = [DataRequired(_l("Enter a name.")), Length(max=100)]


class SignUpForm(FlaskForm):
    email = EmailField(_l("Email"), EMAIL)
    password = PasswordField(_l("Password"), [DataRequired(_l("Enter a password."))])
    first_name = StringField(_l("First name"), [DataRequired(_l("Enter your first name.")), Length(max=100)])
    last_name = StringField(_l("Last name"), [DataRequired(_l("Enter your last name.")), Length(max=100)])


class SignInForm(FlaskForm):
    email = EmailField(_l("Email"), EMAIL)
    password = PasswordField(_l("Password"), [DataRequired(_l("Enter your password."))])


class CodeForm(FlaskForm):
    code = StringField(_l("Authentication code"), [DataRequired(_l("Enter the 6-digit code from your app.")),
                                                   Length(min=6, max=6, message=_l("The code has 6 digits."))])


class RecoveryCodeForm(FlaskForm):
    code = StringField(_l("Recovery code"), [DataRequired(_l("Enter one of your recovery codes.")), Length(max=64)])


class EmailForm(FlaskForm):
    email = EmailField(_l("Email"), EMAIL)


class ButtonForm(FlaskForm):
    """A form that is only a button (resend, sign out, revoke): its CSRF token is its whole content."""


class LoginCodeForm(FlaskForm):
    login_code = HiddenField(validators=[DataRequired(), Length(max=512)])


class TokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=512)])


class NewPasswordForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=512)])
    new_password = PasswordField(_l("New password"), [DataRequired(_l("Enter a new password."))])


class OrganizationForm(FlaskForm):
    name = StringField(_l("Organization name"), NAME)


class ChooseWorkspaceForm(FlaskForm):
    workspace = RadioField(_l("Workspace"), [DataRequired(_l("Choose a workspace."))], validate_choice=True)


class WorkspaceForm(FlaskForm):
    name = StringField(_l("Workspace name"), NAME)


class InvitationForm(FlaskForm):
    email = EmailField(_l("Email"), EMAIL)
    workspace = SelectField(_l("Workspace"), validate_choice=True)
    role = SelectField(_l("Role"), choices=[("member", _l("Member")), ("admin", _l("Admin")), ("owner", _l("Owner"))],
                       default="member")


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[("member", _l("Member")), ("admin", _l("Admin")), ("owner", _l("Owner"))])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("Password"), [DataRequired(_l("Enter your password."))])

