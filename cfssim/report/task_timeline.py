"""The per-task timeline: one lane per thread, grouped by cgroup, coloured by state.

States come from `task_states` (running, waiting, throttled, sleeping, OOM wait). Up to
`EXPANDED_TASKS` threads every thread has its own lane. Beyond that each cgroup shows one summary
lane — a thin strip per state, drawn wherever any of its threads is in that state, merged across
gaps shorter than a pixel at full width (`SUMMARY_PIXELS`) — and a dropdown expands one cgroup
into its thread lanes. Every (lane group, state) is one WebGL line trace (``x = [start, end, NaN,
…]``), so zoom and hover stay fast at 1000 threads (``benchmarks/report_scale.py``).
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
    ntasks = sum(len(m) for m in lanes.members.values())
    with_text = len(states.task) <= TEXT_INTERVALS
    fig = go.Figure()
    if ntasks <= EXPANDED_TASKS:
        lane_of = np.zeros(len(names), dtype=np.int32)
        ticks: list[str] = []
        for path in lanes.cgroups:
            for index in lanes.members[path]:
                lane_of[index] = len(ticks)
                ticks.append(f"{path} · {names[index]}")
        _add_thread_traces(fig, states, np.arange(len(names)), lane_of, names, with_text, "")
        _lane_axis(fig, ticks)
    else:
        _collapsible(fig, result, states, lanes, with_text)
    fig.update_layout(
        margin={"t": 30, "b": 40},
        hovermode="closest",
        xaxis=time_axis(result.duration_ns),
        legend={"traceorder": "normal"},
    )
    return fig


def _collapsible(
    fig: go.Figure, result: Result, states: TaskStates, lanes: Lanes, with_text: bool
) -> None:
    """Summary lanes for every cgroup, then the thread lanes of each cgroup (hidden; all at
    the same place below the summaries), and a dropdown to expand one cgroup at a time."""
    assert result.trace is not None
    names = result.trace.tasks
    groups = len(lanes.cgroups)
    group_of = np.zeros(len(names), dtype=np.int32)
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
                    text=text,
                    mode="lines",
                    line={"color": STATE_COLOURS[state], "width": 3},
                    name=STATE_LABELS[state],
                    legendgroup=state,
                    hovertemplate="%{text}<br>%{x:.3f} ms<extra>"
                    + STATE_LABELS[state]
                    + "</extra>",
                )
            )
    summary_traces = len(fig.data)
    owners: list[str] = []
    for path in lanes.cgroups:
        members = np.array(lanes.members[path])
        lane_of = np.zeros(len(names), dtype=np.int32)
        lane_of[members] = groups + np.arange(len(members))
        before = len(fig.data)
        _add_thread_traces(fig, states, members, lane_of, names, with_text, path, visible=False)
        owners += [path] * (len(fig.data) - before)
    summary_ticks = [f"{path} ({len(lanes.members[path])})" for path in lanes.cgroups]
    buttons = [_view(summary_ticks, [], summary_traces, owners, None, "all cgroups collapsed")]
    for path in lanes.cgroups:
        threads = [f"{path} · {names[i]}" for i in lanes.members[path]]
        label = f"expand {path} ({len(threads)} threads)"
        buttons.append(_view(summary_ticks, threads, summary_traces, owners, path, label))
    _lane_axis(fig, summary_ticks)
    fig.update_layout(
        updatemenus=[
            {"buttons": buttons, "direction": "down", "x": 1, "xanchor": "right", "y": 1.02,
             "yanchor": "bottom", "showactive": True, "pad": {"b": 4}}
        ],
        margin={"t": 60},
    )  # fmt: skip


def _view(
    summary: list[str],
    threads: list[str],
    summary_traces: int,
    owners: list[str],
    expanded: str | None,
    label: str,
) -> dict[str, Any]:
    """A dropdown entry: the summary lanes plus the threads of `expanded`."""
    visible = [True] * summary_traces + [owner == expanded for owner in owners]
    ticks = summary + threads
    return {
        "label": label,
        "method": "update",
        "args": [{"visible": visible}, _axis_update(ticks)],
    }


def _axis_update(ticks: list[str]) -> dict[str, Any]:
    lanes = len(ticks)
    ticks = [_short(tick) for tick in ticks]
    return {
        "yaxis.tickvals": list(range(lanes)),
        "yaxis.ticktext": ticks,
        "yaxis.range": [lanes - 0.5, -0.5],
        "height": _height(lanes),
    }


def _short(label: str) -> str:
    """A lane label that fits the page's left margin: long ones keep their end (the thread)."""
    return label if len(label) <= LABEL_CHARS else "…" + label[-(LABEL_CHARS - 1) :]


def _height(lanes: int) -> int:
    return int(min(MAX_HEIGHT, max(MIN_HEIGHT, 110 + LANE_PX * lanes)))


def _lane_axis(fig: go.Figure, ticks: list[str]) -> None:
    update = _axis_update(ticks)
    fig.update_layout(
        height=update["height"],
        yaxis={
            "tickvals": update["yaxis.tickvals"],
            "ticktext": update["yaxis.ticktext"],
            "range": update["yaxis.range"],
            "zeroline": False,
            "showgrid": False,
            "automargin": False,
        },
    )


def _add_thread_traces(
    fig: go.Figure,
    states: TaskStates,
    members: np.ndarray,
    lane_of: np.ndarray,
    names: list[str],
    with_text: bool,
    path: str,
    visible: bool = True,
) -> None:
    """One WebGL line trace per state over the lanes of `members` (sleeping thin, underneath)."""
    mine = np.isin(states.task, members)
    name_of = np.array(names, dtype=object)
    for code in (SLEEPING, *(i for i in range(len(STATES)) if i != SLEEPING)):
        state = STATES[code]
        rows = mine & (states.state == code)
        if not rows.any():
            continue
        task = states.task[rows]
        label = STATE_LABELS[state] + (f" · {path}" if path else "")
        text = gapped(name_of[task], name_of[task], gap="") if with_text else None
        fig.add_trace(
            go.Scattergl(
                x=gapped(states.start[rows] / NSEC_PER_MSEC, states.end[rows] / NSEC_PER_MSEC),
                y=np.repeat(lane_of[task], 3).astype(np.int16),
                text=text,
                mode="lines",
                line={"color": STATE_COLOURS[state], "width": 3 if code == SLEEPING else 9},
                name=label,
                legendgroup=state,
                visible=visible,
                hovertemplate=("%{text}<br>" if with_text else "lane %{y}<br>")
                + "%{x:.3f} ms<extra>"
                + label
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
