"""How the report scales: a 200k-segment run, the WebGL timeline against a ``go.Bar`` one.

Run: ``python benchmarks/report_scale.py [--segments N] [--no-browser]``. Prints the time to build
the figures and write the page, the page sizes, and — when ``/usr/bin/chromium`` exists — the time
headless Chromium takes to load and render a page holding only the timeline (wall clock of
``--screenshot``, minus an empty page's).

The Bar timeline is the obvious alternative (one bar per segment, batched per cgroup too): it
serialises base + width per bar and plotly draws every bar as an SVG path, which is what makes it
unusable at this size; the Scattergl lines are a few typed arrays drawn by the GPU in one call.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from cfssim.report import build_figures, task_cgroups, timeline_figure, write_report
from cfssim.result import Result
from cfssim.trace import Recorder
from cfssim.units import NSEC_PER_MSEC, NSEC_PER_USEC

CHROMIUM = Path("/usr/bin/chromium")


def synthetic_run(segments: int, cpus: int = 8, tasks: int = 64, cgroups: int = 8) -> Result:
    """A run with `segments` run segments spread over `cpus` CPUs, back to back with small gaps
    (0.05..2 ms each), tasks spread over cgroups, some throttling, memory samples and vruntime."""
    rng = np.random.default_rng(1)
    paths = [f"/g{i}" for i in range(cgroups)]
    names = [f"p{i}/0" for i in range(tasks)]
    per_cpu = segments // cpus
    rec = Recorder()
    cols = rec.columns["segments"]
    end = 0
    for cpu in range(cpus):
        length = rng.integers(50 * NSEC_PER_USEC, 2 * NSEC_PER_MSEC, per_cpu)
        gap = rng.integers(0, 100 * NSEC_PER_USEC, per_cpu)
        start = np.cumsum(length + gap) - length
        task = rng.integers(0, tasks, per_cpu)
        for col, values in zip(
            cols, (np.full(per_cpu, cpu), task, start, start + length), strict=True
        ):
            col.extend(values.tolist())
        end = max(end, int(start[-1] + length[-1]))
    period = 100 * NSEC_PER_MSEC
    for k in range(end // period):
        for g in range(0, cgroups, 2):  # half the cgroups throttled in each period on each CPU
            for cpu in range(cpus):
                rec.add("throttles", g, cpu, k * period + 60 * NSEC_PER_MSEC, (k + 1) * period)
            rec.add(
                "periods", g, k * period, period, 40 * NSEC_PER_MSEC * cpus, 1, 40 * NSEC_PER_MSEC
            )
        for g in range(cgroups):
            rec.add("memory", g, k * period, (k % 50 + g) << 20, 64 << 20)
    for t in range(tasks):
        for k in range(1, end // period):
            rec.add("vruntime", t, k * period, k * period // tasks)
    trace = rec.freeze(names, paths, cpus)
    return Result(
        source="simulation",
        scenario=f"scale-{segments}",
        policy="eevdf",
        cpus=cpus,
        duration_ns=end,
        seed=1,
        tasks={name: {"cgroup": paths[i % cgroups]} for i, name in enumerate(names)},
        trace=trace,
    )


def bar_timeline(result: Result) -> go.Figure:
    """The alternative: one horizontal ``go.Bar`` per segment, one trace per cgroup."""
    assert result.trace is not None
    seg = result.trace["segments"]
    group_of = np.array(task_cgroups(result), dtype=object)[seg["task"]]
    names = np.array(result.trace.tasks, dtype=object)
    fig = go.Figure()
    for path in sorted(set(group_of.tolist())):
        rows = group_of == path
        fig.add_trace(
            go.Bar(
                base=seg["start"][rows] / NSEC_PER_MSEC,
                x=(seg["end"][rows] - seg["start"][rows]) / NSEC_PER_MSEC,
                y=seg["cpu"][rows],
                orientation="h",
                name=path,
                hovertext=names[seg["task"][rows]],
            )
        )
    fig.update_layout(barmode="overlay", bargap=0.2)
    return fig


def timed(what: str, action: Callable[[], Any]) -> Any:
    began = time.perf_counter()
    value = action()
    print(f"  {what:<44} {time.perf_counter() - began:8.2f} s")
    return value


def render_seconds(page: Path, timeout: float = 600) -> float:
    """Wall-clock seconds for headless Chromium to load `page` and take a screenshot."""
    with tempfile.TemporaryDirectory() as profile:
        began = time.perf_counter()
        subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1400,900",
             f"--screenshot={profile}/shot.png", page.as_uri()],
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=200_000)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    args = parser.parse_args()
    result = timed(
        f"synthetic run ({args.segments:,} segments)", lambda: synthetic_run(args.segments)
    )
    out = Path(tempfile.mkdtemp(prefix="cfssim-report-scale-"))
    print("Scattergl timeline (the report's):")
    figures = timed("build_figures (all 5 figures)", lambda: build_figures(result))
    timed("timeline_figure alone", lambda: timeline_figure(result))
    report = timed("write_report (whole page)", lambda: write_report(result, out / "report.html"))
    print(f"  {'report.html':<44} {report.stat().st_size / 2**20:8.1f} MiB")
    gl_page = out / "timeline-gl.html"
    timed("timeline page write_html", lambda: figures["timeline"].write_html(gl_page))
    print(f"  {'timeline page':<44} {gl_page.stat().st_size / 2**20:8.1f} MiB")
    print("go.Bar timeline (the alternative):")
    bars = timed("bar_timeline", lambda: bar_timeline(result))
    bar_page = out / "timeline-bar.html"
    timed("timeline page write_html", lambda: bars.write_html(bar_page))
    print(f"  {'timeline page':<44} {bar_page.stat().st_size / 2**20:8.1f} MiB")
    if args.no_browser or not CHROMIUM.exists():
        print("(no Chromium timings)")
        return
    empty = out / "empty.html"
    go.Figure().write_html(empty)
    baseline = render_seconds(empty)
    print(f"headless Chromium load + render, minus an empty plot page ({baseline:.2f} s):")
    for label, page in (("Scattergl timeline", gl_page), ("go.Bar timeline", bar_page)):
        try:
            print(f"  {label:<44} {render_seconds(page) - baseline:8.2f} s")
        except subprocess.TimeoutExpired as expired:
            print(f"  {label:<44} > {expired.timeout:.0f} s (gave up)")
    print(f"pages kept in {out}")


if __name__ == "__main__":
    main()
