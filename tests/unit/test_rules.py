"""The pure rules, without a database or a server: who a workspace opens to, how long a guessed-at key
stays blocked, which signing keys a JWKS publishes. The HTTP tests prove the same rules end to end; these
name each case, and run in `make test-fast` in a fraction of a second."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.identity.keys import LoadedKey, signing_choice, still_published
from services.tenancy.access import effective_workspace_role
from shared.throttle import block_delay


@pytest.mark.parametrize(("in_workspace", "in_organization", "effective"), [
    (None, None, None),  # a stranger
    ("member", None, "member"),
    (None, "member", None),  # an organization member sees only the workspaces they are in
    ("member", "member", "member"),
    (None, "admin", "admin"),  # organization owners and admins open every workspace, with that role
    (None, "owner", "owner"),
    ("member", "admin", "admin"),  # the higher of the two
    ("admin", "owner", "owner"),
    ("owner", "member", "owner"),
    ("admin", None, "admin"),
])
def test_the_workspace_role_is_the_higher_of_the_own_and_the_inherited(in_workspace, in_organization, effective):
    assert effective_workspace_role(in_workspace, in_organization) == effective


POLICY = {"free_failures": 5, "base_delay": 30, "max_delay": 900}


def test_a_key_is_not_blocked_before_the_free_failures():
    assert [block_delay(hits, **POLICY) for hits in range(1, 5)] == [None] * 4


def test_the_block_doubles_from_the_base_delay_and_stops_at_the_cap():
    assert [block_delay(hits, **POLICY) for hits in range(5, 12)] == [30, 60, 120, 240, 480, 900, 900]
    assert block_delay(10_000, **POLICY) == 900  # no runaway arithmetic on a long-lived count


def test_one_free_failure_blocks_from_the_first_wrong_guess():
    assert block_delay(1, free_failures=1, base_delay=2, max_delay=10) == 2


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=16)  # the longest an access token lives, with leeway


def key(kid: str, activates_in: timedelta) -> LoadedKey:
    return LoadedKey(kid=kid, algorithm="ES256", activates_at=NOW + activates_in, public_jwk={"kid": kid},
                     verifying=None, signing=None)  # type: ignore[arg-type]  # the rules read neither


def kids(keys: list[LoadedKey]) -> list[str]:
    return [k.kid for k in keys]


def test_the_newest_active_key_signs_and_a_pending_one_is_published_before_it_signs():
    old, current, pending = key("old", -timedelta(days=30)), key("current", -timedelta(days=1)), key(
        "pending", timedelta(hours=1))
    assert signing_choice([old, current, pending], NOW) is current
    assert kids(still_published([old, current, pending], NOW, GRACE)) == ["current", "pending"]


def test_a_retired_key_stays_published_until_its_last_token_has_expired():
    retired, current = key("retired", -timedelta(days=1)), key("current", -timedelta(minutes=10))
    assert kids(still_published([retired, current], NOW, GRACE)) == ["retired", "current"]
    current = key("current", -GRACE)
    assert kids(still_published([retired, current], NOW, GRACE)) == ["current"]


def test_before_any_key_is_active_the_first_signs():
    first, second = key("first", timedelta(minutes=5)), key("second", timedelta(hours=5))
    assert signing_choice([first, second], NOW) is first
    assert kids(still_published([first, second], NOW, GRACE)) == ["first", "second"]
    assert still_published([], NOW, GRACE) == []
