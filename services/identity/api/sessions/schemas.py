from __future__ import annotations

from marshmallow import Schema

from services.identity.api.common import email_field, password_field, token_field


class SignInSchema(Schema):
    email = email_field(required=True)
    password = password_field(required=True)


class RefreshTokenSchema(Schema):
    refresh_token = token_field(required=True)
