"""Nice levels to load weights, and the kernel's fixed-point `calc_delta_fair`.

Mirrors ``sched_prio_to_weight[]`` (kernel/sched/core.c; ``sched_prio_to_wmult[]`` is
``inverse_weight`` of it, within one unit) and
``__calc_delta()`` (kernel/sched/fair.c): ``delta * weight / lw.weight`` computed as a multiply by
the precomputed inverse ``2**32 / lw.weight`` and a shift, truncating like the kernel does.
Weights here are the user-visible scale (nice 0 = 1024); the kernel's 64-bit ``<< 10`` resolution
cancels out of every ratio we compute.
"""

from __future__ import annotations

NICE_0_LOAD = 1024
WEIGHT_IDLEPRIO = 3  # SCHED_IDLE tasks (and cpu.idle groups)
WMULT_SHIFT = 32
WMULT_CONST = (1 << 32) - 1

#: ``sched_prio_to_weight[nice + 20]``
PRIO_TO_WEIGHT = (
    88761, 71755, 56483, 46273, 36291,
    29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906,
    3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423,
    335, 272, 215, 172, 137,
    110, 87, 70, 56, 45,
    36, 29, 23, 18, 15,
)  # fmt: skip


def nice_to_weight(nice: int) -> int:
    """Load weight of a SCHED_NORMAL/BATCH task at `nice` (−20..19)."""
    if not -20 <= nice <= 19:
        raise ValueError(f"nice must be within -20..19, found {nice}")
    return PRIO_TO_WEIGHT[nice + 20]


def inverse_weight(weight: int) -> int:
    """``lw->inv_weight`` as ``__update_inv_weight`` computes it: 2**32 / weight, saturated."""
    if weight <= 0:
        return WMULT_CONST
    return min(WMULT_CONST, WMULT_CONST // weight)


def calc_delta(delta: int, weight: int, inv_weight: int) -> int:
    """``__calc_delta(delta, weight, lw)``: ``delta * weight / lw.weight`` via the inverse.

    The kernel keeps the 64-bit product in range by pre-shifting; Python ints are unbounded, so
    the single multiply-and-shift gives the same truncated quotient.
    """
    return (delta * weight * inv_weight) >> WMULT_SHIFT


def calc_delta_fair(delta: int, weight: int, inv_weight: int) -> int:
    """``calc_delta_fair(delta, se)``: wall ns → virtual ns for an entity of `weight`."""
    if weight == NICE_0_LOAD:
        return delta
    return (delta * NICE_0_LOAD * inv_weight) >> WMULT_SHIFT


def inverse_calc_delta_fair(vdelta: int, weight: int, inv_weight: int) -> int:
    """The least wall delta (ns, ≥ 1) whose `calc_delta_fair` reaches `vdelta` > 0 (0 for
    none): ⌊wall·1024·inv_weight / 2**32⌋ ≥ vdelta ⇔ wall ≥ ⌈vdelta·2**32 / (1024·inv_weight)⌉.
    Times decisions: when a running entity's vruntime reaches a deadline or protection."""
    if vdelta <= 0:
        return 0
    if weight == NICE_0_LOAD:
        return vdelta
    wall = -(-(vdelta << WMULT_SHIFT) // (NICE_0_LOAD * inv_weight))
    return wall  # ≥ 1: vdelta ≥ 1
