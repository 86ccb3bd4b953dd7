"""benchmarks/fidelity_random.py without a kernel: its random scenarios validate and simulate, the
set is a pure function of the seed, it has the shapes it promises, and a figure is judged within
the rule of a kernel run or where another kernel run could be (two runs: their spread; three or
more: their 95% prediction interval)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cfssim.host import is_noise_process
from cfssim.real.measure import as_measured
from cfssim.scenario import Alloc, Timer, iter_steps, load_scenario
from cfssim.simulation import run_scenario

MS = 1_000_000


def _load_benchmark() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fidelity_random.py"
    spec = importlib.util.spec_from_file_location("fidelity_random", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fidelity_random"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fr = _load_benchmark()


def test_the_set_is_a_pure_function_of_the_seed() -> None:
    first = [fr.scenario_text(7, index) for index in range(10)]
    assert first == [fr.scenario_text(7, index) for index in range(10)]
    assert first != [fr.scenario_text(8, index) for index in range(10)]
    assert fr.scenario_text(7, 3, 500 * MS) != first[3]  # --duration changes only the duration
    assert load_scenario(fr.scenario_text(7, 3, 500 * MS)).duration_ns == 500 * MS


def test_the_scenarios_validate_and_have_the_promised_shapes() -> None:
    scenarios = fr.scenario_set(60, 1)
    assert len({s.name for s in scenarios}) == 60
    kinds = {p.name.rstrip("0123456789") for s in scenarios for p in s.processes}
    assert kinds == {"hog", "runsleep", "timer", "alloc"}
    assert all(1 <= len(s.processes) <= 8 for s in scenarios)
    assert all(sum(p.threads for p in s.processes) <= 8 for s in scenarios)
    assert all(2_000 * MS <= s.duration_ns <= 3_000 * MS for s in scenarios)
    nices = [p.nice for s in scenarios for p in s.processes]
    assert min(nices) >= -10 and max(nices) <= 19 and len(set(nices)) > 5
    assert any(p.cpus is not None for s in scenarios for p in s.processes)
    configs = [(path, c) for s in scenarios for path, c in s.cgroups.items() if path != "/"]
    assert any(c.quota_ns is not None for _, c in configs)
    assert any(c.burst_ns for _, c in configs)
    assert any(c.memory_limit is not None for _, c in configs)
    assert any(path.count("/") > 1 for path, _ in configs)  # nesting
    for scenario in scenarios:  # every allocator has a memory limit above it (the twin's rule)
        for proc in scenario.processes:
            if any(isinstance(step, Alloc) for step, _ in iter_steps(proc.program)):
                path = proc.cgroup
                limits = [
                    c.memory_limit
                    for p, c in scenario.cgroups.items()
                    if (path + "/").startswith(p.rstrip("/") + "/") and p != "/"
                ]
                assert any(limit is not None for limit in limits), scenario.name
    assert any(
        isinstance(step, Timer)
        for s in scenarios
        for p in s.processes
        for step, _ in iter_steps(p.program)
    )


@pytest.mark.parametrize("profile", ["default", None])
def test_the_scenarios_simulate_and_judge_themselves_as_passing(profile: str | None) -> None:
    for scenario in fr.scenario_set(6, 2, 300 * MS):
        result = run_scenario(as_measured(None, scenario, profile=profile))
        threads = sum(p.threads for p in scenario.processes)
        workload = [n for n, t in result.tasks.items() if not is_noise_process(t["process"])]
        assert len(workload) == threads
        assert sum(result.tasks[n]["cpu_time_ns"] for n in workload) <= 2 * 300 * MS
        verdicts = fr.judge_scenario(result, (result, result))
        assert verdicts and all(v.passed for v in verdicts)


def test_a_figure_passes_within_the_kernel_runs_spread_not_beyond() -> None:
    scenario = fr.scenario_set(1, 1, 300 * MS)[0]
    sim = run_scenario(scenario)
    name = next(iter(sim.tasks))
    capacity = 2 * 300 * MS  # cpu_time_ns: within 5% of it, 30 ms
    kernel = [copy.deepcopy(sim), copy.deepcopy(sim)]
    kernel[0].tasks[name]["cpu_time_ns"] += 40 * MS
    kernel[1].tasks[name]["cpu_time_ns"] -= 40 * MS  # the runs are 80 ms apart

    def verdict(sim_result: object) -> bool:
        found = [
            v
            for v in fr.judge_scenario(sim_result, tuple(kernel))
            if v.subject == name and v.figure == "cpu_time_ns"
        ]
        return bool(found[0].passed)

    assert verdict(sim)  # 40 ms from each run: beyond the rule, within the spread
    kernel[1].tasks[name]["cpu_time_ns"] += 80 * MS - 1  # now 1 ns apart: the rule alone
    assert not verdict(sim)
    assert 0.05 * capacity == 30 * MS
    kernel[0].tasks[name]["cpu_time_ns"] -= 11 * MS  # 29 ms from the sim: within the rule
    assert verdict(sim)


def test_three_runs_judge_by_their_prediction_interval() -> None:
    refs = (100 * MS, 110 * MS, 120 * MS)  # mean 110 ms, s = 10 ms
    half = 4.303 * 10 * MS * (4 / 3) ** 0.5  # t(0.975, 2) · s · √(1 + 1/3) = 49.7 ms
    assert fr.within_kernel_spread(int(110 * MS + half) - 1, refs)
    assert fr.within_kernel_spread(int(110 * MS - half) + 1, refs)
    assert not fr.within_kernel_spread(int(110 * MS + half) + 1, refs)
    assert not fr.within_kernel_spread(110 * MS + 1, (110 * MS,) * 3)  # no spread: the rule alone
    assert not fr.within_kernel_spread(None, refs)


def test_a_replica_of_the_kernel_passes_95_percent_of_the_time() -> None:
    """The interval is a 95% prediction interval: a further draw from the distribution the
    reference runs came from falls inside it 95% of the time, whatever its spread."""
    rng = np.random.default_rng(7)
    draws = rng.normal(200 * MS, 40 * MS, size=(20_000, 4)).astype(np.int64)
    inside = [fr.within_kernel_spread(int(d[3]), tuple(int(x) for x in d[:3])) for d in draws]
    assert 0.94 < np.mean(inside) < 0.96
    # the two-run rule lets a replica through only when the runs are not the closest pair
    two = [fr.within_kernel_spread(int(d[2]), (int(d[0]), int(d[1]))) for d in draws]
    assert 0.64 < np.mean(two) < 0.69


def test_the_last_of_three_or_more_runs_is_judged_as_a_replica() -> None:
    scenario = fr.scenario_set(1, 1, 300 * MS)[0]
    sim = run_scenario(scenario)
    kernel = [copy.deepcopy(sim) for _ in range(4)]
    outcome = fr.judge_runs(scenario.name, kernel, {"profile": sim})
    assert set(outcome.verdicts) == {"profile", fr.REPLICA}
    assert all(len(v.kernel) == 3 for v in outcome.verdicts["profile"])
    assert all(v.passed for vs in outcome.verdicts.values() for v in vs)
    assert len(outcome.background) == 4
    two = fr.judge_runs(scenario.name, kernel[:2], {"profile": sim})
    assert set(two.verdicts) == {"profile"}  # two runs: both are the reference


def test_complete_measures_the_missing_and_the_loaded_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = fr.scenario_set(1, 1, 300 * MS)[0]
    sim = run_scenario(scenario)
    where = tmp_path / scenario.name
    where.mkdir()
    (where / "scenario.yaml").write_text(fr.scenario_text(1, 0, 300 * MS))

    def run_at(background: float) -> object:
        run = copy.deepcopy(sim)
        run.meta["background_cpu_fraction"] = background
        return run

    run_at(0.02).save(where / "kernel-1")  # quiet: kept
    run_at(0.40).save(where / "kernel-2")  # loaded: measured again
    backgrounds = iter([0.30, 0.05, 0.20, 0.60, 0.50, 0.45, 0.70])
    monkeypatch.setattr(fr, "measure", lambda *a, **k: run_at(next(backgrounds)))
    monkeypatch.setattr(fr, "RETRY_PAUSE_S", 0.0)
    lines: list[str] = []
    fr.complete(tmp_path, runs=3, retries=3, echo=lines.append)
    kept = [fr.background_of(fr.Result.load(where / f"kernel-{n}")) for n in (1, 2, 3)]
    # run 2: 0.30, then 0.05 (quiet: stop); run 3: 0.20, 0.60, 0.50, 0.45 — the least loaded
    assert kept == [0.02, 0.05, 0.20]
    assert lines == [
        f"{scenario.name}: kernel-2 background 5%",
        f"{scenario.name}: kernel-3 background 20%",
    ]
