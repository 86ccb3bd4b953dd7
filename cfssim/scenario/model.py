"""The scenario model: `Scenario` and its parts — `MachineSpec` (CPUs, HZ, policy, kernel
tunables), the ``cgroups`` map (kernel files resolved to `CgroupConfig`), `ProcessSpec` (threads
and their program) and `EventSpec` (timed write, move, nice or kill) — frozen pydantic models
whose field validators take YAML's spellings; checks across fields are in `checks`.

Decisions: ``memory.oom_control: 1`` is the one way to set oom_kill_disable (the kernel's own
write); kernel files take kernel values (µs, bytes, ``100M``) and also cfssim units.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from .. import container
from .._errors import describe, did_you_mean
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupConfig, CgroupFileError, FileValue
from ..host import HostModel, HostNoise, TickGrid, is_noise_process, lognormal, uniform
from ..sched.policy import DEFAULT_FEATURES
from ..task import RT_POLICIES, SCHED_NAMES, SCHED_POLICIES
from ..units import NSEC_PER_SEC, NSEC_PER_USEC, format_duration
from .checks import CrossChecker, Limits
from .errors import fail, issue
from .steps import (
    Loop,
    PerThread,
    Step,
    instant_step_problem,
    iter_steps,
    repeated_until_problems,
    takes_time,
)
from .values import (
    CGROUP_PATH_PATTERN,
    CPUS_SCHEMA,
    DURATION_PATTERN,
    DURATION_SCHEMA,
    CgroupPath,
    CpuList,
    Duration,
    FrozenModel,
    Repeat,
    SignedDuration,
    as_duration,
)

if TYPE_CHECKING:
    from ..profile import MachineProfile

# ---- processes ---------------------------------------------------------------------------------
Policy = Literal["normal", "batch", "idle", "fifo", "rr"]  # the names of task.SCHED_POLICIES
assert get_args(Policy) == tuple(SCHED_POLICIES)
#: The spellings a scenario may give a policy (lower-cased): cfssim's names, then the kernel's
#: without and with the ``sched_`` prefix (``other``, ``sched_fifo``).
POLICY_NAMES: dict[str, str] = {
    **{kernel.removeprefix("SCHED_").lower(): policy for kernel, policy in SCHED_NAMES.items()},
    **{kernel.lower(): policy for kernel, policy in SCHED_NAMES.items()},
}

MIN_CUSTOM_SLICE_NS = 100_000  # __setparam_fair clamps sched_runtime to 0.1 ms..100 ms
MAX_CUSTOM_SLICE_NS = 100_000_000


def _policy(value: Any) -> Policy:
    name = str(value).lower() if isinstance(value, str) else None
    if name not in POLICY_NAMES:
        raise fail(
            f"expected one of {', '.join(SCHED_POLICIES)} (or SCHED_OTHER, "
            f"SCHED_BATCH, …){did_you_mean(str(value).lower(), POLICY_NAMES)}, "
            f"found {describe(value)}"
        )
    return cast(Policy, POLICY_NAMES[name])


def _custom_slice(value: Any) -> int | None:
    """``__setparam_fair``: 0 = no custom slice, else clamped to 0.1 ms..100 ms."""
    value_ns = as_duration(value)
    return None if value_ns == 0 else max(MIN_CUSTOM_SLICE_NS, min(MAX_CUSTOM_SLICE_NS, value_ns))


NAME_PATTERN = r"^[A-Za-z0-9_.:+-]+$"


def _not_host_noise(name: str) -> str:
    if is_noise_process(name):
        raise fail(
            f"expected a process name other than host-noise-cpu<N> (the simulated "
            f"host's background noise), found {name!r}"
        )
    return name


class ProcessSpec(FrozenModel):
    """A process (thread group) of `threads` identical threads running `program`."""

    name: Annotated[str, AfterValidator(_not_host_noise)] = Field(pattern=NAME_PATTERN)
    cgroup: CgroupPath = "/"
    threads: int = Field(default=1, ge=0, strict=True)  # 0: only started by fork steps (checks)
    nice: int = Field(default=0, ge=-20, le=19, strict=True)
    policy: Annotated[
        Policy,
        BeforeValidator(_policy),
        WithJsonSchema(
            {"enum": [*POLICY_NAMES, *(n.upper() for n in POLICY_NAMES if n.startswith("sched_"))]}
        ),
    ] = "normal"
    rt_priority: int = Field(default=0, ge=0, le=99, strict=True)
    cpus: CpuList = None
    start_ns: Duration = Field(default=0, alias="start")
    repeat: Repeat = 1
    program: tuple[Step, ...] = Field(min_length=1)
    oom_score_adj: int = Field(default=0, ge=-1000, le=1000, strict=True)
    slice_ns: Annotated[
        int | None, BeforeValidator(_custom_slice), WithJsonSchema(DURATION_SCHEMA)
    ] = Field(default=None, alias="slice")
    session: str | None = None

    @model_validator(mode="after")
    def _policy_rules(self) -> ProcessSpec:
        errors: list[InitErrorDetails] = []
        if self.policy in RT_POLICIES and not 1 <= self.rt_priority <= 99:
            errors.append(
                issue(
                    ("rt_priority",),
                    f"expected 1..99 for policy {self.policy}, found {self.rt_priority}",
                    self.rt_priority,
                )
            )
        if self.policy not in RT_POLICIES and self.rt_priority != 0:
            errors.append(
                issue(
                    ("rt_priority",),
                    f"expected 0 (rt_priority needs policy fifo or rr), found {self.rt_priority}",
                    self.rt_priority,
                )
            )
        if self.policy in RT_POLICIES and self.slice_ns is not None:
            errors.append(
                issue(
                    ("slice",),
                    "expected no custom slice for a real-time policy "
                    "(slices belong to normal and batch tasks), found "
                    f"{format_duration(self.slice_ns)}",
                    self.slice_ns,
                )
            )
        if self.repeat is None and not takes_time(self.program):
            errors.append(
                issue(
                    ("program",),
                    "expected a run, sleep or timer step when the "
                    "program repeats forever, found a program that takes no time",
                )
            )
        for index, (step, _) in enumerate(iter_steps(self.program)):
            if isinstance(step, Loop) and step.repeat is None and not takes_time(step.program):
                errors.append(
                    issue(
                        ("program",),
                        f"expected a run, sleep or timer step "
                        f"inside the forever loop (step {index}), found none",
                    )
                )
            if isinstance(step, PerThread) and len(step.threads) != self.threads:
                errors.append(
                    issue(
                        ("program",),
                        f"expected one per_thread program per "
                        f"thread ({self.threads}, step {index}), found "
                        f"{len(step.threads)}",
                    )
                )
        for path, message in repeated_until_problems(self.program, self.repeat):
            errors.append(issue(("program", *path), message))
        problem = instant_step_problem(self.program, self.repeat)
        if problem is not None:
            errors.append(issue(("program",), problem))
        if errors:
            raise ValidationError.from_exception_data("ProcessSpec", errors)
        return self


# ---- events ------------------------------------------------------------------------------------
class Write(FrozenModel):
    """Write `files` (``{file: value}``, in order) into the cgroup at `path`."""

    path: CgroupPath
    files: dict[str, FileValue] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) != {"path", "files"}:
            if len(data) != 1:
                raise fail(
                    "expected one cgroup path with its files, such as "
                    f"{{/app: {{cpu.max: '50000 100000'}}}}, found {describe(data)}"
                )
            path, files = next(iter(data.items()))
            data = {"path": path, "files": files}
        files = data.get("files") if isinstance(data, Mapping) else None
        for file, value in files.items() if isinstance(files, Mapping) else ():
            plain = isinstance(value, (int, str)) and not isinstance(value, bool)
            if not plain and not (
                isinstance(value, list) and all(type(cpu) is int for cpu in value)
            ):
                raise fail(
                    f"expected {file} to be an integer, a string or a list of CPUs, "
                    f"found {describe(value)}"
                )
        return data


class Move(FrozenModel):
    """Move `process` (or only its `thread`) to the cgroup `to`."""

    process: str
    to: CgroupPath
    thread: int | None = Field(default=None, ge=0, strict=True)


class Nice(FrozenModel):
    """Set the nice level of `process` (or one `thread`) to `value`."""

    process: str
    value: int = Field(ge=-20, le=19, strict=True)
    thread: int | None = Field(default=None, ge=0, strict=True)


class Kill(FrozenModel):
    """SIGKILL `process` (or one `thread`)."""

    process: str
    thread: int | None = Field(default=None, ge=0, strict=True)


Action = Write | Move | Nice | Kill
ACTIONS = ("write", "move", "nice", "kill")


class EventSpec(FrozenModel):
    """At `at_ns`, exactly one action: ``write``, ``move``, ``nice`` or ``kill``."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in ACTIONS]}
    )

    at_ns: Duration = Field(alias="at")
    write: Write | None = None
    move: Move | None = None
    nice: Nice | None = None
    kill: Kill | None = None

    @model_validator(mode="after")
    def _exactly_one_action(self) -> EventSpec:
        given = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise fail(
                "expected exactly one action of write, move, nice or kill, found "
                + (" and ".join(given) if given else "none")
            )
        return self

    @property
    def action(self) -> Action:
        """The one action of this event."""
        return next(getattr(self, name) for name in ACTIONS if getattr(self, name) is not None)

    @property
    def kind(self) -> str:
        """The name of this event's action: ``write``, ``move``, ``nice`` or ``kill``."""
        return next(name for name in ACTIONS if getattr(self, name) is not None)


# ---- machine -----------------------------------------------------------------------------------
#: kernel/sched/features.h names (classic CFS and EEVDF eras) the model implements and a
#: scenario may switch: the simulator's own list, so validation and runs agree.
KERNEL_FEATURES = frozenset(DEFAULT_FEATURES)


#: The kernel's ranges. Linux ≤ 5.12 sysctls (kernel/sysctl.c): sched_latency_ns and
#: sched_min_granularity_ns within [min_sched_granularity_ns = 100µs, max_sched_granularity_ns =
#: 1s], sched_wakeup_granularity_ns within [0, 1s]; 5.13+ debugfs files (kernel/sched/debug.c)
#: are u32 (``debugfs_create_u32``: latency, base_slice, wakeup_granularity, migration_cost).
#: ``sched_cfs_bandwidth_slice_us`` and ``sched_rt_period_us``: ``proc_dointvec_minmax`` with
#: SYSCTL_ONE … INT_MAX; ``sched_rt_runtime_us``: SYSCTL_NEG_ONE (RUNTIME_INF) … INT_MAX.
INT_MAX = 2**31 - 1
U32_MAX = 2**32 - 1
MIN_SCHED_GRANULARITY_NS = 100_000
MAX_SCHED_GRANULARITY_NS = NSEC_PER_SEC


def _tunable(unit_ns: int, minimum: int, maximum: int = INT_MAX) -> Any:
    """Parser of a kernel tunable in the unit of its suffix (ns or µs), within the kernel's
    range [`minimum`, `maximum`]; durations converted."""
    unit = "ns" if unit_ns == 1 else "µs"

    def parse(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str):
            value_ns = as_duration(value)
            if value_ns % unit_ns:
                raise fail(f"expected a whole number of {unit}, found {describe(value)}")
            number = value_ns // unit_ns
        elif type(value) is int:
            number = value
        else:
            raise fail(
                f"expected an integer of {unit} or a duration such as '5ms', "
                f"found {describe(value)}"
            )
        if not minimum <= number <= maximum:
            raise fail(
                f"expected a value from {minimum} to {maximum} {unit} (the kernel's "
                f"range), found {describe(value)}"
            )
        return number

    return parse


def _tunable_schema(unit: str, minimum: int) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": minimum},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": f"in {unit} (or a duration string)",
        }
    )


NsTunable = Annotated[
    int | None, BeforeValidator(_tunable(1, 0, U32_MAX)), _tunable_schema("ns", 0)
]
SliceTunable = Annotated[
    int | None,
    BeforeValidator(_tunable(1, MIN_SCHED_GRANULARITY_NS, MAX_SCHED_GRANULARITY_NS)),
    _tunable_schema("ns", MIN_SCHED_GRANULARITY_NS),
]
WakeupTunable = Annotated[
    int | None,
    BeforeValidator(_tunable(1, 0, MAX_SCHED_GRANULARITY_NS)),
    _tunable_schema("ns", 0),
]
PhaseNs = Annotated[int, BeforeValidator(_tunable(1, 0, 2**63 - 1)), _tunable_schema("ns", 0)]
UsTunable = Annotated[
    int | None, BeforeValidator(_tunable(NSEC_PER_USEC, 1)), _tunable_schema("µs", 1)
]
RtRuntimeTunable = Annotated[
    int | None, BeforeValidator(_tunable(NSEC_PER_USEC, -1)), _tunable_schema("µs", -1)
]
TUNABLES = (
    "sched_latency_ns",
    "sched_min_granularity_ns",
    "sched_wakeup_granularity_ns",
    "sched_base_slice_ns",
    "sched_tunable_scaling",
    "sched_migration_cost_ns",
    "sched_cfs_bandwidth_slice_us",
    "sched_rt_runtime_us",
    "sched_rt_period_us",
    "timer_slack_ns",
    "tick_offset_ns",
)


class NoiseSpec(FrozenModel):
    """Host noise on every CPU: `rate` runs per second (Poisson), each lasting a log-normal
    time with median `run` and shape `sigma` (σ of its logarithm; 0: always `run`)."""

    rate: float = Field(gt=0, le=1_000_000)
    run: Duration = Field(gt=0)
    sigma: float = Field(default=0.0, ge=0, le=5)

    def host_noise(self) -> HostNoise:
        return HostNoise(self.rate, lognormal(self.run, self.sigma))


#: The most CPUs a simulated machine may have.
MAX_MACHINE_CPUS = 1024


class MachineSpec(FrozenModel):
    """The simulated machine; kernel tunables are given flat under their kernel names."""

    cpus: int = Field(ge=1, le=MAX_MACHINE_CPUS, strict=True)
    policy: Literal["eevdf", "cfs"] = "eevdf"
    hz: Literal[100, 250, 300, 1000] = 250
    slice_ends: Literal["precise", "tick"] = "tick"
    autogroup: bool = True
    features: dict[str, bool] = Field(default_factory=dict)
    sched_latency_ns: SliceTunable = None
    sched_min_granularity_ns: SliceTunable = None
    sched_wakeup_granularity_ns: WakeupTunable = None
    sched_base_slice_ns: SliceTunable = None
    sched_tunable_scaling: Literal[0, 1, 2] | None = None
    sched_migration_cost_ns: NsTunable = None
    sched_cfs_bandwidth_slice_us: UsTunable = None
    sched_rt_runtime_us: RtRuntimeTunable = None
    sched_rt_period_us: UsTunable = None
    #: normal tasks' hrtimer slack (kernel default 50µs; here 0): an unsigned long (prctl)
    timer_slack_ns: Annotated[
        int | None, BeforeValidator(_tunable(1, 0, 2**63 - 1)), _tunable_schema("ns", 0)
    ] = None
    tick_offset_ns: NsTunable = None  # where the tick grid starts (0 ≤ offset < 1/hz)
    #: where each quota'd cgroup's period grid starts (below its longest period; default 0):
    #: Linux 6.4+ gives every group's period timer its own phase; the real twin measures it
    period_phase_ns: dict[str, PhaseNs] = Field(default_factory=dict)
    # ---- the real host (cfssim.host): a measured profile, and keys that override it ----------
    #: a machine profile (`cfssim calibrate`): "default" (this project's reference host) or a
    #: YAML file, relative to the scenario's; the scenario's own keys take precedence
    profile: str | None = Field(default=None, min_length=1)
    page_fault_cost: Duration | None = None  # CPU time of faulting in one 4 KiB page
    null_write_cost: Duration | None = None  # CPU time of one write(2) to /dev/null (iorun)
    tick_skew: tuple[SignedDuration, ...] | None = None  # each CPU's mean tick offset
    tick_jitter: Duration | None = None  # each tick's further offset, uniform within ±this
    timer_latency: Duration | None = None  # hrtimer expiry → handler (ticks, lone sleeps); 0: none
    tick_switch: Duration | None = None  # a tick's handler → the switch it asks for
    noise: NoiseSpec | None = None  # background activity on every CPU

    @model_validator(mode="after")
    def _ticks_within_half_a_tick(self) -> MachineSpec:
        half = NSEC_PER_SEC // self.hz // 2
        jitter = self.tick_jitter or 0
        for cpu, skew in enumerate(self.tick_skew or ()):
            if abs(skew) + jitter >= half:
                raise ValidationError.from_exception_data(
                    "MachineSpec",
                    [
                        issue(
                            ("tick_skew", cpu),
                            f"expected |skew| + tick_jitter below half a tick "
                            f"({half} ns at hz {self.hz}), found {skew} ns + {jitter} ns",
                            skew,
                        )
                    ],
                )
        if jitter >= half:
            raise ValidationError.from_exception_data(
                "MachineSpec",
                [
                    issue(
                        ("tick_jitter",),
                        f"expected below half a tick ({half} ns at hz {self.hz}), "
                        f"found {jitter} ns",
                        jitter,
                    )
                ],
            )
        return self

    def host_problem(self, profile: MachineProfile | None) -> str | None:
        """What keeps the host this machine and `profile` make together from working (a tick
        offset and jitter beyond half a tick), or None."""
        hz = self.hz if "hz" in self.model_fields_set or profile is None else profile.hz
        try:
            TickGrid(NSEC_PER_SEC // hz, 0, self.cpus, self.host_model(profile), 0)
        except ValueError as error:
            return f"expected {error}".replace("expected tick skew of", "a tick skew for", 1)
        return None

    def host_model(self, profile: MachineProfile | None) -> HostModel:
        """The simulated host: `profile`'s, with this machine's own host keys on top."""
        host = profile.host_model(self.profile or "profile") if profile else HostModel()
        changes: dict[str, Any] = {}
        if self.page_fault_cost is not None:
            changes["page_fault_ns"] = self.page_fault_cost
        if self.null_write_cost is not None:
            changes["null_write_ns"] = self.null_write_cost
        if self.tick_skew is not None:
            changes["tick_offset_ns"] = self.tick_skew
        if self.tick_jitter is not None:
            jitter = self.tick_jitter
            changes["tick_jitter"] = (uniform(-jitter, jitter),) if jitter else ()
        if self.timer_latency is not None:
            latency = self.timer_latency
            changes["timer_latency"] = uniform(latency, latency) if latency else None
        if self.tick_switch is not None:
            changes["tick_switch_ns"] = self.tick_switch
        if self.noise is not None:
            changes["noise"] = (self.noise.host_noise(),)
        if changes:
            changes["source"] = f"{host.source} + scenario" if profile else "scenario"
        return dataclasses.replace(host, **changes)

    @model_validator(mode="after")
    def _rt_runtime_within_its_period(self) -> MachineSpec:
        """``sched_rt_handler``: the runtime may not exceed the period (-1: no limit) — EINVAL."""
        period = self.sched_rt_period_us or 1_000_000
        runtime = self.sched_rt_runtime_us
        if runtime is not None and runtime > period:
            raise ValidationError.from_exception_data(
                "MachineSpec",
                [
                    issue(
                        ("sched_rt_runtime_us",),
                        f"expected at most sched_rt_period_us ({period} µs) or -1, found {runtime}",
                        runtime,
                    )
                ],
            )
        return self

    @model_validator(mode="after")
    def _tick_offset_within_a_tick(self) -> MachineSpec:
        tick = NSEC_PER_SEC // self.hz
        if self.tick_offset_ns is not None and self.tick_offset_ns >= tick:
            raise ValidationError.from_exception_data(
                "MachineSpec",
                [
                    issue(
                        ("tick_offset_ns",),
                        f"expected an offset below one tick ({tick} ns at hz {self.hz}), "
                        f"found {self.tick_offset_ns}",
                        self.tick_offset_ns,
                    )
                ],
            )
        return self

    @field_validator("features")
    @classmethod
    def _known_features(cls, features: dict[str, bool]) -> dict[str, bool]:
        unknown = [
            issue(
                (name,),
                f"expected a kernel feature cfssim models"
                f"{did_you_mean(name, KERNEL_FEATURES)}"
                f", found {describe(name)}",
                name,
                about_key=True,
            )
            for name in features
            if name not in KERNEL_FEATURES
        ]
        if unknown:
            raise ValidationError.from_exception_data("MachineSpec", unknown)
        return features

    @property
    def tunables(self) -> dict[str, int]:
        """The kernel tunables given, by kernel name, in the unit of their suffix."""
        return {name: getattr(self, name) for name in TUNABLES if getattr(self, name) is not None}


# ---- cgroups -----------------------------------------------------------------------------------
def _resolve_cgroups(raw: Any) -> Any:
    """``{path: {file: value}}`` → ``{path: CgroupConfig}`` with "/" and implied ancestors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise fail(f"expected a mapping of cgroup paths to their files, found {describe(raw)}")
    configs: dict[str, CgroupConfig] = {}
    errors: list[InitErrorDetails] = []
    for path, files in raw.items():
        if isinstance(files, CgroupConfig):
            configs[path] = files
            continue
        try:
            cgfiles.check_path(path)
        except ValueError as error:
            errors.append(issue((path,), str(error), path))
            continue
        if files is None:
            files = {}
        if not isinstance(files, Mapping):
            errors.append(
                issue(
                    (path,),
                    "expected a mapping of cgroup files to values such as "
                    f"{{cpu.shares: 1024}}, found {describe(files)}",
                    files,
                )
            )
            continue
        config = CgroupConfig()
        for file, value in files.items():
            try:
                config = cgfiles.apply_write(config, file, value, is_root=path == cgfiles.ROOT)
            except CgroupFileError as error:
                errors.append(
                    issue(
                        (path, file),
                        f"expected {error.expected}, found {error.found}",
                        value,
                        about_key=file not in cgfiles.FILES,
                    )
                )
        configs[path] = config
    if errors:
        raise ValidationError.from_exception_data("cgroups", errors)
    for path in list(configs):
        for ancestor in cgfiles.ancestors(path):
            configs.setdefault(ancestor, CgroupConfig())
    configs.setdefault(cgfiles.ROOT, CgroupConfig())
    return {path: configs[path] for path in sorted(configs)}


def files_schema() -> dict[str, Any]:
    value = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    properties = {
        name: {**(CPUS_SCHEMA if name == "cpuset.cpus" else value), "description": spec.syntax}
        for name, spec in cgfiles.FILES.items()
    }
    return {"type": ["object", "null"], "properties": properties, "additionalProperties": False}


# ---- container specs: docker / kubernetes keys per cgroup (all logic in cfssim/container.py) -----
def expand_container_specs(data: Any) -> Any:
    """Raw scenario data with ``docker:``/``kubernetes:`` cgroup keys replaced by their files."""
    if not isinstance(data, Mapping):
        return data
    expanded, errors = container.expand_cgroups(data)
    if errors:
        raise ValidationError.from_exception_data(
            "Scenario", [issue(loc, message) for loc, message in errors]
        )
    return expanded


def with_container_keys(schema: dict[str, Any]) -> dict[str, Any]:
    """A cgroup's files schema that also takes the ``docker`` and ``kubernetes`` keys."""
    keys = {
        container.DOCKER_KEY: {
            "type": "string",
            "description": "docker run resource flags, e.g. '--cpus=1.5 --cpu-shares=512 "
            "--memory=100m'",
        },
        container.KUBERNETES_KEY: {
            "type": ["object", "array"],
            "description": "a container's {requests: {cpu, memory}, limits: {…}}, or pods "
            "{pod: <uid>, containers: {<name>: {requests, limits}}} under /kubepods",
        },
    }
    return {**schema, "properties": {**schema["properties"], **keys}}


CGROUPS_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": CGROUP_PATH_PATTERN},
    "additionalProperties": with_container_keys(files_schema()),
    "description": "cgroups keyed by path; each maps kernel file names (v1 or v2) to values",
}
CgroupMap = Annotated[
    dict[str, CgroupConfig], BeforeValidator(_resolve_cgroups), WithJsonSchema(CGROUPS_SCHEMA)
]


# ---- the scenario --------------------------------------------------------------------------------
class Scenario(FrozenModel):
    """A validated scenario: units resolved, every cgroup (with "/" and ancestors) configured."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    duration_ns: Duration = Field(alias="duration")
    seed: int = Field(default=0, ge=0)
    machine: MachineSpec
    cgroups: CgroupMap = Field(default_factory=lambda: {cgfiles.ROOT: CgroupConfig()})
    processes: tuple[ProcessSpec, ...] = Field(min_length=1)
    events: tuple[EventSpec, ...] = ()
    _source: str | None = PrivateAttr(default=None)
    _profile: tuple[str, MachineProfile] | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The file the scenario was loaded from, if any."""
        return self._source

    def machine_profile(self) -> MachineProfile | None:
        """The profile ``machine.profile`` names (a file relative to the scenario's), or None.
        Raises `ProfileError` (a `ScenarioError`) when it cannot."""
        from ..profile import resolve_profile

        name = self.machine.profile
        if name is None:
            return None
        if self._profile is None or self._profile[0] != name:
            self._profile = (name, resolve_profile(name, self._source))
        return self._profile[1]

    @property
    def interface(self) -> cgfiles.Interface:
        """The cgroup interface the scenario's files belong to ("v1" or "v2")."""
        return self.cgroups[cgfiles.ROOT].interface

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Scenario:
        data = expand_container_specs(data)
        scenario = handler(data)
        if not isinstance(scenario, Scenario):  # pragma: no cover - pydantic guarantees it
            raise TypeError("Scenario validation returned another type")
        limits = (info.context or {}).get("limits") or Limits()
        raw_cgroups = data.get("cgroups") if isinstance(data, Mapping) else None
        checker = CrossChecker(
            scenario, raw_cgroups if isinstance(raw_cgroups, Mapping) else {}, limits
        )
        return checker.run()
