"""The memory cgroup controller (memcg) as a pure model: charges, limits, OOM victims, waits.

No clock and no SimPy here: the simulator calls these methods at its event times and acts on
what they return (kill these processes, put this task to sleep, wake those, delay by so many ns).
Sizes are int bytes at the interface and whole pages (4096 bytes) inside, like `page_counter`.

What is modelled, after mm/memcontrol.c, mm/memcontrol-v1.c, mm/page_counter.c, mm/oom_kill.c:
- `charge` is `try_charge_memcg` → `page_counter_try_charge`: every level from the task's memcg
  up to the root is charged; an allocation is charged page by page (page faults), so as many
  whole pages as fit under every level are charged and the first (lowest) full level fails.
- There is no swap and no page cache, so reclaim never frees anything: a failed charge goes
  straight to the OOM path, a v1 limit below usage fails with EBUSY, memory.high only delays.
- The per-CPU charge stock (64 pages) is not modelled: usage is exact, not fuzzy.
- `try_charge_memcg` passes over a failing page fault several times before giving up, and
  each pass raises `failcnt` (and all but the first the `max` event): with nothing to reclaim,
  a 64-page batch attempt, the exact one, one after draining the charge stocks and
  MAX_RECLAIM_RETRIES (16) more — 19 — then the OOM killer; if it chose the charging task, 17
  more (the retries restart after ``passed_oom``) until it gives up as dying. Measured on 6.18:
  failcnt 19 with oom_kill_disable, 36 for one allocator killed. A kill of another process
  frees its memory at once here, so the retry succeeds without further failing passes; while
  a victim is still exiting (WAIT_VICTIM) the kernel keeps looping — an `oom` event and 17
  passes per round — where the model blocks and counts none. All passes are counted at the
  level that fails the exact charge; the kernel's batch attempt may fail at a lower level less
  than 64 pages from its limit, and also fails (once, no OOM) on every refill of the stock in
  the last 63 pages below a limit — only limits and usage not 256 KiB-aligned show that.
  `mem_cgroup_handle_over_high` reclaims up to 17 times, raising `high` each time; we count one.
- `oom_badness` uses rss only (no page-table pages, no swap entries).

Counting rules (`__memcg_memory_event`): each event counts once in `memory.events.local` of the
memcg it concerns and, on v2, in `memory.events` of it and every ancestor below the root; on v1
it stays at that memcg. v1 `memory.oom_control` `oom_kill` reads that same hierarchical
`oom_kill` counter, so on v1 it counts kills of tasks in that very cgroup only.

Iteration order of the OOM killer (`mem_cgroup_scan_tasks`): memcgs in pre-order
(`mem_cgroup_iter` → `css_next_descendant_pre`: a cgroup, then its children in creation order,
which is the order of the configs mapping), processes within one memcg in the order the caller
passes them (the kernel's css_set task list: attach order).

Driving it, for an alloc step of process P in memcg M (charges stay with M even if P moves):
`r = charge(M, n)`, P.rss += r.charged, P sleeps r.penalty_ns; if r.failed:
`d = mem_cgroup_oom(r.failed, processes, waiter=P, charger=P's process)` →
KILL: SIGKILL d.victims, then retry the rest (a retry before their exit gets WAIT_VICTIM);
WAIT_VICTIM / WAIT_OOM: P blocks until a later `uncharge`, `set_limit`, `set_oom_kill_disable`
or `apply_config` returns it among the woken, then retries; NO_VICTIM: the charge fails (-ENOMEM).
A process's exit: `uncharge(memcg, bytes)` for each memcg it charged, then alive = False.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from cfssim.cgroup.files import (
    PAGE_COUNTER_MAX_PAGES,
    PAGE_SIZE,
    CgroupConfig,
    Interface,
    parent_path,
    path_depth,
)
from cfssim.units import NSEC_PER_SEC

MEMCG_CHARGE_BATCH = 64
"""Pages per per-CPU stock refill; memory.high penalties are scaled to this nominal batch."""
MAX_RECLAIM_RETRIES = 16
PASSES_BEFORE_OOM = 3 + MAX_RECLAIM_RETRIES
"""`try_charge_memcg` passes over a failing 1-page fault before the OOM killer, nothing being
reclaimable: the MEMCG_CHARGE_BATCH attempt, the exact one, one after ``drain_all_stock``, then
MAX_RECLAIM_RETRIES; the batch attempt comes before ``memcg_memory_event(MEMCG_MAX)``."""
PASSES_AFTER_OWN_KILL = 1 + MAX_RECLAIM_RETRIES
"""Passes after the OOM killer chose the charging task (``passed_oom`` restarts the retries)
until ``task_is_dying`` makes it give up."""
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
MEMCG_MAX_HIGH_DELAY_SECONDS = 2
"""`MEMCG_MAX_HIGH_DELAY_JIFFIES` = 2 * HZ: the cap on one memory.high sleep."""
OOM_SCORE_ADJ_MIN = -1000
"""oom_score_adj that makes a task unkillable by the OOM killer."""
EVENT_NAMES = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
"""The keys of v2 `memory.events` and `memory.events.local`, in the kernel's order."""


class MemProcess(Protocol):
    """A process (an mm) as the OOM killer sees it; the simulator owns these objects.

    `cgroup` is the path of the process's current memory cgroup; `rss` its resident bytes;
    `alive` is False once it has exited; `oom_victim` is set by this model when it is chosen
    and stays set until the process has exited and its memory has been uncharged.
    """

    @property
    def name(self) -> str: ...
    @property
    def cgroup(self) -> str: ...
    @property
    def rss(self) -> int: ...
    @property
    def oom_score_adj(self) -> int: ...
    @property
    def alive(self) -> bool: ...

    oom_victim: bool


@dataclass(eq=False)
class ProcessMemory:
    """A ready-made `MemProcess` (the simulator may use its own class instead)."""

    name: str
    cgroup: str = "/"
    rss: int = 0
    oom_score_adj: int = 0
    alive: bool = True
    oom_victim: bool = False


def pages_for(nbytes: int) -> int:
    """Whole pages needed to hold `nbytes` (page faults touch whole pages)."""
    if nbytes < 0:
        raise ValueError(f"expected a size >= 0 bytes, found {nbytes}")
    return -(-nbytes // PAGE_SIZE)


def limit_pages(nbytes: int | None) -> int:
    """A limit in bytes (None = unlimited) as `page_counter_memparse` stores it: pages, floored."""
    if nbytes is None:
        return PAGE_COUNTER_MAX_PAGES
    if nbytes < 0:
        raise ValueError(f"expected a limit >= 0 bytes or None, found {nbytes}")
    return min(nbytes // PAGE_SIZE, PAGE_COUNTER_MAX_PAGES)


@dataclass(eq=False)
class MemCgroup:
    """One memory cgroup (`struct mem_cgroup`): its page counter, limits, counters and events.

    Sizes are in pages (`*_pages`); the byte views are properties.
    """

    path: str
    parent: MemCgroup | None
    max_pages: int = PAGE_COUNTER_MAX_PAGES
    high_pages: int = PAGE_COUNTER_MAX_PAGES
    oom_kill_disable: bool = False
    oom_group: bool = False
    usage_pages: int = 0
    watermark_pages: int = 0
    failcnt: int = 0
    children: list[MemCgroup] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_NAMES, 0))
    events_local: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_NAMES, 0))
    oom_marks: int = 0
    """`memcg->under_oom`: how many OOM waiters at this memcg or an ancestor are asleep."""

    @property
    def usage(self) -> int:
        """Charged bytes, this memcg and its descendants (`memory.usage_in_bytes`)."""
        return self.usage_pages * PAGE_SIZE

    @property
    def max_usage(self) -> int:
        """Highest usage seen, bytes (`memory.max_usage_in_bytes`, `memory.peak`)."""
        return self.watermark_pages * PAGE_SIZE

    @property
    def limit(self) -> int | None:
        """The hard limit in bytes, None when unlimited."""
        return None if self.max_pages == PAGE_COUNTER_MAX_PAGES else self.max_pages * PAGE_SIZE

    @property
    def high(self) -> int | None:
        """memory.high in bytes, None when "max"."""
        return None if self.high_pages == PAGE_COUNTER_MAX_PAGES else self.high_pages * PAGE_SIZE

    @property
    def under_oom(self) -> bool:
        """v1 `under_oom`: an OOM waiter sleeps on this memcg or on an ancestor of it."""
        return self.oom_marks > 0

    @property
    def oom_kill(self) -> int:
        """v1 `memory.oom_control` `oom_kill` (the hierarchical `oom_kill` event counter)."""
        return self.events["oom_kill"]

    def lineage(self) -> Iterator[MemCgroup]:
        """This memcg, its parent, … up to and including the root."""
        memcg: MemCgroup | None = self
        while memcg is not None:
            yield memcg
            memcg = memcg.parent

    def walk(self) -> Iterator[MemCgroup]:
        """This memcg and its descendants in pre-order (`for_each_mem_cgroup_tree`)."""
        yield self
        for child in self.children:
            yield from child.walk()

    def is_descendant_of(self, other: MemCgroup) -> bool:
        """`mem_cgroup_is_descendant`: True for `other` itself and everything below it."""
        return any(memcg is other for memcg in self.lineage())


@dataclass(frozen=True)
class ChargeResult:
    """What `charge` did: `charged` of `requested` bytes (both page multiples).

    `failed` is the lowest memcg that was full when the rest did not fit (the OOM domain to
    pass to `mem_cgroup_oom`), None if everything was charged. `penalty_ns` is the memory.high
    throttling sleep the allocating task owes on its way back to user mode (0 if none).
    """

    memcg: MemCgroup
    requested: int
    charged: int
    failed: MemCgroup | None
    penalty_ns: int

    @property
    def complete(self) -> bool:
        return self.failed is None


class OomAction(str, Enum):
    """What the OOM path decided."""

    KILL = "kill"
    """Kill `victims` (SIGKILL); the allocating task, if it survives, retries its charge."""
    WAIT_VICTIM = "wait_victim"
    """An earlier victim in the domain still holds its memory: no new victim; retry later."""
    WAIT_OOM = "wait_oom"
    """v1 oom_kill_disable: the allocating task sleeps (under_oom=1) until woken."""
    NO_VICTIM = "no_victim"
    """No killable process in the domain: the charge returns -ENOMEM (the fault retries)."""


@dataclass(frozen=True)
class OomDecision:
    """The outcome of one pass of the memcg OOM killer on `domain`'s subtree.

    `victim` is the process `select_bad_process` chose (for WAIT_VICTIM: the earlier victim
    still exiting) and `points` its `oom_badness`. `oom_group` is set when memory.oom.group
    widened the kill; `victims` lists every process to kill, the chosen one first, each once.
    """

    action: OomAction
    domain: MemCgroup
    victim: MemProcess | None = None
    points: int | None = None
    oom_group: MemCgroup | None = None
    victims: tuple[MemProcess, ...] = ()


class MemoryLimitBusy(Exception):
    """v1 `memory.limit_in_bytes` written below usage that reclaim cannot free: -EBUSY."""

    errno = errno.EBUSY

    def __init__(self, path: str, limit: int, usage: int) -> None:
        self.path = path
        self.limit = limit
        self.usage = usage
        super().__init__(
            f"{path}: memory.limit_in_bytes: write error: Device or resource busy "
            f"(limit {limit} bytes < usage {usage} bytes; nothing is reclaimable without swap)"
        )


def oom_badness(process: MemProcess, totalpages: int) -> int | None:
    """`oom_badness`: rss pages + oom_score_adj * (totalpages / 1000), integer arithmetic.

    None stands for the kernel's LONG_MIN: the process is not a candidate (adj −1000).
    """
    if process.oom_score_adj == OOM_SCORE_ADJ_MIN:
        return None
    return process.rss // PAGE_SIZE + process.oom_score_adj * (totalpages // 1000)


def calculate_overage(usage_pages: int, high_pages: int) -> int:
    """`calculate_overage`: (usage − high) / high in 2^-20 units, 0 when not above high."""
    if usage_pages <= high_pages:
        return 0
    high_pages = max(high_pages, 1)
    return ((usage_pages - high_pages) << MEMCG_DELAY_PRECISION_SHIFT) // high_pages


def calculate_high_delay(nr_pages: int, max_overage: int, hz: int) -> int:
    """`calculate_high_delay`: the memory.high penalty in jiffies before cap and threshold.

    overage² · HZ >> (PRECISION_SHIFT + SCALING_SHIFT), scaled by nr_pages / MEMCG_CHARGE_BATCH.
    """
    if not max_overage:
        return 0
    penalty = max_overage * max_overage * hz
    penalty >>= MEMCG_DELAY_PRECISION_SHIFT
    penalty >>= MEMCG_DELAY_SCALING_SHIFT
    return penalty * nr_pages // MEMCG_CHARGE_BATCH


def high_penalty_jiffies(nr_pages: int, max_overage: int, hz: int) -> int:
    """The sleep `mem_cgroup_handle_over_high` takes: capped at 2 s, 0 if ≤ HZ/100 jiffies."""
    penalty = min(
        calculate_high_delay(nr_pages, max_overage, hz), MEMCG_MAX_HIGH_DELAY_SECONDS * hz
    )
    return 0 if penalty <= hz // 100 else penalty


@dataclass(eq=False)
class _Waiter:
    """A task asleep in the OOM path: `kind` "oom" (oom_kill_disable) or "victim"."""

    token: object
    memcg: MemCgroup
    kind: Literal["oom", "victim"]


class MemoryController:
    """The memcg tree of one run and every operation the simulator performs on it.

    `configs` maps every cgroup path (including "/" and all ancestors) to its config;
    siblings are created, and so visited by the OOM killer, in the mapping's order.
    `version` is the memory hierarchy's interface: by default "v2" if any cgroup was
    configured through v2 files, else "v1". `hz` converts penalties to ns.
    """

    def __init__(
        self,
        configs: Mapping[str, CgroupConfig],
        *,
        hz: int = 250,
        version: Interface | None = None,
    ) -> None:
        if "/" not in configs:
            raise ValueError("memory cgroups: expected a config for the root cgroup '/'")
        self.hz = hz
        self.version: Interface = version or (
            "v2" if any(cfg.interface == "v2" for cfg in configs.values()) else "v1"
        )
        self.memcgs: dict[str, MemCgroup] = {}
        for path in sorted(configs, key=path_depth):  # stable: siblings keep the mapping's order
            self.memcgs[path] = self._create(path, configs[path])
        self.root = self.memcgs["/"]
        self._waiters: list[_Waiter] = []

    def _create(self, path: str, config: CgroupConfig) -> MemCgroup:
        parent: MemCgroup | None = None
        above = parent_path(path)
        if above is not None:
            if above not in self.memcgs:
                raise ValueError(
                    f"memory cgroups: {path}: expected its parent {above} to be "
                    f"configured too, found none"
                )
            parent = self.memcgs[above]
        memcg = MemCgroup(
            path=path,
            parent=parent,
            max_pages=limit_pages(config.memory_limit),
            high_pages=limit_pages(config.memory_high),
            oom_kill_disable=config.oom_kill_disable,
            oom_group=config.oom_group,
        )
        if parent is not None:
            parent.children.append(memcg)
        return memcg

    def __getitem__(self, path: str) -> MemCgroup:
        return self.memcgs[path]

    # -- charging ---------------------------------------------------------------------------

    def charge(self, memcg: MemCgroup, nbytes: int) -> ChargeResult:
        """Charge `nbytes` (rounded up to pages) to `memcg` and every ancestor.

        Whole pages are charged while they fit under every level's limit; if some do not,
        the lowest full level fails: its `failcnt` and `max` event count once. After a
        charge above memory.high the result carries the over-high penalty (never a kill).
        """
        requested = pages_for(nbytes)
        lineage = list(memcg.lineage())
        fits = min(max(level.max_pages - level.usage_pages, 0) for level in lineage)
        charged = min(requested, fits)
        failed = None
        if charged < requested:
            failed = next(lvl for lvl in lineage if max(lvl.max_pages - lvl.usage_pages, 0) == fits)
        for level in lineage:
            level.usage_pages += charged
            level.watermark_pages = max(level.watermark_pages, level.usage_pages)
        if failed is not None:
            self._failed_passes(failed, PASSES_BEFORE_OOM, max_events=PASSES_BEFORE_OOM - 1)
        penalty_ns = self._handle_over_high(memcg, charged) if charged else 0
        return ChargeResult(memcg, requested * PAGE_SIZE, charged * PAGE_SIZE, failed, penalty_ns)

    def uncharge(self, memcg: MemCgroup, nbytes: int) -> tuple[object, ...]:
        """Free `nbytes` (rounded up to pages) charged to `memcg`; return the woken waiters.

        Call it when a process frees memory or exits (an OOM victim's exit too, even with
        nothing to free). Wakes per `memcg1_oom_recover`; the woken tasks retry their charge.
        """
        pages = pages_for(nbytes)
        if pages > memcg.usage_pages:
            raise ValueError(
                f"{memcg.path}: uncharge of {pages} pages exceeds usage of {memcg.usage_pages}"
            )
        for level in memcg.lineage():
            level.usage_pages -= pages
        return self._oom_recover(memcg)

    def _handle_over_high(self, memcg: MemCgroup, charged_pages: int) -> int:
        """`mem_cgroup_handle_over_high` after a charge: events `high`, the penalty in ns.

        The kernel accumulates charges in MEMCG_CHARGE_BATCH chunks (`memcg_nr_pages_over_high
        += batch`), so the page count is the charge rounded up to a batch multiple.
        """
        over_high = [lvl for lvl in self._below_root(memcg) if lvl.usage_pages > lvl.high_pages]
        if not over_high:
            return 0
        for level in over_high:  # reclaim_high: one pass, nothing reclaimable
            self._memory_event(level, "high")
        nr_pages = -(-charged_pages // MEMCG_CHARGE_BATCH) * MEMCG_CHARGE_BATCH
        jiffies = high_penalty_jiffies(nr_pages, self.mem_find_max_overage(memcg), self.hz)
        return jiffies * NSEC_PER_SEC // self.hz

    def has_high(self, memcg: MemCgroup) -> bool:
        """Is a memory.high set on `memcg` or an ancestor below the root?"""
        return any(lvl.high_pages < PAGE_COUNTER_MAX_PAGES for lvl in self._below_root(memcg))

    def mem_find_max_overage(self, memcg: MemCgroup) -> int:
        """`mem_find_max_overage`: the largest memory.high overage from `memcg` up to the root."""
        return max(
            calculate_overage(lvl.usage_pages, lvl.high_pages) for lvl in self._below_root(memcg)
        )

    @staticmethod
    def _below_root(memcg: MemCgroup) -> list[MemCgroup]:
        """`memcg` and its ancestors below the root (the kernel's upward walks stop there)."""
        return [memcg] + [lvl for lvl in memcg.lineage() if lvl is not memcg and lvl.parent]

    def _failed_passes(self, memcg: MemCgroup, passes: int, max_events: int) -> None:
        """`passes` failed `page_counter_try_charge` at `memcg`, `max_events` of them followed
        by ``memcg_memory_event(MEMCG_MAX)``."""
        memcg.failcnt += passes
        self._memory_event(memcg, "max", max_events)

    def _memory_event(self, memcg: MemCgroup, event: str, count: int = 1) -> None:
        """`__memcg_memory_event`: local count, then hierarchical (v2: up to below the root)."""
        memcg.events_local[event] += count
        for level in self._below_root(memcg):
            level.events[event] += count
            if self.version == "v1":
                break

    # -- the OOM killer -----------------------------------------------------------------------

    def mem_cgroup_oom(
        self,
        failing: MemCgroup,
        processes: Sequence[MemProcess],
        waiter: object | None,
        *,
        charger: MemProcess | None,
    ) -> OomDecision:
        """`mem_cgroup_oom` for a charge that failed at `failing`: count `oom`, then act.

        With oom_kill_disable the allocating task (`waiter`, any hashable token) sleeps:
        WAIT_OOM (a non-fault charge, `waiter` None, gets NO_VICTIM = -ENOMEM instead).
        Otherwise the OOM killer runs on `failing`'s subtree; on KILL the victims are marked
        and counted — when they include `charger` (the process whose fault is charging; None
        for a charge outside a fault), its charge fails PASSES_AFTER_OWN_KILL more times before
        giving up; on WAIT_VICTIM
        `waiter` is queued until memory is freed in the domain.
        """
        self._memory_event(failing, "oom")
        if failing.oom_kill_disable:
            if waiter is None:
                return OomDecision(OomAction.NO_VICTIM, failing)
            self.wait_for_oom(failing, waiter)
            return OomDecision(OomAction.WAIT_OOM, failing)
        decision = self._out_of_memory(failing, processes, waiter)
        if decision.action is OomAction.KILL and charger in decision.victims:
            self._failed_passes(failing, PASSES_AFTER_OWN_KILL, max_events=PASSES_AFTER_OWN_KILL)
        return decision

    def enforce_max(
        self, memcg: MemCgroup, processes: Sequence[MemProcess], waiter: object | None = None
    ) -> OomDecision | None:
        """One pass of v2 `memory_max_write`'s loop: None once usage ≤ memory.max.

        Otherwise counts `oom` and runs the OOM killer (oom_kill_disable is not consulted).
        Call it after `set_limit` lowered memory.max and again whenever memory was freed in
        the subtree, until it returns None or NO_VICTIM (the write then gives up).
        """
        if memcg.usage_pages <= memcg.max_pages:
            return None
        self._memory_event(memcg, "oom")
        return self._out_of_memory(memcg, processes, waiter)

    def _out_of_memory(
        self, domain: MemCgroup, processes: Sequence[MemProcess], waiter: object | None
    ) -> OomDecision:
        decision = self.select_victims(domain, processes)
        if decision.action is OomAction.KILL:
            self._oom_kill_process(decision)
        elif decision.action is OomAction.WAIT_VICTIM and waiter is not None:
            self._waiters.insert(0, _Waiter(waiter, domain, "victim"))
        return decision

    def select_victims(self, domain: MemCgroup, processes: Iterable[MemProcess]) -> OomDecision:
        """`select_bad_process` + `oom_evaluate_task` on `domain`'s subtree; changes nothing.

        Candidates are alive processes whose memcg is in the subtree, in pre-order and in the
        given order within a memcg. A live earlier victim aborts the scan (WAIT_VICTIM). The
        highest `oom_badness` wins, ties going to the later process (`points <
        chosen_points` skips, so an equal score replaces). totalpages is the domain's limit.
        """
        totalpages = domain.max_pages or 1  # mem_cgroup_get_max ?: 1, no swap
        by_memcg = _group_by_cgroup(processes)
        chosen: MemProcess | None = None
        chosen_points = 0
        for memcg in domain.walk():
            for process in by_memcg.get(memcg.path, ()):
                if process.oom_victim:
                    return OomDecision(OomAction.WAIT_VICTIM, domain, victim=process)
                points = oom_badness(process, totalpages)
                if points is None or (chosen is not None and points < chosen_points):
                    continue
                chosen, chosen_points = process, points
        if chosen is None:
            return OomDecision(OomAction.NO_VICTIM, domain)
        group = self.get_oom_group(chosen, domain)
        victims = [chosen]
        if group is not None:
            victims += [p for p in self._group_members(group, by_memcg) if p is not chosen]
        return OomDecision(OomAction.KILL, domain, chosen, chosen_points, group, tuple(victims))

    def get_oom_group(self, victim: MemProcess, domain: MemCgroup) -> MemCgroup | None:
        """`mem_cgroup_get_oom_group`: the highest memcg with memory.oom.group set on the way
        from the victim's memcg up to the OOM domain (v2 only; never for a root task)."""
        memcg = self.memcgs[victim.cgroup]
        if self.version != "v2" or memcg is self.root or not memcg.is_descendant_of(domain):
            return None
        group = None
        for level in memcg.lineage():
            if level.oom_group:
                group = level
            if level is domain:
                break
        return group

    @staticmethod
    def _group_members(
        group: MemCgroup, by_memcg: Mapping[str, list[MemProcess]]
    ) -> Iterator[MemProcess]:
        """`oom_kill_memcg_member` targets: every process in the group's subtree but adj −1000."""
        for memcg in group.walk():
            for process in by_memcg.get(memcg.path, ()):
                if process.oom_score_adj != OOM_SCORE_ADJ_MIN:
                    yield process

    def _oom_kill_process(self, decision: OomDecision) -> None:
        """`oom_kill_process`: count `oom_kill` per kill at the killed process's memcg.

        With an oom group the kernel kills the victim, counts `oom_group_kill` at the group and
        then kills every member through `oom_kill_memcg_member`, which does not skip the
        victim: the victim is counted twice (its mm still exists at that point).
        """
        assert decision.victim is not None
        killed: list[MemProcess] = [decision.victim]
        if decision.oom_group is not None:
            self._memory_event(decision.oom_group, "oom_group_kill")
            killed += decision.victims
        for process in killed:
            self._memory_event(self.memcgs[process.cgroup], "oom_kill")
            process.oom_victim = True

    # -- OOM waits (v1 oom_kill_disable) -------------------------------------------------------

    def wait_for_oom(self, memcg: MemCgroup, waiter: object) -> None:
        """`mem_cgroup_oom_synchronize`: `waiter` sleeps on the OOM waitqueue for `memcg`.

        Marks `memcg` and its descendants under_oom (`mem_cgroup_mark_under_oom`). The `oom`
        event is counted by `mem_cgroup_oom`, not here.
        """
        self._waiters.insert(0, _Waiter(waiter, memcg, "oom"))  # prepare_to_wait adds at head
        for level in memcg.walk():
            level.oom_marks += 1

    def cancel_wait(self, waiter: object) -> bool:
        """Forget a sleeping waiter (the task was killed); False if it was not waiting."""
        for entry in self._waiters:
            if entry.token == waiter:
                self._dequeue(entry)
                return True
        return False

    def waiting(self) -> tuple[object, ...]:
        """Every waiter currently asleep, most recent first."""
        return tuple(entry.token for entry in self._waiters)

    def _oom_recover(self, memcg: MemCgroup) -> tuple[object, ...]:
        """`memcg1_oom_recover` + `memcg_oom_wake_function`: wake waiters related to `memcg`.

        An OOM waiter wakes only if `memcg` is under_oom, and only when its memcg is an
        ancestor or a descendant of `memcg`; victim waiters wake on the same relation.
        Woken waiters are returned in wake order (the waitqueue's, most recent first).
        """
        woken = []
        for entry in list(self._waiters):
            if entry.kind == "oom" and not memcg.under_oom:
                continue
            if memcg.is_descendant_of(entry.memcg) or entry.memcg.is_descendant_of(memcg):
                self._dequeue(entry)
                woken.append(entry.token)
        return tuple(woken)

    def _dequeue(self, entry: _Waiter) -> None:
        self._waiters.remove(entry)
        if entry.kind == "oom":  # mem_cgroup_unmark_under_oom
            for level in entry.memcg.walk():
                level.oom_marks = max(level.oom_marks - 1, 0)

    # -- configuration writes ---------------------------------------------------------------

    def set_limit(self, memcg: MemCgroup, limit: int | None) -> tuple[object, ...]:
        """Write the hard limit (bytes, None = unlimited); return the woken waiters.

        v1 `memory.limit_in_bytes` (`mem_cgroup_resize_max`): below usage, reclaim frees
        nothing here, so it raises `MemoryLimitBusy` (-EBUSY) and the limit is unchanged.
        v2 `memory.max`: always succeeds; if usage is now above it, call `enforce_max`.
        Raising the limit wakes OOM waiters (`memcg1_oom_recover`).
        """
        if memcg is self.root:
            raise ValueError("memory cgroups: the root cgroup has no memory limit to set")
        new_pages = limit_pages(limit)
        if self.version == "v1" and memcg.usage_pages > new_pages:
            raise MemoryLimitBusy(memcg.path, new_pages * PAGE_SIZE, memcg.usage)
        enlarge = new_pages > memcg.max_pages
        memcg.max_pages = new_pages
        return self._oom_recover(memcg) if enlarge else ()

    def set_high(self, memcg: MemCgroup, high: int | None) -> None:
        """Write memory.high (bytes, None = max); reclaim frees nothing and nothing is killed."""
        memcg.high_pages = limit_pages(high)

    def set_oom_kill_disable(self, memcg: MemCgroup, disable: bool) -> tuple[object, ...]:
        """Write v1 oom_control; clearing it wakes the OOM waiters, who retry and OOM-kill."""
        memcg.oom_kill_disable = disable
        return () if disable else self._oom_recover(memcg)

    def set_oom_group(self, memcg: MemCgroup, oom_group: bool) -> None:
        """Write v2 memory.oom.group."""
        memcg.oom_group = oom_group

    def apply_config(self, memcg: MemCgroup, config: CgroupConfig) -> tuple[object, ...]:
        """Apply a cgroup file write already folded into `config`; return the woken waiters.

        Only the fields that changed are written, limit first. Raises `MemoryLimitBusy`.
        """
        woken: list[object] = []
        if limit_pages(config.memory_limit) != memcg.max_pages:
            woken += self.set_limit(memcg, config.memory_limit)
        if limit_pages(config.memory_high) != memcg.high_pages:
            self.set_high(memcg, config.memory_high)
        if config.oom_kill_disable != memcg.oom_kill_disable:
            woken += self.set_oom_kill_disable(memcg, config.oom_kill_disable)
        if config.oom_group != memcg.oom_group:
            self.set_oom_group(memcg, config.oom_group)
        return tuple(woken)

    @staticmethod
    def reset_max_usage(memcg: MemCgroup) -> None:
        """Write 0 to v1 memory.max_usage_in_bytes (`page_counter_reset_watermark`)."""
        memcg.watermark_pages = memcg.usage_pages

    # -- reporting ----------------------------------------------------------------------------

    def stats(
        self, memcg: MemCgroup, family: Interface | None = None
    ) -> dict[str, int | str | dict[str, int]]:
        """The memcg's kernel files by name: v1 family, v2 family, or both (`family` None)."""
        v1: dict[str, int | str | dict[str, int]] = {
            "memory.usage_in_bytes": memcg.usage,
            "memory.max_usage_in_bytes": memcg.max_usage,
            "memory.limit_in_bytes": memcg.max_pages * PAGE_SIZE,
            "memory.failcnt": memcg.failcnt,
            "memory.oom_control": {
                "oom_kill_disable": int(memcg.oom_kill_disable),
                "under_oom": int(memcg.under_oom),
                "oom_kill": memcg.oom_kill,
            },
        }
        v2: dict[str, int | str | dict[str, int]] = {
            "memory.current": memcg.usage,
            "memory.max": "max" if memcg.limit is None else memcg.limit,
            "memory.high": "max" if memcg.high is None else memcg.high,
            "memory.peak": memcg.max_usage,
            "memory.events": dict(memcg.events),
            "memory.events.local": dict(memcg.events_local),
        }
        if family == "v1":
            return v1
        if family == "v2":
            return v2
        return v1 | v2


def _group_by_cgroup(processes: Iterable[MemProcess]) -> dict[str, list[MemProcess]]:
    """Alive processes by memcg path, keeping the given (attach) order within each."""
    by_memcg: dict[str, list[MemProcess]] = {}
    for process in processes:
        if process.alive:
            by_memcg.setdefault(process.cgroup, []).append(process)
    return by_memcg
