"""The real twin's cgroup layer: detection (pure), file parsing (pure), the driver (kernel)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfssim.cgroup.files import CgroupConfig
from cfssim.real import cgroupfs
from cfssim.real.cgroupfs import Mount, detect, make_driver, parse_flat_keyed
from cfssim.real.errors import (
    ControllerMissing,
    NotLinux,
    NotRoot,
    ReadOnlyCgroupFs,
    RealRunError,
    V2WithoutControllers,
)

MS = 1_000_000


def v1(*controllers: str, ro: bool = False) -> list[Mount]:
    return [
        Mount("cgroup", Path(f"/sys/fs/cgroup/{c}"), frozenset({c, "ro" if ro else "rw"}))
        for c in controllers
    ]


def v2(tmp_path: Path, enabled: str) -> Mount:
    (tmp_path / "cgroup.subtree_control").write_text(enabled)
    return Mount("cgroup2", tmp_path, frozenset({"rw"}))


# ---- detection (no root needed) ------------------------------------------------------------
def test_v1_with_all_controllers_is_chosen() -> None:
    layout = detect(v1("cpu", "cpuacct", "cpuset", "memory", "pids"), euid=0)
    assert layout.version == 1
    assert layout.mounts["memory"] == Path("/sys/fs/cgroup/memory")
    assert len(layout.hierarchies) == 4


def test_comounted_cpu_cpuacct_is_one_hierarchy() -> None:
    mounts = [Mount("cgroup", Path("/cg/cpu,cpuacct"), frozenset({"cpu", "cpuacct", "rw"}))]
    layout = detect([*mounts, *v1("cpuset", "memory")], euid=0)
    assert layout.mounts["cpu"] == layout.mounts["cpuacct"]
    assert len(layout.hierarchies) == 3


def test_each_missing_piece_has_its_own_error_and_exit_status(tmp_path: Path) -> None:
    cases = [
        (lambda: detect([], platform="darwin", euid=0), NotLinux, "darwin"),
        (lambda: detect([], euid=1000), NotRoot, "root"),
        (lambda: detect(v1("cpu", "cpuacct", "cpuset"), euid=0), ControllerMissing, "memory"),
        (lambda: detect([v2(tmp_path, "")], euid=0), V2WithoutControllers, "cpu, memory"),
        (
            lambda: detect(v1("cpu", "cpuacct", "cpuset", "memory", ro=True), euid=0),
            ReadOnlyCgroupFs,
            "read-only",
        ),
    ]
    statuses = set()
    for call, error, words in cases:
        with pytest.raises(error, match=words) as info:
            call()
        statuses.add(info.value.exit_status)
    assert len(statuses) == len(cases)


def test_v2_is_used_when_its_root_enables_cpu_and_memory(tmp_path: Path) -> None:
    layout = detect([v2(tmp_path, "cpu memory pids")], euid=0)
    assert layout.version == 2
    assert layout.hierarchies == [tmp_path]


def test_v2_without_controllers_and_partial_v1_names_both(tmp_path: Path) -> None:
    with pytest.raises(ControllerMissing, match=r"memory.*cgroup2.*lacks"):
        detect([*v1("cpu", "cpuacct", "cpuset"), v2(tmp_path, "")], euid=0)


def test_flat_keyed_files_parse_to_ints() -> None:
    text = "oom_kill_disable 1\nunder_oom 0\noom_kill 3\n"
    assert parse_flat_keyed(text) == {"oom_kill_disable": 1, "under_oom": 0, "oom_kill": 3}


def test_v1_translation_of_a_config() -> None:
    layout = cgroupfs.Layout(1, {c: Path(f"/x/{c}") for c in cgroupfs.V1_CONTROLLERS})
    driver = make_driver(layout)
    config = CgroupConfig(
        quota_ns=50 * MS,
        burst_ns=10 * MS,
        memory_limit=100 << 20,
        cpus=frozenset({0, 1, 3}),
        oom_kill_disable=True,
    )
    files = dict(driver.config_files(config))
    assert files[("cpu", "cpu.cfs_quota_us")] == "50000"
    assert files[("cpu", "cpu.cfs_burst_us")] == "10000"
    assert files[("cpu", "cpu.cfs_period_us")] == "100000"
    assert files[("memory", "memory.limit_in_bytes")] == str(100 << 20)
    assert files[("memory", "memory.oom_control")] == "1"
    assert files[("cpuset", "cpuset.cpus")] == "0-1,3"
    assert dict(driver.config_files(CgroupConfig()))[("cpu", "cpu.cfs_quota_us")] == "-1"


def test_v2_translation_of_a_config() -> None:
    layout = cgroupfs.Layout(2, {c: Path("/x") for c in ("cpu", "memory", "cpuset")})
    files = dict(make_driver(layout).config_files(CgroupConfig(shares=2048, quota_ns=5 * MS)))
    assert files[("cpu", "cpu.max")] == "5000 100000"
    assert files[("cpu", "cpu.weight")] == "200"
    assert files[("memory", "memory.max")] == "max"


def test_writes_outside_the_run_directory_are_refused(tmp_path: Path) -> None:
    driver = make_driver(cgroupfs.Layout(1, {c: tmp_path for c in cgroupfs.V1_CONTROLLERS}))
    with pytest.raises(AssertionError, match="outside"):
        driver._write(tmp_path / "tasks", "1")


def test_sampled_files_are_reread_through_one_descriptor_closed_at_removal(
    tmp_path: Path,
) -> None:
    # The sampler keeps each file open and re-reads it from offset 0 (kernfs renders it afresh
    # at every read); removal closes every descriptor before deleting the run's directories.
    layout = cgroupfs.Layout(1, {c: tmp_path for c in cgroupfs.V1_CONTROLLERS})
    driver = make_driver(layout)
    run = tmp_path / driver.run_name
    run.mkdir()
    (run / "cpuacct.usage").write_text("100\n")
    assert driver.read_sampled("cpuacct", "/", "cpuacct.usage") == "100\n"
    fd = driver.sampled[("cpuacct", "/", "cpuacct.usage")]
    with open(run / "cpuacct.usage", "r+") as f:  # rewritten in place, as kernfs renders
        f.write("250\n")
    assert driver.read_sampled("cpuacct", "/", "cpuacct.usage") == "250\n"
    assert driver.sampled == {("cpuacct", "/", "cpuacct.usage"): fd}
    (run / "cpuacct.usage").unlink()  # a plain directory here: remove_tree wants it empty
    driver.remove()
    assert driver.sampled == {} and not run.exists()
    with pytest.raises(OSError):
        os.fstat(fd)


# ---- the driver on the real kernel ------------------------------------------------------------
def _usable_layout() -> cgroupfs.Layout:
    try:
        return detect()
    except RealRunError as exc:
        pytest.skip(f"cannot use the host's cgroups: {exc.message}")


@pytest.mark.kernel
def test_driver_creates_writes_reads_and_removes() -> None:
    layout = _usable_layout()
    driver = make_driver(layout)
    configs = {
        "/": CgroupConfig(),
        "/app": CgroupConfig(quota_ns=50 * MS, burst_ns=10 * MS, memory_limit=100 << 20),
        "/app/web": CgroupConfig(shares=512, cpus=frozenset({0})),
    }
    try:
        driver.create(configs)
        figures = driver.figures("/app")
        assert figures["memory.limit_in_bytes"] == 100 << 20
        assert figures["cpu.stat"]["nr_periods"] == 0
        assert figures["cpuacct.usage"] == 0
        # lowering the quota below the old burst needs the burst written first: the retry does it
        lower = CgroupConfig(quota_ns=5 * MS, burst_ns=1 * MS, memory_limit=100 << 20)
        driver.write_settings("/app", configs["/app"], lower)
        if layout.version == 1:
            cpu = driver.real("cpu", "/app")
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "5000"
            assert (cpu / "cpu.cfs_burst_us").read_text().strip() == "1000"
            assert (driver.real("cpuset", "/app/web") / "cpuset.cpus").read_text().strip() == "0"
        sleeper = subprocess.Popen(["sleep", "30"])
        driver.attach("/app/web", sleeper.pid, sleeper.pid)
        assert cgroupfs.tasks_in(driver.base("cpu")) == {sleeper.pid}
    finally:
        driver.remove()  # kills what is inside, then removes bottom-up
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not any(d.exists() for d in (driver.base(c) for c in layout.mounts))


@pytest.mark.kernel
def test_removal_lifts_the_quota_so_throttled_tasks_exit_at_once() -> None:
    layout = _usable_layout()
    driver = make_driver(layout)
    # 1 ms per second: a killed hog that must free 256 MiB would take many periods to leave
    configs = {
        "/": CgroupConfig(),
        "/tight": CgroupConfig(quota_ns=1 * MS, period_ns=1000 * MS),
    }
    hog = None
    try:
        driver.create(configs)
        program = "b = bytearray(256 << 20)\nwhile True: pass"
        hog = subprocess.Popen([sys.executable, "-c", program])
        driver.attach("/tight", hog.pid, hog.pid)
        time.sleep(0.3)
    finally:
        started = time.monotonic()
        driver.remove()
        took = time.monotonic() - started
    assert hog is not None and hog.wait(timeout=5) == -signal.SIGKILL
    assert took < 1.0, f"removal took {took:.2f} s"
    assert not any(d.exists() for d in (driver.base(c) for c in layout.mounts))
