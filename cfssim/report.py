"""The HTML report: plotly figures of a run's `Result`, one self-contained offline page.

`write_report(result, path)` writes ``report.html`` for one run; `write_comparison_report(a, b,
path)` overlays two runs (typically simulated vs measured). Figures are built from the trace tables
(`cfssim.trace`) and work on either source; a figure whose tables are missing is left out and the
page says so. Figure builders that make sense for several runs take a list of ``(label, Result)``
runs and overlay them: colour = cgroup, line dash = run.

Times on the x axes are milliseconds (floats only here, at the edge); inside, int ns as everywhere.
The per-CPU timeline batches all run segments of one cgroup into one WebGL trace (``x = [start,
end, NaN, …]``), which stays responsive at 200k segments (see ``benchmarks/report_scale.py``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from .cgroup.files import ROOT, ancestors, is_descendant
from .result import Result
from .trace import KILL_REASONS, Trace, covered_ns, group_usage_curve
from .units import NSEC_PER_MSEC, NSEC_PER_USEC, format_duration, format_size

#: (label, result) — one run of an overlay.
Run = tuple[str, Result]

#: Plotly's client-side options for every figure (no logo, no link to an online service).
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
#: vruntime figure: tasks drawn one trace each; the rest share one grey trace.
MAX_VRUNTIME_TRACES = 20
#: Per-cgroup figures: at most this many cgroup rows (the busiest).
MAX_CGROUP_ROWS = 12
#: A figure series with more points than this is drawn with WebGL (Scattergl).
WEBGL_POINTS = 2_000
#: Usage buckets when there is no ``periods`` table: the largest of these giving ≥ 20 buckets.
BUCKET_CHOICES_NS = tuple(v * NSEC_PER_MSEC for v in (100, 50, 20, 10, 5, 2, 1))
#: A size at or above this is the kernel's "unlimited" (PAGE_COUNTER_MAX in bytes, rounded).
UNLIMITED_BYTES = 1 << 62

RUN_DASHES = ("solid", "dash", "dot", "dashdot")
ROOT_COLOUR = "#7f7f7f"
OTHER_COLOUR = "#b0b0b0"
KILL_COLOUR = "#d62728"


# ---- pages ------------------------------------------------------------------------------------
def write_report(result: Result, path: str | Path) -> Path:
    """Write the self-contained HTML report of one run to `path`; returns the path."""
    runs = [(result.source, result)]
    title = f"cfssim report — {result.scenario}"
    return _write_runs(path, title, runs, build_figures(result), FIGURE_TITLES)


def write_comparison_report(
    a: Result, b: Result, path: str | Path, labels: tuple[str, str] | None = None
) -> Path:
    """Write ``compare.html``: usage, throttling and memory of `a` and `b` overlaid."""
    runs = list(zip(labels or run_labels(a, b), (a, b), strict=True))
    title = f"cfssim comparison — {a.scenario} vs {b.scenario}"
    return _write_runs(path, title, runs, build_comparison_figures(runs), COMPARISON_TITLES)


def run_labels(a: Result, b: Result) -> tuple[str, str]:
    """Legend labels of two runs: their sources, or ``a (…)``/``b (…)`` when they are equal."""
    if a.source != b.source:
        return a.source, b.source
    return f"a ({a.source})", f"b ({b.source})"


def build_figures(result: Result) -> dict[str, go.Figure]:
    """The figures of one run, keyed like `FIGURE_TITLES`; figures without data are left out."""
    figures = {
        "timeline": timeline_figure(result),
        **build_comparison_figures([(result.source, result)]),
        "vruntime": vruntime_figure(result),
    }
    return {key: fig for key, fig in figures.items() if fig is not None}


def build_comparison_figures(runs: Sequence[Run]) -> dict[str, go.Figure]:
    """Per-cgroup usage, throttling and memory of one or more runs overlaid; figures without
    data are left out."""
    figures = {
        "usage": usage_figure(runs),
        "throttling": throttling_figure(runs),
        "memory": memory_figure(runs),
    }
    return {key: fig for key, fig in figures.items() if fig is not None}


#: figure key → (section title, what is missing when the figure is absent).
FIGURE_TITLES: dict[str, tuple[str, str]] = {
    "timeline": ("Per-CPU timeline", "no run segments recorded"),
    "usage": ("CPU usage per period", "no bandwidth periods or run segments recorded"),
    "throttling": ("Throttling", "no bandwidth periods or throttle intervals recorded"),
    "memory": ("Memory", "no memory samples recorded"),
    "vruntime": ("vruntime", "no vruntime samples recorded"),
}
COMPARISON_TITLES = {key: FIGURE_TITLES[key] for key in ("usage", "throttling", "memory")}


# ---- the per-CPU timeline -----------------------------------------------------------------------
def timeline_figure(result: Result) -> go.Figure | None:
    """Which task runs on which CPU: one WebGL line trace per cgroup, throttled bands, kills."""
    trace = result.trace
    if trace is None or not len(trace["segments"]["start"]):
        return None
    seg = trace["segments"]
    colours = cgroup_colours([result])
    names = np.array(trace.tasks, dtype=object)
    seg_group = np.array(task_cgroups(result), dtype=object)[seg["task"]]
    cpus = max(trace.cpus, result.cpus, int(seg["cpu"].max()) + 1)
    row_px = max(14, min(48, 900 // cpus))

    fig = go.Figure(_throttled_bands(trace, colours))
    for path in _unique(seg_group):
        rows = seg_group == path
        task = seg["task"][rows]
        fig.add_trace(
            go.Scattergl(
                x=_gapped(seg["start"][rows] / NSEC_PER_MSEC, seg["end"][rows] / NSEC_PER_MSEC),
                y=np.repeat(seg["cpu"][rows], 3).astype(np.int16),  # x's NaN makes the gap
                text=_gapped(names[task], names[task], gap=""),
                mode="lines",
                line={"color": colours.get(path, OTHER_COLOUR), "width": row_px * 0.55},
                name=path,
                legendgroup=path,
                hovertemplate="%{text}<br>CPU %{y}<br>%{x:.3f} ms<extra>" + path + "</extra>",
            )
        )
    if len(trace["kills"]["time"]):
        fig.add_trace(_kill_markers_on_cpus(trace))
    fig.update_layout(
        height=120 + row_px * cpus,
        margin={"t": 30, "b": 40},
        hovermode="closest",
        xaxis={"title": "time (ms)", "range": [0, result.duration_ns / NSEC_PER_MSEC]},
        yaxis={
            "tickvals": list(range(cpus)),
            "ticktext": [f"CPU {c}" for c in range(cpus)],
            "range": [cpus - 0.5, -0.5],
            "zeroline": False,
            "showgrid": False,
        },
    )
    return fig


def _throttled_bands(trace: Trace, colours: dict[str, str]) -> list[go.Scattergl]:
    """Per throttled cgroup, one trace of filled rectangles: one per (CPU, throttled interval),
    the height of the CPU's row, in the cgroup's colour made translucent."""
    thr = trace["throttles"]
    bands = []
    for index in _unique(thr["cgroup"]):
        rows = thr["cgroup"] == index
        path = _cgroup_name(trace, int(index))
        start, end = thr["start"][rows] / NSEC_PER_MSEC, thr["end"][rows] / NSEC_PER_MSEC
        low, high = thr["cpu"][rows] - 0.45, thr["cpu"][rows] + 0.45
        nan = np.full(len(start), np.nan)
        bands.append(
            go.Scattergl(
                x=np.column_stack([start, end, end, start, start, nan]).ravel(),
                y=np.column_stack([low, low, high, high, low, nan]).ravel(),
                fill="toself",
                fillcolor=_rgba(colours.get(path, OTHER_COLOUR), 0.22),
                mode="lines",
                line={"width": 0},
                name=f"{path} throttled",
                legendgroup=path,
                hoverinfo="skip",
            )
        )
    return bands


def _kill_markers_on_cpus(trace: Trace) -> go.Scattergl:
    """Kills as markers on the CPU where the killed task last ran (CPU 0 if it never ran)."""
    kills, seg = trace["kills"], trace["segments"]
    last_cpu = np.zeros(len(trace.tasks), dtype=np.int64)
    by_end = np.lexsort((seg["end"], seg["task"]))  # per task, its latest segment last
    task, cpu = seg["task"][by_end], seg["cpu"][by_end]
    latest = np.r_[task[1:] != task[:-1], True]
    last_cpu[task[latest]] = cpu[latest]
    names = np.array(trace.tasks, dtype=object)
    return go.Scattergl(
        x=kills["time"] / NSEC_PER_MSEC,
        y=last_cpu[kills["task"]],
        mode="markers",
        marker={"symbol": "x", "size": 14, "color": KILL_COLOUR, "line": {"width": 1}},
        name="killed",
        text=[_kill_text(trace, i, names) for i in range(len(kills["time"]))],
        hovertemplate="%{text}<br>%{x:.3f} ms<extra></extra>",
    )


def _kill_text(trace: Trace, row: int, names: np.ndarray) -> str:
    kills = trace["kills"]
    reason = int(kills["reason"][row])
    why = KILL_REASONS[reason] if 0 <= reason < len(KILL_REASONS) else f"reason {reason}"
    task = int(kills["task"][row])
    who = names[task] if 0 <= task < len(names) else f"task {task}"
    return f"{why}: {who} ({_cgroup_name(trace, int(kills['cgroup'][row]))})"


# ---- per-cgroup CPU usage ---------------------------------------------------------------------
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
    for index in _unique(per["cgroup"]):
        rows = per["cgroup"] == index
        order = np.argsort(per["start"][rows], kind="stable")
        start = per["start"][rows][order]
        path = _cgroup_name(trace, int(index))
        if len(per.get("period", ())) == len(per["start"]):
            length = per["period"][rows][order].clip(min=1)
        else:  # a table without the period column (an older or measured trace)
            length = _period_lengths(start, _configured_period_ns(result.cgroups.get(path, {})))
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
    for path in _unique(seg_group):
        for ancestor in _ancestors(path):
            if ancestor in series:
                continue
            tids = np.flatnonzero([is_descendant(g, ancestor) for g in task_group])
            usage = np.diff(group_usage_curve(trace, tids, edges))
            bandwidth = _configured_bandwidth(result.cgroups.get(ancestor, {}))
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
    paths = _busiest(
        [series for _, series in per_run], lambda s: float(s.usage.sum()), MAX_CGROUP_ROWS
    )
    if not paths:
        return None
    colours = cgroup_colours([result for _, result in runs])
    fig = _cgroup_rows(paths, "% of one CPU")
    for run, (label, series_of) in enumerate(per_run):
        for row, path in enumerate(paths, start=1):
            s = series_of.get(path)
            if s is None:
                continue
            x = _held(s.start, s.start[-1] + s.length[-1]) / NSEC_PER_MSEC
            name = _legend(path, label, runs)
            fig.add_trace(
                _scatter(len(x))(
                    x=x,
                    y=_held(s.percent),
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
                    _scatter(len(x))(
                        x=x,
                        y=_held(s.quota_percent),
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
                    _scatter(int(s.throttled.sum()))(
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
            name = _legend(path, label, runs)
            style = {"color": colours.get(path, OTHER_COLOUR), "dash": RUN_DASHES[run % 4]}
            for row, curve, shape in ((1, periods, "hv"), (2, time, "linear")):
                if curve is None:
                    continue
                x, y = curve
                fig.add_trace(
                    _scatter(len(x))(
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
    for index in _unique(np.concatenate([per["cgroup"], thr["cgroup"]])):
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
        curves[_cgroup_name(trace, int(index))] = (periods, time)
    return curves


# ---- memory ----------------------------------------------------------------------------------
def memory_figure(runs: Sequence[Run]) -> go.Figure | None:
    """Per cgroup (one row each): memory usage over time, the limit, and kills in the cgroup."""
    per_run = [(label, result, _memory_samples(result)) for label, result in runs]
    paths = _busiest(
        [samples for _, _, samples in per_run],
        lambda m: float(m[1].max()) if len(m[1]) else 0.0,
        MAX_CGROUP_ROWS,
    )
    if not paths:
        return None
    colours = cgroup_colours([result for _, result in runs])
    fig = _cgroup_rows(paths, "MiB")
    for run, (label, result, samples) in enumerate(per_run):
        for row, path in enumerate(paths, start=1):
            if path not in samples:
                continue
            time, usage, limit = samples[path]
            x = _held(time, max(result.duration_ns, int(time[-1]))) / NSEC_PER_MSEC
            name = _legend(path, label, runs)
            dash = RUN_DASHES[run % 4]
            fig.add_trace(
                _scatter(len(x))(
                    x=x,
                    y=_held(usage) / (1 << 20),
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
                    _scatter(len(x))(
                        x=x,
                        y=_held(np.where(limit >= 0, limit / (1 << 20), np.nan)),
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
    for index in _unique(mem["cgroup"]):
        rows = mem["cgroup"] == index
        order = np.argsort(mem["time"][rows], kind="stable")
        samples[_cgroup_name(trace, int(index))] = (
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
        text=[_kill_text(trace, int(r), names) for r in rows],
        hovertemplate="%{text}<br>%{x:.3f} ms<extra></extra>",
        showlegend=False,
    )


# ---- vruntime --------------------------------------------------------------------------------
def vruntime_figure(result: Result) -> go.Figure | None:
    """vruntime of each task over time: one WebGL trace per task for the first
    `MAX_VRUNTIME_TRACES` tasks, the rest batched into one grey trace."""
    trace = result.trace
    if trace is None or not len(trace["vruntime"]["time"]):
        return None
    vr = trace["vruntime"]
    order = np.lexsort((vr["time"], vr["task"]))
    task, time, value = vr["task"][order], vr["time"][order], vr["vruntime"][order]
    tasks = _unique(task)
    cuts = np.searchsorted(task, [*tasks, tasks[-1] + 1])
    fig = go.Figure()
    palette = qualitative.Plotly
    for i, index in enumerate(tasks[:MAX_VRUNTIME_TRACES]):
        part = slice(cuts[i], cuts[i + 1])
        name = _task_name(trace, int(index))
        fig.add_trace(
            go.Scattergl(
                x=time[part] / NSEC_PER_MSEC,
                y=value[part] / NSEC_PER_MSEC,
                mode="lines",
                line={"color": palette[i % len(palette)], "width": 1.5},
                name=name,
                hovertemplate="%{y:.3f} ms at %{x:.3f} ms<extra>" + name + "</extra>",
            )
        )
    rest = tasks[MAX_VRUNTIME_TRACES:]
    if rest:
        part = slice(cuts[MAX_VRUNTIME_TRACES], cuts[-1])
        # a NaN after each task's last sample keeps the tasks' lines apart
        last = np.r_[task[part][1:] != task[part][:-1], True]
        x = np.insert(time[part] / NSEC_PER_MSEC, np.flatnonzero(last) + 1, np.nan)
        y = np.insert(value[part] / NSEC_PER_MSEC, np.flatnonzero(last) + 1, np.nan)
        fig.add_trace(
            go.Scattergl(
                x=x,
                y=y,
                mode="lines",
                line={"color": OTHER_COLOUR, "width": 1},
                name=f"{len(rest)} other tasks",
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=420,
        margin={"t": 30, "b": 40},
        hovermode="closest",
        xaxis_title="time (ms)",
        yaxis_title="vruntime (ms)",
    )
    return fig


# ---- shared figure helpers ------------------------------------------------------------------
UNKNOWN_CGROUP = "(unknown cgroup)"


def task_cgroups(result: Result) -> list[str]:
    """The cgroup of each trace task (by index), from ``result.tasks[name]["cgroup"]``."""
    if result.trace is None:
        return []
    return [
        str(result.task_figure(name, "cgroup", UNKNOWN_CGROUP)) for name in result.trace.tasks
    ]


def cgroup_colours(results: Iterable[Result]) -> dict[str, str]:
    """One colour per cgroup path, the same for every run of an overlay (root grey)."""
    paths: set[str] = {UNKNOWN_CGROUP}
    for result in results:
        paths.update(result.cgroups)
        paths.update(task_cgroups(result))
        if result.trace is not None:
            paths.update(result.trace.cgroups)
    palette = [c for c in qualitative.D3 if c.lower() != ROOT_COLOUR]
    others = sorted(paths - {"/"})
    return {"/": ROOT_COLOUR} | {p: palette[i % len(palette)] for i, p in enumerate(others)}


def _cgroup_rows(paths: Sequence[str], y_title: str) -> go.Figure:
    """A figure with one row per cgroup sharing the time axis."""
    fig = make_subplots(
        rows=len(paths),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.08, 0.3 / len(paths)),
        subplot_titles=list(paths),
    )
    fig.update_layout(height=110 + 190 * len(paths), margin={"t": 40, "b": 40}, hovermode="closest")
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    fig.update_xaxes(title_text="time (ms)", row=len(paths), col=1)
    return fig


def _busiest(
    per_run: Sequence[dict[str, Any]], score: Callable[[Any], float], limit: int
) -> list[str]:
    """The cgroup paths present in any run, at most `limit` of them (highest score), sorted."""
    best: dict[str, float] = {}
    for of_cgroup in per_run:
        for path, value in of_cgroup.items():
            best[path] = max(best.get(path, 0.0), score(value))
    kept = sorted(best, key=lambda p: (-best[p], p))[:limit]
    return sorted(kept)


def _scatter(points: int) -> type[go.Scatter] | type[go.Scattergl]:
    """SVG for small series (crisper, cheaper), WebGL for large ones."""
    return go.Scattergl if points > WEBGL_POINTS else go.Scatter


def _legend(path: str, label: str, runs: Sequence[Run]) -> str:
    return path if len(runs) == 1 else f"{path} · {label}"


def _gapped(first: np.ndarray, second: np.ndarray, gap: Any = np.nan) -> np.ndarray:
    """[first0, second0, gap, first1, second1, gap, …]: separate line pieces in one trace."""
    dtype = object if first.dtype == object else np.float64
    out = np.empty(3 * len(first), dtype=dtype)
    out[0::3], out[1::3], out[2::3] = first, second, gap
    return out


def _held(values: np.ndarray, last: Any = None) -> np.ndarray:
    """`values` with one more point: `last`, or the last value repeated — a step series held
    until the end of its last interval."""
    return np.append(values, values[-1] if last is None else last)


def _unique(values: np.ndarray) -> list[Any]:
    return np.unique(values).tolist() if len(values) else []


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"


def _ancestors(path: str) -> list[str]:
    """``/a/b`` → ``["/a/b", "/a", "/"]``; a name that is no path → itself and ``/``."""
    if not path.startswith("/"):
        return [path, ROOT]
    return [path, *ancestors(path)]


def _cgroup_name(trace: Trace, index: int) -> str:
    return trace.cgroups[index] if 0 <= index < len(trace.cgroups) else f"cgroup {index}"


def _task_name(trace: Trace, index: int) -> str:
    return trace.tasks[index] if 0 <= index < len(trace.tasks) else f"task {index}"


def _configured_bandwidth(figures: Mapping[str, Any]) -> tuple[int, int] | None:
    """(quota ns, period ns) from the cgroup's ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` or
    ``cpu.max`` figures; None when unlimited or not given."""
    period = _configured_period_ns(figures)
    quota_us = figures.get("cpu.cfs_quota_us")
    if quota_us is None and isinstance(figures.get("cpu.max"), str):
        quota_text = figures["cpu.max"].split()[0]
        quota_us = int(quota_text) if quota_text.isdigit() else -1
    if quota_us is None or int(quota_us) < 0 or not period:
        return None
    return int(quota_us) * NSEC_PER_USEC, period


def _configured_period_ns(figures: Mapping[str, Any]) -> int | None:
    """The bandwidth period in ns from ``cpu.cfs_period_us`` or ``cpu.max``; None if absent."""
    if figures.get("cpu.cfs_period_us") is not None:
        return int(figures["cpu.cfs_period_us"]) * NSEC_PER_USEC
    fields = str(figures.get("cpu.max", "")).split()
    if len(fields) == 2 and fields[1].isdigit():
        return int(fields[1]) * NSEC_PER_USEC
    return None


# ---- tables ----------------------------------------------------------------------------------
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
    "exit": lambda f: _exit(f.get("exit")),
}


def task_table(runs: Sequence[Run]) -> str:
    """HTML table of per-task figures, one row per task (and run, when several)."""
    several = len(runs) > 1
    head = ["task", *(["run"] if several else []), *TASK_COLUMNS]
    rows = [
        [name, *([label] if several else []), *(read(figures) for read in TASK_COLUMNS.values())]
        for name in _union(result.tasks for _, result in runs)
        for label, result in runs
        if name in result.tasks
        for figures in [result.tasks[name]]
    ]
    if not rows:
        return "<p class='missing'>No per-task figures.</p>"
    return _table([head], rows)


def cgroup_table(runs: Sequence[Run]) -> str:
    """HTML table of per-cgroup figures: one row per kernel-file key, one column per cgroup
    (and run, when several)."""
    flat = [{row["cgroup"]: row for row in result.cgroup_rows()} for _, result in runs]
    paths = _union(flat)
    if not paths:
        return "<p class='missing'>No per-cgroup figures.</p>"
    keys = _union(row for of_path in flat for row in of_path.values())
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
    return _table(head, rows)


def format_figure(key: str, value: Any) -> str:
    """A per-cgroup figure in human units, judged by its kernel file/field name."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    field = key.rsplit(".", 1)[-1]
    if key.endswith("_us") or field.endswith("_usec"):
        return "none" if value < 0 else format_duration(value * NSEC_PER_USEC)
    if key == "cpuacct.usage" or field.endswith(("_time", "_ns")):
        return format_duration(value)
    if key.startswith("memory.") and (key.endswith("bytes") or field in {"max", "high", "current"}):
        return "unlimited" if value < 0 or value >= UNLIMITED_BYTES else format_size(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _cgroup_value(key: str, row: dict[str, Any]) -> str:
    return format_figure(key, row[key]) if key in row else MISSING


def _union(collections: Iterable[Iterable[str]]) -> list[str]:
    """Keys of every collection, in first-seen order."""
    return list(dict.fromkeys(key for keys in collections for key in keys))


def _duration(value: Any) -> str:
    return format_duration(value) if isinstance(value, int | float) else MISSING


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


def _table(head: Sequence[Sequence[Cell]], rows: Sequence[Sequence[str]]) -> str:
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


# ---- the page --------------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 2em 3em;
       color: #222; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.2em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.4em; border-bottom: 1px solid #ddd; }
p.description { margin: 0.2em 0 0.8em; color: #444; }
p.missing { color: #888; font-style: italic; }
div.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
table.header td { text-align: left; }
"""

HEADER_FIELDS: dict[str, Callable[[Result], str]] = {
    "scenario": lambda r: r.scenario,
    "source": lambda r: r.source,
    "policy": lambda r: r.policy,
    "CPUs": lambda r: str(r.cpus),
    "duration": lambda r: format_duration(r.duration_ns),
    "seed": lambda r: MISSING if r.seed is None else str(r.seed),
}


def _header(runs: Sequence[Run]) -> str:
    """The run(s) at a glance: scenario, source, policy, CPUs, duration, seed, scalar meta."""
    meta_keys = _union(
        [k for k, v in result.meta.items() if k != "description" and _is_scalar(v)]
        for _, result in runs
    )
    rows = [[field, *(read(result) for _, result in runs)] for field, read in HEADER_FIELDS.items()]
    rows += [
        [key, *(str(result.meta.get(key, MISSING)) for _, result in runs)] for key in meta_keys
    ]
    head: list[list[Cell]] = [["", *(label for label, _ in runs)]] if len(runs) > 1 else []
    table = _table(head, rows).replace("<table>", "<table class='header'>", 1)
    descriptions = _union(
        [str(result.meta["description"])] for _, result in runs if result.meta.get("description")
    )
    text = "".join(f"<p class='description'>{html.escape(d)}</p>" for d in descriptions)
    return text + table


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _figure_sections(
    figures: dict[str, go.Figure], titles: dict[str, tuple[str, str]]
) -> list[str]:
    """One section per known figure key: the plot (no plotly.js: the page inlines it once), or a
    note saying which data were missing."""
    sections = []
    for key, (title, missing) in titles.items():
        fig = figures.get(key)
        if fig is None:
            sections.append(_section(title, f"<p class='missing'>No figure: {missing}.</p>"))
            continue
        fig.update_layout(template="plotly_white")
        plot = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"figure-{key}",
            config=PLOT_CONFIG,
            default_height=f"{fig.layout.height or 450}px",
        )
        sections.append(_section(title, plot))
    return sections


def _write_runs(
    path: str | Path,
    title: str,
    runs: Sequence[Run],
    figures: dict[str, go.Figure],
    titles: dict[str, tuple[str, str]],
) -> Path:
    """The page of one or more runs: header, figure sections, the task and cgroup tables."""
    sections = _figure_sections(figures, titles)
    sections.append(_section("Tasks", task_table(runs)))
    sections.append(_section("Cgroups", cgroup_table(runs)))
    return _write_page(path, title, _header(runs), sections)


def _write_page(path: str | Path, title: str, header: str, sections: Sequence[str]) -> Path:
    """Write one self-contained HTML page: plotly.js inlined once, no external resources."""
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head>"
        f"<body><h1>{html.escape(title)}</h1>{header}{''.join(sections)}</body></html>\n"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
