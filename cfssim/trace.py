"""Recording: growable typed columns during a run, numpy arrays after it.

A `Recorder` appends to `array.array` buffers (typed, contiguous, amortised O(1) growth — the
"growable numpy column": `numpy.frombuffer` views them without a copy). While recording, index
and flag columns are narrow (`NARROW_COLUMNS`: CPUs, tasks and cgroups int16, flags int8, EEVDF's
lag and deadline, a segment's length and a wakeup's latency int32) and a column widens (`WIDER`)
the first time a value does not fit, so nothing is lost; a segment is recorded as its length and
end, and one ``samples`` table records the ``vruntime`` and ``eevdf`` rows, which share their task
and time (`RECORDED`). A CFS preemption costs 16 + 18 bytes (segment, vruntime sample), an EEVDF
one 16 + 27. `Recorder.freeze()` gives a `Trace`: named int64 numpy tables
(`TABLES`) saved as one compact ``trace.npz`` beside ``result.json``.

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
    "wakeups": ("task", "cpu", "time", "latency", "waker"),
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

#: columns recorded narrower than int64 during a run, by `array` typecode: indices of CPUs,
#: tasks (the waker too) and cgroups int16 ('h'), flags and codes int8 ('b'), and the ``samples``
#: table's EEVDF lag and deadline offset int32 ('i', virtual ns: a few slices). Times, sizes and
#: vruntimes stay int64 ('q'). A value a column cannot hold widens it (`WIDER`).
NARROW_COLUMNS: dict[str, str] = {
    "cpu": "h",
    "src": "h",
    "dst": "h",
    "task": "h",
    "waker": "h",
    "cgroup": "h",
    "throttled": "b",
    "eligible": "b",
    "reason": "b",
    "begin": "b",
    "lag": "i",
    "deadline_offset": "i",
    "length": "i",
    "latency": "i",
}
#: the next wider typecode of a recorded column whose value did not fit
WIDER = {"b": "h", "h": "i", "i": "q"}

#: The recording's tables (`Recorder.columns`): `TABLES`, except that one ``samples`` table holds
#: the ``vruntime`` rows and, under EEVDF, the ``eevdf`` columns of the same rows (one task and
#: time for both): lag, the virtual deadline as an offset from the vruntime, eligible. A CFS run
#: fills its first three columns only. `Recorder.freeze` splits it back into the two tables.
RECORDED: dict[str, tuple[str, ...]] = {
    **{name: cols for name, cols in TABLES.items() if name not in ("vruntime", "eevdf")},
    "segments": ("cpu", "task", "length", "end"),
    "samples": ("task", "time", "vruntime", "lag", "deadline_offset", "eligible"),
}


def typecode(column: str) -> str:
    """The `array` typecode a column starts recording in ('b', 'h', 'i' or 'q': int8–int64)."""
    return NARROW_COLUMNS.get(column, "q")


def _holds(code: str, value: int) -> bool:
    try:
        array(code, (value,))
    except OverflowError:
        return False
    return True


def _int64(buf: array) -> np.ndarray:
    return np.frombuffer(buf, dtype=buf.typecode).astype(np.int64) if buf else np.zeros(0, np.int64)


class Recorder:
    """Append-only recording of a run, one `array` per column of `RECORDED` (int64, or narrower
    while the values fit: `NARROW_COLUMNS`).

    Hot paths call the row methods, e.g. ``rec.segment(cpu, task, start, end)``; each appends
    through bound ``append`` methods and takes the slow path (`_append_widened`) only on the
    ``OverflowError`` of a value too wide for its column.
    """

    def __init__(self) -> None:
        self.columns: dict[str, tuple[array, ...]] = {
            name: tuple(array(typecode(col)) for col in cols) for name, cols in RECORDED.items()
        }
        self.generation = 0  # bumped whenever a column is widened (a new array replaces it)
        self._bind()

    def column_list(self) -> list[array]:
        """Every recorded column, table by table in `RECORDED` order (the current arrays)."""
        return [col for cols in self.columns.values() for col in cols]

    def _bind(self) -> None:
        """Cache the bound ``append`` methods of the current column arrays."""
        appends = {name: tuple(col.append for col in cols) for name, cols in self.columns.items()}
        self._seg = appends["segments"]
        self._smp = appends["samples"]
        self._vrt = appends["samples"][:3]
        self._wake = appends["wakeups"]
        self._block = appends["blocks"]
        self._add = {name: appends[name] for name in RECORDED if name != "samples"}
        self._add["vruntime"] = self._vrt

    def _append_widened(self, table: str, values: tuple[int, ...]) -> None:
        """Append a row to the first ``len(values)`` columns of recorded `table` after an
        ``OverflowError``: drop the part of the row the hot path appended, widen every column
        that cannot hold its value (`WIDER`), append the row; a value beyond int64 raises
        ``OverflowError`` naming the column, the row left out."""
        columns = list(self.columns[table])
        rows = min(len(col) for col in columns[: len(values)])
        codes = []
        for index, value in enumerate(values):
            del columns[index][rows:]
            code: str = columns[index].typecode
            while not _holds(code, value):
                if code not in WIDER:
                    name = RECORDED[table][index]
                    raise OverflowError(f"{table}.{name}: {value} does not fit in int64")
                code = WIDER[code]
            codes.append(code)
        for index, (value, code) in enumerate(zip(values, codes, strict=True)):
            if code != columns[index].typecode:
                columns[index] = array(code, columns[index])
            columns[index].append(value)
        self.columns[table] = tuple(columns)
        self.generation += 1
        self._bind()

    def segment(self, cpu: int, task: int, start: int, end: int) -> None:
        """A ``segments`` row, unless it is empty (``end ≤ start``)."""
        if end > start:
            a, b, c, d = self._seg
            try:
                a(cpu)
                b(task)
                c(end - start)
                d(end)
            except OverflowError:
                self._append_widened("segments", (cpu, task, end - start, end))

    def vruntime(self, task: int, time: int, vruntime: int) -> None:
        """A ``vruntime`` row (CFS: no ``eevdf`` row beside it)."""
        a, b, c = self._vrt
        try:
            a(task)
            b(time)
            c(vruntime)
        except OverflowError:
            self._append_widened("samples", (task, time, vruntime))

    def eevdf(
        self, task: int, time: int, vruntime: int, lag: int, deadline: int, eligible: int
    ) -> None:
        """One ``vruntime`` row and the ``eevdf`` row of the same sample (`deadline` absolute,
        virtual ns; recorded as its offset from `vruntime`)."""
        a, b, c, d, e, f = self._smp
        try:
            a(task)
            b(time)
            c(vruntime)
            d(lag)
            e(deadline - vruntime)
            f(eligible)
        except OverflowError:
            self._append_widened(
                "samples", (task, time, vruntime, lag, deadline - vruntime, eligible)
            )

    def wakeup(self, task: int, cpu: int, time: int, latency: int, waker: int) -> None:
        """A ``wakeups`` row (a woken task's first switch-in), as `add` would append it."""
        a, b, c, d, e = self._wake
        try:
            a(task)
            b(cpu)
            c(time)
            d(latency)
            e(waker)
        except OverflowError:
            self._append_widened("wakeups", (task, cpu, time, latency, waker))

    def block(self, task: int, time: int) -> None:
        """A ``blocks`` row, as `add` would append it."""
        a, b = self._block
        try:
            a(task)
            b(time)
        except OverflowError:
            self._append_widened("blocks", (task, time))

    def add(self, table: str, *values: int) -> None:
        """Append one row to `table` (columns in `TABLES` order). ``eevdf`` rows are recorded
        with their vruntime sample only (`eevdf`)."""
        appends = self._add.get(table)
        if appends is None:
            raise ValueError(
                f"table: expected one of {', '.join(self._add)}"
                + (" (an eevdf row is recorded with its vruntime by Recorder.eevdf)")
                * (table == "eevdf")
                + f", found {table!r}"
            )
        if len(values) != len(appends):
            raise ValueError(f"{table}: expected {len(appends)} values, found {len(values)}")
        if table == "segments":  # recorded as (cpu, task, length, end)
            cpu, task, start, end = values
            values = (cpu, task, end - start, end)
        try:
            for append, value in zip(appends, values, strict=True):
                append(value)
        except OverflowError:
            self._append_widened("samples" if table == "vruntime" else table, values)

    def freeze(self, tasks: Iterable[str], cgroups: Iterable[str], cpus: int) -> Trace:
        """The `Trace` of the recording: every `TABLES` table, columns widened to int64; the
        ``samples`` table split into ``vruntime`` and ``eevdf`` (empty unless recorded by
        `eevdf`, whose deadline offsets become absolute deadlines again)."""
        recorded = {
            name: dict(zip(cols, map(_int64, self.columns[name]), strict=True))
            for name, cols in RECORDED.items()
        }
        samples = recorded.pop("samples")
        rows, eevdf_rows = len(samples["task"]), len(samples["lag"])
        if eevdf_rows not in (0, rows):
            raise ValueError(
                f"samples: expected every vruntime sample with its eevdf columns or none, "
                f"found {eevdf_rows} of {rows}"
            )
        tables: dict[str, dict[str, np.ndarray]] = {}
        for name, cols in TABLES.items():
            if name == "vruntime":
                tables[name] = {col: samples[col] for col in cols}
            elif name == "eevdf":
                tables[name] = {
                    "task": samples["task"][:eevdf_rows].copy(),
                    "time": samples["time"][:eevdf_rows].copy(),
                    "lag": samples["lag"],
                    "deadline": samples["deadline_offset"] + samples["vruntime"][:eevdf_rows],
                    "eligible": samples["eligible"],
                }
            elif name == "segments":
                seg = recorded[name]
                tables[name] = {
                    "cpu": seg["cpu"],
                    "task": seg["task"],
                    "start": seg["end"] - seg["length"],
                    "end": seg["end"],
                }
            else:
                tables[name] = recorded[name]
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
        """Read a ``.npz`` written by `save`, checked column by column (`check_tables`): a file
        that is not one, or a column that breaks the tables' rules, raises `TraceFormatError`
        naming the column."""
        import zipfile
        import zlib

        expected = "a zip of numpy arrays (.npz)"
        with open(path, "rb") as file:
            magic = file.read(4)
        if not magic:
            raise TraceFormatError("the file", expected, "an empty file")
        if magic != b"PK\x03\x04":
            raise TraceFormatError(
                "the file", expected, f"a file that is not a zip (it starts with {magic!r})"
            )
        try:
            with zipfile.ZipFile(path) as archive:
                size = sum(member.file_size for member in archive.infolist())
            if size > MAX_TRACE_BYTES:
                raise TraceFormatError(
                    "the file",
                    f"at most {MAX_TRACE_BYTES >> 30} GiB of columns",
                    f"{size} bytes once unpacked",
                )
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            for key, values in arrays.items():
                if not isinstance(values, np.ndarray):  # a zip member that is not a .npy
                    raise TraceFormatError(key, "a numpy array (.npy)", "other bytes")
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise TraceFormatError("the file", expected, f"a corrupt zip ({error})") from None
        except ValueError as error:  # an object (pickled) column, a bad .npy header
            raise TraceFormatError("the file", expected, _short(str(error))) from None
        return cls._from_arrays(arrays)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> Trace:
        names: dict[str, list[str]] = {}
        for key in ("__tasks__", "__cgroups__"):
            values = arrays.get(key)
            if values is None:
                raise TraceFormatError(key, "the list of names", "nothing")
            if values.ndim != 1 or values.dtype.kind != "U":
                raise TraceFormatError(key, "a list of strings", _kind(values))
            names[key] = [str(v) for v in values]
        cpus = arrays.get("__cpus__")
        if cpus is None:
            raise TraceFormatError("__cpus__", "the number of CPUs", "nothing")
        if cpus.shape != (1,) or cpus.dtype != np.int64 or not 0 < int(cpus[0]) <= MAX_CPUS:
            raise TraceFormatError(
                "__cpus__",
                f"one int64 from 1 to {MAX_CPUS}",
                _kind(cpus) if cpus.size != 1 else str(cpus[0]),
            )
        tables: dict[str, dict[str, np.ndarray]] = {}
        for key, values in arrays.items():
            if key.startswith("__"):
                continue
            name, dot, col = key.partition(".")
            if not dot or not name or not col:
                raise TraceFormatError(key, "a column named table.column", repr(key)[:60])
            tables.setdefault(name, {})[col] = values
        trace = cls(
            tasks=names["__tasks__"], cgroups=names["__cgroups__"], cpus=int(cpus[0]), tables=tables
        )
        check_tables(trace)
        return trace


#: The most a trace.npz may unpack to (checked before unpacking: no zip bomb).
MAX_TRACE_BYTES = 4 << 30
#: The most CPUs a trace may claim (the kernel's NR_CPUS maximum, CONFIG_NR_CPUS ≤ 8192).
MAX_CPUS = 8192
#: Columns that index the name lists or the CPUs (other columns are times, sizes or counts).
_INDEX_COLUMNS = {
    "task": "__tasks__",
    "cgroup": "__cgroups__",
    "cpu": "__cpus__",
    "src": "__cpus__",
    "dst": "__cpus__",
}
#: Columns that are durations or sizes (never negative; -1 means "none" for limits and quotas).
_NON_NEGATIVE = {
    ("wakeups", "latency"),
    ("periods", "period"),
    ("periods", "usage"),
    ("periods", "throttled"),
    ("memory", "usage"),
}
#: Columns that are a size or -1 ("none").
_OPTIONAL_NON_NEGATIVE = {("periods", "quota"), ("memory", "limit")}


class TraceFormatError(ValueError):
    """A trace.npz that breaks the tables' rules: which column, what was expected, what was
    found."""

    def __init__(self, where: str, expected: str, found: str) -> None:
        super().__init__(f"expected {where} to be {expected}, found {found}")
        self.where, self.expected, self.found = where, expected, found


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(values: np.ndarray) -> str:
    return f"{values.dtype} of shape {values.shape}"


def check_tables(trace: Trace) -> None:
    """Raise `TraceFormatError` for the first column of `trace` that breaks the rules of
    `TABLES`: every column a 1-D int64 array, the columns of a table equally long, indices within
    the name lists and the CPUs, ``end ≥ start``, durations and sizes not negative, kill reasons
    among `KILL_REASONS`. A table of a newer writer (not in `TABLES`) is kept when its columns are
    int64 of one length."""
    bound = {
        "__tasks__": len(trace.tasks),
        "__cgroups__": len(trace.cgroups),
        "__cpus__": trace.cpus,
    }
    for name, columns in trace.tables.items():
        known = TABLES.get(name)
        if known is not None:
            missing = [col for col in known if col not in columns]
            if missing:
                raise TraceFormatError(f"{name}.{missing[0]}", "a column", "nothing")
        length: int | None = None
        for col, values in columns.items():
            where = f"{name}.{col}"
            if known is not None and col not in known:
                raise TraceFormatError(
                    where, f"one of {name}'s columns {', '.join(known)}", "an unknown column"
                )
            if values.dtype != np.int64 or values.ndim != 1:
                raise TraceFormatError(where, "a 1-D int64 column", _kind(values))
            if length is None:
                length = len(values)
            elif len(values) != length:
                first = next(iter(columns))
                raise TraceFormatError(
                    where, f"as long as {name}.{first} ({length} rows)", f"{len(values)} rows"
                )
            if known is None or not len(values):
                continue
            if col in _INDEX_COLUMNS:
                _check_range(
                    where,
                    values,
                    0,
                    bound[_INDEX_COLUMNS[col]] - 1,
                    f"an index into {_INDEX_COLUMNS[col].strip('_')}",
                )
            elif (name, col) in _NON_NEGATIVE:
                _check_range(where, values, 0, None, "non-negative")
            elif (name, col) in _OPTIONAL_NON_NEGATIVE:
                _check_range(where, values, -1, None, "non-negative or -1 (none)")
        if known is not None and length:
            if "start" in columns and "end" in columns:
                bad = np.flatnonzero(columns["end"] < columns["start"])
                if len(bad):
                    row = int(bad[0])
                    raise TraceFormatError(
                        f"{name}.end[{row}]",
                        f"≥ {name}.start[{row}] ({int(columns['start'][row])})",
                        str(int(columns["end"][row])),
                    )
            if name == "kills":
                _check_range(
                    "kills.reason",
                    columns["reason"],
                    0,
                    len(KILL_REASONS) - 1,
                    "a kill reason code",
                )
            if name == "periods":
                _check_range("periods.throttled", columns["throttled"], 0, 1, "0 or 1")


def _check_range(where: str, values: np.ndarray, low: int, high: int | None, what: str) -> None:
    bad = values < low if high is None else (values < low) | (values > high)
    rows = np.flatnonzero(bad)
    if len(rows):
        row = int(rows[0])
        span = (
            f"≥ {low}"
            if high is None
            else (f"from {low} to {high}" if high >= low else "nothing (the list is empty)")
        )
        raise TraceFormatError(f"{where}[{row}]", f"{what} ({span})", str(int(values[row])))


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
