"""`url_for` for templates: a page's header and menu build a dozen or more URLs, at about 10 to 40
microseconds each through Flask and werkzeug, and almost all of them have the same shape on every page.

- URLs without arguments (and the static files) never change within one application root: each is built
  once and remembered.
- A route's URL with plain argument values (RFC 3986 unreserved characters, which no converter's quoting
  changes; ids are such values) is the route's URL with each value put in its place: the route is built
  once with marker values to learn its shape (`_Shape`), and then filled in. A route whose rules have
  defaults (werkzeug then picks the rule by the values themselves), whose converter refuses the markers,
  or whose URL does not come out as markers in a path, is left to `url_for`.

Anything else (relative endpoints, values that are not plain strings, `_external` and other `_` options)
goes to `url_for` every time.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, request, url_for
from werkzeug.routing import BuildError

PLAIN = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}")


class _Shape:
    """A route's URL as literal text and argument names in turn."""

    def __init__(self, parts: list[str], names: dict[str, str]):
        self.parts = parts
        self.names = names  # marker -> argument name

    def fill(self, values: dict) -> str:
        return "".join(values[self.names[part]] if part in self.names else part for part in self.parts)


def _shape(endpoint: str, names: tuple[str, ...], rules_have_defaults: bool) -> _Shape | None:
    if rules_have_defaults:
        return None
    markers = {f"m{secrets.token_hex(8)}{number}": name for number, name in enumerate(names)}
    arguments: dict[str, Any] = {name: marker for marker, name in markers.items()}
    try:
        url = url_for(endpoint, **arguments)
    except BuildError:
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
            shapes[key] = _shape(endpoint, key[2], any(rule.defaults for rule in app.url_map.iter_rules(endpoint)))
        shape = shapes[key]
        return shape.fill(values) if shape is not None else url_for(endpoint, **values)

    return build
