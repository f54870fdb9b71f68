"""SMTP over TLS, with STARTTLS, and with credentials: the notifier's sender against a real aiosmtpd
server with a certificate from a CA made here (trusted through SSL_CERT_FILE, as an operator would
trust a private CA), and a server that insists on authentication."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.notifier.senders import PermanentSendError, SmtpSender, TransientSendError
from support.ports import free_port

USER, PASSWORD = "mailer", "p@ss:w/rd"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it; returns (ca file, cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Threshold test CA")).issuer_name(_name("Threshold test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
              .public_key(server_key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return ca_file, cert_file, key_file


class Inbox:
    def __init__(self):
        self.messages: list[bytes] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content or envelope.content)
        return "250 2.0.0 accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def server_tls(certificates) -> ssl.SSLContext:
    _ca, cert_file, key_file = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def start_server(certificates):
    controllers = []

    def start(implicit_tls: bool) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        options = {"authenticator": inbox.authenticate, "auth_required": True}
        if implicit_tls:
            # The whole connection is TLS; aiosmtpd only knows TLS it started itself, so it must not
            # also demand STARTTLS before AUTH here.
            options["auth_require_tls"] = False
            controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_tls(certificates),
                                    **options)
        else:
            controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_tls(certificates),
                                    require_starttls=True, auth_require_tls=True, **options)
        controller.start()
        controllers.append(controller)
        return inbox, port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def trusted_ca(certificates, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates[0]))


def mail() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "t@example.com", "ada@example.com", "hello"
    message.set_content("over TLS")
    return message


@pytest.mark.parametrize("scheme, implicit_tls", [("smtps", True), ("smtp+starttls", False)])
def test_mail_goes_over_tls_with_credentials(start_server, trusted_ca, scheme, implicit_tls):
    inbox, port = start_server(implicit_tls)
    sender = SmtpSender(f"{scheme}://{USER}:p%40ss%3Aw%2Frd@127.0.0.1:{port}", timeout=5)

    sender.send(mail(), "event-1", [])

    assert inbox.logins == [USER]
    assert len(inbox.messages) == 1 and b"over TLS" in inbox.messages[0]


@pytest.mark.parametrize("scheme, implicit_tls", [("smtps", True), ("smtp+starttls", False)])
def test_a_certificate_nobody_vouches_for_is_refused(start_server, scheme, implicit_tls):
    inbox, port = start_server(implicit_tls)  # SSL_CERT_FILE not set: the test CA is unknown
    sender = SmtpSender(f"{scheme}://{USER}:p%40ss%3Aw%2Frd@127.0.0.1:{port}", timeout=5)

    with pytest.raises(TransientSendError):
        sender.send(mail(), "event-2", [])
    assert inbox.messages == []


def test_plain_smtp_does_not_send_to_a_server_that_requires_starttls(start_server):
    inbox, port = start_server(implicit_tls=False)
    sender = SmtpSender(f"smtp://127.0.0.1:{port}", timeout=5)

    with pytest.raises((TransientSendError, PermanentSendError)):
        sender.send(mail(), "event-4", [])
    assert inbox.messages == []
