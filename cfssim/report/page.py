"""The report pages: `write_report` (one run) and `write_comparison_report` (two runs overlaid).

A page holds the run header, the run's warnings and failed timed writes (`run_notes`), one
section per figure — their time axes linked: zooming one zooms all (`SYNC_X`) — and the task and
cgroup tables. plotly.js (4.8 MB) comes from one of `PLOTLY_MODES`:

- ``inline`` (the default): inside the page — one self-contained file that opens offline;
- ``directory``: one shared ``plotly.min.js`` written beside the page (or in `plotly_dir`) and
  referenced relatively — many reports, one copy; move the directory as a whole;
- ``cdn``: a ``<script src>`` to plotly's CDN (small pages; needs the network to view).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.io._utils import plotly_cdn_url
from plotly.offline import get_plotlyjs

from ..result import Result
from .cgroups import memory_figure, throttling_figure, usage_figure
from .common import Run
from .cpu_timeline import timeline_figure
from .notes import run_notes
from .tables import cgroup_table, header_table, host_table, task_table
from .task_timeline import task_timeline_figure
from .vruntime import vruntime_figure

#: Plotly's client-side options for every figure (no logo, no link to an online service).
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
#: every figure's plot area starts and ends at the same pixels, so their time axes line up:
#: a fixed left margin (tick labels are kept within it), the legend above the plot
LEFT_MARGIN_PX = 190
ALIGNED: dict[str, Any] = {
    "margin": {"l": LEFT_MARGIN_PX, "r": 30},
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
}
#: where plotly.js comes from (see the module docstring)
PLOTLY_MODES = ("inline", "directory", "cdn")
PLOTLY_FILE = "plotly.min.js"

#: JavaScript: zooming or panning the time axis of one figure does the same to every other
#: figure of the page (all x axes are time in ms; subplots share theirs through ``matches``).
SYNC_X = """(() => {
  const plots = [...document.querySelectorAll('.plotly-graph-div')];
  let busy = false;
  for (const source of plots) {
    source.on('plotly_relayout', (change) => {
      if (busy) return;
      const range = ['xaxis.range[0]', 'xaxis.range[1]'].map((k) => change[k]);
      const update = change['xaxis.autorange'] ? {'xaxis.autorange': true}
        : range[0] !== undefined ? {'xaxis.range': range}
        : change['xaxis.range'] ? {'xaxis.range': change['xaxis.range']} : null;
      if (!update) return;
      busy = true;  // window.cfssimSynced: settles once every figure has followed
      window.cfssimSynced = Promise.all(
        plots.filter((p) => p !== source).map((p) => Plotly.relayout(p, update))
      ).finally(() => { busy = false; });
    });
  }
})();"""


def plotly_script(mode: str, page: Path, shared_dir: str | Path | None = None) -> str:
    """The ``<script>`` loading plotly.js for a page at `page` (see `PLOTLY_MODES`); in
    ``directory`` mode also writes the shared copy (once: an equal file is kept)."""
    if mode == "inline":
        return f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    if mode == "cdn":
        return f"<script src='{plotly_cdn_url()}' charset='utf-8'></script>"
    if mode != "directory":
        raise ValueError(f"plotly: expected one of {', '.join(PLOTLY_MODES)}, found {mode!r}")
    directory = Path(shared_dir) if shared_dir is not None else page.parent
    directory.mkdir(parents=True, exist_ok=True)
    bundle = get_plotlyjs()
    copy = directory / PLOTLY_FILE
    if not copy.exists() or copy.stat().st_size != len(bundle.encode()):
        copy.write_text(bundle, encoding="utf-8")
    src = Path(os.path.relpath(copy, page.parent)).as_posix()
    return f"<script src='{html.escape(src)}' charset='utf-8'></script>"


def write_report(
    result: Result, path: str | Path, plotly: str = "inline", plotly_dir: str | Path | None = None
) -> Path:
    """Write the HTML report of one run to `path`; returns the path. `plotly` says where
    plotly.js comes from (`PLOTLY_MODES`); `plotly_dir` is the shared directory of the
    ``directory`` mode (default: the report's own)."""
    runs = [(result.source, result)]
    title = f"cfssim report — {result.scenario}"
    page = Page(path, title, plotly, plotly_dir)
    return page.write(runs, build_figures(result), FIGURE_TITLES, run_notes(result))


def write_comparison_report(
    a: Result,
    b: Result,
    path: str | Path,
    labels: tuple[str, str] | None = None,
    plotly: str = "inline",
    plotly_dir: str | Path | None = None,
) -> Path:
    """Write ``compare.html``: usage, throttling and memory of `a` and `b` overlaid."""
    runs = list(zip(labels or run_labels(a, b), (a, b), strict=True))
    title = f"cfssim comparison — {a.scenario} vs {b.scenario}"
    notes = [f"{label}: {line}" for label, result in runs for line in run_notes(result)]
    page = Page(path, title, plotly, plotly_dir)
    return page.write(runs, build_comparison_figures(runs), COMPARISON_TITLES, notes)


def run_labels(a: Result, b: Result) -> tuple[str, str]:
    """Legend labels of two runs: their sources, or ``a (…)``/``b (…)`` when they are equal."""
    if a.source != b.source:
        return a.source, b.source
    return f"a ({a.source})", f"b ({b.source})"


def build_figures(result: Result) -> dict[str, go.Figure]:
    """The figures of one run, keyed like `FIGURE_TITLES`; figures without data are left out."""
    figures = {
        "timeline": timeline_figure(result),
        "tasks": task_timeline_figure(result),
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
    "tasks": ("Per-task timeline", "no run segments recorded"),
    "usage": ("CPU usage per period", "no bandwidth periods or run segments recorded"),
    "throttling": ("Throttling", "no bandwidth periods or throttle intervals recorded"),
    "memory": ("Memory", "no memory samples recorded"),
    "vruntime": ("vruntime (EEVDF: lag, request, eligibility)", "no vruntime samples recorded"),
}
COMPARISON_TITLES = {key: FIGURE_TITLES[key] for key in ("usage", "throttling", "memory")}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 2em 3em;
       color: #222; }
h1 { font-size: 1.5em; margin: 0.8em 0 0.2em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.4em; border-bottom: 1px solid #ddd; }
p.description { margin: 0.2em 0 0.8em; color: #444; }
p.missing { color: #888; font-style: italic; }
div.scroll { overflow: auto; max-width: 100%; max-height: 36em; }
table { border-collapse: collapse; font-size: 0.85em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; white-space: normal; overflow-wrap: anywhere;
                                 min-width: 8em; max-width: 22em; }
td:first-child { position: sticky; left: 0; background: #fff; }
table.header td { text-align: left; white-space: normal; overflow-wrap: anywhere; }
ul.notes { margin: 0.4em 0; padding-left: 1.4em; }
ul.notes li { color: #8a4b00; overflow-wrap: anywhere; }
"""


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _figure_sections(
    figures: dict[str, go.Figure], titles: dict[str, tuple[str, str]]
) -> list[str]:
    """One section per known figure key: the plot (no plotly.js: the page loads it once), or a
    note saying which data were missing."""
    sections = []
    for key, (title, missing) in titles.items():
        fig = figures.get(key)
        if fig is None:
            sections.append(_section(title, f"<p class='missing'>No figure: {missing}.</p>"))
            continue
        fig.update_layout(template="plotly_white", **ALIGNED)
        plot = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"figure-{key}",
            config=PLOT_CONFIG,
            default_height=f"{fig.layout.height or 450}px",
        )
        sections.append(_section(title, plot))
    return sections


def _notes_section(notes: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in notes)
    return _section(f"Warnings ({len(notes)})", f"<ul class='notes'>{items}</ul>")


@dataclass(frozen=True)
class Page:
    """One report page: where it goes, its title, and where plotly.js comes from."""

    path: str | Path
    title: str
    plotly: str = "inline"
    plotly_dir: str | Path | None = None

    def write(
        self,
        runs: Sequence[Run],
        figures: dict[str, go.Figure],
        titles: dict[str, tuple[str, str]],
        notes: Sequence[str],
    ) -> Path:
        """The page of one or more runs: header, warnings, figures (their time axes linked),
        the task and cgroup tables."""
        sections = [_notes_section(notes)] if notes else []
        sections += _figure_sections(figures, titles)
        sections.append(_section("Tasks", task_table(runs)))
        sections.append(_section("Cgroups", cgroup_table(runs)))
        host = host_table(runs)
        if host is not None:
            sections.append(_section("Simulated host", host))
        out = Path(self.path)
        out.parent.mkdir(parents=True, exist_ok=True)
        page = (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
            f"{plotly_script(self.plotly, out, self.plotly_dir)}</head>"
            f"<body><h1>{html.escape(self.title)}</h1>{header_table(runs)}{''.join(sections)}"
            f"<script type='text/javascript'>{SYNC_X}</script></body></html>\n"
        )
        out.write_text(page, encoding="utf-8")
        return out
