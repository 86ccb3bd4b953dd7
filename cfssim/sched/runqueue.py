"""`CfsRunQueue`: one fair run queue (``struct cfs_rq``), per CPU and per task group.

Queued entities that are not running sit in ``tree``, a `sortedcontainers.SortedList` of
``(key, n, se)`` — our red-black tree, ordered by the policy's key (vruntime under CFS,
deadline under EEVDF); ``n`` counts insertions, so equal keys stay in insertion order as in the
kernel's ``rb_add_cached`` (a node equal to another goes to its right: the earlier one is
picked first). Like the kernel, the running entity (``curr``) is out of the tree but still
counted in ``load`` and ``nr_running``. The leftmost entity is cached (``leftmost``, the
kernel's ``rb_root_cached``), kept by `insert` and `remove`, the only writers of the tree.

For EEVDF the tree also keeps a multiset of the queued entities' slices (``slices``: slice →
count), standing in for the kernel's min/max-slice augmentation of the rbtree: the distinct
slices are few (usually one), so ``min_slice``/``max_slice`` are O(distinct slices).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from sortedcontainers import SortedList

if TYPE_CHECKING:
    from ..task import Task
    from .entity import SchedEntity


class CfsRunQueue:
    """A fair run queue. ``tg`` is the task group it belongs to, ``cpu`` its CPU index."""

    __slots__ = (
        "avg_load",
        "avg_vruntime",
        "cpu",
        "curr",
        "h_nr_running",
        "inserted",
        "last",
        "leftmost",
        "limbo",
        "load",
        "min_vruntime",
        "name",
        "next",
        "nr_listed",
        "nr_running",
        "prev_curr",
        "runtime_enabled",
        "runtime_remaining",
        "se",
        "slices",
        "tg",
        "throttle_count",
        "throttled",
        "throttled_clock",
        "tree",
    )

    def __init__(self, tg: Any, cpu: int, name: str) -> None:
        self.tg = tg
        self.cpu = cpu
        self.name = name
        self.se: SchedEntity | None = None  # the group entity representing this queue one level up
        self.tree: SortedList = SortedList()
        self.leftmost: SchedEntity | None = None  # the tree's first entity (``rb_root_cached``)
        self.inserted = 0  # insertions so far: equal keys keep insertion order, as in the rbtree
        self.curr: SchedEntity | None = None
        self.load = 0  # Σ weight of queued entities, curr included (cfs_rq->load.weight)
        self.nr_running = 0  # entities queued here, curr included
        self.h_nr_running = 0  # tasks queued in this hierarchy
        self.nr_listed = 0  # tasks of this queue in its CPU's movable set (``Rq.tasks``)
        self.min_vruntime = 0
        self.next: SchedEntity | None = None  # next buddy
        self.last: SchedEntity | None = None  # last buddy
        # EEVDF: Σ w·(v − min_vruntime) and Σ w over the tree (curr excluded), see avg_vruntime()
        self.avg_vruntime = 0
        self.avg_load = 0
        self.slices: dict[int, int] = {}  # se.slice → number of tree entities with it
        # while a pick runs: the entity that ran here until this schedule (EEVDF's "curr")
        self.prev_curr: SchedEntity | None = None
        # CFS bandwidth control (only meaningful when the group has a quota)
        self.runtime_enabled = False
        self.runtime_remaining = 0
        self.throttled = False
        self.throttle_count = 0  # throttled self or ancestors (throttled_hierarchy)
        self.throttled_clock = -1  # when the current throttled interval started counting
        # 6.18's throttled_limbo_list: this queue's tasks dequeued by the throttle, oldest first
        self.limbo: list[Task] = []

    # ---- the tree -----------------------------------------------------------------------
    def insert(self, se: SchedEntity, key: int) -> None:
        """``__enqueue_entity``: put `se` in the tree at `key`."""
        self.inserted += 1
        node = (key, self.inserted, se)
        se.node = node
        self.tree.add(node)
        leftmost = self.leftmost
        if leftmost is None or key < leftmost.node[0]:  # type: ignore[index]
            self.leftmost = se  # an equal key goes to the right of the leftmost
        weight = se.weight
        self.avg_vruntime += weight * (se.vruntime - self.min_vruntime)
        self.avg_load += weight
        slices = self.slices  # count_in(slices, se.slice, 1), inlined: every insert
        slice_ns = se.slice
        slices[slice_ns] = slices.get(slice_ns, 0) + 1

    def remove(self, se: SchedEntity) -> None:
        """``__dequeue_entity``: take `se` out of the tree. The leftmost (a pick's usual
        choice) is the tree's first node: popped without a search."""
        slices = self.slices  # count_in(slices, se.slice, -1), inlined: every remove
        slice_ns = se.slice
        count = slices[slice_ns] - 1
        if count:
            slices[slice_ns] = count
        else:
            del slices[slice_ns]
        tree = self.tree
        if se is self.leftmost:
            if slices:  # ``slices`` counts the tree's nodes: others are left
                tree.pop(0)
                # the next node: iterating reads it with one call into SortedList, indexing
                # with two (``tree[0]`` after ``if tree``)
                self.leftmost = next(iter(tree))[2]
            else:  # the only node: clearing costs a third of popping
                tree.clear()
                self.leftmost = None
        else:
            tree.remove(se.node)
        se.node = None
        weight = se.weight
        self.avg_vruntime -= weight * (se.vruntime - self.min_vruntime)
        self.avg_load -= weight

    def set_slice(self, se: SchedEntity, slice_ns: int) -> None:
        """Change `se`'s slice (ns), keeping ``slices`` right when `se` is in the tree."""
        if se.node is not None and slice_ns != se.slice:
            count_in(self.slices, se.slice, -1)
            count_in(self.slices, slice_ns, 1)
        se.slice = slice_ns

    def min_slice(self) -> int | None:
        """``cfs_rq_min_slice``: the shortest slice (ns) queued here, curr included."""
        slices = self.slices
        curr = self.curr
        if curr is None or not curr.on_rq:
            return min(slices) if slices else None
        own: int = curr.slice
        if slices:
            queued = min(slices)
            if queued < own:
                return queued
        return own

    def max_slice(self) -> int | None:
        """``cfs_rq_max_slice``: the longest slice (ns) queued here, curr included."""
        slices = self.slices
        curr = self.curr
        if curr is None or not curr.on_rq:
            return max(slices) if slices else None
        own: int = curr.slice
        if slices:
            queued = max(slices)
            if queued > own:
                return queued
        return own

    def entities(self) -> list[SchedEntity]:
        """Queued entities in key order (curr excluded)."""
        return [node[2] for node in self.tree]

    # ---- vruntime bookkeeping -----------------------------------------------------------
    def update_min_vruntime(self) -> None:
        """``update_min_vruntime``: max(old, min(curr.v if queued, leftmost.v)); never decreases."""
        curr = self.curr
        leftmost = self.leftmost
        if curr is not None and curr.on_rq:
            vruntime = curr.vruntime
            if leftmost is not None and leftmost.vruntime < vruntime:
                vruntime = leftmost.vruntime
        elif leftmost is not None:
            vruntime = leftmost.vruntime
        else:
            return
        old = self.min_vruntime
        if vruntime > old:
            # keep Σ w·(v − min_vruntime) relative to the new reference point
            self.avg_vruntime -= self.avg_load * (vruntime - old)
            self.min_vruntime = vruntime

    def __repr__(self) -> str:
        return f"<cfs_rq {self.name}@{self.cpu} n={self.nr_running} load={self.load}>"


_K = TypeVar("_K")


def count_in(counts: dict[_K, int], key: _K, change: int) -> None:
    """A multiset kept as a dict of counts: `counts`[`key`] += `change`, the key dropped at 0
    (the run queue's slices, a CPU's movable set by task group)."""
    count = counts.get(key, 0) + change
    if count:
        counts[key] = count
    else:
        del counts[key]
