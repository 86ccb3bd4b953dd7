"""The periodic ``timer`` step: the model, the simulation, the YAML and rt-app views, the worker.

A thread's timer starts with the thread; each timer step expires one period after the previous
expiry; a late thread skips to the first boundary start + k·period at or after now (absolute,
the default) or restarts the timer at now (relative, rt-app's default mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfssim import load_scenario, run_scenario
from cfssim.behaviour import TimerClock
from cfssim.real.worker import OP_LOOP, OP_RUN, OP_TIMER, encode_program
from cfssim.result import Result
from cfssim.scenario import Run, Sleep, Timer, dump_scenario, step_data
from cfssim.scenario.rtapp import load_rtapp
from cfssim.units import ms


def wakeups(result: Result, task: str) -> list[int]:
    """The times (ns) `task` was woken, from the trace's wakeups table."""
    assert result.trace is not None
    table = result.trace["wakeups"]
    index = result.trace.tasks.index(task)
    return sorted(int(t) for t in table["time"][table["task"] == index])


def scenario(processes: str, *, cpus: int = 1, duration: str = "1s", cgroups: str = "") -> str:
    return (
        f"name: timer\nduration: {duration}\nmachine: {{cpus: {cpus}, policy: cfs}}\n"
        f"{cgroups}processes:\n{processes}"
    )


# ---- the model ----------------------------------------------------------------------------------
def test_short_and_long_forms() -> None:
    loaded = load_scenario(
        scenario(
            "  - {name: a, program: [{timer: 200ms}, {timer: {period: 5ms, mode: relative}}]}\n"
        )
    )
    assert loaded.processes[0].program == (
        Timer(period=ms(200), mode="absolute"),
        Timer(period=ms(5), mode="relative"),
    )


def test_a_timer_lets_a_forever_program_take_time() -> None:
    loaded = load_scenario(scenario("  - {name: a, repeat: forever, program: [{timer: 1s}]}\n"))
    assert loaded.processes[0].repeat is None


@given(
    start=st.integers(0, 10**9),
    period=st.integers(1, 10**8),
    steps=st.lists(st.integers(0, 3 * 10**8), min_size=1, max_size=30),
)
def test_absolute_expiries_stay_on_the_grid_and_never_repeat(
    start: int, period: int, steps: list[int]
) -> None:
    clock, timer, now, last = TimerClock.starting(start), Timer(period=period), start, start
    for work in steps:
        now += work
        expiry = clock.next_expiry(timer, now)
        assert (expiry - start) % period == 0 and expiry > last
        assert expiry == last + period or last + period < now <= expiry < now + period
        now, last = max(now, expiry), expiry  # the thread sleeps until the expiry


@given(period=st.integers(1, 10**8), steps=st.lists(st.integers(0, 3 * 10**8), max_size=30))
def test_relative_expiry_is_a_period_on_or_now(period: int, steps: list[int]) -> None:
    clock, timer = TimerClock.starting(0), Timer(period=period, mode="relative")
    now = last = 0
    for work in steps:
        now += work
        expiry = clock.next_expiry(timer, now)
        assert expiry == max(last + period, now)  # rt-app: t_next += period, or now if past
        now, last = expiry, expiry


# ---- the simulation -----------------------------------------------------------------------------
def test_threads_wake_on_exact_multiples_of_the_period_from_their_start() -> None:
    """Eight threads on a 2-CPU quota (k8s-throttling): throttling delays their work, not their
    wakeups; a process starting at 30ms has its grid at 30ms + k·200ms."""
    result = run_scenario(
        load_scenario(
            scenario(
                "  - {name: web, cgroup: /pod, threads: 8, repeat: forever,\n"
                "     program: [{run: 15ms}, {timer: 200ms}]}\n"
                "  - {name: late, cgroup: /pod, start: 30ms, repeat: forever,\n"
                "     program: [{run: 15ms}, {timer: 200ms}]}\n",
                cpus=2,
                cgroups="cgroups:\n  /pod: {cpu.cfs_quota_us: 100000}\n",
            )
        )
    )
    for thread in range(8):
        assert wakeups(result, f"web/{thread}") == [ms(200) * k for k in range(1, 5)]
    assert wakeups(result, "late/0") == [ms(30) + ms(200) * k for k in range(1, 5)]
    assert result.cgroups["/pod"]["cpu.stat"]["nr_throttled"] == 5  # every request is throttled


def test_a_late_thread_skips_the_boundaries_it_missed() -> None:
    """30ms of work per 20ms period, alone on a CPU: after the work ends at 30ms the 20ms
    expiry has passed, so it wakes at 40ms, runs until 70ms, wakes at 80ms: every other
    boundary, never catching up."""
    result = run_scenario(
        load_scenario(
            scenario(
                "  - {name: a, repeat: forever, program: [{run: 30ms}, {timer: 20ms}]}\n",
                duration="400ms",
            )
        )
    )
    assert wakeups(result, "a/0") == [ms(40) * k for k in range(1, 10)]
    assert result.tasks["a/0"]["cpu_time_ns"] == 10 * ms(30)


def test_an_expiry_reached_exactly_does_not_sleep() -> None:
    result = run_scenario(
        load_scenario(
            scenario(
                "  - {name: a, repeat: forever, program: [{run: 20ms}, {timer: 20ms}]}\n",
                duration="200ms",
            )
        )
    )
    assert wakeups(result, "a/0") == []
    assert result.tasks["a/0"]["cpu_time_ns"] == ms(200)


@pytest.mark.parametrize(
    ("mode", "expected_ms"), [("relative", [20, 40, 90, 110]), ("absolute", [20, 40, 80, 100, 120])]
)
def test_modes_after_an_overrun(mode: str, expected_ms: list[int]) -> None:
    """rt-app's tutorial case: 2×(10ms run, timer), 1×(30ms run, timer), 2×(10ms run, timer)
    with a 20ms period. Relative restarts at the overrun's end (70ms) and wakes 20ms later;
    absolute skips to the 80ms boundary (rt-app's absolute would not sleep until 100ms)."""
    timer = f"{{timer: {{period: 20ms, mode: {mode}}}}}"
    result = run_scenario(
        load_scenario(
            scenario(
                f"  - name: a\n    program:\n"
                f"      - loop: {{repeat: 2, program: [{{run: 10ms}}, {timer}]}}\n"
                f"      - {{run: 30ms}}\n      - {timer}\n"
                f"      - loop: {{repeat: 2, program: [{{run: 10ms}}, {timer}]}}\n"
            )
        )
    )
    *woken, end = (ms(value) for value in expected_ms)  # the last timer ends the thread
    assert wakeups(result, "a/0") == woken
    assert result.tasks["a/0"]["exit"]["time_ns"] == end


# ---- YAML and rt-app views ----------------------------------------------------------------------
def test_yaml_round_trip(tmp_path: Path) -> None:
    assert step_data(Timer(period=ms(200))) == {"timer": "200ms"}
    assert step_data(Timer(period=1500, mode="relative")) == {
        "timer": {"period": "1500ns", "mode": "relative"}
    }
    original = load_scenario(
        scenario(
            "  - {name: a, repeat: 3, program: [{run: 1ms}, {timer: 200ms},\n"
            "     {loop: {repeat: 2, program: [{timer: {period: 7us, mode: relative}}]}}]}\n"
        )
    )
    path = tmp_path / "again.yaml"
    path.write_text(dump_scenario(original))
    assert load_scenario(path).model_dump() == original.model_dump()


def test_rtapp_relative_timers_convert_to_an_equivalent_step(tmp_path: Path) -> None:
    """rt-app's tutorial: "light" and "heavy" phases sharing one "unique" 30ms timer, two
    instances and other work on one CPU, so heavy phases overrun. The YAML view (timer steps,
    no warning) wakes at the same instants as the exact rt-app model."""
    path = tmp_path / "phases.json"
    path.write_text("""{"tasks": {
        "thread": {"instance": 2, "cpus": [0], "phases": {
            "light": {"loop": 10, "run": 1000, "timer": {"ref": "unique", "period": 30000}},
            "heavy": {"loop": 10, "run": 12000, "timer": {"ref": "unique", "period": 30000}}}},
        "noise": {"cpus": [0], "run": 3000, "sleep": 5000}},
      "global": {"duration": 1}}""")
    workload = load_rtapp(path)
    assert workload.warnings == []
    program = workload.scenario.processes[0].program
    assert [step.program for step in program] == [  # type: ignore[union-attr]
        (Run(run=ms(1)), Timer(period=ms(30), mode="relative")),
        (Run(run=ms(12)), Timer(period=ms(30), mode="relative")),
    ]
    exact = workload.run(policy="cfs")
    converted = run_scenario(workload.scenario, policy="cfs")
    for task in ("thread/0", "thread/1", "noise/0"):
        assert wakeups(converted, task) == wakeups(exact, task)
    # the heavy phases overrun: the timer restarts off the 30ms grid
    assert any(time % ms(30) for time in wakeups(exact, "thread/0"))


def test_rtapp_absolute_and_shared_timers_say_how_they_are_written(tmp_path: Path) -> None:
    path = tmp_path / "modes.json"
    path.write_text("""{"tasks": {
        "abs": {"run": 1000, "timer": {"ref": "unique", "period": 10000, "mode": "absolute"}},
        "pool": {"instance": 2, "run": 1000, "timer": {"ref": "tick", "period": 10000}}},
      "global": {"duration": 1}}""")
    workload = load_rtapp(path)
    absolute, pool = (process.program for process in workload.scenario.processes)
    assert absolute == (Run(run=ms(1)), Timer(period=ms(10)))
    assert pool == (Run(run=ms(1)), Sleep(sleep=ms(9)))  # one timer for two threads
    assert any(
        "tasks.abs.timer: absolute timer written as a timer step, which skips" in w
        for w in workload.warnings
    )
    assert any(
        "tasks.pool.timer: timer written as a sleep (timer 'tick' is shared by threads)" in w
        for w in workload.warnings
    )


# ---- the real worker ----------------------------------------------------------------------------
def test_worker_tokens() -> None:
    program = (Run(run=ms(15)), Timer(period=ms(200), mode="relative"))
    assert encode_program(program, repeat=None) == [
        OP_LOOP,
        -1,
        5,
        OP_RUN,
        ms(15),
        OP_TIMER,
        ms(200),
        1,
    ]
    assert encode_program((Timer(period=ms(1000)),)) == [OP_TIMER, ms(1000), 0]


KERNEL_SCENARIO = """
name: kernel-timer
duration: 400ms
machine: {cpus: 2}
processes:
  - name: tick
    cpus: [0]
    start: 10ms
    program: [{loop: {repeat: 10, program: [{run: 2ms}, {timer: 20ms}]}}]
  - name: late
    cpus: [1]
    program: [{loop: {repeat: 5, program: [{run: 30ms}, {timer: 20ms}]}}]
"""


@pytest.mark.kernel
def test_the_real_worker_wakes_on_the_grid() -> None:
    """On the kernel: every traced wakeup of the periodic thread lies within 1ms after
    10ms + k·20ms and it ends after its 10th period (210ms); the late thread (30ms of CPU per
    20ms period) skips every other boundary and ends on the grid at 200ms or later — not at
    150ms, as it would if missed periods were caught up without sleeping."""
    from cfssim.real import cgroupfs, measure
    from cfssim.real.errors import RealRunError

    try:
        cgroupfs.detect()
        result = measure(load_scenario(KERNEL_SCENARIO), trace=True)
    except RealRunError as problem:
        pytest.skip(f"cannot measure on this machine: {problem}")
    background = result.meta["background_cpu_fraction"]
    if background > 0.05:
        pytest.skip(f"background load {background:.0%} > 5%: wakeup times are not reliable")
    woken = np.array(wakeups(result, "tick/0")) - ms(10)
    assert len(woken) >= 5 and np.all(woken % ms(20) < ms(1)), woken
    tick_end = result.tasks["tick/0"]["exit"]["time_ns"]
    assert ms(210) <= tick_end < ms(211)
    late_end = result.tasks["late/0"]["exit"]["time_ns"]
    assert late_end >= ms(200) and late_end % ms(20) < ms(1), late_end
