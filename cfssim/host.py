"""The real host inside the model: what an idealised machine lacks and a real one measures.

- **Tick skew and jitter.** Each CPU's tick is its own hrtimer (``tick_sched_timer``): on a real
  host one CPU's tick lands tens of µs before or after another's, and which goes first changes
  from tick to tick. Tick k of CPU c falls at ``offset + k·tick + skew[c] + jitter(c, k)``, the
  jitter uniform in [−jitter_ns, +jitter_ns], drawn from a hash of (seed, c, k) — deterministic
  per seed, and the same whichever order the simulation asks in (`TickGrid`).
- **Host noise.** kworkers, ksoftirqd, rcu and daemons preempt the workload: per CPU, short runs
  arriving as a Poisson process with log-normally distributed lengths (`HostNoise`), simulated as
  pinned nice-0 kernel-thread-like tasks outside the workload's cgroups.
- **The cost of page faults.** First-touch faults (fault + zeroing) cost CPU time of the faulting
  thread: `HostModel.page_fault_ns` per 4 KiB page, charged as the allocation proceeds one memcg
  charge batch (``MEMCG_CHARGE_BATCH``, 64 pages) at a time, so the thread can be preempted and
  throttled mid-allocation.

All figures are int ns. The default `HostModel` is the idealised machine (no skew, no noise, free
faults); a calibrated profile (`cfssim calibrate`) gives a real host's figures.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

_MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One step of the SplitMix64 generator: a well-mixed 64-bit hash of `x`."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@dataclass(frozen=True)
class HostNoise:
    """Background activity on every CPU: runs arriving at `rate_per_s` (Poisson), each lasting
    a log-normal time with median `run_median_ns` and shape `run_sigma` (σ of its logarithm)."""

    rate_per_s: float
    run_median_ns: int
    run_sigma: float = 0.0

    def __post_init__(self) -> None:
        if not self.rate_per_s > 0 or not math.isfinite(self.rate_per_s):
            raise ValueError(f"host noise: expected a rate > 0 per s, found {self.rate_per_s}")
        if self.run_median_ns <= 0:
            raise ValueError(
                f"host noise: expected a run length > 0 ns, found {self.run_median_ns}"
            )
        if not 0 <= self.run_sigma <= 5:
            raise ValueError(f"host noise: expected a sigma in 0..5, found {self.run_sigma}")


@dataclass(frozen=True)
class HostModel:
    """What the simulated host adds to the scheduler's rules (the default: an ideal machine).

    `tick_skew_ns[c]` is CPU c's mean tick offset (CPUs beyond the list: 0); `tick_jitter_ns`
    the half-width of each tick's uniform jitter; `noise` the background activity per CPU;
    `page_fault_ns` the CPU cost of faulting in one 4 KiB page."""

    tick_skew_ns: tuple[int, ...] = ()
    tick_jitter_ns: int = 0
    noise: HostNoise | None = None
    page_fault_ns: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ideal(self) -> bool:
        return self == HostModel()


class TickGrid:
    """When each CPU's scheduler tick fires (int ns): ``offset + k·tick + skew[cpu] + jitter``.

    With neither skew nor jitter every CPU ticks at once on the grid (the ideal machine)."""

    __slots__ = ("jitter", "key", "offset", "skew", "tick", "uniform")

    def __init__(self, tick_ns: int, offset_ns: int, ncpus: int, host: HostModel, seed: int):
        jitter = host.tick_jitter_ns
        skew = list(host.tick_skew_ns[:ncpus]) + [0] * max(0, ncpus - len(host.tick_skew_ns))
        if jitter < 0:
            raise ValueError(f"tick jitter: expected ≥ 0 ns, found {jitter}")
        if any(abs(s) + jitter >= tick_ns // 2 for s in skew):
            raise ValueError(
                f"tick skew: expected |skew| + jitter below half a tick ({tick_ns // 2} ns), "
                f"found skew {skew} ns and jitter {jitter} ns"
            )
        self.tick = tick_ns
        self.offset = offset_ns
        self.skew = skew
        self.jitter = jitter
        self.uniform = jitter == 0 and not any(skew)
        self.key = splitmix64(seed & _MASK64)

    def _jitter(self, cpu: int, k: int) -> int:
        if not self.jitter:
            return 0
        h = splitmix64(self.key ^ ((cpu & 0xFFFF) << 48) ^ (k & 0xFFFF_FFFF_FFFF))
        return h % (2 * self.jitter + 1) - self.jitter

    def tick_time(self, cpu: int, k: int) -> int:
        """When tick number `k` of `cpu` fires."""
        return self.offset + k * self.tick + self.skew[cpu] + self._jitter(cpu, k)

    def at_or_after(self, cpu: int, t: int) -> int:
        """The first tick of `cpu` at or after `t`."""
        tick, offset = self.tick, self.offset
        if self.uniform:
            return -(-(t - offset) // tick) * tick + offset
        k = -(-(t - offset - self.skew[cpu]) // tick) - 1  # jitter < tick/2: k-1, k or k+1
        for candidate in (k, k + 1, k + 2):
            when = self.tick_time(cpu, candidate)
            if when >= t:
                return when
        raise AssertionError("unreachable: jitter is below half a tick")

    def is_tick(self, cpu: int, t: int) -> bool:
        """Does a tick of `cpu` fire at `t`?"""
        if self.uniform:
            return (t - self.offset) % self.tick == 0
        k = (t - self.offset - self.skew[cpu] + self.tick // 2) // self.tick
        return self.tick_time(cpu, k) == t


def noise_behaviour(noise: HostNoise) -> Any:
    """The behaviour of one CPU's background activity: sleep an exponential interarrival time,
    run a log-normal length, forever — drawn from the task's own seeded generator."""

    def behaviour(task: Any) -> Generator[Any, Any, None]:
        rng = task.random
        mean_gap_ns = 1e9 / noise.rate_per_s
        mu = math.log(noise.run_median_ns)
        while True:
            gap = max(1, int(rng.exponential(mean_gap_ns)))
            yield task.sleep(gap)
            run = noise.run_median_ns
            if noise.run_sigma:
                run = max(1, int(rng.lognormal(mu, noise.run_sigma)))
            yield task.run(run)

    return behaviour
