"""Scenario YAML in and out: `load_scenario` reads YAML 1.2 with ruamel.yaml (round-trip, so
every key and item keeps its line and column), screens it (depth, aliases, tags, digits),
validates it into a `Scenario` and turns pydantic's errors into `ScenarioError` messages
``file:line:col: path.to.field: expected …, found …`` — all problems found at once where the
structure allows it. `scenario_data` / `dump_scenario` write a `Scenario` back as the same YAML
shape (``cgroups`` by path with kernel file names, ``processes`` with ``program`` steps,
``events``) in exact, readable units (``10ms``, ``64MiB``): ``load_scenario(dump_scenario(s))``
equals ``s``. Sweeps edit that mapping by dotted path before validating it again.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from .. import container
from .._errors import describe, did_you_mean, printable, quoted
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupConfig
from ..units import NSEC_PER_MSEC, NSEC_PER_SEC, NSEC_PER_USEC
from .checks import Limits
from .errors import Loc, ScenarioError
from .model import (
    ACTIONS,
    TUNABLES,
    EventSpec,
    Kill,
    MachineSpec,
    Move,
    Nice,
    ProcessSpec,
    Scenario,
)
from .steps import (
    CAPTURED_STEPS,
    SYNC_NAMED,
    SYNC_STEPS,
    Alloc,
    CondWait,
    Draw,
    Exit,
    Free,
    Loop,
    PerThread,
    Run,
    Runtime,
    SetCpus,
    Sleep,
    Step,
    ThreadProgram,
    Timer,
    Until,
    Yield,
)


# ---- loading -------------------------------------------------------------------------------------
def is_file_name(source: str) -> bool:
    """Whether one-line `source` names an existing file (text too long for a name is YAML)."""
    try:
        return "\n" not in source and Path(source).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG, an embedded NUL
        return False


def looks_like_a_file_name(source: str) -> bool:
    """Whether text given as a scenario is rather a path: one word (no whitespace) with no YAML
    structure (``:``, ``{``, ``[``, ``#``)."""
    return (
        bool(source)
        and not any(c.isspace() for c in source)
        and not any(c in source for c in ":{}[]#,")
    )


def read_source(
    source: str | Path, what: str = "YAML", max_bytes: int | None = None
) -> tuple[str, str, str | None]:
    """(text, origin for messages, file name stem or None) of a file (a Path or an existing
    file name) or of text; an unreadable file, a one-word name of no file, or more than
    `max_bytes` bytes is a `ScenarioError` (the size checked before anything is read)."""
    if not isinstance(source, (str, Path)):
        raise TypeError(f"load_scenario takes YAML text or a path, not {type(source).__name__}")
    if isinstance(source, Path) or is_file_name(source):
        path = Path(source)
        try:
            size = path.stat().st_size
            if max_bytes is not None and size > max_bytes:
                raise ScenarioError([_too_big(str(path), what, size, max_bytes)])
            return path.read_text(encoding="utf-8"), str(path), path.stem
        except (OSError, UnicodeDecodeError) as error:
            raise ScenarioError(
                [f"{path}:1:1: document: expected a readable UTF-8 {what} file, found {error}"]
            ) from None
    if looks_like_a_file_name(source):
        raise ScenarioError(
            [f"{printable(source)}: expected a {what} file or {what} text, found no such file"]
        )
    size = len(source.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise ScenarioError([_too_big("<string>", what, size, max_bytes)])
    return source, "<string>", None


def _too_big(origin: str, what: str, size: int, max_bytes: int) -> str:
    return (
        f"{origin}:1:1: document: expected at most {max_bytes} bytes of {what} (--max-size "
        f"raises it), found {size} bytes"
    )


def load_scenario(source: str | Path, *, limits: Limits | None = None) -> Scenario:
    """A validated `Scenario` from a YAML file (a Path or an existing file name) or YAML text.

    A missing ``name`` defaults to the file's stem. Raises `ScenarioError`.
    """
    limits = limits or Limits()
    text, origin, stem = read_source(source, max_bytes=limits.max_file_bytes)
    located = read_yaml(text, origin, limits.max_loop_depth)
    data = located.data
    if "name" not in data:
        data = {"name": stem or "scenario", **data}
    try:
        scenario = Scenario.model_validate(data, context={"limits": limits})
    except ValidationError as error:
        raise ScenarioError(located_messages(error, located, origin)) from None
    scenario._source = origin if stem is not None else None
    try:  # a profile that cannot be read is refused with the scenario
        profile = scenario.machine_profile()
    except ScenarioError as error:
        line, col = position(located, ("machine", "profile"), False)
        raise ScenarioError(
            [f"{origin}:{line}:{col}: machine.profile: {message}" for message in error.messages]
        ) from None
    problem = scenario.machine.host_problem(profile)  # the profile and the keys together
    if problem is not None:
        machine = scenario.machine
        given = [
            k
            for k in ("tick_skew", "tick_jitter", "timer_latency", "tick_switch")
            if getattr(machine, k) is not None
        ]  # the first host key given, else the profile
        key = given[0] if given else "profile"
        line, col = position(located, ("machine", key), False)
        raise ScenarioError([f"{origin}:{line}:{col}: machine.{key}: {problem}"])
    return scenario


# ---- YAML reading and error locations ---------------------------------------------------------
@dataclass
class Located:
    """Plain data parsed from YAML, with (line, col) 1-based of every key and value by path."""

    data: Any
    keys: dict[Loc, tuple[int, int]]
    values: dict[Loc, tuple[int, int]]


def _plain(node: Any, path: Loc, located: Located) -> Any:
    """ruamel round-trip nodes → plain dict/list/scalars, recording positions on the way."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            with _NO_POSITION:
                line, col = node.lc.key(key)
                located.keys[(*path, key)] = (line + 1, col + 1)
            with _NO_POSITION:
                line, col = node.lc.value(key)
                located.values[(*path, key)] = (line + 1, col + 1)
            if isinstance(key, (Mapping, tuple, list)):  # a YAML complex key (``? {a: 1}``)
                line, col = located.keys.get((*path, key), (1, 1))  # type: ignore[arg-type]
                found = describe(dict(key) if isinstance(key, Mapping) else list(key))
                raise _YamlRefused(f"expected a plain key, found {found} as a key", line, col)
            result[_plain(key, (), located) if not isinstance(key, str) else str(key)] = _plain(
                value, (*path, key), located
            )
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            with _NO_POSITION:
                line, col = node.lc.item(index)
                located.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(value, (*path, index), located))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, TaggedScalar):  # `!!str 123`: the screen lets only !!str through
        return str(node.value)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


#: merged (``<<``) keys have no position of their own; the parent's is used instead
_NO_POSITION = contextlib.suppress(KeyError, IndexError, TypeError)


#: What a scenario file may hold: nesting beyond what its loops need (each loop nests 3 levels),
#: values that aliases add, digits of a number.
YAML_DEPTH_MARGIN = 16
MAX_ALIASED_VALUES = 100_000
MAX_YAML_DIGITS = 100
_CORE_TAG = "tag:yaml.org,2002:"
_STR_TAG, _INT_TAG, _FLOAT_TAG = (f"{_CORE_TAG}{kind}" for kind in ("str", "int", "float"))
_SCALAR_TAGS = {_STR_TAG, _INT_TAG, _FLOAT_TAG, f"{_CORE_TAG}bool", f"{_CORE_TAG}null"}
_COLLECTION_TAGS = {f"{_CORE_TAG}map", f"{_CORE_TAG}seq"}


class _YamlRefused(Exception):
    """YAML refused before validation: a message and its 1-based position."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line, self.col = line, col

    @classmethod
    def at(cls, event: Any, message: str) -> _YamlRefused:
        return cls(message, event.start_mark.line + 1, event.start_mark.column + 1)


def _tag_name(tag: Any) -> str:
    return str(getattr(tag, "value", tag))


def _screen_yaml(yaml: YAML, text: str, max_depth: int) -> None:
    """Walk the YAML event stream (flat: no recursion, nothing built yet) and refuse what would
    break or swamp the loader: nesting deeper than `max_depth`, aliases adding more than
    `MAX_ALIASED_VALUES` values (an "alias bomb"), plain integers of more than
    `MAX_YAML_DIGITS` digits, and explicit tags other than ``!!str``, ``!!map``, ``!!seq`` and core
    scalar tags on values of that type (``!!int 3``, ``!!float 1`` but not ``!!int 3s``)."""
    resolver = VersionedResolver(version=(1, 2))
    subtree: dict[Any, int] = {}  # anchor → values in its subtree, aliases expanded
    open_sizes: list[list[Any]] = []  # [anchor, values so far] of each open collection
    aliased = 0
    for event in yaml.parse(io.StringIO(text)):
        if not isinstance(event, NodeEvent):
            if isinstance(event, CollectionEndEvent):
                anchor, size = open_sizes.pop()
                if anchor is not None:
                    subtree[anchor] = size
                if open_sizes:
                    open_sizes[-1][1] += size
            continue
        raw_tag = getattr(event, "tag", None)
        tag = None if raw_tag is None else _tag_name(raw_tag)
        if isinstance(event, AliasEvent):
            size = subtree.get(event.anchor, 1)
            aliased += size
            if aliased > MAX_ALIASED_VALUES:
                raise _YamlRefused.at(
                    event,
                    f"expected aliases to add at most {MAX_ALIASED_VALUES} values, found more",
                )
        elif isinstance(event, ScalarEvent):
            size = 1
            implicit = _tag_name(resolver.resolve(ScalarNode, event.value, (True, False)))
            if tag is not None and tag != _STR_TAG:
                short = tag.replace(_CORE_TAG, "!!")
                if tag not in _SCALAR_TAGS:
                    raise _YamlRefused.at(
                        event, f"expected plain YAML values, found the tag {short}"
                    )
                if implicit != tag and not (tag == _FLOAT_TAG and implicit == _INT_TAG):
                    raise _YamlRefused.at(
                        event,
                        f"expected a value that is a YAML {short}, "
                        f"found {event.value!r} tagged {short}",
                    )
            digits = event.value.lstrip("+-")
            plain = event.style is None or tag == _INT_TAG
            if plain and implicit == _INT_TAG and len(digits) > MAX_YAML_DIGITS:
                raise _YamlRefused.at(
                    event,
                    f"expected a number of at most {MAX_YAML_DIGITS} "
                    f"digits, found one of {len(digits)}",
                )
            if event.anchor is not None:
                subtree[event.anchor] = 1
        else:
            assert isinstance(event, CollectionStartEvent)
            if tag is not None and tag not in _COLLECTION_TAGS:
                kind = "sequence" if isinstance(event, SequenceStartEvent) else "mapping"
                raise _YamlRefused.at(
                    event, f"expected a plain {kind}, found the tag {tag.replace(_CORE_TAG, '!!')}"
                )
            if len(open_sizes) >= max_depth:
                raise _YamlRefused.at(
                    event,
                    f"expected nesting at most {max_depth} levels deep "
                    "(--max-loop-depth raises it), found deeper",
                )
            open_sizes.append([event.anchor, 1])
            size = 0  # added to its parent when it ends, with its contents
        if size and open_sizes:
            open_sizes[-1][1] += size


def read_yaml(text: str, origin: str, max_loop_depth: int) -> Located:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    located = Located(None, {}, {})
    try:
        _screen_yaml(yaml, text, YAML_DEPTH_MARGIN + 3 * max_loop_depth)
        node = yaml.load(io.StringIO(text))
        if node is None:
            raise ScenarioError(
                [
                    f"{origin}:1:1: document: expected a mapping with name, "
                    "duration, machine and processes, found an empty document"
                ]
            )
        if isinstance(node, CommentedMap):
            located.values[()] = (node.lc.line + 1, node.lc.col + 1)
        located.data = _plain(node, (), located)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = " ".join(part for part in (error.problem, error.context) if part)
        problem = problem.removeprefix("found ")
        raise ScenarioError(
            [
                f"{origin}:{line}:{col}: document: expected valid YAML, "
                f"found {problem or 'a syntax error'}"
            ]
        ) from None
    except YAMLError as error:
        raise ScenarioError(
            [f"{origin}:1:1: document: expected valid YAML, found {error}"]
        ) from None
    except _YamlRefused as refused:  # from the screen or from `_plain`
        raise ScenarioError(
            [f"{origin}:{refused.line}:{refused.col}: document: {refused}"]
        ) from None
    if not isinstance(located.data, dict):
        raise ScenarioError(
            [
                f"{origin}:1:1: document: expected a mapping with name, duration, "
                f"machine and processes, found {describe(located.data)}"
            ]
        )
    return located


def yaml_path(data: Any, loc: Loc) -> tuple[Loc, Loc]:
    """(the part of a pydantic `loc` found in the YAML data, the path to show).

    Segments pydantic adds (union tags) are dropped; a key absent from a mapping (a missing
    or defaulted field) is still shown.
    """
    path: list[str | int] = []
    shown: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
            shown.append(part)
        elif isinstance(node, dict) and isinstance(part, str):
            shown.append(part)
            node = None
    return tuple(path), tuple(shown)


def format_path(path: Loc) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = printable(part, 40)
            text += f".{name}" if text else name
    return text or "document"


_KNOWN_KEYS = sorted(
    {
        field.alias or name
        for model in (
            Scenario,
            MachineSpec,
            ProcessSpec,
            EventSpec,
            Move,
            Nice,
            Kill,
            Loop,
            Run,
            Sleep,
            Timer,
            Alloc,
            Free,
            Exit,
            ThreadProgram,
            CondWait,
        )
        for name, field in model.model_fields.items()
    }
    | set(ACTIONS)
    | set(cgfiles.FILES)
    | {"loop", "timer"}
    | set(SYNC_STEPS)
    | set(CAPTURED_STEPS)
    | set(container.CONTAINER_KEYS)
)


def error_message(error: Any, known_keys: Sequence[str] | None = None) -> str:
    """pydantic's error → ``expected …, found …`` (unknown keys matched against `known_keys`,
    by default a scenario's)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    found = describe(value)
    if kind in ("scenario", "scenario_key"):
        return str(ctx["message"])
    if kind == "missing":
        return f"expected a value, found no {error['loc'][-1]!r} key"
    if kind == "extra_forbidden":
        key = error["loc"][-1]
        keys = _KNOWN_KEYS if known_keys is None else known_keys
        return f"expected a known key{did_you_mean(key, keys)}, found unknown key {quoted(key)}"
    if kind == "value_error":
        return f"expected {str(error['msg']).removeprefix('Value error, ')}, found {found}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx["expected"]))
        return f"expected {ctx['expected']}{did_you_mean(value, choices)}, found {found}"
    bounds = {
        "greater_than_equal": ("≥", "ge"),
        "less_than_equal": ("≤", "le"),
        "greater_than": (">", "gt"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        sign, key = bounds[kind]
        return f"expected a value {sign} {ctx[key]}, found {found}"
    if kind == "too_short":
        return f"expected at least {ctx['min_length']} item(s), found {found}"
    if kind == "string_pattern_mismatch":
        return f"expected a name of letters, digits and _ . : + - (no spaces or '/'), found {found}"
    expectations = {
        ("int_type", "int_parsing", "int_from_float"): "an integer",
        ("bool_type", "bool_parsing"): "true or false",
        ("string_type",): "a string",
        ("dict_type", "model_type", "model_attributes_type", "mapping_type"): "a mapping",
        ("list_type", "tuple_type"): "a list",
    }
    for kinds, expected in expectations.items():
        if kind in kinds:
            return f"expected {expected}, found {found}"
    return f"expected valid input ({error['msg']}), found {found}"


def position(located: Located, path: Loc, about_key: bool) -> tuple[int, int]:
    """Where `path` sits in the file: its key or its value, else its nearest ancestor's."""
    for depth in range(len(path), -1, -1):
        prefix = path[:depth]
        first, second = (
            (located.keys, located.values) if about_key else (located.values, located.keys)
        )
        position = first.get(prefix) or second.get(prefix)
        if position:
            return position
    return (1, 1)


def located_messages(
    error: ValidationError, located: Located, origin: str, known_keys: Sequence[str] | None = None
) -> list[str]:
    """pydantic's errors as ``file:line:col: field: expected …, found …``, in file order."""
    found: list[tuple[int, int, str]] = []
    for item in error.errors():
        if item["type"] == "too_short" and len(item.get("input") or ()) >= item["ctx"].get(
            "min_length", 0
        ):
            continue  # pydantic's echo of failed items, already reported one by one
        path, shown = yaml_path(located.data, item["loc"])
        about_key = item["type"] in ("missing", "extra_forbidden", "scenario_key")
        line, col = position(located, path, about_key)
        found.append(
            (
                line,
                col,
                f"{origin}:{line}:{col}: {format_path(shown)}: {error_message(item, known_keys)}",
            )
        )
    return [message for _, _, message in sorted(found, key=lambda item: item[:2])]


# ---- writing -------------------------------------------------------------------------------------
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
        (
            "cpu.max" if v2 else "cpu.cfs_period_us",
            config.period_ns != default.period_ns or (v2 and config.quota_ns is not None),
        ),
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
        return {
            "timer": period if step.mode == "absolute" else {"period": period, "mode": step.mode}
        }
    if isinstance(step, Alloc):
        return {"alloc": exact_size(step.bytes)}
    if isinstance(step, Free):
        return {"free": "all" if step.bytes is None else exact_size(step.bytes)}
    if isinstance(step, Exit):
        return {"exit": step.code}
    if isinstance(step, Loop):
        return {
            "loop": {
                "repeat": "forever" if step.repeat is None else step.repeat,
                "program": [step_data(inner) for inner in step.program],
            }
        }
    if isinstance(step, Runtime):
        return {"runtime": exact_duration(step.ns)}
    if isinstance(step, CondWait):
        return {"wait": {"cond": step.cond, "mutex": step.mutex}}
    if isinstance(step, Yield):
        return {"yield": None if step.count == 1 else step.count}
    if isinstance(step, SetCpus):
        return {"cpus": list(step.cpus)}
    if isinstance(step, SYNC_NAMED):  # the one-name steps: {lock: m}, {fork: p}, …
        return step.model_dump(by_alias=True)
    if isinstance(step, Draw):
        return {"draw": {step.kind: [exact_duration(value) for value in step.values_ns]}}
    if isinstance(step, Until):
        return {"until": exact_duration(step.ns)}
    if isinstance(step, PerThread):
        return {
            "per_thread": [
                {
                    **({"name": t.name} if t.name else {}),
                    **({"woken_by": dict(t.woken_by)} if t.woken_by else {}),
                    "program": [step_data(inner) for inner in t.program],
                }
                for t in step.threads
            ]
        }
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
    data["cgroups"] = {
        path: cgroup_files(config)
        for path, config in scenario.cgroups.items()
        if path != cgfiles.ROOT
    }
    data["processes"] = [process_data(process) for process in scenario.processes]
    if scenario.events:
        data["events"] = [event_data(event) for event in scenario.events]
    return data


# ---- YAML text -----------------------------------------------------------------------------------
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
