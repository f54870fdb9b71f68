"""The benchmark package: its pieces, and `python -m bench --short` end to end (no timed assertions)."""
from __future__ import annotations

import os
import re
import smtplib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from bench import ab, event_path, floor, load, servers
from bench.bare_app import create_app
from bench.identity import basic
from shared.database import make_engine
from shared.opaque_tokens import digest
from support import ROOT
from support.smtp import SmtpSink


def test_bare_endpoint_answers_small_json():
    response = create_app().test_client().get("/v1/ping")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "service": "bare"}


def test_the_refresh_floor_rotates_each_live_token_once(empty_identity_database, monkeypatch):
    monkeypatch.setenv(floor.URL_VARIABLE, empty_identity_database)
    first, other, revoked, expired = floor.seed(empty_identity_database, 4)
    engine = make_engine(empty_identity_database)
    with engine.begin() as connection:
        tokens, sessions = floor.tokens, floor.sessions
        session_of = select(tokens.c.session_id).where(tokens.c.token_hash == digest(revoked))
        connection.execute(update(sessions).where(sessions.c.id == session_of.scalar_subquery())
                           .values(revoked_at=datetime.now(UTC)))
        connection.execute(update(tokens).where(tokens.c.token_hash == digest(expired))
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    app = floor.create_app()
    client = app.test_client()

    rotated = client.post("/v1/rotate", json={"refresh_token": first})
    again = client.post("/v1/rotate", json={"refresh_token": rotated.json["refresh_token"]})
    reused = client.post("/v1/rotate", json={"refresh_token": first})
    unknown = client.post("/v1/rotate", json={"refresh_token": "not-a-token"})
    others = client.post("/v1/rotate", json={"refresh_token": other})
    refused = [client.post("/v1/rotate", json={"refresh_token": token}).status_code for token in (revoked, expired)]
    app.extensions[floor.EXTENSION].engine.dispose()

    assert rotated.status_code == again.status_code == others.status_code == 200
    assert set(rotated.json) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert rotated.json["access_token"].count(".") == 2
    assert reused.status_code == unknown.status_code == 401
    assert refused == [401, 401]


@pytest.fixture
def floor_app(empty_identity_database, monkeypatch):
    monkeypatch.setenv(floor.URL_VARIABLE, empty_identity_database)
    floor.seed(empty_identity_database, 1)
    app = floor.create_app()
    yield app
    app.extensions[floor.EXTENSION].engine.dispose()


def test_the_client_credentials_floor_signs_for_the_right_secret_only(floor_app):
    client = floor_app.test_client()
    form = {"grant_type": "client_credentials"}

    issued = client.post("/v1/client-token", data=form, headers=basic(floor.SERVICE, floor.SERVICE_SECRET))
    wrong = client.post("/v1/client-token", data=form, headers=basic(floor.SERVICE, "not-the-secret"))
    unknown = client.post("/v1/client-token", data=form, headers=basic("nobody", floor.SERVICE_SECRET))
    bare = client.post("/v1/client-token", data=form)
    too_wide = client.post("/v1/client-token", data={**form, "scope": "accounts:write"},
                           headers=basic(floor.SERVICE, floor.SERVICE_SECRET))

    assert issued.status_code == 200
    assert issued.json["token_type"] == "Bearer" and issued.json["scope"] == floor.SERVICE_SCOPES
    assert issued.json["access_token"].count(".") == 2
    assert wrong.status_code == unknown.status_code == bare.status_code == 401
    assert too_wide.status_code == 400


def test_the_sign_in_floor_signs_for_the_right_password_only(empty_identity_database, monkeypatch):
    monkeypatch.setenv(floor.URL_VARIABLE, empty_identity_database)
    floor.seed(empty_identity_database, 2, "floor-Correct-Horse-42")
    app = floor.create_app()
    client = app.test_client()

    signed_in = client.post("/v1/sign-in", json={"email": floor.email(1), "password": "floor-Correct-Horse-42"})
    wrong = client.post("/v1/sign-in", json={"email": floor.email(1), "password": "floor-Wrong-Horse-42"})
    unknown = client.post("/v1/sign-in", json={"email": "nobody@example.com", "password": "floor-Correct-Horse-42"})
    app.extensions[floor.EXTENSION].engine.dispose()

    assert signed_in.status_code == 200
    assert signed_in.json["token_type"] == "Bearer" and signed_in.json["access_token"].count(".") == 2
    assert wrong.status_code == unknown.status_code == 401


def test_the_code_exchange_floor_spends_each_code_once(floor_app, empty_identity_database):
    minter = floor.CodeMinter(empty_identity_database)
    try:
        (code, verifier), (other, _), (third, third_verifier) = minter(3)
    finally:
        minter.close()
    client = floor_app.test_client()
    rp = basic(floor.RP, floor.RP_SECRET)

    def exchange(code, verifier, headers=rp, redirect_uri=floor.REDIRECT_URI):
        return client.post("/v1/exchange", headers=headers, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})

    wrong_secret = exchange(code, verifier, headers=basic(floor.RP, "not-the-secret"))
    exchanged = exchange(code, verifier)
    replayed = exchange(code, verifier)
    wrong_verifier = exchange(other, verifier)
    wrong_redirect = exchange(third, third_verifier, redirect_uri="http://127.0.0.1:9/elsewhere")

    assert wrong_secret.status_code == 401
    assert exchanged.status_code == 200
    assert set(exchanged.json) == {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
    assert exchanged.json["id_token"].count(".") == 2 and exchanged.json["scope"] == floor.SCOPE
    assert replayed.status_code == wrong_verifier.status_code == wrong_redirect.status_code == 400


def test_load_driver_counts_answers_over_http(live_server):
    server = live_server(create_app())
    port = int(server.url.rsplit(":", 1)[1])

    result = load.run(port, lambda _index: lambda client: client.call("GET", "/v1/ping")[0] == 200, clients=2,
                      duration=0.5, warmup=0.1)

    assert result.errors == 0
    assert result.requests == len(result.latencies) > 0


def test_load_driver_counts_unexpected_answers_as_errors(live_server):
    server = live_server(create_app())
    port = int(server.url.rsplit(":", 1)[1])

    result = load.run(port, lambda _index: lambda client: client.call("GET", "/v1/missing")[0] == 200, clients=1,
                      duration=0.3, warmup=0.0)

    assert result.requests == 0
    assert result.errors > 0


def test_event_path_drive_sends_every_request_at_or_after_its_moment(live_server):
    server = live_server(create_app())
    port = int(server.url.rsplit(":", 1)[1])
    addresses = [f"drive-{n}@example.com" for n in range(5)]

    result = event_path.drive(port, addresses, rate=50.0, clients=2)

    assert [send.address for send in result.sends] == addresses
    assert all(send.sent >= send.scheduled for send in result.sends)  # never early: open loop, paced
    assert all(send.answered >= send.sent for send in result.sends)
    assert {send.status for send in result.sends} == {404}  # the bare app has no sign-up: an error each
    assert all(send.error.startswith("404") for send in result.sends)


def _mail(to: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "bench@example.com"
    message["To"] = ", ".join(to)
    message["Subject"] = "hello"
    message.set_content("hello")
    return message


def test_smtp_sink_notes_each_arrival_per_recipient():
    with SmtpSink(keep_mail=False) as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            client.send_message(_mail(["Ada@example.com", "bob@example.com"]))
            client.send_message(_mail(["ada@example.com"]))

        assert sink.wait_for_arrivals(["ada@example.com", "bob@example.com"], timeout=10) == set()
        assert sink.wait_for_arrivals(["nobody@example.com"], timeout=0) == {"nobody@example.com"}
        assert len(sink.arrivals("ADA@example.com")) == 2  # a duplicate shows as a second arrival
        assert len(sink.arrivals("bob@example.com")) == 1
        assert sink.accepted == 2
        assert sink.mails == []  # keep_mail=False: only the arrivals
        assert sink.first_arrival() == min(sink.arrivals("ada@example.com"))


def test_the_queued_verification_events_become_mail():
    from services.notifier.messages import Renderer
    from shared.events import parse_envelope

    event = event_path.verification_event("queued@example.com", "2030-01-01T00:00:00+00:00")

    mail = Renderer("Threshold <no-reply@example.com>").render(parse_envelope(event.envelope("/bench")))

    assert mail.template == "verification"
    assert mail.message["To"] == "queued@example.com"


def _latency(mailed: list[float], rate: float = 20.0, sent_rate: float = 20.0, sent: int | None = None):
    samples = [event_path.Sample(answered=0.05, published=0.1, mailed=value, late=0.0) for value in mailed]
    return event_path.Latency(backend="PostgreSQL", rate=rate, seconds=10.0, clients=16,
                              sent=len(samples) if sent is None else sent, sent_rate=sent_rate, first_error="",
                              samples=samples, duplicates=0, cpu={"identity (gunicorn)": 0.5},
                              waiting={"identity (gunicorn)": 0.1}, window=10.5)


def test_event_path_target_needs_every_mail_the_rate_and_a_p99_under_a_second():
    assert _latency([0.2] * 99 + [0.9]).met
    assert not _latency([0.2] * 98 + [1.5, 1.5]).met  # p99 over 1 s
    assert not _latency([0.2] * 100, sent_rate=15.0).met  # the load was not offered
    missing = _latency([0.2] * 100)
    missing.samples[3] = event_path.Sample(answered=0.05, published=0.1, mailed=None, late=0.0)
    assert missing.missing == 1 and not missing.met
    assert not _latency([0.2] * 100, sent=101).met  # a sign-up was not answered 201


def test_event_path_percentiles_and_stages():
    latency = _latency([0.3, 0.4, 0.5])

    assert event_path.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert event_path.percentile([], 0.99) == 0.0
    assert latency.stage("mailed", "published") == [0.3 - 0.1, 0.4 - 0.1, 0.5 - 0.1]
    assert latency.stage("answered", "sent") == [0.05] * 3


def test_the_server_tree_cpu_counts_children_reaped_while_it_ran(tmp_path):
    """A worker that burnt CPU and was reaped (gunicorn's max_requests recycling) still counts, through the
    parent's cutime; one alive counts through its own utime."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    burnt = tmp_path / "burnt"  # the live child says when its burn is over (a busy machine may take long)
    parent = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time
subprocess.run([sys.executable, "-c", {burn!r}])
child = subprocess.Popen([sys.executable, "-c", {burn!r} + "open({str(burnt)!r}, 'w').close()\\ntime.sleep(30)"])
time.sleep(30)
"""])
    try:
        deadline = time.monotonic() + 30
        while not burnt.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        assert len(servers.descendants(parent.pid)) == 2
        assert servers.tree_cpu_seconds(parent.pid) >= 0.55  # both burns, the reaped one and the live one
    finally:
        for pid in reversed(servers.descendants(parent.pid)):
            os.kill(pid, 9)
        parent.wait()


def test_ratios_are_read_per_round_and_their_median_judged():
    def side(name):
        return ab.Side(name, name, lambda *_: None)

    comparison = ab.Comparison("read", "SQLite", [side("A"), side("B")], [ab.Ratio("A", "B", 1.0)])
    comparison.windows = {"A": [ab.Window(100, 0, 1.0, 1.0), ab.Window(300, 0, 1.0, 1.0), ab.Window(90, 0, 1.0, 0.5)],
                          "B": [ab.Window(200, 0, 1.0, 1.0), ab.Window(100, 0, 1.0, 1.0), ab.Window(100, 0, 1.0, 1.0)]}

    assert comparison.per_round(comparison.ratios[0]) == [0.5, 3.0, 1.8]  # never best A over best B
    assert comparison.median(comparison.ratios[0]) == 1.8


NUMBER = r"-?[0-9][0-9,]*(?:\.[0-9]+)?"


@pytest.mark.slow
@pytest.mark.live
def test_the_short_run_measures_every_row(tmp_path):
    """`python -m bench --short` end to end: every comparison's row is in the page (or its peer is said to
    be unavailable), and every figure is a number. Nothing about how fast anything was."""
    page = tmp_path / "performance.md"
    run = subprocess.run([sys.executable, "-m", "bench", "--short", "--output", str(page)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = page.read_text()
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 7 and cells[3] and re.fullmatch(rf"(?:{NUMBER} ?)+", cells[3]):
            rows[(cells[0], cells[1].split(":")[0], cells[2].split(":")[0])] = cells
    backends = ["SQLite"] + (["PostgreSQL"] if "PostgreSQL did not answer" not in text else [])
    expected = {("sign-in", "fastapi-users"), ("sign-in", "argon2id verify"), ("read", "fastapi-users"),
                ("refresh with rotation", "oidc-provider"), ("refresh with rotation", "refresh floor"),
                ("client credentials", "oidc-provider"), ("OP code exchange", "oidc-provider"),
                ("client credentials", "client credentials floor"), ("OP code exchange", "code exchange floor"),
                ("sign-in", "sign-in floor")}
    for backend in backends:
        for operation, against in expected:
            if f"{against} peer unavailable" in text:
                continue
            row = rows.get((f"{backend}: {operation}", "Threshold sync", against))
            assert row is not None, f"no row for {backend} {operation} against {against}:\n{text[:6000]}"
            assert re.fullmatch(rf"\*\*{NUMBER}\*\*", row[4]) and row[6] in ("yes", "**no**")
        for operation, floor_name, against in (("sign-in", "sign-in floor", "argon2id verify"),
                                               ("sign-in", "sign-in floor", "fastapi-users"),
                                               ("refresh with rotation", "refresh floor", "oidc-provider"),
                                               ("client credentials", "client credentials floor", "oidc-provider"),
                                               ("OP code exchange", "code exchange floor", "oidc-provider")):
            if f"{against} peer unavailable" in text:
                continue
            found = re.search(rf"^\| {backend}: {operation} \| {floor_name}: .* \| {against}: .* \| "
                              rf"\*\*{NUMBER}\*\* \|$", text, re.MULTILINE)
            assert found, f"no floor row for {backend} {operation} against {against}"
    if "bench/tenancy.py is not here" not in text:
        for page, against in (("workspace switcher", "tenancy"), ("workspace home page", "web")):
            row = rows.get((f"SQLite: {page}", against, "bare"))
            assert row is not None and re.fullmatch(rf"\*\*{NUMBER}\*\*", row[4]), f"no row for the {page}"
        assert re.search(rf"^\| SQLite: workspace home page \| page floor: .* \| bare: .* \| \*\*{NUMBER}\*\* \|$",
                         text, re.MULTILINE), "no page floor row"
    for line in text.splitlines()[:20]:
        if line.startswith("- ") and "per worker core" in line:
            assert re.search(NUMBER, line), line
    assert re.search(rf"USS per worker on SQLite: {NUMBER} MB", text)
    assert "## Event path" in text
