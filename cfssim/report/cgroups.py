"""Per-cgroup figures over time: CPU usage per period (with the quota), throttling (cumulative
``nr_throttled`` and ``throttled_time``) and memory (usage, limit, kills).

Each builder takes a list of ``(label, Result)`` runs and overlays them: colour = cgroup, line
dash = run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..cgroup.files import is_descendant
from ..result import Result
from ..trace import Trace, covered_ns, group_usage_curve
from ..units import NSEC_PER_MSEC
from .common import (
    Run,
    ancestors,
    busiest,
    cgroup_name,
    cgroup_rows,
    configured_bandwidth,
    configured_period_ns,
    held,
    kill_text,
    legend_name,
    scatter_type,
    task_cgroups,
    time_axis,
    unique,
)
from .palette import KILL_COLOUR, OTHER_COLOUR, RUN_DASHES, cgroup_colours

#: Per-cgroup figures: at most this many cgroup rows (the busiest).
MAX_CGROUP_ROWS = 12
#: Usage buckets when there is no ``periods`` table: the largest of these giving ≥ 20 buckets.
BUCKET_CHOICES_NS = tuple(v * NSEC_PER_MSEC for v in (100, 50, 20, 10, 5, 2, 1))


def runs_duration_ns(runs: Sequence[Run]) -> int:
    """The longest run's duration: the shared time axis of an overlay."""
    return max(result.duration_ns for _, result in runs)


@dataclass(frozen=True)
class UsageSeries:
    """CPU time a cgroup used per interval (a bandwidth period, or a bucket of the timeline)."""

    start: np.ndarray  # ns, interval starts
    length: np.ndarray  # ns, interval lengths
    usage: np.ndarray  # ns of CPU time used in the interval
    throttled: np.ndarray  # bool, something was throttled in the interval
    quota: np.ndarray  # ns of quota in force, -1: none

    @property
    def percent(self) -> np.ndarray:
        """Usage as % of one CPU."""
        return 100.0 * self.usage / self.length

    @property
    def quota_percent(self) -> np.ndarray:
        """Quota as % of one CPU; NaN where there is none."""
        return np.where(self.quota >= 0, 100.0 * self.quota / self.length, np.nan)


def cgroup_usage(result: Result) -> dict[str, UsageSeries]:
    """Usage per bandwidth period from the ``periods`` table; for cgroups it lacks, usage per
    bucket derived from the run segments (hierarchical: a cgroup's tasks and its descendants')."""
    trace = result.trace
    if trace is None:
        return {}
    series = _usage_from_periods(result, trace)
    for path, s in _usage_from_segments(result, trace).items():
        series.setdefault(path, s)
    return series


def _usage_from_periods(result: Result, trace: Trace) -> dict[str, UsageSeries]:
    """Usage per bandwidth period, straight from the ``periods`` table."""
    per = trace["periods"]
    series = {}
    for index in unique(per["cgroup"]):
        rows = per["cgroup"] == index
        order = np.argsort(per["start"][rows], kind="stable")
        start = per["start"][rows][order]
        path = cgroup_name(trace, int(index))
        if len(per.get("period", ())) == len(per["start"]):
            length = per["period"][rows][order].clip(min=1)
        else:  # a table without the period column (an older or measured trace)
            length = _period_lengths(start, configured_period_ns(result.cgroups.get(path, {})))
        series[path] = UsageSeries(
            start=start,
            length=length,
            usage=per["usage"][rows][order],
            throttled=per["throttled"][rows][order] != 0,
            quota=per["quota"][rows][order],
        )
    return series


def _period_lengths(start: np.ndarray, configured_ns: int | None) -> np.ndarray:
    """Length of each period: the gap to the next one, or the configured period where the timer
    was idle in between (gap longer than a period) and for the last one."""
    gaps = np.diff(start)
    typical = configured_ns or (int(np.median(gaps)) if len(gaps) else 100 * NSEC_PER_MSEC)
    return np.append(np.where(gaps > typical, typical, gaps), typical).clip(min=1)


def _usage_from_segments(result: Result, trace: Trace) -> dict[str, UsageSeries]:
    """Usage per bucket (`BUCKET_CHOICES_NS`) from the run segments, for every cgroup with tasks
    and each of its ancestors; the quota line from the cgroup's configured bandwidth figures."""
    seg = trace["segments"]
    if not len(seg["start"]):
        return {}
    duration = max(result.duration_ns, int(seg["end"].max()))
    bucket = next((b for b in BUCKET_CHOICES_NS if duration >= 20 * b), BUCKET_CHOICES_NS[-1])
    edges = np.arange(0, duration + bucket, bucket, dtype=np.int64)
    task_group = np.array(task_cgroups(result), dtype=object)
    seg_group = task_group[seg["task"]]
    series = {}
    for path in unique(seg_group):
        for ancestor in ancestors(path):
            if ancestor in series:
                continue
            tids = np.flatnonzero([is_descendant(g, ancestor) for g in task_group])
            usage = np.diff(group_usage_curve(trace, tids, edges))
            bandwidth = configured_bandwidth(result.cgroups.get(ancestor, {}))
            quota = -1 if bandwidth is None else bandwidth[0] * bucket // bandwidth[1]
            series[ancestor] = UsageSeries(
                start=edges[:-1],
                length=np.full(len(usage), bucket, dtype=np.int64),
                usage=usage,
                throttled=np.zeros(len(usage), dtype=bool),
                quota=np.full(len(usage), quota, dtype=np.int64),
            )
    return series


def usage_figure(runs: Sequence[Run]) -> go.Figure | None:
    """Per cgroup (one row each): usage per period as % of one CPU, the quota, throttled periods."""
    per_run = [(label, cgroup_usage(result)) for label, result in runs]
    paths = busiest(
        [series for _, series in per_run], lambda s: float(s.usage.sum()), MAX_CGROUP_ROWS
    )
    if not paths:
        return None
    colours = cgroup_colours([result for _, result in runs])
    fig = cgroup_rows(paths, "% of one CPU", runs_duration_ns(runs))
    for run, (label, series_of) in enumerate(per_run):
        for row, path in enumerate(paths, start=1):
            s = series_of.get(path)
            if s is None:
                continue
            x = held(s.start, s.start[-1] + s.length[-1]) / NSEC_PER_MSEC
            name = legend_name(path, label, runs)
            fig.add_trace(
                scatter_type(len(x))(
                    x=x,
                    y=held(s.percent),
                    mode="lines",
                    line={
                        "color": colours.get(path, OTHER_COLOUR),
                        "dash": RUN_DASHES[run % 4],
                        "shape": "hv",
                    },
                    name=name,
                    legendgroup=name,
                    hovertemplate="%{y:.1f}% at %{x:.1f} ms<extra>" + name + "</extra>",
                ),
                row=row,
                col=1,
            )
            if (s.quota >= 0).any():
                fig.add_trace(
                    scatter_type(len(x))(
                        x=x,
                        y=held(s.quota_percent),
                        mode="lines",
                        line={
                            "color": "black",
                            "dash": RUN_DASHES[run % 4],
                            "shape": "hv",
                            "width": 1,
                        },
                        name=f"{name} quota",
                        legendgroup=name,
                        hovertemplate="quota %{y:.1f}%<extra>" + name + "</extra>",
                    ),
                    row=row,
                    col=1,
                )
            if s.throttled.any():
                fig.add_trace(
                    scatter_type(int(s.throttled.sum()))(
                        x=s.start[s.throttled] / NSEC_PER_MSEC,
                        y=s.percent[s.throttled],
                        mode="markers",
                        marker={"symbol": "triangle-down", "size": 8, "color": KILL_COLOUR},
                        name=f"{name} throttled",
                        legendgroup=name,
                        hovertemplate="throttled period at %{x:.1f} ms<extra>" + name + "</extra>",
                    ),
                    row=row,
                    col=1,
                )
    return fig


# ---- throttling ---------------------------------------------------------------------------------
def throttling_figure(runs: Sequence[Run]) -> go.Figure | None:
    """Per cgroup, cumulative over time: throttled periods (``nr_throttled``) and throttled time
    summed over CPUs (``throttled_time``, like ``cfs_b->throttled_time``)."""
    curves = [(label, result, _throttle_curves(result)) for label, result in runs]
    if not any(c for _, _, c in curves):
        return None
    colours = cgroup_colours([result for _, result in runs])
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("throttled periods (cumulative)", "throttled time (cumulative, ms)"),
    )
    for run, (label, _, of_cgroup) in enumerate(curves):
        for path, (periods, time) in sorted(of_cgroup.items()):
            name = legend_name(path, label, runs)
            style = {"color": colours.get(path, OTHER_COLOUR), "dash": RUN_DASHES[run % 4]}
            for row, curve, shape in ((1, periods, "hv"), (2, time, "linear")):
                if curve is None:
                    continue
                x, y = curve
                fig.add_trace(
                    scatter_type(len(x))(
                        x=x,
                        y=y,
                        mode="lines",
                        line={**style, "shape": shape},
                        name=name,
                        legendgroup=name,
                        showlegend=row == 1 or periods is None,
                        hovertemplate="%{y:.6g} at %{x:.1f} ms<extra>" + name + "</extra>",
                    ),
                    row=row,
                    col=1,
                )
    fig.update_layout(height=560, margin={"t": 40, "b": 40}, hovermode="closest")
    fig.update_xaxes(range=time_axis(runs_duration_ns(runs))["range"])
    fig.update_xaxes(title_text="time (ms)", row=2, col=1)
    return fig


Curve = tuple[np.ndarray, np.ndarray]


def _throttle_curves(result: Result) -> dict[str, tuple[Curve | None, Curve | None]]:
    """cgroup → (cumulative throttled periods, cumulative throttled ms), each over time in ms."""
    trace = result.trace
    if trace is None:
        return {}
    end_ms = result.duration_ns / NSEC_PER_MSEC
    per, thr = trace["periods"], trace["throttles"]
    curves: dict[str, tuple[Curve | None, Curve | None]] = {}
    for index in unique(np.concatenate([per["cgroup"], thr["cgroup"]])):
        rows = per["cgroup"] == index
        periods = None
        if rows.any():
            hit = np.sort(per["start"][rows][per["throttled"][rows] != 0]) / NSEC_PER_MSEC
            periods = (
                np.concatenate([[0.0], hit, [max(end_ms, hit[-1] if len(hit) else 0.0)]]),
                np.concatenate([[0], np.arange(1, len(hit) + 1), [len(hit)]]),
            )
        rows = thr["cgroup"] == index
        time = None
        if rows.any():
            start, end = thr["start"][rows], thr["end"][rows]
            at = np.unique(np.concatenate([[0], start, end, [max(result.duration_ns, end.max())]]))
            time = (at / NSEC_PER_MSEC, covered_ns(start, end, at) / NSEC_PER_MSEC)
        curves[cgroup_name(trace, int(index))] = (periods, time)
    return curves


# ---- memory ----------------------------------------------------------------------------------
def memory_figure(runs: Sequence[Run]) -> go.Figure | None:
    """Per cgroup (one row each): memory usage over time, the limit, and kills in the cgroup."""
    per_run = [(label, result, _memory_samples(result)) for label, result in runs]
    paths = busiest(
        [samples for _, _, samples in per_run],
        lambda m: float(m[1].max()) if len(m[1]) else 0.0,
        MAX_CGROUP_ROWS,
    )
    if not paths:
        return None
    colours = cgroup_colours([result for _, result in runs])
    fig = cgroup_rows(paths, "MiB", runs_duration_ns(runs))
    for run, (label, result, samples) in enumerate(per_run):
        for row, path in enumerate(paths, start=1):
            if path not in samples:
                continue
            time, usage, limit = samples[path]
            x = held(time, max(result.duration_ns, int(time[-1]))) / NSEC_PER_MSEC
            name = legend_name(path, label, runs)
            dash = RUN_DASHES[run % 4]
            fig.add_trace(
                scatter_type(len(x))(
                    x=x,
                    y=held(usage) / (1 << 20),
                    mode="lines",
                    line={"color": colours.get(path, OTHER_COLOUR), "dash": dash, "shape": "hv"},
                    name=name,
                    legendgroup=name,
                    hovertemplate="%{y:.2f} MiB at %{x:.3f} ms<extra>" + name + "</extra>",
                ),
                row=row,
                col=1,
            )
            if (limit >= 0).any():
                fig.add_trace(
                    scatter_type(len(x))(
                        x=x,
                        y=held(np.where(limit >= 0, limit / (1 << 20), np.nan)),
                        mode="lines",
                        line={"color": "black", "dash": dash, "shape": "hv", "width": 1},
                        name=f"{name} limit",
                        legendgroup=name,
                        hovertemplate="limit %{y:.2f} MiB<extra>" + name + "</extra>",
                    ),
                    row=row,
                    col=1,
                )
            kills = _cgroup_kills(result, path, time, usage)
            if kills is not None:
                fig.add_trace(kills.update(legendgroup=name), row=row, col=1)
    return fig


def _memory_samples(result: Result) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """cgroup → (time ns, usage bytes, limit bytes or -1), sorted by time."""
    trace = result.trace
    if trace is None:
        return {}
    mem = trace["memory"]
    samples = {}
    for index in unique(mem["cgroup"]):
        rows = mem["cgroup"] == index
        order = np.argsort(mem["time"][rows], kind="stable")
        samples[cgroup_name(trace, int(index))] = (
            mem["time"][rows][order],
            mem["usage"][rows][order],
            mem["limit"][rows][order],
        )
    return samples


def _cgroup_kills(
    result: Result, path: str, time: np.ndarray, usage: np.ndarray
) -> go.Scatter | None:
    """Kills of the cgroup's tasks as markers on its memory curve (usage just before the kill)."""
    trace = result.trace
    if trace is None or path not in trace.cgroups:
        return None
    kills = trace["kills"]
    rows = np.flatnonzero(kills["cgroup"] == trace.cgroups.index(path))
    if not len(rows):
        return None
    at = kills["time"][rows]
    before = np.searchsorted(time, at, side="left") - 1
    names = np.array(trace.tasks, dtype=object)
    return go.Scatter(
        x=at / NSEC_PER_MSEC,
        y=np.where(before >= 0, usage[before.clip(min=0)], 0) / (1 << 20),
        mode="markers",
        marker={"symbol": "x", "size": 12, "color": KILL_COLOUR},
        name="killed",
        text=[kill_text(trace, int(r), names) for r in rows],
        hovertemplate="%{text}<br>%{x:.3f} ms<extra></extra>",
        showlegend=False,
    )
