"""`url_for` for templates: a page's header and menu build a dozen or more URLs, at about 10 to 40
microseconds each through Flask and werkzeug, and almost all of them have the same shape on every page.

- URLs without arguments (and the static files) never change within one application root: each is built
  once and remembered.
- A route's URL with plain argument values (RFC 3986 unreserved characters, which no converter's quoting
  changes; ids are such values) is the route's URL with each value put in its place: the route is built
  once with marker values to learn its shape (`_Shape`), and then filled in. Only an endpoint with one
  rule, no defaults and only the default string converter gets a shape (with several rules werkzeug picks
  one by the request's method or the values; another converter may change or refuse a value), and only
  while the app has no URL-default functions; an endpoint whose URL does not come out as markers in a
  path, or that does not build at all, is left to `url_for` too.

Anything else (relative endpoints, values that are not plain strings, `_external` and other `_` options)
goes to `url_for` every time.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, request, url_for
from werkzeug.routing import BaseConverter

PLAIN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")
VARIABLE = re.compile(r"<([^>]*)>")  # a rule's `<name>` or `<converter:name>`


class _Shape:
    """A route's URL as literal text and argument names in turn."""

    def __init__(self, parts: list[str], names: dict[str, str]):
        self.parts = parts
        self.names = names  # marker -> argument name

    def fill(self, values: dict) -> str:
        return "".join(values[self.names[part]] if part in self.names else part for part in self.parts)


def _plain_rule(app: Flask, endpoint: str) -> bool:
    """Whether `endpoint`'s URL is its one rule with each value put in as it is (see the module's docstring)."""
    rules = list(app.url_map.iter_rules(endpoint))
    return (len(rules) == 1 and not rules[0].defaults and not any(app.url_default_functions.values())
            and app.url_map.converters["default"].to_url is BaseConverter.to_url
            and all(":" not in variable for variable in VARIABLE.findall(rules[0].rule)))


def _shape(app: Flask, endpoint: str, names: tuple[str, ...]) -> _Shape | None:
    if not _plain_rule(app, endpoint):
        return None
    markers = {f"m{secrets.token_hex(8)}{number}": name for number, name in enumerate(names)}
    arguments: dict[str, Any] = {name: marker for marker, name in markers.items()}
    try:
        url = url_for(endpoint, **arguments)
    except Exception:  # noqa: BLE001 - whatever the route makes of the markers, url_for answers it every time
        return None
    if "?" in url or any(url.count(marker) != 1 for marker in markers):
        return None
    return _Shape(re.split(f"({'|'.join(markers)})", url), markers)


def template_url_for(app: Flask) -> Callable[..., str]:
    """The templates' `url_for` for `app`."""
    remembered: dict[tuple, str] = {}
    shapes: dict[tuple, _Shape | None] = {}

    def build(endpoint: str, **values) -> str:
        if endpoint.startswith("."):
            return url_for(endpoint, **values)
        if not values or (endpoint == "static" and values.keys() == {"filename"}):
            key = (request.script_root, endpoint, values.get("filename"))
            url = remembered.get(key)
            if url is None:
                url = remembered[key] = url_for(endpoint, **values)
            return url
        if not all(isinstance(value, str) and PLAIN.fullmatch(value) for value in values.values()) or any(
                name.startswith("_") for name in values):
            return url_for(endpoint, **values)
        key = (request.script_root, endpoint, tuple(sorted(values)))
        if key not in shapes:
            shapes[key] = _shape(app, endpoint, key[2])
        shape = shapes[key]
        return shape.fill(values) if shape is not None else url_for(endpoint, **values)

    return build
