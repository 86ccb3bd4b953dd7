"""Machine profiles: what a real host adds to the scheduler's rules (``cfssim calibrate``).

A profile is a YAML file (`load_profile`, `dump_profile`) validated into a frozen
`MachineProfile`: the host's HZ and tick grid phase, each CPU's tick skew against CPU 0 (mean
``offset`` and zero-centred ``jitter``), whether a used-up slice ends at the next tick or
precisely, the base slice, timer slack, the CPU cost of a first-touch page fault (fault + zeroing,
per 4 KiB page) and of one ``write(2)`` to /dev/null (rt-app's ``iorun``), background noise per
CPU (arrival rate and run-length distribution), the CFS bandwidth slice, RT throttling, and where
and when it was measured. All times are int ns inside;
the YAML takes durations (``49us``) or ints of the unit a key's name says (``base_slice_ns``).

Distributions (`Distribution`) are either empirical quantiles, ``{quantiles: {p5: -49us, p50:
-10us, p95: 23us}}`` (linear between the points, flat beyond them), or ``{lognormal: {mu: 9.2,
sigma: 1.1}}`` (of the value in ns). A simulator draws from one with its own seeded generator,
``dist.sample(rng)``, so a run stays a pure function of scenario and seed.

Per-CPU entries list CPUs 0…n−1 in order; a simulated machine with more CPUs than the profile
reuses them cyclically (`MachineProfile.tick_for`, `noise_for`). `default_profile()` is the
development host's, measured (docs/host-profile.md). The profile is independent of the scenario
model; a scenario names one with ``machine: {profile: host.yaml}``.

Errors are `ProfileError` (a `ScenarioError`): ``file:line:col: field: expected …, found …``.
"""

from __future__ import annotations

import math
import random
import re
from datetime import datetime
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ._errors import describe
from .host import HostModel, HostNoise, quantile_at
from .scenario.errors import ScenarioError, fail, issue
from .scenario.model import PhaseNs, RtRuntimeTunable, UsTunable
from .scenario.values import SignedDuration
from .scenario.yaml_io import (
    dump_data,
    exact_duration,
    located_messages,
    read_yaml,
)
from .units import NSEC_PER_SEC

Hz = Literal[100, 250, 300, 1000]
SliceEnds = Literal["tick", "precise"]
DEFAULT_PROFILE = Path(__file__).resolve().parent / "_profiles" / "default.yaml"
#: `read_yaml`'s words for a document that is not a mapping (they name a scenario's keys)
_SCENARIO_DOCUMENT = "a mapping with name, duration, machine and processes"
_PROFILE_DOCUMENT = "a machine profile mapping (as cfssim calibrate writes it)"
_QUANTILE_KEY = re.compile(r"^p(\d{1,3}(\.\d+)?)$")


class ProfileError(ScenarioError):
    """Invalid profile; ``messages``: ``file:line:col: field: expected …, found …`` each."""


# ---- value types ------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )


class Lognormal(_Model):
    """ln(value in ns) ~ Normal(`mu`, `sigma`)."""

    mu: float = Field(ge=-50, le=50)
    sigma: float = Field(ge=0, le=20)


def quantile_fraction(key: str) -> float:
    """``"p5"`` → 0.05, ``"p99.9"`` → 0.999; ValueError for anything else."""
    match = _QUANTILE_KEY.match(key)
    if match is None or float(match.group(1)) > 100:
        raise ValueError(key)
    return float(match.group(1)) / 100


class Distribution(_Model):
    """A distribution of ns values: empirical `quantiles` (``{"p5": ns, …}``) or `lognormal`."""

    quantiles: dict[str, SignedDuration] | None = None
    lognormal: Lognormal | None = None

    @field_validator("quantiles")
    @classmethod
    def _ordered_quantiles(cls, points: dict[str, int] | None) -> dict[str, int] | None:
        if points is None:
            return None
        if not points:
            raise fail("expected at least one point such as p50: 10us, found none")
        located: list[tuple[float, str, int]] = []
        for key, value in points.items():
            try:
                located.append((quantile_fraction(key), key, value))
            except ValueError:
                raise fail(
                    f"expected quantile keys p0 … p100 (p5, p50, p99.9), found {describe(key)}"
                ) from None
        located.sort()
        for (_, low_key, low), (_, high_key, high) in pairwise(located):
            if high < low:
                raise fail(
                    f"expected values that grow with the quantile, found {high_key} "
                    f"({high} ns) below {low_key} ({low} ns)"
                )
        return {key: value for _, key, value in located}

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Distribution:
        if (self.quantiles is None) == (self.lognormal is None):
            raise ValueError("exactly one of quantiles or lognormal")
        return self

    @property
    def points(self) -> list[tuple[float, int]]:
        """The empirical quantiles as sorted (fraction, ns) pairs (empty for a lognormal)."""
        return [(quantile_fraction(k), v) for k, v in (self.quantiles or {}).items()]

    def quantile(self, u: float) -> int:
        """The value (ns) at cumulative probability `u` in [0, 1] (the inverse CDF)."""
        u = min(max(u, 0.0), 1.0)
        if self.lognormal is not None:
            z = NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))
            return round(math.exp(self.lognormal.mu + self.lognormal.sigma * z))
        return quantile_at(self.points, u)

    def sample(self, rng: random.Random) -> int:
        """One draw (ns) with the caller's seeded generator: deterministic per seed."""
        return self.quantile(rng.random())

    @classmethod
    def of_quantiles(cls, values: dict[float, int]) -> Distribution:
        """From {fraction: ns}; keys written ``p5``, ``p99.9``."""
        return cls(quantiles={f"p{100 * q:g}": v for q, v in sorted(values.items())})


def _missing_kind(value: Any) -> Any:
    """A mapping with neither kind gets a located message instead of a bare model error."""
    if isinstance(value, dict) and not ({"quantiles", "lognormal"} & set(value)):
        raise fail(
            "expected {quantiles: {p5: …, p95: …}} or {lognormal: {mu: …, sigma: …}}, "
            f"found {describe(value)}"
        )
    if isinstance(value, dict) and {"quantiles", "lognormal"} <= set(value):
        raise fail("expected one of quantiles or lognormal, found both")
    return value


Dist = Annotated[Distribution, BeforeValidator(_missing_kind)]


# ---- the profile ------------------------------------------------------------------------------
class TickCpu(_Model):
    """One CPU's tick against CPU 0's: ``now_cpu − now_cpu0`` for the same tick is
    `offset_ns` (its mean) plus a draw from `jitter`; `delay` is how long after the tick grid
    instant the tick handler ran (``hrtimer_expire_entry``'s ``now`` − expiry), when measured."""

    cpu: int = Field(ge=0)
    offset_ns: SignedDuration = Field(alias="offset")
    jitter: Dist
    delay: Dist | None = None


class TickSpec(_Model):
    """The tick grid: ticks fall at `phase_ns` + k / hz on CLOCK_MONOTONIC (of the measured
    boot), each CPU's shifted by its skew."""

    phase_ns: PhaseNs = Field(default=0, alias="phase")
    cpus: tuple[TickCpu, ...] = Field(min_length=1)


class NoiseCpu(_Model):
    """Background activity on one CPU: runs of foreign tasks arriving at `rate_per_s` (a
    Poisson rate) lasting a draw from `run_length` each."""

    cpu: int = Field(ge=0)
    rate_per_s: float = Field(ge=0, le=1_000_000)
    run_length: Dist
    share: float | None = Field(default=None, ge=0, le=1)  # of the CPU's time, as measured

    @model_validator(mode="after")
    def _positive_runs(self) -> NoiseCpu:
        shortest = self.run_length.quantile(0.0)
        if shortest < 0:
            raise ValidationError.from_exception_data(
                "NoiseCpu",
                [
                    issue(
                        ("run_length",),
                        f"expected run lengths ≥ 0, found one of {shortest} ns",
                        shortest,
                    )
                ],
            )
        return self


class NoiseSpec(_Model):
    """Host noise per CPU, measured over `window_ns` with every CPU busy with a hog."""

    window_ns: PhaseNs = Field(default=0, alias="window")
    cpus: tuple[NoiseCpu, ...] = Field(min_length=1)


class MachineProfile(_Model):
    """A measured host (see the module docstring); kernel-named keys in their unit."""

    host: str = ""
    kernel: str = ""
    date: str = ""  # ISO 8601 time of the measurement
    loadavg: float | None = Field(default=None, ge=0)  # 1-minute load average when measured
    cpus: int = Field(ge=1, le=1024)
    hz: Hz = 250
    slice_ends: SliceEnds = "tick"
    base_slice_ns: PhaseNs
    timer_slack_ns: PhaseNs = 50_000
    page_fault_ns_per_page: PhaseNs = 0
    null_write_ns_per_call: PhaseNs = 0
    tick_switch_ns: PhaseNs = 0  # a tick's handler → the context switch it asks for
    sched_cfs_bandwidth_slice_us: UsTunable = None
    sched_rt_runtime_us: RtRuntimeTunable = None
    sched_rt_period_us: UsTunable = None
    tick: TickSpec | None = None
    noise: NoiseSpec | None = None

    @field_validator("date")
    @classmethod
    def _iso_date(cls, date: str) -> str:
        if date:
            try:
                datetime.fromisoformat(date)
            except ValueError:
                raise fail(
                    f"expected an ISO 8601 time such as 2026-11-28T03:40:00+00:00, "
                    f"found {describe(date)}"
                ) from None
        return date

    @model_validator(mode="after")
    def _consistent(self) -> MachineProfile:
        tick_ns = NSEC_PER_SEC // self.hz
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        if self.tick is not None:
            if self.tick.phase_ns >= tick_ns:
                problems.append(
                    (
                        ("tick", "phase"),
                        f"expected a phase below one tick "
                        f"({tick_ns} ns at hz {self.hz}), found {self.tick.phase_ns}",
                        self.tick.phase_ns,
                    )
                )
            problems += _cpu_order(("tick", "cpus"), [c.cpu for c in self.tick.cpus], self.cpus)
            if self.tick.cpus[0].offset_ns != 0:
                problems.append(
                    (
                        ("tick", "cpus", 0, "offset"),
                        f"expected 0 (CPU 0 is the reference), found {self.tick.cpus[0].offset_ns}",
                        self.tick.cpus[0].offset_ns,
                    )
                )
        if self.noise is not None:
            problems += _cpu_order(("noise", "cpus"), [c.cpu for c in self.noise.cpus], self.cpus)
        period = self.sched_rt_period_us or 1_000_000
        if self.sched_rt_runtime_us is not None and self.sched_rt_runtime_us > period:
            problems.append(
                (
                    ("sched_rt_runtime_us",),
                    f"expected at most sched_rt_period_us "
                    f"({period} µs) or -1, found {self.sched_rt_runtime_us}",
                    self.sched_rt_runtime_us,
                )
            )
        if problems:
            raise ValidationError.from_exception_data(
                "MachineProfile", [issue(loc, message, value) for loc, message, value in problems]
            )
        return self

    @property
    def tick_ns(self) -> int:
        return NSEC_PER_SEC // self.hz

    def tick_for(self, cpu: int) -> TickCpu | None:
        """CPU `cpu`'s tick skew (entries reused cyclically beyond the profile's CPUs)."""
        return None if self.tick is None else HostModel.of_cpu(self.tick.cpus, cpu, None)

    def noise_for(self, cpu: int) -> NoiseCpu | None:
        """CPU `cpu`'s background noise (entries reused cyclically), None when not measured."""
        return None if self.noise is None else HostModel.of_cpu(self.noise.cpus, cpu, None)

    def host_model(self, source: str = "profile") -> HostModel:
        """The simulator's view of this host: tick offsets and jitter, background noise per
        CPU, the page-fault cost."""
        ticks = self.tick.cpus if self.tick is not None else ()
        noise = self.noise.cpus if self.noise is not None else ()
        # CPU 0's tick delay is the timer interrupt's latency; the other CPUs' offsets and
        # jitter were measured against CPU 0's ticks, so they come on top of it
        delay = ticks[0].delay if ticks else None
        return HostModel(
            tick_offset_ns=tuple(t.offset_ns for t in ticks),
            tick_jitter=tuple(t.jitter.quantile for t in ticks),
            noise=tuple(
                HostNoise(n.rate_per_s, n.run_length.quantile) if n.rate_per_s else None
                for n in noise
            ),
            page_fault_ns=self.page_fault_ns_per_page or 0,
            null_write_ns=self.null_write_ns_per_call or 0,
            timer_latency=delay.quantile if delay is not None else None,
            tick_switch_ns=self.tick_switch_ns,
            source=source,
        )

    def machine_settings(self) -> dict[str, Any]:
        """The scenario ``machine`` keys this profile decides (kernel names, their units);
        a scenario's own values take precedence over these."""
        settings: dict[str, Any] = {
            "hz": self.hz,
            "slice_ends": self.slice_ends,
            "sched_base_slice_ns": self.base_slice_ns,
            "timer_slack_ns": self.timer_slack_ns,
        }
        for name in ("sched_cfs_bandwidth_slice_us", "sched_rt_runtime_us", "sched_rt_period_us"):
            if getattr(self, name) is not None:
                settings[name] = getattr(self, name)
        return settings


def _cpu_order(
    where: tuple[str, ...], cpus: list[int], count: int
) -> list[tuple[tuple[str | int, ...], str, Any]]:
    """Per-CPU entries must list CPUs 0, 1, … in order, at most `count` of them."""
    problems: list[tuple[tuple[str | int, ...], str, Any]] = []
    for index, cpu in enumerate(cpus):
        if cpu != index or cpu >= count:
            expected = f"cpu {index}" if index < count else f"at most {count} entries (cpus)"
            problems.append(
                (
                    (*where, index, "cpu"),
                    f"expected {expected} (entries list CPUs 0, 1, … in order), found {cpu}",
                    cpu,
                )
            )
            break
    return problems


# ---- YAML -------------------------------------------------------------------------------------
_MODELS: tuple[type[BaseModel], ...] = (
    MachineProfile,
    TickSpec,
    TickCpu,
    NoiseSpec,
    NoiseCpu,
    Distribution,
    Lognormal,
)
_KEYS = sorted(
    {field.alias or name for model in _MODELS for name, field in model.model_fields.items()}
)


def parse_profile(text: str, origin: str = "<string>") -> MachineProfile:
    """A validated `MachineProfile` from YAML text; raises `ProfileError`."""
    try:
        located = read_yaml(text, origin, max_loop_depth=1)
    except ScenarioError as error:
        raise ProfileError(
            [m.replace(_SCENARIO_DOCUMENT, _PROFILE_DOCUMENT) for m in error.messages]
        ) from None
    try:
        return MachineProfile.model_validate(located.data)
    except ValidationError as error:
        raise ProfileError(located_messages(error, located, origin, _KEYS)) from None


def load_profile(path: str | Path) -> MachineProfile:
    """A validated `MachineProfile` from a YAML file; raises `ProfileError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(
            [f"{path}:1:1: document: expected a readable UTF-8 YAML machine profile, found {error}"]
        ) from None
    return parse_profile(text, str(path))


@lru_cache(maxsize=1)
def default_profile() -> MachineProfile:
    """The development host's measured profile (``cfssim/_profiles/default.yaml``)."""
    return load_profile(DEFAULT_PROFILE)


def resolve_profile(name: str | Path, relative_to: str | Path | None = None) -> MachineProfile:
    """The profile a scenario names (``machine: {profile: NAME}``): ``default`` is
    `default_profile`, anything else a YAML path, relative to the directory of the file
    `relative_to` (the scenario's) when it is not absolute. Raises `ProfileError`."""
    if str(name) == "default":
        return default_profile()
    path = Path(name)
    if not path.is_absolute() and relative_to is not None:
        path = Path(relative_to).parent / path
    return load_profile(path)


def _durations(node: Any, key: str = "") -> Any:
    """Plain profile data with ns values written as exact durations (``-49us``) except under
    keys that name their unit (``…_ns``, ``…_us``, ``…_per_page``, ``…_per_call``)."""
    if isinstance(node, dict):
        return {k: _durations(v, k) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_durations(v, key) for v in node]
    if type(node) is int and node and key not in _UNIT_FREE and not key.endswith(_UNIT_SUFFIXES):
        return exact_duration(node) if node > 0 else "-" + exact_duration(-node)
    return node


_UNIT_SUFFIXES = ("_ns", "_us", "_per_page", "_per_call")
_UNIT_FREE = {"cpu", "cpus", "hz"}


def profile_data(profile: MachineProfile) -> dict[str, Any]:
    """The YAML-shaped plain mapping of `profile` (what `parse_profile` reads back)."""
    data = profile.model_dump(by_alias=True, exclude_none=True)
    return dict(_durations(data))


def dump_profile(profile: MachineProfile, header: tuple[str, ...] = ()) -> str:
    """`profile` as YAML text (``parse_profile(dump_profile(p)) == p``), `header` as comments."""
    return dump_data(profile_data(profile), header)
