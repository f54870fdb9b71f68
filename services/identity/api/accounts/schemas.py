from __future__ import annotations

from marshmallow import Schema, fields

from services.identity.api.common import email_field, new_password_field, token_field
from shared.names import name_field


class SignUpSchema(Schema):
    email = email_field(required=True)
    password = new_password_field(required=True)
    first_name = name_field(required=True)
    last_name = name_field(required=True)


class TokenSchema(Schema):
    token = token_field(required=True)


class PasswordResetConfirmSchema(Schema):
    token = token_field(required=True)
    new_password = new_password_field(required=True)


class AcceptedSchema(Schema):
    status = fields.String()
