"""The signed-in account."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from services.identity import accounts, sessions
from services.identity.api.common import AccountSchema, guess_throttle
from services.identity.api.me.schemas import PasswordChangeSchema, ProfileUpdateSchema, SessionListSchema
from services.identity.runtime import runtime
from shared.auth import bearer_required

blp = Blueprint("me", __name__, url_prefix="/v1", description="The signed-in account")


@blp.route("/me")
class Me(MethodView):
    @bearer_required()
    @blp.response(200, AccountSchema)
    @blp.alt_response(401, description="invalid_token")
    def get(self):
        """The signed-in account"""
        rt = runtime()
        return accounts.get_account(rt.reads, account_id=g.claims["sub"])

    @bearer_required()
    @blp.arguments(ProfileUpdateSchema(), required=False)
    @blp.response(200, AccountSchema)
    @blp.alt_response(401, description="invalid_token")
    def patch(self, body):
        """Change first or last name"""
        rt = runtime()
        return accounts.update_profile(rt.uow(), account_id=g.claims["sub"], changes=body, now=rt.clock())


@blp.route("/me/password")
class MyPassword(MethodView):
    @bearer_required()
    @blp.arguments(PasswordChangeSchema())
    @blp.response(204)
    @blp.alt_response(401, description="invalid_token, or invalid_credentials for a wrong current password")
    @blp.alt_response(422, description="validation_failed")
    @blp.alt_response(429, description="rate_limited: too many attempts (Retry-After)")
    def post(self, body):
        """Change the password

        Needs the current password; signs out every other session.
        """
        rt = runtime()
        accounts.change_password(rt.uow(), throttle=guess_throttle(), settings=rt.settings,
                                 account_id=g.claims["sub"], session_id=g.claims["sid"],
                                 current_password=body["current_password"], new_password=body["new_password"],
                                 now=rt.clock())


@blp.route("/me/sessions")
class MySessions(MethodView):
    @bearer_required()
    @blp.response(200, SessionListSchema)
    @blp.alt_response(401, description="invalid_token")
    def get(self):
        """The account's signed-in sessions (devices), the caller's own marked `current`"""
        rt = runtime()
        return {"items": sessions.list_sessions(rt.uow(), account_id=g.claims["sub"],
                                                current_session_id=g.claims["sid"], now=rt.clock())}


@blp.route("/me/sessions/<string:session_id>")
class MySessionById(MethodView):
    @bearer_required()
    @blp.response(204)
    @blp.alt_response(401, description="invalid_token")
    @blp.alt_response(404, description="not_found: no such session of this account")
    def delete(self, session_id):
        """Sign a session out: its refresh token stops working (its access token runs out within its lifetime)"""
        rt = runtime()
        sessions.revoke_session(rt.uow(), account_id=g.claims["sub"], session_id=session_id, now=rt.clock())
