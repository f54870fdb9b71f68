"""Turning an event into a mail: which template, which recipient, the rendered message."""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from services.notifier.subscriptions import TEMPLATES
from shared import addresses, names
from shared.database import utcnow


class MessageRejected(ValueError):
    """The event cannot become a mail (unknown type, bad recipient, missing data): never retry it."""


@dataclass(frozen=True)
class Mail:
    event_id: str
    template: str
    message: EmailMessage
    links: list[str]


class Renderer:
    def __init__(self, mail_from: str):
        self.mail_from = mail_from
        self.env = Environment(loader=PackageLoader("services.notifier", "templates"),
                               autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
        self.text_env = Environment(loader=PackageLoader("services.notifier", "templates"), autoescape=False,
                                    undefined=StrictUndefined)
        for env in (self.env, self.text_env):
            env.filters["unlinked"] = names.unlinked  # names people chose: never a link in the mail

    def render(self, envelope: dict) -> Mail:
        event_type = envelope["type"]
        if event_type not in TEMPLATES:
            raise MessageRejected(f"no mail for event type {event_type!r}")
        template, extra = TEMPLATES[event_type]
        data = envelope["data"]
        # The APIs' own address policy, again: it guards the SMTP envelope against header injection and
        # addresses no plain SMTP server takes, whatever a producer puts on the bus. An internationalised
        # domain is mailed in its ASCII form.
        try:
            recipient = addresses.normalise(data.get("email"))
        except addresses.AddressRejected:
            raise MessageRejected("the recipient address is missing or not acceptable") from None
        context = {key: value for key, value in data.items() if isinstance(value, (str, int, float, bool))}
        context.update(extra)
        try:
            subject = self.text_env.get_template(f"email/{template}/subject.txt").render(context).strip()
            text = self.text_env.get_template(f"email/{template}/body.txt").render(context)
            html = self.env.get_template(f"email/{template}/body.html").render(context)
        except Exception as exc:  # missing fields in the event: StrictUndefined raises
            raise MessageRejected(f"cannot render {template}: {type(exc).__name__}") from None
        message = EmailMessage()
        message["Subject"] = " ".join(subject.split())
        message["From"] = self.mail_from
        try:
            to = Address(addr_spec=recipient)
        except Exception:  # the email package raises several error types; the policy should leave none
            raise MessageRejected("the recipient address is not acceptable") from None
        if to.addr_spec != recipient:  # a comment or quoting was folded away: not the address asked for
            raise MessageRejected("the recipient address is not acceptable")
        message["To"] = to
        message["Date"] = format_datetime(utcnow())
        # The event id is the Message-ID: a redelivered event yields the very same message.
        message["Message-ID"] = f"<{envelope['id']}@threshold>" if re.fullmatch(r"[A-Za-z0-9._-]+", envelope["id"]) \
            else make_msgid(domain="threshold")
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        links = [value for key, value in data.items() if key.endswith("_url") and isinstance(value, str)]
        return Mail(envelope["id"], template, message, links)
