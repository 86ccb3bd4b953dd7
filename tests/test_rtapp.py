"""rt-app JSON import: the grammar of rt-app's doc/tutorial.txt, exact timers, warnings, errors.

The workloads below are rt-app's documented examples (doc/tutorial.txt and doc/examples of
scheduler-tools/rt-app), written out by hand; a ``global`` part is added where the example has
none, since cfssim runs a fixed time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfssim.cgroup.files import weight_to_shares
from cfssim.profile import default_profile
from cfssim.scenario import (
    Loop,
    Run,
    ScenarioError,
    Sleep,
    Timer,
    dump_scenario,
    load_scenario,
    load_workload,
)
from cfssim.scenario.rtapp import IoWrite, load_rtapp, relax_json
from cfssim.scenario.steps import SetCpus
from cfssim.units import ms

GLOBAL = '"global": {"duration": 1}'


def write(tmp_path: Path, text: str, name: str = "workload.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def wakeups(result, task: str) -> list[int]:
    trace = result.trace
    index = trace.tasks.index(task)
    table = trace["wakeups"]
    return sorted(int(t) for t in table["time"][table["task"] == index])


# ---- grammar -------------------------------------------------------------------------------------
def test_phases_object_and_inline_events_are_the_same_thread(tmp_path: Path) -> None:
    """tutorial.txt "phase object": the two documented forms are equal."""
    phases = load_rtapp(
        write(
            tmp_path,
            '{"tasks": {"thread1": {"phases": {"phase1": '
            '{"run": 10, "sleep": 10}}}}, ' + GLOBAL + "}",
        )
    )
    inline = load_rtapp(
        write(
            tmp_path,
            '{"tasks": {"thread1": {"run": 10, "sleep": 10}}, ' + GLOBAL + "}",
            "inline.json",
        )
    )
    assert phases.scenario.processes == inline.scenario.processes
    process = phases.scenario.processes[0]
    assert process.name == "thread1" and process.repeat is None  # task loop defaults to -1
    assert process.program == (Run(run=10_000), Sleep(sleep=10_000))


def test_documented_example2_ten_percent_load_with_a_timer(tmp_path: Path) -> None:
    """doc/examples/tutorial/example2.json (comments and a trailing comma, as json-c takes)."""
    text = """{
    /*
     * Simple use case which creates 10% load
     * until the use case is stopped with Ctrl+C
     */
    "tasks" : {
        "thread0" : {
            "instance" : 1,
            "loop" : -1,
            "run" :   10000,
            "timer" : { "ref" : "unique", "period" : 100000 }
        }
    },
    "global" : {
        "duration" : 2,
        "calibration" : "CPU0",
        "default_policy" : "SCHED_OTHER",
        "pi_enabled" : false,
        "lock_pages" : false,
        "logdir" : "./",
        "log_basename" : "rt-app2",
        "ftrace" : true,
        "gnuplot" : true,
    }
}"""
    workload = load_rtapp(write(tmp_path, text))
    assert workload.scenario.duration_ns == ms(2000)
    result = workload.run(policy="cfs")
    assert result.tasks["thread0/0"]["cpu_time_ns"] == ms(200)  # 10 ms every 100 ms for 2 s
    assert wakeups(result, "thread0/0") == [ms(100) * k for k in range(1, 20)]
    # the YAML view: rt-app's relative timer is exactly the relative timer step, no warning
    assert workload.scenario.processes[0].program == (
        Run(run=ms(10)),
        Timer(period=ms(100), mode="relative"),
    )
    assert not any("timer" in warning for warning in workload.warnings)


def test_timer_keeps_its_period_under_preemption_unlike_sleep(tmp_path: Path) -> None:
    """tutorial.txt: task A runs 5 and sleeps 10; task B runs 5 with a timer of 19 — B's period
    stays 19 although A delays it, on one CPU."""
    text = """{"tasks": {
        "A": {"cpus": [0], "run": 5000, "sleep": 10000},
        "B": {"cpus": [0], "run": 5000, "timer": {"ref": "unique", "period": 19000}}},
      "global": {"duration": 1}}"""
    result = load_rtapp(write(tmp_path, text), cpus=1).run(policy="cfs")
    assert wakeups(result, "B/0") == [ms(19) * k for k in range(1, 53)]
    assert result.tasks["B/0"]["cpu_time_ns"] == ms(5) * 53


def test_unique_timer_is_shared_by_the_phases_of_one_thread(tmp_path: Path) -> None:
    """tutorial.txt: "light" and "heavy" phases using one "unique" timer of 30 ms."""
    text = """{"tasks": {"thread": {"instance": 2, "loop": 1, "phases": {
        "light": {"loop": 10, "run": 1000, "timer": {"ref": "unique", "period": 30000}},
        "heavy": {"loop": 10, "run": 4000, "timer": {"ref": "unique", "period": 30000}}}}},
      "global": {"duration": 1}}"""
    result = load_rtapp(write(tmp_path, text)).run(policy="cfs")
    for thread in ("thread/0", "thread/1"):  # one timer per instance: no interference
        # the 20th wakeup ends the thread (loop 1) before it runs again
        assert wakeups(result, thread) == [ms(30) * k for k in range(1, 20)]
        assert result.tasks[thread]["exit"]["time_ns"] == ms(600)
        assert result.tasks[thread]["cpu_time_ns"] == 10 * ms(1) + 10 * ms(4)


def test_different_timer_names_start_from_the_thread_start(tmp_path: Path) -> None:
    """tutorial.txt: "uniqueA" (30 ms) then "uniqueB" (400 ms): a timer's first period starts
    at the thread's start (rt-app's t_first), not at its first use."""
    text = """{"tasks": {"thread": {"loop": 1, "phases": {
        "light": {"loop": 10, "run": 1000, "timer": {"ref": "uniqueA", "period": 30000}},
        "heavy": {"loop": 2, "run": 4000, "timer": {"ref": "uniqueB", "period": 400000}}}}},
      "global": {"duration": 1}}"""
    result = load_rtapp(write(tmp_path, text)).run(policy="cfs")
    assert wakeups(result, "thread/0") == [ms(30) * k for k in range(1, 11)] + [ms(400)]
    assert result.tasks["thread/0"]["exit"]["time_ns"] == ms(800)


@pytest.mark.parametrize(
    ("mode", "expected_ms"), [("relative", [20, 40, 90, 110]), ("absolute", [20, 40, 100])]
)
def test_timer_modes_after_an_overrun(tmp_path: Path, mode: str, expected_ms: list[int]) -> None:
    """tutorial.txt relative vs absolute: an overrunning phase (30 ms run, 20 ms timer) makes
    the relative timer re-anchor at its end; the absolute one keeps the grid and skips a sleep.
    Keys run0/timer0 as workgen writes them."""
    timer = f'"timer0": {{"ref": "unique", "period": 20000, "mode": "{mode}"}}'
    text = f"""{{"tasks": {{"t": {{"cpus": [0], "loop": 1, "phases": {{
        "p0": {{"loop": 2, "run0": 10000, {timer}}},
        "p1": {{"loop": 1, "run0": 30000, {timer}}},
        "p2": {{"loop": 2, "run0": 10000, {timer}}}}}}}}}, "global": {{"duration": 1}}}}"""
    result = load_rtapp(write(tmp_path, text)).run(policy="cfs")
    *woken, end = (ms(v) for v in expected_ms)  # the last timer ends the thread
    assert wakeups(result, "t/0") == woken
    assert result.tasks["t/0"]["exit"]["time_ns"] == end


def test_custom_slice_example_and_sched_deadline(tmp_path: Path) -> None:
    """doc/examples/custom-slice.json: priority is the nice value, dl-runtime the slice."""
    text = """{
    "tasks" : {
        "thread0" : {
            "loop" : -1,
            "run" :   20000,
            "policy" : "SCHED_OTHER",
            "priority" : -19, /* This is actually the NICE value */
            "dl-runtime" : 100000
        },
        "thread1" : {
            "loop" : -1,
            "run" :   20000,
            "policy" : "SCHED_DEADLINE",
            "dl-runtime" : 200000
        }
    },
    "global" : {"duration" : 2, "calibration" : "CPU0", "ftrace" : "main,task,loop,event",
                "gnuplot" : true,}
}"""
    workload = load_rtapp(write(tmp_path, text))
    first, second = workload.scenario.processes
    assert (first.nice, first.policy, first.slice_ns) == (-19, "normal", ms(100))
    assert (second.policy, second.slice_ns) == ("normal", None)
    assert any("thread1.policy: SCHED_DEADLINE is not modelled" in w for w in workload.warnings)
    assert any("thread1.dl-runtime: dl-runtime is not modelled" in w for w in workload.warnings)


def test_cpus_at_task_and_phase_level(tmp_path: Path) -> None:
    """tutorial.txt "CPUs affinity": thread2 starts on its first phase's CPUs; each phase
    start sets its affinity (phase3 falls back to the task's [4,5,6]) — a cpus step."""
    text = (
        """{"tasks": {
        "thread1": {"cpus": [2,3], "phases": {"phase1": {"run": 10, "sleep": 10}}},
        "thread2": {"cpus": [4,5,6], "phases": {
            "phase1": {"cpus": [0,1], "run": 10, "sleep": 10},
            "phase2": {"cpus": [2], "run": 10, "sleep": 10},
            "phase3": {"run": 10, "sleep": 10}}}}, """
        + GLOBAL
        + "}"
    )
    workload = load_rtapp(write(tmp_path, text))
    one, two = workload.scenario.processes
    assert workload.scenario.machine.cpus == 7
    assert one.cpus == (2, 3) and two.cpus == (0, 1)
    assert not [w for w in workload.warnings if "cpus" in w]
    assert [step for step in two.program if isinstance(step, SetCpus)] == [
        SetCpus(cpus=(0, 1)),
        SetCpus(cpus=(2,)),
        SetCpus(cpus=(4, 5, 6)),
    ]
    assert one.program[0] == Run(run=10_000)  # a task without phase cpus gets no step


def test_unmodelled_events_and_properties_are_each_named(tmp_path: Path) -> None:
    text = (
        '{"tasks": {"t": {"run": 1000, "iorun": 4096, "membind_nodes": [0], '
        '"util_min": 10, "sleep": 1000, "bogus": 1}}, '
        '"global": {"duration": 1, "io_device": "/tmp/out"}}'
    )
    source = write(tmp_path, text)
    workload = load_rtapp(source)
    assert sum("global.io_device: iorun writes to '/tmp/out'" in w for w in workload.warnings) == 1
    assert any("tasks.t.membind_nodes: NUMA memory binding" in w for w in workload.warnings)
    assert any("tasks.t.util_min: utilization clamping" in w for w in workload.warnings)
    assert any("tasks.t.bogus: unknown key" in w for w in workload.warnings)
    assert workload.scenario.processes[0].program == (Run(run=ms(1)), Sleep(sleep=ms(1)))
    with pytest.raises(ScenarioError) as refused:  # --strict: each one, file:line:col
        load_workload(source, strict=True)
    assert [m.split(": ")[1] for m in refused.value.messages] == [
        "tasks.t.membind_nodes",
        "tasks.t.util_min",
        "tasks.t.bogus",
        "global.io_device",  # in the file's order
    ]
    assert refused.value.messages[0].startswith(f"{source}:1:46: ")
    assert all(m.endswith("refused by --strict") for m in refused.value.messages)


def with_machine(workload, **keys):
    """`workload` on a machine with `keys` set (a profile, a host cost)."""
    machine = workload.scenario.machine.model_copy(update=keys)
    return dataclasses.replace(
        workload, scenario=workload.scenario.model_copy(update={"machine": machine})
    )


@given(nbytes=st.integers(min_value=0, max_value=2**40), buffer=st.integers(1, 2**26))
def test_iorun_writes_one_buffer_per_call(nbytes: int, buffer: int) -> None:
    """rt-app's ``ioload``: write(2) calls of min(left, buffer) bytes until none are left."""
    calls = IoWrite(nbytes).calls(buffer)
    assert (calls - 1) * buffer < nbytes <= calls * buffer or nbytes == calls == 0


def test_iorun_costs_its_write_calls_at_the_hosts_cost(tmp_path: Path) -> None:
    """10 MiB + 1 B through a 4 MiB buffer is 3 writes to /dev/null; 5 loops, 15 writes of
    the machine's cost each (docs/kernel-facts.md#devnull-write), and nothing else runs."""
    source = write(
        tmp_path,
        '{"tasks": {"t": {"loop": 5, "iorun": 10485761, "sleep": 1000}}, '
        '"global": {"duration": 1, "mem_buffer_size": 4194304}}',
    )
    workload = load_rtapp(source, strict=True)
    assert [w for w in workload.warnings if "iorun" in w] == [
        f"{source}:1:29: tasks.t.iorun: iorun left out of the YAML view: its CPU time (one "
        "write(2) to /dev/null per mem_buffer_size bytes, at the host profile's "
        "null_write_ns_per_call) depends on the machine (`cfssim run` on the JSON runs it)"
    ]
    assert with_machine(workload, null_write_cost=78).run(seed=1).tasks["t/0"]["cpu_time_ns"] == (
        15 * 78
    )
    assert workload.run(seed=1).tasks["t/0"]["cpu_time_ns"] == 0  # the ideal machine: free
    profile = default_profile()
    hosted = with_machine(workload, profile="default").run(seed=1)
    assert hosted.tasks["t/0"]["cpu_time_ns"] == 15 * profile.null_write_ns_per_call == 1170
    assert hosted.meta["host"]["null_write_ns"] == 78


#: doc/examples/tutorial/example6.json of rt-app (CPU-, memory- and IO-bound load), by hand
EXAMPLE6 = """{
    /* Simple use case which creates CPU-, memory-, and IO-bound load for 2 seconds. */
    "tasks" : {
        "thread0" : {
            "instance" : 1, "loop" : -1,
            "run" : 1000, "mem" : 1000, "sleep" : 5000, "iorun" : 100000
        }
    },
    "global" : {
        "duration" : 2, "calibration" : "CPU0", "default_policy" : "SCHED_OTHER",
        "pi_enabled" : false, "lock_pages" : false, "logdir" : "./",
        "log_basename" : "rt-app2", "ftrace" : "main,task,loop,event", "gnuplot" : true,
        "io_device" : "/dev/null", "mem_buffer_size" : 1048576
    }
}"""


def test_the_rtapp_example_using_iorun_loads_strictly_and_runs_it(tmp_path: Path) -> None:
    """example6: each loop runs 1 ms, then one 100 kB write to /dev/null after its 5 ms sleep.
    On the ideal machine with a 78 ns write, loop k starts at k × 6 000 078 ns: 334 loops
    start before 2 s and run their 1 ms, 333 reach their write."""
    workload = load_workload(write(tmp_path, EXAMPLE6, "example6.json"), strict=True)
    result = with_machine(workload, null_write_cost=78).run(seed=1)
    assert result.tasks["thread0/0"]["cpu_time_ns"] == 334 * ms(1) + 333 * 78


def test_duplicate_keys_keep_their_order_and_instances_are_threads(tmp_path: Path) -> None:
    text = (
        '{"tasks": {"w": {"instance": 3, "delay": 5000, "loop": 4, "run": 1000, '
        '"sleep": 2000, "run": 3000}}, ' + GLOBAL + "}"
    )
    process = load_workload(write(tmp_path, text)).scenario.processes[0]
    assert (process.threads, process.start_ns, process.repeat) == (3, ms(5), 4)
    assert process.program == (Run(run=ms(1)), Sleep(sleep=ms(2)), Run(run=ms(3)))


def test_phase_loops_become_loop_steps(tmp_path: Path) -> None:
    text = (
        '{"tasks": {"t": {"loop": 2, "phases": {"a": {"loop": 3, "run": 1000}, '
        '"b": {"run": 2000, "sleep": 500}}}}, ' + GLOBAL + "}"
    )
    process = load_workload(write(tmp_path, text)).scenario.processes[0]
    assert process.program == (
        Loop(repeat=3, program=(Run(run=ms(1)),)),
        Run(run=ms(2)),
        Sleep(sleep=500_000),
    )


# ---- taskgroups, phase changes, memory -----------------------------------------------------------
def test_taskgroup_path_and_object_form(tmp_path: Path) -> None:
    text = """{"tasks": {
        "capped": {"taskgroup": {"path": "/app", "cpu.max": "50000 100000", "cpu.weight": 200},
                   "run": 100000},
        "plain": {"taskgroup": "/tg1/", "run": 100000}}, "global": {"duration": 1}}"""
    workload = load_rtapp(write(tmp_path, text))
    app = workload.scenario.cgroups["/app"]
    assert (app.quota_ns, app.period_ns, app.shares) == (ms(50), ms(100), weight_to_shares(200))
    assert workload.scenario.processes[1].cgroup == "/tg1"
    result = workload.run(policy="cfs")
    assert result.tasks["capped/0"]["cpu_time_ns"] == ms(500)  # 50 ms per 100 ms period
    assert result.tasks["plain/0"]["cpu_time_ns"] == ms(1000)


def test_phase_taskgroup_and_nice_changes_are_applied_when_the_phase_starts(tmp_path: Path) -> None:
    text = """{"tasks": {"t": {"loop": 1, "phases": {
        "one": {"taskgroup": "/a", "run": 100000},
        "two": {"taskgroup": "/b", "priority": 5, "run": 300000}}}},
      "global": {"duration": 1}}"""
    workload = load_rtapp(write(tmp_path, text))
    assert any("phases change nice or taskgroup" in w for w in workload.warnings)
    result = workload.run(policy="cfs")
    assert result.cgroups["/a"]["cpuacct.usage"] == ms(100)
    assert result.cgroups["/b"]["cpuacct.usage"] == ms(300)
    assert result.tasks["t/0"]["nice"] == 5


def test_mem_grows_resident_memory_up_to_the_buffer(tmp_path: Path) -> None:
    text = (
        '{"tasks": {"m": {"mem": 300000, "run": 1000, "sleep": 9000}}, '
        '"global": {"duration": 1, "mem_buffer_size": 1048576}}'
    )
    workload = load_rtapp(write(tmp_path, text))
    assert workload.scenario.processes[0].program[0].bytes == 1 << 20  # YAML view: at start
    result = workload.run(policy="cfs")
    assert result.tasks["m/0"]["max_rss_bytes"] == 1 << 20
    assert result.cgroups["/"]["memory.max_usage_in_bytes"] == 1 << 20


# ---- errors and conversion ------------------------------------------------------------------
def test_errors_name_file_line_field_expected_and_found(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n "tasks": {\n  "t": {\n   "run": "abc"\n  }\n },\n' + GLOBAL + "\n}")
    with pytest.raises(ScenarioError) as error:
        load_rtapp(path)
    assert error.value.messages == [
        f"{path}:4:4: tasks.t.run: expected a non-negative integer of µs, found 'abc'"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"tasks": {"t": {"run": 1}}}', "global.duration: expected a positive duration"),
        (
            '{"tasks": {"t": {"run": 1, "policy": "SCHED_FOO"}}, ' + GLOBAL + "}",
            "tasks.t.policy: expected one of SCHED_OTHER",
        ),
        (
            '{"tasks": {"t": {"run": 1, "priority": 30}}, ' + GLOBAL + "}",
            "tasks.t.priority: expected a nice value -20..19",
        ),
        (
            '{"tasks": {"t": {"run": 1, "taskgroup": {"path": "/x", "cpu.max": "lots"}}}, '
            + GLOBAL
            + "}",
            "tasks.t.taskgroup.cpu.max: expected",
        ),
        ('{"tasks": {"t": {"run": 1,}', "document: expected valid rt-app JSON"),
        (  # rt-app's own words for a phase without events, at the phase
            '{"tasks": {"t": {"phases": {"p1": {"loop": 2}}}}, ' + GLOBAL + "}",
            ':1:29: tasks.t.phases.p1: expected at least one event (rt-app: "No events found. '
            "Task must have events or it's useless\"), found none",
        ),
        (
            '{"tasks": {"t": {"loop": -1, "lock": "m"}}, ' + GLOBAL + "}",
            "tasks.t: expected a run, sleep or timer that takes time",
        ),
    ],
)
def test_bad_workloads(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_rtapp(write(tmp_path, text))
    assert any(expected in message for message in error.value.messages), error.value.messages


def test_relax_json_keeps_strings_and_positions() -> None:
    text = '{"a": "x/*y*/ // z", /* c\n */ "b": [1, 2,],}'
    relaxed = relax_json(text)
    assert relaxed.count("\n") == 1 and '"x/*y*/ // z"' in relaxed
    import json

    assert json.loads(relaxed) == {"a": "x/*y*/ // z", "b": [1, 2]}


def test_converted_yaml_loads_back_equal(tmp_path: Path) -> None:
    text = """{"tasks": {
        "web": {"instance": 2, "taskgroup": {"path": "/app", "cpu.max": "50000 100000"},
                "priority": 3, "dl-runtime": 3000, "cpus": [0, 1],
                "phases": {"p": {"loop": 5, "run": 2500, "timer": {"ref": "t", "period": 10000}},
                           "q": {"sleep": 1500}}},
        "rt": {"policy": "SCHED_FIFO", "run": 100, "sleep": 900}}, "global": {"duration": 3}}"""
    scenario = load_rtapp(write(tmp_path, text)).scenario
    yaml_path = tmp_path / "scenario.yaml"
    yaml_path.write_text(dump_scenario(scenario))
    assert load_scenario(yaml_path).model_dump() == scenario.model_dump()
    assert scenario.processes[1].rt_priority == 10  # rt-app's default RT priority


def test_load_workload_dispatches_on_suffix(tmp_path: Path) -> None:
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(
        "duration: 1s\nmachine: {cpus: 1}\nprocesses: [{name: a, program: [{run: 10ms}]}]\n"
    )
    workload = load_workload(yaml_path)
    assert workload.warnings == [] and workload.scenario.name == "s"
    result = workload.run(policy="cfs")
    assert result.tasks["a/0"]["cpu_time_ns"] == ms(10)
    assert np.all(result.trace["segments"]["cpu"] == 0)


def test_load_workload_tells_rtapp_text_from_yaml_text() -> None:
    """Text: an rt-app JSON object has a "tasks" key (comments may lead, as json-c allows);
    anything else is scenario YAML, flow mappings included."""
    rtapp = load_workload(
        '/* rt-app */ {"tasks": {"t": {"run": 1000, "sleep": 9000}}, ' + GLOBAL + "}"
    )
    assert rtapp.scenario.name == "rt-app"
    assert rtapp.scenario.processes[0].program == (Run(run=ms(1)), Sleep(sleep=ms(9)))
    yaml = load_workload(
        "{name: y, duration: 1s, machine: {cpus: 1}, processes: [{name: a, program: [{run: 1ms}]}]}"
    )
    assert yaml.scenario.name == "y" and yaml.warnings == [] and yaml.behaviours() == {}


def test_convert_command_writes_yaml_that_loads_back(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cfssim.interop_commands import convert

    source = write(
        tmp_path,
        '{"tasks": {"t": {"run": 2000, "timer": {"ref": "x", "period": '
        '10000}, "iorun": 10}}, ' + GLOBAL + "}",
    )
    out = tmp_path / "scenario.yaml"
    outcome = CliRunner().invoke(convert, [str(source), "-o", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert "warning:" in outcome.output and "iorun left out of the YAML view" in outcome.output
    strict = CliRunner().invoke(convert, [str(source), "--strict"])  # the view leaves it out
    assert isinstance(strict.exception, ScenarioError)
    assert "tasks.t.iorun" in str(strict.exception)
    assert load_scenario(out).processes[0].program == (  # "x": used by one thread only
        Run(run=ms(2)),
        Timer(period=ms(10), mode="relative"),
    )
    bad = CliRunner().invoke(convert, [str(write(tmp_path, '{"tasks": 3}', "bad.json"))])
    assert isinstance(bad.exception, ScenarioError)  # the cfssim group prints it, exit 2
