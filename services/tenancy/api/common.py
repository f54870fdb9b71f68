"""Pieces tenancy's resources share: field rules, shared schemas and the domain-error map."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.tenancy import errors
from shared.auth import InsufficientScope
from shared.errors import ErrorMap
from shared.jwt import TokenRejected
from shared.names import name_field

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
