"""TOTP two-factor authentication: enrolment, recovery codes, the second sign-in step."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from services.identity import mfa
from services.identity.api.common import TokenPairSchema, device, guess_throttle, limit_per_ip
from services.identity.api.mfa.schemas import (
    TOTP_DISABLE_BODY,
    CodeSchema,
    EnrolmentSchema,
    MfaSignInSchema,
    PasswordSchema,
    RecoveryCodesSchema,
    TotpDisableSchema,
)
from services.identity.runtime import runtime
from shared.auth import bearer_required

blp = Blueprint("mfa", __name__, url_prefix="/v1", description="Two-factor authentication (TOTP)")


def two_factor() -> mfa.TwoFactor:
    rt = runtime()
    return mfa.TwoFactor(rt.uow(), throttle=guess_throttle(), settings=rt.settings, box=rt.totp_box)


@blp.route("/me/mfa/totp")
class TotpEnrolment(MethodView):
    @bearer_required()
    @blp.arguments(PasswordSchema())
    @blp.response(201, EnrolmentSchema)
    @blp.alt_response(401, description="invalid_token, or invalid_credentials for a wrong password")
    @blp.alt_response(409, description="mfa_already_enabled")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Start TOTP enrolment

        Needs the password again. Returns the secret, the otpauth:// URI and its QR code; 2FA is not
        on until confirmed with a code.
        """
        return two_factor().start_enrolment(g.claims["sub"], password=body["password"], now=runtime().clock())


@blp.route("/me/mfa/totp/confirm")
class TotpConfirmation(MethodView):
    @bearer_required()
    @blp.arguments(CodeSchema())
    @blp.response(200, RecoveryCodesSchema)
    @blp.alt_response(401, description="invalid_code")
    @blp.alt_response(503, description="mfa_unavailable: TOTP secrets cannot be decrypted (TOTP_ENCRYPTION_KEYS)")
    @blp.alt_response(409, description="mfa_enrolment_not_started or mfa_already_enabled")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Turn 2FA on with a code from the authenticator

        Returns ten recovery codes, shown only this once.
        """
        codes = two_factor().confirm_enrolment(g.claims["sub"], code=body["code"], now=runtime().clock())
        return {"recovery_codes": codes}


@blp.route("/me/mfa/totp/disable")
class TotpDisable(MethodView):
    @bearer_required()
    @blp.arguments(TotpDisableSchema())
    @blp.doc(requestBody=TOTP_DISABLE_BODY)
    @blp.response(204)
    @blp.alt_response(401, description="invalid_code, or invalid_credentials for a wrong password")
    @blp.alt_response(503, description="mfa_unavailable: TOTP secrets cannot be decrypted (TOTP_ENCRYPTION_KEYS)")
    @blp.alt_response(409, description="mfa_not_enabled")
    @blp.alt_response(422, description="validation_failed: neither or both of code and password")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Turn 2FA off with a TOTP or recovery code, or with the password

        Exactly one of `code` and `password`. A wrong password counts against the same failure throttle
        as sign-in. The owner is mailed a security notice.
        """
        two_factor().disable(g.claims["sub"], code=body.get("code"), password=body.get("password"),
                             now=runtime().clock())


@blp.route("/me/mfa/recovery-codes")
class RecoveryCodes(MethodView):
    @bearer_required()
    @blp.arguments(CodeSchema())
    @blp.response(200, RecoveryCodesSchema)
    @blp.alt_response(401, description="invalid_code")
    @blp.alt_response(503, description="mfa_unavailable: TOTP secrets cannot be decrypted (TOTP_ENCRYPTION_KEYS)")
    @blp.alt_response(409, description="mfa_not_enabled")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Replace the recovery codes (needs a TOTP code)

        Every earlier recovery code stops working.
        """
        codes = two_factor().regenerate_recovery_codes(g.claims["sub"], code=body["code"], now=runtime().clock())
        return {"recovery_codes": codes}


@blp.route("/sessions/mfa")
class MfaSignIn(MethodView):
    @blp.arguments(MfaSignInSchema())
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(400, description="token_invalid or token_expired (the mfa_token)")
    @blp.alt_response(401, description="invalid_code")
    @blp.alt_response(503, description="mfa_unavailable: TOTP secrets cannot be decrypted (TOTP_ENCRYPTION_KEYS)")
    @blp.alt_response(429, description="rate_limited")
    def post(self, body):
        """Second sign-in step: a TOTP or recovery code for the mfa_token

        A few wrong codes void the mfa_token; sign in with the password again then.
        """
        limit_per_ip("mfa")
        rt = runtime()
        return two_factor().complete_sign_in(body["mfa_token"], code=body["code"], keys=rt.keys, device=device(),
                                             now=rt.clock())
