"""Opaque bearer secrets (one-time tokens, refresh tokens, invitation tokens, client secrets).

256 bits from `secrets`; only the SHA-256 digest is stored, so a database leak reveals no usable token.
"""
from __future__ import annotations

import hashlib
import secrets


def generate() -> tuple[str, str]:
    """A new token and the digest to store."""
    token = secrets.token_urlsafe(32)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
