"""Notifier's configuration, read once from the environment."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from services.notifier import subscriptions
from shared import config


@dataclass(frozen=True)
class Settings(config.ServiceSettings):
    smtp_url: str | None
    smtp_timeout: int
    mail_from: str
    prefetch_count: int
    retry_delays: tuple[float, ...]
    consumer_stale_after: int

    @property
    def heartbeat_interval(self) -> float:
        """How often a consumer refreshes its heartbeat: a few beats fit in the staleness bound."""
        return self.consumer_stale_after / 4

    @property
    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        smtp_url = env.get("SMTP_URL", "").strip() or None
        if smtp_url is not None:
            config.url(env, "SMTP_URL", smtp_url, ("smtp", "smtps", "smtp+starttls"))
        mail_from = config.text(env, "MAIL_FROM", "Threshold <no-reply@threshold.localhost>")
        if "@" not in parseaddr(mail_from)[1] or any(c in mail_from for c in "\r\n"):
            raise config.ConfigError("MAIL_FROM", "must be an address such as 'Threshold <no-reply@example.com>'")
        return cls(
            **config.ServiceSettings.common(env, "notifier"),
            smtp_url=smtp_url,
            smtp_timeout=config.integer(env, "SMTP_TIMEOUT", 10, minimum=1),
            mail_from=mail_from,
            prefetch_count=config.integer(env, "NOTIFIER_PREFETCH", 10, minimum=1, maximum=1000),
            retry_delays=_delays(env),
            consumer_stale_after=config.integer(env, "NOTIFIER_CONSUMER_STALE_AFTER", 60, minimum=2, maximum=3600),
        )


def _delays(env: Mapping[str, str]) -> tuple[float, ...]:
    raw = env.get("NOTIFIER_RETRY_DELAYS", "").strip()
    if not raw:
        return subscriptions.RETRY_DELAYS
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise config.ConfigError("NOTIFIER_RETRY_DELAYS", f"must be seconds separated by commas, got {raw!r}") from None
    if not delays or any(d <= 0 or d > 86400 for d in delays) or len(delays) > 20:
        raise config.ConfigError("NOTIFIER_RETRY_DELAYS", "must be 1 to 20 delays, each over 0 and at most 86400 s")
    return delays
