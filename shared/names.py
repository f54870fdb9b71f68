"""The one rule for names people choose (first and last names, organization and workspace names), which
other people read in mail: printable, not blank, and nothing a mail client would turn into a link.

A name "reads as a link" when it holds a URL scheme (`http://`, `mailto:`...), `www.`, or a domain-like
token: letters or digits, a dot (or a look-alike full stop), then two or more letters, as in `evil.com`
or `ada@evil.co` (mail clients link bare domains too). Initials (`J.R.R. Tolkien`), versions
(`Team 2.0`) and a final dot (`Acme Inc.`) are names. See docs/security.md.
"""
from __future__ import annotations

import re
import unicodedata

from marshmallow import ValidationError, fields, validate

MAX_LENGTH = 100

# C0/C1 controls, DEL, line and paragraph separators, and the bidirectional embeddings, overrides and
# isolates (they reorder what a reader sees, as in `moc.live` shown as `evil.com`).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_DOTS = ".\u3002\uff0e\uff61"  # full stop, ideographic, fullwidth and halfwidth ideographic full stops
_LINK = re.compile(
    r"[a-z][a-z0-9+.-]*:/"  # a scheme: http://, file:/
    rf"|\bwww[{_DOTS}]"
    rf"|[^\W_][\w-]*[{_DOTS}][^\W\d_]{{2,}}(?![\w-])",  # evil.com, a.b.co, x@evil.io; not `Inc.` or `2.0`
    re.IGNORECASE,
)


class NameRejected(ValueError):
    """A name that breaks the rule; `message` says why in a whole sentence."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def reads_as_link(value: str) -> bool:
    return _LINK.search(unicodedata.normalize("NFKC", value)) is not None


def check_name(value: str) -> None:
    """Raise NameRejected unless `value` is an acceptable name."""
    if _CONTROL.search(value):
        raise NameRejected("Must not contain control characters or line breaks.")
    if not "".join(c for c in value if not c.isspace() and unicodedata.category(c) != "Cf"):
        raise NameRejected("Must not be blank.")
    if reads_as_link(value):
        raise NameRejected("Must not contain a web address or a domain name: mail would show it as a link.")


def unlinked(value: str) -> str:
    """`value` as mail may show it even if it reads as a link (a name from before the rule): the dots and
    colons that make it one are bracketed (`evil[.]com`, `https[:]//`), as security reports write them."""
    if not isinstance(value, str) or not reads_as_link(value):
        return value
    return re.sub(rf"([{_DOTS}:@])", r"[\1]", unicodedata.normalize("NFKC", value))


def _validate(value: str) -> None:
    try:
        check_name(value)
    except NameRejected as rejected:
        raise ValidationError(rejected.message) from None


#: The part of the rule JSON Schema can say, for the OpenAPI documents: no control characters.
PATTERN = f"^[^{_CONTROL.pattern[1:-1]}]*$"


def name_field(**kwargs) -> fields.String:
    """A marshmallow field for a chosen name: 1 to 100 characters under `check_name`."""
    metadata = {"pattern": PATTERN, "description": "Printable; not blank; no web address or domain name",
                **kwargs.pop("metadata", {})}
    return fields.String(validate=[validate.Length(min=1, max=MAX_LENGTH), _validate], metadata=metadata, **kwargs)
