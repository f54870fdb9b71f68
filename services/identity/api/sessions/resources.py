"""Sign-in, refresh and sign-out."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.identity import sessions
from services.identity.api.common import SignInResultSchema, TokenPairSchema, device, guess_throttle, limit_per_ip
from services.identity.api.sessions.schemas import RefreshTokenSchema, SignInSchema
from services.identity.runtime import runtime

blp = Blueprint("sessions", __name__, url_prefix="/v1", description="Sign-in, token refresh, sign-out")


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.arguments(SignInSchema())
    @blp.response(200, SignInResultSchema)
    @blp.alt_response(401, description="invalid_credentials (unknown email and wrong password alike)")
    @blp.alt_response(403, description="email_not_verified")
    @blp.alt_response(429, description="rate_limited, with Retry-After")
    def post(self, body):
        """Sign in with email and password

        Returns an access token (JWT) and a refresh token or, when 2FA is on, `mfa_required` with an
        `mfa_token` for POST /v1/sessions/mfa. Repeated failures for one address block it for a
        growing delay (429 with Retry-After).
        """
        limit_per_ip("sign-in")
        rt = runtime()
        return sessions.sign_in(rt.uow(), reads=rt.reads, throttle=guess_throttle(), keys=rt.keys, settings=rt.settings,
                                email=body["email"], password=body["password"], now=rt.clock(), device=device())


@blp.route("/tokens/refresh")
class TokenRefresh(MethodView):
    @blp.arguments(RefreshTokenSchema())
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="token_invalid, token_expired or token_reused")
    def post(self, body):
        """Exchange a refresh token for a new pair

        The refresh token is rotated: the old one stops working, and presenting it again ends the
        whole session (401 token_reused).
        """
        rt = runtime()
        return sessions.refresh(rt.rotations, keys=rt.keys, settings=rt.settings, refresh_token=body["refresh_token"],
                                now=rt.clock())


@blp.route("/sessions/revoke")
class SessionRevoke(MethodView):
    @blp.arguments(RefreshTokenSchema())
    @blp.response(204)
    def post(self, body):
        """Sign out: end the session of a refresh token"""
        rt = runtime()
        sessions.sign_out(rt.uow(), refresh_token=body["refresh_token"], now=rt.clock())
