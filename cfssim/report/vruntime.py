"""Virtual time per task: vruntime, and under EEVDF its lag, request and eligibility.

Samples are taken when a task is put back or goes to sleep (``vruntime`` table); under EEVDF each
sample also holds ``entity_lag`` (V − v), the virtual deadline and ``entity_eligible`` (``eevdf``
table). One WebGL trace per task for the first `MAX_VRUNTIME_TRACES` tasks, the rest batched into
one grey trace per row; rows share the page's time axis.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..result import Result
from ..trace import Trace
from ..units import NSEC_PER_MSEC
from .common import task_name, time_axis, unique
from .palette import KILL_COLOUR, OTHER_COLOUR, distinct_colours

#: vruntime figure: tasks drawn one trace each; the rest share one grey trace.
MAX_VRUNTIME_TRACES = 20

#: rows of the figure: (y-axis title, table, column)
VRUNTIME_ROW = ("vruntime (virtual ms)", "vruntime", "vruntime")
EEVDF_ROWS = (
    ("lag V − v (virtual ms)", "eevdf", "lag"),
    ("deadline − vruntime (virtual ms)", "eevdf", "request"),
)


def vruntime_figure(result: Result) -> go.Figure | None:
    """vruntime of each task over time; with an ``eevdf`` table also its lag (ineligible
    samples marked ×) and the request left (virtual deadline − vruntime)."""
    trace = result.trace
    if trace is None or not len(trace["vruntime"]["time"]):
        return None
    tables = {"vruntime": _by_task(trace["vruntime"])}
    rows = [VRUNTIME_ROW]
    if len(trace["eevdf"]["time"]):
        tables["eevdf"] = _eevdf_samples(trace)
        rows += EEVDF_ROWS
    fig = make_subplots(
        rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.06 if len(rows) > 1 else 0
    )
    shown = unique(tables["vruntime"]["task"])[:MAX_VRUNTIME_TRACES]
    colours = dict(zip(shown, distinct_colours(len(shown)), strict=True))
    for row, (title, table, column) in enumerate(rows, start=1):
        _task_lines(fig, trace, tables[table], column, colours, row)
        fig.update_yaxes(title_text=title, row=row, col=1)
    if "eevdf" in tables:
        _ineligible_marks(fig, trace, tables["eevdf"], row=2)
    fig.update_layout(
        height=420 + 260 * (len(rows) - 1), margin={"t": 30, "b": 40}, hovermode="closest"
    )
    fig.update_xaxes(range=time_axis(result.duration_ns)["range"])
    fig.update_xaxes(title_text="time (ms)", row=len(rows), col=1)
    return fig


def _by_task(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The table's columns sorted by (task, time), keeping recording order among equals."""
    order = np.lexsort((table["time"], table["task"]))
    return {col: values[order] for col, values in table.items()}


def _eevdf_samples(trace: Trace) -> dict[str, np.ndarray]:
    """The ``eevdf`` rows by task, with ``request`` = deadline − vruntime where each row pairs
    with a vruntime sample (both are recorded at the same call sites), else the deadline."""
    eevdf, vr = _by_task(trace["eevdf"]), _by_task(trace["vruntime"])
    paired = len(vr["time"]) == len(eevdf["time"]) and np.array_equal(vr["time"], eevdf["time"])
    paired = paired and np.array_equal(vr["task"], eevdf["task"])
    eevdf["request"] = eevdf["deadline"] - vr["vruntime"] if paired else eevdf["deadline"]
    return eevdf


def _task_lines(
    fig: go.Figure,
    trace: Trace,
    table: dict[str, np.ndarray],
    column: str,
    colours: dict[int, str],
    row: int,
) -> None:
    """One line per task in `colours` (legend shown in the first row only), the other tasks in
    one grey trace with a gap between tasks."""
    task, time, value = table["task"], table["time"], table[column]
    tasks = unique(task)
    cuts = np.searchsorted(task, [*tasks, tasks[-1] + 1])
    for i, index in enumerate(tasks):
        if index not in colours:
            break
        part = slice(cuts[i], cuts[i + 1])
        name = task_name(trace, int(index))
        fig.add_trace(
            go.Scattergl(
                x=time[part] / NSEC_PER_MSEC,
                y=value[part] / NSEC_PER_MSEC,
                mode="lines",
                line={"color": colours[index], "width": 1.5},
                name=name,
                legendgroup=name,
                showlegend=row == 1,
                hovertemplate="%{y:.3f} at %{x:.3f} ms<extra>" + name + "</extra>",
            ),
            row=row,
            col=1,
        )
    rest = tasks[len(colours) :]
    if rest:
        part = slice(cuts[len(colours)], cuts[-1])
        # a NaN after each task's last sample keeps the tasks' lines apart
        last = np.flatnonzero(np.r_[task[part][1:] != task[part][:-1], True]) + 1
        fig.add_trace(
            go.Scattergl(
                x=np.insert(time[part] / NSEC_PER_MSEC, last, np.nan),
                y=np.insert(value[part] / NSEC_PER_MSEC, last, np.nan),
                mode="lines",
                line={"color": OTHER_COLOUR, "width": 1},
                name=f"{len(rest)} other tasks",
                legendgroup="other tasks",
                showlegend=row == 1,
                hoverinfo="skip",
            ),
            row=row,
            col=1,
        )


def _ineligible_marks(fig: go.Figure, trace: Trace, eevdf: dict[str, np.ndarray], row: int) -> None:
    """The samples where the task was not eligible (v > V), as × on the lag row."""
    rows = eevdf["eligible"] == 0
    if not rows.any():
        return
    names = np.array(trace.tasks, dtype=object)
    fig.add_trace(
        go.Scattergl(
            x=eevdf["time"][rows] / NSEC_PER_MSEC,
            y=eevdf["lag"][rows] / NSEC_PER_MSEC,
            mode="markers",
            marker={"symbol": "x", "size": 5, "color": KILL_COLOUR},
            name="not eligible",
            text=names[eevdf["task"][rows]],
            hovertemplate="%{text} not eligible: lag %{y:.3f}<br>%{x:.3f} ms<extra></extra>",
        ),
        row=row,
        col=1,
    )
