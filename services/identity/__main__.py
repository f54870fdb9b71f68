"""`python -m services.identity {migrate,serve,relay,rotate-key,mfa-reset,rotate-totp-key,clients add}`."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

from shared import cli, config, processes
from shared.database import make_engine, make_session_factory
from shared.migrations import upgrade

MIGRATIONS = Path(__file__).parent / "migrations"


def main() -> None:
    commands = cli.Commands("identity", migrate_help="upgrade the schema to head and create the first signing key")
    commands.add("relay", "publish the outbox to the bus")
    rotate = commands.add("rotate-key", "add a signing key (signs after the activation delay)")
    rotate.add_argument("--activate-in", type=int, help="seconds until it signs (default SIGNING_KEY_ACTIVATION_DELAY)")
    rotate.add_argument("--algorithm", choices=("ES256", "RS256"), default="ES256",
                        help="ES256 signs access tokens and ID tokens; RS256 the ID tokens of clients that ask for it")
    relying = commands.add("clients", "OpenID Provider clients (relying parties)")
    relying_commands = relying.add_subparsers(dest="clients_command", required=True)
    add = relying_commands.add_parser("add", help="register a client (or replace one); prints its new secret once")
    add.add_argument("client_id")
    add.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris",
                     help="an exact redirect URI (repeat for several)")
    add.add_argument("--post-logout-redirect-uri", action="append", default=[], dest="post_logout_redirect_uris")
    add.add_argument("--auth-method", default="client_secret_basic", dest="token_endpoint_auth_method",
                     choices=("client_secret_basic", "client_secret_post", "none"),
                     help="none: a public client (browser or native app), which must use PKCE S256")
    add.add_argument("--grant-type", action="append", dest="grant_types",
                     choices=("authorization_code", "refresh_token"), help="default: both")
    add.add_argument("--id-token-alg", default="ES256", choices=("ES256", "RS256"),
                     dest="id_token_signed_response_alg")
    add.add_argument("--name", help="shown on the sign-in page (default: the client id)")
    reset = commands.add("mfa-reset", "support: turn 2FA off for an account that lost its phone")
    reset.add_argument("email")
    reset.add_argument("--actor", required=True, help="who does this, for the audit record (e.g. support:alice)")
    reset.add_argument("--reason", required=True, help="why, for the audit record (e.g. ticket number)")
    commands.add("rotate-totp-key", "re-encrypt TOTP secrets with the first TOTP_ENCRYPTION_KEYS key")
    args, settings = commands.parse()
    commands.run(args, settings, migrate=lambda: migrate(settings), relay=lambda: relay(settings),
                 rotate_key=lambda: _rotate_key(settings, args), mfa_reset=lambda: _mfa_command(settings, args),
                 rotate_totp_key=lambda: _mfa_command(settings, args), clients=lambda: _add_client(settings, args))


def relay(settings, stop: threading.Event | None = None) -> None:
    """Publish the outbox until `stop` is set (SIGINT or SIGTERM by default): a process, or a thread of
    `services.embedded_workers`."""
    from services.identity.models import outbox
    from services.notifier import subscriptions  # the queues its events feed

    processes.run_relay(settings, outbox, (subscriptions.mail_queues(queue_type=settings.bus_queue_type),), stop)


def _rotate_key(settings, args) -> None:
    key = _rotate(settings, settings.key_activation_delay if args.activate_in is None else args.activate_in,
                  args.algorithm)
    print(f"added signing key {key.kid}; it signs from {key.activates_at.isoformat()}")


def migrate(settings) -> None:
    """Schema to head, a first signing key if there is none, and the SERVICE_CLIENTS."""
    upgrade(MIGRATIONS, settings.database_url)
    from services.identity.unit_of_work import IdentityUnitOfWork

    session_factory = make_session_factory(make_engine(settings.database_url))
    with IdentityUnitOfWork(session_factory) as uow:
        algorithms = {key.algorithm for key in uow.signing_keys.all()}
    if "ES256" not in algorithms:
        _rotate(settings, 0)
    if "RS256" not in algorithms and any(client.id_token_signed_response_alg == "RS256"
                                         for client in settings.oidc_clients.values()):
        _rotate(settings, 0, "RS256")
    from services.identity import clients
    from shared.database import utcnow

    for client_id, entry in settings.service_clients.items():
        clients.register(IdentityUnitOfWork(session_factory), client_id=client_id, secret=entry["secret"],
                         scopes=entry.get("scopes", []), now=utcnow())


def _mfa_command(settings, args) -> None:
    from services.identity import mfa
    from services.identity.errors import AccountNotFound, MfaNotEnabled
    from services.identity.totp import SecretBox, SecretUnreadable
    from services.identity.unit_of_work import IdentityUnitOfWork
    from shared.database import utcnow

    uow = IdentityUnitOfWork(make_session_factory(make_engine(settings.database_url)))
    if args.command == "rotate-totp-key":
        try:
            count = mfa.rotate_encryption(uow, box=SecretBox(settings.totp_keys))
        except SecretUnreadable:
            print("threshold: a TOTP secret cannot be decrypted with TOTP_ENCRYPTION_KEYS (list the key it was "
                  "written with after the new one); nothing was re-encrypted", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"re-encrypted {count} TOTP secret(s)")
        return
    try:
        account_id = mfa.admin_reset(uow, email=args.email, actor=args.actor, reason=args.reason, now=utcnow())
    except (AccountNotFound, MfaNotEnabled) as error:
        print(f"threshold: {error.detail}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"2FA turned off for account {account_id}; the owner will be mailed a security notice")


def _rotate(settings, activate_in: int, algorithm: str = "ES256"):
    from services.identity import keys
    from services.identity.unit_of_work import IdentityUnitOfWork

    session_factory = make_session_factory(make_engine(settings.database_url))
    return keys.rotate(IdentityUnitOfWork(session_factory), secret_key=settings.secret_key,
                       activation_delay=activate_in, algorithm=algorithm)


def _add_client(settings, args) -> None:
    """`clients add`: the same shape as an OIDC_CLIENTS entry, into the database; an RS256 key if needed."""
    from services.identity import provider
    from services.identity.unit_of_work import IdentityUnitOfWork
    from shared.database import utcnow

    registration = {"redirect_uris": args.redirect_uris, "post_logout_redirect_uris": args.post_logout_redirect_uris,
                    "token_endpoint_auth_method": args.token_endpoint_auth_method,
                    "grant_types": args.grant_types or ["authorization_code", "refresh_token"],
                    "id_token_signed_response_alg": args.id_token_signed_response_alg,
                    "name": args.name or args.client_id}
    uow = IdentityUnitOfWork(make_session_factory(make_engine(settings.database_url)))
    try:
        secret = provider.add_client(uow, client_id=args.client_id, registration=registration, now=utcnow())
    except config.ConfigError as error:
        print(f"threshold: {error}", file=sys.stderr)
        raise SystemExit(config.EXIT_BAD_CONFIG) from None
    with uow:
        algorithms = {key.algorithm for key in uow.signing_keys.all()}
    if args.id_token_signed_response_alg not in algorithms:
        _rotate(settings, 0, args.id_token_signed_response_alg)
    print(f"registered client {args.client_id}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("(shown once; only its SHA-256 is kept)")


if __name__ == "__main__":
    main()
