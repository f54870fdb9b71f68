"""Password hashing (argon2id at OWASP's parameters) and the password policy."""
from __future__ import annotations

import gzip
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import DomainError

MAX_LENGTH = 128

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)


class PasswordRejected(DomainError):
    code = "validation_failed"
    message = "The password does not meet the policy."

    def __init__(self, detail: str, field: str = "password"):
        super().__init__(detail)
        self.field = field


def normalise(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: normalise Unicode so the same password typed on two keyboards matches.
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    return HASHER.hash(normalise(password))


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown account) spend the same time on a dummy hash."""
    try:
        return HASHER.verify(password_hash or dummy_hash(), normalise(password)) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    return HASHER.hash("timing-equaliser-not-a-real-password")


@cache
def common_passwords() -> bytes:
    """The bundled list, a word a line between newlines: 160 KB, where a set of its 19,640 strings would
    cost every worker 1.8 MB."""
    data = resources.files("services.identity").joinpath("data/common-passwords.txt.gz").read_bytes()
    return ("\n" + "\n".join(gzip.decompress(data).decode().split()) + "\n").encode()


def comparison_key(text: str) -> str:
    """How a password is compared with the common list and the email: NFKC, case-folded, with no
    whitespace or invisible format characters anywhere, so `Password `, `pass word` and `pass\u200bword`
    all meet `password`. Only for comparing: the password hashed is the one typed (NFKC, nothing removed)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return "".join(char for char in folded if not (char.isspace() or unicodedata.category(char) == "Cf"))


def is_common(key: str) -> bool:
    # The key holds no whitespace, so it cannot span two lines of the list.
    return bool(key) and f"\n{key}\n".encode("utf-8", "surrogatepass") in common_passwords()


def check_policy(password: str, email: str, min_length: int, field: str = "password") -> None:
    """Raise PasswordRejected unless the password is acceptable. Never truncates."""
    length = len(normalise(password))
    if length < min_length:
        raise PasswordRejected(f"Use at least {min_length} characters.", field)
    if length > MAX_LENGTH:
        raise PasswordRejected(f"Use at most {MAX_LENGTH} characters.", field)
    key = comparison_key(password)
    if is_common(key):
        raise PasswordRejected("This password is too common; choose another.", field)
    if key == comparison_key(email):
        raise PasswordRejected("The password must not be your email address.", field)
