"""Errors as RFC 9457 problem documents, the only error shape any Threshold API returns.

Domain code raises `DomainError` subclasses that know nothing of HTTP; each service maps them to a
status at the edge (`ErrorMap`). Anything unexpected becomes a 500 problem with a correlation id and
no stack trace.
"""
from __future__ import annotations

import logging
import re
import traceback

from apispec import BasePlugin
from flask import Flask, Response, g, json
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import HTTPException

from shared import database

log = logging.getLogger("threshold.errors")
PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base of every error a service function raises on purpose. `code` is the stable slug; `message`,
    a whole sentence, is the problem's `detail` unless the raise names a more precise one. Every
    subclass writes its own message (tests/shared/test_error_messages.py checks)."""

    code = "error"
    message = "The request could not be completed."

    def __init__(self, detail: str | None = None):
        self.detail = detail or self.message
        super().__init__(self.detail)


class RateLimited(DomainError):
    code = "rate_limited"
    message = "Too many attempts; try again later."

    def __init__(self, retry_after: int, detail: str | None = None):
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """Something this service needs did not answer: 503 with Retry-After, a fault that passes."""

    code = "dependency_unavailable"
    message = "A service this one needs did not answer; try again shortly."
    retry_after = 5  # seconds, sent as Retry-After: about what a restart or a failover takes


class DatabaseUnavailable(Unavailable):
    """The database could not be reached or dropped the connection during the request (503)."""

    code = "database_unavailable"
    message = "The database did not answer; try again shortly."

    def __init__(self):
        super().__init__(self.message)


def problem(status: int, code: str, detail: str, title: str | None = None, errors: dict | None = None,
            headers: dict | None = None, **extra) -> Response:
    from werkzeug.http import HTTP_STATUS_CODES

    body = {
        "type": f"urn:threshold:problem:{code}",
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def _flatten_validation(messages: dict) -> dict:
    """webargs nests messages by location ({"json": {"email": [...]}}); clients want {field: [...]}."""
    flat: dict = {}
    for location, located in messages.items():
        if isinstance(located, dict):
            for field, field_messages in located.items():
                flat[field] = field_messages
        else:
            flat[location] = located
    return flat


def http_exception_problem(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        return problem(422, "validation_failed", "The request body is not valid.",
                       errors=_flatten_validation(data["messages"]))
    if status == 400 and "messages" in data:
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    headers = {k: v for k, v in (data.get("headers") or {}).items()}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    return problem(status, HTTP_CODES.get(status, "error"), error.description or "", headers=headers)


class ErrorMap:
    """Maps domain error classes to HTTP statuses for one service (most specific class wins)."""

    def __init__(self, statuses: dict[type[DomainError], int]):
        self.statuses: dict[type[DomainError], int] = {RateLimited: 429, Unavailable: 503, **statuses}

    def status_for(self, error: DomainError) -> int:
        for cls in type(error).__mro__:
            if cls in self.statuses:
                return self.statuses[cls]
        return 400

    def response(self, error: DomainError) -> Response:
        headers: dict[str, str] = {}
        retry_after = getattr(error, "retry_after", None)  # rate limits, and dependencies that are down
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        status = self.status_for(error)
        if status == 401 and getattr(error, "bearer", False):
            # RFC 6750 3: error_description may hold only %x20-21 / %x23-5B / %x5D-7E (no '"' or '\\').
            description = re.sub(r'[^\x20\x21\x23-\x5b\x5d-\x7e]', "'", error.detail)
            headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{description}"'
        challenge = getattr(error, "challenge", None)
        if status == 401 and challenge:
            headers["WWW-Authenticate"] = challenge
        field = getattr(error, "field", None)
        errors = {field: [error.detail]} if field else None
        return problem(status, error.code, error.detail, headers=headers, errors=errors, **getattr(error, "extra", {}))


def register(app: Flask, error_map: ErrorMap) -> None:
    app.register_error_handler(DomainError, error_map.response)
    app.register_error_handler(HTTPException, http_exception_problem)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return http_exception_problem(error)
        request_id = getattr(g, "request_id", None)
        if database.is_unavailable(error):  # an outage passes: the pool reconnects on a later request
            log.warning("database unavailable (request_id=%s): %s", request_id, database.describe_error(error))
            return error_map.response(DatabaseUnavailable())
        described = database.describe_error(error)
        if described is None:
            log.exception("unhandled error (request_id=%s)", request_id)
        else:  # the database's own text can quote the row it refused: frames and a description only
            log.error("unhandled error (request_id=%s): %s\n%s", request_id, described,
                      "".join(traceback.format_tb(error.__traceback__)).rstrip())
        return problem(500, "internal_error", "Something went wrong on our side.", correlation_id=request_id)


# --- the OpenAPI side: what the documents say about errors ---------------------------------------------

class ProblemSchema(Schema):
    """An RFC 9457 problem document: the body of every error response."""

    class Meta:
        unknown = INCLUDE  # a problem may carry members of its own (readiness `checks`, a `link_code`)

    type = fields.String(required=True, metadata={"description": "`urn:threshold:problem:` and the code"})
    title = fields.String(required=True, metadata={"description": "The HTTP status phrase"})
    status = fields.Integer(required=True)
    detail = fields.String(required=True, metadata={"description": "A sentence for people; may change"})
    code = fields.String(required=True, metadata={"description": "What went wrong, a stable slug to branch on"})
    errors = fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={
        "description": "The fields refused and why, each with a list of sentences (422)"})
    correlation_id = fields.String(metadata={"description": "The request id to quote when reporting a 500"})


#: What every operation of a kind may answer besides what its decorators document, and why.
GENERAL_ERRORS = {
    "body": {400: "malformed_json: the body is not JSON text", 413: "payload_too_large",
             422: "validation_failed, with `errors` naming each field"},
    "parameters": {422: "validation_failed, with `errors` naming each parameter"},
    "secured": {401: "invalid_token: missing, expired or unknown bearer token, or the wrong kind of token"},
    "any": {503: "database_unavailable, or a service this one needs did not answer; retry after Retry-After"},
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                               "schema": {"type": "integer", "minimum": 1}}}
ALWAYS_UP = ("/healthz",)  # answers from memory: no dependency, so no 503


class ProblemDocs(BasePlugin):
    """An apispec plugin documenting every error an operation answers as it is sent: problem+json with the
    `Problem` schema, the general statuses (GENERAL_ERRORS) added to what the route's decorators list,
    Retry-After on 429 and 503, and no catch-all `default` response. An error a route documents with a
    content type of its own (an HTML page on a browser route) keeps it."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            for status in list(responses):  # the decorators key them by int, OpenAPI by string
                responses[str(status)] = responses.pop(status)
            kinds = ["any"] if path not in ALWAYS_UP else []
            if "requestBody" in operation:
                kinds.append("body")
            if any(p.get("in") == "query" for p in operation.get("parameters", []) if isinstance(p, dict)):
                kinds.append("parameters")
            if operation.get("security"):
                kinds.append("secured")
            for kind in kinds:
                for status, description in GENERAL_ERRORS[kind].items():
                    responses.setdefault(str(status), {"description": description})
            operation["responses"] = {status: self.problem_response(int(status), response) if int(status) >= 400
                                      else response for status, response in sorted(responses.items())}

    @staticmethod
    def problem_response(status: int, documented) -> dict:
        from werkzeug.http import HTTP_STATUS_CODES

        response = dict(documented) if isinstance(documented, dict) else {}
        response.setdefault("description", HTTP_STATUS_CODES.get(status, "Error"))
        response.setdefault("content", {PROBLEM_JSON: {"schema": "Problem"}})  # a browser route says text/html
        if status in (429, 503):
            response["headers"] = {**RETRY_AFTER, **response.get("headers", {})}
        return response
