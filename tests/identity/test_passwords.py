"""Password storage (argon2id at OWASP's parameters, rehash on sign-in) and the password policy."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import create_engine, select, update

from services.identity.models import Account
from tests.conftest import AuthActions, assert_problem

OWASP_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$"


@pytest.fixture
def identity_engine(identity_db):
    """The identity database itself, to read and plant what the API never shows: password hashes."""
    engine = create_engine(identity_db)
    yield engine
    engine.dispose()


def stored_hash(engine, email: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Account.password_hash).where(Account.email == email)).scalar_one()


def store_hash(engine, email: str, password_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(Account).where(Account.email == email).values(password_hash=password_hash))


def sign_up(client, password: str, email: str = "ada@example.com"):
    return client.post("/v1/accounts", json={"email": email, "password": password, "first_name": "Ada",
                                             "last_name": "Lovelace"})


def assert_refused(response) -> None:
    body = assert_problem(response, 422, "validation_failed")
    assert list(body["errors"]) == ["password"]


# Storage


def test_passwords_are_stored_as_argon2id_at_owasp_parameters(auth, identity_engine):
    auth.sign_up("ada@example.com")

    password_hash = stored_hash(identity_engine, "ada@example.com")
    assert password_hash.startswith(OWASP_PREFIX)
    assert AuthActions.PASSWORD not in password_hash


def test_the_same_password_gives_two_users_different_hashes(auth, identity_engine):
    auth.sign_up("ada@example.com")
    auth.sign_up("grace@example.com")

    assert stored_hash(identity_engine, "ada@example.com") != stored_hash(identity_engine, "grace@example.com")


@pytest.mark.parametrize("old_hasher", [
    PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, type=Type.ID),  # argon2-cffi's default
    PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID),
    PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.I),
])
def test_sign_in_rehashes_a_hash_made_with_other_parameters(auth, identity_engine, old_hasher):
    auth.sign_up("ada@example.com")
    auth.verify("ada@example.com")
    store_hash(identity_engine, "ada@example.com", old_hasher.hash(AuthActions.PASSWORD))

    assert auth.sign_in("ada@example.com").status_code == 200

    rehashed = stored_hash(identity_engine, "ada@example.com")
    assert rehashed.startswith(OWASP_PREFIX)
    assert auth.sign_in("ada@example.com").status_code == 200


def test_a_failed_sign_in_leaves_an_old_hash_alone(auth, identity_engine):
    auth.sign_up("ada@example.com")
    auth.verify("ada@example.com")
    old_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(AuthActions.PASSWORD)
    store_hash(identity_engine, "ada@example.com", old_hash)

    assert auth.sign_in("ada@example.com", "not the password").status_code == 401

    assert stored_hash(identity_engine, "ada@example.com") == old_hash


# Policy


def test_the_default_minimum_is_six_characters(client):
    assert_refused(sign_up(client, "kq7#z"))
    assert sign_up(client, "kq7#zp").status_code == 201


def test_the_minimum_length_is_configurable(make_identity_app):
    client = make_identity_app(PASSWORD_MIN_LENGTH=10).test_client()

    assert_refused(sign_up(client, "kq7#zpw4m"))
    assert sign_up(client, "kq7#zpw4mx").status_code == 201


@pytest.mark.parametrize("common", ["password", "123456", "qwerty123", "PassWord", "iloveyou"])
def test_common_passwords_are_refused(client, common):
    assert_refused(sign_up(client, common))


def test_the_first_and_last_words_of_the_list_are_refused(client):
    assert_refused(sign_up(client, "123456"))  # the list's first line
    assert_refused(sign_up(client, "fallen_angel"))  # and its last


# "123456" and "password" are the list's first two lines: no newline or space joins them into a match.
@pytest.mark.parametrize("password", ["123456\npassword", "123456 password", "xpassword", "passwordx"])
def test_common_words_inside_a_longer_password_do_not_make_it_common(client, password):
    assert sign_up(client, password).status_code == 201


def test_common_passwords_are_refused_whatever_the_minimum(make_identity_app):
    client = make_identity_app(PASSWORD_MIN_LENGTH=1).test_client()

    assert_refused(sign_up(client, "123456"))


@pytest.mark.parametrize("common", [
    "password ", " password", "password\t", "pass word", "p a s s w o r d", "PASS  WORD", "iloveyou\u00a0",
    "\u3000qwerty123", "pass\u200bword", "pass\u00adword", "\uff50\uff41\uff53\uff53 word",
])
def test_whitespace_or_invisible_characters_do_not_hide_a_common_password(client, common):
    assert_refused(sign_up(client, common))


def test_a_password_with_spaces_is_hashed_as_typed(auth):
    password = " kq7# zpw4mx "
    auth.verified_account("ada@example.com", password)

    assert auth.sign_in("ada@example.com", "kq7#zpw4mx").status_code == 401
    assert auth.sign_in("ada@example.com", "kq7# zpw4mx").status_code == 401
    assert auth.sign_in("ada@example.com", password).status_code == 200


@pytest.mark.parametrize("password", ["ada@example.com", "ADA@Example.com", " ada@example.com ",
                                      "ada @example.com"])
def test_the_email_address_is_refused_as_password(client, password):
    assert_refused(sign_up(client, password, email="ada@example.com"))


def test_128_characters_are_accepted_and_sign_in(auth):
    password = "Long-passphrase-" * 8
    assert len(password) == 128

    auth.verified_account("ada@example.com", password)


def test_more_than_128_characters_are_refused(client):
    assert_refused(sign_up(client, "Long-passphrase-" * 8 + "x"))


def test_a_very_long_password_is_a_validation_error_not_a_crash(client):
    response = sign_up(client, "x" * 5000)

    assert_problem(response, 422, "validation_failed")


def test_passwords_are_never_truncated(auth):
    password = "a" * 99 + "b" + "c" * 28
    auth.verified_account("ada@example.com", password)

    differs_at_100 = "a" * 99 + "X" + "c" * 28
    assert auth.sign_in("ada@example.com", differs_at_100).status_code == 401
    assert auth.sign_in("ada@example.com", password[:72]).status_code == 401
    assert auth.sign_in("ada@example.com", password).status_code == 200


def test_any_unicode_password_works(auth):
    auth.verified_account("ada@example.com", "пароль-😀-ü")

    assert auth.sign_in("ada@example.com", "пароль-😀-u").status_code == 401
    assert auth.sign_in("ada@example.com", "пароль-😀-ü").status_code == 200


@pytest.mark.parametrize("signed_up_with, signs_in_with", [
    ("пароль-😀-\u00fc", "пароль-😀-u\u0308"),  # composed and decomposed ü
    ("\uff50\uff41\uff53\uff53-\u2460\u2461\u2462-x", "pass-123-x"),  # full-width letters, circled digits
])
def test_nfkc_equivalent_passwords_match(auth, signed_up_with, signs_in_with):
    auth.verified_account("ada@example.com", signed_up_with)

    assert auth.sign_in("ada@example.com", signs_in_with).status_code == 200


def test_length_counts_characters_not_bytes(client):
    six_emoji = "😀🙂🙃😉😊😇"  # 24 bytes in UTF-8, 6 characters

    assert sign_up(client, six_emoji).status_code == 201
    assert_refused(sign_up(client, "😀" * 129, email="grace@example.com"))
