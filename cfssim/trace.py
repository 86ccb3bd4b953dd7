"""Recording: growable typed columns during a run, numpy arrays after it.

A `Recorder` appends to `array.array` buffers (typed, contiguous, amortised O(1) growth — the
"growable numpy column": `numpy.frombuffer` views them without a copy). `Recorder.freeze()` gives a
`Trace`: named numpy tables saved as one compact ``trace.npz`` beside ``result.json``.

Tables (all times int ns, task/cgroup/cpu are indices into `Trace.tasks` / `Trace.cgroups`):

====================  =========================================================================
``segments``          cpu, task, start, end — a task ran on a CPU for [start, end)
``wakeups``           task, cpu, time, latency — woken at `time`, first ran `latency` ns later
``migrations``        task, time, src, dst
``throttles``         cgroup, cpu, start, end — the cgroup's queue on `cpu` was throttled
``periods``           cgroup, start, period, usage, throttled, quota — one bandwidth period: its
                      length, CPU time the group used in it, whether anything was throttled at
                      its end (0/1), the quota in force (-1: none)
``memory``            cgroup, time, usage, limit — usage after each change (bytes; limit -1: none)
``kills``             task, cgroup, time, reason — 0 = OOM kill, 1 = group OOM kill, 2 = event
``vruntime``          task, time, vruntime — sampled when the task is put back or goes to sleep
``eevdf``             task, time, lag, deadline, eligible — EEVDF only, with each vruntime sample:
                      lag V − v as ``entity_lag`` clamps it (virtual ns; a dequeued task's kept
                      vlag), the absolute virtual deadline, eligible (0/1, ``entity_eligible``)
``forks``             task, time — first runnable (``wake_up_new_task``)
``blocks``            task, time — the task left the run queue (slept, waited, exited, was killed)
``oom_waits``         task, time, begin — a task blocks in a memcg charge waiting for the OOM
                      killer or for memory (begin 1), and returns from that wait (begin 0)
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
    "wakeups": ("task", "cpu", "time", "latency"),
    "migrations": ("task", "time", "src", "dst"),
    "throttles": ("cgroup", "cpu", "start", "end"),
    "periods": ("cgroup", "start", "period", "usage", "throttled", "quota"),
    "memory": ("cgroup", "time", "usage", "limit"),
    "kills": ("task", "cgroup", "time", "reason"),
    "vruntime": ("task", "time", "vruntime"),
    "eevdf": ("task", "time", "lag", "deadline", "eligible"),
    "forks": ("task", "time"),
    "blocks": ("task", "time"),
    "oom_waits": ("task", "time", "begin"),
}

#: the tables `Trace.digest` covers by default: those recorded before the per-task state and
#: EEVDF tables were added, so that the digests in tests/goldens keep their meaning
DIGEST_TABLES = (
    "segments", "wakeups", "migrations", "throttles", "periods", "memory", "kills", "vruntime",
)  # fmt: skip

KILL_REASONS = ("oom_kill", "oom_group_kill", "killed")


class Recorder:
    """Append-only recording of a run, one `array('q')` per column.

    Hot paths call the bound ``append`` methods directly, e.g.
    ``rec.segment(cpu, task, start, end)``.
    """

    def __init__(self) -> None:
        self.columns: dict[str, tuple[array, ...]] = {
            name: tuple(array("q") for _ in cols) for name, cols in TABLES.items()
        }
        seg = self.columns["segments"]
        self._seg = tuple(col.append for col in seg)
        self._vrt = tuple(col.append for col in self.columns["vruntime"])
        self._lag = tuple(col.append for col in self.columns["eevdf"])

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

    def lag(self, task: int, time: int, lag: int, deadline: int, eligible: int) -> None:
        a, b, c, d, e = self._lag
        a(task)
        b(time)
        c(lag)
        d(deadline)
        e(eligible)

    def add(self, table: str, *values: int) -> None:
        """Append one row to `table` (columns in `TABLES` order)."""
        for col, value in zip(self.columns[table], values, strict=True):
            col.append(value)

    def freeze(self, tasks: Iterable[str], cgroups: Iterable[str], cpus: int) -> Trace:
        tables = {
            name: {
                col: (np.frombuffer(buf, dtype=np.int64).copy() if buf else np.zeros(0, np.int64))
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

    def digest(self, every: bool = False) -> str:
        """A SHA-256 over the columns of `DIGEST_TABLES` (the goldens' figure), or with `every`
        over every table: equal digests mean byte-identical tables."""
        import hashlib

        h = hashlib.sha256()
        h.update("\0".join(self.tasks).encode())
        h.update("\0".join(self.cgroups).encode())
        for name in TABLES if every else DIGEST_TABLES:
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
