"""`cfssim capture`: a recorded trace turned into a scenario (pure, from trace text), the new
``draw``/``per_thread``/``until`` steps, and the round trip on the real kernel (marker
``kernel``): capture a dispatcher + worker-pool program, simulate what was captured, compare.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cfssim.behaviour import draw_ns
from cfssim.compare import compare
from cfssim.real import cgroupfs
from cfssim.real.capture import (
    MIN_STEP_NS,
    Recording,
    ThreadInfo,
    build_scenario,
    memory_steps,
)
from cfssim.real.errors import RealRunError
from cfssim.scenario import ScenarioError, dump_data, load_scenario, scenario_data
from cfssim.simulation import run_scenario
from cfssim.sweep import point_scenario

US, MS = 1_000, 1_000_000
T0 = 100 * 10**9  # CLOCK_MONOTONIC of the capture's t0


def line(task: str, pid: int, cpu: int, us: int, event: str, body: str) -> str:
    time = T0 // 1000 + us
    return f"{task}-{pid} [{cpu:03d}] d..2. {time // 10**6}.{time % 10**6:06d}: {event}: {body}"


def switch(us: int, cpu: int, prev: tuple[str, int], state: str, nxt: tuple[str, int]) -> str:
    return line(
        prev[0],
        prev[1],
        cpu,
        us,
        "sched_switch",
        f"prev_comm={prev[0]} prev_pid={prev[1]} prev_prio=120 prev_state={state} ==> "
        f"next_comm={nxt[0]} next_pid={nxt[1]} next_prio=120",
    )


def wakeup(us: int, cpu: int, waker: tuple[str, int], woken: tuple[str, int]) -> str:
    return line(
        waker[0],
        waker[1],
        cpu,
        us,
        "sched_wakeup",
        f"comm={woken[0]} pid={woken[1]} prio=120 target_cpu={cpu:03d}",
    )


IDLE, MAIN, WORKER, OTHER = ("swapper/0", 0), ("app", 10), ("worker", 11), ("hog", 99)
#: main runs 0-2 ms and sleeps; it wakes worker at 2 ms; worker runs 2-3 ms, is preempted by
#: a foreign hog (R) for 1 ms, runs 4-6 ms, sleeps; a 0 µs run at 8 ms is merged; woken by
#: main again at 10 ms, it runs 10-11 ms and sleeps to the end (20 ms).
TRACE = "\n".join(
    [
        "# tracer: nop",
        wakeup(0, 0, IDLE, MAIN),
        switch(0, 0, IDLE, "R", MAIN),
        wakeup(2000, 0, MAIN, WORKER),
        switch(2000, 0, MAIN, "S", WORKER),
        switch(3000, 0, WORKER, "R+", OTHER),
        switch(4000, 0, OTHER, "R", WORKER),
        switch(6000, 0, WORKER, "S", IDLE),
        wakeup(8000, 0, IDLE, WORKER),
        switch(8000, 0, IDLE, "R", WORKER),
        switch(8000, 0, WORKER, "S", IDLE),
        wakeup(10000, 1, IDLE, MAIN),
        switch(10000, 1, IDLE, "R", MAIN),
        wakeup(10000, 1, MAIN, WORKER),
        switch(10000, 1, MAIN, "S", IDLE),
        switch(10000, 0, IDLE, "R", WORKER),
        switch(11000, 0, WORKER, "D", IDLE),
    ]
)


def recording(**changes: object) -> Recording:
    threads = {
        10: ThreadInfo(10, 10, "app", 0, (0, 1)),
        11: ThreadInfo(11, 10, "worker", 5, (0, 1)),
    }
    rec = Recording(
        TRACE, T0, 20 * MS, 2, threads, rss={10: [(0, 1 << 20), (5 * MS, 3 << 20)]}, command="app"
    )
    for key, value in changes.items():
        setattr(rec, key, value)
    return rec


def programs(data: dict) -> list[dict]:
    return data["processes"][0]["program"][0]["per_thread"]


def test_exact_replay_bursts_sleeps_wakers_memory_and_nice() -> None:
    built = build_scenario(recording())
    main, worker = programs(built.data)
    # main: 2 ms burst; its 1 MiB baseline and the 2 MiB more at 5 ms (inside its sleep);
    # woken at 10 ms, a 0 µs run (merged: no CPU), asleep to the end
    assert main["name"] == "app" and worker["name"] == "worker"
    assert main["program"] == [
        {"alloc": "1MiB"},
        {"run": "2ms"},
        {"until": "5ms"},
        {"alloc": "2MiB"},
        {"until": "20ms"},
    ]
    # worker: 1 ms + (preempted, continues) 2 ms = 3 ms burst; the 0 µs run at 8 ms joins the
    # sleeps around it; then 1 ms from 10 ms; asleep (D) to the end
    assert worker["program"] == [
        {"until": "2ms"},
        {"run": "3ms"},
        {"until": "10ms"},
        {"run": "1ms"},
        {"until": "20ms"},
    ]
    assert worker["woken_by"] == {"app/0": 2}
    assert built.data["events"] == [
        {"at": "0s", "nice": {"process": "app", "thread": 1, "value": 5}}
    ]
    assert built.notes == []  # a 0 µs run has no segment: the sleep simply goes on
    scenario = load_scenario(dump_data(built.data))
    result = run_scenario(scenario)
    assert result.tasks["app/0"]["cpu_time_ns"] == 2 * MS
    assert result.tasks["app/1"]["cpu_time_ns"] == 4 * MS
    assert MIN_STEP_NS == US


def test_the_captured_result_counts_switches_waits_and_migrations_like_the_kernel() -> None:
    from cfssim.real.capture import capture_result

    def migrate(orig: int, dest: int) -> str:
        return line(
            *MAIN,
            1,
            10000,
            "sched_migrate_task",
            f"comm=worker pid=11 prio=120 orig_cpu={orig} dest_cpu={dest}",
        )

    # the worker woken on CPU 1 at 10 ms runs on CPU 0: one move (and one that is none)
    trace = "\n".join([TRACE, migrate(1, 0), migrate(0, 0)])
    rec = recording(trace=trace)
    built = build_scenario(rec)
    result = capture_result(rec, built, load_scenario(dump_data(built.data)))
    worker = result.tasks["app/1"]
    # switch-outs: R+ at 3 ms (nivcsw); S at 6 and 8 ms (the 0 µs run too), D at 11 ms (nvcsw)
    assert (worker["nr_voluntary_switches"], worker["nr_involuntary_switches"]) == (3, 1)
    assert worker["timeslices"] == worker["nr_switches"] == 4  # off the CPU at the end
    assert worker["wait_time_ns"] == 1 * MS  # preempted 3-4 ms; every wakeup ran at once
    assert worker["nr_migrations"] == 1  # orig_cpu == dest_cpu is no migration
    assert worker["cpu_time_ns"] == 4 * MS and worker["nice"] == 5
    assert result.tasks["app/0"]["nr_voluntary_switches"] == 2
    assert result.meta["description"] == "captured from `app`"


def test_runs_and_sleeps_below_the_floor_merge_into_their_neighbours() -> None:
    from cfssim.real.capture import Entry, ThreadTimeline, _merge_short

    line = ThreadTimeline(
        1,
        0,
        [
            Entry("run", 5 * US, 0),
            Entry("sleep", 500, 5 * US),
            Entry("run", 2 * US, 6 * US),
            Entry("sleep", 3 * US, 8 * US),
            Entry("run", 400, 11 * US),
            Entry("sleep", 4 * US, 12 * US),
            Entry("run", 1 * US, 16 * US),
        ],
    )
    _merge_short(line)
    assert [(e.kind, e.value) for e in line.entries] == [
        ("run", 7 * US),
        ("sleep", 7 * US),
        ("run", 1 * US + 400),
    ]
    assert (line.merged_runs, line.merged_sleeps) == (1, 1)


def test_relative_sleeps_keep_captured_lengths() -> None:
    worker = programs(build_scenario(recording(), absolute=False).data)[1]
    assert worker["program"] == [
        {"sleep": "2ms"},
        {"run": "3ms"},
        {"sleep": "4ms"},
        {"run": "1ms"},
        {"sleep": "9ms"},
    ]


def test_model_draws_from_the_thread_distributions_deterministically() -> None:
    built = build_scenario(recording(), model=True, seed=7)
    worker = programs(built.data)[1]
    assert worker["program"] == [
        {"sleep": "2ms"},
        {
            "loop": {
                "repeat": "forever",
                "program": [{"draw": {"run": ["1ms", "3ms"]}}, {"draw": {"sleep": ["4ms", "9ms"]}}],
            }
        },
    ]
    scenario = load_scenario(dump_data(built.data))
    first, again = run_scenario(scenario), run_scenario(scenario)
    assert first.tasks["app/1"]["cpu_time_ns"] == again.tasks["app/1"]["cpu_time_ns"]
    assert 1 * MS <= first.tasks["app/1"]["cpu_time_ns"] <= 20 * MS


def test_draw_ns_interpolates_between_quantiles() -> None:
    assert draw_ns([1000, 3000], 0.0) == 1000
    assert draw_ns([1000, 3000], 0.25) == 1500
    assert draw_ns([1000, 2000, 6000], 0.75) == 4000
    assert draw_ns([5000], 0.9) == 5000


def test_memory_steps_follow_rss_in_whole_pages_above_the_resolution() -> None:
    steps = memory_steps(
        [(0, 1 << 20), (10 * MS, (1 << 20) + 4096), (20 * MS, 4 << 20), (30 * MS, 1 << 20)]
    )
    assert [(s.kind, s.value, s.wall) for s in steps] == [
        ("alloc", 1 << 20, 0),
        ("alloc", 3 << 20, 20 * MS),
        ("free", 3 << 20, 30 * MS),
    ]


def test_per_thread_needs_one_program_per_thread() -> None:
    text = """
name: t
duration: 1s
machine: {cpus: 1}
processes:
  - name: p
    threads: 3
    program: [{per_thread: [{program: [{run: 1ms}]}, {program: [{run: 1ms}]}]}]
"""
    with pytest.raises(ScenarioError) as error:
        load_scenario(text)
    assert "expected one per_thread program per thread (3, step 0), found 2" in str(error.value)


def test_an_until_that_would_run_more_than_once_is_refused() -> None:
    """An until's time counts from the thread's start: repeated, it sleeps the first time only
    (the second pass finds the time reached and takes none) — refused where it repeats, in the
    process's repeat or a loop's, accepted in a loop run once and in a per_thread program."""
    text = """
name: t
duration: 1s
machine: {cpus: 1}
processes:
  - name: p
    repeat: forever
    program: [{run: 1ms}, {until: 10ms}]
  - name: q
    program:
      - loop: {repeat: 3, program: [{run: 1ms}, {until: 10ms}]}
      - loop: {repeat: 1, program: [{until: 20ms}]}
      - per_thread: [{program: [{until: 30ms}, {run: 1ms}]}]
"""
    with pytest.raises(ScenarioError) as error:
        load_scenario(text)
    reason = (
        "expected an until step only where it runs once (its time counts from the "
        "thread's start: from the second pass on it takes no time; use sleep or timer to "
        "repeat), found it in "
    )
    assert error.value.messages == [
        f"<string>:8:27: processes[0].program[1]: {reason}the program repeated forever",
        f"<string>:11:49: processes[1].program[0].loop.program[1]: {reason}a loop repeated 3 times",
    ]
    once = text.replace("repeat: forever", "repeat: 1").replace("repeat: 3", "repeat: 1")
    assert load_scenario(once).processes[1].program[2].threads[0].program[0].ns == 30 * MS


# ---- the round trip on the kernel ---------------------------------------------------------
WORKLOAD = Path(__file__).parent / "data" / "pool_workload.c"
DURATION_NS = 3 * 10**9  # the program runs 2 s and exits
QUOTA_US = 50_000  # 50% of one CPU (the workload wants ~65%)


def _usable() -> None:
    try:
        cgroupfs.detect()
    except RealRunError as exc:
        pytest.skip(f"cannot capture on this machine: {exc.message}")
    from cfssim.real.tracefs import find_tracefs, mount_tracefs

    if find_tracefs() is None:
        try:
            mount_tracefs()
        except RealRunError as exc:
            pytest.skip(f"no tracefs: {exc.message}")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _usable()
    cc = next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        pytest.skip("no C compiler to build the capture workload")
    binary = tmp_path_factory.mktemp("capture") / "pool"
    subprocess.run([cc, "-O2", "-pthread", "-o", str(binary), str(WORKLOAD)], check=True)
    return binary


def _judged(comparison, figures: tuple[str, ...]) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        f"{r.subject} {r.figure}: {r.a} vs {r.b} ({r.rule})"
        for r in comparison.rows
        if r.figure in figures and r.verdict == "fail"
    ]


@pytest.mark.kernel
def test_capture_replays_what_it_recorded(pool: Path) -> None:
    from cfssim.real.capture import capture

    done = capture([str(pool), "2"], duration_ns=DURATION_NS)
    names = {p.name: p.threads for p in done.scenario.processes}
    assert names == {"dispatcher": 5}
    threads = done.scenario.processes[0].program[0].threads  # type: ignore[union-attr]
    assert [t.name for t in threads] == ["dispatcher", "worker", "worker", "worker", "periodic"]
    assert all("dispatcher/0" in t.woken_by for t in threads[1:4])  # the pool's waker
    simulated = run_scenario(done.scenario)
    comparison = compare(simulated, done.result)
    assert _judged(comparison, ("cpu_time_ns", "cpu.stat.nr_throttled")) == []
    # the workers' ~2 ms per job, every 10 ms, for 2 s
    for name in ("dispatcher/1", "dispatcher/2", "dispatcher/3"):
        assert 250 * MS <= done.result.tasks[name]["cpu_time_ns"] <= 550 * MS
    mine = f"{cgroupfs.PREFIX}{cgroupfs.owner_tag()}-*"
    assert not list(Path("/sys/fs/cgroup/cpu").glob(mine))  # removed after the capture
    assert not list(Path("/sys/kernel/tracing/instances").glob(mine))


@pytest.mark.kernel
def test_what_if_a_quota_the_capture_did_not_have(pool: Path) -> None:
    from cfssim.real.capture import capture

    free = capture([str(pool), "2"], duration_ns=DURATION_NS)
    limited = capture(
        [str(pool), "2"], duration_ns=DURATION_NS, cgroup={"cpu.cfs_quota_us": str(QUOTA_US)}
    )
    what_if = point_scenario(
        scenario_data(free.scenario), {"cgroups./app.cpu.cfs_quota_us": QUOTA_US}
    )
    simulated = run_scenario(what_if)
    comparison = compare(simulated, limited.result)
    # on a loaded machine the program gets less than its quota and is throttled less: see
    # limited.result.meta["background_cpu_fraction"] (a warning above 5%)
    assert _judged(comparison, ("cpu_time_ns", "cpu.stat.nr_throttled")) == []
    throttled = limited.result.cgroups["/app"]["cpu.stat"]["nr_throttled"]
    assert throttled >= 15  # 65% wanted, 50% given: nearly every one of the 20 periods
