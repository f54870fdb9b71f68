"""Pieces tenancy's resources share: field rules, shared schemas and the domain-error map."""
from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate

from services.tenancy import errors
from shared.auth import InsufficientScope
from shared.errors import ErrorMap
from shared.jwt import TokenRejected

ERROR_MAP = ErrorMap({
    errors.NotFound: 404,
    errors.Forbidden: 403,
    errors.EmailNotVerified: 403,
    errors.Conflict: 409,
    errors.InvitationTokenInvalid: 400,
    errors.InvitationExpired: 400,
    errors.IdentityUnavailable: 503,
    TokenRejected: 401,
    InsufficientScope: 403,
})

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _printable(value: str) -> None:
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("Must not contain control characters or line breaks.")
    if not value.strip():
        raise ValidationError("Must not be blank.")


def name_field(**kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=100), _printable], **kwargs)


def role_field(**kwargs) -> fields.String:
    return fields.String(validate=validate.OneOf(["owner", "admin", "member"]), **kwargs)


class NameSchema(Schema):
    name = name_field(required=True)


class RenameSchema(Schema):
    name = name_field()


class OrganizationRefSchema(Schema):
    id = fields.String()
    name = fields.String()


class OrganizationSchema(Schema):
    id = fields.String()
    name = fields.String()
    role = fields.String(metadata={"description": "The caller's role in the organization"})
    created_at = fields.DateTime()


class WorkspaceSchema(Schema):
    id = fields.String()
    name = fields.String()
    organization_id = fields.String()
    organization = fields.Nested(OrganizationRefSchema)
    role = fields.String(metadata={"description": "The caller's role in the workspace"})
    created_at = fields.DateTime()


class WorkspaceListSchema(Schema):
    items = fields.List(fields.Nested(WorkspaceSchema))
