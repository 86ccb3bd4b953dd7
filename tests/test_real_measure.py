"""`cfssim.real.measure` on the real kernel: figures, OOM kills, refusals, cleanup after a crash.

The kernel facts asserted here were measured on the 2-CPU 6.18 development machines (see
docs/kernel-facts.md); tolerances leave room for background load.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfssim.real import cgroupfs, measure
from cfssim.real.errors import ControllerMissing, NotRoot, RealRunError, Refused

MS = 1_000_000
scenario_module = pytest.importorskip("cfssim.scenario")
if not hasattr(scenario_module, "load_scenario"):
    pytest.skip("cfssim.scenario.load_scenario is not there yet", allow_module_level=True)
load_scenario = scenario_module.load_scenario

HOG = """
name: hog
duration: 1s
machine: {cpus: 2}
cgroups:
  /app: {cpu.cfs_quota_us: 50000, cpu.cfs_period_us: 100000}
processes:
  - {name: hog, cgroup: /app, repeat: forever, program: [{run: forever}]}
"""
OOM = """
name: oom
duration: 1s
machine: {cpus: 2}
cgroups:
  /box: {memory.limit_in_bytes: 100MiB}
processes:
  - {name: eater, cgroup: /box, program: [{alloc: 200MiB}, {sleep: 1s}]}
"""
UNLIMITED_ALLOC = """
name: unlimited
duration: 1s
machine: {cpus: 2}
processes:
  - {name: eater, program: [{alloc: 1MiB}]}
"""


def usable() -> cgroupfs.Layout:
    try:
        return cgroupfs.detect()
    except RealRunError as exc:
        pytest.skip(f"cannot measure on this machine: {exc.message}")


# ---- refusals (no kernel needed) --------------------------------------------------------------
def test_alloc_without_an_enclosing_memory_limit_is_refused() -> None:
    with pytest.raises(Refused, match=r"'eater' allocates memory in cgroup '/'.*--force"):
        measure(load_scenario(UNLIMITED_ALLOC))


def test_duration_above_the_cap_is_refused() -> None:
    with pytest.raises(Refused, match="duration: expected at most 500ms"):
        measure(load_scenario(HOG), max_duration_ns=500 * MS)


def test_non_root_and_missing_controller_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NotRoot) as info:
        measure(load_scenario(HOG))
    assert info.value.exit_status == NotRoot.exit_status
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    no_memory = [
        m for m in cgroupfs.read_mounts() if "memory" not in m.options and m.fstype == "cgroup"
    ]
    monkeypatch.setattr(cgroupfs, "read_mounts", lambda: no_memory)
    with pytest.raises(ControllerMissing, match="memory"):
        measure(load_scenario(HOG))


# ---- real runs --------------------------------------------------------------------------------
@pytest.mark.kernel
def test_one_hog_under_half_a_cpu_quota() -> None:
    usable()
    result = measure(load_scenario(HOG))
    stat = result.cgroups["/app"]["cpu.stat"]
    usage = result.cgroups["/app"]["cpuacct.usage"]
    assert result.source == "kernel" and result.policy.startswith("kernel-")
    # 10 periods of 50 ms quota, and the period timer starts at the first run: 10 or 11 periods
    assert 500 * MS - 15 * MS <= usage <= 550 * MS + 15 * MS
    assert stat["nr_periods"] in (10, 11)
    assert stat["nr_throttled"] >= stat["nr_periods"] - 2
    # each throttled period costs ~49 ms of throttled_time on a quiet machine (one CPU,
    # task-based throttling); background load delays the quota's exhaustion and shortens it
    throttled = stat["nr_throttled"]
    assert stat["throttled_time"] <= 52 * MS * throttled
    if result.meta["background_cpu_fraction"] < 0.05:
        assert stat["throttled_time"] >= 45 * MS * throttled
    task = result.tasks["hog/0"]
    assert task["cgroup"] == "/app" and task["exit"] is None
    assert abs(task["cpu_time_ns"] - usage) < 2 * MS
    assert "background_cpu_fraction" in result.meta
    assert len(result.trace["periods"]["start"]) >= 8


SLEEPERS = """
name: sleepers
duration: 200ms
machine: {cpus: 2%s}
processes:
  - {name: nap, repeat: forever, program: [{run: 1ms}, {sleep: 9ms}]}
"""


@pytest.mark.kernel
def test_workers_get_the_scenarios_timer_slack_and_the_run_reports_it() -> None:
    # A normal thread's hrtimer slack is init_task's 50 µs unless set; the twin writes a
    # scenario's timer_slack_ns into /proc/<tid>/timerslack_ns and reports what threads had,
    # which as_measured hands to the simulation.
    from cfssim.real.measure import as_measured

    usable()
    default = measure(load_scenario(SLEEPERS % ""))
    inherited = int(Path("/proc/self/timerslack_ns").read_text())  # 50 µs unless set for us
    assert default.meta["timer_slack_ns"] == inherited
    scenario = load_scenario(SLEEPERS % ", timer_slack_ns: 200us")
    assert measure(scenario).meta["timer_slack_ns"] == 200_000
    assert as_measured(default, load_scenario(SLEEPERS % "")).machine.timer_slack_ns == inherited


@pytest.mark.kernel
def test_the_oom_killer_is_told_apart_from_other_deaths() -> None:
    usable()
    result = measure(load_scenario(OOM))
    box = result.cgroups["/box"]
    assert box["memory.oom_control"]["oom_kill"] == 1
    assert box["memory.max_usage_in_bytes"] == 100 << 20
    # the fault's charge failed 19 times before the OOM killer, 17 after it chose the eater
    # (try_charge_memcg, MAX_RECLAIM_RETRIES = 16): the model's count, and the kernel's in most
    # runs; a victim that faults again before its SIGKILL lands adds more (78 seen once)
    assert box["memory.failcnt"] >= 36
    (kill,) = result.kills
    assert kill["process"] == "eater" and kill["reason"] == "oom_kill"
    assert result.tasks["eater/0"]["exit"]["reason"] == "oom_kill"


@pytest.mark.kernel
def test_a_victims_figures_are_fresh_whatever_the_sampling_interval() -> None:
    """The eater touches pages for ~60 ms of CPU before the kill; its figures are saved every
    10 ms even when the timelines are sampled once a second."""
    usable()
    result = measure(load_scenario(OOM), sample_interval_ns=1_000_000_000)
    eater = result.tasks["eater/0"]
    assert eater["exit"]["reason"] == "oom_kill"
    assert eater["cpu_time_ns"] >= 20 * MS, eater["cpu_time_ns"]


# ---- cleanup after a crash --------------------------------------------------------------------
RUNNER = """
import sys
from cfssim.scenario import load_scenario
from cfssim.real import measure
measure(load_scenario(sys.stdin.read()))
"""


def _worker_processes(binary: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "exe") == str(binary):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.kernel
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_killed_run_leaves_nothing_after_cleanup(signum: int) -> None:
    layout = usable()
    from cfssim.real.worker import worker_binary

    binary = worker_binary()
    rng = random.Random(signum)
    for _ in range(3):
        runner = subprocess.Popen(
            [sys.executable, "-c", RUNNER], stdin=subprocess.PIPE, cwd=Path(__file__).parents[1]
        )
        assert runner.stdin is not None
        runner.stdin.write(HOG.encode())
        runner.stdin.close()
        time.sleep(rng.uniform(0.05, 0.8))  # before, during or after the set-up
        runner.send_signal(signum)
        runner.wait(timeout=10)
        cgroupfs.cleanup_leftovers(layout)
        mine = [p for h in layout.hierarchies for p in h.glob(f"{cgroupfs.PREFIX}{runner.pid}.*")]
        assert mine == []
        deadline = time.monotonic() + 2
        while _worker_processes(binary) and time.monotonic() < deadline:
            time.sleep(0.02)  # PR_SET_PDEATHSIG kills them, asynchronously
        assert _worker_processes(binary) == []


def test_as_measured_gives_the_simulation_the_kernel_runs_phases() -> None:
    # The twin measures the tick phase and each quota'd group's period phase (random per group
    # since Linux 6.4); the simulation must run with the same ones, and without autogroups (the
    # twin's "/" is its own cgroup).
    from cfssim import Result, load_scenario
    from cfssim.real.measure import as_measured
    from cfssim.scenario import bundled_scenarios

    scenario = load_scenario(bundled_scenarios()["nested-quota"])
    phases = {"/parent": 0, "/parent/batch": 50_622_272}
    kernel = Result(
        source="kernel",
        scenario="nested-quota",
        policy="eevdf",
        cpus=2,
        duration_ns=1,
        seed=None,
        meta={"tick_offset_ns": 1_234_567, "period_phase_ns": phases},
    )
    machine = as_measured(kernel, scenario).machine
    assert (machine.tick_offset_ns, machine.period_phase_ns, machine.autogroup) == (
        1_234_567,
        phases,
        False,
    )
    assert as_measured(None, scenario).machine.period_phase_ns == {}


def test_as_measured_takes_the_slack_the_threads_had_unless_the_scenario_sets_one() -> None:
    from cfssim import Result
    from cfssim.real.measure import as_measured

    kernel = Result(
        source="kernel",
        scenario="sleepers",
        policy="eevdf",
        cpus=2,
        duration_ns=1,
        seed=None,
        meta={"timer_slack_ns": 50_000},
    )
    assert as_measured(kernel, load_scenario(SLEEPERS % "")).machine.timer_slack_ns == 50_000
    chosen = load_scenario(SLEEPERS % ", timer_slack_ns: 1us")
    assert as_measured(kernel, chosen).machine.timer_slack_ns == 1_000


def test_a_stopped_process_is_seen_stopped_whatever_its_name(tmp_path: Path) -> None:
    # /proc/<pid>/task/*/stat: "pid (comm) state …", and comm (the executable's name) may hold
    # ") " itself
    import shutil

    from cfssim.real import procfs

    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs Linux /proc")
    odd = tmp_path / "a) T (b c"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "10"])
    try:
        deadline = time.monotonic() + 2
        while "a) T" not in Path(f"/proc/{child.pid}/stat").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not procfs.stopped(child.pid)  # sleeping (S): it could run again
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 2
        while not procfs.stopped(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert procfs.stopped(child.pid)
    finally:
        child.kill()
        child.wait()
    assert procfs.stopped(child.pid)  # gone
