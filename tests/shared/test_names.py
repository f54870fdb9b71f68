"""The one name rule (shared/names.py) that identity's first and last names and tenancy's organization and
workspace names go through, and the notifier's fallback for names from before it."""
from __future__ import annotations

import pytest

from shared.names import NameRejected, check_name, reads_as_link, unlinked


@pytest.mark.parametrize("name", [
    "Ada", "Lovelace", "Ada Lovelace", "O'Brien", "Jean-Luc", "J.R.R. Tolkien", "Acme Inc.", "Team 2.0",
    "Research & Co", "Zoë", "李", "محمد", "Analytical Engines (London)", "Mr. Smith", "Sales/Marketing", "R&D: 2026",
    "x" * 100, "Ada\u200dLovelace",
])
def test_ordinary_names_pass(name):
    check_name(name)


@pytest.mark.parametrize("name", ["Ada\nBcc: x@y.z", "Ada\r", "Love\x00lace", "A\x1bB", "A\x85B", "A\u2028B",
                                  "A\u202eB", "A\u2066B"])
def test_control_characters_line_breaks_and_bidi_overrides_are_refused(name):
    with pytest.raises(NameRejected, match="control characters"):
        check_name(name)


@pytest.mark.parametrize("name", ["", " ", "   ", "\u00a0\u00a0", "\u3000", "\u200b", " \u200b "])
def test_blank_names_are_refused(name):
    with pytest.raises(NameRejected, match="blank"):
        check_name(name)


@pytest.mark.parametrize("name", [
    "http://evil.example", "Visit https://x", "HTTPS://X", "ftp://files", "file:/etc", "www.evil", "WWW.Evil",
    "evil.com", "Acme (acme.io)", "ada@evil.co", "sub.domain.example.org", "Claim at evil.com/prize", "пример.рф",
    "ｅｖｉｌ．ｃｏｍ", "evil。com", "St.John",
])
def test_anything_that_reads_as_a_link_is_refused(name):
    assert reads_as_link(name)
    with pytest.raises(NameRejected, match="web address"):
        check_name(name)


def test_the_refusal_is_a_whole_sentence():
    with pytest.raises(NameRejected) as refused:
        check_name("evil.com")

    assert refused.value.message.endswith(".") and refused.value.message[0].isupper()


@pytest.mark.parametrize("name, shown", [
    ("evil.com", "evil[.]com"),
    ("Visit https://evil.example/now", "Visit https[:]//evil[.]example/now"),
    ("www.evil", "www[.]evil"),
    ("ada@evil.co", "ada[@]evil[.]co"),
    ("ｅｖｉｌ．ｃｏｍ", "evil[.]com"),
    ("Acme Inc.", "Acme Inc."),  # not a link: shown as it is
])
def test_unlinked_brackets_what_makes_a_link(name, shown):
    assert unlinked(name) == shown
    assert not reads_as_link(unlinked(name))
