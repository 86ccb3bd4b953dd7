# mypy: disable-error-code="misc"
# (a Machine mixin: its methods annotate `self: Machine`, which mypy flags as [misc])
"""`Cycle`: a CPU that round-robins the same CPU hogs again and again, replayed instead of
re-derived — the scheduler's fast-forward.

A CPU whose queued tasks all run forever (``run: forever``), with no RT task, no bandwidth limit
and a host whose ticks carry no per-tick jitter or latency, ends up scheduling one sequence of
context switches over and over: N hogs at equal weight take turns, each period of the cycle
moving every clock, vruntime and counter on by the same amount. At each of its round-robin
switches (`Machine.switch_round_robin`) such a CPU is watched (`Cycle.watch`: who runs, when its
timer fires next); once those tokens repeat it is snapshotted (`Cycle.observe`): every field
of its `Rq`, of the `CfsRunQueue` levels its tasks sit on (their trees too), of its tasks and of
their entities, and the trace rows and timer expiry the switch produced. When the last two
periods of ``p`` switches show the same structure (who runs, tree order, buddies, containers)
with every number moved by one fixed increment per period — clocks (ns) by the period's length,
a whole number of ticks; the vruntimes, deadlines and keys of one queue by one amount; counters
by any amount; everything else not at all — the CPU *replays*: each expiry of its timer appends
the rows the cycle predicts (the reference period's, moved ``k`` periods on) and re-arms the
timer where the cycle says, touching no scheduling state.

Why this is exact: the scheduler decides from differences — of times, of the vruntimes within
one queue, of ``sum_exec`` and the counters' own values never — and from the tick grid, which a
whole number of ticks leaves unchanged. So a state moved by the period's increments evolves into
the next period moved by them too (the decisions are translation-equivariant), and two periods
that agree prove every later one. The replay re-arms the timer exactly as the switch would
(one ``hrtimer_start``, one event id — a switch that scheduled anything else is not replayed),
so the calendar's order among all events — and with it the trace's row order — is the plain
path's.

Nothing else may look at a replaying CPU: its fields hold the state of the period it started
from. A replay therefore runs only up to the *bound* (`foreign_bound`): the first pending event
that is neither a switch of a quiet CPU (`Replaying.quiet_cpu`: hogs only, nothing that could
reach another CPU, such as a DELAY_DEQUEUE entity's dequeue) nor a periodic balance (which
reads loads only, constant here; `LoadBalancing.refresh_group_weights` and `sched_balance_rq`
call `Machine.leave_replays` before they change anything).
Before its first expiry at or past the bound the CPU writes the predicted state back
(`Cycle.leave`) and switches for real again; the next real switch that lands where the cycle
predicted resumes the replay at once. A resume the bound refuses (another CPU's event comes
before this one's next expiry) keeps the cycle, but each check costs a snapshot and a scan of
every pending event: refusals in a row leave a doubling number of switches unchecked
(`Cycle.refuse`), and a cycle lost after refusals in a row backs the CPU off like a failed
search (`Cycle.lost`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mypy_extensions import trait
from sortedcontainers import SortedList

from ..hrtimer import scheduled_events
from .policy import NEVER
from .runqueue import count_in

if TYPE_CHECKING:
    from .core import Machine, Rq
    from .entity import SchedEntity
    from .runqueue import CfsRunQueue

#: the longest period (switches) looked for
MAX_PERIOD = 64
#: the most tasks a CPU may hold for its switches to be snapshotted
MAX_TASKS = 64
#: switches a CPU waits before looking for a cycle again after a failed search (doubling, capped)
FIRST_BACKOFF = 16
MAX_BACKOFF = 4096
#: replayed switches that repay a search (its snapshots cost a few switches each): a replay
#: cut shorter makes the CPU wait out its back-off before watching again
PAYOFF = 64
#: the most switches a kept cycle lets pass unchecked after refused resumes in a row (the
#: pause doubling from 1 after the second: `Cycle.refuse`)
MAX_REFUSED_PAUSE = 64
#: refused resumes in a row after which losing the kept cycle backs the CPU off (`Cycle.lost`)
REFUSALS_UNPAID = 2

#: fields that are clocks (ns): a period moves them by its length
TIME_FIELDS = frozenset({"exec_start", "seg_start", "last_fire", "wait_start", "last_ran"})
#: counters no decision reads as such (only their differences): any increment
COUNTER_FIELDS = frozenset(
    {"sum_exec", "prev_sum_exec", "run_delay", "pcount", "nvcsw", "nivcsw", "busy", "inserted"}
)
#: fields the snapshot leaves out: the tree and each entity's node in it (snapshotted as the
#: tree), the CPU's timers (re-armed by the replay itself), back references, the search's own
#: counters, and what the periodic balancer keeps on the CPU (``nr_balance_failed``: written by
#: a balance that moves nothing while the CPU replays, never by a switch)
SKIPPED_FIELDS = frozenset(
    {
        "tree",
        "node",
        "timer",
        "settle_timer",
        "balance_timer",
        "server_timer",
        "sim",
        "acct",
        "cycle",
        "cycle_wait",
        "cycle_backoff",
        "nr_balance_failed",
    }
)

# kinds of a numeric field
_TIME, _VIRTUAL, _COUNTER, _FIXED = range(4)


class Snapshot:
    """One CPU's state right after a switch: numbers (``nums``), the rest (``refs``), the
    trace rows the switch appended (column index, value) and the timer's expiry (ns)."""

    __slots__ = ("expiry", "nums", "refs", "rows", "time")

    def __init__(
        self, nums: list[int], refs: list[Any], rows: list[tuple[int, int]], expiry: int, time: int
    ) -> None:
        self.nums = nums
        self.refs = refs
        self.rows = rows
        self.expiry = expiry
        self.time = time


class Layout:
    """Where a CPU's state lives: the (object, attribute) slots holding numbers and those
    holding anything else, the per-CPU cpuacct cells, and the queues whose trees count.
    A snapshot's numbers are the slots', then the cells', then each tree's length, then each
    tree's nodes as (key, insertion) pairs; its other values are the slots', then each tree's
    entities."""

    __slots__ = (
        "cells", "entities", "key", "kinds", "num_slots", "queues", "ref_slots", "virtual_of",
    )  # fmt: skip

    def __init__(self, rq: Rq, virtual: frozenset[str]) -> None:
        entities = {id(se): se for se in walk(rq)}
        queues: list[CfsRunQueue] = [rq.cfs]
        for se in entities.values():
            if se.rq_of is not None and se.rq_of not in queues:
                queues.append(se.rq_of)
        cells = {id(usage): usage for task in rq.tasks.values() for usage in task.acct}
        self.key = layout_key(rq)
        self.queues = queues
        self.entities = list(entities.values())
        self.cells = list(cells.values())
        self.num_slots: list[tuple[Any, str]] = []
        self.ref_slots: list[tuple[Any, str]] = []
        self.kinds: list[int] = []
        self.virtual_of: list[int] = []  # per number: the index of its queue (virtual), or -1
        for obj in (rq, *queues, *self.entities, *rq.tasks.values()):
            for name in field_names(obj):
                if name in SKIPPED_FIELDS:
                    continue
                if type(getattr(obj, name)) is int:
                    self.num_slots.append((obj, name))
                    self.kinds.append(_kind(name, virtual))
                    self.virtual_of.append(_queue_of(obj, name, queues, virtual))
                else:
                    self.ref_slots.append((obj, name))
        for _ in self.cells:
            self.kinds.append(_COUNTER)
            self.virtual_of.append(-1)
        for _ in queues:  # the trees' lengths
            self.kinds.append(_FIXED)
            self.virtual_of.append(-1)

    def take(self, machine: Machine, rq: Rq, rows: list[tuple[int, int]]) -> Snapshot | None:
        """The CPU's state now, or None when its layout no longer fits (another set of
        tasks, queues or entities, or a number became something else)."""
        if layout_key(rq) != self.key:
            return None
        nums = [getattr(obj, name) for obj, name in self.num_slots]
        for value in nums:
            if type(value) is not int:
                return None
        cpu = rq.cpu
        nums.extend([cell[cpu] for cell in self.cells])
        nums.extend([len(queue.tree) for queue in self.queues])
        refs: list[Any] = [getattr(obj, name) for obj, name in self.ref_slots]
        for queue in self.queues:
            for key, inserted, se in queue.tree:
                nums.append(key)
                nums.append(inserted)
                refs.append(se)
        timer = rq.timer
        expiry = timer.expires if timer.active else -1
        return Snapshot(nums, refs, rows, expiry, machine.now)


def field_names(obj: Any) -> tuple[str, ...]:
    """The attributes of `obj`: a native class's (mypyc, ``__mypyc_attrs__``), its
    ``__slots__``, or its ``__dict__``'s."""
    names = getattr(type(obj), "__mypyc_attrs__", None) or getattr(obj, "__slots__", None)
    return tuple(names) if names else tuple(vars(obj))


def walk(rq: Rq) -> Iterator[SchedEntity]:
    """Each task's entity on `rq` and every group entity above it (shared ones again)."""
    for task in rq.tasks.values():
        se: SchedEntity | None = task.se
        while se is not None:
            yield se
            se = se.parent


def period_limit(rq: Rq) -> int:
    """The longest period (switches) looked for on `rq`: a round robin of n tasks repeats
    after a few turns."""
    return min(MAX_PERIOD, 4 * len(rq.tasks))


def layout_key(rq: Rq) -> tuple[int, ...]:
    """What a `Layout` is built from: `rq`'s tasks' entities and their queues up the
    hierarchy, and the tasks' cpuacct lists (by identity)."""
    key = [ident for se in walk(rq) for ident in (id(se), id(se.rq_of))]
    key.extend(id(usage) for task in rq.tasks.values() for usage in task.acct)
    return tuple(key)


def holds_delayed(rq: Rq) -> bool:
    """Do `rq`'s queues hold an entity beyond its listed tasks' hierarchies — a sleeper (or
    a group emptied by one) kept queued by DELAY_DEQUEUE? Its dequeue at a later pick changes
    a group's load, and so other CPUs' group weights (`calc_group_shares`)."""
    entities = {id(se): se.rq_of for se in walk(rq)}
    queues = {id(queue): queue for queue in entities.values()}
    return sum(queue.nr_running for queue in queues.values()) != len(entities)  # type: ignore[union-attr]


def _kind(name: str, virtual: frozenset[str]) -> int:
    if name in TIME_FIELDS:
        return _TIME
    if name in virtual:
        return _VIRTUAL
    if name in COUNTER_FIELDS:
        return _COUNTER
    return _FIXED


def _queue_of(obj: Any, name: str, queues: list[CfsRunQueue], virtual: frozenset[str]) -> int:
    """The index in `queues` of the queue whose virtual time field `name` of `obj` is in."""
    if name not in virtual:
        return -1
    queue = obj if name == "min_vruntime" else obj.rq_of
    return queues.index(queue) if queue in queues else -1


def back_off(rq: Rq) -> None:
    """`rq`'s search failed or did not pay: wait out its back-off, and double it (capped)."""
    rq.cycle_wait = rq.cycle_backoff
    rq.cycle_backoff = min(MAX_BACKOFF, 2 * rq.cycle_backoff)


class Cycle:
    """One CPU's search for a cycle of round-robin switches, then its replay (module docstring).

    States: *learning* (snapshots accumulate), *replaying*, *left* (the state written back, the
    cycle kept: the next real switch that lands where it predicts resumes the replay; after
    resumes refused in a row, only one switch in a doubling number of them is checked)."""

    __slots__ = (
        "deltas",
        "events",
        "generation",
        "history",
        "k",
        "layout",
        "limit",
        "machine",
        "marks",
        "pause",
        "period",
        "phase",
        "probing",
        "reference",
        "refusals",
        "replayed",
        "replaying",
        "rows",
        "rq",
        "span",
        "steps",
        "tokens",
    )

    def __init__(self, machine: Machine, rq: Rq) -> None:
        self.machine = machine
        self.rq = rq
        #: built when probing begins (`watch`): most searches end before, cut by a decision
        #: that is not a round-robin switch (`Replaying.drop_cycle`)
        self.layout: Layout | None = None
        self.limit = period_limit(rq)
        self.history: list[Snapshot] = []
        #: per switch while watching: (who runs, when the timer fires next, ns from now)
        self.tokens: list[tuple[int, int]] = []
        self.probing = 0  # the period the tokens suggest, while its snapshots are taken
        self.marks: list[int] = []
        self.events = 0  # SimPy's event count before the switch (`scheduled_events`)
        self.period = 0  # switches per period, once found
        self.span = 0  # ns per period
        self.reference: list[Snapshot] = []  # the last verified period, switch by switch
        self.deltas: list[int] = []  # per number of a snapshot: its increment per period
        #: per switch of the period: its rows as (column, value in the reference, increment)
        self.rows: list[list[tuple[int, int, int]]] = []
        #: the same with each column's append, for the recorder's `generation` of arrays
        self.steps: list[list[tuple[Callable[[int], None], int, int]]] = []
        self.generation = -1
        self.k = 0  # periods past the reference
        self.phase = 0  # the switch of the period that came last
        self.replaying = False
        self.replayed = 0  # switches replayed since the last resume
        self.pause = 0  # switches left to pass unchecked while left (`refuse`)
        self.refusals = 0  # resumes refused in a row

    # ---- learning -------------------------------------------------------------------------
    def mark(self) -> None:
        """Before a switch that will be snapshotted (probing, or left and not pausing): note
        the trace columns' lengths (to read the switch's rows) and SimPy's event count."""
        if self.probing or (self.period and not self.pause):
            self.marks = [len(col) for col in self.machine.rec.column_list()]
            self.events = scheduled_events(self.machine.env)

    def observe(self) -> bool:
        """After a real round-robin switch: watch its token, or snapshot it and check the kept
        cycle or the period the tokens suggest. False when the search should stop (no cycle
        found, or the CPU no longer qualifies)."""
        if not self.probing and not self.period:
            return self.watch()
        if self.pause:  # left, resumes refused lately: this switch passes unchecked
            self.pause -= 1
            self.advance()
            return True
        if scheduled_events(self.machine.env) != self.events + 1:
            # the switch scheduled something besides its timer's re-arm (`HrTimer.start`): a
            # replay would not
            self.forget()
            return False
        rq = self.rq
        if self.period:  # left: resume if the switch landed where the cycle said
            self.advance()
            timer = rq.timer
            if (timer.expires if timer.active else -1) != self.expiry():
                return self.lost()  # (the cheap half of `matches`, before a snapshot)
        marks = self.marks
        rows = [
            (index, value)
            for index, col in enumerate(self.machine.rec.column_list())
            for value in col[marks[index] :]
        ]
        layout = self.layout
        assert layout is not None  # (built when probing began)
        snap = layout.take(self.machine, rq, rows)
        if snap is None:  # the CPU's tasks or hierarchy changed: watch it anew
            self.forget()
            return self.machine.may_learn(rq)
        if self.period:
            if not self.matches(snap):
                return self.lost()
            self.resume()
            return True
        history = self.history
        history.append(snap)
        if self.find_period():
            return True
        if len(history) < 2 * self.probing + 1:
            return True
        self.forget()  # the tokens repeated, the state did not
        return False

    def watch(self) -> bool:
        """Note the switch's token (cheap); when the last two periods of some length p show the
        same tokens, snapshot the next 2p + 1 switches (`probing`)."""
        rq = self.rq
        now = self.machine.now
        tokens = self.tokens
        last = (id(rq.curr), rq.timer.expires - now if rq.timer.active else -1)
        tokens.append(last)
        n = len(tokens)
        for p in range(1, min(self.limit, n // 2) + 1):
            if tokens[-1 - p] == last and tokens[-p:] == tokens[-2 * p : -p]:
                self.probing = p
                self.tokens = []
                layout = self.layout
                if layout is None or layout_key(rq) != layout.key:
                    self.layout = Layout(rq, self.machine.policy.virtual_fields)
                    self.limit = period_limit(rq)
                return True
        return n < 4 * self.limit

    def lost(self) -> bool:
        """The kept cycle no longer predicts the CPU: back to watching tokens — or, when its
        last `REFUSALS_UNPAID` or more resumes were refused, to the CPU's back-off (False: the
        search did not pay)."""
        unpaid = self.refusals >= REFUSALS_UNPAID
        self.forget()
        return not unpaid

    def forget(self) -> None:
        """Back to watching tokens: the snapshots and any kept cycle are dropped."""
        self.history = []
        self.tokens = []
        self.probing = 0
        self.period = 0
        self.pause = 0
        self.refusals = 0

    def find_period(self) -> bool:
        """Once 2p + 1 switches of the period p the tokens suggest are snapshotted, verify it;
        if it holds, replay."""
        p = self.probing
        if len(self.history) < 2 * p + 1 or not self.verify(p):
            return False
        self.start(p)
        return True

    def verify(self, p: int) -> bool:
        """Do the last 2p + 1 snapshots repeat with period p: the same structure and rows'
        columns, every number moved by one increment per period, of the kind its field
        allows (`increments_allowed`), and the period a whole number of ticks?"""
        history = self.history[-2 * p - 1 :]
        size = len(history[0].nums)
        if any(len(snap.nums) != size for snap in history):
            return False
        span = history[p].time - history[0].time
        if span <= 0 or span % self.machine.tick_ns:
            return False
        deltas = [b - a for a, b in zip(history[0].nums, history[p].nums, strict=True)]
        if not self.increments_allowed(deltas, span):
            return False
        for m in range(p, 2 * p + 1):
            old, new = history[m - p], history[m]
            if (
                new.time - old.time != span
                or new.expiry - old.expiry != span
                or len(old.rows) != len(new.rows)
                or any(a[0] != b[0] for a, b in zip(old.rows, new.rows, strict=True))
                or old.refs != new.refs
                or any(b - a != d for a, b, d in zip(old.nums, new.nums, deltas, strict=True))
            ):
                return False
        self.deltas = deltas
        self.span = span
        return True

    def increments_allowed(self, deltas: list[int], span: int) -> bool:
        """Clocks move by the period's length, each queue's virtual times (tree keys
        included) by one amount, counters (tree insertions included) forward, every other
        number not at all."""
        layout = self.layout
        assert layout is not None
        virtual: dict[int, int] = {}
        kinds = layout.kinds
        for index, kind in enumerate(kinds):
            delta = deltas[index]
            if kind == _TIME:
                if delta != span:
                    return False
            elif kind == _VIRTUAL:
                if not delta and self.protection_expired(index):
                    continue
                queue = layout.virtual_of[index]
                if queue < 0 or virtual.setdefault(queue, delta) != delta:
                    return False
            elif kind == _COUNTER:
                if delta < 0:
                    return False
            elif delta:
                return False
        lengths = self.history[-1].nums[len(kinds) - len(layout.queues) : len(kinds)]
        position = len(kinds)
        for queue, length in enumerate(lengths):
            for _ in range(length):
                key, inserted = deltas[position], deltas[position + 1]
                if virtual.setdefault(queue, key) != key or inserted < 0:
                    return False
                position += 2
        return position == len(deltas)

    def protection_expired(self, index: int) -> bool:
        """Is number `index` an entity's ``vprot`` already at or below its vruntime? A lone
        group entity kept running is never picked again, so its protection
        (``protect_slice``: vprot beyond vruntime) ended for good and its vprot stays put."""
        layout = self.layout
        assert layout is not None
        obj, name = layout.num_slots[index]
        if name != "vprot":
            return False
        nums = self.history[-1].nums
        vruntime = layout.num_slots.index((obj, "vruntime"))
        return nums[index] <= nums[vruntime]

    # ---- replaying ------------------------------------------------------------------------
    def start(self, p: int) -> None:
        """Period `p` verified on the last two periods: the last one becomes the reference,
        each of its rows kept with its increment per period (from the period before)."""
        history = self.history
        self.period = p
        self.probing = 0
        self.reference = history[-p:]
        self.rows = [
            [
                (index, value, value - before)
                for (index, value), (_, before) in zip(
                    ref.rows, history[-2 * p + j].rows, strict=True
                )
            ]
            for j, ref in enumerate(self.reference)
        ]
        self.k = 0
        self.phase = p - 1
        if self.bind() and all(self.steps):  # (a switch with no rows is not replayed)
            self.resume()
        else:
            self.forget()

    def bind(self) -> bool:
        """The replay's rows as (column append, value, increment) for the recorder's current
        arrays. False, nothing bound, when a row whose value moves is not in an int64 column
        (one that is never overflows; a widened column stays int64)."""
        rec = self.machine.rec
        columns = rec.column_list()
        if any(
            delta and columns[index].typecode != "q"
            for rows in self.rows
            for index, _, delta in rows
        ):
            return False
        self.generation = rec.generation
        self.steps = [
            [(columns[index].append, value, delta) for index, value, delta in rows]
            for rows in self.rows
        ]
        return True

    def resume(self) -> None:
        """Replay from the CPU's next expiry if the bound lets it through; else the cycle is
        kept for a later switch, which `refuse` may make wait."""
        self.history = []
        if self.machine.may_replay(self.rq):
            self.replaying = True
            self.replayed = 0
            self.refusals = 0
        else:
            self.refuse()

    def refuse(self) -> None:
        """A resume was refused (the bound comes before the CPU's next expiry): the next
        switches, 0, 1, 3, 7, … (capped) of them as refusals repeat, pass unchecked — each
        check costs a snapshot and the bound's scan of every pending event."""
        self.refusals += 1
        self.pause = min(MAX_REFUSED_PAUSE, (1 << min(self.refusals - 1, 16)) - 1)

    def advance(self) -> None:
        """The position moves on by one switch."""
        self.phase += 1
        if self.phase == self.period:
            self.phase = 0
            self.k += 1

    def expiry(self) -> int:
        """The timer's expiry (ns) the cycle predicts after its position's switch."""
        return self.reference[self.phase].expiry + self.k * self.span

    def predicted(self) -> tuple[list[int], Snapshot]:
        """The numbers the cycle predicts for its position, and the reference snapshot."""
        ref = self.reference[self.phase]
        k = self.k
        return [value + k * delta for value, delta in zip(ref.nums, self.deltas, strict=True)], ref

    def matches(self, snap: Snapshot) -> bool:
        """Does `snap` hold what the cycle predicts? (Its expiry, `snap.expiry`, was checked
        against `expiry` before the snapshot was taken.)"""
        nums, ref = self.predicted()
        return nums == snap.nums and ref.refs == snap.refs

    def step(self) -> None:
        """The CPU's timer fired at a switch the cycle predicts: append the switch's rows and
        re-arm the timer (leaving first if the next expiry reaches the bound)."""
        self.advance()
        self.replayed += 1
        machine = self.machine
        if machine.rec.generation != self.generation:  # a column was widened meanwhile
            bound = self.bind()
            assert bound, "a widened column is int64 for good"
        k = self.k
        for append, value, delta in self.steps[self.phase]:
            append(value + k * delta)
        machine.context_switches += 1
        machine.replayed_switches += 1
        expiry = self.reference[self.phase].expiry + k * self.span  # (`expiry`, inlined)
        if expiry >= machine.replay_bound:
            self.leave()
        self.rq.timer.start(expiry)

    def leave(self) -> None:
        """Write the state the cycle predicts for now into the CPU's objects; stop replaying
        (the cycle is kept for a resume)."""
        if not self.replaying:
            return
        self.replaying = False
        rq = self.rq
        if self.replayed < PAYOFF:  # cut short: the search cost more than it saved
            back_off(rq)
        else:
            rq.cycle_backoff = FIRST_BACKOFF
        nums, ref = self.predicted()
        layout = self.layout
        assert layout is not None
        for (obj, name), value in zip(layout.num_slots, nums, strict=False):
            setattr(obj, name, value)
        for (obj, name), ref_value in zip(layout.ref_slots, ref.refs, strict=False):
            setattr(obj, name, ref_value)
        cpu = rq.cpu
        position = len(layout.num_slots)
        for cell in layout.cells:
            cell[cpu] = nums[position]
            position += 1
        lengths = nums[position : position + len(layout.queues)]
        position += len(layout.queues)
        for se in layout.entities:
            se.node = None
        members = iter(ref.refs[len(layout.ref_slots) :])
        for queue, length in zip(layout.queues, lengths, strict=True):
            nodes = []
            for _ in range(length):
                se = next(members)
                node = (nums[position], nums[position + 1], se)
                se.node = node
                nodes.append(node)
                position += 2
            tree: SortedList = queue.tree
            tree.clear()
            tree.update(nodes)
            # the tree's slice counts (`CfsRunQueue.insert`): which slices wait depends on
            # who runs, and the dict (a reference) kept those of the replay's start
            queue.slices.clear()
            for _, _, se in nodes:
                count_in(queue.slices, se.slice, 1)


@trait  # mypyc: Machine's mixins must be traits (no multiple inheritance of native classes)
class Replaying:
    """Finding, running and bounding the CPUs' cycle replays (a `Machine` mixin)."""

    def observe_cycle(self: Machine, rq: Rq) -> None:
        """After a real round-robin switch on `rq`: feed its `Cycle`, or start one when the
        CPU qualifies and its back-off since the last failed search is over."""
        cycle = rq.cycle
        if rq.cycle_wait > 0:  # backing off: no watching, no cycle kept
            rq.cycle_wait -= 1
            if cycle is not None:
                cycle.forget()
            return
        if cycle is None:
            if self.may_learn(rq):
                rq.cycle = Cycle(self, rq)
            else:  # look again in a while, not at every switch
                rq.cycle_wait = FIRST_BACKOFF
            return
        if not cycle.observe():
            rq.cycle = None
            back_off(rq)

    def drop_cycle(self: Machine, rq: Rq) -> None:
        """`rq` decided something other than a round-robin switch (never while replaying: its
        timer only plays back): its search starts over."""
        rq.cycle = None
        rq.cycle_wait = 0

    def may_learn(self: Machine, rq: Rq) -> bool:
        """May `rq`'s switches be searched for a cycle: replay on, ticks without per-tick
        noise, few enough tasks to snapshot, and the CPU quiet (`quiet_cpu`)?"""
        ticks = self.ticks
        return (
            self.replay_enabled
            and ticks.latency is None
            and not any(ticks.jitter)
            and len(rq.tasks) <= MAX_TASKS
            and self.quiet_cpu(rq)
        )

    def quiet_cpu(self: Machine, rq: Rq) -> bool:
        """Does every expiry of `rq`'s timer end in a switch among its own tasks, touching
        nothing of another CPU? Its tasks all run forever, no RT task or fair server, no
        bandwidth limit on any level, no group weight or slice about to change, no entity kept
        queued by DELAY_DEQUEUE (`holds_delayed`), and no idle CPU that a busy one would kick
        (``nohz_balancer_kick``)."""
        if self.idle_rqs or rq.curr_rt or rq.rt.nr_running or rq.server.armed:
            return False
        if rq.settling is not None or rq.throttled_groups or rq.curr is None:
            return False
        for task in rq.tasks.values():
            if not task.forever or task.remaining is not None or task.throttled:
                return False
            if self.group_levels_stale(task):  # a quota on a level counts as stale
                return False
        return not holds_delayed(rq)

    def may_replay(self: Machine, rq: Rq) -> bool:
        """May `rq` replay from its next expiry? It must be quiet and that expiry must come
        before the bound (`foreign_bound`), which becomes the machine's replay bound."""
        timer = rq.timer
        if not timer.active or not self.quiet_cpu(rq):
            return False
        bound = self.foreign_bound(rq)
        if timer.expires >= bound:
            return False
        self.replay_bound = bound
        return True

    def foreign_bound(self: Machine, quiet: Rq) -> int:
        """The time of the first pending event that could read or change a replaying CPU:
        any SimPy event (the calendar's own wake-ups aside) and any machine timer other than
        a quiet CPU's scheduling timer (`quiet`'s: checked already) or a periodic balance
        (which leaves the replays first if it is to move anything: `sched_balance_rq`)."""
        bound = NEVER
        calendar = self.calendar
        local = {id(rq.balance_timer) for rq in self.rqs}
        local.update(
            id(rq.timer)
            for rq in self.rqs
            if rq is quiet or (rq.cycle is not None and rq.cycle.replaying) or self.quiet_cpu(rq)
        )
        for expires, _, seq, timer in calendar.heap:
            if expires < bound and timer._seq == seq and id(timer) not in local:
                bound = expires
        drain = calendar.drain
        for when, _, _, event in self.env._queue:
            if when < bound:
                callbacks = event.callbacks
                if not (callbacks and len(callbacks) == 1 and callbacks[0] == drain):
                    bound = int(when)
        return bound

    def leave_replays(self: Machine) -> None:
        """Write every replaying CPU's state back: something is about to read or change it."""
        for rq in self.rqs:
            cycle = rq.cycle
            if cycle is not None and cycle.replaying:
                cycle.leave()
