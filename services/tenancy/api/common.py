"""Pieces tenancy's resources share: field rules, shared schemas and the domain-error map."""
from __future__ import annotations

import functools

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, post_load, validate

from services.tenancy import errors
from services.tenancy.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, PageRequest
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
    errors.InvalidCursor: 422,
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


class ListQueryArgsSchema(Schema):
    """The query arguments of every list: a page of at most `limit` items after `cursor`."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"Items in a page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"})
    cursor = fields.String(validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH), metadata={
        "description": "The `next` of the previous page (opaque); leave it out for the first page"})

    @post_load
    def page_request(self, data: dict, **_kwargs) -> PageRequest:
        return PageRequest(**data)


#: What ListQueryArgsSchema loads from an empty query string.
FIRST_PAGE = PageRequest()


def page_arguments(blp: Blueprint):
    """`@blp.arguments(ListQueryArgsSchema(), location="query")`, documented and parsed as that, but a request
    without a query string gets FIRST_PAGE, what the schema would load, without webargs' parse (a tenth of
    the switcher's CPU: it is read on every signed-in page, almost always without arguments)."""

    def decorate(view):
        parsed = blp.arguments(ListQueryArgsSchema(), location="query")(view)

        @functools.wraps(parsed)
        def wrapper(*args, **kwargs):
            if not request.query_string:
                return view(*args, FIRST_PAGE, **kwargs)
            return parsed(*args, **kwargs)

        return wrapper

    return decorate


class PageSchema(Schema):
    """A page of a list; each list adds its `items`."""

    next = fields.String(allow_none=True, metadata={
        "description": "The `cursor` for the next page; null on the last page"})


class WorkspaceListSchema(PageSchema):
    items = fields.List(fields.Nested(WorkspaceSchema))
