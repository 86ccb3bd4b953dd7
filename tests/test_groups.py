"""Group scheduling (CPU side): cpu.shares / cpu.weight, hierarchical weights,
autogroup, moving tasks between cgroups, cpuset.cpus, and hierarchical cpuacct.

Expected shares follow from the kernel's group scheduling (kernel-reference §4): at each level
entities share their queue's CPU time by weight; a group's shares are split over CPUs in
proportion to its load there (calc_group_shares); shares only matter under contention.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cfssim
from cfssim import Result, ms, s
from cfssim.sched.core import FAIR_POLICIES

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
FOREVER = cfssim.program(run="forever")
ALL_POLICIES = sorted(FAIR_POLICIES)


def usage(result: Result, cgroup: str) -> int:
    return result.cgroups[cgroup]["cpuacct.usage"]  # type: ignore[no-any-return]


def task_cpus(result: Result, task: str, start: int = 0, end: int | None = None) -> set[int]:
    """CPUs `task` ran on during [start, end) (segments overlapping it)."""
    assert result.trace is not None
    seg = result.trace["segments"]
    end = result.duration_ns if end is None else end
    mask = (seg["task"] == result.trace.tasks.index(task)) & (seg["end"] > start)
    mask &= seg["start"] < end
    return set(seg["cpu"][mask].tolist())


def cpu_time_between(result: Result, task: str, start: int, end: int) -> int:
    assert result.trace is not None
    seg = result.trace["segments"]
    mask = seg["task"] == result.trace.tasks.index(task)
    return int(
        (np.clip(seg["end"][mask], start, end) - np.clip(seg["start"][mask], start, end)).sum()
    )


# ==== shares ====================================================================================
def two_groups(
    files_high: dict[str, int], files_low: dict[str, int], threads: int, policy: str
) -> Result:
    sim = cfssim.Simulation(cpus=2, policy=policy, seed=1)
    sim.add_cgroup("/high", files_high)
    sim.add_cgroup("/low", files_low)
    sim.add_process("high", threads=threads, cgroup="/high", behaviour=FOREVER)
    sim.add_process("low", threads=threads, cgroup="/low", behaviour=FOREVER)
    return sim.run("10s")


@pytest.mark.parametrize("policy", ALL_POLICIES)
@pytest.mark.parametrize(
    ("high", "low"),
    [({"cpu.shares": 2048}, {"cpu.shares": 1024}), ({"cpu.weight": 200}, {"cpu.weight": 100})],
    ids=["v1-shares", "v2-weight"],
)
def test_shares_2_to_1_with_two_hogs_per_group(
    high: dict[str, int], low: dict[str, int], policy: str
) -> None:
    # Four hogs on 2 CPUs, one per group on each CPU (each group's load splits evenly, so its
    # entity weighs shares/2 on each CPU): per CPU 1024 : 512 → /high gets 2/3 of the machine,
    # /low 1/3 (cpu.weight 200:100 = shares 2048:1024, round(w × 1024 / 100)).
    result = two_groups(high, low, 2, policy)
    total = 2 * result.duration_ns
    assert usage(result, "/high") / total == pytest.approx(2 / 3, rel=0.02)
    assert usage(result, "/low") / total == pytest.approx(1 / 3, rel=0.02)
    assert result.cgroups["/high"]["cpu.shares"] == 2048
    assert result.cgroups["/low"]["cpu.weight"] == 100


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_shares_do_not_matter_without_contention(policy: str) -> None:
    # One hog per group on 2 CPUs: each runs alone on a CPU, 100 % each despite 2048 vs 1024.
    result = two_groups({"cpu.shares": 2048}, {"cpu.shares": 1024}, 1, policy)
    assert usage(result, "/high") == usage(result, "/low") == result.duration_ns


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_hierarchical_weights_multiply_down_the_tree(policy: str) -> None:
    # All on CPU 0. /a (1024) and /b (1024) split it 1:1; inside /a, /a/x (1024) and /a/y (3072)
    # split /a's half 1:3 → x 12.5 %, y 37.5 %, b 50 %.
    sim = cfssim.Simulation(cpus=2, policy=policy, seed=1)
    sim.add_cgroup("/a/x", {"cpu.shares": 1024})
    sim.add_cgroup("/a/y", {"cpu.shares": 3072})
    sim.add_cgroup("/b")
    for name, path in (("x", "/a/x"), ("y", "/a/y"), ("b", "/b")):
        sim.add_process(name, cgroup=path, behaviour=FOREVER, cpus=[0])
    result = sim.run("10s")
    for path, expected in (("/a/x", 0.125), ("/a/y", 0.375), ("/b", 0.5), ("/a", 0.5)):
        assert usage(result, path) / result.duration_ns == pytest.approx(expected, abs=0.005)


def test_cpuacct_is_hierarchical_and_per_cpu() -> None:
    # cpuacct charges a task's group and every ancestor; usage = Σ usage_percpu; the root's
    # usage is all the CPU time of the run.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/a/x")
    sim.add_process("x", cgroup="/a/x", behaviour=FOREVER, cpus=[1])
    sim.add_process("a", cgroup="/a", behaviour=cfssim.program(run="1ms", sleep="1ms"), cpus=[0])
    result = sim.run("1s")
    assert result.cgroups["/a/x"]["cpuacct.usage_percpu"] == [0, s(1)]
    assert result.cgroups["/a"]["cpuacct.usage_percpu"] == [ms(500), s(1)]
    assert usage(result, "/") == usage(result, "/a") == ms(1500)


# ==== autogroup =================================================================================
@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_autogroup_nice_matters_within_a_session_only(policy: str) -> None:
    # Root-cgroup tasks are grouped per session (autogroup, each group nice 0 = 1024). CPU 0:
    # nice 0 and nice 5 in one session → 1024 : 335 = 75.4 % / 24.6 %. CPU 1: the same nice
    # levels in two sessions → their groups weigh 1024 each: 50 / 50 (kernel measured 50.6 /
    # 49.4, docs/kernel-facts.md#autogroup).
    sc = cfssim.load_scenario(SCENARIOS / "nice-autogroup.yaml")
    result = cfssim.run_scenario(sc, policy=policy)
    fraction = {name: fig["cpu_time_ns"] / result.duration_ns for name, fig in result.tasks.items()}
    assert fraction["same-nice0/0"] == pytest.approx(1024 / 1359, abs=0.005)
    assert fraction["same-nice5/0"] == pytest.approx(335 / 1359, abs=0.005)
    assert fraction["own-nice0/0"] == pytest.approx(0.5, abs=0.005)
    assert fraction["own-nice5/0"] == pytest.approx(0.5, abs=0.005)
    assert all(fig["cgroup"] == "/" for fig in result.tasks.values())  # autogroups are hidden


def test_without_autogroup_nice_matters_across_sessions() -> None:
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1, autogroup=False)
    sim.add_process("n0", session="a", behaviour=FOREVER, cpus=[0])
    sim.add_process("n5", session="b", nice=5, behaviour=FOREVER, cpus=[0])
    result = sim.run("5s")
    assert result.tasks["n0/0"]["cpu_time_ns"] / result.duration_ns == pytest.approx(
        1024 / 1359, abs=0.005
    )


def test_autogroup_does_not_apply_outside_the_root_cgroup() -> None:
    # Autogroup only regroups tasks of the root cgroup: in /app, nice counts across sessions.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/app")
    sim.add_process("n0", session="a", cgroup="/app", behaviour=FOREVER, cpus=[0])
    sim.add_process("n5", session="b", cgroup="/app", nice=5, behaviour=FOREVER, cpus=[0])
    result = sim.run("5s")
    assert result.tasks["n5/0"]["cpu_time_ns"] / result.duration_ns == pytest.approx(
        335 / 1359, abs=0.005
    )


# ==== moves =====================================================================================
def test_moving_a_process_between_cgroups_at_runtime() -> None:
    # A hog alone on CPU 0: 100 % in /; moved into /lim (25 ms/100 ms) at 1 s it gets 25 % per
    # period (± one tick of overrun); moved back at 2 s, 100 % again. cpuacct charges each
    # cgroup only for the time the task spent in it; the task reports its final cgroup.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/lim", {"cpu.cfs_quota_us": 25_000})
    sim.add_process("a", behaviour=FOREVER, cpus=[0])
    sim.at("1s", lambda: sim.move("a", "/lim"))
    sim.at("2s", lambda: sim.move("a", "/"))
    result = sim.run("3s")
    assert cpu_time_between(result, "a/0", 0, s(1)) == s(1)
    for start in range(s(1), s(2), ms(100)):
        assert abs(cpu_time_between(result, "a/0", start, start + ms(100)) - ms(25)) <= ms(4)
    assert cpu_time_between(result, "a/0", s(2), s(3)) == s(1)
    assert usage(result, "/lim") == cpu_time_between(result, "a/0", s(1), s(2))
    assert result.tasks["a/0"]["cgroup"] == "/"


def test_moving_one_thread_leaves_the_others() -> None:
    # Thread 1 of a 2-thread hog moves into /slow (shares 2) at 0.5 s; both pinned to CPU 0
    # beside a root hog: afterwards the root-level entities are (root hog's autogroup,
    # thread 0's autogroup — the same one) and /slow (weight 2): thread 1 nearly stops.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/slow", {"cpu.shares": 2})
    sim.add_process("p", threads=2, behaviour=FOREVER, cpus=[0])
    sim.at("500ms", lambda: sim.move("p", "/slow", thread=1))
    result = sim.run("2s")
    assert result.tasks["p/1"]["cgroup"] == "/slow"
    assert result.tasks["p/0"]["cgroup"] == "/"
    after = cpu_time_between(result, "p/1", ms(600), s(2))
    assert after / ms(1400) < 0.01  # weight 2 against 1024: ≈ 0.2 %


# ==== cpuset ====================================================================================
def test_cpuset_cpus_confines_a_cgroup_and_follows_writes() -> None:
    # /cs cpuset 1-2 on 4 CPUs: its 4 hogs share CPUs 1 and 2 (50 % each); after
    # `cpuset.cpus = 3` at 1 s they all run on CPU 3 (25 % each). Tasks outside are unaffected.
    sim = cfssim.Simulation(cpus=4, policy="cfs", seed=1)
    sim.add_cgroup("/cs", {"cpuset.cpus": "1-2"})
    sim.add_process("a", threads=4, cgroup="/cs", behaviour=FOREVER)
    sim.add_process("free", behaviour=FOREVER)
    sim.at("1s", lambda: sim.write("/cs", {"cpuset.cpus": "3"}))
    result = sim.run("2s")
    for index in range(4):
        name = f"a/{index}"
        assert task_cpus(result, name, 0, s(1)) <= {1, 2}
        assert task_cpus(result, name, s(1)) == {3}
        assert cpu_time_between(result, name, ms(1100), s(2)) == pytest.approx(ms(225), abs=ms(15))
    assert result.cgroups["/cs"]["cpuset.cpus"] == "3"
    assert task_cpus(result, "free/0") == {0}


def test_cpuset_wins_over_an_affinity_it_no_longer_intersects() -> None:
    # b is pinned to {0, 2} inside /cs (cpuset 1-2: it runs on 2). After cpuset.cpus = 3 the
    # intersection is empty; set_cpus_allowed then uses the cpuset's CPUs: b must run on 3.
    sim = cfssim.Simulation(cpus=4, policy="cfs", seed=1)
    sim.add_cgroup("/cs", {"cpuset.cpus": "1-2"})
    sim.add_process("b", cgroup="/cs", cpus=[0, 2], behaviour=FOREVER)
    sim.at("1s", lambda: sim.write("/cs", {"cpuset.cpus": "3"}))
    result = sim.run("2s")
    assert task_cpus(result, "b/0", 0, s(1)) == {2}
    assert task_cpus(result, "b/0", ms(1001)) == {3}
