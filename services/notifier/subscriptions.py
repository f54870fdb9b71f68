"""What the notifier subscribes to: each event type it turns into mail, with which template, and the
queues bound to exactly those types.

Its queue, `notifier.mail`, is bound to the keys of `TEMPLATES` (one list: a new mail is a new entry
here and a template folder). The notifier declares these queues when its consumer starts; the outbox
relays of identity and tenancy declare them too before their first publish, so an event published
before the notifier's first start waits in the queue instead of being dropped by the exchange.
docs/events.md lists the payload fields each mail reads.
"""
from __future__ import annotations

from shared import bus

#: event type -> (template folder under templates/email, extra template context); the recipient is `data.email`
TEMPLATES: dict[str, tuple[str, dict]] = {
    "identity.email_verification.requested": ("verification", {}),
    "identity.password_reset.requested": ("password_reset", {}),
    "tenancy.invitation.created": ("invitation", {}),
    "identity.mfa.enabled": ("mfa_notice", {"enabled": True}),
    "identity.mfa.disabled": ("mfa_notice", {"enabled": False}),
}
#: Seconds before each retry of a mail that could not be sent; then the dead letters (NOTIFIER_RETRY_DELAYS).
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0)


def mail_queues(retry_delays: tuple[float, ...] = RETRY_DELAYS, queue_type: str = "classic") -> bus.ConsumerQueues:
    return bus.ConsumerQueues("notifier.mail", tuple(TEMPLATES), tuple(retry_delays), queue_type)
