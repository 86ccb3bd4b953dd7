"""`SchedEntity`: what a fair run queue holds — a task, or a task group on one CPU.

Mirrors ``struct sched_entity``: load weight, vruntime (virtual ns), the EEVDF request
(deadline, slice, vlag), execution accounting (ns), and the hierarchy (``parent`` is the group
entity one level up; ``my_q`` is a group entity's own run queue, ``None`` for a task).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .weights import NICE_0_LOAD, WMULT_CONST, inverse_weight

if TYPE_CHECKING:
    from .runqueue import CfsRunQueue


class SchedEntity:
    """A schedulable entity. Times are int ns; vruntime/deadline/vlag are virtual ns."""

    __slots__ = (
        "custom_slice",
        "deadline",
        "depth",
        "inv_weight",
        "my_q",
        "node",
        "on_rq",
        "parent",
        "prev_sum_exec",
        "rel_deadline",
        "rq_of",
        "sched_delayed",
        "slice",
        "sum_exec",
        "task",
        "vlag",
        "vprot",
        "vruntime",
        "weight",
    )

    def __init__(
        self,
        weight: int = NICE_0_LOAD,
        *,
        task: Any = None,
        my_q: CfsRunQueue | None = None,
        parent: SchedEntity | None = None,
    ) -> None:
        self.weight = weight
        self.inv_weight = inverse_weight(weight)
        self.task = task
        self.my_q = my_q
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.rq_of: CfsRunQueue | None = None  # the cfs_rq this entity is (or would be) queued on
        self.on_rq = False
        self.node: tuple[int, int, SchedEntity] | None = None  # its key in rq_of.tree, if in it
        self.vruntime = 0
        self.deadline = 0
        self.rel_deadline = False  # deadline held relative to vruntime (``se->rel_deadline``)
        self.vlag = 0
        self.vprot = 0
        self.slice = 0
        self.custom_slice = False
        self.sched_delayed = False
        self.sum_exec = 0
        self.prev_sum_exec = 0

    def set_weight(self, weight: int) -> None:
        """``update_load_set``: new load weight and its inverse."""
        self.weight = weight
        # inverse_weight, inlined: every reweight
        self.inv_weight = WMULT_CONST // weight if weight > 1 else WMULT_CONST

    @property
    def is_task(self) -> bool:
        return self.my_q is None

    def __repr__(self) -> str:
        name = getattr(self.task, "name", None) or (self.my_q.name if self.my_q else "?")
        return f"<se {name} w={self.weight} v={self.vruntime}>"
