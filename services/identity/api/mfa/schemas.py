from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.identity.api.common import password_field, token_field


def code_field(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=64), load_only=True, **kwargs)


class PasswordSchema(Schema):
    password = password_field(required=True)


class CodeSchema(Schema):
    code = code_field(required=True)


# What OpenAPI says of TotpDisableSchema: marshmallow cannot, so it is written out, "exactly one" as oneOf.
TOTP_DISABLE_BODY = {"content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 64, "writeOnly": True,
                 "description": "A TOTP or recovery code; or send `password` instead"},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024, "writeOnly": True,
                     "description": "The account's password; or send `code` instead"}},
    "oneOf": [{"required": ["code"]}, {"required": ["password"]}]}}}, "required": True}


class TotpDisableSchema(Schema):
    code = code_field(metadata={"description": "A TOTP or recovery code; or send `password` instead"})
    password = password_field(metadata={"description": "The account's password; or send `code` instead"})

    @validates_schema
    def exactly_one(self, data: dict, **_kwargs) -> None:
        if ("code" in data) == ("password" in data):
            raise ValidationError("Send either a code or the password.", field_name="code")


class MfaSignInSchema(Schema):
    mfa_token = token_field(required=True, load_only=True)
    code = code_field(required=True)


class EnrolmentSchema(Schema):
    secret = fields.String()
    otpauth_uri = fields.String()
    qr_svg = fields.String(metadata={"description": "QR code of otpauth_uri as an inline SVG document"})


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(fields.String(), metadata={"description": "Ten single-use codes, shown once"})
