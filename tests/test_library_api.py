"""The library's rough edges: frames without all-NaN dict columns, trace tables as DataFrames with
names, clear ValueErrors for bad arguments, and nice/kill events recorded in ``meta.events``."""

from __future__ import annotations

import pytest

import cfssim
from cfssim.units import ms

pd = pytest.importorskip("pandas")


def two_tasks() -> cfssim.Simulation:
    """1 CPU, 100 ms: a hog in /app and a sleeper (5 ms on, 5 ms off) in the root."""
    sim = cfssim.Simulation(cpus=1, seed=1)
    sim.add_cgroup("/app")
    sim.add_process("hog", behaviour=cfssim.program(run="forever"), cgroup="/app")
    sim.add_process("nap", behaviour=cfssim.program({"run": "5ms"}, {"sleep": "5ms"}))
    return sim


def test_tasks_frame_has_latency_columns_not_a_column_of_dicts() -> None:
    result = two_tasks().run("100ms")
    frame = result.tasks_frame()
    assert "wakeup_latency_ns" not in frame.columns
    latency = [
        "wakeup_latency_ns.p50",
        "wakeup_latency_ns.p99",
        "wakeup_latency_ns.max",
        "wakeup_latency_ns.mean",
    ]
    assert set(latency) <= set(frame.columns)
    assert frame.loc["hog/0", latency].isna().all()  # never slept: no wakeups, None each
    nap = result.tasks["nap/0"]["wakeup_latency_ns"]
    assert nap is not None
    assert frame.loc["nap/0", "wakeup_latency_ns.max"] == nap["max"]
    assert {"exit.time_ns", "exit.reason", "exit.code"} <= set(frame.columns)


def test_trace_frames_name_tasks_and_cgroups() -> None:
    result = two_tasks().run("100ms")
    segments = result.trace_frame("segments")
    assert list(segments.columns) == ["cpu", "task", "start", "end"]
    assert set(segments["task"]) == {"hog/0", "nap/0"}
    # the whole CPU is used: 100 ms of running split between the two
    assert int((segments["end"] - segments["start"]).sum()) == ms(100)
    by_task = (segments["end"] - segments["start"]).groupby(segments["task"]).sum()
    assert int(by_task["hog/0"]) == result.tasks["hog/0"]["cpu_time_ns"]
    wakeups = result.trace_frame("wakeups")
    assert set(wakeups["task"]) == {"nap/0"}
    assert len(wakeups) == result.tasks["nap/0"]["wakeups"]
    with pytest.raises(ValueError, match="table: expected one of segments, wakeups"):
        result.trace_frame("segs")


def test_bad_arguments_are_value_errors_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^cpus: expected an integer from 1 to 1024, found -3$"):
        cfssim.Simulation(cpus=-3)
    with pytest.raises(ValueError, match="cpus: expected an integer from 1 to 1024, found True"):
        cfssim.Simulation(cpus=True)
    sim = two_tasks()
    with pytest.raises(
        ValueError,
        match=r"^path: expected a cgroup of this simulation "
        r"\(/, /app\), found '/nope'$",
    ):
        sim.write("/nope", {"cpu.shares": 512})
    with pytest.raises(
        ValueError,
        match=r"^to: expected a cgroup of this simulation "
        r"\(/, /app\), found '/ap' \(did you mean '/app'\?\)$",
    ):
        sim.move("nap", "/ap")
    with pytest.raises(
        ValueError,
        match=r"^process: expected a process of this simulation "
        r"\(hog, nap\), found 'hgo'",
    ):
        sim.set_nice("hgo", 5)
    with pytest.raises(ValueError, match=r"^thread: expected a thread index from 0 to 0"):
        sim.kill("hog", thread=3)
    with pytest.raises(ValueError, match=r"^value: expected a nice level from -20 to 19"):
        sim.set_nice("hog", 40)


def test_nice_and_kill_events_are_recorded_in_meta_events() -> None:
    sim = two_tasks()
    sim.at("10ms", lambda: sim.set_nice("hog", 5))
    sim.at("20ms", lambda: sim.move("nap", "/app"))
    sim.at("30ms", lambda: sim.kill("hog"))
    result = sim.run("50ms")
    assert result.meta["events"] == [
        {"time_ns": ms(10), "nice": {"hog": 5}},
        {"time_ns": ms(20), "move": {"nap": "/app"}},
        {"time_ns": ms(30), "kill": {"hog": "SIGKILL"}},
    ]
    assert result.tasks["hog/0"]["exit"] == {"time_ns": ms(30), "reason": "killed", "code": None}


def test_scenario_nice_and_kill_events_reach_meta_events() -> None:
    scenario = cfssim.load_scenario("""
name: ev
duration: 40ms
machine: {cpus: 1}
processes:
  - {name: a, threads: 2, program: [{run: forever}]}
events:
  - {at: 5ms, nice: {process: a, thread: 1, value: -3}}
  - {at: 9ms, kill: {process: a, thread: 0}}
""")
    result = cfssim.run_scenario(scenario)
    assert result.meta["events"] == [
        {"time_ns": ms(5), "nice": {"a/1": -3}},
        {"time_ns": ms(9), "kill": {"a/0": "SIGKILL"}},
    ]
