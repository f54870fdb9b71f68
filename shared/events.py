"""Domain events and their CloudEvents 1.0 envelope (structured mode, JSON)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.database import new_id, utcnow

SPEC_VERSION = "1.0"


@dataclass(frozen=True)
class Event:
    """Something that happened; `type` is also the routing key on the bus."""

    type: str
    data: dict
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=utcnow)

    def envelope(self, source: str, request_id: str | None = None) -> dict:
        envelope = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": source,
            "type": self.type,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "data": self.data,
        }
        if request_id:
            envelope["requestid"] = request_id  # a CloudEvents extension attribute
        return envelope


REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "data")


class EnvelopeInvalid(ValueError):
    """A message on the bus is not a CloudEvents envelope we can handle."""


def parse_envelope(body) -> dict:
    """Check a received body is a CloudEvents 1.0 envelope; raises EnvelopeInvalid."""
    if not isinstance(body, dict):
        raise EnvelopeInvalid("body is not a JSON object")
    missing = [name for name in REQUIRED_ATTRIBUTES if name not in body]
    if missing:
        raise EnvelopeInvalid(f"missing {', '.join(missing)}")
    if body["specversion"] != SPEC_VERSION:
        raise EnvelopeInvalid(f"specversion {body['specversion']!r}")
    if not isinstance(body["id"], str) or not body["id"] or len(body["id"]) > 200:
        raise EnvelopeInvalid("bad id")
    if not isinstance(body["type"], str) or not body["type"]:
        raise EnvelopeInvalid("bad type")
    if not isinstance(body["data"], dict):
        raise EnvelopeInvalid("data is not an object")
    return body
