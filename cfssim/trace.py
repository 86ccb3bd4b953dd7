"""Recording: growable typed columns during a run, numpy arrays after it.

A `Recorder` appends to `array.array` buffers (typed, contiguous, amortised O(1) growth — the
"growable numpy column": `numpy.frombuffer` views them without a copy); index columns are
32-bit while recording (`NARROW_COLUMNS`). `Recorder.freeze()` gives a
`Trace`: named numpy tables saved as one compact ``trace.npz`` beside ``result.json``.

Tables (all times int ns, task/cgroup/cpu are indices into `Trace.tasks` / `Trace.cgroups`):

====================  =========================================================================
``segments``          cpu, task, start, end — a task ran on a CPU for [start, end)
``wakeups``           task, cpu, time, latency, waker — woken at `time`, first ran `latency` ns
                      later; `waker`: the task running on `cpu` when it was woken, whose
                      context the wakeup is traced in (-1: idle, or not known)
``migrations``        task, time, src, dst
``throttles``         cgroup, cpu, start, end — the cgroup's queue on `cpu` was throttled
``periods``           cgroup, start, period, usage, throttled, quota — one bandwidth period: its
                      length, CPU time the group used in it, whether anything was throttled at
                      its end (0/1), the quota in force (-1: none)
``memory``            cgroup, time, usage, limit — usage after each change (bytes; limit -1: none)
``kills``             task, cgroup, time, reason — 0 = OOM kill, 1 = group OOM kill, 2 = event
``vruntime``          task, time, vruntime — sampled when the task is put back or goes to sleep
====================  =========================================================================
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: table name → column names (every column is int64).
TABLES: dict[str, tuple[str, ...]] = {
    "segments": ("cpu", "task", "start", "end"),
    "wakeups": ("task", "cpu", "time", "latency", "waker"),
    "migrations": ("task", "time", "src", "dst"),
    "throttles": ("cgroup", "cpu", "start", "end"),
    "periods": ("cgroup", "start", "period", "usage", "throttled", "quota"),
    "memory": ("cgroup", "time", "usage", "limit"),
    "kills": ("task", "cgroup", "time", "reason"),
    "vruntime": ("task", "time", "vruntime"),
}

KILL_REASONS = ("oom_kill", "oom_group_kill", "killed")

#: columns holding indices or flags (CPU, task, cgroup, 0/1, reason), recorded as 32-bit
#: integers during a run — a segment costs 24 bytes instead of 32; `Recorder.freeze` widens
#: every column to int64
NARROW_COLUMNS = frozenset({"cpu", "task", "src", "dst", "cgroup", "throttled", "reason"})


def typecode(column: str) -> str:
    """The `array` typecode a column is recorded in ('i': int32, 'q': int64)."""
    return "i" if column in NARROW_COLUMNS else "q"


class Recorder:
    """Append-only recording of a run, one `array` per column (int64, or int32 for indices).

    Hot paths call the bound ``append`` methods directly, e.g.
    ``rec.segment(cpu, task, start, end)``.
    """

    def __init__(self) -> None:
        self.columns: dict[str, tuple[array, ...]] = {
            name: tuple(array(typecode(col)) for col in cols) for name, cols in TABLES.items()
        }
        seg = self.columns["segments"]
        self._seg = tuple(col.append for col in seg)
        self._vrt = tuple(col.append for col in self.columns["vruntime"])

    def segment(self, cpu: int, task: int, start: int, end: int) -> None:
        if end > start:
            a, b, c, d = self._seg
            a(cpu)
            b(task)
            c(start)
            d(end)

    def vruntime(self, task: int, time: int, vruntime: int) -> None:
        a, b, c = self._vrt
        a(task)
        b(time)
        c(vruntime)

    def add(self, table: str, *values: int) -> None:
        """Append one row to `table` (columns in `TABLES` order)."""
        for col, value in zip(self.columns[table], values, strict=True):
            col.append(value)

    def freeze(self, tasks: Iterable[str], cgroups: Iterable[str], cpus: int) -> Trace:
        tables = {
            name: {
                col: (
                    np.frombuffer(buf, dtype=buf.typecode).astype(np.int64)
                    if buf
                    else np.zeros(0, np.int64)
                )
                for col, buf in zip(TABLES[name], bufs, strict=True)
            }
            for name, bufs in self.columns.items()
        }
        return Trace(tasks=list(tasks), cgroups=list(cgroups), cpus=cpus, tables=tables)


@dataclass
class Trace:
    """The recorded tables of one run (simulated or measured), as numpy columns."""

    tasks: list[str]
    cgroups: list[str]
    cpus: int
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def __getitem__(self, table: str) -> dict[str, np.ndarray]:
        return self.tables.get(table) or {col: np.zeros(0, np.int64) for col in TABLES[table]}

    def digest(self) -> str:
        """A SHA-256 over every column: equal digests mean byte-identical traces."""
        import hashlib

        h = hashlib.sha256()
        h.update("\0".join(self.tasks).encode())
        h.update("\0".join(self.cgroups).encode())
        for name in TABLES:
            for col in TABLES[name]:
                h.update(self[name][col].astype("<i8").tobytes())
        return h.hexdigest()

    def save(self, path: str | Path) -> None:
        """Write one compressed ``.npz`` (``table.column`` arrays plus the name lists)."""
        arrays: dict[str, np.ndarray] = {
            f"{name}.{col}": values
            for name, cols in self.tables.items()
            for col, values in cols.items()
        }
        arrays["__tasks__"] = np.array(self.tasks, dtype=str)
        arrays["__cgroups__"] = np.array(self.cgroups, dtype=str)
        arrays["__cpus__"] = np.array([self.cpus])
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        with np.load(path, allow_pickle=False) as data:
            tables: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                if key.startswith("__"):
                    continue
                name, col = key.split(".", 1)
                tables.setdefault(name, {})[col] = data[key]
            return cls(
                tasks=[str(t) for t in data["__tasks__"]],
                cgroups=[str(c) for c in data["__cgroups__"]],
                cpus=int(data["__cpus__"][0]),
                tables=tables,
            )


# ---- CPU time from the run segments (the one derivation: summary, export, report) -------------
def covered_ns(start: np.ndarray, end: np.ndarray, at: np.ndarray) -> np.ndarray:
    """For each time in `at`: total ns of the intervals [start, end) lying before it.

    Σ over intervals of clip(t − start, 0, end − start)
    = Σ_{start<t} (t − start) − Σ_{end<t} (t − end): two sorted prefix sums, so every bandwidth
    period or bucket of a long run is summed in O((intervals + len(at)) log intervals).
    """
    starts, ends = np.sort(start), np.sort(end)
    prefix_s = np.concatenate([[0], np.cumsum(starts)])
    prefix_e = np.concatenate([[0], np.cumsum(ends)])
    n_s = np.searchsorted(starts, at, side="left")
    n_e = np.searchsorted(ends, at, side="left")
    return (at * n_s - prefix_s[n_s]) - (at * n_e - prefix_e[n_e])


def group_usage_curve(trace: Trace, tids: np.ndarray, at: np.ndarray) -> np.ndarray:
    """CPU time (ns) the tasks `tids` (trace indices) received in [0, t) for every t in `at`:
    `covered_ns` of their run segments."""
    seg = trace["segments"]
    mask = np.isin(seg["task"], tids)
    return covered_ns(seg["start"][mask], seg["end"][mask], at)


def cpu_time_per_cpu(trace: Trace, ncpus: int, tids: np.ndarray | None = None) -> np.ndarray:
    """ns each of `ncpus` CPUs spent running the tasks `tids` (all tasks when None)."""
    seg = trace["segments"]
    cpu, length = seg["cpu"], seg["end"] - seg["start"]
    if tids is not None:
        mask = np.isin(seg["task"], tids)
        cpu, length = cpu[mask], length[mask]
    out = np.zeros(ncpus, dtype=np.int64)
    np.add.at(out, cpu, length)
    return out
