"""Per-task states over time, derived from the trace: running, waiting, throttled, sleeping, OOM.

For each task, between its birth (``forks``; else its first wakeup or run) and its end (exit or
kill time, else the end of the run):

- **running**: its run segments;
- **waiting** (runnable, not running): from a wakeup to the first run after it (``wakeups``:
  time, time + latency), and every gap between two segments with no wakeup in it — the task was
  switched out while runnable (preempted) and queued until it ran again; after its last segment,
  waiting until the end unless it blocked there (``blocks``);
- **throttled**: waiting while its cgroup or an ancestor is throttled on the CPU it waits on (the
  CPU of its next segment, else of its last: a throttled queue's tasks do not migrate);
- **OOM wait**: sleeping inside a memcg charge, from an ``oom_waits`` begin row to its end row
  (or to the task's end);
- **sleeping**: the rest of its life.

A task woken after its last segment that never ran before the run ended shows as sleeping to the
end (the trace records a wakeup when the woken task first runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..result import Result
from ..trace import Trace
from .common import ancestors, task_cgroups

#: state codes (index) and names
STATES = ("running", "waiting", "throttled", "sleeping", "oom")
RUNNING, WAITING, THROTTLED, SLEEPING, OOM = range(len(STATES))


@dataclass(frozen=True)
class TaskStates:
    """Disjoint state intervals [start, end) in ns, sorted by (task, start)."""

    task: np.ndarray
    state: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def of(self, task: int) -> list[tuple[str, int, int]]:
        """(state name, start, end) of one task, in time order."""
        rows = np.flatnonzero(self.task == task)
        return [(STATES[int(self.state[i])], int(self.start[i]), int(self.end[i])) for i in rows]


def task_states(result: Result) -> TaskStates | None:
    """The state intervals of every task of `result` (None without run segments)."""
    trace = result.trace
    if trace is None or not len(trace["segments"]["start"]):
        return None
    ntasks = len(trace.tasks)
    seg = trace["segments"]
    order = np.lexsort((seg["start"], seg["task"]))
    task, cpu = seg["task"][order], seg["cpu"][order]
    start, end = seg["start"][order], seg["end"][order]
    first = np.r_[True, task[1:] != task[:-1]]
    last = np.r_[task[1:] != task[:-1], True]
    death = _ends(result, trace, ntasks)
    birth = _births(trace, ntasks, task[first], start[first])

    # the gap before each segment: from the previous segment's end (or birth) to its start
    gap_lo = np.where(first, birth[task], np.r_[0, end[:-1]])
    gap_hi = start
    # the gap after each task's last segment, to its end, unless it blocked there
    tail = np.flatnonzero(last)
    blocked = _has_event_in(trace["blocks"], task[tail], end[tail], death[task[tail]])
    tail_lo, tail_hi = end[tail], death[task[tail]]
    gaps_task = np.r_[task, task[tail]]
    gaps_cpu = np.r_[cpu, cpu[tail]]
    gaps_lo, gaps_hi = np.r_[gap_lo, tail_lo], np.r_[gap_hi, tail_hi]
    gaps_hi = np.maximum(gaps_lo, gaps_hi)
    runnable_tail = np.r_[np.ones(len(task), dtype=bool), ~blocked]
    wake = _wakeup_in(trace["wakeups"], gaps_task, gaps_lo, gaps_hi)
    woken = wake >= 0
    # in a gap with a wakeup: sleeping until it, waiting after; without: waiting throughout
    # (a preemption), or — after the last segment, when the task blocked — sleeping throughout
    wait_lo = np.where(woken, wake, gaps_lo)
    sleeping = woken | ~runnable_tail
    sleep_hi = np.where(woken, wake, gaps_hi)
    wait_rows = woken | runnable_tail

    pieces = [
        (task, np.full(len(task), RUNNING), start, end),
        _throttled_split(
            trace, result, gaps_task[wait_rows], gaps_cpu[wait_rows],
            wait_lo[wait_rows], gaps_hi[wait_rows],
        ),
        _oom_split(trace, gaps_task[sleeping], gaps_lo[sleeping], sleep_hi[sleeping], death),
    ]  # fmt: skip
    # tasks that never ran: sleeping (or in OOM wait) from birth to end, when born at all
    never = np.setdiff1d(np.flatnonzero(birth < death), task)
    if len(never):
        pieces.append(_oom_split(trace, never, birth[never], death[never], death))
    return _collect(pieces)


def _ends(result: Result, trace: Trace, ntasks: int) -> np.ndarray:
    """Per task: when it ended (exit or kill), else the end of the run."""
    death = np.full(ntasks, max(result.duration_ns, int(trace["segments"]["end"].max())))
    kills = trace["kills"]
    valid = (kills["task"] >= 0) & (kills["task"] < ntasks)
    np.minimum.at(death, kills["task"][valid], kills["time"][valid])
    for index, name in enumerate(trace.tasks):
        exit_info = result.task_figure(name, "exit")
        if isinstance(exit_info, dict) and isinstance(exit_info.get("time_ns"), int):
            death[index] = min(death[index], exit_info["time_ns"])
    return death


def _births(trace: Trace, ntasks: int, ran: np.ndarray, first_run: np.ndarray) -> np.ndarray:
    """Per task: its fork time, else its first wakeup or run; tasks never seen: int64 max."""
    birth = np.full(ntasks, np.iinfo(np.int64).max)
    birth[ran] = first_run
    for table in (trace["wakeups"], trace["forks"]):
        valid = (table["task"] >= 0) & (table["task"] < ntasks)
        np.minimum.at(birth, table["task"][valid], table["time"][valid])
    return birth


def _keys(task: np.ndarray, time: np.ndarray, span: int) -> np.ndarray:
    return task.astype(np.int64) * span + time


def _wakeup_in(
    wakeups: dict[str, np.ndarray], task: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Per gap (task, [lo, hi]): the latest wakeup time of the task in it, -1 if none."""
    if not len(wakeups["time"]) or not len(task):
        return np.full(len(task), -1, dtype=np.int64)
    span = int(max(hi.max(), wakeups["time"].max())) + 2
    keys = np.sort(_keys(wakeups["task"], wakeups["time"], span))
    at = np.searchsorted(keys, _keys(task, hi, span), side="right") - 1
    found = keys[at.clip(min=0)]
    inside = (at >= 0) & (found >= _keys(task, lo, span))
    return np.where(inside, found - task.astype(np.int64) * span, -1)


def _has_event_in(
    table: dict[str, np.ndarray], task: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Per (task, [lo, hi]): whether `table` has a row of the task in it."""
    return _wakeup_in(table, task, lo, hi) >= 0


def _split(
    start: np.ndarray, end: np.ndarray, cut_start: np.ndarray, cut_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intervals [start, end) cut by disjoint sorted [cut_start, cut_end): (owner, lo, hi) of
    the pieces inside the cuts, then of the pieces outside them."""
    i0 = np.searchsorted(cut_end, start, side="right")
    i1 = np.searchsorted(cut_start, end, side="left")
    count = (i1 - i0).clip(min=0)
    owner = np.repeat(np.arange(len(start)), count)
    k = i0[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    in_lo = np.maximum(start[owner], cut_start[k]) if len(owner) else start[:0]
    in_hi = np.minimum(end[owner], cut_end[k]) if len(owner) else end[:0]
    keep = in_hi > in_lo
    owner, in_lo, in_hi = owner[keep], in_lo[keep], in_hi[keep]
    # the rest: [start, first cut), [cut end, next cut start), …, [last cut end, end)
    everyone = np.arange(len(start))
    lo_owner, lo = np.r_[everyone, owner], np.r_[start, in_hi]
    hi_owner, hi = np.r_[everyone, owner], np.r_[end, in_lo]
    by_lo, by_hi = np.lexsort((lo, lo_owner)), np.lexsort((hi, hi_owner))
    out_owner, out_lo, out_hi = lo_owner[by_lo], lo[by_lo], hi[by_hi]
    keep = out_hi > out_lo
    return owner, in_lo, in_hi, out_owner[keep], out_lo[keep], out_hi[keep]


def merge_intervals(
    start: np.ndarray, end: np.ndarray, tolerance: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as disjoint sorted intervals, closing gaps of at most
    `tolerance` ns."""
    if not len(start):
        return start, end
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(end)
    new = np.r_[True, start[1:] > reach[:-1] + tolerance]
    ends = np.r_[reach[np.flatnonzero(new)[1:] - 1], reach[-1]]
    return start[new], ends


Pieces = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _throttled_split(
    trace: Trace,
    result: Result,
    task: np.ndarray,
    cpu: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> Pieces:
    """Waiting intervals, the parts where the task's cgroup (or an ancestor) was throttled on
    its CPU marked throttled."""
    state = np.full(len(task), WAITING)
    thr = trace["throttles"]
    if not len(thr["start"]) or not len(task):
        return task, state, lo, hi
    paths = task_cgroups(result)
    names = sorted(set(paths))
    group = np.array([names.index(p) for p in paths], dtype=np.int64)[task]
    index = {path: i for i, path in enumerate(trace.cgroups)}
    out: list[Pieces] = []
    rest = np.ones(len(task), dtype=bool)
    # one pass per (cgroup, CPU) pair that has waiting intervals, rows found by sorting once
    key = group * (int(cpu.max()) + 1) + cpu
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        rows = order[a:b]
        path, c = names[int(group[rows[0]])], int(cpu[rows[0]])
        lineage = [index[p] for p in ancestors(path) if p in index]
        mine = np.isin(thr["cgroup"], lineage) & (thr["cpu"] == c)
        if not mine.any():
            continue
        cut_lo, cut_hi = merge_intervals(thr["start"][mine], thr["end"][mine])
        o, x, y, oo, ox, oy = _split(lo[rows], hi[rows], cut_lo, cut_hi)
        out.append((task[rows][o], np.full(len(o), THROTTLED), x, y))
        out.append((task[rows][oo], np.full(len(oo), WAITING), ox, oy))
        rest[rows] = False
    out.append((task[rest], state[rest], lo[rest], hi[rest]))
    return _concat(out)


def _oom_split(
    trace: Trace, task: np.ndarray, lo: np.ndarray, hi: np.ndarray, death: np.ndarray
) -> Pieces:
    """Sleeping intervals, the parts inside an OOM wait of the task marked OOM."""
    waits = trace["oom_waits"]
    if not len(waits["time"]) or not len(task):
        return task, np.full(len(task), SLEEPING), lo, hi
    order = np.lexsort((-waits["begin"], waits["time"], waits["task"]))
    w_task, w_time, w_begin = waits["task"][order], waits["time"][order], waits["begin"][order]
    begins = np.flatnonzero(w_begin == 1)
    # each begin row pairs with the next row of the same task (its end), else the task's end
    nxt = begins + 1
    paired = (nxt < len(w_task)) & (w_task[nxt.clip(max=len(w_task) - 1)] == w_task[begins])
    wait_end = np.where(paired, w_time[nxt.clip(max=len(w_task) - 1)], death[w_task[begins]])
    out: list[Pieces] = []
    rest = ~np.isin(task, w_task[begins])
    out.append((task[rest], np.full(int(rest.sum()), SLEEPING), lo[rest], hi[rest]))
    for t in np.unique(w_task[begins]).tolist():
        rows = np.flatnonzero(task == t)
        mine = w_task[begins] == t
        o, a, b, oo, oa, ob = _split(
            lo[rows], hi[rows], *merge_intervals(w_time[begins][mine], wait_end[mine])
        )
        out.append((task[rows][o], np.full(len(o), OOM), a, b))
        out.append((task[rows][oo], np.full(len(oo), SLEEPING), oa, ob))
    return _concat(out)


def _concat(pieces: list[Pieces]) -> Pieces:
    return (
        np.concatenate([p[0] for p in pieces]).astype(np.int64),
        np.concatenate([p[1] for p in pieces]).astype(np.int8),
        np.concatenate([p[2] for p in pieces]).astype(np.int64),
        np.concatenate([p[3] for p in pieces]).astype(np.int64),
    )


def _collect(pieces: list[Pieces]) -> TaskStates:
    task, state, start, end = _concat(pieces)
    keep = end > start
    task, state, start, end = task[keep], state[keep], start[keep], end[keep]
    order = np.lexsort((start, task))
    return TaskStates(task[order], state[order], start[order], end[order])
