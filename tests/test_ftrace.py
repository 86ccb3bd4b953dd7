"""`cfssim.ftrace`: the one ftrace line parser behind `cfssim.real.tracefs` (a real run's events)
and `cfssim.export.read_ftrace` (ftrace text back into tables)."""

from __future__ import annotations

import cfssim
from cfssim.export import ftrace_text, sched_events
from cfssim.ftrace import FORK, SWITCH, TASK, WAKEUP, Event, parse_trace
from cfssim.real import tracefs

SCENARIO = """
name: two
duration: 50ms
machine: {cpus: 2, policy: eevdf}
processes:
  - {name: web, threads: 3, repeat: forever, program: [{run: 7ms}, {sleep: 3ms}]}
"""


def test_tracefs_reads_events_with_the_shared_parser() -> None:
    assert tracefs.parse_trace is parse_trace and tracefs.Event is Event


def test_kernel_ns_and_tgid_lines_give_the_same_event() -> None:
    body = (
        "prev_comm=my worker prev_pid=12 prev_prio=120 prev_state=S ==> "
        "next_comm=swapper/1 next_pid=0 next_prio=120"
    )
    lines = [
        f"   my worker-12      [001] d..2.  1240.974878: sched_switch: {body}",  # the kernel's
        f"   my worker-12      [001]  1240.974878000: sched_switch: {body}",  # trace-cmd -t
        f"   my worker-12      (   12) [001] d..2. 1240.974878: sched_switch: {body}",  # tgid
    ]
    events = [next(parse_trace(line)) for line in lines]
    assert (
        events[0]
        == events[1]
        == events[2]
        == Event(
            1240_974_878_000,
            1,
            12,
            "sched_switch",
            {"prev_pid": 12, "prev_prio": 120, "next_pid": 0, "next_prio": 120},
        )
    )
    switch = SWITCH.match(events[0].body)
    assert switch is not None and (switch["prev_comm"], switch["next_comm"]) == (
        "my worker",
        "swapper/1",
    )
    assert list(parse_trace("# tracer: nop\nCPU:1 [LOST 12 EVENTS]\n")) == []


def test_fork_and_exit_bodies_keep_comms_with_spaces_whole() -> None:
    text = "\n".join(
        [
            "  my app-40   [000] ...1.   7.000001: sched_process_fork: comm=my app pid=40 "
            "child_comm=my app child_pid=41",
            "  my app-41   [001] ...1.   7.000900: sched_process_exit: comm=my app pid=41 prio=120 "
            "group_dead=0",
        ]
    )
    fork, gone = parse_trace(text)
    forked, exited = FORK.match(fork.body), TASK.match(gone.body)
    assert forked is not None and exited is not None
    assert (forked["comm"], forked["pid"], forked["child_comm"], forked["child_pid"]) == (
        "my app",
        "40",
        "my app",
        "41",
    )
    assert (exited["comm"], exited["pid"], gone.time_ns) == ("my app", "41", 7_000_900_000)
    assert fork.fields == {"pid": 40, "child_pid": 41}


def test_the_exported_text_parses_back_to_the_switches_and_wakeups_it_was_made_of() -> None:
    result = cfssim.run_scenario(cfssim.load_scenario(SCENARIO))
    switches, wakeups = sched_events(result)
    events = list(parse_trace(ftrace_text(result, ns_precision=True)))
    parsed = [
        (e.time_ns, e.cpu, e.fields["prev_pid"], e.fields["next_pid"])
        for e in events
        if e.name == "sched_switch"
    ]
    assert sorted(parsed) == sorted((s.time, s.cpu, s.prev, s.next) for s in switches)
    woken = [
        (e.time_ns, e.fields["target_cpu"], e.fields["pid"])
        for e in events
        if e.name == "sched_wakeup"
    ]
    assert sorted(woken) == sorted((w.time, w.cpu, w.pid) for w in wakeups if not w.new)
    assert all(WAKEUP.match(e.body) for e in events if e.name == "sched_wakeup")
    assert len(parsed) > 10  # 3 threads on 2 CPUs switch every few ms
