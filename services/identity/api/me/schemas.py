from __future__ import annotations

from marshmallow import Schema

from services.identity.api.common import new_password_field, password_field
from shared.names import name_field


class ProfileUpdateSchema(Schema):
    first_name = name_field()
    last_name = name_field()


class PasswordChangeSchema(Schema):
    current_password = password_field(required=True)
    new_password = new_password_field(required=True)
