"""The real host inside the model: what an idealised machine lacks and a real one measures.

- **Tick skew and jitter.** Each CPU's tick is its own hrtimer (``tick_sched_timer``): on a real
  host one CPU's tick lands tens of µs before or after another's, and which goes first changes
  from tick to tick. Tick k of CPU c falls at ``phase + k·tick + offset[c] + jitter(c, k)``, the
  jitter drawn from the CPU's measured distribution at a hash of (seed, c, k) — deterministic
  per seed, and the same whichever order the simulation asks in (`TickGrid`).
- **Host noise.** kworkers, ksoftirqd, rcu and daemons preempt the workload: per CPU, short runs
  arriving as a Poisson process with lengths from a measured distribution (`HostNoise`),
  simulated as pinned nice-0 kernel-thread-like tasks outside the workload's cgroups.
- **Timer interrupts are late.** An hrtimer's handler runs after its expiry by the interrupt
  latency (``hrtimer_expire_entry``'s now − expiry: ~10 µs on the reference VM), and what a tick
  asks for — a context switch — happens later still, at the interrupt's exit (`tick_switch_ns`:
  a tick's switches land ~20 µs after the grid there). A sleep's timer fires inside a tick's
  interrupt when its slack range holds the tick's handler, else alone at its hard expiry plus
  the latency (`TickGrid.first_handler_in`, ``Machine.hrtimer_delay``): which of the two decides
  whether a run/sleep task joins a tick's pick or arrives tens of µs after it.
- **The cost of page faults.** First-touch faults (fault + zeroing) cost CPU time of the faulting
  thread: `HostModel.page_fault_ns` per 4 KiB page, charged as the allocation proceeds one memcg
  charge batch (``MEMCG_CHARGE_BATCH``, 64 pages) at a time, so the thread can be preempted and
  throttled mid-allocation.
- **The cost of writing to /dev/null.** rt-app's ``iorun`` is a loop of ``write(2)`` calls to
  /dev/null, whose ``write_null`` returns the count without touching the bytes: each call costs
  `HostModel.null_write_ns` of the writing thread's CPU time, whatever its size
  (docs/kernel-facts.md#devnull-write).

All figures are int ns; distributions are inverse CDFs (u in [0, 1] → ns). The default `HostModel`
is the idealised machine (no skew, no noise, free faults); a machine profile
(`cfssim.profile.MachineProfile.host_model`, measured by `cfssim calibrate`) gives a real host's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeVar

#: a distribution as its inverse CDF: cumulative probability u in [0, 1] → ns
InverseCdf = Callable[[float], int]

_MASK64 = (1 << 64) - 1
_TICK_LATENCY_STREAM = 0x7A3E  # the tick latency draws' own key: splitmix64(seed key ^ this)
_T = TypeVar("_T")


def splitmix64(x: int) -> int:
    """One step of the SplitMix64 generator: a well-mixed 64-bit hash of `x`."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def uniform(low_ns: int, high_ns: int) -> InverseCdf:
    """Uniform between `low_ns` and `high_ns`."""
    return lambda u: low_ns + round((high_ns - low_ns) * u)


def lognormal(median_ns: int, sigma: float) -> InverseCdf:
    """Log-normal with median `median_ns` and σ `sigma` of its logarithm (0: always the median)."""
    if median_ns <= 0 or not 0 <= sigma <= 5:
        raise ValueError(f"expected a median > 0 ns and a sigma in 0..5: {median_ns}, {sigma}")
    normal = NormalDist(math.log(median_ns), sigma) if sigma else None

    def at(u: float) -> int:
        if normal is None:
            return median_ns
        return max(1, round(math.exp(normal.inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))))

    return at


def quantile_at(points: Sequence[tuple[float, int]], u: float) -> int:
    """The inverse CDF through empirical quantiles: `points` are (cumulative probability,
    value ns) pairs in increasing order; linear between them, flat beyond the ends."""
    if u <= points[0][0]:
        return points[0][1]
    for (u0, v0), (u1, v1) in itertools.pairwise(points):
        if u <= u1:
            return v0 + round((v1 - v0) * (u - u0) / (u1 - u0)) if u1 > u0 else v1
    return points[-1][1]


@dataclass(frozen=True)
class HostNoise:
    """Background activity on one CPU: runs arriving at `rate_per_s` (Poisson), each lasting a
    draw from `run_ns`."""

    rate_per_s: float
    run_ns: InverseCdf

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0 or not math.isfinite(self.rate_per_s):
            raise ValueError(f"host noise: expected a rate > 0 per s, found {self.rate_per_s}")


@dataclass(frozen=True)
class HostModel:
    """What the simulated host adds to the scheduler's rules (the default: an ideal machine).

    Per CPU (lists shorter than the machine are reused cyclically, empty ones mean none):
    `tick_offset_ns`, the CPU's mean tick offset from the grid; `tick_jitter`, each tick's
    further offset; `noise`, its background activity. `page_fault_ns` is the CPU cost of
    faulting in one 4 KiB page; `null_write_ns`, of one ``write(2)`` to /dev/null. `source`
    names where the figures come from (a profile)."""

    tick_offset_ns: Sequence[int] = ()
    tick_jitter: Sequence[InverseCdf | None] = ()
    noise: Sequence[HostNoise | None] = ()
    page_fault_ns: int = 0
    null_write_ns: int = 0
    #: hrtimer expiry → its handler (the timer interrupt's latency): each tick's (one draw per
    #: tick, which every CPU's tick k shares; their skew and jitter come on top) and each
    #: sleep timer's that fires alone
    timer_latency: InverseCdf | None = None
    #: a tick's handler → the context switch it asks for (at the interrupt's exit), ns
    tick_switch_ns: int = 0
    source: str = "ideal"

    @property
    def ideal(self) -> bool:
        """No skew, no jitter, no late timers, no noise, free faults and writes."""
        return not (
            any(self.tick_offset_ns)
            or any(self.tick_jitter)
            or self.timer_latency is not None
            or self.tick_switch_ns
            or any(self.noise)
            or self.page_fault_ns
            or self.null_write_ns
        )

    def describe(self, ncpus: int) -> dict[str, Any]:
        """What the run's host was, per CPU, in figures a report can show (ns)."""
        cpus = []
        for cpu in range(ncpus):
            jitter = self.of_cpu(self.tick_jitter, cpu, None)
            noise = self.of_cpu(self.noise, cpu, None)
            cpus.append(
                {
                    "cpu": cpu,
                    "tick_offset_ns": self.of_cpu(self.tick_offset_ns, cpu, 0),
                    "tick_jitter_p5_p95_ns": None
                    if jitter is None
                    else [jitter(0.05), jitter(0.95)],
                    "noise_rate_per_s": None if noise is None else noise.rate_per_s,
                    "noise_run_p50_ns": None if noise is None else noise.run_ns(0.5),
                }
            )
        latency = self.timer_latency
        return {
            "source": self.source,
            "timer_latency_p50_ns": None if latency is None else latency(0.5),
            "tick_switch_ns": self.tick_switch_ns,
            "page_fault_ns": self.page_fault_ns,
            "null_write_ns": self.null_write_ns,
            "cpus": cpus,
        }

    @staticmethod
    def of_cpu(values: Sequence[_T], cpu: int, default: _T) -> _T:
        """The entry of `cpu` in a per-CPU list (reused cyclically), or `default`."""
        return values[cpu % len(values)] if values else default


def draw_at(dist: InverseCdf, key: int) -> int:
    """A draw from `dist` at a hash of `key` (u = splitmix64(key) / 2⁶⁴): the same key, the
    same draw, in whatever order a simulation asks."""
    return dist(splitmix64(key) / 2**64)


class Draws:
    """Deterministic draws from one distribution: the n-th at a hash of (seed, `stream`, n),
    so a run is a function of its seed whatever else draws."""

    __slots__ = ("count", "dist", "key")

    def __init__(self, dist: InverseCdf, seed: int, stream: int) -> None:
        self.dist = dist
        self.key = splitmix64(splitmix64(seed & _MASK64) ^ stream)
        self.count = 0

    def next(self) -> int:
        self.count += 1
        return draw_at(self.dist, self.key ^ self.count)


class TickGrid:
    """When each CPU's scheduler tick takes effect (int ns): ``phase + k·tick + offset[cpu] +
    jitter + latency + switch``, the jitter drawn from the CPU's distribution at a hash of
    (seed, cpu, k), the interrupt latency at a hash of (seed, k) (`HostModel.timer_latency`),
    the switch the handler's time (`HostModel.tick_switch_ns`).

    With neither offsets, jitter, latency nor switch time every CPU ticks at once on the grid
    (the ideal machine)."""

    __slots__ = (
        "jitter",
        "key",
        "latency",
        "latency_key",
        "offset",
        "skew",
        "switch",
        "tick",
        "uniform",
    )

    def __init__(self, tick_ns: int, offset_ns: int, ncpus: int, host: HostModel, seed: int):
        self.tick = tick_ns
        self.offset = offset_ns
        self.skew = [host.of_cpu(host.tick_offset_ns, cpu, 0) for cpu in range(ncpus)]
        self.jitter = [host.of_cpu(host.tick_jitter, cpu, None) for cpu in range(ncpus)]
        self.latency = host.timer_latency
        self.switch = host.tick_switch_ns  # handler → switch: tick times are the switches'
        self.uniform = (
            not any(self.skew) and not any(self.jitter) and self.latency is None and not self.switch
        )
        self.key = splitmix64(seed & _MASK64)
        self.latency_key = splitmix64(self.key ^ _TICK_LATENCY_STREAM)
        late = (self.latency(1.0) if self.latency is not None else 0) + self.switch
        for cpu in range(ncpus):
            jitter = self.jitter[cpu]
            extremes = (jitter(0.0), jitter(1.0)) if jitter is not None else (0, 0)
            if max(abs(self.skew[cpu] + e) for e in extremes) + late >= tick_ns // 2:
                raise ValueError(
                    f"tick skew of CPU {cpu}: expected offset + jitter + timer latency + "
                    f"tick switch within half a tick ({tick_ns // 2} ns), found "
                    f"{self.skew[cpu]} ns + {extremes[0]}…{extremes[1]} ns + {late} ns"
                )

    def tick_time(self, cpu: int, k: int) -> int:
        """When the switches tick number `k` of `cpu` asks for happen: its grid instant, the
        CPU's skew and jitter, the tick interrupt's latency (one draw per k, shared by the
        CPUs) and the handler's own time."""
        when = self.offset + k * self.tick + self.skew[cpu] + self.switch
        latency = self.latency
        if latency is not None:
            when += draw_at(latency, self.latency_key ^ (k & _MASK64))
        jitter = self.jitter[cpu]
        if jitter is None:
            return when
        return when + draw_at(jitter, self.key ^ ((cpu & 0xFFFF) << 48) ^ (k & 0xFFFF_FFFF_FFFF))

    def first_handler_in(self, cpu: int, low: int, high: int) -> int | None:
        """The tick of `cpu` whose interrupt handler runs within [`low`, `high`] (the slack
        range of a sleep's timer, which then expires in that interrupt), as the instant of
        its switches; None if none does."""
        when = self.at_or_after(cpu, low + self.switch)
        return when if when - self.switch <= high else None

    def at_or_after(self, cpu: int, t: int) -> int:
        """The first tick of `cpu` at or after `t`."""
        if self.uniform:  # ⌈(t − offset) / tick⌉·tick + offset
            return t + (self.offset - t) % self.tick
        tick, offset = self.tick, self.offset
        # tick k lies within half a tick of the grid point k: k − 1 … k + 1 cover t
        k = -(-(t - offset) // tick)
        for candidate in (k - 1, k, k + 1):
            when = self.tick_time(cpu, candidate)
            if when >= t:
                return when
        return self.tick_time(cpu, k + 2)

    def is_tick(self, cpu: int, t: int) -> bool:
        """Does a tick of `cpu` fire at `t`?"""
        if self.uniform:
            return (t - self.offset) % self.tick == 0
        k = (t - self.offset + self.tick // 2) // self.tick  # the grid point nearest t
        return any(self.tick_time(cpu, c) == t for c in (k - 1, k, k + 1))


#: the process name of CPU n's background noise (``host-noise-cpu0``…)
NOISE_PROCESS = "host-noise-cpu{cpu}"


def is_noise_process(name: str) -> bool:
    """Is `name` a simulated host's background-noise process?"""
    return name.startswith("host-noise-cpu") and name[len("host-noise-cpu") :].isdigit()


def noise_behaviour(noise: HostNoise) -> Any:
    """The behaviour of one CPU's background activity: sleep an exponential interarrival time,
    run a draw from the run-length distribution, forever — from the task's own seeded
    generator."""

    def behaviour(task: Any) -> Generator[Any, Any, None]:
        rng = task.random
        mean_gap_ns = 1e9 / noise.rate_per_s
        while True:
            yield task.sleep(max(1, int(rng.exponential(mean_gap_ns))))
            yield task.run(max(1, noise.run_ns(rng.random())))

    return behaviour
