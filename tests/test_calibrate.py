"""`cfssim calibrate`: its analysis on synthetic traces with known answers, its refusals, and
one real run on this host (kernel-marked)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cfssim.cli import main
from cfssim.profile import load_profile
from cfssim.real import calibrate as cal
from cfssim.real import procfs
from cfssim.real.cgroupfs import PREFIX, detect
from cfssim.real.errors import NoCgroupFs, NoCompiler, NotRoot, RealRunError
from cfssim.real.tracefs import Event, find_tracefs, parse_trace
from cfssim.real.worker import compiled

US, MS = 1_000, 1_000_000
TICK = 4 * MS


def tick_event(cpu: int, now: int) -> Event:
    return Event(now // US * US, cpu, 0, "hrtimer_expire_entry", {"now": now})


def switch(time_ns: int, cpu: int, prev: int, nxt: int) -> Event:
    return Event(time_ns, cpu, prev, "sched_switch", {"prev_pid": prev, "next_pid": nxt})


# ---- ticks ------------------------------------------------------------------------------------
PHASE = 1_234_567
#: CPU 0's delays after the grid instant, and CPU 1's skew against CPU 0 per tick (ns): a
#: tick never runs before its grid instant, so no delay + skew is negative
DELAYS0 = [49_000, 0, 12_000, 30_000, 10_000, 11_000, 9_500, 60_000, 10_500, 9_000]
SKEWS1 = [-40_000, 5_000, 2_000, -3_000, 41_000, 4_000, 1_000, -50_000, 3_000, 7_000]


def two_cpu_ticks() -> list[Event]:
    base = 1_000_000 * TICK + PHASE
    events = []
    for k, (delay, skew) in enumerate(zip(DELAYS0, SKEWS1, strict=True)):
        now0 = base + k * TICK + delay
        events += [tick_event(0, now0), tick_event(1, now0 + skew)]
    return events


def test_hz_phase_and_skew_of_two_cpus() -> None:
    ticks = cal.tick_times(two_cpu_ticks())
    assert sorted(ticks) == [0, 1] and len(ticks[0]) == 10
    assert cal.hz_from_ticks(ticks) == 250
    assert cal.tick_phase(ticks[0], TICK) == PHASE  # the tick with 0 delay is on the grid
    skews = cal.tick_skew(ticks, TICK, PHASE)
    assert skews[0].mean == 0 and set(skews[0].jitter.values()) == {0}
    one = skews[1]
    assert one.ticks == 10
    assert one.mean == sum(SKEWS1) // 10 == -3_000
    # quantiles of skew − mean, linear between order statistics: sorted centred skews are
    # -47000 -37000 0 4000 5000 6000 7000 8000 10000 44000
    assert one.jitter == {0.05: -42_500, 0.25: 1_000, 0.5: 5_500, 0.75: 7_750, 0.95: 28_700}
    # CPU 1's delay after the grid: CPU 0's delay + skew
    delays1 = sorted(d + s for d, s in zip(DELAYS0, SKEWS1, strict=True))
    assert one.delay[0.5] == (delays1[4] + delays1[5]) // 2


def test_hz_of_other_configs_and_gaps_from_stopped_ticks() -> None:
    for hz in (100, 300, 1000):
        tick = 1_000_000_000 // hz
        times = [5 * tick + k * tick + 7_000 for k in range(20)]
        assert cal.hz_from_ticks({0: times}) == hz
    # a CPU whose tick stopped for a while (NO_HZ idle) leaves one long gap: the median holds
    gappy = [k * TICK for k in (*range(10), 50, 51, 52)]
    assert cal.hz_from_ticks({1: gappy}) == 250
    with pytest.raises(ValueError, match="at least two ticks"):
        cal.hz_from_ticks({0: [TICK]})


def test_the_phase_wraps_around_the_tick() -> None:
    # grid at 3.99 ms past each 4 ms: some ticks run after the next multiple of 4 ms
    times = [k * TICK + 3_990_000 + delay for k, delay in enumerate((0, 15_000, 30_000, 5_000))]
    assert cal.tick_phase(times, TICK) == 3_990_000


def test_ticks_from_the_trace_text() -> None:
    text = """\
          <idle>-0       [001] d.h1.   770.072117: hrtimer_expire_entry: hrtimer=000000003f6f4392 function=tick_nohz_handler now=770072105882
          <idle>-0       [000] d.h1.   770.072122: hrtimer_expire_entry: hrtimer=0000000050927cc6 function=tick_nohz_handler now=770072085884
          <idle>-0       [000] d.h1.   770.076029: hrtimer_expire_entry: hrtimer=0000000050927cc6 function=tick_nohz_handler now=770076027917
"""  # noqa: E501 - tracefs lines as the kernel writes them
    ticks = cal.tick_times(parse_trace(text))
    assert ticks == {0: [770072085884, 770076027917], 1: [770072105882]}
    skews = cal.tick_skew(ticks, TICK, 0)
    assert skews[1].mean == 770072105882 - 770072085884 == 19_998


def test_armed_tick_expiries_from_timer_list() -> None:
    text = """\
cpu: 0
 clock 0:
active timers:
 #0: <0000000050927cc6>, tick_nohz_handler, S:01
 # expires at 662108000000-662108000000 nsecs [in 739109 to 739109 nsecs]
 #1: <0000000019fa5478>, hrtimer_wakeup, S:01
 # expires at 662138593228-662138643228 nsecs [in 31332337 to 31382337 nsecs]
cpu: 1
 clock 0:
active timers:
 #0: <0000000011111111>, hrtimer_wakeup, S:01
 # expires at 662100000001-662100050001 nsecs [in 1 to 2 nsecs]
 #1: <000000003f6f4392>, tick_nohz_handler, S:01
 # expires at 662112000000-662112000000 nsecs [in 1435341 to 1435341 nsecs]
"""
    assert cal.timer_list_tick(text, "tick_nohz_handler") == {0: 662108000000, 1: 662112000000}
    assert cal.tick_handler(text) == "tick_nohz_handler"
    assert (
        cal.tick_handler(text.replace("tick_nohz_handler", "tick_sched_timer"))
        == "tick_sched_timer"
    )
    assert cal.config_hz("# CONFIG_HZ_1000 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n") == 250
    assert cal.config_hz("CONFIG_NO_HZ=y\n") is None


# ---- slices -----------------------------------------------------------------------------------
A, B, X = 101, 102, 7  # two hogs and a foreign task


def test_timeslices_are_the_clean_turns_of_two_hogs() -> None:
    events = [
        switch(0, 1, X, A),  # A in from a foreign task: not a clean start
        switch(4 * MS, 1, A, B),  # B's turn starts
        switch(8 * MS, 1, B, A),  # 4 ms turn of B
        switch(12 * MS, 1, A, B),  # 4 ms turn of A
        switch(13 * MS, 1, B, X),  # B cut by a foreign task: left out
        switch(13 * MS + 50 * US, 1, X, B),
        switch(16 * MS, 1, B, A),
        switch(24 * MS, 1, A, B),  # 8 ms turn of A (two ticks)
        switch(10 * MS, 0, X, 0),  # another CPU: ignored
    ]
    assert cal.timeslices(events, A, B) == [4 * MS, 4 * MS, 8 * MS]


def test_slice_ends_at_the_tick_or_precisely() -> None:
    assert cal.slice_ends_from([4 * MS, 4 * MS + 20 * US, 3_980 * US], TICK) == "tick"
    assert cal.slice_ends_from([8 * MS, 8 * MS, 4 * MS], TICK) == "tick"
    assert cal.slice_ends_from([1_400 * US] * 5, TICK) == "precise"
    assert cal.slice_ends_from([6 * MS] * 5, TICK) == "precise"
    with pytest.raises(ValueError):
        cal.slice_ends_from([], TICK)


C = 103  # the second hog on the shared CPU


def test_a_ticks_switch_is_timed_from_its_handler() -> None:
    """Hog-to-hog switches on the shared CPU, each from the last tick handler's ``now`` there;
    switches through another task, far from any tick, or before the first tick do not count."""
    events = [
        switch(1 * MS, 1, B, C),  # before any tick of CPU 1
        tick_event(1, 4 * MS + 9_300),
        switch(4 * MS + 20 * US, 1, B, C),  # 10.7 us after the handler, + 0.5 us (trace text)
        tick_event(1, 8 * MS + 10_000),
        switch(8 * MS + 21 * US, 1, C, X),  # the tick let a foreign task in: not hog to hog
        switch(8 * MS + 30 * US, 1, X, B),
        tick_event(1, 12 * MS + 11_000),
        switch(12 * MS + 23 * US, 1, B, C),  # 12 us
        tick_event(1, 16 * MS + 9_000),
        switch(17_500 * US, 1, C, B),  # 1.491 ms after the tick: not the tick's switch
        tick_event(0, 20 * MS + 500),  # CPU 0's tick does not time CPU 1's switches
        switch(20 * MS + 20 * US, 1, B, C),
        switch(20 * MS + 15 * US, 0, A, X),
    ]
    # the trace text's µs-truncated switch times get half a µs back
    assert cal.tick_switches(events, B, C, 1, TICK // cal.TICK_SWITCH_SHARE) == [11_200, 12_500]
    assert cal.tick_switches(events, B, C, 1, 12 * US) == [11_200]
    assert cal.tick_switches(events, B, C, 0, TICK) == []  # no hog-to-hog switch on CPU 0


def test_base_slice_from_proc_sched() -> None:
    text = (
        "hog (123, #threads: 1)\n-------\nse.exec_start   :   706695.390420\n"
        "policy                                       :                    0\n"
        "se.slice                                     :              1400000\n"
    )
    assert cal.se_slice(text) == 1_400_000
    assert cal.se_slice("se.vruntime : 1.0\n") is None


# ---- page faults ------------------------------------------------------------------------------
def test_page_fault_cost_per_page() -> None:
    pages = 8192  # 32 MiB
    loop = 60  # ns per page of the touching loop itself, on both passes
    trials = [
        (pages * (2_500 + loop), pages * loop, pages),
        (pages * (2_600 + loop), pages * loop, pages),
        (pages * (2_450 + loop + 5), pages * (loop + 5), pages),
        (pages * (40_000 + loop), pages * loop, pages),
    ]  # one trial preempted: median
    assert cal.page_fault_cost(trials) == 2_550
    assert cal.page_fault_cost([(100, 200, 10)]) == 0  # never negative
    with pytest.raises(ValueError):
        cal.page_fault_cost([])


def test_calibrate_and_what_started_it_are_ours() -> None:
    # a comm may hold spaces and parentheses: the fields after the last ')' are the kernel's
    stat = "4242 (tmux: a (b) c) S 4100 4242 4100 0 -1 4194560 1234 0 0 0 5 3 0 0 20 0 1 0"
    assert procfs.parent_pid(stat) == 4100
    ours = cal.own_tasks(os.getpid())
    assert {os.getpid(), threading.get_native_id(), os.getppid()} <= ours
    assert 1 not in ours and procfs.ancestors(os.getpid())[0] == os.getppid()


def _probe() -> Path:
    try:
        return compiled(cal.PROBE_SOURCE)
    except NoCompiler as exc:
        pytest.skip(exc.message)


def test_the_probe_reports_what_the_estimators_read() -> None:
    """The C probe's lines: per fault trial first/second pass ns and the pages of 1 MiB, per
    write trial CPU ns and the calls; it waits for a line on stdin first; bad usage is refused."""
    probe = str(_probe())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([probe, *args], input="go\n", capture_output=True, text=True)

    done = run("fault", "1", "2")
    assert done.returncode == 0, done.stderr
    faults = [(int(a), int(b), int(c)) for a, b, c in map(str.split, done.stdout.splitlines())]
    assert [pages for _, _, pages in faults] == [256, 256]
    assert all(first > 0 and second > 0 for first, second, _ in faults)
    assert cal.page_fault_cost(faults) >= 0
    done = run("nullwrite", "1000", "3")
    assert done.returncode == 0, done.stderr
    writes = [(int(a), int(b)) for a, b in map(str.split, done.stdout.splitlines())]
    assert [calls for _, calls in writes] == [1000] * 3 and all(ns > 0 for ns, _ in writes)
    bad = run("fault", "0", "1")
    assert bad.returncode == 2 and "usage: probe" in bad.stderr
    unknown = run("sleep", "1", "1")
    assert unknown.returncode == 2 and "unknown probe sleep" in unknown.stderr


def test_null_write_cost_per_call() -> None:
    calls = 200_000
    trials = [(16_134_983, calls), (16_198_609, calls), (16_168_023, calls), (30_000_000, calls)]
    # 80.67, 80.99, 80.84 and a preempted-looking 150 ns per call: the median of the four
    assert cal.null_write_cost(trials) == round((80.84 + 80.99) / 2) == 81
    assert cal.null_write_cost([(7_800, 100), (1, 0)]) == 78  # a trial of no call is skipped
    with pytest.raises(ValueError, match="write trials"):
        cal.null_write_cost([])


# ---- noise ------------------------------------------------------------------------------------
ME = 100  # calibrate itself


def test_noise_is_the_preemptions_of_the_hogs_by_tasks_not_ours() -> None:
    hogs, ours = {A, B, C}, {A, B, C, ME}
    start, end = 1 * MS, 501 * MS
    events = [
        switch(500 * US, 0, A, X),  # before the window (calibrate was setting it up)
        switch(600 * US, 0, X, A),
        switch(2 * MS, 0, A, X),  # X runs 30 us on CPU 0
        switch(2 * MS + 30 * US, 0, X, 8),  # then 8 runs 5 us: one preemption of 35 us
        switch(2 * MS + 35 * US, 0, 8, A),
        switch(3 * MS, 0, A, ME),  # calibrate itself: not noise
        switch(3 * MS + 20 * US, 0, ME, X),  # after our own task: ours to answer for
        switch(3 * MS + 50 * US, 0, X, A),
        switch(4 * MS, 0, A, 9),  # 9 runs 5 us
        switch(4 * MS + 5 * US, 0, 9, A),
        switch(10 * MS, 1, B, 9),  # 9 runs 2 ms on CPU 1, then the other hog has its turn
        switch(12 * MS, 1, 9, C),
        switch(16 * MS, 1, C, B),  # hog to hog: not noise
        switch(20 * MS, 1, B, X),  # X runs 1 ms, then the CPU idles: a preemption of 1 ms
        switch(21 * MS, 1, X, 0),
        switch(22 * MS, 1, 0, B),
        switch(500 * MS, 0, A, X),  # ends after the window: its length is not known
        switch(502 * MS, 0, X, A),
    ]
    runs = cal.noise_preemptions(events, hogs, ours, start, end)
    assert runs == {0: [35 * US, 5 * US], 1: [2 * MS, 1 * MS]}
    noise = cal.noise_cpu(0, runs[0], end - start)
    assert noise.rate_per_s == 4.0 and noise.share == 0.0001  # 40 us of 500 ms
    # quantiles linear between 5 and 35 us, rounded to the trace's 1 us
    assert noise.run_length.quantiles == {
        "p0": 5 * US,
        "p5": 6 * US,
        "p25": 12 * US,
        "p50": 20 * US,
        "p75": 28 * US,
        "p95": 34 * US,
        "p99": 35 * US,
        "p100": 35 * US,
    }
    assert cal.noise_cpu(1, runs[1], end - start).share == 0.006  # 3 ms of 500 ms
    quiet = cal.noise_cpu(1, [], 500 * MS)
    assert quiet.rate_per_s == 0 and quiet.share == 0 and quiet.run_length.quantile(0.5) == 0


# ---- the command ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (
            NotRoot("cfssim measure needs root to create cgroups and move tasks (run as root)"),
            22,
            "cfssim measure needs root",
        ),
        (
            NoCgroupFs("no cgroup filesystem is mounted (neither cgroup v1 nor cgroup2)"),
            23,
            "no cgroup filesystem is mounted",
        ),
    ],
)
def test_refused_where_it_cannot_measure(
    monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, words: str
) -> None:
    def cannot() -> None:
        raise error

    monkeypatch.setattr(cal, "detect", cannot)
    result = CliRunner().invoke(main, ["calibrate"])
    assert result.exit_code == type(error).exit_status == status  # type: ignore[attr-defined]
    assert f"cfssim calibrate: {words}" in result.output
    assert "Traceback" not in result.output


class _Driver:
    """A cgroup driver that records what calibrate asks of it."""

    run_name = "cfssim-test"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def create(self, configs: object) -> None:
        self.calls.append("create")

    def remove(self) -> None:
        self.calls.append("remove")


def test_refused_without_a_compiler_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _Driver()
    monkeypatch.setattr(cal, "detect", lambda: None)
    monkeypatch.setattr(cal, "make_driver", lambda layout: driver)
    monkeypatch.setattr(cal, "mount_tracefs", lambda: Path("/sys/kernel/tracing"))

    def no_compiler(source: Path) -> Path:
        raise NoCompiler(f"cfssim compiles a small C program ({source.name}) on first use, but no")

    monkeypatch.setattr(cal, "compiled", no_compiler)
    result = CliRunner().invoke(main, ["calibrate"])
    assert result.exit_code == NoCompiler.exit_status == 27
    assert "cfssim calibrate: cfssim compiles a small C program (probe.c)" in result.output
    assert driver.calls == ["remove"]  # nothing was made, and the cleanup still ran


def test_a_bad_duration_is_bad_input() -> None:
    result = CliRunner().invoke(main, ["calibrate", "--duration", "10ms"])
    assert result.exit_code == 2
    assert "expected 500ms to 1m, found '10ms'" in result.output


# ---- on this host -----------------------------------------------------------------------------
def _usable() -> None:
    try:
        detect()
    except RealRunError as exc:
        pytest.skip(f"cannot measure on this machine: {exc.message}")


def _leftovers() -> list[str]:
    mine = f"{PREFIX}{os.getpid()}-"
    found = [str(p) for m in detect().hierarchies for p in m.glob(mine + "*")]
    tracefs = find_tracefs()
    if tracefs is not None:
        found += [str(p) for p in (tracefs / "instances").glob(mine + "*")]
    return found


@pytest.mark.kernel
def test_calibrate_this_host(tmp_path: Path) -> None:
    """The development machines' figures (docs/host-profile.md); noise and skew vary with the
    load of the machine and are only checked for shape."""
    _usable()
    result = CliRunner().invoke(
        main, ["calibrate", "--duration", "1.5s", "-o", str(tmp_path / "host.yaml")]
    )
    assert result.exit_code == 0, result.output
    profile = load_profile(tmp_path / "host.yaml")
    assert profile.hz == 250 and profile.cpus == os.cpu_count()
    assert profile.slice_ends == "tick"
    assert 700 * US <= profile.base_slice_ns <= 4 * MS
    assert profile.timer_slack_ns == 50_000
    assert 300 <= profile.page_fault_ns_per_page <= 20_000
    assert 20 <= profile.null_write_ns_per_call <= 2_000
    assert 1 * US <= profile.tick_switch_ns <= 1 * MS  # within the first quarter tick
    assert profile.sched_cfs_bandwidth_slice_us == 5_000
    assert (profile.sched_rt_runtime_us, profile.sched_rt_period_us) == (950_000, 1_000_000)
    assert profile.tick is not None and profile.tick.phase_ns < 4 * MS
    assert [entry.cpu for entry in profile.tick.cpus] == list(range(profile.cpus))
    assert all(abs(entry.offset_ns) < 2 * MS for entry in profile.tick.cpus)
    assert profile.noise is not None and len(profile.noise.cpus) == profile.cpus
    assert _leftovers() == []


@pytest.mark.kernel
def test_interrupted_calibration_leaves_nothing_behind() -> None:
    _usable()
    code = "from cfssim.cli import main; main(['calibrate', '--duration', '20s'])"
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(cal.__file__).parents[2])},
    )
    mine = f"{PREFIX}{child.pid}."  # cfssim-<pid>.<start time>-<n> (`cgroupfs.owner_tag`)
    deadline = time.monotonic() + 10
    instances = (find_tracefs() or Path("/nonexistent")) / "instances"
    while not list(instances.glob(mine + "*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the window is being traced
    assert list(instances.glob(mine + "*")), "the calibration never started tracing"
    hogs = [
        int(t)
        for m in detect().hierarchies
        for p in m.glob(mine + "*")
        for t in (p / "tasks").read_text().split()
    ]
    assert hogs
    child.send_signal(signal.SIGINT)
    child.wait(timeout=20)
    assert child.returncode != 0
    assert not list(instances.glob(mine + "*"))
    assert not [p for m in detect().hierarchies for p in m.glob(mine + "*")]
    assert not [tid for tid in hogs if Path(f"/proc/{tid}").exists()]


@pytest.mark.parametrize(
    ("allowed", "placement"),
    [
        ({0, 1}, [0, 1, 1]),
        ({0}, [0, 0]),
        ({3, 1, 5}, [1, 3, 5, 5]),  # a restricted cpuset: only its CPUs, the shared one its last
    ],
)
def test_hogs_go_on_the_cpus_this_process_may_use(allowed: set[int], placement: list[int]) -> None:
    assert cal.hog_cpus(allowed) == placement
