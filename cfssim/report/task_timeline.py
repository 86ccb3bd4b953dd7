"""The per-task timeline: one lane per thread, grouped by cgroup, coloured by state.

States come from `task_states` (running, waiting, throttled, sleeping, OOM wait). Up to
`EXPANDED_TASKS` threads every thread's lane is shown. Beyond that each cgroup shows one summary
lane — a thin strip per state, drawn wherever any of its threads is in that state, merged across
gaps shorter than a pixel at full width (`SUMMARY_PIXELS`) — and a dropdown expands one cgroup
into its thread lanes (its traces shown, the lane axis opened). Each (cgroup, state) is one WebGL
line trace (``x = [start, end, NaN, …]``), hidden until expanded, so loading, zoom and hover
stay fast at 1000 threads (``benchmarks/report_scale.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..result import Result
from ..units import NSEC_PER_MSEC
from .common import gapped, task_cgroups, time_axis
from .palette import STATE_COLOURS
from .task_states import SLEEPING, STATES, TaskStates, merge_intervals, task_states

#: up to this many threads, every thread gets its own lane (no summary lanes, no dropdown)
EXPANDED_TASKS = 48
#: summary lanes: intervals closer than duration / SUMMARY_PIXELS are merged
SUMMARY_PIXELS = 3000
#: hover names each thread while the thread traces hold at most this many intervals
TEXT_INTERVALS = 100_000
#: labels of the states in legends and hovers
STATE_LABELS = {
    "running": "running",
    "waiting": "runnable, waiting",
    "throttled": "throttled",
    "sleeping": "sleeping",
    "oom": "OOM wait",
}
#: a summary lane's strips: state → offset from the lane's centre (sleeping is not drawn)
STRIP_OFFSETS = {"running": -0.3, "waiting": -0.1, "throttled": 0.1, "oom": 0.3}
LANE_PX, MIN_HEIGHT, MAX_HEIGHT = 16, 220, 1600
#: lane labels longer than this are cut at the front (they must fit the page's left margin)
LABEL_CHARS = 28


@dataclass(frozen=True)
class Lanes:
    """Thread lanes: per cgroup (sorted), its task indices sorted by name."""

    cgroups: list[str]
    members: dict[str, list[int]]


def task_lanes(result: Result) -> Lanes:
    """The tasks of the trace grouped by cgroup, in path order, each group by task name."""
    assert result.trace is not None
    names = result.trace.tasks
    members: dict[str, list[int]] = {}
    for index, path in enumerate(task_cgroups(result)):
        members.setdefault(path, []).append(index)
    paths = sorted(members)
    return Lanes(paths, {p: sorted(members[p], key=lambda i: names[i]) for p in paths})


def task_timeline_figure(result: Result) -> go.Figure | None:
    """The per-task timeline of `result` (None without run segments)."""
    states = task_states(result)
    if states is None or result.trace is None:
        return None
    lanes = task_lanes(result)
    names = result.trace.tasks
    lane_of = np.zeros(len(names), dtype=np.int32)
    ticks: list[str] = []
    for path in lanes.cgroups:
        for index in lanes.members[path]:
            lane_of[index] = len(ticks)
            ticks.append(f"{path} · {names[index]}")
    fig = go.Figure()
    with_text = len(states.task) <= TEXT_INTERVALS
    if len(ticks) <= EXPANDED_TASKS:
        _add_thread_traces(fig, states, states.task >= 0, lane_of, names, with_text)
    fig.update_layout(
        margin={"t": 30, "b": 40},
        hovermode="closest",
        xaxis=time_axis(result.duration_ns),
        legend={"traceorder": "normal"},
        yaxis=_lane_axis(ticks, 0, len(ticks)),
        height=_height(len(ticks)),
    )
    if len(ticks) > EXPANDED_TASKS:
        _collapsible(fig, result, states, lanes, ticks, lane_of, with_text)
    return fig


def _collapsible(
    fig: go.Figure,
    result: Result,
    states: TaskStates,
    lanes: Lanes,
    ticks: list[str],
    lane_of: np.ndarray,
    with_text: bool,
) -> None:
    """Summary lanes for every cgroup on a second y axis above the thread lanes, the thread
    axis collapsed; each cgroup's thread traces hidden until the dropdown expands it (hidden
    traces cost the browser nothing: drawing every lane, even out of view, is what is slow
    without a GPU)."""
    assert result.trace is not None
    names = result.trace.tasks
    owners: list[str | None] = []
    for path in lanes.cgroups:
        before = len(fig.data)
        mine = np.isin(states.task, lanes.members[path])
        _add_thread_traces(fig, states, mine, lane_of, names, with_text, visible=False)
        owners += [path] * (len(fig.data) - before)
    groups = len(lanes.cgroups)
    group_of = np.zeros(len(result.trace.tasks), dtype=np.int32)
    for g, path in enumerate(lanes.cgroups):
        group_of[lanes.members[path]] = g
    tolerance = max(1, result.duration_ns // SUMMARY_PIXELS)
    for state, offset in STRIP_OFFSETS.items():
        code = STATES.index(state)
        x, y, text = _summary_strips(states, group_of, code, tolerance, groups, lanes.cgroups)
        if len(x):
            fig.add_trace(
                go.Scattergl(
                    x=x,
                    y=y + offset,
                    yaxis="y2",
                    text=text,
                    mode="lines",
                    line={"color": STATE_COLOURS[state], "width": 3},
                    name=f"{STATE_LABELS[state]} (any thread)",
                    legendgroup=state,
                    hovertemplate="%{text}<br>%{x:.3f} ms<extra>"
                    + STATE_LABELS[state]
                    + "</extra>",
                )
            )
    owners += [None] * (len(fig.data) - len(owners))  # the summary traces
    summary = [f"{path} ({len(lanes.members[path])})" for path in lanes.cgroups]
    buttons = [_view(summary, ticks, 0, 0, "all cgroups collapsed", owners, None)]
    first = 0
    for path in lanes.cgroups:
        count = len(lanes.members[path])
        label = f"expand {path} ({count} threads)"
        buttons.append(_view(summary, ticks, first, first + count, label, owners, path))
        first += count
    collapsed = buttons[0]["args"][1]
    fig.update_layout(
        yaxis={**_lane_axis(ticks, 0, 0), "domain": collapsed["yaxis.domain"], "visible": False},
        yaxis2={**_lane_axis(summary, 0, groups), "domain": collapsed["yaxis2.domain"]},
        height=collapsed["height"],
        updatemenus=[
            {"buttons": buttons, "direction": "down", "x": 1, "xanchor": "right", "y": 1.02,
             "yanchor": "bottom", "showactive": True, "pad": {"b": 4}, "type": "dropdown"}
        ],
        margin={"t": 60},
    )  # fmt: skip


def _view(
    summary: list[str],
    ticks: list[str],
    first: int,
    end: int,
    label: str,
    owners: list[str | None],
    expanded: str | None,
) -> dict[str, Any]:
    """A dropdown entry: the summary lanes above thread lanes `first`..`end` — the traces of
    cgroup `expanded` (None: the thread axis collapsed)."""
    groups, shown = len(summary), end - first
    top = 1 - groups / (groups + shown) if shown else 0.0
    axis = _lane_axis(ticks, first, end)
    visible = [owner is None or owner == expanded for owner in owners]
    return {
        "label": label,
        "method": "update",
        "args": [
            {"visible": visible},
            {
                "yaxis.domain": [0, max(top - 0.02, 0.001)],
                "yaxis.visible": bool(shown),
                "yaxis.range": axis["range"],
                "yaxis.tickvals": axis["tickvals"],
                "yaxis.ticktext": axis["ticktext"],
                "yaxis2.domain": [top, 1],
                "height": _height(groups + shown),
            },
        ],
    }


def _lane_axis(ticks: list[str], first: int, end: int) -> dict[str, Any]:
    """A y axis showing lanes `first`..`end` (top to bottom) labelled from `ticks`."""
    return {
        "tickvals": list(range(first, end)),
        "ticktext": [_short(tick) for tick in ticks[first:end]],
        "range": [end - 0.5, first - 0.5],
        "zeroline": False,
        "showgrid": False,
        "automargin": False,
        "fixedrange": False,
    }


def _short(label: str) -> str:
    """A lane label that fits the page's left margin: long ones keep their end (the thread)."""
    return label if len(label) <= LABEL_CHARS else "…" + label[-(LABEL_CHARS - 1) :]


def _height(lanes: int) -> int:
    return int(min(MAX_HEIGHT, max(MIN_HEIGHT, 110 + LANE_PX * lanes)))


def _add_thread_traces(
    fig: go.Figure,
    states: TaskStates,
    rows_of: np.ndarray,
    lane_of: np.ndarray,
    names: list[str],
    with_text: bool,
    visible: bool = True,
) -> None:
    """One WebGL line trace per state over the lanes of the intervals selected by `rows_of`
    (sleeping thin, underneath)."""
    name_of = np.array(names, dtype=object)
    for code in (SLEEPING, *(i for i in range(len(STATES)) if i != SLEEPING)):
        state = STATES[code]
        rows = rows_of & (states.state == code)
        if not rows.any():
            continue
        task = states.task[rows]
        text = gapped(name_of[task], name_of[task], gap="") if with_text else None
        fig.add_trace(
            go.Scattergl(
                x=gapped(states.start[rows] / NSEC_PER_MSEC, states.end[rows] / NSEC_PER_MSEC),
                y=np.repeat(lane_of[task], 3).astype(np.int16 if len(names) < 32_000 else np.int32),
                text=text,
                mode="lines",
                line={"color": STATE_COLOURS[state], "width": 3 if code == SLEEPING else 9},
                name=STATE_LABELS[state],
                legendgroup=state,
                visible=visible,
                hovertemplate=("%{text}<br>" if with_text else "lane %{y}<br>")
                + "%{x:.3f} ms<extra>"
                + STATE_LABELS[state]
                + "</extra>",
            )
        )


def _summary_strips(
    states: TaskStates,
    group_of: np.ndarray,
    code: int,
    tolerance: int,
    groups: int,
    paths: list[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cgroup: where any of its threads is in state `code`, as merged intervals (gaps under
    `tolerance` ns closed), gapped for one line trace: (x ms, y lane, hover text)."""
    rows = states.state == code
    group = group_of[states.task[rows]]
    start, end = states.start[rows], states.end[rows]
    xs, ys, texts = [], [], []
    for g in range(groups):
        mine = group == g
        if not mine.any():
            continue
        lo, hi = merge_intervals(start[mine], end[mine], tolerance)
        xs.append(gapped(lo / NSEC_PER_MSEC, hi / NSEC_PER_MSEC))
        ys.append(np.full(3 * len(lo), g, dtype=np.float64))
        texts.append(np.full(3 * len(lo), paths[g], dtype=object))
    if not xs:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=object)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(texts)
