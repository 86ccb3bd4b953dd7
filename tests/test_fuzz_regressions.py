"""Scenarios a fuzzing pass found to pass validation and then crash the simulation: each runs
here and its outcome is checked against what the kernel does."""

from __future__ import annotations

import pytest

import cfssim
from cfssim.simulation import from_scenario
from cfssim.units import ms

H = "name: x\nduration: 1s\nmachine: {cpus: 2}\n"
PAGE = 4096


def simulate(text: str, duration: str = "200ms") -> tuple[cfssim.Simulation, cfssim.Result]:
    sim = from_scenario(cfssim.load_scenario(text))
    return sim, sim.run(duration)


# ---- 1. nice on a task that has no run queue yet ------------------------------------------------
@pytest.mark.parametrize("policy", ["eevdf", "cfs"])
def test_nice_before_start_sets_the_weight_the_task_starts_with(policy: str) -> None:
    # set_user_nice on a task not queued anywhere only sets its weight. a (nice 5, weight 335)
    # starts at 100 ms beside hog b (nice 0, 1024) on one CPU: over the 900 ms left it gets
    # 335 / 1359 of the CPU, 221.9 ms (450 ms had the renice been lost), within a few ticks.
    sim, result = simulate(
        f"name: x\nduration: 1s\nmachine: {{cpus: 1, policy: {policy}}}\n"
        "processes: [{name: a, start: 100ms, repeat: forever, program: [{run: forever}]},"
        " {name: b, repeat: forever, program: [{run: forever}]}]\n"
        "events: [{at: 1ms, nice: {process: a, value: 5}}]\n",
        "1s",
    )
    assert sim.tasks[0].se.weight == 335
    assert result.tasks["a/0"]["nice"] == 5
    expected = ms(900) * 335 // 1359
    assert abs(result.tasks["a/0"]["cpu_time_ns"] - expected) <= ms(4)
    assert result.tasks["a/0"]["cpu_time_ns"] + result.tasks["b/0"]["cpu_time_ns"] == ms(1000)


def test_nice_while_waiting_in_memcg_oom_reweights_the_waiter() -> None:
    # a's first step faults 2 MiB into a 1 MiB group with oom_kill_disable: it waits (never
    # having run, so with no queue) until the limit rises at 20 ms, then runs 1 ms at nice 3.
    sim, result = simulate(
        H + "cgroups: {/m: {memory.limit_in_bytes: 1MiB, memory.oom_control: 1}}\n"
        "processes: [{name: a, cgroup: /m, program: [{alloc: 2MiB}, {run: 1ms}]}]\n"
        "events: [{at: 5ms, nice: {process: a, value: 3}},"
        " {at: 20ms, write: {/m: {memory.limit_in_bytes: 4MiB}}}]\n"
    )
    assert sim.tasks[0].se.weight == 526
    task = result.tasks["a/0"]
    assert task["nice"] == 3
    assert task["cpu_time_ns"] == ms(1)
    assert task["exit"] == {"time_ns": ms(21), "reason": "exited", "code": 0}
    assert result.kills == []


# ---- 2. kill before the process starts ----------------------------------------------------------
def test_kill_before_start_means_the_process_never_runs() -> None:
    # Killed at 1 ms, a never starts (its 100 ms start passes with nothing run); the nice and
    # move that follow find it dead and change nothing.
    sim, result = simulate(
        H + "cgroups: {/c: {}}\n"
        "processes: [{name: a, threads: 2, start: 100ms, program: [{run: 1ms}]}]\n"
        "events: [{at: 1ms, kill: {process: a}}, {at: 2ms, nice: {process: a, value: -20}},"
        " {at: 3ms, move: {process: a, to: /c}}]\n"
    )
    for name in ("a/0", "a/1"):
        task = result.tasks[name]
        assert task["exit"] == {"time_ns": ms(1), "reason": "killed", "code": None}
        assert (task["cpu_time_ns"], task["timeslices"], task["wait_time_ns"]) == (0, 0, 0)
        assert task["cgroup"] == "/"
    assert result.kills == [
        {"time_ns": ms(1), "task": name, "process": "a", "cgroup": "/", "reason": "killed"}
        for name in ("a/0", "a/1")
    ]
    assert result.cpu["0"]["busy_ns"] + result.cpu["1"]["busy_ns"] == 0
    assert all(task.cpu == -1 for task in sim.tasks)


def test_killing_one_thread_before_start_then_again_records_one_kill() -> None:
    # tgkill of thread 0 at 1 ms (before the 100 ms start), again at 2 ms (already gone: no
    # second kill), then the process at 3 ms (only thread 1 is left to kill).
    _, result = simulate(
        H + "processes: [{name: a, threads: 2, start: 100ms, program: [{run: 1ms}]}]\n"
        "events: [{at: 1ms, kill: {process: a, thread: 0}},"
        " {at: 2ms, kill: {process: a, thread: 0}}, {at: 3ms, kill: {process: a}}]\n"
    )
    assert [(k["task"], k["time_ns"]) for k in result.kills] == [("a/0", ms(1)), ("a/1", ms(3))]
    assert [result.tasks[name]["exit"]["time_ns"] for name in ("a/0", "a/1")] == [ms(1), ms(3)]
    assert result.tasks["a/0"]["cpu_time_ns"] == result.tasks["a/1"]["cpu_time_ns"] == 0


# ---- 3. freeing more than was allocated, in partial pages -------------------------------------
@pytest.mark.parametrize(
    ("steps", "left"),
    [
        ("{alloc: 1B}, {free: 2B}", 0),  # 1 B touched = 1 page; 2 B unmapped = that page
        ("{free: 1MiB}, {alloc: 1B}, {free: 2B}", 0),  # nothing held: nothing freed
        ("{alloc: 4KiB}, {free: 8KiB}", 0),  # more than held: what is held
        ("{alloc: 6KiB}, {free: 1B}", PAGE),  # 2 pages charged, a partial page frees 1
    ],
)
def test_free_rounds_to_whole_pages_and_never_exceeds_what_is_held(steps: str, left: int) -> None:
    sim, result = simulate(
        H + "cgroups: {/m: {}}\n"
        f"processes: [{{name: a, cgroup: /m, program: [{steps}, {{run: forever}}]}}]\n",
        "20ms",
    )
    assert sim.processes["a"].rss == left
    assert result.cgroups["/m"]["memory.usage_in_bytes"] == left
    assert result.tasks["a/0"]["cpu_time_ns"] == ms(20)


def test_over_free_in_a_loop_keeps_usage_and_rss_in_step() -> None:
    # free 1 GiB, alloc 1 B, free 2 B, run 1 ms, forever: each round holds one page for an
    # instant; usage peaks at one page and is 0 at the end, and the exit frees nothing more.
    sim, result = simulate(
        H + "cgroups: {/m: {}}\n"
        "processes: [{name: a, cgroup: /m, repeat: 5, program: "
        "[{free: 1GiB}, {alloc: 1B}, {free: 2B}, {run: 1ms}]}]\n",
        "20ms",
    )
    assert result.tasks["a/0"]["exit"] == {"time_ns": ms(5), "reason": "exited", "code": 0}
    assert result.tasks["a/0"]["max_rss_bytes"] == PAGE
    assert result.cgroups["/m"]["memory.max_usage_in_bytes"] == PAGE
    assert result.cgroups["/m"]["memory.usage_in_bytes"] == 0
    assert sim.processes["a"].rss == 0


# ---- 4. a cpuset write that leaves a child no CPU -----------------------------------------------
def test_v2_child_cpuset_falls_back_to_the_parent_effective_cpus() -> None:
    # /a/b asks for CPU 1; at 50 ms /a is narrowed to CPU 0, so /a/b's effective CPUs fall back
    # to its parent's (0) and its hog moves there: 50 ms on CPU 1, then 150 ms on CPU 0.
    sim, result = simulate(
        H + "cgroups: {/a: {cpu.max: max, cpuset.cpus: '0-1'}, /a/b: {cpuset.cpus: '1'}}\n"
        "processes: [{name: a, cgroup: /a/b, repeat: forever, program: [{run: forever}]}]\n"
        "events: [{at: 50ms, write: {/a: {cpuset.cpus: '0'}}}]\n"
    )
    assert result.cgroups["/a/b"]["cpuacct.usage_percpu"] == [ms(150), ms(50)]
    assert result.tasks["a/0"]["nr_migrations"] == 1
    assert sim.tasks[0].allowed == frozenset({0})
    assert sim.tasks[0].cpu == 0


def test_v2_cpuset_fallback_with_a_sibling_in_the_parent() -> None:
    # cs-v2c: /a's own hog b and /a/b's periodic a (3 ms run, 5 ms timer) on 3 CPUs; after the
    # write both may use only CPU 0.
    sim, result = simulate(
        "name: x\nduration: 1s\nmachine: {cpus: 3}\n"
        "cgroups: {/a: {cpu.max: '1000 1000', cpuset.cpus: '0-1'}, /a/b: {cpuset.cpus: '1'}}\n"
        "processes: [{name: a, cgroup: /a/b, repeat: forever, program: [{run: 3ms},"
        " {timer: 5ms}]}, {name: b, cgroup: /a, repeat: forever, program: [{run: forever}]}]\n"
        "events: [{at: 50ms, write: {/a: {cpuset.cpus: '0'}}}]\n"
    )
    assert [task.allowed for task in sim.tasks] == [frozenset({0}), frozenset({0})]
    seg = result.trace["segments"] if result.trace is not None else None
    assert seg is not None
    assert set(seg["cpu"][seg["start"] >= ms(50)].tolist()) == {0}
    assert result.cgroups["/a/b"]["cpuacct.usage_percpu"][2] == 0


def hog_in_v1_cpusets(parent: str, child: str) -> cfssim.Simulation:
    """A hog in /a/b on 2 CPUs, /a's and /a/b's cpuset.cpus as given."""
    sim = cfssim.Simulation(cpus=2, seed=1)
    sim.add_cgroup("/a", {"cpuset.cpus": parent})
    sim.add_cgroup("/a/b", {"cpuset.cpus": child})
    sim.add_process("a", cfssim.program(run="forever"), cgroup="/a/b")
    return sim


def test_v1_parent_cpuset_write_that_would_empty_a_child_is_refused() -> None:
    # cgroup v1 validate_change: a cpuset must hold its children's CPUs (else EBUSY) and lie
    # within its parent's (else EACCES); a refused write changes nothing.
    sim = hog_in_v1_cpusets(parent="0-1", child="1")
    sim.at("50ms", lambda: sim.write("/a", {"cpuset.cpus": "0"}))
    sim.at("60ms", lambda: sim.write("/a/b", {"cpuset.cpus": "0"}))
    result = sim.run("200ms")
    errors = [entry for entry in sim.event_log if "error" in entry]
    assert errors == [
        {
            "time_ns": ms(50),
            "path": "/a",
            "error": "/a: cpuset.cpus: write error: Device or resource busy "
            "(child /a/b uses CPUs 1 outside 0)",
        }
    ]
    assert result.cgroups["/a"]["cpuset.cpus"] == "0-1"
    assert result.cgroups["/a/b"]["cpuset.cpus"] == "0"
    # on CPU 1 until /a/b itself moves to CPU 0 at 60 ms
    assert result.cgroups["/a/b"]["cpuacct.usage_percpu"] == [ms(140), ms(60)]


def test_v1_child_cpuset_write_outside_the_parent_is_refused() -> None:
    sim = hog_in_v1_cpusets(parent="1", child="1")
    sim.at("10ms", lambda: sim.write("/a/b", {"cpuset.cpus": "0"}))
    result = sim.run("50ms")
    assert [entry["error"] for entry in sim.event_log if "error" in entry] == [
        "/a/b: cpuset.cpus: write error: Permission denied (CPUs 0 outside the parent's 1)"
    ]
    assert result.cgroups["/a/b"]["cpuset.cpus"] == "1"
    assert result.cgroups["/a/b"]["cpuacct.usage_percpu"] == [0, ms(50)]
