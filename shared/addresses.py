"""Email addresses: the one policy for what the APIs accept and store and what the notifier mails to.

An address is accepted only if the notifier can deliver it over plain SMTP (no SMTPUTF8): an ASCII
local part of at most 64 characters, unquoted; a domain name (no IP literal), an internationalised one
turned into its ASCII (punycode) form; 254 characters at most. Compatibility look-alikes (full-width
letters, ligatures, the Kelvin sign, decomposed accents: anything NFKC would change) are refused
rather than folded, so two accounts never read the same. The syntax rules are email-validator's; no
DNS is asked.
"""
from __future__ import annotations

import functools
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, fields, validate

MAX_LENGTH = 254
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class AddressRejected(ValueError):
    """The address is one we cannot mail; `message` says why, as a sentence for the person typing it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _refuse_control_characters(address: str) -> None:
    # Checked before trimming: a trailing CRLF is an injection attempt, not a typing slip.
    if CONTROL_CHARACTERS.search(address):
        raise AddressRejected("An email address must not contain control characters or line breaks.")


def normalise(address: str) -> str:
    """The address as stored and mailed to: trimmed, lower-cased, the domain in ASCII.

    Raises AddressRejected for anything the notifier could not send to. Idempotent.
    """
    if not isinstance(address, str):
        raise AddressRejected("An email address must be text.")
    _refuse_control_characters(address)
    address = address.strip()
    if len(address) > MAX_LENGTH:
        raise AddressRejected(f"An email address has at most {MAX_LENGTH} characters.")
    return _validated(address)


@functools.lru_cache(maxsize=1024)
def _validated(address: str) -> str:
    """One request passes an address through the policy several times (its schema, the service, a throttle
    key), at about 100 microseconds each: the answers for recent addresses (254 characters at most, so
    the cache stays small) are remembered. A refusal is an exception, which is never remembered."""
    if unicodedata.normalize("NFKC", address) != address:
        raise AddressRejected("The email address contains look-alike characters (such as full-width "
                              "letters); type it with ordinary letters.")
    try:
        checked = validate_email(address, allow_smtputf8=False, allow_quoted_local=False,
                                 allow_domain_literal=False, allow_display_name=False, allow_empty_local=False,
                                 strict=True, check_deliverability=False, globally_deliverable=True,
                                 test_environment=False)
    except EmailNotValidError as exc:
        raise AddressRejected(str(exc)) from None
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is refused
    return checked.ascii_email.lower()


def lookup_form(address: str) -> str:
    """The form to look an account up by (sign-in, support tools) and to key its throttles on.

    An acceptable address in its normalised form; anything else trimmed and lower-cased as addresses
    were stored before this policy, so an account made then is still found.
    """
    try:
        return normalise(address)
    except AddressRejected:
        return address.strip().lower()


class EmailField(fields.String):
    """A request's email address under this policy, loaded in its normalised form (422 with the reason).

    `lookup=True` is for finding an existing account (sign-in): any address that was acceptable
    before this policy still loads, in `lookup_form`; control characters are refused either way.
    """

    def __init__(self, *, lookup: bool = False, **kwargs):
        checks = [validate.Length(max=MAX_LENGTH)] + ([validate.Email()] if lookup else [])
        super().__init__(validate=checks, metadata={"format": "email"}, **kwargs)
        self.lookup = lookup

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            if self.lookup:
                _refuse_control_characters(value)
                return lookup_form(value)
            return normalise(value)
        except AddressRejected as exc:
            raise ValidationError(exc.message) from None
