"""benchmarks/fidelity_random.py without a kernel: its random scenarios validate and simulate, the
set is a pure function of the seed, it has the shapes it promises, and a figure is judged within
max(the rule, the two kernel runs' spread)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
