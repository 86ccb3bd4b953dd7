"""The result contract (`cfssim.result`): the simulation and the real twin build their figures with
the same builders, and a result.json that breaks the contract is refused naming the field.
No kernel needed: the twin's figures are built from a fabricated measurement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfssim
from cfssim.real.measure import MeasuredThread, measured_task_figures
from cfssim.real.procfs import ThreadStats
from cfssim.result import (
    CgroupFigures,
    ContractError,
    Result,
    ResultError,
    TaskFigures,
    cgroup_figures,
    check_contract,
    task_figures,
)

MS = 1_000_000
#: TaskFigures' integer-only fields (the others are strings or may be null)
INT_FIELDS = (
    "nice",
    "cpu_time_ns",
    "wait_time_ns",
    "timeslices",
    "nr_switches",
    "nr_voluntary_switches",
    "nr_involuntary_switches",
    "nr_migrations",
    "wakeups",
    "vruntime",
)


def simulated() -> Result:
    """1 CPU, 100 ms: a FIFO thread that runs 10 ms and exits with code 0, then a fair hog."""
    sim = cfssim.Simulation(cpus=1, seed=1)
    sim.add_process(
        "rt", behaviour=cfssim.program({"run": "10ms"}, {"exit": 0}), policy="fifo", rt_priority=10
    )
    sim.add_process("hog", behaviour=cfssim.program(run="forever"))
    return sim.run("100ms")


def measured(policy: str) -> TaskFigures:
    """The twin's figures of a thread seen at t0 and at its exit (no kernel: fabricated)."""
    thread = MeasuredThread("rt/0", process=0, thread=0, cgroup="/", nice=0, pid=7, tid=7)
    thread.base = ThreadStats(
        cpu_time_ns=2 * MS,
        wait_time_ns=MS,
        timeslices=1,
        nr_switches=1,
        nr_voluntary_switches=1,
        vruntime=5 * MS,
    )
    thread.last = ThreadStats(
        cpu_time_ns=12 * MS,
        wait_time_ns=MS,
        timeslices=3,
        nr_switches=4,
        nr_voluntary_switches=3,
        nr_involuntary_switches=1,
        nr_migrations=2,
        vruntime=9 * MS,
    )
    thread.exit = {"time_ns": 10 * MS, "reason": "exited", "code": 0}
    return measured_task_figures(thread, "rt", policy, 4096)


def test_the_simulation_and_the_twin_emit_the_same_task_keys_in_the_same_order() -> None:
    sim = simulated()
    twin = measured("fifo")
    assert list(twin) == list(sim.tasks["rt/0"]) == list(sim.tasks["hog/0"])
    assert list(twin) == list(TaskFigures.__annotations__)
    # the twin's counters are the ones accumulated since t0; vruntime stays absolute
    assert (twin["cpu_time_ns"], twin["wait_time_ns"], twin["timeslices"]) == (10 * MS, 0, 2)
    assert (twin["nr_switches"], twin["nr_voluntary_switches"], twin["wakeups"]) == (3, 2, 2)
    assert (twin["nr_migrations"], twin["vruntime"], twin["max_rss_bytes"]) == (2, 9 * MS, 4096)
    assert twin["exit"] == {"time_ns": 10 * MS, "reason": "exited", "code": 0}
    # the drift this fixes: the twin had no sched_class
    assert (twin["sched_class"], sim.tasks["rt/0"]["sched_class"]) == ("rt", "rt")
    assert (measured("normal")["sched_class"], sim.tasks["hog/0"]["sched_class"]) == (
        "fair",
        "fair",
    )
    assert sim.tasks["rt/0"]["exit"] == {"time_ns": 10 * MS, "reason": "exited", "code": 0}
    assert (sim.tasks["rt/0"]["cpu_time_ns"], sim.tasks["hog/0"]["cpu_time_ns"]) == (
        10 * MS,
        90 * MS,
    )
    check_contract(sim.to_dict()["tasks"], dict[str, TaskFigures], "tasks")
    check_contract(twin, TaskFigures, "twin")


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data))
    return path


def test_a_result_json_with_a_wrong_typed_field_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    good = simulated().to_dict()
    cases: list[tuple[tuple[str | int, ...], Any, str]] = [
        (
            ("tasks", "hog/0", "cpu_time_ns"),
            "90000000",
            'expected tasks["hog/0"]["cpu_time_ns"] to be an integer, found "90000000"',
        ),
        (
            ("tasks", "rt/0", "exit", "time_ns"),
            1.5,
            'expected tasks["rt/0"]["exit"]["time_ns"] to be an integer, found 1.5',
        ),
        (
            ("tasks", "hog/0", "sched_class"),
            "idle",
            'expected tasks["hog/0"]["sched_class"] to be \'fair\' or \'rt\', found "idle"',
        ),
        (
            ("cgroups", "/", "cpu.stat", "nr_throttled"),
            True,
            'expected cgroups["/"]["cpu.stat"]["nr_throttled"] to be an integer, found true',
        ),
        (
            ("cgroups", "/", "cpuacct.usage_percpu", 0),
            "0",
            'expected cgroups["/"]["cpuacct.usage_percpu"][0] to be an integer, found "0"',
        ),
        (("meta", "warnings"), "none", 'expected meta["warnings"] to be a list, found "none"'),
        (
            ("meta", "tick_offset_ns"),
            None,
            'expected meta["tick_offset_ns"] to be an integer, found null',
        ),
    ]
    for keys, value, says in cases:
        data = json.loads(json.dumps(good))
        place = data
        for key in keys[:-1]:
            place = place[key]
        place[keys[-1]] = value
        path = write(tmp_path, data)
        with pytest.raises(ResultError) as raised:
            Result.from_json(path)
        assert str(raised.value) == f"{path}: {says}"
    data = json.loads(json.dumps(good))
    del data["tasks"]["hog/0"]["nice"]
    with pytest.raises(
        ResultError,
        match=r'expected tasks\["hog/0"\]\["nice"\] to be an '
        r"integer, found nothing",
    ):
        Result.from_json(write(tmp_path, data))


def test_a_twin_result_written_before_sched_class_loads_with_it_derived(tmp_path: Path) -> None:
    twin = {
        "source": "kernel",
        "scenario": "x",
        "policy": "kernel-6.18",
        "cpus": 2,
        "duration_ns": 100 * MS,
        "seed": None,
        "tasks": {"rt/0": dict(measured("rr")), "hog/0": dict(measured("batch"))},
    }
    for figures in twin["tasks"].values():
        del figures["sched_class"]
    loaded = Result.from_json(write(tmp_path, twin))
    assert loaded.tasks["rt/0"]["sched_class"] == "rt"
    assert loaded.tasks["hog/0"]["sched_class"] == "fair"


def test_cgroup_figures_refuses_a_builder_that_breaks_the_contract() -> None:
    figures: CgroupFigures = cgroup_figures({"cpuacct.usage": 5, "memory.max": "max"}, "/a")
    assert figures == {"cpuacct.usage": 5, "memory.max": "max"}
    with pytest.raises(ContractError) as raised:
        cgroup_figures(
            {"cpu.stat": {"nr_periods": 1, "nr_throttled": 0, "throttled_time": 0, "nr_bursts": 0}},
            "/a",
        )
    assert (
        str(raised.value) == 'expected /a["cpu.stat"]["burst_time"] to be an integer, found nothing'
    )


@given(
    field=st.sampled_from(INT_FIELDS),
    value=st.one_of(
        st.text(max_size=5),
        st.floats(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_any_non_integer_in_an_integer_task_field_is_named(field: str, value: Any) -> None:
    figures = dict(
        task_figures(
            process="p",
            cgroup="/",
            nice=0,
            policy="normal",
            cpu_time_ns=1,
            wait_time_ns=0,
            timeslices=1,
            nr_switches=1,
            nr_voluntary_switches=1,
            nr_involuntary_switches=0,
            nr_migrations=0,
            wakeups=1,
            wakeup_latency_ns=None,
            vruntime=0,
            max_rss_bytes=None,
            exit=None,
        )
    )
    check_contract(figures, TaskFigures, "t")
    figures[field] = value
    with pytest.raises(ContractError) as raised:
        check_contract(figures, TaskFigures, "t")
    assert raised.value.where == f't["{field}"]' and raised.value.expected == "an integer"
