from __future__ import annotations

from marshmallow import Schema, fields

from services.identity.api.common import new_password_field, password_field
from shared.names import name_field


class ProfileUpdateSchema(Schema):
    first_name = name_field()
    last_name = name_field()


class PasswordChangeSchema(Schema):
    current_password = password_field(required=True)
    new_password = new_password_field(required=True)


class SessionSchema(Schema):
    id = fields.String()
    created_at = fields.DateTime(metadata={"description": "When the person signed in"})
    last_used_at = fields.DateTime(metadata={"description": "When its tokens were last issued (sign-in or refresh)"})
    user_agent = fields.String(allow_none=True, metadata={"description": "The browser or app that signed in"})
    ip_address = fields.String(allow_none=True, metadata={"description": "The address it signed in from"})
    amr = fields.List(fields.String(), metadata={"description": "How the person signed in: pwd, otp, fed"})
    current = fields.Boolean(metadata={"description": "The session of the access token making this request"})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema))
