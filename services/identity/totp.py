"""TOTP (RFC 6238) secrets and codes, recovery codes, and the encryption of secrets at rest."""
from __future__ import annotations

import hmac
import io
import secrets
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared import opaque_tokens

STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are typed from paper


def new_secret() -> str:
    """160 random bits, base32 (what authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account_email: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account_email,
                                                                                     issuer_name=issuer)


def qr_svg(uri: str) -> str:
    # Imported on first enrolment, not by every worker at start (it brings an XML library along).
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (now, or one step either side) whose code equals `code`, else None."""
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def looks_like_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isdigit()


def new_recovery_codes() -> list[str]:
    """Ten codes like `k7qm-x2ne-r9tw` (60 bits each)."""
    def one() -> str:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(12))
        return "-".join(raw[i:i + 4] for i in range(0, 12, 4))

    return [one() for _ in range(RECOVERY_CODE_COUNT)]


def recovery_code_hash(code: str) -> str:
    return opaque_tokens.digest(code.strip().lower().replace(" ", ""))


class SecretUnreadable(RuntimeError):
    """A stored TOTP secret was encrypted with a key that is not in TOTP_ENCRYPTION_KEYS."""


class SecretBox:
    """Encrypts TOTP secrets with the configured keys: the first encrypts, all decrypt."""

    def __init__(self, keys: tuple[str, ...]):
        self.fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, secret: str) -> str:
        return self.fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS") from None

    def rotate(self, token: str) -> str:
        try:
            return self.fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS") from None
