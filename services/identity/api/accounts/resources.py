"""Sign-up, email verification and password reset."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.identity import accounts
from services.identity.api.accounts.schemas import AcceptedSchema, PasswordResetConfirmSchema, SignUpSchema, TokenSchema
from services.identity.api.common import AccountSchema, EmailSchema, limit_per_ip
from services.identity.runtime import runtime

blp = Blueprint("accounts", __name__, url_prefix="/v1", description="Sign-up, email verification, password reset")

ACCEPTED = {"status": "accepted"}


@blp.route("/accounts")
class Accounts(MethodView):
    @blp.arguments(SignUpSchema())
    @blp.response(201, AccountSchema)
    @blp.alt_response(409, description="email_taken")
    @blp.alt_response(422, description="validation_failed (including the password policy)")
    @blp.alt_response(429, description="rate_limited")
    def post(self, body):
        """Sign up with email and password

        Creates an unverified account and mails a verification link. Sign-in is refused until the
        address is verified.
        """
        limit_per_ip("sign-up")
        rt = runtime()
        return accounts.register(rt.uow(), settings=rt.settings, email=body["email"], password=body["password"],
                                 first_name=body["first_name"], last_name=body["last_name"], now=rt.clock())


@blp.route("/email-verifications")
class EmailVerifications(MethodView):
    @blp.arguments(EmailSchema())
    @blp.response(202, AcceptedSchema)
    @blp.alt_response(429, description="rate_limited")
    def post(self, body):
        """Send the verification mail again

        Always 202, whether or not the address has an account; a per-address cooldown and hourly
        cap apply silently.
        """
        limit_per_ip("email")
        rt = runtime()
        accounts.resend_verification(rt.uow(), throttle=rt.throttle, settings=rt.settings, email=body["email"],
                                     now=rt.clock())
        return ACCEPTED


@blp.route("/email-verifications/confirm")
class EmailVerificationConfirm(MethodView):
    @blp.arguments(TokenSchema())
    @blp.response(200, AccountSchema)
    @blp.alt_response(400, description="token_invalid or token_expired")
    def post(self, body):
        """Confirm an email address with the token from the mail

        Confirming again with the same token returns 200 (mail scanners open links first).
        """
        rt = runtime()
        return accounts.confirm_email(rt.uow(), token=body["token"], now=rt.clock())


@blp.route("/password-resets")
class PasswordResets(MethodView):
    @blp.arguments(EmailSchema())
    @blp.response(202, AcceptedSchema)
    @blp.alt_response(429, description="rate_limited")
    def post(self, body):
        """Mail a password reset link

        Always 202, whether or not the address has an account.
        """
        limit_per_ip("email")
        rt = runtime()
        accounts.request_password_reset(rt.uow(), throttle=rt.throttle, settings=rt.settings, email=body["email"],
                                        now=rt.clock())
        return ACCEPTED


@blp.route("/password-resets/confirm")
class PasswordResetConfirm(MethodView):
    @blp.arguments(PasswordResetConfirmSchema())
    @blp.response(204)
    @blp.alt_response(400, description="token_invalid or token_expired")
    @blp.alt_response(422, description="validation_failed")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Set a new password with the token from the reset mail

        Signs out every session of the account. Two-factor authentication stays on.
        """
        limit_per_ip("reset")
        rt = runtime()
        accounts.reset_password(rt.uow(), throttle=rt.throttle, settings=rt.settings, token=body["token"],
                                new_password=body["new_password"], now=rt.clock())
