"""Helpers shared by the report's figures: runs, trace lookups, cgroup paths, series shapes.

Times inside are int ns; figures convert to ms (floats) at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..cgroup.files import ROOT
from ..cgroup.files import ancestors as cgroup_ancestors
from ..result import Result
from ..trace import KILL_REASONS, Trace
from ..units import NSEC_PER_MSEC, NSEC_PER_USEC

#: (label, result) — one run of an overlay.
Run = tuple[str, Result]
#: A figure series with more points than this is drawn with WebGL (Scattergl).
WEBGL_POINTS = 2_000
UNKNOWN_CGROUP = "(unknown cgroup)"


def task_cgroups(result: Result) -> list[str]:
    """The cgroup of each trace task (by index), from ``result.tasks[name]["cgroup"]``."""
    if result.trace is None:
        return []
    return [str(result.task_figure(name, "cgroup", UNKNOWN_CGROUP)) for name in result.trace.tasks]


def cgroup_rows(paths: Sequence[str], y_title: str, duration_ns: int) -> go.Figure:
    """A figure with one row per cgroup sharing the time axis (0 to `duration_ns`)."""
    fig = make_subplots(
        rows=len(paths),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / len(paths)),
        subplot_titles=list(paths),
    )
    fig.update_layout(height=110 + 190 * len(paths), margin={"t": 40, "b": 40}, hovermode="closest")
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_xaxes(range=time_axis(duration_ns)["range"])
    fig.update_xaxes(title_text="time (ms)", row=len(paths), col=1)
    return fig


def busiest(
    per_run: Sequence[dict[str, Any]], score: Callable[[Any], float], limit: int
) -> list[str]:
    """The cgroup paths present in any run, at most `limit` of them (highest score), sorted."""
    best: dict[str, float] = {}
    for of_cgroup in per_run:
        for path, value in of_cgroup.items():
            best[path] = max(best.get(path, 0.0), score(value))
    kept = sorted(best, key=lambda p: (-best[p], p))[:limit]
    return sorted(kept)


def scatter_type(points: int) -> type[go.Scatter] | type[go.Scattergl]:
    """SVG for small series (crisper, cheaper), WebGL for large ones."""
    return go.Scattergl if points > WEBGL_POINTS else go.Scatter


def legend_name(path: str, label: str, runs: Sequence[Run]) -> str:
    return path if len(runs) == 1 else f"{path} · {label}"


def gapped(first: np.ndarray, second: np.ndarray, gap: Any = np.nan) -> np.ndarray:
    """[first0, second0, gap, first1, second1, gap, …]: separate line pieces in one trace."""
    dtype = object if first.dtype == object else np.float64
    out = np.empty(3 * len(first), dtype=dtype)
    out[0::3], out[1::3], out[2::3] = first, second, gap
    return out


def held(values: np.ndarray, last: Any = None) -> np.ndarray:
    """`values` with one more point: `last`, or the last value repeated — a step series held
    until the end of its last interval."""
    return np.append(values, values[-1] if last is None else last)


def unique(values: np.ndarray) -> list[Any]:
    return np.unique(values).tolist() if len(values) else []


def ancestors(path: str) -> list[str]:
    """``/a/b`` → ``["/a/b", "/a", "/"]``; a name that is no path → itself and ``/``."""
    if not path.startswith("/"):
        return [path, ROOT]
    return [path, *cgroup_ancestors(path)]


def cgroup_name(trace: Trace, index: int) -> str:
    return trace.cgroups[index] if 0 <= index < len(trace.cgroups) else f"cgroup {index}"


def task_name(trace: Trace, index: int) -> str:
    return trace.tasks[index] if 0 <= index < len(trace.tasks) else f"task {index}"


def configured_bandwidth(figures: Mapping[str, Any]) -> tuple[int, int] | None:
    """(quota ns, period ns) from the cgroup's ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` or
    ``cpu.max`` figures; None when unlimited or not given."""
    period = configured_period_ns(figures)
    quota_us = figures.get("cpu.cfs_quota_us")
    if quota_us is None and isinstance(figures.get("cpu.max"), str):
        quota_text = figures["cpu.max"].split()[0]
        quota_us = int(quota_text) if quota_text.isdigit() else -1
    if quota_us is None or int(quota_us) < 0 or not period:
        return None
    return int(quota_us) * NSEC_PER_USEC, period


def configured_period_ns(figures: Mapping[str, Any]) -> int | None:
    """The bandwidth period in ns from ``cpu.cfs_period_us`` or ``cpu.max``; None if absent."""
    if figures.get("cpu.cfs_period_us") is not None:
        return int(figures["cpu.cfs_period_us"]) * NSEC_PER_USEC
    fields = str(figures.get("cpu.max", "")).split()
    if len(fields) == 2 and fields[1].isdigit():
        return int(fields[1]) * NSEC_PER_USEC
    return None


def time_axis(duration_ns: int) -> dict[str, Any]:
    """The x axis every time figure shares: ms from 0 to the end of the run (the page links
    the figures' zoom, see `page.SYNC_X`)."""
    return {"title": "time (ms)", "range": [0, duration_ns / NSEC_PER_MSEC]}


def kill_text(trace: Trace, row: int, names: np.ndarray) -> str:
    kills = trace["kills"]
    reason = int(kills["reason"][row])
    why = KILL_REASONS[reason] if 0 <= reason < len(KILL_REASONS) else f"reason {reason}"
    task = int(kills["task"][row])
    who = names[task] if 0 <= task < len(names) else f"task {task}"
    return f"{why}: {who} ({cgroup_name(trace, int(kills['cgroup'][row]))})"
