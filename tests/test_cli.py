"""The command line: validate, schema, scenarios, and run's error paths (exit 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cfssim.cli import main, summary_rows
from cfssim.result import Result
from cfssim.scenario import SCHEMA_FILE, bundled_scenarios, scenario_json_schema

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "bad_scenarios"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_ok_lines() -> None:
    code, out, _ = invoke("validate", *map(str, bundled_scenarios().values()))
    assert code == 0
    assert out.count("\nok ") + out.startswith("ok ") == len(bundled_scenarios())
    assert "seed-quota, 3s, 1 processes (2 threads), 2 cgroups, 1 events" in out


def test_validate_bundled_name() -> None:
    code, out, _ = invoke("validate", "shares")
    assert code == 0 and out.startswith("ok shares: shares, 3s")


def test_validate_errors_exit_2_on_stderr() -> None:
    bad = BAD / "unknown-key-process.yaml"
    code, out, err = invoke("validate", "shares", str(bad))
    assert code == 2
    assert out.startswith("ok shares")
    assert (
        f"{bad}:7:5: processes[0].cgrop: expected a known key (did you mean 'cgroup'?), "
        "found unknown key 'cgrop'"
    ) in err
    assert "Traceback" not in err


def test_validate_limits_flags() -> None:
    code, _, err = invoke("validate", "--max-tasks", "1", "seed-quota")
    assert code == 2 and "--max-tasks" in err
    code, _, err = invoke("validate", "--max-duration", "soon", "seed-quota")
    assert code == 2 and "expected a duration" in err


def test_schema_stdout_and_file(tmp_path: Path) -> None:
    code, out, _ = invoke("schema")
    assert code == 0 and json.loads(out) == scenario_json_schema()
    target = tmp_path / "s.json"
    code, _, _ = invoke("schema", "-o", str(target))
    assert code == 0 and target.read_text() == (ROOT / SCHEMA_FILE).read_text()


def test_scenarios_table() -> None:
    code, out, _ = invoke("scenarios")
    assert code == 0
    for name in bundled_scenarios():
        assert name in out


def test_run_bad_scenario_exit_2_without_traceback() -> None:
    bad = BAD / "quota-below-1ms.yaml"
    code, _, err = invoke("run", str(bad), "--no-report")
    assert code == 2
    assert f"{bad}:7:23: cgroups./app.cpu.cfs_quota_us: expected a quota of at least" in err
    assert "Traceback" not in err


def test_run_unknown_scenario_and_bad_options() -> None:
    code, _, err = invoke("run", "no-such-scenario")
    assert code == 2 and "expected a YAML file or a bundled scenario" in err
    code, _, err = invoke("run", "seed-quota", "--duration", "forever")
    assert code == 2 and "--duration" in err
    code, _, err = invoke("run", "seed-quota", "--policy", "bfs")
    assert code == 2 and "bfs" in err


def test_summary_rows_from_a_result() -> None:
    result = Result(
        source="simulation",
        scenario="s",
        policy="eevdf",
        cpus=2,
        duration_ns=2_000_000_000,
        seed=1,
        tasks={
            "go/0": {
                "cgroup": "/a",
                "cpu_time_ns": 1_000_000_000,
                "wait_time_ns": 5,
                "nr_switches": 7,
                "exit": {"time_ns": 1, "reason": "oom_kill"},
            }
        },
        cgroups={
            "/a": {
                "cpu.stat": {"nr_periods": 20, "nr_throttled": 10, "throttled_time": 300},
                "cpuacct.usage": 1_000_000_000,
                "memory.max_usage_in_bytes": 4096,
                "memory.oom_control": {"oom_kill": 1},
            }
        },
    )
    task, group = summary_rows(result)
    assert (task["name"], task["cpu_percent"], task["nr_switches"], task["exit"]) == (
        "go/0",
        50.0,
        7,
        "oom_kill",
    )
    assert (group["nr_throttled"], group["throttled_time_ns"], group["oom_kill"]) == (10, 300, 1)


def test_measure_and_compare_take_a_sampling_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--sample-interval`` reaches the twin (default 10 ms); a bad one is a usage error, and
    one given where nothing is measured is refused rather than ignored."""
    import importlib

    from cfssim.real import commands
    from cfssim.real.errors import Refused

    measure_module = importlib.import_module("cfssim.real.measure")  # the package re-exports
    seen: list[int] = []

    def fake_measure(scenario: object, *args: object, sample_interval_ns: int, **_: object) -> None:
        seen.append(sample_interval_ns)
        raise Refused("stopped here by the test")

    monkeypatch.setattr(measure_module, "measure", fake_measure)
    runner = CliRunner()
    for command in (commands.measure_command, commands.compare_command):
        assert runner.invoke(command, ["seed-quota"]).exit_code == Refused.exit_status
        outcome = runner.invoke(command, ["seed-quota", "--sample-interval", "1s"])
        assert outcome.exit_code == Refused.exit_status
        for bad, says in (
            ("10us", "expected at least 1ms, found '10us'"),
            ("0", "expected at least 1ms, found '0'"),
            ("abc", "'abc'"),
            ("-1s", "'-1s'"),
        ):
            refused = runner.invoke(command, ["seed-quota", "--sample-interval", bad])
            assert refused.exit_code == 2, (bad, refused.output)
            assert says in refused.output and isinstance(refused.exception, SystemExit)
    assert seen == [10_000_000, 1_000_000_000] * 2
    unused = (
        (commands.measure_command, ["--cleanup"]),
        (commands.compare_command, [str(tmp_path), str(tmp_path)]),
    )
    for command, args in unused:
        refused = runner.invoke(command, [*args, "--sample-interval", "1s"])
        assert refused.exit_code == 2 and "--sample-interval: " in refused.output


def test_limits_must_be_positive() -> None:
    code, _, err = invoke("run", "seed-quota", "--max-duration", "-1s", "--no-report")
    assert code == 2 and "expected a positive duration, found '-1s'" in err


# ---- one loader: rt-app JSON wherever YAML goes, and YAML without the rt-app reader ------------
RTAPP = (
    '{"global": {"duration": 1}, "tasks": {"t": {"instance": 2, "run": 1000, '
    '"timer": {"ref": "tick", "period": 10000}}}}'
)


def test_validate_takes_an_rtapp_workload(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text(RTAPP)
    code, out, err = invoke("validate", str(path))
    assert code == 0
    assert out == f"ok {path}: w, 1s, 1 processes (2 threads), 1 cgroups, 0 events\n"
    # the timer is shared by the two threads: its YAML view is a sleep, which is said
    assert f"warning: {path}:1:" in err and "tasks.t.timer: timer written as a sleep" in err


def test_run_duration_applies_to_an_rtapp_workload(tmp_path: Path) -> None:
    """``run --duration`` replaces the workload's ``global.duration`` (1 s) as it does a
    scenario's. The two threads share timer "tick": each use advances it one 10 ms period, so
    both run 1 ms at 0 and then one of them at each of 10, 20, … 290 ms: 31 ms of CPU."""
    path = tmp_path / "w.json"
    path.write_text(RTAPP)
    out = tmp_path / "out"
    code, _, err = invoke("run", str(path), "--duration", "300ms", "-o", str(out), "--no-report")
    assert code == 0, err
    result = Result.load(out)
    assert result.duration_ns == 300_000_000
    cpu = result.tasks["t/0"]["cpu_time_ns"] + result.tasks["t/1"]["cpu_time_ns"]
    assert cpu == (2 + 29) * 1_000_000


def test_yaml_run_does_not_touch_the_rtapp_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from cfssim.scenario import load_workload

    monkeypatch.setitem(sys.modules, "cfssim.scenario.rtapp", None)  # importing it fails
    rtapp = tmp_path / "w.json"
    rtapp.write_text(RTAPP)
    with pytest.raises(ImportError):
        load_workload(rtapp)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "duration: 100ms\nmachine: {cpus: 1}\nprocesses: [{name: a, program: [{run: 30ms}]}]\n"
    )
    code, out, err = invoke(
        "run", str(scenario), "--no-report", "--format", "json", "-o", str(tmp_path / "out")
    )
    assert code == 0, err
    assert json.loads(out)["tasks"]["a/0"]["cpu_time_ns"] == 30_000_000
    code, out, _ = invoke("validate", str(scenario))
    assert code == 0 and out.startswith(f"ok {scenario}: s, 100ms, 1 processes")
