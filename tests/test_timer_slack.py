"""Timer slack: a normal task's sleep is an hrtimer that may fire up to ``timer_slack_ns`` late
(50 µs on the kernel, measured: an 18 ms nanosleep among hogs lasted 18.053–18.071 ms on 6.18);
RT tasks have none. The tunable defaults to 0 in the model (exact sleeps)."""

from __future__ import annotations

import cfssim
from cfssim.result import Result
from cfssim.units import ms, us

SLACK = {"timer_slack_ns": 50_000}


def wake_times(result: Result, task: str) -> list[int]:
    assert result.trace is not None
    table = result.trace["wakeups"]
    index = result.trace.tasks.index(task)
    return sorted(int(t) for t in table["time"][table["task"] == index])


def test_a_sleep_on_an_idle_cpu_ends_at_its_hard_expiry() -> None:
    # alone on CPU 0: run 1 ms, sleep 18 ms → each wakeup 19.05 ms after the previous one
    sim = cfssim.Simulation(cpus=1, tunables=SLACK)
    sim.add_process("t", behaviour=cfssim.program(run="1ms", sleep="18ms"))
    times = wake_times(sim.run("100ms"), "t/0")
    assert times[:3] == [ms(19) + us(50), 2 * (ms(19) + us(50)), 3 * (ms(19) + us(50))]


def test_rt_tasks_and_the_default_have_no_slack() -> None:
    for policy, tunables in (("fifo", SLACK), ("normal", None)):
        sim = cfssim.Simulation(cpus=1, tunables=tunables)
        sim.add_process(
            "t",
            behaviour=cfssim.program(run="1ms", sleep="18ms"),
            policy=policy,
            rt_priority=10 if policy == "fifo" else 0,
        )
        assert wake_times(sim.run("100ms"), "t/0")[:2] == [ms(19), ms(38)]


def test_a_tick_inside_the_slack_range_fires_the_timer() -> None:
    # t runs 1 ms from 0 (the hog, started 10 µs later, waits behind it), then sleeps 2.97 ms
    # while the hog keeps the CPU busy, so the tick runs: soft expiry 3.97 ms, and the tick at
    # 4 ms lies inside (soft, soft + 50 µs], so the timer fires there and not at 4.02 ms.
    sim = cfssim.Simulation(cpus=1, tunables=SLACK)
    sim.add_process("t", behaviour=cfssim.program(run="1ms", sleep="2970us"))
    sim.add_process("hog", behaviour=cfssim.program(run="forever"), start="10us")
    assert wake_times(sim.run("20ms"), "t/0")[0] == ms(4)
