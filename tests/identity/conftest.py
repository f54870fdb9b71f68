"""Fixtures of the OpenID Provider tests (tests/identity/test_op_*.py): a live identity, a signed-in
person, and the hosted pages' side of the seam (see op_support.py)."""
from __future__ import annotations

import pytest

from tests.identity.op_support import Person, Web, add_rsa_key, start_identity


@pytest.fixture
def identity(identity_db, tmp_path, clock):
    """A live identity on a loopback port, with the test clients of `clients_config` and an RSA key."""
    add_rsa_key(identity_db, tmp_path)
    live = start_identity(identity_db, tmp_path, clock)
    yield live
    live.stop()


@pytest.fixture
def person(identity, outbox):
    return Person(identity, outbox, "ada@example.com")


@pytest.fixture
def web(identity):
    return Web(identity)
