"""The real twin never leaves anything behind; interrupts end commands cleanly.

Unit parts: cgroup names the kernel refuses or that collide with interface files, the memory
bound against MemAvailable, who owns a leftover, SIGINT/SIGTERM deferral. Kernel part: `measure`
killed (SIGKILL at seeded moments, double SIGINT) leaves nothing after ``measure --cleanup``.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cfssim import _signals
from cfssim.cgroup.files import check_cgroup_name
from cfssim.real import cgroupfs, procfs, tracefs
from cfssim.real.calibrate import Calibration
from cfssim.real.capacity import allocated_bytes, capacity_problem, memory_bound
from cfssim.real.capture import _Session
from cfssim.real.errors import CleanupIncomplete, RealRunError
from cfssim.real.measure import RealRun
from cfssim.scenario import ScenarioError, load_scenario

REPO = Path(__file__).parents[1]
GiB = 1 << 30
MiB = 1 << 20


# ---- cgroup names -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("tasks", "cgroup v1 interface file"),
        ("notify_on_release", "cgroup v1 interface file"),
        ("cgroup.procs", "interface files cgroup.*"),
        ("cpu.shares", "interface files cpu.*"),
        ("memory.anything", "interface files memory.*"),
        ("a\nb", "NUL or newline"),
        ("a\0b", "NUL or newline"),
        ("..", "the directory itself or its parent"),
        ("x" * 256, "longer than 255 bytes"),
        ("a\tb", "whitespace or control characters"),
    ],
)
def test_names_the_kernel_refuses_or_that_collide_with_files(name: str, why: str) -> None:
    problem = check_cgroup_name(name)
    assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["app", "job.slice", "_cpu.shares", "cpus", "x" * 255])
def test_names_that_are_fine(name: str) -> None:
    assert check_cgroup_name(name) is None


def test_a_colliding_cgroup_name_is_refused_with_file_and_line() -> None:
    text = (
        "name: t\nduration: 1s\nmachine: {cpus: 2}\ncgroups:\n  /app: {}\n"
        "  /app/cgroup.procs: {}\n"
        "processes:\n  - {name: p, cgroup: /app, program: [{run: 1ms}]}\n"
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(text)
    (message,) = raised.value.messages
    assert message.startswith("<string>:6:22: cgroups./app/cgroup.procs: ")
    assert "'/app/cgroup.procs'" in message and "interface files cgroup.*" in message


# ---- memory the host must hold -------------------------------------------------------------------
BIG = """
name: big
duration: 1s
machine: {cpus: 2}
cgroups:
  /box: {memory.limit_in_bytes: 100GiB}
  /two: {memory.limit_in_bytes: 1GiB}
  /two/c: {memory.limit_in_bytes: 2GiB}
processes:
  - {name: eater, cgroup: /box, threads: 2, program: [{alloc: 30GiB}, {sleep: 1s}]}
  - {name: small, cgroup: /two/c, program: [{loop: {repeat: 4, program: [{alloc: 1GiB}]}}]}
  - {name: root, cgroup: /, program: [{alloc: 1MiB}]}
events:
  - {at: 500ms, write: {/two: {memory.limit_in_bytes: 3GiB}}}
"""


def test_the_memory_bound_follows_limits_allocs_and_later_writes() -> None:
    scenario = load_scenario(BIG)
    # /box: 2 threads x 30 GiB under a 100 GiB limit; /two: 4 GiB allocated, its limit raised
    # from 1 to 3 GiB at 500 ms (the child's 2 GiB binds first: min(2, 4) = 2 GiB); / itself 1 MiB
    total, lines = memory_bound(scenario)
    assert total == 60 * GiB + 2 * GiB + MiB
    assert lines == [
        "processes in / allocate 1MiB",
        "/box 60GiB (allocated)",
        "/two 2GiB (allocated)",
    ]
    assert allocated_bytes(scenario.processes[1].program) == 4 * GiB
    assert allocated_bytes(scenario.processes[1].program, None) == float("inf")


def test_measure_refuses_what_the_host_cannot_hold() -> None:
    scenario = load_scenario(BIG)
    problem = capacity_problem(scenario, 8 * GiB)
    assert problem is not None
    assert "may hold up to 62GiB" in problem and "this machine has 8GiB available" in problem
    assert capacity_problem(scenario, 63 * GiB) is None


# ---- who owns a leftover -------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_owner_names_survive_pid_reuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me = os.getpid()
    start = procfs.start_time(me)
    assert start is not None
    dead = _dead_pid()
    hierarchy = tmp_path / "cpu"
    hierarchy.mkdir()
    live = hierarchy / f"cfssim-{me}.{start}-0"
    reused = hierarchy / f"cfssim-{me}.{start + 1}-0"  # our PID, another start: a reuse
    gone = hierarchy / f"cfssim-{dead}.1-0"
    for directory in (live, reused, gone, reused / "child"):
        directory.mkdir()
    stats = tmp_path / f"cfssim-stats-{dead}.1-abc"
    stats.mkdir()
    (stats / "0.0.sched").write_text("x")
    legacy = tmp_path / "cfssim-stats-abcdef"
    legacy.mkdir()
    monkeypatch.setattr("cfssim.real.tracefs.leftover_instances", lambda prefix: [])
    layout = cgroupfs.Layout(1, {"cpu": hierarchy})
    found = {f.path: f for f in cgroupfs.cleanup_leftovers(layout, temp_dir=tmp_path)}
    assert found[live].state == "kept" and found[live].why == f"PID {me} is still running"
    comm = procfs.comm(me)
    assert found[reused].state == "removed"
    assert found[reused].why == f"leftover of PID {me} (now reused by {comm})"
    assert found[gone].why == f"leftover of PID {dead} (exited)"
    assert found[stats].state == "removed" and not stats.exists()
    assert found[legacy].state == "kept" and legacy.exists()
    assert live.exists() and not reused.exists() and not gone.exists()


def test_other_users_leftovers_are_not_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = tmp_path / f"cfssim-stats-{_dead_pid()}.1-abc"
    stats.mkdir()
    monkeypatch.setattr(os, "geteuid", lambda: 4242)
    monkeypatch.setattr("cfssim.real.tracefs.leftover_instances", lambda prefix: [])
    layout = cgroupfs.Layout(1, {"cpu": tmp_path / "none"})
    assert cgroupfs.cleanup_leftovers(layout, temp_dir=tmp_path) == []
    assert stats.exists()


def test_a_cleanup_that_cannot_finish_says_what_is_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def busy(top: Path, timeout_s: float) -> None:
        raise RealRunError(f"cannot remove {top}: Device or resource busy")

    monkeypatch.setattr(cgroupfs, "remove_tree", busy)
    with pytest.raises(cgroupfs.CleanupIncomplete) as raised:
        cgroupfs.remove_run([tmp_path / "cpu" / "cfssim-1.2-0"])
    assert raised.value.exit_status == 31
    assert raised.value.message.endswith("Remove it with: cfssim measure --cleanup")
    assert f"{tmp_path}/cpu/cfssim-1.2-0 (cannot remove" in raised.value.message


# ---- signals ------------------------------------------------------------------------------------
def test_signals_during_cleanup_are_delivered_after_it() -> None:
    finished = False
    with pytest.raises(_signals.Interrupted) as raised, _signals.raising(), _signals.deferred():
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGINT)  # a second one: noted, not raised
        finished = True
    assert finished
    assert raised.value.exit_status == 143 and raised.value.name == "SIGTERM"


BUSY = """
name: busy
duration: 60s
machine: {cpus: 2}
processes:
  - {name: p, threads: 20, repeat: forever, program: [{run: 50us}, {sleep: 50us}]}
"""


def _default_signals() -> None:
    """In the child: SIGINT as a terminal's process gets it (a test runner started in the
    background may have it ignored, which cfssim then respects)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cfssim", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_command_prints_one_line(tmp_path: Path, signum: int, status: int) -> None:
    # imports, then the simulation (SimPy re-raises what its processes raise): wherever the
    # signal lands, one line and 128 + signum
    rng = random.Random(signum)
    busy = tmp_path / "busy.yaml"
    busy.write_text(BUSY)
    for delay in (0.15, rng.uniform(0.3, 1.0)):
        run = _cli("run", str(busy), "--no-report", "-o", str(tmp_path))
        time.sleep(delay)
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
        assert run.returncode == status, err
        assert err.strip().splitlines()[-1:] == [
            f"cfssim: interrupted by {signal.Signals(signum).name}"
        ], err


def test_an_interrupted_sweep_stops_its_pool_at_once(tmp_path: Path) -> None:
    # SIGTERM to the sweep alone (not its workers): running points end, pending ones are dropped
    busy = tmp_path / "busy.yaml"
    busy.write_text(BUSY)
    sweep = _cli(
        "sweep",
        str(busy),
        "--set",
        "machine.cpus=1,2",
        "--seeds",
        "1-2",
        "-o",
        str(tmp_path / "sweep"),
    )
    time.sleep(2)
    sweep.send_signal(signal.SIGTERM)
    _, err = sweep.communicate(timeout=30)
    assert sweep.returncode == 143, err
    assert err.strip().splitlines()[-1] == "cfssim: interrupted by SIGTERM", err


# ---- the real twin, killed ----------------------------------------------------------------------
SMALL = """
name: small
duration: 400ms
machine: {cpus: 2}
cgroups:
  /app: {cpu.cfs_quota_us: 50000, cpu.cfs_period_us: 100000}
  /app/web: {memory.limit_in_bytes: 64MiB}
processes:
  - {name: hog, cgroup: /app, threads: 2, program: [{run: forever}]}
  - {name: web, cgroup: /app/web, repeat: forever,
     program: [{alloc: 4MiB}, {run: 2ms}, {sleep: 8ms}]}
"""


def _tagged(tag: str) -> list[int]:
    """Processes whose environment carries `tag` (the measure process and its workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _left(pid: int, tag: str, tmp: Path) -> list[str]:
    deadline = time.monotonic() + 3
    while True:
        left = [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{cgroupfs.PREFIX}{pid}.*")]
        left += [str(p) for p in tmp.glob(f"{cgroupfs.STATS_PREFIX}*")]
        left += [f"process {p}" for p in _tagged(tag)]
        if not left or time.monotonic() > deadline:  # workers die by PDEATHSIG, asynchronously
            return left
        time.sleep(0.05)


def _wait_for_cgroups(run: subprocess.Popen[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not list(Path("/sys/fs/cgroup").glob(f"cpu*/{cgroupfs.PREFIX}{run.pid}.*")):
        if run.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"measure never made its cgroups: {run.communicate()[1]}")
        time.sleep(0.005)


@pytest.mark.kernel
def test_measure_killed_at_random_moments_leaves_nothing(tmp_path: Path) -> None:
    try:
        cgroupfs.detect()
    except RealRunError as exc:
        pytest.skip(f"cannot measure on this machine: {exc.message}")
    from cfssim.real.worker import worker_binary

    worker_binary()  # compiled once, not inside a killed run
    scenario = tmp_path / "small.yaml"
    scenario.write_text(SMALL)
    rng = random.Random(15)
    # (what, when): "start" s after launch; "setup"/"run" s after the cgroups appear; "cleanup":
    # SIGINT then SIGKILL that much later; "double": SIGINT twice, that far apart
    moments = [
        ("start", rng.uniform(0.05, 0.4)),
        ("setup", rng.uniform(0, 0.02)),
        ("setup", rng.uniform(0, 0.02)),
        ("run", rng.uniform(0.1, 0.35)),
        ("cleanup", rng.uniform(0.001, 0.01)),
        ("cleanup", rng.uniform(0.01, 0.05)),
        ("double", rng.uniform(0.0002, 0.001)),
        ("double", rng.uniform(0.001, 0.004)),
    ]
    for what, when in moments:
        tag = f"CFSSIM_SAFETY_TEST={os.getpid()}-{rng.random()}"
        name, value = tag.split("=")
        env = {"TMPDIR": str(tmp_path), name: value}
        run = _cli("measure", str(scenario), "--no-report", "-o", str(tmp_path / "out"), env=env)
        if what == "start":
            time.sleep(when)
            run.kill()
        else:
            _wait_for_cgroups(run)
            time.sleep(when if what in ("setup", "run") else rng.uniform(0.05, 0.2))
            if what in ("setup", "run"):
                run.kill()
            else:
                run.send_signal(signal.SIGINT)
                time.sleep(when)
                run.send_signal(signal.SIGKILL if what == "cleanup" else signal.SIGINT)
        _, err = run.communicate(timeout=30)
        if what == "double":  # the cleanup finished: nothing to clean up afterwards
            assert run.returncode == 130, err
            assert "Traceback" not in err
            assert err.strip().splitlines()[-1] == "cfssim: interrupted by SIGINT", err
            assert _left(run.pid, tag, tmp_path) == [], (what, when)
            continue
        assert run.returncode == -signal.SIGKILL
        cleanup = subprocess.run(
            [sys.executable, "-m", "cfssim", "measure", "--cleanup"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cleanup.returncode == 0, cleanup.stderr
        assert _left(run.pid, tag, tmp_path) == [], (what, when, cleanup.stdout)


def test_guarded_cleans_up_after_a_signal_and_delivers_one_after_it() -> None:
    calls: list[str] = []

    def cleanup() -> None:
        signal.raise_signal(signal.SIGINT)  # noted during the cleanup, not raised in it
        calls.append("cleanup")

    with pytest.raises(_signals.Interrupted) as raised, _signals.guarded(cleanup):
        signal.raise_signal(signal.SIGTERM)
        calls.append("not reached")
    assert calls == ["cleanup"]
    assert raised.value.exit_status == 143


# ---- every cleanup step runs ---------------------------------------------------------------------
def _failing(calls: list[str], name: str, error: BaseException | None = None) -> Callable[[], None]:
    def step() -> None:
        calls.append(name)
        if error is not None:
            raise error

    return step


def test_run_all_runs_every_step_and_raises_the_first_error() -> None:
    calls: list[str] = []
    first, second = OSError(16, "Device or resource busy"), RuntimeError("second")
    with pytest.raises(OSError) as raised:
        _signals.run_all(
            [
                _failing(calls, "a", first),
                None,
                _failing(calls, "b"),
                _failing(calls, "c", second),
                _failing(calls, "d"),
            ]
        )
    assert calls == ["a", "b", "c", "d"]
    assert raised.value is first
    assert raised.value.__notes__ == ["and then: RuntimeError: second"]


def test_run_all_without_errors_returns() -> None:
    calls: list[str] = []
    _signals.run_all([_failing(calls, "a"), _failing(calls, "b")])
    assert calls == ["a", "b"]


class _Busy:
    """A tracer or instance whose removal fails as the kernel's EBUSY does."""

    def close(self) -> None:
        raise CleanupIncomplete("the tracefs instance x could not be removed")


class _Recorder:
    def __init__(self, calls: list[str], name: str) -> None:
        self.calls, self.name = calls, name

    def __getattr__(self, method: str) -> Callable[..., None]:
        return lambda *args, **kwargs: self.calls.append(f"{self.name}.{method}")


def test_measure_cleanup_kills_workers_and_removes_cgroups_when_the_tracer_fails(
    tmp_path: Path,
) -> None:
    calls: list[str] = []
    run = RealRun.__new__(RealRun)
    run.tracer = _Busy()  # type: ignore[assignment]
    run.sessions = _Recorder(calls, "sessions")  # type: ignore[assignment]
    run.driver = _Recorder(calls, "driver")  # type: ignore[assignment]
    run.stat_dir = tmp_path / "stats"
    run.stat_dir.mkdir()
    with pytest.raises(CleanupIncomplete):
        run.cleanup()
    assert calls == ["sessions.kill", "driver.remove"]
    assert not run.stat_dir.exists()


def test_calibrate_cleanup_kills_children_and_removes_cgroups_when_the_instance_fails() -> None:
    calls: list[str] = []
    run = Calibration.__new__(Calibration)
    run.instance = _Busy()  # type: ignore[assignment]
    run.children = [subprocess.Popen(["sleep", "60"])]
    run.driver = _Recorder(calls, "driver")  # type: ignore[assignment]
    with pytest.raises(CleanupIncomplete):
        run.cleanup()
    assert run.children[0].returncode == -signal.SIGKILL
    assert calls == ["driver.remove"]


def test_capture_cleanup_removes_cgroups_and_kills_the_command_when_the_tracer_fails() -> None:
    calls: list[str] = []
    session = _Session(_Recorder(calls, "driver"), 1)  # type: ignore[arg-type]
    session.tracer = _Busy()  # type: ignore[assignment]
    session.child = subprocess.Popen(["sleep", "60"])
    with pytest.raises(CleanupIncomplete):
        session.cleanup()
    assert calls == ["driver.remove"]
    assert session.child.returncode == -signal.SIGKILL


def test_an_instance_the_kernel_keeps_names_itself_and_the_cleanup_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    instance = tmp_path / "cfssim-1.2-0"
    instance.mkdir()

    def busy(path: object) -> None:
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))

    monkeypatch.setattr(tracefs.os, "rmdir", busy)
    with pytest.raises(CleanupIncomplete) as raised:
        tracefs.remove_instance(instance)
    assert raised.value.message == (
        f"the tracefs instance {instance} could not be removed "
        "(Device or resource busy). Remove it with: "
        "cfssim measure --cleanup"
    )
    monkeypatch.undo()
    tracefs.remove_instance(tmp_path / "gone")  # already gone: fine


def test_a_signal_a_module_swallowed_during_the_imports_is_raised_again() -> None:
    # a bare ``except:`` in a module being imported can eat the Interrupted the handler raised;
    # the entry point asks again once the command line is imported
    from cfssim import _signals

    earlier = list(_signals._received)  # signals other tests of this process raised
    _signals._received.clear()
    try:
        _signals.check()  # nothing received: nothing raised
        _signals._received.append(signal.SIGTERM)
        with pytest.raises(_signals.Interrupted) as raised:
            _signals.check()
        assert raised.value.exit_status == 143
    finally:
        _signals._received[:] = earlier


def test_an_interrupt_a_library_wrapped_in_its_own_error_is_still_the_interrupt() -> None:
    # pydantic turns an Interrupted raised while it builds a validator into a SchemaError: the
    # entry point asks which signal arrived and reports that, status 128 + signum
    from cfssim import _signals

    earlier = list(_signals._received)
    _signals._received.clear()
    try:
        assert _signals.received() is None
        _signals._received.append(signal.SIGINT)
        late = _signals.received()
        assert late is not None and late.exit_status == 130
    finally:
        _signals._received[:] = earlier
