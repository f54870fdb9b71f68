"""Where mail goes: an SMTP server (smtp://, smtps://, smtp+starttls://) or, by default, .eml files."""
from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger("threshold.notifier.mail")


class TransientSendError(Exception):
    """The server could not take the mail now (4xx, connection trouble): try again later."""


class PermanentSendError(Exception):
    """The server refused the mail for good (5xx): do not retry."""


class FileSender:
    """The embedded default: each mail becomes `<dir>/<event id>.eml`, and its links are logged."""

    def __init__(self, directory: Path):
        self.directory = directory

    def send(self, message: EmailMessage, name: str, links: list[str]) -> None:
        target = self.directory / f"{name}.eml"
        partial = target.with_suffix(".eml.partial")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(bytes(message))
            partial.replace(target)
        except OSError as exc:  # a full or read-only disk: like an SMTP server away, try again later
            raise TransientSendError(f"{type(exc).__name__}: {exc.strerror}") from None
        # Development only (no SMTP server configured): the links are how a developer follows the flow.
        log.info("mail written to %s for %s; links: %s", target, message["To"], " ".join(links))


class SmtpSender:
    def __init__(self, url: str, timeout: int):
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        # Loading the CA store costs ~20 ms: once per sender, and only when TLS is used at all.
        self.tls_context = ssl.create_default_context() if self.scheme in ("smtps", "smtp+starttls") else None

    def _connect(self) -> smtplib.SMTP:
        context = self.tls_context
        client: smtplib.SMTP
        if self.scheme == "smtps":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.scheme == "smtp+starttls":
                client.starttls(context=context)
        if self.username:
            client.login(self.username, self.password or "")
        return client

    def send(self, message: EmailMessage, name: str, links: list[str]) -> None:
        try:
            with self._connect() as client:
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(500 <= c < 600 for c in codes)
            raise (PermanentSendError if permanent else TransientSendError)(str(codes)) from None
        except smtplib.SMTPResponseException as exc:
            error = PermanentSendError if 500 <= exc.smtp_code < 600 else TransientSendError
            raise error(f"SMTP {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"{type(exc).__name__}: {exc}") from None
        log.info("mail %s accepted by %s:%s", message["Message-ID"], self.host, self.port)


def make_sender(smtp_url: str | None, mail_dir: Path, timeout: int):
    return SmtpSender(smtp_url, timeout) if smtp_url else FileSender(mail_dir)
