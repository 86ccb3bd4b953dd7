"""Hostile scenarios and rt-app workloads: refused with the house message (file:line:col, field,
expected, found), never accepted by coercion, never a traceback, and never echoing a megabyte.
Timing lives in benchmarks/hostile_input.py; here only the refusal and its wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfssim.scenario import Limits, ScenarioError, load_scenario, load_workload

BASE = """name: x
duration: 100ms
machine: {{cpus: 1{machine}}}
{cgroups}
processes:
  - {{name: p, {process} program: [{{run: 1ms}}, {{sleep: 1ms}}]}}
"""


def refused(machine: str = "", cgroups: str = "", process: str = "") -> str:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(BASE.format(machine=machine, cgroups=cgroups, process=process))
    assert len(raised.value.messages) == 1
    return raised.value.messages[0]


@pytest.mark.parametrize(
    ("process", "says"),
    [
        ("repeat: null,", "processes[0].repeat: expected a count ≥ 1 or 'forever', found nothing"),
        ("repeat: ,", "processes[0].repeat: expected a count ≥ 1 or 'forever', found nothing"),
        ("nice: true,", "processes[0].nice: expected an integer, found true"),
        ("threads: true,", "processes[0].threads: expected an integer, found true"),
        ("nice: '5',", "processes[0].nice: expected an integer, found '5'"),
        ("nice: 5.0,", "processes[0].nice: expected an integer, found 5.0"),
        ("oom_score_adj: '100',", "processes[0].oom_score_adj: expected an integer, found '100'"),
    ],
)
def test_empty_repeats_booleans_and_numeric_strings_are_not_counts(process: str, says: str) -> None:
    assert says in refused(process=process)


def test_forever_is_said_in_words_and_counts_still_load() -> None:
    scenario = load_scenario(BASE.format(machine="", cgroups="", process="repeat: forever,"))
    assert scenario.processes[0].repeat is None
    scenario = load_scenario(BASE.format(machine="", cgroups="", process="repeat: 3, nice: 5,"))
    assert (scenario.processes[0].repeat, scenario.processes[0].nice) == (3, 5)


def test_cgroup_files_take_text_as_the_kernel_does() -> None:
    """``echo 1024 > cpu.shares``: the kernel file parses text, so a quoted number is the same
    write; a boolean is not text the kernel would take."""
    scenario = load_scenario(
        BASE.format(machine="", cgroups="cgroups: {/a: {cpu.shares: '512'}}", process="cgroup: /a,")
    )
    assert scenario.cgroups["/a"].shares == 512
    assert "cpu.shares: expected a non-negative integer" in refused(
        cgroups="cgroups: {/a: {cpu.shares: true}}", process="cgroup: /a,"
    )


@pytest.mark.parametrize("size", ["0.1B", "1.5B", "0.5"])
def test_fractional_bytes_are_refused(size: str) -> None:
    message = refused(
        cgroups=f"cgroups: {{/a: {{memory.limit_in_bytes: {size}}}}}", process="cgroup: /a,"
    )
    assert "cgroups./a.memory.limit_in_bytes: expected a size" in message
    with pytest.raises(ScenarioError, match=r"program\[0\]\.alloc: expected a size"):
        load_scenario(
            BASE.format(machine="", cgroups="", process="").replace(
                "{run: 1ms}", f"{{alloc: {size if size.endswith('B') else size + 'B'}}}"
            )
        )


def test_whole_bytes_in_larger_units_still_load() -> None:
    scenario = load_scenario(
        BASE.format(
            machine="",
            cgroups="cgroups: {/a: {memory.limit_in_bytes: 1.5MiB}}",
            process="cgroup: /a,",
        )
    )
    assert scenario.cgroups["/a"].memory_limit == 1536 * 1024


@pytest.mark.parametrize(
    ("machine", "says"),
    [
        (
            ", sched_latency_ns: 100000000000",
            "machine.sched_latency_ns: expected a value from 100000 to 1000000000 ns",
        ),
        (
            ", sched_base_slice_ns: 0",
            "machine.sched_base_slice_ns: expected a value from 100000 to 1000000000 ns",
        ),
        (
            ", sched_wakeup_granularity_ns: 2s",
            "machine.sched_wakeup_granularity_ns: expected a value from 0 to 1000000000 ns",
        ),
        (
            ", sched_cfs_bandwidth_slice_us: 0",
            "machine.sched_cfs_bandwidth_slice_us: expected a value from 1 to 2147483647 µs",
        ),
        (", sched_rt_period_us: 0", "machine.sched_rt_period_us: expected a value from 1 to"),
        (", sched_rt_runtime_us: -2", "machine.sched_rt_runtime_us: expected a value from -1 to"),
        (
            ", sched_migration_cost_ns: 5000000000",
            "machine.sched_migration_cost_ns: expected a value from 0 to 4294967295 ns",
        ),
    ],
)
def test_tunables_beyond_the_kernels_ranges_are_refused(machine: str, says: str) -> None:
    assert says in refused(machine=machine)


def test_messages_cap_echoed_values_and_escape_control_characters() -> None:
    long_path = refused(process=f"cgroup: '/{'a' * 1_000_000}',")
    assert len(long_path) < 300 and "aaa…" in long_path
    control = refused(process='cgroup: "/a\\x1b[31mred\\x07",')
    assert "'/a\\x1b[31mred\\x07'" in control and "\x1b" not in control
    text = (
        BASE.format(machine="", cgroups="", process="")
        + "".join(f"  - {{name: q{i}, program: [{{run: 1ms}}]}}\n" for i in range(2000))
        + "events: [{at: 1ms, kill: {process: zz}}]\n"
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(text)
    (message,) = raised.value.messages
    assert "(p, q0, q1, q2, q3, q4, q5, q6, q7, q8, … and 1991 more)" in message


def test_a_file_too_big_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        BASE.format(machine="", cgroups="", process="")
        + "events:\n"
        + "".join(f"  - {{at: {i}us, nice: {{process: p, value: 1}}}}\n" for i in range(100_000))
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert raised.value.messages == [
        f"{path}:1:1: document: expected at most 1048576 bytes of YAML (--max-size raises it), "
        f"found {path.stat().st_size} bytes"
    ]
    small = Limits(max_file_bytes=100)
    with pytest.raises(ScenarioError, match="expected at most 100 bytes of YAML"):
        load_scenario(BASE.format(machine="", cgroups="", process=""), limits=small)


def test_a_missing_file_name_is_not_read_as_yaml() -> None:
    for name in ("scenario.yaml", "nope", "./dir/x.yml"):
        with pytest.raises(ScenarioError) as raised:
            load_scenario(name)
        assert raised.value.messages == [
            f"{name}: expected a YAML file or YAML text, found no such file"
        ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '{"global": {"duration": 1, "x": ' + "[" * 50_000 + "]" * 50_000 + '}, "tasks": {}}',
            ":1:63: document: expected at most 32 levels of nested arrays and objects, found 50002 "
            "levels",
        ),
        (
            '{"global": {"duration": 1}, "tasks": {"t": {"run": ' + "9" * 5000 + "}}}",
            ":1:52: document: expected an integer that fits 64 bits, found one of 5000 digits",
        ),
        (
            '{"global": {"duration": 1}, "tasks": {"t": {"run": 99999999999999999}}}',
            ":1:45: tasks.t.run: expected at most 9223372036854775 µs (its ns must fit 64 bits), "
            "found 99999999999999999",
        ),
        (
            '{"global": {"duration": 1}, "tasks": {"t": {"run": 1e300}}}',
            ":1:45: tasks.t.run: expected a non-negative integer of µs, found 1e+300",
        ),
        (
            '{"global": {"duration": 1}, "tasks": {"t": {"run": NaN}}}',
            ":1:52: document: expected a number, found NaN (not JSON)",
        ),
        (
            '{"global": {"duration": 1}, "tasks": {"t": {"run": 1000, "priority": 200, '
            '"policy": "SCHED_FIFO"}}}',
            ":1:39: tasks.t: rt_priority: expected a value ≤ 99, found 200",
        ),
    ],
)
def test_rtapp_json_nesting_and_numbers_are_refused_in_the_house_format(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "w.json"
    path.write_text(text)
    with pytest.raises(ScenarioError) as raised:
        load_workload(str(path))
    assert raised.value.messages == [f"{path}{says}"]
