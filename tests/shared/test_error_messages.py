"""Every domain error's message is its own attribute, written as a whole sentence.

A message taken from the first line of a class docstring shipped cut mid-sentence ("...then link this
provider"); these tests find every `DomainError` subclass in services/ and shared/ and read what a client
would get as the problem's `detail`.
"""
import importlib
import pkgutil

import pytest

import services
import shared
from shared.errors import DomainError


def _all_domain_errors() -> list[type[DomainError]]:
    for package in (shared, services):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if ".migrations." not in module.name and not module.name.endswith(".__main__"):  # Alembic, scripts
                importlib.import_module(module.name)
    found, pending = [], [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith(("shared.", "services."))]


ERRORS = _all_domain_errors()


def test_the_errors_are_found():
    names = {cls.__name__ for cls in ERRORS}
    assert {"DomainError", "RateLimited", "AccountExists", "ProviderEmailNotVerified", "InvalidCursor",
            "TokenRejected", "PasswordRejected", "OidcError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_error_writes_its_own_message_as_a_whole_sentence(cls):
    message = cls.__dict__.get("message")
    assert isinstance(message, str), f"{cls.__name__} inherits its message instead of writing its own"
    assert message[0].isupper(), message
    assert message.endswith((".", "?", "!")), message
    assert "  " not in message and "\n" not in message, message
    doc = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
    assert not (doc.startswith(message) and doc != message), "the message is a cut docstring"


@pytest.mark.parametrize("cls", [cls for cls in ERRORS if "__init__" not in cls.__dict__ or cls is DomainError],
                         ids=lambda cls: cls.__name__)
def test_the_message_is_the_problem_detail(cls):
    error = cls()
    assert error.detail == cls.message == str(error)


def test_a_raise_may_name_a_more_precise_detail():
    detail = "The ID token is not valid: bad signature."
    assert DomainError(detail).detail == detail == str(DomainError(detail))
