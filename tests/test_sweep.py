"""Sweeps: field paths, grids, failures kept in their row, process pools and Dask."""

from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

import cfssim
from cfssim.interop_commands import sweep as sweep_command
from cfssim.scenario import scenario_data
from cfssim.sweep import (
    SweepError,
    grid,
    parse_seeds,
    parse_set,
    set_field,
    split_values,
    sweep,
)
from cfssim.units import ms

SCENARIO = """
name: quota
duration: 300ms
machine: {cpus: 2, policy: cfs}
cgroups:
  /app.slice/web: {cpu.cfs_quota_us: 50000}
processes:
  - {name: web, cgroup: /app.slice/web, threads: 2, repeat: forever, program: [{run: forever}]}
"""
USAGE = "cgroups./app.slice/web.cpuacct.usage"
SLICE = ms(5)  # sched_cfs_bandwidth_slice_us: runtime a CPU takes from the quota at a time


@pytest.fixture(scope="module")
def scenario() -> cfssim.Scenario:
    return cfssim.load_scenario(SCENARIO)


def test_set_parsing() -> None:
    assert parse_set("machine.cpus=2,4,8").values == (2, 4, 8)
    assert parse_set("cgroups./app.cpu.max=50000 100000,max 100000").values == (
        "50000 100000",
        "max 100000",
    )
    assert parse_set("processes.web.cpus=[0, 1],[1]").values == ([0, 1], [1])
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert parse_seeds("1,3-5") == [1, 3, 4, 5]
    with pytest.raises(SweepError):
        parse_set("machine.cpus")
    with pytest.raises(SweepError):
        parse_seeds("x")


def test_set_field_handles_cgroup_paths_with_dots_and_slashes(scenario: cfssim.Scenario) -> None:
    data = scenario_data(scenario)
    set_field(data, "cgroups./app.slice/web.cpu.cfs_quota_us", 20000)
    set_field(data, "cgroups./app.slice/web.cpu.cfs_period_us", 40000)
    set_field(data, "cgroups./new.group.memory.limit_in_bytes", "64MiB")  # a new cgroup
    set_field(data, "processes.web.threads", 3)  # a list item by name
    set_field(data, "processes.0.nice", 5)  # or by index
    set_field(data, "machine.sched_latency_ns", "6ms")  # a key not written yet
    assert data["cgroups"]["/app.slice/web"] == {
        "cpu.cfs_quota_us": 20000,
        "cpu.cfs_period_us": 40000,
    }
    assert data["cgroups"]["/new.group"] == {"memory.limit_in_bytes": "64MiB"}
    assert (data["processes"][0]["threads"], data["processes"][0]["nice"]) == (3, 5)
    changed = cfssim.Scenario.model_validate(data)
    assert changed.cgroups["/app.slice/web"].quota_ns == ms(20)
    assert changed.machine.tunables["sched_latency_ns"] == ms(6)
    with pytest.raises(SweepError, match="found 'nobody'"):
        set_field(data, "processes.nobody.threads", 1)


def test_grid_order() -> None:
    axes = [parse_set("a=1,2"), parse_set("b=x,y")]
    assert grid(axes) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


def test_process_pool_sweep_with_a_failing_point(scenario: cfssim.Scenario) -> None:
    axes = [parse_set("cgroups./app.slice/web.cpu.cfs_quota_us=25000,100000,oops")]
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = sweep(scenario, axes, seeds=[1, 2], metrics=[USAGE], executor=pool)
    assert [row["run"] for row in rows] == list(range(6))
    assert [row["seed"] for row in rows] == [1, 2] * 3
    quota = "cgroups./app.slice/web.cpu.cfs_quota_us"
    by_quota = {row[quota]: row for row in rows if row["seed"] == 1}
    # at most the quota of each of the 3 periods, plus the 5 ms slices the 2 CPUs hold
    assert 3 * ms(25) <= by_quota[25000][USAGE] <= 3 * ms(25) + 2 * SLICE
    assert 3 * ms(100) <= by_quota[100000][USAGE] <= 3 * ms(100) + 2 * SLICE
    assert by_quota[25000]["error"] is None
    assert "invalid scenario" in by_quota["oops"]["error"]
    assert "cpu.cfs_quota_us" in by_quota["oops"]["error"]
    assert USAGE not in by_quota["oops"]


def test_dask_local_cluster(scenario: cfssim.Scenario) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        rows = sweep(
            scenario,
            [parse_set("machine.cpus=1,2")],
            metrics=[USAGE],
            executor=client.get_executor(),
        )
    assert [row["machine.cpus"] for row in rows] == [1, 2]
    assert all(row["error"] is None for row in rows)
    for row in rows:  # the quota binds either way
        assert 3 * ms(50) <= row[USAGE] <= 3 * ms(50) + row["machine.cpus"] * SLICE


def test_sweep_command_writes_table_and_plot(tmp_path: Path) -> None:
    path = tmp_path / "quota.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    outcome = CliRunner().invoke(
        sweep_command,
        [
            str(path),
            "--set",
            "cgroups./app.slice/web.cpu.cfs_quota_us=25000,50000",
            "--seeds",
            "1",
            "--metric",
            USAGE,
            "--plot",
            USAGE,
            "--workers",
            "2",
            "-o",
            str(out),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [row["cgroups./app.slice/web.cpu.cfs_quota_us"] for row in rows] == ["25000", "50000"]
    assert list(rows[0]) == [
        "run",
        "cgroups./app.slice/web.cpu.cfs_quota_us",
        "seed",
        "error",
        USAGE,
    ]
    assert (out / "sweep.html").read_text().count("plotly") > 0


def test_sweep_command_bad_set_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "quota.yaml"
    path.write_text(SCENARIO)
    outcome = CliRunner().invoke(sweep_command, [str(path), "--set", "machine.cpus"])
    assert outcome.exit_code == 2
    assert "expected FIELD=VALUE" in outcome.output


def test_sweep_command_refuses_bad_points_before_running_anything(tmp_path: Path) -> None:
    """A misspelt field or a bad value fails its points the same way every time: the command
    names each (with its --set values) and exits 2 before running, writing nothing."""
    path = tmp_path / "quota.yaml"
    path.write_text(SCENARIO)
    out = tmp_path / "out"
    runner = CliRunner()
    typo = runner.invoke(sweep_command, [str(path), "--set", "machine.cpu=1,2", "-o", str(out)])
    assert typo.exit_code == 2
    assert "invalid scenario with --set machine.cpu=1: machine.cpu: expected a known key" in (
        typo.output
    )
    assert "--set machine.cpu=2" in typo.output and not out.exists()
    bad_value = runner.invoke(sweep_command, [str(path), "--set", "machine.cpus=2,0"])
    assert bad_value.exit_code == 2 and "--set machine.cpus=0" in bad_value.output
    assert "--set machine.cpus=2:" not in bad_value.output
    x_axis = runner.invoke(sweep_command, [str(path), "--set", "machine.cpus=1,2", "--x", "nope"])
    assert x_axis.exit_code == 2 and "expected one of the swept fields" in x_axis.output
    seeds = runner.invoke(sweep_command, [str(path), "--seeds", "1-100000000"])
    assert seeds.exit_code == 2 and "expected at most 100000 seeds" in seeds.output
