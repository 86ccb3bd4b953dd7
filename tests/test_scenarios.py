"""Every bundled scenario runs, teaches what its description says, and matches its golden summary.

The golden files (`tests/goldens/<name>.json`) hold the figures a reader of the scenario looks at;
a change in the model that moves them shows up here as a diff. After a deliberate model change,
rewrite them with ``python -m pytest tests/test_scenarios.py --update-goldens`` and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cfssim import Result, load_scenario, run_scenario
from cfssim.scenario import bundled_scenarios

GOLDENS = Path(__file__).parent / "goldens"
SCENARIOS = bundled_scenarios()


def summary(result: Result) -> dict[str, Any]:
    """The figures a golden pins down (integers, exact: a run is deterministic)."""
    assert result.trace is not None
    return {
        "tasks": {
            name: {
                key: fig[key]
                for key in ("cpu_time_ns", "wait_time_ns", "timeslices", "nr_switches", "exit")
            }
            for name, fig in result.tasks.items()
        },
        "cgroups": {
            path: {
                "cpuacct.usage": fig["cpuacct.usage"],
                "cpu.stat": {
                    k: fig["cpu.stat"][k]
                    for k in (
                        "nr_periods",
                        "nr_throttled",
                        "throttled_time",
                        "nr_bursts",
                        "burst_time",
                    )
                },
                "memory.max_usage_in_bytes": fig.get("memory.max_usage_in_bytes"),
                "memory.failcnt": fig.get("memory.failcnt"),
                "memory.oom_control": fig.get("memory.oom_control"),
            }
            for path, fig in result.cgroups.items()
        },
        "kills": result.kills,
        "trace_digest": result.trace.digest(),
    }


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_bundled_scenario_matches_its_golden(name: str, update_goldens: bool) -> None:
    scenario = load_scenario(SCENARIOS[name])
    assert scenario.description.strip(), f"{name} must say what it teaches"
    got = summary(run_scenario(scenario))
    path = GOLDENS / f"{name}.json"
    if update_goldens or not path.exists():
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        if not update_goldens:
            pytest.fail(f"{path} was missing and has been written; review and commit it")
    want = json.loads(path.read_text())
    assert got == want, f"{name} drifted from {path.name} (rerun with --update-goldens if intended)"


def test_seed_quota_drops_from_two_cpus_to_one_after_the_write() -> None:
    # The study note's demo: 2 busy threads use ~200% until t = 1 s, then quota = period = 100 ms
    # grants one CPU. In the period of the write each CPU may overrun by up to a tick before its
    # update_curr notices the pool is empty (the debt is repaid later); from the next period on
    # usage is 100 ms ± 2% per period.
    result = run_scenario(load_scenario(SCENARIOS["seed-quota"]))
    assert result.trace is not None
    periods = result.trace["periods"]
    first = periods["start"] == 1_000_000_000
    assert 100_000_000 <= periods["usage"][first][0] <= 100_000_000 + 2 * 4_000_000
    usage = periods["usage"][periods["start"] > 1_000_000_000]
    assert len(usage) >= 15
    assert all(abs(u - 100_000_000) <= 2_000_000 for u in usage), usage
    first_second = result.trace["segments"]
    busy = (first_second["end"].clip(max=1_000_000_000) - first_second["start"]).clip(min=0).sum()
    assert busy == 2_000_000_000  # both CPUs busy for the whole first second


def test_memory_oom_scenario_kills_its_allocator() -> None:
    result = run_scenario(load_scenario(SCENARIOS["memory-oom"]))
    assert [k["reason"] for k in result.kills] == ["oom_kill"]
    oom = [fig for fig in result.cgroups.values() if fig["memory.oom_control"]["oom_kill"]]
    assert oom and oom[0]["memory.oom_control"]["oom_kill"] == 1
