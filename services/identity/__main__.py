"""`python -m services.identity {migrate,serve,relay,rotate-key}`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared import processes
from shared.database import make_engine, make_session_factory
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.identity")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="upgrade the schema to head and create the first signing key")
    serve = commands.add_parser("serve", help="serve HTTP with gunicorn")
    serve.add_argument("--workers", type=int)
    commands.add_parser("relay", help="publish the outbox to the bus")
    rotate = commands.add_parser("rotate-key", help="add a signing key (signs after the activation delay)")
    rotate.add_argument("--activate-in", type=int, help="seconds until it signs (default SIGNING_KEY_ACTIVATION_DELAY)")
    reset = commands.add_parser("mfa-reset", help="support: turn 2FA off for an account that lost its phone")
    reset.add_argument("email")
    reset.add_argument("--actor", required=True, help="who does this, for the audit record (e.g. support:alice)")
    reset.add_argument("--reason", required=True, help="why, for the audit record (e.g. ticket number)")
    commands.add_parser("rotate-totp-key", help="re-encrypt TOTP secrets with the first TOTP_ENCRYPTION_KEYS key")
    args = parser.parse_args()

    from services.identity.settings import Settings

    settings = processes.load_settings(Settings.from_env)
    if args.command == "migrate":
        migrate(settings)
    elif args.command == "serve":
        processes.serve("services.identity.app:create_app()", settings, args.workers)
    elif args.command == "relay":
        from services.identity.models import outbox

        processes.run_relay(settings, outbox)
    elif args.command == "rotate-key":
        key = _rotate(settings, settings.key_activation_delay if args.activate_in is None else args.activate_in)
        print(f"added signing key {key.kid}; it signs from {key.activates_at.isoformat()}")
    elif args.command in ("mfa-reset", "rotate-totp-key"):
        _mfa_command(settings, args)


def migrate(settings) -> None:
    """Schema to head, a first signing key if there is none, and the SERVICE_CLIENTS."""
    upgrade(MIGRATIONS, settings.database_url)
    from services.identity.unit_of_work import IdentityUnitOfWork

    session_factory = make_session_factory(make_engine(settings.database_url))
    with IdentityUnitOfWork(session_factory) as uow:
        has_key = bool(uow.signing_keys.all())
    if not has_key:
        _rotate(settings, 0)
    from services.identity import clients
    from shared.database import utcnow

    for client_id, entry in settings.service_clients.items():
        clients.register(IdentityUnitOfWork(session_factory), client_id, entry["secret"], entry.get("scopes", []),
                         utcnow())


def _mfa_command(settings, args) -> None:
    from services.identity import mfa
    from services.identity.errors import AccountNotFound, MfaNotEnabled
    from services.identity.totp import SecretBox, SecretUnreadable
    from services.identity.unit_of_work import IdentityUnitOfWork
    from shared.database import utcnow

    uow = IdentityUnitOfWork(make_session_factory(make_engine(settings.database_url)))
    if args.command == "rotate-totp-key":
        try:
            count = mfa.rotate_encryption(uow, SecretBox(settings.totp_keys))
        except SecretUnreadable:
            print("threshold: a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS (list the key it was "
                  "written with after the new one); nothing was re-encrypted", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"re-encrypted {count} TOTP secret(s)")
        return
    try:
        account_id = mfa.admin_reset(uow, args.email, args.actor, args.reason, utcnow())
    except (AccountNotFound, MfaNotEnabled) as error:
        print(f"threshold: {error.detail}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"2FA turned off for account {account_id}; the owner will be mailed a security notice")


def _rotate(settings, activate_in: int):
    from services.identity import keys
    from services.identity.unit_of_work import IdentityUnitOfWork

    session_factory = make_session_factory(make_engine(settings.database_url))
    return keys.rotate(IdentityUnitOfWork(session_factory), settings.secret_key, activate_in)


if __name__ == "__main__":
    main()
