"""Writing a `Scenario` back as scenario YAML — the inverse of `cfssim.scenario.load_scenario`.

`scenario_data(scenario)` gives the plain YAML-shaped mapping (the public keys: ``duration``,
``machine``, ``cgroups`` by path with kernel file names, ``processes`` with ``program`` steps,
``events``), with exact, readable units (``10ms``, ``64MiB``); `dump_scenario` renders it as YAML
text. ``load_scenario(dump_scenario(s))`` equals ``s``. Sweeps edit the same mapping by dotted
path before validating it again.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .cgroup import files as cgfiles
from .cgroup.files import CgroupConfig
from .scenario import (
    TUNABLES,
    Alloc,
    Draw,
    EventSpec,
    Exit,
    Free,
    Loop,
    MachineSpec,
    PerThread,
    ProcessSpec,
    Run,
    Scenario,
    Sleep,
    Step,
    Timer,
    Until,
)
from .units import NSEC_PER_MSEC, NSEC_PER_SEC, NSEC_PER_USEC

_DURATION_UNITS = (("s", NSEC_PER_SEC), ("ms", NSEC_PER_MSEC), ("us", NSEC_PER_USEC))
_SIZE_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def exact_duration(value_ns: int) -> str:
    """Int ns → the largest exact unit: ``"10ms"``, ``"1500us"``, ``"7ns"``, ``"0"``."""
    if value_ns == 0:
        return "0"
    for unit, scale in _DURATION_UNITS:
        if value_ns % scale == 0:
            return f"{value_ns // scale}{unit}"
    return f"{value_ns}ns"


def exact_size(value_bytes: int) -> str | int:
    """Int bytes → the largest exact binary unit (``"64MiB"``), else the int of bytes."""
    for unit, scale in _SIZE_UNITS:
        if value_bytes % scale == 0:
            return f"{value_bytes // scale}{unit}"
    return value_bytes


# ---- pieces -----------------------------------------------------------------------------------
def _machine(machine: MachineSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"cpus": machine.cpus, "policy": machine.policy, "hz": machine.hz}
    defaults = MachineSpec(cpus=machine.cpus)
    for name in ("slice_ends", "autogroup"):
        if getattr(machine, name) != getattr(defaults, name):
            data[name] = getattr(machine, name)
    if machine.features:
        data["features"] = dict(machine.features)
    data.update({name: machine.tunables[name] for name in TUNABLES if name in machine.tunables})
    return data


def _kernel_value(config: CgroupConfig, file: str) -> int | str:
    text = cgfiles.read_file(config, file)
    return int(text) if text.lstrip("-").isdigit() else text


def cgroup_files(config: CgroupConfig) -> dict[str, int | str]:
    """The files to write, in a valid order, that turn a fresh cgroup into `config`."""
    default = CgroupConfig()
    v2 = config.interface == "v2"
    wanted: list[tuple[str, bool]] = [
        ("cpu.weight" if v2 else "cpu.shares", config.shares != default.shares),
        ("cpu.idle", config.idle),
        ("cpu.max" if v2 else "cpu.cfs_period_us",
         config.period_ns != default.period_ns or (v2 and config.quota_ns is not None)),
        ("cpu.cfs_quota_us", not v2 and config.quota_ns is not None),
        ("cpu.max.burst" if v2 else "cpu.cfs_burst_us", config.burst_ns != 0),
        ("cpuset.cpus", config.cpus is not None),
        ("memory.max" if v2 else "memory.limit_in_bytes", config.memory_limit is not None),
        ("memory.high", v2 and config.memory_high is not None),
        ("memory.oom.group", v2 and config.oom_group),
    ]
    files = {file: _kernel_value(config, file) for file, needed in wanted if needed}
    if config.oom_kill_disable:
        files["memory.oom_control"] = 1
    return files


def step_data(step: Step) -> dict[str, Any]:
    """One program step as its one-key YAML mapping."""
    if isinstance(step, Run):
        return {"run": "forever" if step.ns is None else exact_duration(step.ns)}
    if isinstance(step, Sleep):
        return {"sleep": exact_duration(step.ns)}
    if isinstance(step, Timer):
        period = exact_duration(step.period_ns)
        return {"timer": period if step.mode == "absolute" else
                {"period": period, "mode": step.mode}}
    if isinstance(step, Alloc):
        return {"alloc": exact_size(step.bytes)}
    if isinstance(step, Free):
        return {"free": "all" if step.bytes is None else exact_size(step.bytes)}
    if isinstance(step, Exit):
        return {"exit": step.code}
    if isinstance(step, Loop):
        return {"loop": {"repeat": "forever" if step.repeat is None else step.repeat,
                         "program": [step_data(inner) for inner in step.program]}}
    if isinstance(step, Draw):
        return {"draw": {step.kind: [exact_duration(value) for value in step.values_ns]}}
    if isinstance(step, Until):
        return {"until": exact_duration(step.ns)}
    if isinstance(step, PerThread):
        return {"per_thread": [
            {**({"name": t.name} if t.name else {}),
             **({"woken_by": dict(t.woken_by)} if t.woken_by else {}),
             "program": [step_data(inner) for inner in t.program]}
            for t in step.threads]}
    raise TypeError(f"unknown step {step!r}")  # pragma: no cover - the union is closed


def process_data(process: ProcessSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"name": process.name}
    if process.cgroup != cgfiles.ROOT:
        data["cgroup"] = process.cgroup
    optional: list[tuple[str, Any, bool]] = [
        ("threads", process.threads, process.threads != 1),
        ("nice", process.nice, process.nice != 0),
        ("policy", process.policy, process.policy != "normal"),
        ("rt_priority", process.rt_priority, process.rt_priority != 0),
        ("cpus", list(process.cpus or ()), process.cpus is not None),
        ("start", exact_duration(process.start_ns), process.start_ns != 0),
        ("repeat", "forever" if process.repeat is None else process.repeat, process.repeat != 1),
        ("oom_score_adj", process.oom_score_adj, process.oom_score_adj != 0),
        ("slice", exact_duration(process.slice_ns or 0), process.slice_ns is not None),
        ("session", process.session, process.session is not None),
    ]
    data.update({key: value for key, value, given in optional if given})
    data["program"] = [step_data(step) for step in process.program]
    return data


def event_data(event: EventSpec) -> dict[str, Any]:
    data: dict[str, Any] = {"at": exact_duration(event.at_ns)}
    if event.write is not None:
        data["write"] = {event.write.path: dict(event.write.files)}
    else:
        kind = next(name for name in ("move", "nice", "kill") if getattr(event, name) is not None)
        data[kind] = getattr(event, kind).model_dump(exclude_none=True)
    return data


def scenario_data(scenario: Scenario) -> dict[str, Any]:
    """The YAML-shaped plain mapping of `scenario` (valid input to `Scenario.model_validate`)."""
    data: dict[str, Any] = {"name": scenario.name}
    if scenario.description:
        data["description"] = scenario.description
    data["duration"] = exact_duration(scenario.duration_ns)
    data["seed"] = scenario.seed
    data["machine"] = _machine(scenario.machine)
    data["cgroups"] = {path: cgroup_files(config) for path, config in scenario.cgroups.items()
                       if path != cgfiles.ROOT}
    data["processes"] = [process_data(process) for process in scenario.processes]
    if scenario.events:
        data["events"] = [event_data(event) for event in scenario.events]
    return data


# ---- YAML text --------------------------------------------------------------------------------
def _flow(node: Any) -> Any:
    """ruamel nodes: small mappings (machine, steps, files, events) in flow style."""
    if isinstance(node, dict):
        out = CommentedMap((key, _flow(value)) for key, value in node.items())
        if all(not isinstance(value, (dict, list)) for value in node.values()):
            out.fa.set_flow_style()
        return out
    if isinstance(node, list):
        seq = CommentedSeq(_flow(item) for item in node)
        if all(not isinstance(item, (dict, list)) for item in node):
            seq.fa.set_flow_style()
        return seq
    return node


def _lines(header: Sequence[str]) -> Iterator[str]:
    for line in header:
        yield f"# {line}\n" if line else "#\n"


def dump_data(data: dict[str, Any], header: Sequence[str] = ()) -> str:
    """A YAML-shaped mapping (see `scenario_data`) as YAML text, `header` lines as comments."""
    yaml = YAML(typ="rt")
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    buffer.writelines(_lines(header))
    yaml.dump(_flow(data), buffer)
    return buffer.getvalue()


def dump_scenario(scenario: Scenario, header: Sequence[str] = ()) -> str:
    """`scenario` as scenario YAML text, with `header` lines as leading comments."""
    return dump_data(scenario_data(scenario), header)
