"""The per-CPU timeline: which task runs on which CPU, throttled intervals, kills.

All run segments of one cgroup are batched into one WebGL line trace (``x = [start, end, NaN,
…]``), which stays responsive at 200k segments (see ``benchmarks/report_scale.py``).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..result import Result
from ..trace import Trace
from ..units import NSEC_PER_MSEC
from .common import cgroup_name, gapped, kill_text, task_cgroups, time_axis, unique
from .palette import KILL_COLOUR, OTHER_COLOUR, cgroup_colours, rgba


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
    for path in unique(seg_group):
        rows = seg_group == path
        task = seg["task"][rows]
        fig.add_trace(
            go.Scattergl(
                x=gapped(seg["start"][rows] / NSEC_PER_MSEC, seg["end"][rows] / NSEC_PER_MSEC),
                y=np.repeat(seg["cpu"][rows], 3).astype(np.int16),  # x's NaN makes the gap
                text=gapped(names[task], names[task], gap=""),
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
        xaxis=time_axis(result.duration_ns),
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
    for index in unique(thr["cgroup"]):
        rows = thr["cgroup"] == index
        path = cgroup_name(trace, int(index))
        start, end = thr["start"][rows] / NSEC_PER_MSEC, thr["end"][rows] / NSEC_PER_MSEC
        low, high = thr["cpu"][rows] - 0.45, thr["cpu"][rows] + 0.45
        nan = np.full(len(start), np.nan)
        bands.append(
            go.Scattergl(
                x=np.column_stack([start, end, end, start, start, nan]).ravel(),
                y=np.column_stack([low, low, high, high, low, nan]).ravel(),
                fill="toself",
                fillcolor=rgba(colours.get(path, OTHER_COLOUR), 0.22),
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
        text=[kill_text(trace, i, names) for i in range(len(kills["time"]))],
        hovertemplate="%{text}<br>%{x:.3f} ms<extra></extra>",
    )
