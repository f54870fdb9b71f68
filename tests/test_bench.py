"""The benchmark package's pieces, without measuring anything (no timed assertions)."""
from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select, update

from bench import event_path, load, report, rotation_floor
from bench.bare_app import create_app
from bench.baselines import VerifyRate
from bench.identity import Figures
from bench.servers import Phase
from bench.smtp import Sink
from shared.database import make_engine


def test_bare_endpoint_answers_small_json():
    response = create_app().test_client().get("/v1/ping")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "service": "bare"}


def test_the_refresh_floor_rotates_each_live_token_once(empty_identity_database, monkeypatch):
    monkeypatch.setenv(rotation_floor.URL_VARIABLE, empty_identity_database)
    first, other, revoked, expired = rotation_floor.seed(empty_identity_database, 4)
    engine = make_engine(empty_identity_database)
    with engine.begin() as connection:
        tokens, sessions = rotation_floor.tokens, rotation_floor.sessions
        session_of = select(tokens.c.session_id).where(tokens.c.token_hash == rotation_floor._digest(revoked))
        connection.execute(update(sessions).where(sessions.c.id == session_of.scalar_subquery())
                           .values(revoked_at=datetime.now(UTC)))
        connection.execute(update(tokens).where(tokens.c.token_hash == rotation_floor._digest(expired))
                           .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    app = rotation_floor.create_app()
    client = app.test_client()

    rotated = client.post("/v1/rotate", json={"refresh_token": first})
    again = client.post("/v1/rotate", json={"refresh_token": rotated.json["refresh_token"]})
    reused = client.post("/v1/rotate", json={"refresh_token": first})
    unknown = client.post("/v1/rotate", json={"refresh_token": "not-a-token"})
    others = client.post("/v1/rotate", json={"refresh_token": other})
    refused = [client.post("/v1/rotate", json={"refresh_token": token}).status_code for token in (revoked, expired)]
    app.extensions[rotation_floor.EXTENSION].engine.dispose()

    assert rotated.status_code == again.status_code == others.status_code == 200
    assert set(rotated.json) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert rotated.json["access_token"].count(".") == 2
    assert reused.status_code == unknown.status_code == 401
    assert refused == [401, 401]


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
    with Sink() as sink:
        with smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
            client.send_message(_mail(["Ada@example.com", "bob@example.com"]))
            client.send_message(_mail(["ada@example.com"]))

        assert sink.wait_for(["ada@example.com", "bob@example.com"], timeout=10) == set()
        assert sink.wait_for(["nobody@example.com"], timeout=0) == {"nobody@example.com"}
        assert len(sink.arrivals("ADA@example.com")) == 2  # a duplicate shows as a second arrival
        assert len(sink.arrivals("bob@example.com")) == 1
        assert sink.mails == 2
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
                              samples=samples, duplicates=0, cpu={"identity (gunicorn workers)": 0.5},
                              waiting={"identity (gunicorn workers)": 0.1}, window=10.5)


def _events(latency) -> event_path.Figures:
    throughput = event_path.Throughput(events=400, published_seconds=0.5, arrived=400, duplicates=0, seconds=10.0,
                                       steady_seconds=9.0, consumer_cpu=8.0, consumer_waiting=1.0,
                                       sink_cpu=1.0)
    return event_path.Figures(latency, throughput, "3.12.0", ssl_context_ms=20.0)


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


def test_report_has_an_event_path_section_or_says_why_not():
    host = report.Machine("Test CPU", 2, "3.11.7", "2025-01-01 00:00 UTC", "6.1", 0.5, "gunicorn 1")
    baseline = VerifyRate(calls=50, seconds=1.0, cpu_seconds=1.0)
    bare = _phase(1000, 1.0, rss=30.0)
    settings = {"clients": 4, "warmup": 1.0, "sign_in_seconds": 10.0, "seconds": 6.0, "accounts": 16}

    def document(events):
        return report.document(host, baseline, bare, {}, settings, 60.0, [], events)

    met = document(_events(_latency([0.2] * 99 + [0.9])))
    missed = document(_events(_latency([0.2] * 98 + [1.5, 1.5])))
    skipped = document(event_path.Skipped("RabbitMQ did not answer on 127.0.0.1:5672"))

    assert "## Event path" in met and "**met** in this run" in met
    assert "| p99 sign-up to mail < 1 s at 20 sign-ups/s | 0.90 s with 20.0 sign-ups/s sent" in met
    assert "| mails per second through one notifier | 40.0 (consumer start to last mail) | no target |" in met
    assert "**not met** in this run" in missed
    assert "Not measured in this run: RabbitMQ did not answer on 127.0.0.1:5672." in skipped
    assert "Event path: not measured (RabbitMQ did not answer" in report.event_summary(
        event_path.Skipped("RabbitMQ did not answer on 127.0.0.1:5672"))


def _phase(requests: int, cpu: float, rss: float = 50.0) -> Phase:
    return Phase(load.Result(requests=requests, seconds=1.0, latencies=[0.01] * requests), cpu, rss, 0)


def test_report_judges_ratios_per_worker_cpu_second():
    baseline = VerifyRate(calls=50, seconds=1.0, cpu_seconds=1.0)
    bare = _phase(1000, 1.0, rss=30.0)
    figures = {"SQLite": Figures(_phase(48, 1.0), _phase(400, 0.5), _phase(300, 1.0), boot_rss_mb=60.0,
                                 peak_rss_mb=85.0, rss_mb=84.0, workers=1)}
    host = report.Machine("Test CPU", 2, "3.11.7", "2025-01-01 00:00 UTC", "6.1", 0.5, "gunicorn 1")

    ratios = {ratio.name: ratio for ratio in report.ratios(baseline, bare, figures["SQLite"])}
    text = report.document(host, baseline, bare, figures, {"clients": 4, "warmup": 1.0, "sign_in_seconds": 10.0,
                                                           "seconds": 6.0, "accounts": 16}, 60.0, [])

    assert ratios["sign-in / argon2id verify"].per_cpu == 48 / 50
    assert ratios["sign-in / argon2id verify"].met
    assert ratios["refresh / bare endpoint"].per_cpu == 0.8  # 400 per 0.5 CPU-second against 1000
    assert ratios["refresh / bare endpoint"].wall == 0.4
    assert not ratios["GET /v1/me / bare endpoint"].met
    assert "Test CPU" in text and "2025-01-01" in text
    assert "| SQLite: peak RSS per worker (MB) | 85.0 (2.8x bare) |  | < 80 | **no** |" in text


def test_report_shows_the_informational_floors_without_judging_them():
    baseline = VerifyRate(calls=50, seconds=1.0, cpu_seconds=1.0)
    bare = _phase(1000, 1.0, rss=30.0)
    figures = {"SQLite": Figures(_phase(48, 1.0), _phase(400, 1.0), _phase(600, 1.0), boot_rss_mb=60.0,
                                 peak_rss_mb=95.0, rss_mb=94.0, workers=1)}
    floors = report.Floors(_phase(800, 1.0), {"SQLite": _phase(250, 0.5)}, {"SQLite": 66.0}, 19.0)
    host = report.Machine("Test CPU", 2, "3.11.7", "2025-01-01 00:00 UTC", "6.1", 0.5, "gunicorn 1")

    text = report.document(host, baseline, bare, figures, {"clients": 4, "warmup": 1.0, "sign_in_seconds": 10.0,
                                                           "seconds": 6.0, "accounts": 16}, 60.0, [], None, floors)

    assert "| bare flask-smorest POST, one-field JSON body (the floor under a refresh) | 1.25 ms of worker CPU, " \
           "0.80x the GET's rate |" in text
    assert "| SQLite: refresh / bare POST | 0.50 |" in text
    assert "66.0 + 19.0 = 85.0 MB (RSS floor)" in text
    assert "come to 85.0 MB, above the 80 MB target" in text and "add 10.0 MB" in text
    assert "| SQLite: refresh floor (bench/rotation_floor.py: the stack alone doing a rotation) | 2.00 ms of " \
           "worker CPU, 0.50x the GET's rate (250 requests, 0 errors) |" in text
    assert "| SQLite: refresh / refresh floor | 0.80 |" in text
    assert "on SQLite it reached 0.50x the bare GET's rate, about at the target, within the run-to-run noise" in text
    assert "| SQLite: refresh / bare endpoint | 0.40 |" in text  # the judged ratio is still against the GET


def test_the_refresh_floor_verdict_needs_a_clear_margin_and_a_failed_floor_is_said_so():
    baseline = VerifyRate(calls=50, seconds=1.0, cpu_seconds=1.0)
    bare = _phase(1000, 1.0, rss=30.0)
    figures = {name: Figures(_phase(48, 1.0), _phase(300, 1.0), _phase(600, 1.0), boot_rss_mb=60.0,
                             peak_rss_mb=95.0, rss_mb=94.0, workers=1) for name in ("SQLite", "PostgreSQL")}
    failed = Phase(load.Result(requests=0, errors=7, seconds=1.0, first_error="401 from /v1/rotate"), 1.0, 40.0, 0)
    floors = report.Floors(_phase(800, 1.0), {"SQLite": _phase(400, 1.0), "PostgreSQL": failed}, {"SQLite": 66.0},
                           19.0)
    host = report.Machine("Test CPU", 2, "3.11.7", "2025-01-01 00:00 UTC", "6.1", 0.5, "gunicorn 1")

    text = report.document(host, baseline, bare, figures, {"clients": 4, "warmup": 1.0, "sign_in_seconds": 10.0,
                                                           "seconds": 6.0, "accounts": 16}, 60.0, [], None, floors)

    assert "on SQLite it reached 0.40x the bare GET's rate, under the target of 0.5" in text
    assert "| SQLite: refresh / refresh floor | 0.75 |" in text
    assert "| PostgreSQL: refresh floor (bench/rotation_floor.py: the stack alone doing a rotation) | not measured " \
           "(0 requests, 7 errors; first error: 401 from /v1/rotate) |" in text
    assert "on PostgreSQL it was not measured" in text
    assert "PostgreSQL: refresh / refresh floor" not in text


def test_two_runs_of_a_baseline_add_up_requests_and_worker_cpu():
    first, second = _phase(1000, 1.0, rss=30.0), _phase(500, 0.25, rss=31.0)  # 1000/s, then 2000/s of CPU

    both = first + second

    assert both.result.requests == 1500 and both.result.seconds == 2.0
    assert both.rate_per_cpu_second == 1500 / 1.25  # all requests over all the CPU, not a mean of the rates
    assert both.peak_rss_mb == 31.0


def test_measure_keeps_each_clients_step_across_windows_and_counts_the_least_disturbed(live_server):
    from bench.servers import Sample, measure

    port = int(live_server(create_app()).url.rsplit(":", 1)[1])
    made = []

    def make_step(index):
        made.append(index)  # a step may carry state (a refresh-token chain): made once per client
        return lambda client: client.call("GET", "/v1/ping")[0] == 200

    class WorkerCpu:
        """Stands in for the gunicorn master: the workers' CPU seconds at each end of each window."""

        port = 0
        readings = iter([0.0, 10.0, 10.0, 11.0, 11.0, 21.0])  # windows cost 10, 1 and 10 CPU-seconds

        def sample(self):
            return Sample({}, next(self.readings))

    stand_in = WorkerCpu()
    stand_in.port = port
    phase = measure(stand_in, make_step, clients=2, duration=0.6, warmup=0.0, windows=3)

    assert sorted(made) == [0, 1]
    assert phase.result.probes[0].cpu_seconds == 10.0  # the second window: 1 CPU-second over its 0.2 s
    assert phase.result.requests > 0 and abs(phase.worker_cpu - 5.0) < 1e-9
