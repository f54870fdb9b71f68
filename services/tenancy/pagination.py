"""Cursor pagination, one way for every tenancy list.

A page asks for at most `limit` items after a cursor. A list is read in a fixed order of columns
(keyset pagination, not OFFSET), so rows added or removed before the cursor shift nothing: every item
that stays is seen once. The cursor is opaque to clients: base64url of a JSON array holding the list's
name and the order columns of the last item returned. It holds only a position; every page is filtered
by the caller's access afresh, so a cursor edited by hand can move the position but never show more.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from services.tenancy.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 512
ID = re.compile(r"[0-9A-Za-z-]{1,64}")


@dataclass(frozen=True)
class PageRequest:
    """What a client asked of a list: at most `limit` items, after `cursor` (a previous page's `next`)."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


class Keyset:
    """The order of one list: the name its cursors carry, and the kind (datetime or str id) of each
    order column, as the repository sorts by them."""

    def __init__(self, name: str, *kinds: type):
        self.name = name
        self.kinds = kinds

    def position(self, cursor: str | None) -> tuple | None:
        """The position a cursor of this list names (None: from the start); `InvalidCursor` otherwise."""
        if cursor is None:
            return None
        try:
            values = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True))
            if not isinstance(values, list) or len(values) != len(self.kinds) + 1 or values[0] != self.name:
                raise InvalidCursor()
            return tuple(self._value(kind, value) for kind, value in zip(self.kinds, values[1:], strict=True))
        except (ValueError, OverflowError):  # bad base64, JSON, UTF-8 or datetime, or a datetime out of range
            raise InvalidCursor() from None

    @staticmethod
    def _value(kind: type, value):
        if not isinstance(value, str):
            raise InvalidCursor()
        if kind is datetime:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise InvalidCursor()
            return moment.astimezone(UTC)
        if not ID.fullmatch(value):
            raise InvalidCursor()
        return value

    def cursor(self, position: tuple | None) -> str | None:
        if position is None:
            return None
        values = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in position]
        raw = json.dumps([self.name, *values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def page(self, items: list, last: tuple | None) -> dict:
        """The response: the items, and `next` for the page after `last` (None when this page ends the list)."""
        return {"items": items, "next": self.cursor(last)}
