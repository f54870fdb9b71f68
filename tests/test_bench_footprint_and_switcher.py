"""bench.footprint and bench.tenancy, run for real in their shortest form (no timed assertions): what they
return has the shape `make bench` reads, and every figure comes from a request that was answered."""
from __future__ import annotations

import pytest

from bench import footprint, tenancy

pytestmark = pytest.mark.slow


def test_footprint_adds_up_the_pss_of_every_process_make_run_starts(tmp_path):
    figures = footprint.total_pss(tmp_path / "var", sign_ups=1)

    processes = figures["processes"]
    assert figures["count"] == len(processes)
    assert {"supervisor", "identity", "identity worker 1", "tenancy", "notifier", "web",
            "embedded_workers"} <= processes.keys(), processes
    assert all(mb > 0 for mb in processes.values()), processes
    assert figures["total"] == pytest.approx(sum(processes.values()), abs=0.5)
    assert figures["at_ready"]["count"] == figures["count"]
    assert "total (" in footprint.table(figures)


def test_the_switcher_bench_measures_bare_tenancy_the_workspace_page_and_its_floor_in_each_round(tmp_path):
    figures = tenancy.run(tmp_path, None, clients=1, seconds=0.5, warmup=0.1, rounds=1)

    [row] = figures["rounds"]
    for name in ("bare", "tenancy", "web", "floor"):
        window = row[name]
        assert window["requests"] > 0 and window["errors"] == 0, (name, window)
        assert window["per_cpu_second"] > 0, (name, window)
    assert figures["workspaces"] == tenancy.ORGANIZATIONS
    assert figures["tenancy_ratio"] == row["tenancy_ratio"] > 0
    assert figures["web_ratio"] == row["web_ratio"] > 0
    assert figures["floor_ratio"] == row["floor_ratio"] > 0
    assert "median" in tenancy.table(figures)
