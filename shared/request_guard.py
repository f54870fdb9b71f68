"""The guard every request of every service passes before its view: input that no route can take is
refused here, in one place, before it reaches a schema, a password hasher or the database.

- A NUL character in the path: 404, no such resource (no id holds one, and PostgreSQL text cannot).
- A NUL character in a query parameter, a form field or a JSON string: 422 `validation_failed`
  naming the field (what the field validators answer for other control characters).
- A JSON body that cannot be read as plain JSON text: 400 `malformed_json`. That is bytes that are
  not UTF-8 or not JSON, a lone UTF-16 surrogate (`"\\ud800"`: not text, so no encoder, hasher or
  database takes it), nesting deeper than `MAX_JSON_DEPTH`, and an integer longer than Python reads
  (4,300 digits).

The JSON body is parsed here as webargs parses it (UTF-8, the standard library's decoder), so a body
that passes parses there too, at any stack depth: the guard has checked how deep it goes.
"""
from __future__ import annotations

import json
import re

from flask import Request, Response
from werkzeug.exceptions import NotFound

from shared import errors

MAX_JSON_DEPTH = 32
NUL = "\x00"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # the decoder joins a valid pair into one character

NOT_JSON = "The request body is not valid JSON."
TOO_DEEP = f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
NUMBER_TOO_LONG = "The request body holds a number too long to read."
NOT_TEXT = "The request body holds a lone UTF-16 surrogate (\\ud800 to \\udfff without its pair), which is not text."
HOLDS_NUL = "A field of the request holds a NUL character, which no field accepts."
NUL_MESSAGE = "Must not contain a NUL character."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class MalformedJson(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def refusal(request: Request) -> Response | None:
    """The problem answering this request if it holds input no route takes; None lets it through."""
    environ = request.environ
    if NUL in environ.get("PATH_INFO", ""):
        return errors.http_exception_problem(NotFound())
    fields: list[str] = []
    query = environ.get("QUERY_STRING", "")
    if "%00" in query or NUL in query:
        fields += _fields_with_nul(request.args.items(multi=True))
    if environ.get("CONTENT_TYPE"):
        if request.is_json:
            body = request.get_data(cache=True)
            if body:
                try:
                    fields += _json_fields_with_nul(body)
                except MalformedJson as error:
                    return errors.problem(400, "malformed_json", error.message)
        elif request.mimetype in FORM_TYPES:
            fields += _fields_with_nul(request.form.items(multi=True))
    if fields:
        return errors.problem(422, "validation_failed", HOLDS_NUL, errors={field: [NUL_MESSAGE] for field in fields})
    return None


def _fields_with_nul(items) -> list[str]:
    return [key for key, value in items if NUL in key or NUL in value]


def _parse_json(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedJson(NOT_JSON) from None
    except RecursionError:
        raise MalformedJson(TOO_DEEP) from None
    except ValueError:  # int() refuses more digits than sys.get_int_max_str_digits()
        raise MalformedJson(NUMBER_TOO_LONG) from None


def _json_fields_with_nul(body: bytes) -> list[str]:
    """The top-level fields of the JSON body whose strings (keys included) hold a NUL; raises
    MalformedJson for a body that does not parse, a lone surrogate or nesting deeper than
    MAX_JSON_DEPTH. Walks with a stack of its own, not recursion."""
    document = _parse_json(body)
    if b"\\u" not in body and body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return []  # a NUL or a surrogate needs a \u escape; too few brackets to nest too deep
    fields: list[str] = []

    def check(text: str, field: str) -> None:
        if not text.isascii() and LONE_SURROGATE.search(text):
            raise MalformedJson(NOT_TEXT)
        if NUL in text and field not in fields:
            fields.append(field)

    stack = [(document, 1, "_schema")]  # marshmallow's name for the body as a whole
    while stack:
        value, depth, field = stack.pop()
        if isinstance(value, str):
            check(value, field)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise MalformedJson(TOO_DEEP)
            if isinstance(value, list):
                stack += [(item, depth + 1, field) for item in value]
                continue
            for key, item in value.items():
                key_field = key if depth == 1 else field
                check(key, key_field)
                stack.append((item, depth + 1, key_field))
    return fields
