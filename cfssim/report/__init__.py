"""The HTML report: plotly figures of a run's `Result`, one page per run (or per comparison).

`write_report(result, path)` writes ``report.html`` for one run; `write_comparison_report(a, b,
path)` overlays two runs (typically simulated vs measured). Figures are built from the trace tables
(`cfssim.trace`) and work on either source; a figure whose tables are missing is left out and the
page says so.

Modules, one concept each: `page` (assembly, plotly.js modes, linked time axes), `cpu_timeline`,
`task_states` (per-task states derived from the trace) and `task_timeline`, `cgroups` (usage,
throttling, memory per cgroup), `vruntime` (with EEVDF lag, request and eligibility), `tables`
(header, task and cgroup tables, units), `notes` (warnings, failed writes), `palette`, `common`.

Times on the x axes are milliseconds (floats only here, at the edge); inside, int ns as everywhere.
"""

from __future__ import annotations

from ..trace import covered_ns
from .cgroups import MAX_CGROUP_ROWS, UsageSeries, cgroup_usage
from .common import Run, task_cgroups
from .cpu_timeline import timeline_figure
from .notes import run_notes
from .page import (
    COMPARISON_TITLES,
    FIGURE_TITLES,
    PLOTLY_FILE,
    PLOTLY_MODES,
    build_comparison_figures,
    build_figures,
    run_labels,
    write_comparison_report,
    write_report,
)
from .palette import cgroup_colours, distinct_colours
from .tables import cgroup_table, format_figure, is_bytes, task_table
from .task_states import STATES, TaskStates, task_states
from .task_timeline import EXPANDED_TASKS, task_timeline_figure
from .vruntime import MAX_VRUNTIME_TRACES, vruntime_figure

__all__ = [
    "COMPARISON_TITLES",
    "EXPANDED_TASKS",
    "FIGURE_TITLES",
    "MAX_CGROUP_ROWS",
    "MAX_VRUNTIME_TRACES",
    "PLOTLY_FILE",
    "PLOTLY_MODES",
    "STATES",
    "Run",
    "TaskStates",
    "UsageSeries",
    "build_comparison_figures",
    "build_figures",
    "cgroup_colours",
    "cgroup_table",
    "cgroup_usage",
    "covered_ns",
    "distinct_colours",
    "format_figure",
    "is_bytes",
    "run_labels",
    "run_notes",
    "task_cgroups",
    "task_states",
    "task_table",
    "task_timeline_figure",
    "timeline_figure",
    "vruntime_figure",
    "write_comparison_report",
    "write_report",
]
