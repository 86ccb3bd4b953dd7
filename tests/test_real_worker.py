"""The C worker and the /proc readers: exact program encoding, exact CPU demand."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cfssim.real import procfs
from cfssim.real.errors import NoCompiler, TracefsUnavailable
from cfssim.real.tracefs import mount_tracefs, remove_instance
from cfssim.real.worker import (
    OP_ALLOC,
    OP_EXIT,
    OP_FREE,
    OP_LOOP,
    OP_RUN,
    OP_SLEEP,
    DoneReport,
    ExitReport,
    ProcessJob,
    Sessions,
    TidReport,
    encode_program,
    worker_binary,
)
from cfssim.scenario import Alloc, Exit, Free, Loop, Run, Sleep

MS = 1_000_000


def test_programs_encode_to_flat_tokens_with_loop_lengths() -> None:
    inner = Loop(repeat=3, program=(Run(run="1ms"), Sleep(sleep="2ms")))
    program = (Alloc(alloc="4KiB"), inner, Free(free="all"), Exit(exit=3))
    assert encode_program(program) == [
        OP_ALLOC,
        4096,
        OP_LOOP,
        3,
        4,
        OP_RUN,
        1 * MS,
        OP_SLEEP,
        2 * MS,
        OP_FREE,
        -1,
        OP_EXIT,
        3,
    ]
    assert encode_program((Run(run="forever"),), repeat=None) == [OP_LOOP, -1, 2, OP_RUN, -1]


def test_sched_text_parses_without_float_rounding() -> None:
    sched = (
        "w (1, #threads: 1)\n---\nse.vruntime   :   240.986102\n"
        "se.nr_migrations  :  4\nnr_switches  :  10\nnr_voluntary_switches : 3\n"
        "nr_involuntary_switches : 7\n"
    )
    stats = procfs.parse_thread_stats("350008916 211654 19\n", sched)
    assert stats == procfs.ThreadStats(350008916, 211654, 19, 10, 3, 7, 4, 240986102)
    assert procfs.ms_decimal_to_ns("-0.000001") == -1
    later = procfs.ThreadStats(400, 20, 21, 12, 3, 9, 4, 999)
    assert later.since(stats).cpu_time_ns == 400 - 350008916
    assert later.since(stats).vruntime == 999


def test_machine_busy_time_counts_everything_but_idle_and_iowait() -> None:
    line = "cpu  100 10 50 1000 7 3 2 5 0 0\n"
    assert procfs.machine_busy_ns(line) == 170 * 1_000_000_000 // procfs.USER_HZ


def test_a_missing_compiler_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(NoCompiler, match="no C compiler"):
        worker_binary(compiler="no-such-cc")


@pytest.fixture(scope="module")
def binary() -> Path:
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler to build the worker")
    return worker_binary()


def run_jobs(
    binary: Path,
    tmp_path: Path,
    jobs: list[ProcessJob],
    prepare: Callable[[list[int]], object] = lambda tids: None,
) -> list[object]:
    """Run `jobs` in one session; `prepare` gets the threads' tids before the barrier opens."""
    sessions = Sessions(binary, tmp_path, [jobs])
    reports: list[object] = []
    try:
        threads = sum(j.threads for j in jobs)
        while sum(isinstance(r, TidReport) for r in reports) < threads:
            reports += sessions.poll(1.0)
        prepare([r.tid for r in reports if isinstance(r, TidReport)])
        sessions.release(time.monotonic_ns())
        while sum(isinstance(r, ExitReport) for r in reports) < len(jobs):
            reports += sessions.poll(5.0)
    finally:
        sessions.kill()
    return reports


def test_each_thread_burns_exactly_its_demand_of_cpu_time(binary: Path, tmp_path: Path) -> None:
    demand = 60 * MS
    jobs = [ProcessJob(0, 2, 0, tuple(encode_program((Run(run="60ms"),))))]
    reports = run_jobs(binary, tmp_path, jobs)
    done = [r for r in reports if isinstance(r, DoneReport)]
    assert sorted(r.thread for r in done) == [0, 1]
    for thread in (0, 1):
        cpu = procfs.read_saved_stats(tmp_path, 0, thread).cpu_time_ns
        # the demand plus the thread's start-up (< 1 ms); CPU time, not wall time
        assert demand <= cpu < demand + MS


def test_preempted_threads_still_burn_exactly_their_demand(binary: Path, tmp_path: Path) -> None:
    # three threads share one CPU: each run is cut into timeslices, and the worker's wall-clock
    # spin must make up every bit of CPU time lost to the others
    jobs = [ProcessJob(0, 3, 0, tuple(encode_program((Run(run="40ms"),))))]

    def share_one_cpu(tids: list[int]) -> None:
        for tid in tids:
            os.sched_setaffinity(tid, {0})

    run_jobs(binary, tmp_path, jobs, share_one_cpu)
    stats = [procfs.read_saved_stats(tmp_path, 0, thread) for thread in range(3)]
    assert all(40 * MS <= s.cpu_time_ns < 41 * MS for s in stats), [s.cpu_time_ns for s in stats]
    assert sum(s.nr_involuntary_switches for s in stats) >= 3  # they did preempt each other


@contextlib.contextmanager
def traced_clock_reads(tids: list[int]) -> Iterator[Path]:
    """A private tracefs instance recording the ``clock_gettime`` system calls of `tids`; yields
    the instance (its ``trace`` file holds one line per call)."""
    root = mount_tracefs()
    instance = root / "instances" / f"cfssim-{os.getpid()}-syscalls"
    event = instance / "events" / "syscalls" / "sys_enter_clock_gettime"
    instance.mkdir()
    try:
        if not event.is_dir():
            raise TracefsUnavailable("this kernel has no syscalls:sys_enter_clock_gettime event")
        (event / "filter").write_text(" || ".join(f"common_pid == {t}" for t in tids) + "\n")
        (event / "enable").write_text("1\n")
        yield instance
    finally:
        remove_instance(instance)


def clock_reads_of_a_lone_thread(
    binary: Path, tmp_path: Path, program: tuple, which: int | None = None
) -> list[str]:
    """Run `program` on one SCHED_FIFO thread (alone on its CPU, whatever else the machine
    runs) and return the trace lines of its ``clock_gettime`` system calls (of clock `which`
    only, if given: 3 is CLOCK_THREAD_CPUTIME_ID)."""
    if os.geteuid() != 0:
        pytest.skip("tracing system calls needs root")
    jobs = [ProcessJob(0, 1, 0, tuple(encode_program(program)))]
    traces: list[Path] = []
    with contextlib.ExitStack() as stack:

        def trace_alone(tids: list[int]) -> None:
            os.sched_setscheduler(tids[0], os.SCHED_FIFO, os.sched_param(1))
            try:
                traces.append(stack.enter_context(traced_clock_reads(tids)))
            except (OSError, TracefsUnavailable) as exc:
                pytest.skip(f"cannot trace system calls: {exc}")

        run_jobs(binary, tmp_path, jobs, trace_alone)
        text = (traces[0] / "trace").read_text()
    calls = [line for line in text.splitlines() if "sys_clock_gettime(" in line]
    if which is None:
        return calls
    return [c for c in calls if re.search(rf"which_clock: (0x)?{which:x}\b", c)]


def test_a_finite_run_makes_a_handful_of_system_calls(binary: Path, tmp_path: Path) -> None:
    # CLOCK_THREAD_CPUTIME_ID is a system call, which lets the kernel end an EEVDF slice at
    # once; polling it made thousands of calls in 20 ms. The worker reads it at the start and
    # the end of the run, plus once for each part of the run lost to steal time; it reads
    # CLOCK_MONOTONIC through the vDSO (no call, unless the clocksource has no vDSO support).
    calls = clock_reads_of_a_lone_thread(binary, tmp_path, (Run(run="20ms"),))
    assert 2 <= len(calls) <= 5, calls
    assert procfs.read_saved_stats(tmp_path, 0, 0).cpu_time_ns >= 20 * MS


def test_a_run_before_a_sleep_ends_without_reading_the_cpu_clock(
    binary: Path, tmp_path: Path
) -> None:
    # Reading CLOCK_THREAD_CPUTIME_ID runs update_curr(): at the end of a run whose slice has
    # expired it would get the thread preempted just before it could sleep. A run that a sleep
    # follows ends by the wall clock alone; the clock is read at its start and as the thread
    # wakes from the sleep, and the difference goes into the next run — also when the sleep is
    # the first step of the loop's next round.
    program = (Run(run="10ms"), Sleep(sleep="5ms"), Run(run="10ms"), Sleep(sleep="5ms"))
    calls = clock_reads_of_a_lone_thread(binary, tmp_path, program, which=3)
    assert len(calls) == 4, calls  # start and wake of each run, none at a run's end
    cpu = procfs.read_saved_stats(tmp_path, 0, 0).cpu_time_ns
    assert 20 * MS - 200_000 <= cpu < 21 * MS  # the last run is settled by nothing after it
    looped = (Loop(repeat=3, program=(Sleep(sleep="2ms"), Run(run="5ms"))), Sleep(sleep="2ms"))
    calls = clock_reads_of_a_lone_thread(binary, tmp_path, looped, which=3)
    assert len(calls) == 6, calls


def test_exit_codes_sleeps_and_memory_steps(binary: Path, tmp_path: Path) -> None:
    program = (Alloc(alloc="8MiB"), Free(free="4MiB"), Sleep(sleep="5ms"), Exit(exit=7))
    jobs = [ProcessJob(3, 1, 0, tuple(encode_program(program)))]
    reports = run_jobs(binary, tmp_path, jobs)
    (exit_report,) = [r for r in reports if isinstance(r, ExitReport)]
    assert exit_report.process == 3 and exit_report.status >> 8 == 7
    stats = procfs.read_saved_stats(tmp_path, 3, 0)
    assert stats.nr_voluntary_switches >= 1  # the sleep


def test_a_failed_spawn_kills_the_workers_already_spawned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """They are in no run cgroup yet: nothing but `Sessions` itself could find them."""
    binary = tmp_path / "worker"
    binary.write_text("#!/bin/sh\nexec sleep 60\n")
    binary.chmod(0o755)
    made: list[Sessions] = []
    spawn = Sessions._spawn

    def second_fails(self: Sessions, *args: object) -> None:
        made.append(self)
        if len(self.workers) == 1:
            raise OSError(11, "Resource temporarily unavailable")
        spawn(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Sessions, "_spawn", second_fails)
    job = ProcessJob(0, 1, 0, (OP_EXIT, 0))
    with pytest.raises(OSError, match="temporarily unavailable"):
        Sessions(binary, tmp_path, [[job], [job], [job]])
    sessions = made[-1]
    assert len(made) == 2 and len(sessions.workers) == 1
    assert sessions.workers[0].returncode == -9  # SIGKILLed and reaped
    assert sessions.go_write == -1  # closed: no descriptor leaks
