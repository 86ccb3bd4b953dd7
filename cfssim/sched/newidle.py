"""The busiest CPU a newly idle CPU pulls from (``sched_balance_newidle``'s source search).

`newidle_src_rq` is ``sched_balance_find_src_rq`` with newidle's key, (``h_nr_running``, load),
that tries CPUs from the greatest key down and only until one holds a task the idle CPU may
take, without a key function or grouping dictionary: at 64 CPUs a newidle balance runs
thousands of times per simulated second. tests/test_fast_forward.py compares it, answer and
seeded tie-break draw, with a plain statement of that search at every newidle balance of a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import Machine, Rq


def newidle_src_rq(machine: Machine, rq: Rq) -> Rq | None:
    """The other CPU with ≥ 2 tasks and the greatest (``h_nr_running``, load) among those
    holding a task `rq` may take (`FairClass.may_pull_from`: the counters' prefilter once,
    then `LoadBalancing._scan_movable`); ties — CPUs of that key, in
    CPU order — are broken by a draw of the machine's generator, None when no CPU qualifies.
    CPUs are tried from the greatest key down, and only until one has a movable task."""
    rqs = machine.rqs
    may_pull_from = machine.may_pull_from  # the prefilter: rules most CPUs out
    blocked = rq.throttled_groups
    # descending key, ascending CPU within a key: the order the generic search tries them in
    order = sorted(
        [
            (-other.cfs.h_nr_running, -other.cfs.load, other.cpu)
            for other in rqs
            # may_pull_from's first test, inlined: hot (it rules out most CPUs)
            if not other.listed_unthrottled.keys() <= blocked
            and other.cfs.h_nr_running >= 2
            and other is not rq
            and may_pull_from(other, rq)
        ]
    )
    tied: list[Rq] = []
    level = (0, 0)
    for nr_running, load, cpu in order:
        if tied and (nr_running, load) != level:
            break
        other = rqs[cpu]
        if machine._scan_movable(other, rq):  # may_pull_from already held (above)
            tied.append(other)
            level = (nr_running, load)
    if len(tied) <= 1:
        return tied[0] if tied else None
    return tied[int(machine.rng.integers(len(tied)))]
