"""`cfssim.compare`: figure-by-figure verdicts against the real twin's tolerances, and the
``cfssim compare A_DIR B_DIR`` command (no kernel needed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import cfssim
from cfssim.compare import FAIL, INFO, PASS, Tolerances, compare, kill_order, lookup
from cfssim.real.commands import compare_command
from cfssim.result import Result, TaskFigures, task_figures

MS = 1_000_000
S = 1_000_000_000


def result(source: str = "kernel") -> Result:
    """A 2-CPU, 1 s run: two hogs in /app under 50 ms / 100 ms, and one OOM victim."""

    def task(
        process: str,
        cgroup: str,
        cpu: int,
        wait: int,
        slices: int,
        exit: dict[str, Any] | None = None,
    ) -> TaskFigures:
        return task_figures(
            process=process,
            cgroup=cgroup,
            nice=0,
            policy="normal",
            cpu_time_ns=cpu,
            wait_time_ns=wait,
            timeslices=slices,
            nr_switches=slices,
            nr_voluntary_switches=slices,
            nr_involuntary_switches=0,
            nr_migrations=0,
            wakeups=slices,
            wakeup_latency_ns=None,
            vruntime=0,
            max_rss_bytes=None,
            exit=exit,
        )

    tasks = {
        "hog/0": task("hog", "/app", 500 * MS, 400 * MS, 100),
        "hog/1": task("hog", "/app", 500 * MS, 400 * MS, 100),
        "eater/0": task("eater", "/box", 60 * MS, 0, 3, {"time_ns": 70 * MS, "reason": "oom_kill"}),
    }
    cgroups = {
        "/app": {
            "cpuacct.usage": 1000 * MS,
            "cpu.stat": {
                "nr_periods": 10,
                "nr_throttled": 9,
                "throttled_time": 1000 * MS,
                "nr_bursts": 0,
                "burst_time": 0,
            },
        },
        "/box": {
            "cpuacct.usage": 60 * MS,
            "memory.max_usage_in_bytes": 100 << 20,
            "memory.failcnt": 36,
            "memory.oom_control": {"oom_kill": 1},
        },
    }
    kills = [{"process": "eater", "cgroup": "/box", "time_ns": 70 * MS, "reason": "oom_kill"}]
    return Result(
        source=source,
        scenario="mix",
        policy="p",
        cpus=2,
        duration_ns=S,
        seed=1,
        tasks=tasks,
        cgroups=cgroups,
        kills=kills,
    )


def verdict(run_a: Result, run_b: Result, subject: str, figure: str) -> str:
    rows = [r for r in compare(run_a, run_b).rows if (r.subject, r.figure) == (subject, figure)]
    assert len(rows) == 1, rows
    return rows[0].verdict


def test_a_run_agrees_with_itself_and_unjudged_figures_are_info() -> None:
    comparison = compare(result("simulation"), result())
    assert comparison.ok and comparison.labels == ("simulation", "kernel")
    by_figure = {(r.subject, r.figure): r for r in comparison.rows}
    assert by_figure[("hog/0", "wait_time_ns")].verdict == INFO
    assert by_figure[("hog/0", "cpu_time_ns")].verdict == PASS
    assert by_figure[("/app", "cpu.stat.nr_throttled")].rule == "±2"
    assert by_figure[("order", "victims")].a == "eater"


def test_cpu_time_is_judged_against_five_percent_of_capacity() -> None:
    # capacity = 2 CPUs × 1 s = 2 s → ±100 ms, however small the task's own CPU time
    assert verdict(_cpu(600 * MS), result(), "hog/0", "cpu_time_ns") == PASS
    assert verdict(_cpu(600 * MS + 1), result(), "hog/0", "cpu_time_ns") == FAIL
    row = next(r for r in compare(_cpu(550 * MS), result()).rows if r.figure == "cpu_time_ns")
    assert row.abs_diff == 50 * MS and row.rel_diff == 0.1


def _cpu(ns: int) -> Result:
    run = result("simulation")
    run.tasks["hog/0"]["cpu_time_ns"] = ns
    return run


def test_period_counts_within_two_and_throttled_time_within_twenty_percent() -> None:
    sim = result("simulation")
    sim.cgroups["/app"]["cpu.stat"].update(nr_periods=12, nr_throttled=6, throttled_time=1200 * MS)
    assert verdict(sim, result(), "/app", "cpu.stat.nr_periods") == PASS
    assert verdict(sim, result(), "/app", "cpu.stat.nr_throttled") == FAIL
    assert verdict(sim, result(), "/app", "cpu.stat.throttled_time") == PASS
    sim.cgroups["/app"]["cpu.stat"]["throttled_time"] = 1200 * MS + 1
    assert verdict(sim, result(), "/app", "cpu.stat.throttled_time") == FAIL


def test_tiny_times_pass_under_the_floor() -> None:
    sim, kernel = result("simulation"), result()
    kernel.cgroups["/app"]["cpu.stat"]["burst_time"] = MS - 1  # 0 against < 1 ms
    assert verdict(sim, kernel, "/app", "cpu.stat.burst_time") == PASS
    strict = Tolerances(time_floor_ns=0)
    row = next(r for r in compare(sim, kernel, strict).rows if r.figure == "cpu.stat.burst_time")
    assert row.verdict == FAIL


def test_oom_victims_order_and_kill_times() -> None:
    kernel = result()
    kernel.kills.append({"process": "other", "time_ns": 200 * MS, "reason": "oom_kill"})
    kernel.kills.append({"process": "victim", "time_ns": 300 * MS, "reason": "killed"})
    sim = result("simulation")
    sim.kills = [
        {"process": "other", "time_ns": 65 * MS, "reason": "oom_kill"},
        {"process": "eater", "time_ns": 210 * MS, "reason": "oom_kill"},
    ]
    assert kill_order(kernel.kills) == ["eater", "other"]  # kills by an event are not OOM kills
    comparison = compare(sim, kernel)
    rows = {(r.subject, r.figure): r for r in comparison.rows if r.kind == "kills"}
    assert rows[("order", "victims")].verdict == FAIL
    assert rows[("#1", "time_ns")].verdict == PASS  # 65 ms vs 70 ms: within 10%
    assert rows[("#2", "time_ns")].verdict == PASS  # 210 ms vs 200 ms: exactly 5%
    sim.kills[0]["time_ns"] = 62 * MS  # 8 ms off 70 ms: beyond 10%
    assert verdict(sim, kernel, "#1", "time_ns") == FAIL


def _latency(run: Result, task: str, p50: int, p99: int) -> Result:
    run.tasks[task]["wakeup_latency_ns"] = {"p50": p50, "p99": p99, "max": p99, "mean": p50}
    return run


def test_wakeup_latency_within_a_tick_or_thirty_percent_given_enough_wakeups() -> None:
    # hog/x: 100 wakeups each (p50 and p99 judged); eater/0: 3 (too few: info)
    kernel = _latency(_latency(result(), "hog/0", 20 * MS, 40 * MS), "hog/1", 10_000, 5 * MS)
    sim = _latency(
        _latency(result("simulation"), "hog/0", 26 * MS, 53 * MS), "hog/1", 4 * MS + 10_000, 9 * MS
    )
    rows = {(r.subject, r.figure): r for r in compare(sim, kernel).rows}
    assert rows[("hog/0", "wakeup_latency_ns.p50")].verdict == PASS  # 30% of 20 ms = 6 ms
    assert rows[("hog/0", "wakeup_latency_ns.p99")].verdict == FAIL  # 13 ms > 12 ms
    assert rows[("hog/1", "wakeup_latency_ns.p50")].verdict == PASS  # 4 ms: one tick at HZ=250
    assert rows[("hog/1", "wakeup_latency_ns.p99")].verdict == PASS  # 4 ms ≥ 30% of 5 ms
    assert rows[("hog/0", "wakeup_latency_ns.p50")].rule == "±30%, ≥ 4ms"
    assert rows[("hog/0", "wakeup_latency_ns.max")].verdict == INFO
    sim.tasks["hog/1"]["wakeup_latency_ns"]["p50"] = 4 * MS + 10_001
    assert verdict(sim, kernel, "hog/1", "wakeup_latency_ns.p50") == FAIL
    sim.meta["hz"] = 100  # a 10 ms tick
    assert verdict(sim, kernel, "hog/1", "wakeup_latency_ns.p50") == PASS
    # p99 of 99 wakeups is not judged, p50 still is; 9 wakeups: neither
    for run in (sim, kernel):
        run.tasks["hog/0"]["wakeups"] = 99
    assert verdict(sim, kernel, "hog/0", "wakeup_latency_ns.p99") == INFO
    kernel.tasks["hog/0"]["wakeups"] = 9
    assert verdict(sim, kernel, "hog/0", "wakeup_latency_ns.p50") == INFO


def test_latency_unknown_on_one_side_is_info_and_absent_on_both_has_no_row() -> None:
    sim = _latency(result("simulation"), "hog/0", 20 * MS, 40 * MS)
    comparison = compare(sim, result())  # measured without --trace: no latency
    assert comparison.ok
    assert verdict(sim, result(), "hog/0", "wakeup_latency_ns.p50") == INFO
    assert not any(
        r.figure.startswith("wakeup_latency") and r.subject == "hog/1" for r in comparison.rows
    )


def test_missing_task_or_exit_on_one_side_fails() -> None:
    sim = result("simulation")
    del sim.tasks["hog/1"]
    sim.tasks["eater/0"]["exit"] = None
    comparison = compare(sim, result())
    failed = {(r.subject, r.figure) for r in comparison.failures}
    assert ("hog/1", "cpu_time_ns") in failed
    assert ("eater/0", "exit.reason") in failed  # running vs oom_kill
    assert ("eater/0", "exit.time_ns") in failed


def test_lookup_follows_kernel_file_names_with_dots() -> None:
    figures = result().cgroups["/box"]
    assert lookup(figures, "memory.oom_control.oom_kill") == 1
    assert lookup(figures, "memory.max_usage_in_bytes") == 100 << 20
    assert lookup(figures, "cpu.stat.nr_periods") is None


@given(
    cpu=st.integers(0, 2 * S),
    periods=st.integers(0, 1000),
    throttled=st.integers(0, 10 * S),
)
def test_any_result_compared_with_itself_passes(cpu: int, periods: int, throttled: int) -> None:
    run = result()
    run.tasks["hog/0"]["cpu_time_ns"] = cpu
    run.cgroups["/app"]["cpu.stat"].update(nr_periods=periods, throttled_time=throttled)
    assert compare(copy.deepcopy(run), run).ok


def test_cli_compares_two_result_directories(tmp_path: Path) -> None:
    sim = result("simulation")
    sim.cgroups["/app"]["cpu.stat"]["nr_throttled"] = 3
    sim.save(tmp_path / "a")
    result().save(tmp_path / "b")
    runner = CliRunner()
    args = [str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "out")]
    table = runner.invoke(compare_command, [*args, "--verdicts-only"])
    assert table.exit_code == 0, table.output
    assert "nr_throttled" in table.output and "wait_time_ns" not in table.output
    assert "1 figure(s) out of tolerance" in table.output
    assert (tmp_path / "out" / "compare.html").stat().st_size > 0
    checked = runner.invoke(compare_command, [*args, "--format", "json", "--check"])
    assert checked.exit_code == 1
    data = json.loads(checked.output)
    assert data["failures"] == 1 and data["labels"] == ["simulation", "kernel"]
    failed = [r for r in data["rows"] if r["verdict"] == FAIL]
    assert failed[0]["figure"] == "cpu.stat.nr_throttled" and failed[0]["abs_diff"] == -6
    missing = runner.invoke(compare_command, [str(tmp_path / "a"), str(tmp_path / "none")])
    assert missing.exit_code == 2 and "expected a result directory" in missing.output


def test_a_result_json_with_wrong_types_is_refused_naming_the_field(tmp_path: Path) -> None:
    from cfssim.result import ResultError

    base = {
        "source": "simulation",
        "scenario": "x",
        "policy": "eevdf",
        "cpus": 2,
        "duration_ns": 1,
        "seed": 1,
        "tasks": {},
        "cgroups": {},
    }
    for field, value, says in (
        ("cpus", "x", 'expected cpus to be a positive integer, found "x"'),
        ("duration_ns", -5, "a non-negative integer, found -5"),
        ("source", "sim", "'simulation' or 'kernel', found \"sim\""),
        ("tasks", [], "tasks to be an object, found []"),
    ):
        path = tmp_path / "result.json"
        path.write_text(json.dumps({**base, field: value}))
        with pytest.raises(ResultError, match="expected") as raised:
            Result.from_json(path)
        assert says in str(raised.value)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ResultError, match="bytes that are not UTF-8"):
        Result.from_json(path)


def test_a_processs_threads_killed_at_once_are_one_oom_kill() -> None:
    # the simulator lists each killed thread, the twin the process; oom_kill_process kills the
    # thread group once (memory.oom_control's oom_kill counts 1): both are one kill
    kernel = result()
    kernel.kills = [{"process": "alloc", "time_ns": 280 * MS, "reason": "oom_kill"}]
    sim = result("simulation")
    sim.kills = [
        {"task": f"alloc/{n}", "process": "alloc", "time_ns": 277 * MS, "reason": "oom_kill"}
        for n in range(3)
    ]
    assert kill_order(sim.kills) == ["alloc"]
    rows = {(r.subject, r.figure): r for r in compare(sim, kernel).rows if r.kind == "kills"}
    assert set(rows) == {("order", "victims"), ("#1", "time_ns")}
    assert rows[("order", "victims")].verdict == PASS
    assert rows[("#1", "time_ns")].a == 277 * MS


def test_a_simulated_hosts_noise_tasks_are_left_out_of_the_comparison() -> None:
    from cfssim.host import HostModel, HostNoise, lognormal

    noise = HostNoise(200, lognormal(20_000, 0))
    noisy = cfssim.Simulation(cpus=2, seed=1, host=HostModel(noise=(noise,)))
    quiet = cfssim.Simulation(cpus=2, seed=1)
    for sim in (noisy, quiet):
        sim.add_process("hog", cfssim.program(run="forever"), threads=2)
    with_noise, without = noisy.run("1s"), quiet.run("1s")
    assert {"host-noise-cpu0/0", "host-noise-cpu1/0"} <= set(with_noise.tasks)
    comparison = compare(with_noise, without)
    assert not [row for row in comparison.rows if row.subject.startswith("host-noise")]
    assert any("2 host-noise task(s)" in note for note in comparison.notes)
    assert not [row for row in comparison.rows if row.verdict == FAIL and row.kind == "task"]
