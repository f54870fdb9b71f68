"""Pieces the identity resources share: field rules, the per-IP limit and the domain-error map."""
from __future__ import annotations

import re

from flask import request
from marshmallow import Schema, ValidationError, fields, validate

from services.identity import errors, oidc, passwords, provider
from services.identity.models import Device
from services.identity.runtime import runtime
from shared.addresses import EmailField
from shared.auth import InsufficientScope
from shared.errors import ErrorMap
from shared.jwt import TokenRejected
from shared.throttle import Throttle

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

ERROR_MAP = ErrorMap({
    errors.EmailTaken: 409,
    errors.InvalidCredentials: 401,
    errors.EmailNotVerified: 403,
    errors.OneTimeTokenError: 400,
    errors.RefreshTokenError: 401,
    errors.AccountNotFound: 404,
    errors.SessionNotFound: 404,
    errors.MfaStateConflict: 409,
    errors.InvalidCode: 401,
    errors.MfaUnavailable: 503,
    errors.InvalidClient: 401,
    errors.InvalidScope: 400,
    errors.UnsupportedGrantType: 400,
    errors.AccountExists: 409,
    errors.IdentityAlreadyLinked: 409,
    errors.ProviderEmailMissing: 400,
    errors.ProviderEmailNotVerified: 403,
    oidc.UnknownProvider: 404,
    oidc.ReturnToNotAllowed: 400,
    oidc.ProviderUnavailable: 503,
    oidc.OidcError: 400,
    passwords.PasswordRejected: 422,
    TokenRejected: 401,
    InsufficientScope: 403,
    provider.AuthRequestNotFound: 404,
    provider.AuthRequestExpired: 400,
    provider.AuthRequestCompleted: 409,
    provider.PersonTokenInvalid: 400,
    provider.LoginRequired: 409,
    provider.WorkspaceRequired: 409,
})


def no_control_characters(value: str) -> None:
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("Must not contain control characters or line breaks.")


def email_field(**kwargs) -> fields.String:
    """An address we can mail (shared/addresses.py), in its normalised form."""
    return EmailField(**kwargs)


def password_field(**kwargs) -> fields.String:
    # Length rules live in the password policy (configurable); this only bounds the request size.
    return fields.String(validate=validate.Length(min=1, max=1024), load_only=True, **kwargs)


def new_password_field(**kwargs) -> fields.String:
    """A password being chosen: the policy checks it (422); the OpenAPI documents give its lengths from the
    same settings (`policy_lengths`)."""
    return password_field(metadata={"password_policy": True}, **kwargs)


def policy_lengths(settings):
    """An apispec attribute function: the lengths of `new_password_field`s as the policy enforces them."""

    def lengths(_converter, field, **_kwargs) -> dict:
        if not field.metadata.get("password_policy"):
            return {}
        return {"minLength": settings.password_min_length, "maxLength": passwords.MAX_LENGTH}

    return lengths


def token_field(**kwargs) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=512), **kwargs)


class EmailSchema(Schema):
    email = email_field(required=True)


class AccountSchema(Schema):
    id = fields.String()
    email = fields.String()
    first_name = fields.String()
    last_name = fields.String()
    email_verified = fields.Boolean()
    mfa_enabled = fields.Boolean()
    created_at = fields.DateTime()


class TokenPairSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()


class SignInResultSchema(TokenPairSchema):
    """A token pair, or, when 2FA is on, what the second step needs."""

    mfa_required = fields.Boolean()
    mfa_token = fields.String()
    methods = fields.List(fields.String())


def limit_per_ip(scope: str) -> None:
    """Per-client-address limit on the routes that cost us (hashing, mail); 429 past it."""
    rt = runtime()
    rt.throttle.hit(f"ip:{scope}:{request.remote_addr}", rt.settings.ip_rate_limit, 60)


def device() -> Device:
    """The client's user agent and address, as a new session records them."""
    return Device.of(request.user_agent.string, request.remote_addr)


def guess_throttle() -> Throttle:
    """The failure throttle for guesses at a secret (passwords, codes, client secrets), keyed on the
    client's address as well as the target (`Throttle.guess`)."""
    return runtime().throttle.for_source(request.remote_addr)
