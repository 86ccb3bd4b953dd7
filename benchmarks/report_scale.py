"""How the report scales: a 200k-segment run, the WebGL timeline against a ``go.Bar`` one.

Run: ``python benchmarks/report_scale.py [--segments N] [--no-browser]``. Prints the time to build
the figures and write the page, the page sizes, and — when ``/usr/bin/chromium`` exists — for a
page holding only the timeline, in headless Chromium: seconds until plotted, main-thread script
and task seconds (``Performance.getMetrics``), and ms to zoom in and out.

The Bar timeline is the obvious alternative (one bar per segment, batched per cgroup too): plotly
builds one SVG path per bar in JavaScript, on the CPU, at load and again on every zoom or pan. The
Scattergl lines are a few typed arrays handed to WebGL in one draw call; headless Chromium draws
WebGL in software (SwiftShader), so there the GPU's work shows up as task time — a browser with a
GPU does it in milliseconds, while the Bar page's script time is the same on any machine.
"""

from __future__ import annotations

import argparse
import sys
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_report import CHROMIUM, DevTools  # the tests' DevTools-protocol client


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


#: JavaScript: zoom the timeline to its first second and back; ms spent in Plotly.relayout.
ZOOM = """(async () => {
  const div = document.querySelector('.plotly-graph-div');
  const began = performance.now();
  await Plotly.relayout(div, {'xaxis.range': [0, 1000]});
  await Plotly.relayout(div, {'xaxis.autorange': true});
  return performance.now() - began;
})()"""


def browser_metrics(page: Path, profile: Path) -> dict[str, float]:
    """Load `page` in headless Chromium (SwiftShader WebGL: software, so GPU work shows up as
    task time) and measure: seconds until plotted, main-thread script and task seconds, and ms
    for a zoom in and out."""
    browser = DevTools(
        ["--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         "about:blank"],
        log=profile.with_suffix(".log"),
    )  # fmt: skip
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        attached = browser.call("Target.attachToTarget", targetId=target, flatten=True)
        browser.session = attached["sessionId"]
        for domain in ("Runtime", "Page", "Performance"):
            browser.call(f"{domain}.enable")
        began = time.perf_counter()
        browser.call("Page.navigate", url=page.as_uri())
        plotted = "!!(document.querySelector('.plotly-graph-div') || {})._fullLayout"
        browser.wait_for(
            lambda: browser.call("Runtime.evaluate", expression=plotted, timeout=600)["result"][
                "value"
            ],
            timeout=600,
        )
        loaded = time.perf_counter() - began
        metrics = {m["name"]: m["value"] for m in browser.call("Performance.getMetrics")["metrics"]}
        zoom = browser.call("Runtime.evaluate", expression=ZOOM, awaitPromise=True, timeout=600)
        return {
            "plotted_s": loaded,
            "script_s": metrics["ScriptDuration"],
            "task_s": metrics["TaskDuration"],
            "zoom_ms": zoom["result"]["value"],
        }
    finally:
        browser.close()


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
    print("headless Chromium: until plotted / main-thread script / all tasks / zoom in+out:")
    for label, page in (("Scattergl timeline", gl_page), ("go.Bar timeline", bar_page)):
        m = browser_metrics(page, out / f"profile-{page.stem}")
        print(
            f"  {label:<22} {m['plotted_s']:6.2f} s {m['script_s']:6.2f} s {m['task_s']:6.2f} s"
            f" {m['zoom_ms']:8.0f} ms"
        )
    print(f"pages kept in {out}")


if __name__ == "__main__":
    main()
