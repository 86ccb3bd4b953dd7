"""The value types of scenario fields: durations (int ns), sizes (int bytes), repeat counts, CPU
lists and cgroup paths, each parsed from YAML's spellings (``100ms``, ``4MiB``, ``forever``,
``0-1,3``) with an ``expected …, found …`` error, and each with its JSON Schema; and
`FrozenModel`, the base of every scenario model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator, WithJsonSchema

from .._errors import describe
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupFileError
from ..units import parse_duration, parse_size
from .errors import fail

DURATION_PATTERN = r"^[+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$"
_SIZE_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?\s*$"
DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "integer", "minimum": 0}],
    "description": "a duration such as '100ms', '1.5s', '1m30s', or an integer of nanoseconds",
}
SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": _SIZE_PATTERN}, {"type": "integer", "minimum": 1}],
    "description": "a size such as '4MiB', '100MB' or an integer of bytes",
}
FOREVER_SCHEMA = {"const": "forever"}
CGROUP_PATH_PATTERN = r"^/([^/\s]+(/[^/\s]+)*)?$"
CPUS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        {"type": "string", "pattern": r"^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$"},
        {"type": "integer", "minimum": 0},
    ],
    "description": "CPUs as a list [0, 1] or a cpulist string '0-1,3'",
}


def as_duration(value: Any) -> int:
    """A non-negative duration → int ns (ints are ns)."""
    try:
        value_ns = parse_duration(value)
    except (ValueError, TypeError):
        raise fail(
            f"expected a duration such as '100ms' or '1.5s' (units ns, us, ms, s, m, "
            f"h), found {describe(value)}"
        ) from None
    if value_ns < 0:
        raise fail(f"expected a non-negative duration, found {describe(value)}")
    return value_ns


def as_signed_duration(value: Any) -> int:
    """A duration that may be negative (``-49us``; ints are ns) → int ns."""
    try:
        return parse_duration(value)
    except (ValueError, TypeError):
        raise fail(
            f"expected a duration such as '-49us' or '1.5ms' (ints are ns), found {describe(value)}"
        ) from None


def _duration_or_forever(value: Any) -> int | None:
    return None if value is None or value == "forever" else as_duration(value)


def as_size(value: Any) -> int:
    """A positive size → int bytes (ints are bytes)."""
    try:
        size = parse_size(value)
    except (ValueError, TypeError):
        raise fail(
            f"expected a size such as '4MiB', '100MB' or 4096 (bytes), found {describe(value)}"
        ) from None
    if size <= 0:
        raise fail(f"expected a positive size, found {describe(value)}")
    return size


def _size_or_all(value: Any) -> int | None:
    return None if value is None or value == "all" else as_size(value)


def _repeat(value: Any) -> int | None:
    """A repeat count ≥ 1, or ``"forever"`` → None. An empty value (``repeat:`` or ``null``) is
    refused, not read as forever: running forever is said in words."""
    if value == "forever":
        return None
    if type(value) is not int or value < 1:
        raise fail(f"expected a count ≥ 1 or 'forever', found {describe(value)}")
    return value


def _cpu_tuple(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(sorted(cgfiles.parse_cpulist("cpus", value)))
    except CgroupFileError as error:
        raise fail(f"expected {error.expected}, found {error.found}") from None


def _cgroup_path(value: Any) -> str:
    try:
        return cgfiles.check_path(value)
    except ValueError as error:
        raise fail(str(error)) from None


Duration = Annotated[int, BeforeValidator(as_duration), WithJsonSchema(DURATION_SCHEMA)]
SignedDuration = Annotated[
    int, BeforeValidator(as_signed_duration), WithJsonSchema({"type": ["integer", "string"]})
]
DurationOrForever = Annotated[
    int | None,
    BeforeValidator(_duration_or_forever),
    WithJsonSchema({"anyOf": [DURATION_SCHEMA, FOREVER_SCHEMA]}),
]
Size = Annotated[int, BeforeValidator(as_size), WithJsonSchema(SIZE_SCHEMA)]
SizeOrAll = Annotated[
    int | None,
    BeforeValidator(_size_or_all),
    WithJsonSchema({"anyOf": [SIZE_SCHEMA, {"const": "all"}]}),
]
Repeat = Annotated[
    int | None,
    PlainValidator(_repeat),  # the whole validation: None is refused, not passed through
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, FOREVER_SCHEMA]}),
]
CpuList = Annotated[
    tuple[int, ...] | None, BeforeValidator(_cpu_tuple), WithJsonSchema(CPUS_SCHEMA)
]
CgroupPath = Annotated[
    str,
    BeforeValidator(_cgroup_path),
    WithJsonSchema({"type": "string", "pattern": CGROUP_PATH_PATTERN}),
]


class FrozenModel(BaseModel):
    """Frozen, unknown keys rejected; YAML names are aliases, Python names also accepted."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )
