"""The benchmark package's pieces, without measuring anything (no timed assertions)."""
from __future__ import annotations

from bench import load, report
from bench.bare_app import create_app
from bench.baselines import VerifyRate
from bench.identity import Figures
from bench.servers import Phase


def test_bare_endpoint_answers_small_json():
    response = create_app().test_client().get("/v1/ping")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "service": "bare"}


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
