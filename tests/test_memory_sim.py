"""The memory controller inside the simulation: charges from alloc/free steps, the memcg OOM
killer's victims and times, oom_kill_disable sleeps, v1/v2 limit writes, memory.oom.group."""

from __future__ import annotations

import cfssim
from cfssim.host import HostModel
from cfssim.units import ms

MiB = 1 << 20


def grow(step: str, every: str = "25ms") -> object:
    return cfssim.program({"alloc": step}, {"sleep": every})


def test_larger_grower_is_killed_first_when_the_group_crosses_its_limit() -> None:
    # Two processes add 6 MiB and 2 MiB every 25 ms (t = 0, 25, 50 ms …; "big" first at each
    # instant) under 128 MiB. After k steps the group holds 8k MiB: k = 16 (t = 375 ms) fills it
    # exactly, so big's 17th charge at t = 400 ms finds no page free and the OOM killer runs:
    # badness = rss pages, 96 MiB of big beats 32 MiB of small. Small then holds 34 MiB and
    # grows 2 MiB a step: full after step 64 (t = 1575 ms); step 65 at t = 1.6 s fails and it
    # is killed alone.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/box", {"memory.limit_in_bytes": "128MiB"})
    sim.add_process("big", cgroup="/box", behaviour=grow("6MiB"))
    sim.add_process("small", cgroup="/box", behaviour=grow("2MiB"))
    result = sim.run("3s")
    kills = [(k["process"], k["time_ns"], k["reason"]) for k in result.kills]
    assert kills == [("big", ms(400), "oom_kill"), ("small", ms(1600), "oom_kill")]
    box = result.cgroups["/box"]
    assert box["memory.oom_control"]["oom_kill"] == 2
    # each killed allocator's last charge fails 19 times before the OOM killer and 17 after it
    # chose the allocator itself (try_charge_memcg; 6.18 counts 36 for one such kill)
    assert box["memory.failcnt"] == 2 * 36
    assert box["memory.max_usage_in_bytes"] == 128 * MiB
    assert box["memory.usage_in_bytes"] == 0  # both died; their memory was uncharged
    assert result.tasks["big/0"]["exit"]["reason"] == "oom_kill"
    assert result.tasks["big/0"]["max_rss_bytes"] == 16 * 6 * MiB


def test_oom_kill_disable_sleeps_until_the_limit_is_raised() -> None:
    # 10 MiB at a time toward 200 MiB under 100 MiB with oom_kill_disable=1: the 11th charge
    # fails at 100 MiB; the task sleeps under_oom until the limit is raised at t = 1 s, then
    # finishes its remaining allocations and exits normally.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/box", {"memory.limit_in_bytes": "100MiB", "memory.oom_control": 1})
    sim.add_process(
        "hog",
        cgroup="/box",
        behaviour=cfssim.program({"alloc": "10MiB"}, {"run": "1ms"}, repeat=20),
    )
    seen: dict[str, object] = {}

    def look() -> None:
        assert sim.memory is not None
        seen.update(sim.memory.stats(sim.memory["/box"])["memory.oom_control"])
        seen["rss"] = sim.processes["hog"].rss

    sim.at("500ms", look)
    sim.at("1s", lambda: sim.write("/box", {"memory.limit_in_bytes": "300MiB"}))
    result = sim.run("2s")
    assert seen["under_oom"] == 1 and seen["oom_kill"] == 0
    assert seen["rss"] == 100 * MiB
    assert result.kills == []
    hog = result.tasks["hog/0"]
    assert hog["exit"]["reason"] == "exited"
    assert hog["exit"]["time_ns"] == ms(1000) + 10 * ms(1)  # 10 more 1 ms runs after the raise
    assert result.cgroups["/box"]["memory.max_usage_in_bytes"] == 200 * MiB
    assert result.cgroups["/box"]["memory.oom_control"]["under_oom"] == 0


def limit_lowered_below_usage(limit_file: str) -> cfssim.Result:
    """A process holds 32 MiB in /box (limit 64 MiB); at 100 ms `limit_file` is set to 16 MiB."""
    sim = cfssim.Simulation(cpus=1, policy="cfs", seed=1)
    sim.add_cgroup("/box", {limit_file: "64MiB"})
    hold = cfssim.program({"alloc": "32MiB"}, {"sleep": "1s"}, repeat=1)
    sim.add_process("p", cgroup="/box", behaviour=hold)
    sim.at("100ms", lambda: sim.write("/box", {limit_file: "16MiB"}))
    return sim.run("500ms")


def test_v1_limit_below_usage_fails_with_ebusy_and_keeps_the_old_limit() -> None:
    result = limit_lowered_below_usage("memory.limit_in_bytes")
    assert result.kills == []
    assert result.cgroups["/box"]["memory.limit_in_bytes"] == 64 * MiB
    errors = [e for e in result.meta["events"] if "error" in e]
    assert errors and "busy" in errors[0]["error"].lower()


def test_v2_memory_max_below_usage_oom_kills() -> None:
    result = limit_lowered_below_usage("memory.max")
    assert [(k["process"], k["time_ns"]) for k in result.kills] == [("p", ms(100))]


def test_oom_group_kills_every_process_of_the_group() -> None:
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/app", {"memory.max": "64MiB", "memory.oom.group": 1})
    sim.add_process("a", cgroup="/app", behaviour=grow("8MiB"))
    sim.add_process(
        "b", cgroup="/app", behaviour=cfssim.program({"alloc": "1MiB"}, {"sleep": "1s"})
    )
    result = sim.run("1s")
    assert {k["process"] for k in result.kills} == {"a", "b"}
    assert {k["reason"] for k in result.kills} == {"oom_group_kill"}


def test_free_uncharges_and_memory_trace_follows_usage() -> None:
    sim = cfssim.Simulation(cpus=1, policy="cfs", seed=1)
    sim.add_cgroup("/box", {"memory.max": "64MiB"})
    steps = [{"alloc": "16MiB"}, {"sleep": "10ms"}, {"free": "8MiB"}, {"sleep": "10ms"}]
    steps.append({"free": "all"})
    sim.add_process("p", cgroup="/box", behaviour=cfssim.program(*steps, repeat=1))
    result = sim.run("100ms")
    assert result.trace is not None
    mem = result.trace["memory"]
    box = result.trace.cgroups.index("/box")
    rows = mem["cgroup"] == box
    assert list(mem["usage"][rows]) == [16 * MiB, 8 * MiB, 0]
    assert list(mem["time"][rows]) == [0, ms(10), ms(20)]
    assert result.cgroups["/box"]["memory.max_usage_in_bytes"] == 16 * MiB


def test_memory_high_is_handled_after_every_charge_batch() -> None:
    # mem_cgroup_handle_over_high runs on the return to user space after each refill of the
    # charge stock (64 pages): 4 MiB above a 100 MiB memory.high are 16 batches, each a `high`
    # event and a sleep of calculate_high_delay(64, overage after it) jiffies — 0, 0, 0, 0, 0,
    # 3, 4, 6, 8, 9, 12, 14, 16, 19, 22, 25 (under HZ/100 = 2 jiffies none) = 138 × 4 ms
    sim = cfssim.Simulation(cpus=1, seed=1)
    sim.add_cgroup("/h", {"memory.high": "100MiB"})
    steps = ({"alloc": "100MiB"}, {"alloc": "4MiB"}, {"run": "1ms"}, {"sleep": "10s"})
    sim.add_process("grow", cfssim.program(*steps), cgroup="/h")
    result = sim.run("2s")
    events = result.cgroups["/h"]["memory.events"]
    assert (events["high"], events["max"], events["oom"]) == (16, 0, 0)
    assert result.trace is not None
    assert result.trace["segments"]["start"].tolist() == [138 * 4_000_000]
    assert result.cgroups["/h"]["memory.current"] == 104 * MiB


def test_a_task_killed_mid_allocation_charges_nothing_more() -> None:
    # 64 MiB under a 10 MiB memory.high: the allocation sleeps its over-high penalties batch by
    # batch; killed at 30 ms, the process exits with everything uncharged and no later batch
    sim = cfssim.Simulation(cpus=1, seed=1)
    sim.add_cgroup("/h", {"memory.high": "10MiB"})
    sim.add_process("a", cfssim.program({"alloc": "64MiB"}, {"sleep": "10s"}), cgroup="/h")
    sim.at("30ms", lambda: sim.kill("a"))
    result = sim.run("3s")
    assert result.tasks["a/0"]["exit"] == {"time_ns": 30_000_000, "reason": "killed", "code": None}
    assert result.cgroups["/h"]["memory.current"] == 0


def test_a_woken_oom_waiter_is_killed_when_it_runs_again_not_at_its_wakeup() -> None:
    # mem_cgroup_oom_synchronize only puts the task to sleep; woken (oom_control cleared), it
    # returns from the fault and faults again in its own context, where the OOM killer runs.
    # With faults that cost CPU time (1 µs a page here), the retry needs the CPU: on a CPU an
    # RT hog holds, the woken fair task runs only when the fair server (dl_server, 50 ms of
    # every 1 s) gives it the CPU, and the kill follows that, not the write.
    sim = cfssim.Simulation(cpus=1, policy="eevdf", seed=1, host=HostModel(page_fault_ns=1000))
    sim.add_cgroup("/box", {"memory.limit_in_bytes": "8MiB", "memory.oom_control": 1})
    sim.add_process("grow", cgroup="/box", behaviour=cfssim.program({"alloc": "16MiB"}))
    sim.add_process(
        "rt",
        behaviour=cfssim.program({"sleep": "100ms"}, {"run": "forever"}),
        policy="fifo",
        rt_priority=50,
    )
    sim.at("500ms", lambda: sim.write("/box", {"memory.oom_control": 0}))
    result = sim.run("2s")
    [kill] = result.kills
    assert kill["process"] == "grow" and kill["reason"] == "oom_kill"
    # the server, started at the wakeup, defers to its period's last 50 ms (0.5 + 0.95 s);
    # the retried fault then takes 1 µs, and the kill is decided at its end
    assert kill["time_ns"] == ms(1450) + 1000
    assert result.trace is not None
    segments = result.trace["segments"]
    grow = list(result.trace.tasks).index("grow/0")
    after = (segments["task"] == grow) & (segments["start"] >= ms(500))
    assert list(segments["start"][after]) == [ms(1450)]
