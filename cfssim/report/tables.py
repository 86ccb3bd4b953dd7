"""The report's HTML tables: the run header, per-task and per-cgroup figures in human units."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..result import Result
from ..units import NSEC_PER_USEC, format_duration, format_size
from .common import Run

#: A size at or above this is the kernel's "unlimited" (PAGE_COUNTER_MAX in bytes, rounded).
UNLIMITED_BYTES = 1 << 62
MISSING = "–"

#: Per-task table: column header → how to read it from the task's figures.
TASK_COLUMNS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "cgroup": lambda f: str(f.get("cgroup", MISSING)),
    "CPU time": lambda f: _duration(f.get("cpu_time_ns")),
    "wait": lambda f: _duration(f.get("wait_time_ns")),
    "timeslices": lambda f: _count(f.get("timeslices")),
    "switches": lambda f: _count(f.get("nr_switches")),
    "voluntary / involuntary": lambda f: (
        f"{_count(f.get('nr_voluntary_switches'))} / {_count(f.get('nr_involuntary_switches'))}"
    ),
    "migrations": lambda f: _count(f.get("nr_migrations")),
    "wakeups": lambda f: _count(f.get("wakeups")),
    "wakeup p50": lambda f: _duration(_latency(f, "p50")),
    "wakeup p99": lambda f: _duration(_latency(f, "p99")),
    "wakeup max": lambda f: _duration(_latency(f, "max")),
    "max RSS": lambda f: _size(f.get("max_rss_bytes")),
    "exit": lambda f: _exit(f.get("exit")),
}


def task_table(runs: Sequence[Run]) -> str:
    """HTML table of per-task figures, one row per task (and run, when several)."""
    several = len(runs) > 1
    head = ["task", *(["run"] if several else []), *TASK_COLUMNS]
    rows = [
        [name, *([label] if several else []), *(read(figures) for read in TASK_COLUMNS.values())]
        for name in union(result.tasks for _, result in runs)
        for label, result in runs
        if name in result.tasks
        for figures in [result.tasks[name]]
    ]
    if not rows:
        return "<p class='missing'>No per-task figures.</p>"
    return html_table([head], rows)


def cgroup_table(runs: Sequence[Run]) -> str:
    """HTML table of per-cgroup figures: one row per kernel-file key, one column per cgroup
    (and run, when several)."""
    flat = [{row["cgroup"]: row for row in result.cgroup_rows()} for _, result in runs]
    paths = union(flat)
    if not paths:
        return "<p class='missing'>No per-cgroup figures.</p>"
    keys = union(row for of_path in flat for row in of_path.values())
    keys.remove("cgroup")
    columns = [(path, i) for path in paths for i in range(len(runs))]
    if len(runs) > 1:
        head = [
            [("", 1), *((path, len(runs)) for path in paths)],
            [("file", 1), *((runs[i][0], 1) for _, i in columns)],
        ]
    else:
        head = [[("file", 1), *((path, 1) for path in paths)]]
    rows = [
        [key, *(_cgroup_value(key, flat[i].get(path, {})) for path, i in columns)] for key in keys
    ]
    return html_table(head, rows)


def format_figure(key: str, value: Any) -> str:
    """A per-cgroup figure in human units, judged by its kernel file/field name: durations
    (``_us``, ``_usec``, ``_time``, ``cpuacct.usage``), bytes (`is_bytes`), else a count (the
    ``memory.events`` counters, ``failcnt``, ``nr_*``). A list (per CPU) is formatted item-wise."""
    if value is None:
        return MISSING
    if isinstance(value, list | tuple):
        return " ".join(format_figure(key, item) for item in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    field = key.rsplit(".", 1)[-1]
    if key.endswith("_us") or field.endswith("_usec"):
        return "none" if value < 0 else format_duration(value * NSEC_PER_USEC)
    if key.startswith("cpuacct.usage") or field.endswith(("_time", "_ns")):
        return format_duration(value)
    if is_bytes(key):
        return "unlimited" if value < 0 or value >= UNLIMITED_BYTES else format_size(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


#: memory files (and ``memory.stat`` fields) holding bytes, by their last name part
BYTE_FIELDS = frozenset({"max", "high", "low", "min", "current", "peak", "usage", "limit"})


def is_bytes(key: str) -> bool:
    """Whether a cgroup figure is a byte amount: ``memory.*_bytes``, ``memory.max``/``high``/
    ``current``/``peak``/…, and ``memory.stat`` sizes — not the ``memory.events`` counters, not
    ``failcnt`` or the ``pg*`` page-event counts."""
    if not key.startswith("memory.") or key.startswith("memory.events"):
        return False
    field = key.rsplit(".", 1)[-1]
    if key.startswith("memory.stat."):
        return not field.startswith(("pg", "nr_", "workingset_")) and "events" not in field
    return key.endswith("bytes") or field in BYTE_FIELDS or key.startswith("memory.swap.")


def _cgroup_value(key: str, row: dict[str, Any]) -> str:
    return format_figure(key, row[key]) if key in row else MISSING


def union(collections: Iterable[Iterable[str]]) -> list[str]:
    """Keys of every collection, in first-seen order."""
    return list(dict.fromkeys(key for keys in collections for key in keys))


def _duration(value: Any) -> str:
    return format_duration(value) if isinstance(value, int | float) else MISSING


def _size(value: Any) -> str:
    return format_size(value) if isinstance(value, int) and not isinstance(value, bool) else MISSING


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else MISSING


def _latency(figures: Mapping[str, Any], which: str) -> Any:
    latency = figures.get("wakeup_latency_ns")
    return latency.get(which) if isinstance(latency, dict) else None


def _exit(value: Any) -> str:
    if not isinstance(value, dict):
        return MISSING if value is None else str(value)
    when = value.get("time_ns")
    reason = str(value.get("reason", "exited"))
    return reason if when is None else f"{reason} at {format_duration(when)}"


Cell = str | tuple[str, int]  # text, or (text, colspan) in a header


def html_table(head: Sequence[Sequence[Cell]], rows: Sequence[Sequence[str]]) -> str:
    def header_cell(cell: Cell) -> str:
        text, span = (cell, 1) if isinstance(cell, str) else cell
        colspan = f" colspan='{span}'" if span > 1 else ""
        return f"<th{colspan}>{html.escape(text)}</th>"

    thead = "".join(f"<tr>{''.join(header_cell(c) for c in line)}</tr>" for line in head)
    tbody = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<div class='scroll'><table><thead>{thead}</thead><tbody>{tbody}</tbody></table></div>"


HEADER_FIELDS: dict[str, Callable[[Result], str]] = {
    "scenario": lambda r: r.scenario,
    "source": lambda r: r.source,
    "policy": lambda r: r.policy,
    "CPUs": lambda r: str(r.cpus),
    "duration": lambda r: format_duration(r.duration_ns),
    "seed": lambda r: MISSING if r.seed is None else str(r.seed),
}


def header_table(runs: Sequence[Run]) -> str:
    """The run(s) at a glance: scenario, source, policy, CPUs, duration, seed, scalar meta."""
    meta_keys = union(
        [k for k, v in result.meta.items() if k != "description" and _is_scalar(v)]
        for _, result in runs
    )
    rows = [[field, *(read(result) for _, result in runs)] for field, read in HEADER_FIELDS.items()]
    rows += [
        [key, *(str(result.meta.get(key, MISSING)) for _, result in runs)] for key in meta_keys
    ]
    head: list[list[Cell]] = [["", *(label for label, _ in runs)]] if len(runs) > 1 else []
    table = html_table(head, rows).replace("<table>", "<table class='header'>", 1)
    descriptions = union(
        [str(result.meta["description"])] for _, result in runs if result.meta.get("description")
    )
    text = "".join(f"<p class='description'>{html.escape(d)}</p>" for d in descriptions)
    return text + table


def host_table(runs: Sequence[Run]) -> str | None:
    """The simulated host of each run that had one (``meta.host``: a machine profile or the
    scenario's host keys): per CPU its tick offset and jitter, its background noise; the timer
    latency (p50), a tick's switch after its handler, the page-fault cost. None when every run
    is on the ideal machine."""
    head: list[list[Cell]] = [
        [
            "run",
            "source",
            "CPU",
            "tick offset",
            "tick jitter p5…p95",
            "noise arrivals/s",
            "noise run p50",
            "timer latency p50",
            "tick switch",
            "page fault",
        ]
    ]
    rows = []
    for label, result in runs:
        host = result.meta.get("host")
        if not host:
            continue
        for cpu in host.get("cpus", []):
            jitter = cpu.get("tick_jitter_p5_p95_ns")
            rate = cpu.get("noise_rate_per_s")
            rows.append(
                [
                    label,
                    str(host.get("source", MISSING)),
                    str(cpu.get("cpu", MISSING)),
                    _duration(cpu.get("tick_offset_ns")),
                    MISSING if not jitter else f"{_duration(jitter[0])} … {_duration(jitter[1])}",
                    MISSING if rate is None else f"{rate:g}",
                    _duration(cpu.get("noise_run_p50_ns")),
                    _duration(host.get("timer_latency_p50_ns")),
                    _duration(host.get("tick_switch_ns")),
                    _duration(host.get("page_fault_ns")) + " / 4 KiB",
                ]
            )
    return html_table(head, rows) if rows else None


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)
