"""Trace export: ftrace text round-trips through our reader; Chrome JSON and the Perfetto protobuf
(parsed back with the perfetto package's own proto classes) carry the same switches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cfssim
from cfssim.export import (
    STATE_BITS,
    Switch,
    chrome_trace,
    counters,
    ftrace_text,
    merged_segments,
    read_ftrace,
    sched_events,
)
from cfssim.interop_commands import export
from cfssim.units import ms

SCENARIO = """
name: exp
duration: 500ms
machine: {cpus: 2, policy: cfs}
cgroups:
  /app: {cpu.cfs_quota_us: 50000}
  /mem: {memory.limit_in_bytes: 64MiB}
processes:
  - {name: web, cgroup: /app, threads: 3, repeat: forever, program: [{run: 7ms}, {sleep: 3ms}]}
  - {name: hog, cpus: [0], repeat: forever, program: [{run: forever}]}
  - {name: m, cgroup: /mem, repeat: 3, program: [{alloc: 4MiB}, {sleep: 20ms}, {run: 1ms}]}
"""


@pytest.fixture(scope="module")
def result() -> cfssim.Result:
    return cfssim.run_scenario(cfssim.load_scenario(SCENARIO))


def test_switches_follow_the_segments(result: cfssim.Result) -> None:
    switches, wakeups = sched_events(result)
    segments = merged_segments(result.trace)
    # every stretch of running starts with a switch to that task on that CPU
    ins = {(s.cpu, s.next - 1, s.time) for s in switches if s.next}
    assert ins == {(cpu, task, start) for cpu, task, start, _ in segments.tolist()}
    # a task left with no wakeup before its next run was preempted or throttled (R+)
    web0 = result.trace.tasks.index("web/0") + 1
    states = {s.prev_state for s in switches if s.prev == web0}
    assert states <= {"R+", "S"} and "S" in states
    hog = result.trace.tasks.index("hog/0") + 1
    assert {s.prev_state for s in switches if s.prev == hog} == {"R+"}  # never sleeps
    m = result.trace.tasks.index("m/0") + 1
    assert [s.prev_state for s in switches if s.prev == m][-1] == "X"  # exits after 3 rounds
    assert len([w for w in wakeups if not w.new]) == len(result.trace["wakeups"]["time"])
    # every task's first run follows its sched_wakeup_new (no wakeup before it)
    assert sorted(w.pid for w in wakeups if w.new) == list(range(1, len(result.trace.tasks) + 1))


def test_ftrace_text_is_the_kernel_format_and_round_trips(result: cfssim.Result) -> None:
    text = ftrace_text(result, ns_precision=True)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[0] == (
        "          <idle>-0       [000] d..3.     0.000000000: sched_wakeup_new: "
        "comm=web/0 pid=1 prio=120 target_cpu=000"
    )
    first_switch = next(line for line in lines if "sched_switch" in line)
    assert first_switch == (
        "          <idle>-0       [000] d..2.     0.000000000: sched_switch: "
        "prev_comm=swapper/0 prev_pid=0 prev_prio=120 prev_state=R ==> "
        "next_comm=web/0 next_pid=1 next_prio=120"
    )
    assert text.startswith("# tracer: nop\n")
    back = read_ftrace(text, end_ns=result.duration_ns)
    assert back.tasks == result.trace.tasks
    assert np.array_equal(merged_segments(back), merged_segments(result.trace))
    original = result.trace["wakeups"]
    key = np.lexsort((original["task"], original["time"]))
    back_key = np.lexsort((back["wakeups"]["task"], back["wakeups"]["time"]))
    for column in ("task", "cpu", "time", "latency", "waker"):
        assert np.array_equal(back["wakeups"][column][back_key], original[column][key])


def test_microsecond_ftrace_truncates_times_like_the_kernel(result: cfssim.Result) -> None:
    text = ftrace_text(result)
    assert "     0.000000: sched_switch: prev_comm=swapper/0" in text
    back = merged_segments(read_ftrace(text, end_ns=result.duration_ns))
    original = merged_segments(result.trace)
    assert np.array_equal(back[:, :2], original[:, :2])
    assert np.array_equal(back[:, 2], original[:, 2] // 1000 * 1000)


def test_counters(result: cfssim.Result) -> None:
    series = {c.name: c for c in counters(result)}
    usage = series["/app cpuacct.usage"]
    assert usage.values[-1] == result.cgroups["/app"]["cpuacct.usage"]
    assert list(usage.values) == sorted(usage.values)  # cumulative
    quota = series["/app quota remaining"]
    assert set(quota.values[::2]) == {ms(50)}  # refilled each period
    assert min(quota.values) == 0  # web wants 3 × 70% of a CPU: the quota runs out
    memory = series["/mem memory usage"]
    assert (
        max(memory.values) == result.cgroups["/mem"]["memory.max_usage_in_bytes"] == 3 * (4 << 20)
    )


def test_chrome_trace_has_the_same_stretches_and_counters(result: cfssim.Result) -> None:
    data = json.loads(json.dumps(chrome_trace(result)))
    slices = sorted(
        (e["tid"], e["args"]["pid"] - 1, round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000))
        for e in data["traceEvents"]
        if e["ph"] == "X"
    )
    assert slices == sorted(tuple(row) for row in merged_segments(result.trace).tolist())
    counter_names = {e["name"] for e in data["traceEvents"] if e["ph"] == "C"}
    assert counter_names == {c.name for c in counters(result)}


def test_perfetto_protobuf_parses_back(result: cfssim.Result) -> None:
    """Parsed with the perfetto package's proto classes: TraceProcessor needs a binary that is
    downloaded on first use, which an offline machine cannot do."""
    pytest.importorskip("perfetto", reason="the perfetto extra is not installed")
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace as PerfettoTrace

    from cfssim.export import perfetto_trace

    parsed = PerfettoTrace.FromString(perfetto_trace(result))
    switches = []
    names: dict[int, str] = {}
    counters_seen: dict[int, str] = {}
    values = 0
    for packet in parsed.packet:
        if packet.HasField("process_tree"):
            names.update({t.tid: t.name for t in packet.process_tree.threads})
        if packet.HasField("ftrace_events"):
            for event in packet.ftrace_events.event:
                if event.HasField("sched_switch"):
                    sw = event.sched_switch
                    state = {v: k for k, v in STATE_BITS.items()}[sw.prev_state]
                    switches.append(
                        Switch(
                            event.timestamp,
                            packet.ftrace_events.cpu,
                            sw.prev_pid,
                            state,
                            sw.next_pid,
                        )
                    )
        if packet.HasField("track_descriptor"):
            counters_seen[packet.track_descriptor.uuid] = packet.track_descriptor.name
        if packet.HasField("track_event"):
            values += 1
    expected, _ = sched_events(result)
    assert sorted(switches, key=lambda s: (s.time, s.cpu)) == expected
    assert names[1] == "web/0" and len(names) == len(result.trace.tasks)
    assert sorted(counters_seen.values()) == sorted(c.name for c in counters(result))
    assert values == sum(len(c.times) for c in counters(result))


def trace_processor_shell() -> str | None:
    """A trace_processor_shell already on this machine: $PERFETTO_TRACE_PROCESSOR_SHELL, or the
    one the perfetto package caches after its first download; None — never downloads one."""
    named = os.environ.get("PERFETTO_TRACE_PROCESSOR_SHELL")
    if named:
        return named
    cached = sorted(Path.home().glob(".local/share/perfetto/prebuilts/trace_processor_shell-*"))
    return str(cached[-1]) if cached and not cached[-1].name.endswith(".tmp") else None


def test_perfetto_trace_processor_reads_back_the_slices_and_names(
    result: cfssim.Result, tmp_path: Path
) -> None:
    """Perfetto's own TraceProcessor loads the export: one ``sched`` slice per stretch of
    running (merged segments) of each thread, and every thread's name."""
    pytest.importorskip("perfetto", reason="the perfetto extra is not installed")
    shell = trace_processor_shell()
    if shell is None:
        pytest.skip(
            "TraceProcessor runs a trace_processor_shell binary that perfetto downloads from "
            "commondatastorage.googleapis.com on first use: none is cached here, and the tests "
            "download nothing (set PERFETTO_TRACE_PROCESSOR_SHELL to one)"
        )
    from perfetto.trace_processor import TraceProcessor, TraceProcessorConfig

    from cfssim.export import perfetto_trace

    path = tmp_path / "run.perfetto-trace"
    path.write_bytes(perfetto_trace(result))
    processor = TraceProcessor(trace=str(path), config=TraceProcessorConfig(bin_path=shell))
    try:
        slices = processor.query(
            "SELECT thread.tid AS tid, COUNT(*) AS n FROM sched JOIN thread USING (utid) "
            "WHERE thread.tid != 0 GROUP BY thread.tid"
        ).as_pandas_dataframe()
        threads = processor.query(
            "SELECT tid, name FROM thread WHERE tid != 0"
        ).as_pandas_dataframe()
    finally:
        processor.close()
    segments = merged_segments(result.trace)
    tasks, counts = np.unique(segments[:, 1], return_counts=True)
    assert dict(zip(slices["tid"], slices["n"], strict=True)) == {
        int(task) + 1: int(n) for task, n in zip(tasks, counts, strict=True)
    }
    assert dict(zip(threads["tid"], threads["name"], strict=True)) == {
        i + 1: name for i, name in enumerate(result.trace.tasks)
    }


@pytest.mark.parametrize("fmt", ["chrome", "ftrace", "perfetto"])
def test_export_command(result: cfssim.Result, tmp_path: Path, fmt: str) -> None:
    if fmt == "perfetto":
        pytest.importorskip("perfetto", reason="the perfetto extra is not installed")
    result.save(tmp_path)
    outcome = CliRunner().invoke(export, [str(tmp_path), "--format", fmt])
    assert outcome.exit_code == 0, outcome.output
    written = Path(outcome.output.split("wrote ", 1)[1].strip())
    assert written.stat().st_size > 0
    if fmt == "ftrace":
        back = read_ftrace(written.read_text(), end_ns=result.duration_ns)
        assert np.array_equal(merged_segments(back)[:, :2], merged_segments(result.trace)[:, :2])


def test_export_without_a_trace_is_a_clear_error(result: cfssim.Result, tmp_path: Path) -> None:
    result.to_json(tmp_path / "result.json")
    outcome = CliRunner().invoke(export, [str(tmp_path), "--format", "chrome"])
    assert outcome.exit_code == 2
    assert "expected a run directory with result.json and trace.npz" in outcome.output


OOM = """
name: oom
duration: 200ms
machine: {cpus: 2}
cgroups:
  /box: {memory.limit_in_bytes: 8MiB}
processes:
  - {name: hog, repeat: forever, program: [{run: forever}]}
  - {name: eater, cgroup: /box, program: [{run: 2ms}, {alloc: 16MiB}, {sleep: 50ms}]}
  - {name: web, threads: 2, repeat: forever, program: [{run: 3ms}, {sleep: 2ms}]}
"""

#: The TP_printk formats of 6.18 (events/<system>/<event>/format, "print fmt"), as regexes.
FORMATS = {
    "sched_switch": r"prev_comm=\S+ prev_pid=\d+ prev_prio=\d+ prev_state=(R|R\+|S|D|X) ==> "
    r"next_comm=\S+ next_pid=\d+ next_prio=\d+",
    "sched_wakeup": r"comm=\S+ pid=\d+ prio=\d+ target_cpu=\d{3}",
    "sched_wakeup_new": r"comm=\S+ pid=\d+ prio=\d+ target_cpu=\d{3}",
    "sched_migrate_task": r"comm=\S+ pid=\d+ prio=\d+ orig_cpu=\d+ dest_cpu=\d+",
    "sched_process_exit": r"comm=\S+ pid=\d+ prio=\d+ group_dead=(true|false)",
    "mark_victim": r"pid=\d+ comm=\S+ total-vm=\d+kB anon-rss=\d+kB file-rss:\d+kB "
    r"shmem-rss:\d+kB uid=\d+ pgtables=\d+kB oom_score_adj=-?\d+",
}


def test_every_line_type_in_the_kernels_format_with_the_wakers_context() -> None:
    import re

    from cfssim.ftrace import parse_trace

    oom = cfssim.run_scenario(cfssim.load_scenario(OOM))
    text = ftrace_text(oom)
    events = list(parse_trace(text))
    seen = {e.name for e in events}
    assert seen == set(FORMATS), seen ^ set(FORMATS)
    for event in events:
        assert re.fullmatch(FORMATS[event.name], event.body), event.body
    eater = oom.trace.tasks.index("eater/0") + 1
    victim = [e for e in events if e.name == "mark_victim"]
    assert [e.fields["pid"] for e in victim] == [eater]
    exits = [e for e in events if e.name == "sched_process_exit" and e.fields["pid"] == eater]
    assert len(exits) == 1 and exits[0].body.endswith("group_dead=true")
    # killed at its charge (no wait in the OOM path in this run): its last switch-out is X, at
    # the kill; a victim switched out earlier and never run again would show D
    out = [e for e in events if e.name == "sched_switch" and e.fields["prev_pid"] == eater]
    assert out[-1].body.split("prev_state=")[1].startswith("X ")
    assert out[-1].time_ns // 1000 == victim[0].time_ns // 1000
    # wakeups come from the context of the task running on the CPU then, not always idle
    wakers = {e.pid for e in events if e.name == "sched_wakeup"}
    assert wakers - {0} and wakers <= set(range(len(oom.trace.tasks) + 1))
    back = read_ftrace(text, end_ns=oom.duration_ns)
    original = oom.trace["wakeups"]
    assert sorted(back["wakeups"]["waker"].tolist()) == sorted(original["waker"].tolist())


OOM_WAIT = """
name: oom-wait
duration: 200ms
machine: {cpus: 2}
cgroups:
  /box: {memory.limit_in_bytes: 8MiB, memory.oom_control: 1}
processes:
  - {name: hog, repeat: forever, program: [{run: forever}]}
  - {name: eater, cgroup: /box, program: [{run: 2ms}, {alloc: 16MiB}, {run: 1ms}, {sleep: 50ms}]}
events:
  - at: 100ms
    write: {/box: {%s}}
"""


def eater_lines(write: str) -> list[tuple[int, str, str]]:
    """(µs, event, body) of the ftrace lines about the eater, or in its context."""
    from cfssim.ftrace import parse_trace

    result = cfssim.run_scenario(cfssim.load_scenario(OOM_WAIT % write))
    return [
        (e.time_ns // 1000, e.name, e.body)
        for e in parse_trace(ftrace_text(result))
        if "eater/0" in e.body
    ]


def test_an_oom_waiter_is_switched_out_in_d_and_its_kill_is_marked() -> None:
    """The eater faults 16 MiB into an 8 MiB group with oom_kill_disable: at 8 MiB (2 ms, no
    fault cost) it sleeps in ``mem_cgroup_oom_synchronize``, TASK_KILLABLE — ``D``. Clearing
    oom_kill_disable at 100 ms wakes it to retry, and the OOM killer kills it, the group's only
    task: ``mark_victim`` with the 8 MiB it holds (8192 kB), then its exit."""
    lines = eater_lines("memory.oom_control: 0")
    out = [
        (t, body.split("prev_state=")[1][0]) for t, name, body in lines if "prev_comm=eat" in body
    ]
    assert out == [(2_000, "D")]
    assert [(t, name) for t, name, _ in lines if name != "sched_switch"][-2:] == [
        (100_000, "mark_victim"),
        (100_000, "sched_process_exit"),
    ]
    victim = next(body for _, name, body in lines if name == "mark_victim")
    assert "total-vm=8192kB anon-rss=8192kB" in victim


def test_an_oom_waiter_woken_by_a_higher_limit_was_in_d_and_is_not_killed() -> None:
    """The same wait ended by raising the limit to 32 MiB: the switch-out at 2 ms is still ``D``
    (the wait, not a sleep step), a ``sched_wakeup`` at 100 ms, 1 ms of run, then the 50 ms
    sleep (``S``); no OOM kill."""
    lines = eater_lines("memory.limit_in_bytes: 32MiB")
    out = [
        (t, body.split("prev_state=")[1][0]) for t, name, body in lines if "prev_comm=eat" in body
    ]
    assert out == [(2_000, "D"), (101_000, "S")]
    assert (100_000, "sched_wakeup") in [(t, name) for t, name, _ in lines]
    assert not [name for _, name, _ in lines if name == "mark_victim"]


def test_a_waiter_never_woken_stays_in_d() -> None:
    """Nothing ends the wait (a write that changes nothing): the one switch-out is ``D``."""
    lines = eater_lines("memory.oom_control: 1")
    out = [
        (t, body.split("prev_state=")[1][0]) for t, name, body in lines if "prev_comm=eat" in body
    ]
    assert out == [(2_000, "D")]
    assert not [name for _, name, _ in lines if name in ("mark_victim", "sched_process_exit")]
