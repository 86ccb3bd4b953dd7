"""Cross-checks: the validation that needs more than one field of a scenario — one cgroup
interface per scenario, the v1 hierarchy rules, cgroups and processes named before use, CPUs
within the machine and the cpusets, events within the duration and applied in time order — and
`Limits`, the caps on a scenario's size (each names the CLI flag that raises it). Every finding
carries its location in the YAML; `Scenario` runs these after its fields validate.

Decisions: an event or a process start after ``duration`` is an error (it could never happen);
a scenario uses cgroup v1 files or v2 files, not both (``cpu.idle`` and ``cpuset.cpus`` fit
either).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from .._errors import describe, did_you_mean, name_list
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupConfig, CgroupFileError
from ..units import format_duration, format_size
from .errors import Loc, issue
from .steps import (
    Alloc,
    BarrierWait,
    Broadcast,
    CondWait,
    Fork,
    Resume,
    SetCpus,
    Signal,
    Suspend,
    barrier_parties,
    iter_steps,
    per_thread_count,
    step_paths,
    sync_names,
    sync_step_problems,
)

if TYPE_CHECKING:
    from .model import Scenario, Write


@dataclass(frozen=True)
class Limits:
    """Safety limits on the size of a scenario; each names the CLI flag that overrides it."""

    max_tasks: int = 100_000
    max_duration_ns: int = 3600 * 1_000_000_000
    max_events: int = 100_000
    max_loop_depth: int = 8
    max_alloc_bytes: int = 1 << 40
    #: the largest scenario or workload file, checked before parsing: YAML is parsed at about
    #: 1.5 MB/s, so 1 MiB bounds the time spent before any count can be checked
    max_file_bytes: int = 1 << 20


def _sync_name(step: Any, kind: str) -> str | None:
    """The condition / suspend name `step` uses as `kind` (see `sync_names`), or None."""
    if kind == "wait" and isinstance(step, CondWait):
        return step.cond
    if kind == "wake" and isinstance(step, (Signal, Broadcast)):
        return step.name
    if kind == "suspend" and isinstance(step, Suspend):
        return step.name
    if kind == "resume" and isinstance(step, Resume):
        return step.name
    return None


class CrossChecker:
    """The checks that need more than one field; every finding carries its YAML location."""

    def __init__(self, scenario: Scenario, raw_cgroups: Mapping[str, Any], limits: Limits):
        self.scenario, self.raw_cgroups, self.limits = scenario, raw_cgroups, limits
        self.errors: list[InitErrorDetails] = []
        self.written: dict[str, list[CgroupConfig]] = {}  # each cgroup's configs after events

    def fail(self, loc: Loc, message: str, value: Any = None) -> None:
        self.errors.append(issue(loc, message, value))

    def run(self) -> Scenario:
        configs = self.check_interface()
        self.check_hierarchy(configs, lambda path, file: ("cgroups", path, file))
        self.check_limits()
        self.check_cgroup_cpus(configs)
        self.check_processes(configs)
        self.check_sync(configs)
        self.check_events(configs)
        self.check_period_phases(configs)
        if self.errors:
            raise ValidationError.from_exception_data("Scenario", self.errors)
        events = tuple(sorted(self.scenario.events, key=lambda event: event.at_ns))
        return self.scenario.model_copy(update={"cgroups": configs, "events": events})

    # -- cgroup interface and hierarchy
    def _written_files(self) -> Iterator[tuple[Loc, str]]:
        for path, files in self.raw_cgroups.items():
            if isinstance(files, Mapping):
                for file in files:
                    yield ("cgroups", path, file), file
        for index, event in enumerate(self.scenario.events):
            if event.write is not None:
                for file in event.write.files:
                    yield ("events", index, "write", event.write.path, file), file

    def check_interface(self) -> dict[str, CgroupConfig]:
        """One file family per scenario; every group then carries that interface."""
        first: tuple[str, cgfiles.Interface] | None = None
        for loc, file in self._written_files():
            family = cgfiles.FILES[file].interface if file in cgfiles.FILES else None
            if family is None:
                continue
            if first is None:
                first = (file, family)
            elif family != first[1]:
                self.fail(
                    loc,
                    f"expected a cgroup {first[1]} file like {first[0]!r} (one "
                    f"interface per scenario), found {family} file {file!r}",
                    file,
                )
        interface = first[1] if first else "v1"
        return {
            path: dataclasses.replace(config, interface=interface)
            for path, config in self.scenario.cgroups.items()
        }

    def check_hierarchy(self, configs: Mapping[str, CgroupConfig], where: Any) -> bool:
        try:
            cgfiles.check_hierarchy(configs)
        except cgfiles.HierarchyError as error:
            self.fail(
                where(error.path, error.file), f"expected {error.expected}, found {error.found}"
            )
            return False
        return True

    # -- limits
    def check_limits(self) -> None:
        scenario, limits = self.scenario, self.limits
        if scenario.duration_ns <= 0:
            self.fail(("duration",), "expected a positive duration, found 0")
        if scenario.duration_ns > limits.max_duration_ns:
            self.fail(
                ("duration",),
                f"expected at most {format_duration(limits.max_duration_ns)}"
                f" (raise the limit with --max-duration), found "
                f"{format_duration(scenario.duration_ns)}",
            )
        tasks = sum(process.threads for process in scenario.processes)
        if tasks > limits.max_tasks:
            index = max(range(len(scenario.processes)), key=lambda i: scenario.processes[i].threads)
            self.fail(
                ("processes", index, "threads"),
                f"expected at most {limits.max_tasks} "
                f"threads in all (raise the limit with --max-tasks), found {tasks}",
            )
        if len(scenario.events) > limits.max_events:
            self.fail(
                ("events",),
                f"expected at most {limits.max_events} events (raise the "
                f"limit with --max-events), found {len(scenario.events)}",
            )
        for index, process in enumerate(scenario.processes):
            for step, depth in iter_steps(process.program):
                if depth > limits.max_loop_depth:
                    self.fail(
                        ("processes", index, "program"),
                        f"expected loops nested at most "
                        f"{limits.max_loop_depth} deep (raise the limit with "
                        f"--max-loop-depth), found depth {depth}",
                    )
                    break
                if isinstance(step, Alloc) and step.bytes > limits.max_alloc_bytes:
                    self.fail(
                        ("processes", index, "program"),
                        f"expected allocations of at "
                        f"most {format_size(limits.max_alloc_bytes)} (raise the limit "
                        f"with --max-alloc), found {format_size(step.bytes)}",
                    )

    # -- processes
    def _cpus_outside(self, cpus: frozenset[int] | tuple[int, ...]) -> list[int]:
        return sorted(cpu for cpu in cpus if cpu >= self.scenario.machine.cpus)

    def check_cgroup_cpus(
        self,
        configs: Mapping[str, CgroupConfig],
        where: Any = lambda path: ("cgroups", path, "cpuset.cpus"),
    ) -> None:
        for path, config in configs.items():
            if config.cpus is not None and self._cpus_outside(config.cpus):
                self.fail(
                    where(path),
                    f"expected CPUs within "
                    f"0..{self.scenario.machine.cpus - 1} (machine.cpus), found "
                    f"{cgfiles.format_cpulist(config.cpus)!r}",
                )

    def check_processes(self, configs: Mapping[str, CgroupConfig]) -> None:
        seen: set[str] = set()
        for index, process in enumerate(self.scenario.processes):
            where: Loc = ("processes", index)
            if process.name in seen:
                self.fail(
                    (*where, "name"),
                    f"expected a unique process name, found {process.name!r} again",
                )
            seen.add(process.name)
            if process.cgroup not in configs:
                self.fail((*where, "cgroup"), self._unknown_cgroup(process.cgroup, configs))
            elif process.cpus is not None:
                self._check_affinity((*where, "cpus"), process.cpus, process.cgroup, configs)
            if process.start_ns > self.scenario.duration_ns:
                self.fail(
                    (*where, "start"),
                    f"expected a start within the duration "
                    f"({format_duration(self.scenario.duration_ns)}), found "
                    f"{format_duration(process.start_ns)}",
                )

    # -- synchronisation and thread steps
    def check_sync(self, configs: Mapping[str, CgroupConfig]) -> None:
        """Mutex use per thread (`sync_step_problems`), and the names threads share: a
        condition waited on must be signalled by some program, a suspend point resumed, a fork
        name a process, a barrier met by ≥ 2 threads and by no forked process (its party count
        would change), a process of 0 threads forked."""
        processes = self.scenario.processes
        names = [sync_names(process.program) for process in processes]
        every = {kind: set().union(*(n[kind] for n in names)) for kind in names[0]} if names else {}
        forked = every.get("fork", set())
        known = {process.name for process in processes}
        parties = barrier_parties([(p.program, p.threads) for p in processes])
        # a thread that waits for what no program does would sleep forever (a signal or
        # resume nobody waits for is legal: it is lost, as with pthreads)
        pairs = (
            ("wait", "wake", "a signal or broadcast of condition", "waits on"),
            ("suspend", "resume", "a resume of", "suspends on"),
        )
        for index, process in enumerate(processes):
            where: Loc = ("processes", index)
            problems = dict.fromkeys(  # each thread's own view; a shared step once
                problem
                for thread in range(max(1, per_thread_count(process.program)))
                for problem in sync_step_problems(process.program, process.repeat, thread)
            )
            for path, message in problems:
                self.fail((*where, "program", *path), message)
            if process.threads == 0 and process.name not in forked:
                self.fail(
                    (*where, "threads"),
                    "expected at least 1 thread (0 only for a "
                    f"process that a fork step starts), found 0 and no fork of "
                    f"{process.name!r}",
                )
            for path, step in step_paths(process.program):
                loc = (*where, "program", *path)
                if isinstance(step, Fork) and step.process not in known:
                    self.fail(
                        loc,
                        f"expected a fork of a process of this scenario ("
                        f"{name_list(sorted(known))}){did_you_mean(step.process, known)}"
                        f", found {step.process!r}",
                    )
                elif isinstance(step, BarrierWait):
                    if process.name in forked:
                        self.fail(
                            loc,
                            f"expected no barrier in a forked process (the number "
                            f"of threads meeting at {step.name!r} must be known), found "
                            f"{process.name!r} forked",
                        )
                    elif parties.get(step.name, 0) < 2:
                        self.fail(
                            loc,
                            f"expected barrier {step.name!r} shared by at least 2 "
                            f"threads, found {parties.get(step.name, 0)}",
                        )
                elif isinstance(step, SetCpus):
                    self._check_affinity(loc, step.cpus, process.cgroup, configs)
                for mine, other, needs, verb in pairs:
                    name = _sync_name(step, mine)
                    if name is not None and name not in every[other]:
                        self.fail(
                            loc,
                            f"expected {needs} {name!r} in some program (this "
                            f"thread {verb} it), found none",
                        )

    def _unknown_cgroup(self, path: str, configs: Mapping[str, CgroupConfig]) -> str:
        return (
            f"expected a cgroup listed under cgroups: ({name_list(configs)})"
            f"{did_you_mean(path, configs)}, found {path!r}"
        )

    def _check_affinity(
        self, loc: Loc, cpus: tuple[int, ...], cgroup: str, configs: Mapping[str, CgroupConfig]
    ) -> None:
        outside = self._cpus_outside(cpus)
        if outside:
            self.fail(
                loc,
                f"expected CPUs within 0..{self.scenario.machine.cpus - 1} "
                f"(machine.cpus), found {cgfiles.format_cpulist(cpus)!r}",
            )
            return
        allowed = cgfiles.effective_cpus(configs, cgroup)
        if allowed is not None and not allowed & set(cpus):
            self.fail(
                loc,
                f"expected CPUs that meet {cgroup}'s cpuset.cpus "
                f"({cgfiles.format_cpulist(allowed)}), found "
                f"{cgfiles.format_cpulist(cpus)!r}",
            )

    def check_period_phases(self, configs: Mapping[str, CgroupConfig]) -> None:
        for path, phase in self.scenario.machine.period_phase_ns.items():
            where: Loc = ("machine", "period_phase_ns", path)
            if path not in configs:
                self.errors.append(
                    issue(where, self._unknown_cgroup(path, configs), path, about_key=True)
                )
                continue
            seen = [configs[path], *self.written.get(path, ())]
            longest = max(config.period_ns for config in seen)
            if all(config.quota_ns is None for config in seen):
                self.errors.append(
                    issue(
                        where,
                        f"expected a cgroup given a CPU quota (at the "
                        f"start or by an event), found {path!r} without one",
                        path,
                        about_key=True,
                    )
                )
            elif phase >= longest:
                self.fail(
                    where,
                    f"expected a phase below {path}'s period "
                    f"({format_duration(longest)}), found {format_duration(phase)}",
                    phase,
                )

    # -- events
    def check_events(self, configs: Mapping[str, CgroupConfig]) -> None:
        processes = {process.name: process for process in self.scenario.processes}
        state = dict(configs)
        order = sorted(
            range(len(self.scenario.events)), key=lambda i: self.scenario.events[i].at_ns
        )
        for index in order:
            event = self.scenario.events[index]
            where: Loc = ("events", index)
            if event.at_ns > self.scenario.duration_ns:
                self.fail(
                    (*where, "at"),
                    f"expected a time within the duration "
                    f"({format_duration(self.scenario.duration_ns)}), found "
                    f"{format_duration(event.at_ns)}",
                )
            if event.write is not None:
                self._apply_event_write((*where, "write"), event.write, state)
                continue
            kind = event.kind
            action = next(a for a in (event.move, event.nice, event.kill) if a is not None)
            process = processes.get(action.process)
            if process is None:
                self.fail(
                    (*where, kind, "process"),
                    f"expected a process named in processes: "
                    f"({name_list(processes)}){did_you_mean(action.process, processes)}, "
                    f"found {action.process!r}",
                )
                continue
            if action.thread is not None and action.thread >= process.threads:
                self.fail(
                    (*where, kind, "thread"),
                    f"expected a thread index within "
                    f"0..{process.threads - 1} of {process.name}, found {action.thread}",
                )
            if event.move is not None:
                if event.move.to not in state:
                    self.fail((*where, kind, "to"), self._unknown_cgroup(event.move.to, state))
                elif process.cpus is not None:
                    self._check_affinity((*where, kind, "to"), process.cpus, event.move.to, state)

    def _apply_event_write(self, where: Loc, write: Write, state: dict[str, CgroupConfig]) -> None:
        if write.path not in state:
            self.fail((*where, write.path), self._unknown_cgroup(write.path, state))
            return
        config = state[write.path]
        for file, value in write.files.items():
            try:
                config = cgfiles.apply_write(
                    config, file, value, is_root=write.path == cgfiles.ROOT
                )
            except CgroupFileError as error:
                self.fail(
                    (*where, write.path, file),
                    f"expected {error.expected}, found {error.found}",
                    value,
                )
                return
        interface = state[write.path].interface
        old_cpus = state[write.path].cpus
        if interface == "v1" and config.cpus is not None and config.cpus != old_cpus:
            refusal = cgfiles.validate_cpuset_change(state, write.path, config.cpus)
            if refusal is not None:
                found = describe(cgfiles.format_cpulist(config.cpus))
                self.fail(
                    (*where, write.path),
                    f"expected {refusal.expected}, found {found}",
                    write.files.get("cpuset.cpus"),
                )
                return
        candidate = {**state, write.path: dataclasses.replace(config, interface=interface)}
        if self.check_hierarchy(candidate, lambda path, file: (*where, write.path)):
            state.update(candidate)
            self.written.setdefault(write.path, []).append(config)
            self.check_cgroup_cpus(
                {write.path: candidate[write.path]}, lambda path: (*where, path, "cpuset.cpus")
            )
