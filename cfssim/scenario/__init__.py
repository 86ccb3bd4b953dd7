"""Scenarios: the YAML contract, its validated frozen model, and errors that point at the YAML.

`load_scenario(path_or_text)` reads scenario YAML into a `Scenario` (units resolved: int ns, int
bytes; cgroup files resolved to `CgroupConfig`) or raises `ScenarioError` whose ``messages`` read
``file:line:col: path.to.field: expected …, found …``; `load_workload` — what every command
uses — also takes rt-app JSON. The package, one job per module, in the order they build on each
other:

- `errors`: `ScenarioError`, `Loc` and the pydantic errors the models raise;
- `values`: the field value types (durations, sizes, repeats, CPU lists, cgroup paths);
- `steps`: program steps (run, sleep, timer, alloc, free, exit, loop) and their time rules;
- `checks`: `Limits` and the validation across fields (`CrossChecker`);
- `model`: `Scenario`, `MachineSpec`, the cgroups map, `ProcessSpec`, `EventSpec`;
- `yaml_io`: reading YAML with error locations (`load_scenario`) and writing it back;
- `schema`: the JSON Schema of the YAML;
- `bundled`: the bundled scenarios, by name;
- `workload`: `load_workload` and `Workload`, for YAML and rt-app JSON alike;
- `rtapp`: the rt-app JSON reader (imported only for JSON workloads).
"""

from .bundled import bundled_scenarios, resolve_scenario, scenario_dir
from .checks import Limits
from .errors import Loc, ScenarioError
from .model import (
    KERNEL_FEATURES,
    MAX_CUSTOM_SLICE_NS,
    MIN_CUSTOM_SLICE_NS,
    POLICY_NAMES,
    TUNABLES,
    Action,
    CgroupMap,
    EventSpec,
    Kill,
    MachineSpec,
    Move,
    Nice,
    NsTunable,
    PhaseNs,
    Policy,
    ProcessSpec,
    RtRuntimeTunable,
    Scenario,
    UsTunable,
    Write,
)
from .schema import SCHEMA_FILE, scenario_json_schema, schema_text
from .steps import (
    MAX_INSTANT_STEPS,
    MIN_NS_PER_STEP,
    Alloc,
    Exit,
    Free,
    Loop,
    Run,
    Sleep,
    Step,
    Timer,
    TimerMode,
    iter_steps,
)
from .values import (
    CgroupPath,
    CpuList,
    Duration,
    DurationOrForever,
    Repeat,
    Size,
    SizeOrAll,
)
from .workload import Workload, load_workload
from .yaml_io import (
    MAX_ALIASED_VALUES,
    MAX_YAML_DIGITS,
    YAML_DEPTH_MARGIN,
    cgroup_files,
    dump_data,
    dump_scenario,
    event_data,
    exact_duration,
    exact_size,
    load_scenario,
    process_data,
    scenario_data,
    step_data,
)

__all__ = [
    "KERNEL_FEATURES",
    "MAX_ALIASED_VALUES",
    "MAX_CUSTOM_SLICE_NS",
    "MAX_INSTANT_STEPS",
    "MAX_YAML_DIGITS",
    "MIN_CUSTOM_SLICE_NS",
    "MIN_NS_PER_STEP",
    "POLICY_NAMES",
    "SCHEMA_FILE",
    "TUNABLES",
    "YAML_DEPTH_MARGIN",
    "Action",
    "Alloc",
    "CgroupMap",
    "CgroupPath",
    "CpuList",
    "Duration",
    "DurationOrForever",
    "EventSpec",
    "Exit",
    "Free",
    "Kill",
    "Limits",
    "Loc",
    "Loop",
    "MachineSpec",
    "Move",
    "Nice",
    "NsTunable",
    "PhaseNs",
    "Policy",
    "ProcessSpec",
    "Repeat",
    "RtRuntimeTunable",
    "Run",
    "Scenario",
    "ScenarioError",
    "Size",
    "SizeOrAll",
    "Sleep",
    "Step",
    "Timer",
    "TimerMode",
    "UsTunable",
    "Workload",
    "Write",
    "bundled_scenarios",
    "cgroup_files",
    "dump_data",
    "dump_scenario",
    "event_data",
    "exact_duration",
    "exact_size",
    "iter_steps",
    "load_scenario",
    "load_workload",
    "process_data",
    "resolve_scenario",
    "scenario_data",
    "scenario_dir",
    "scenario_json_schema",
    "schema_text",
    "step_data",
]
