from __future__ import annotations

from marshmallow import Schema

from services.identity.api.common import password_field, token_field
from shared.addresses import EmailField


class SignInSchema(Schema):
    # Sign-in only looks an account up: an address stored before the address policy still signs in.
    email = EmailField(lookup=True, required=True)
    password = password_field(required=True)


class RefreshTokenSchema(Schema):
    refresh_token = token_field(required=True)
