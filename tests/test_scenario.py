"""Loading scenarios: the resolved model, defaults, limits, the JSON Schema, bundled files."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import jsonschema
import pydantic
import pytest
from ruamel.yaml import YAML

from cfssim.cgroup.files import CgroupConfig
from cfssim.scenario import (
    SCHEMA_FILE,
    Alloc,
    Free,
    Limits,
    Loop,
    ProcessSpec,
    Run,
    Scenario,
    ScenarioError,
    Sleep,
    bundled_scenarios,
    iter_steps,
    load_scenario,
    resolve_scenario,
    scenario_json_schema,
    schema_text,
)
from cfssim.units import ms, s

ROOT = Path(__file__).resolve().parent.parent
BASE = "duration: 3s\nmachine: {cpus: 2}\n"


def load(text: str, **kwargs: object) -> Scenario:
    return load_scenario("name: t\n" + text, **kwargs)  # type: ignore[arg-type]


def test_seed_quota_resolves_units_and_cgroups() -> None:
    scenario = load_scenario(bundled_scenarios()["seed-quota"])
    assert scenario.name == "seed-quota" and scenario.duration_ns == s(3)
    assert (scenario.machine.cpus, scenario.machine.policy, scenario.machine.hz) == (
        2,
        "eevdf",
        250,
    )
    assert list(scenario.cgroups) == ["/", "/cpudemo"]
    assert scenario.cgroups["/cpudemo"] == CgroupConfig(period_ns=ms(100), quota_ns=None)
    (process,) = scenario.processes
    assert (process.name, process.cgroup, process.threads, process.repeat) == (
        "go-main",
        "/cpudemo",
        2,
        None,
    )
    assert process.program == (Run(ns=None),)
    (event,) = scenario.events
    assert event.at_ns == s(1) and event.write is not None
    assert (event.write.path, event.write.files) == ("/cpudemo", {"cpu.cfs_quota_us": 100000})
    assert event.action is event.write
    assert scenario.source is not None and scenario.source.endswith("seed-quota.yaml")


def test_v2_scenario_carries_its_interface() -> None:
    scenario = load_scenario(bundled_scenarios()["seed-quota-v2"])
    assert scenario.interface == "v2"
    assert all(config.interface == "v2" for config in scenario.cgroups.values())


def test_defaults_and_implied_ancestors() -> None:
    scenario = load(
        BASE + "cgroups:\n  /a/b/c: {cpu.shares: 512}\n"
        "processes:\n  - {name: p, cgroup: /a/b, program: [{run: 1ms}]}\n"
    )
    assert list(scenario.cgroups) == ["/", "/a", "/a/b", "/a/b/c"]
    assert scenario.cgroups["/a/b/c"].shares == 512
    process = scenario.processes[0]
    assert (
        process.nice,
        process.policy,
        process.rt_priority,
        process.cpus,
        process.start_ns,
        process.repeat,
        process.oom_score_adj,
        process.slice_ns,
        process.session,
    ) == (0, "normal", 0, None, 0, 1, 0, None, None)
    machine = scenario.machine
    assert (machine.slice_ends, machine.autogroup, machine.features, machine.tunables) == (
        "tick",
        True,
        {},
        {},
    )
    assert scenario.seed == 0 and scenario.events == ()


def test_steps_loops_and_sizes() -> None:
    scenario = load(
        BASE + "processes:\n  - name: p\n    program:\n"
        "      - loop: {repeat: 3, program: [{alloc: 4MiB}, {sleep: 1.5ms}]}\n"
        "      - {free: all}\n      - {exit: 3}\n"
    )
    loop = scenario.processes[0].program[0]
    assert isinstance(loop, Loop) and loop.repeat == 3
    assert loop.program == (Alloc(bytes=4 << 20), Sleep(ns=1_500_000))
    assert scenario.processes[0].program[1] == Free(bytes=None)
    depths = [depth for _, depth in iter_steps(scenario.processes[0].program)]
    assert depths == [1, 2, 2, 1, 1]


def test_process_fields() -> None:
    scenario = load(
        BASE + "processes:\n"
        "  - {name: a, policy: SCHED_OTHER, cpus: '0-1', slice: 50us, "
        "program: [{run: 1ms}]}\n"
        "  - {name: b, policy: SCHED_FIFO, rt_priority: 50, cpus: 1, "
        "program: [{run: 1ms}]}\n"
        "  - {name: c, policy: batch, slice: 200ms, session: s1, "
        "program: [{run: 1ms}]}\n"
        "  - {name: d, slice: 0, start: 1s, program: [{run: 1ms}]}\n"
    )
    a, b, c, d = scenario.processes
    assert (a.policy, a.cpus, a.slice_ns) == ("normal", (0, 1), 100_000)  # clamped to 0.1 ms
    assert (b.policy, b.rt_priority, b.cpus) == ("fifo", 50, (1,))
    assert (c.policy, c.slice_ns, c.session) == ("batch", ms(100), "s1")
    assert (d.slice_ns, d.start_ns) == (None, s(1))


def test_machine_tunables_in_their_own_units() -> None:
    scenario = load(
        "duration: 1s\nmachine:\n  cpus: 4\n  policy: cfs\n  hz: 1000\n"
        "  sched_latency_ns: 6ms\n  sched_cfs_bandwidth_slice_us: 5ms\n"
        "  sched_rt_runtime_us: -1\n  sched_tunable_scaling: 0\n"
        "  features: {GENTLE_FAIR_SLEEPERS: false}\n"
        "processes:\n  - {name: p, program: [{run: 1ms}]}\n"
    )
    assert scenario.machine.tunables == {
        "sched_latency_ns": 6_000_000,
        "sched_tunable_scaling": 0,
        "sched_cfs_bandwidth_slice_us": 5000,
        "sched_rt_runtime_us": -1,
    }
    assert scenario.machine.features == {"GENTLE_FAIR_SLEEPERS": False}


def test_events_are_sorted_by_time_and_writes_follow_state() -> None:
    scenario = load(
        BASE + "cgroups:\n  /a: {cpu.cfs_quota_us: 50000}\n"
        "processes:\n  - {name: p, cgroup: /a, program: [{run: 1ms}]}\n"
        "events:\n"
        "  - {at: 2s, write: {/a: {cpu.cfs_quota_us: 20000}}}\n"
        "  - {at: 1s, write: {/a: {cpu.cfs_burst_us: 10000}}}\n"
    )
    assert [event.at_ns for event in scenario.events] == [s(1), s(2)]


def test_later_write_checked_against_earlier_one() -> None:
    # at 1s the burst becomes 30ms; the 2s quota of 20ms is then below the burst: EINVAL
    with pytest.raises(ScenarioError) as raised:
        load(
            BASE + "cgroups:\n  /a: {cpu.cfs_quota_us: 50000}\n"
            "processes:\n  - {name: p, cgroup: /a, program: [{run: 1ms}]}\n"
            "events:\n"
            "  - {at: 2s, write: {/a: {cpu.cfs_quota_us: 20000}}}\n"
            "  - {at: 1s, write: {/a: {cpu.cfs_burst_us: 30000}}}\n"
        )
    assert raised.value.messages == [
        "<string>:9:45: events[0].write./a.cpu.cfs_quota_us: expected a burst no larger than the "
        "quota (20000 µs), found a burst of 30000 µs"
    ]


def test_oom_control_and_memory_files() -> None:
    scenario = load(
        BASE + "cgroups:\n  /m: {memory.limit_in_bytes: 100M, memory.oom_control: 1}\n"
        "processes:\n  - {name: p, cgroup: /m, program: [{run: 1ms}]}\n"
    )
    assert scenario.cgroups["/m"].memory_limit == 100 << 20
    assert scenario.cgroups["/m"].oom_kill_disable is True


def test_limits_are_overridable_and_name_their_flag() -> None:
    text = BASE + "processes:\n  - {name: p, threads: 4, program: [{run: 1ms}]}\n"
    assert load(text).processes[0].threads == 4
    with pytest.raises(
        ScenarioError,
        match=r"at most 3 threads in all \(raise the limit with "
        r"--max-tasks\), found 4",
    ):
        load(text, limits=Limits(max_tasks=3))
    with pytest.raises(ScenarioError, match="--max-duration"):
        load(text, limits=Limits(max_duration_ns=s(1)))


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my-case.yaml"
    path.write_text(BASE + "processes:\n  - {name: p, program: [{run: 1ms}]}\n")
    assert load_scenario(path).name == "my-case"
    assert load_scenario(str(path)).source == str(path)


def test_models_are_frozen_and_constructible_in_python() -> None:
    process = ProcessSpec(name="p", program=(Run(ns=ms(10)), Sleep(ns=ms(40))))
    assert process.program[0] == Run(run="10ms")
    with pytest.raises(pydantic.ValidationError):
        process.nice = 3  # type: ignore[misc]


def test_bundled_scenarios_all_load_fast_and_teach() -> None:
    bundled = bundled_scenarios()
    assert set(bundled) >= {
        "seed-quota",
        "seed-quota-v2",
        "memory-oom",
        "oom-kill-disable",
        "shares",
        "nice-autogroup",
        "k8s-throttling",
        "burst",
        "interactive-batch",
        "nested-quota",
    }
    for name, path in bundled.items():
        scenario = load_scenario(path)
        assert scenario.name == name
        assert len(scenario.description) > 80
        assert scenario.duration_ns <= s(3)
        assert path.read_text().startswith("# yaml-language-server: $schema=../cfssim.schema.json")
    assert resolve_scenario("shares") == bundled["shares"]
    with pytest.raises(ScenarioError, match="did you mean 'shares'"):
        resolve_scenario("sharez")


def _yaml_data(path: Path) -> object:
    yaml = YAML(typ="safe")
    yaml.version = (1, 2)
    return yaml.load(path)


def test_schema_on_disk_is_the_generated_one() -> None:
    assert (ROOT / SCHEMA_FILE).read_text(encoding="utf-8") == schema_text()


def test_every_bundled_scenario_validates_against_the_schema() -> None:
    schema = scenario_json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for path in bundled_scenarios().values():
        errors = [error.message for error in validator.iter_errors(_yaml_data(path))]
        assert errors == [], path.name


def test_schema_rejects_what_the_loader_rejects() -> None:
    validator = jsonschema.Draft7Validator(scenario_json_schema())
    good = {
        "duration": "1s",
        "machine": {"cpus": 1},
        "processes": [
            {
                "name": "p",
                "program": [
                    {"run": "1ms"},
                    {"loop": {"repeat": "forever", "program": [{"sleep": 5}]}},
                ],
            }
        ],
        "cgroups": {"/a": {"cpu.max": "max 100000", "cpuset.cpus": [0]}},
        "events": [{"at": "1s", "write": {"/a": {"cpu.max": "50000"}}}],
    }
    assert list(validator.iter_errors(good)) == []
    bad_key = {**good, "processes": [{"name": "p", "cgrop": "/", "program": [{"run": "1ms"}]}]}
    bad_file = {**good, "cgroups": {"/a": {"cpu.sharez": 1}}}
    bad_event = {**good, "events": [{"at": "1s"}]}
    bad_duration = {**good, "duration": "3 parsecs"}
    for document in (bad_key, bad_file, bad_event, bad_duration):
        assert list(validator.iter_errors(document)), json.dumps(document)


def test_yaml_str_tags_and_long_one_line_text_load() -> None:
    """``!!str 123`` is the string '123'; a one-line scenario longer than a file name may be is
    YAML text, not a path (``ENAMETOOLONG`` must not escape); a non-text source is a TypeError."""
    steps = ", ".join(["{run: 1ms}, {sleep: 1ms}"] * 12)
    text = (
        "{name: !!str 123, duration: 1s, machine: {cpus: 2}, "
        f"processes: [{{name: a, program: [{steps}]}}]}}"
    )
    assert len(text) > 255 and "\n" not in text
    scenario = load_scenario(text)
    assert scenario.name == "123" and len(scenario.processes[0].program) == 24
    with pytest.raises(TypeError, match="YAML text or a path, not int"):
        load_scenario(5)  # type: ignore[arg-type]


def test_screening_lets_ordinary_yaml_through() -> None:
    """What the YAML screen must not refuse: quoted digit strings of any length, core tags on
    values of their type (``!!float 1`` is a float in YAML 1.2), merge keys and anchors, a
    forever program that exits after a short run, loops nested as deep as the limit allows."""
    base = "duration: 1s\nmachine: {cpus: 2}\n"
    long_name = load_scenario(
        f"name: '{'1' * 120}'\n{base}processes: [{{name: a, program: [{{run: 1ms}}]}}]\n"
    )
    assert long_name.name == "1" * 120
    assert (
        load_scenario(
            f"name: x\nseed: !!float 1\n{base}processes: [{{name: a, program: [{{run: 1ms}}]}}]\n"
        ).seed
        == 1
    )
    merged = load_scenario(
        f"name: x\n{base}processes: [&a {{name: a, nice: 5, program: "
        "[{run: 1ms}]}, {<<: *a, name: b}]\n"
    )
    assert [p.nice for p in merged.processes] == [5, 5]
    exits = load_scenario(
        f"name: x\n{base}processes: [{{name: a, repeat: forever, "
        "program: [{run: 1ns}, {exit: 0}]}]\n"
    )
    assert exits.processes[0].repeat is None


def test_v1_cpuset_errors_name_the_kernels_errno() -> None:
    """``cpuset1_validate_change``: the cgroups are created parent first, so a child outside its
    parent's cpuset is EACCES; an event write of a parent that would strand a child is EBUSY."""
    procs = "processes:\n  - {name: p, cgroup: /a/b, program: [{run: 1ms}]}\n"
    with pytest.raises(ScenarioError) as raised:
        load(BASE + "cgroups:\n  /a: {cpuset.cpus: '0'}\n  /a/b: {cpuset.cpus: '0-1'}\n" + procs)
    assert raised.value.messages == [
        "<string>:6:23: cgroups./a/b.cpuset.cpus: expected CPUs within the parent /a's cpuset (0) "
        "— cgroup v1 rejects others with EACCES, found '0-1'"
    ]
    with pytest.raises(ScenarioError) as raised:
        load(
            BASE
            + "cgroups:\n  /a: {cpuset.cpus: '0-1'}\n  /a/b: {cpuset.cpus: '1'}\n"
            + procs
            + "events:\n  - {at: 1s, write: {/a: {cpuset.cpus: '0'}}}\n"
        )
    assert raised.value.messages == [
        "<string>:10:26: events[0].write./a: expected CPUs that hold the child /a/b's cpuset (1) "
        "— cgroup v1 rejects others with EBUSY, found '0'"
    ]


def test_one_list_of_scheduling_policies() -> None:
    """task.SCHED_POLICIES holds the kernel's numbers; the scenario's and rt-app's names map
    onto it."""
    import os

    from cfssim.scenario import POLICY_NAMES, Policy
    from cfssim.scenario.rtapp import _POLICIES as RTAPP_POLICIES
    from cfssim.task import RT_POLICIES, SCHED_POLICIES

    assert SCHED_POLICIES == {
        "normal": os.SCHED_OTHER,
        "batch": os.SCHED_BATCH,
        "idle": os.SCHED_IDLE,
        "fifo": os.SCHED_FIFO,
        "rr": os.SCHED_RR,
    }
    assert set(RT_POLICIES) <= set(SCHED_POLICIES)
    assert typing.get_args(Policy) == tuple(SCHED_POLICIES)
    assert set(POLICY_NAMES.values()) == set(SCHED_POLICIES)
    assert POLICY_NAMES["other"] == POLICY_NAMES["sched_normal"] == "normal"
    assert set(RTAPP_POLICIES.values()) == {*SCHED_POLICIES, "deadline"}
    assert list(RTAPP_POLICIES)[:2] == ["SCHED_OTHER", "SCHED_NORMAL"]
