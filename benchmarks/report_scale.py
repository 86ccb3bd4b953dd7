"""How the report scales with threads: 20, 200 and 1000 threads (200 run segments each).

Run: ``python benchmarks/report_scale.py [--threads 20,200,1000] [--no-browser] [--bar]``.
For each size it prints the time to derive the per-task states, to build the per-task timeline
and all figures, to write the page; the page sizes (plotly.js inline, and ``--plotly
directory``: the page alone); and — when ``/usr/bin/chromium`` exists — for the whole page in
headless Chromium: seconds until every figure is plotted, main-thread script and task seconds
(``Performance.getMetrics``), ms to zoom the per-task timeline in and out (the page's linked axes
zoom every other figure too), and ms to expand the largest cgroup's lanes (the dropdown).

With ``--bar`` it also builds the per-CPU timeline as ``go.Bar`` (one bar per segment), the
obvious alternative to the report's WebGL lines: plotly builds one SVG path per bar in
JavaScript, on the CPU, at load and again on every zoom or pan, where the Scattergl lines are a
few typed arrays handed to WebGL. Headless Chromium draws WebGL in software (SwiftShader), so
there the GPU's work shows up as task time — a browser with a GPU does it in milliseconds.
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

from cfssim.report import (
    build_figures,
    task_cgroups,
    task_states,
    task_timeline_figure,
    write_report,
)
from cfssim.result import Result
from cfssim.trace import Recorder
from cfssim.units import NSEC_PER_MSEC, NSEC_PER_USEC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_report import CHROMIUM, DevTools  # the tests' DevTools-protocol client

SEGMENTS_PER_THREAD = 200
CPUS = 8


def synthetic_run(threads: int, cgroups: int | None = None) -> Result:
    """`threads` threads in ``threads // 20`` cgroups (at least 1), 200 run segments each
    (0.05..2 ms) on random CPUs; between two segments a thread either sleeps then waits after
    its wakeup (``blocks`` and ``wakeups`` rows) or waits preempted; half the cgroups are
    throttled the last 40 ms of every 100 ms period; memory samples and vruntime too."""
    rng = np.random.default_rng(1)
    groups = cgroups or max(1, threads // 20)
    paths = [f"/g{i}" for i in range(groups)]
    names = [f"p{t % groups}-{t}/0" for t in range(threads)]
    n = SEGMENTS_PER_THREAD
    rec = Recorder()
    end = 0
    for t in range(threads):
        length = rng.integers(50 * NSEC_PER_USEC, 2 * NSEC_PER_MSEC, n)
        sleeps = rng.random(n) < 0.5
        sleep = np.where(sleeps, rng.integers(NSEC_PER_MSEC, 20 * NSEC_PER_MSEC, n), 0)
        wait = rng.integers(0, 3 * NSEC_PER_MSEC, n)
        start = np.cumsum(length + sleep + wait) - length
        stop = start + length
        for cpu, s, e in zip(rng.integers(0, CPUS, n).tolist(), start.tolist(), stop.tolist(),
                             strict=True):  # fmt: skip
            rec.segment(cpu, t, s, e)
        for i in np.flatnonzero(sleeps[1:]).tolist():  # a sleep before segment i + 1
            rec.add("blocks", t, int(stop[i]))
            woke = int(stop[i] + sleep[i + 1])
            rec.add("wakeups", t, 0, woke, int(start[i + 1]) - woke)
        end = max(end, int(stop[-1]))
    period = 100 * NSEC_PER_MSEC
    for k in range(end // period):
        for g in range(0, groups, 2):
            for cpu in range(CPUS):
                rec.add("throttles", g, cpu, k * period + 60 * NSEC_PER_MSEC, (k + 1) * period)
            rec.add("periods", g, k * period, period, 40 * NSEC_PER_MSEC, 1, 40 * NSEC_PER_MSEC)
        for g in range(groups):
            rec.add("memory", g, k * period, (k % 50 + g) << 20, 64 << 20)
    for t in range(threads):
        for k in range(1, end // period):
            rec.add("vruntime", t, k * period, k * period // threads)
    trace = rec.freeze(names, paths, CPUS)
    return Result(
        source="simulation",
        scenario=f"scale-{threads}",
        policy="eevdf",
        cpus=CPUS,
        duration_ns=end,
        seed=1,
        tasks={name: {"cgroup": paths[i % groups]} for i, name in enumerate(names)},
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
    print(f"  {what:<46} {time.perf_counter() - began:8.2f} s")
    return value


def size(what: str, path: Path) -> None:
    print(f"  {what:<46} {path.stat().st_size / 2**20:8.2f} MiB")


#: JavaScript: ms to zoom the per-task timeline to its first second (that figure alone), ms to
#: zoom in and back out until every other figure has followed (the page's linked axes), then ms
#: to expand the largest cgroup (the dropdown).
INTERACT = """(async () => {
  const div = document.getElementById('figure-tasks') ||
              document.querySelector('.plotly-graph-div');
  let began = performance.now();
  // the page's plotly_relayout handler starts the other figures' zoom after this one's
  const followed = () => new Promise((done) => setTimeout(done, 0)).then(() => window.cfssimSynced);
  await Plotly.relayout(div, {'xaxis.range': [0, 1000]});
  const alone = performance.now() - began;
  await followed();
  await Plotly.relayout(div, {'xaxis.autorange': true});
  await followed();
  await new Promise((done) => requestAnimationFrame(() => done()));
  const zoom = performance.now() - began;
  const menus = div.layout.updatemenus || [];
  let expand = -1;
  if (menus.length) {
    const buttons = menus[0].buttons.slice(1);
    const count = (b) => b.args[1]['yaxis.ticktext'].length;
    const largest = buttons.reduce((a, b) => (count(b) > count(a) ? b : a));
    began = performance.now();
    await Plotly.update(div, largest.args[0], largest.args[1]);
    await new Promise((done) => requestAnimationFrame(() => done()));
    expand = performance.now() - began;
  }
  return JSON.stringify({alone: alone, zoom: zoom, expand: expand});
})()"""

PLOTTED = """document.readyState === 'complete' && typeof Plotly !== 'undefined' &&
  document.querySelectorAll('.plotly-graph-div').length === 6 &&
  [...document.querySelectorAll('.plotly-graph-div')]
    .every((div) => !!div._fullLayout && !!div.querySelector('.main-svg'))"""


def browser_metrics(page: Path, profile: Path) -> dict[str, float]:
    """Load `page` in headless Chromium (SwiftShader WebGL: software, so GPU work shows up as
    task time) and measure: seconds until every figure is plotted, main-thread script and task
    seconds, ms to zoom in and out, ms to expand a cgroup."""
    import json

    browser = DevTools(
        ["--headless", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
         "--enable-unsafe-swiftshader", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
         f"--user-data-dir={profile}", "about:blank"],
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
        browser.wait_for(
            lambda: browser.call("Runtime.evaluate", expression=PLOTTED, timeout=600)["result"].get(
                "value"
            ),
            timeout=600,
        )
        loaded = time.perf_counter() - began
        metrics = {m["name"]: m["value"] for m in browser.call("Performance.getMetrics")["metrics"]}
        reply = browser.call(
            "Runtime.evaluate", expression=INTERACT, awaitPromise=True, timeout=600
        )
        acted = json.loads(reply["result"]["value"])
        return {
            "plotted_s": loaded,
            "script_s": metrics["ScriptDuration"],
            "task_s": metrics["TaskDuration"],
            "alone_ms": acted["alone"],
            "zoom_ms": acted["zoom"],
            "expand_ms": acted["expand"],
        }
    finally:
        browser.close()


def build_and_write(threads: int, out: Path, bar: bool) -> Path:
    """Time and size one size's report; returns the page (plotly.js inline)."""
    print(f"{threads} threads, {threads * SEGMENTS_PER_THREAD:,} segments:")
    result = timed("synthetic run", lambda: synthetic_run(threads))
    states = timed("task_states", lambda: task_states(result))
    print(f"  {'state intervals':<46} {len(states.task):8,}")
    timed("task_timeline_figure", lambda: task_timeline_figure(result))
    timed("build_figures (all 6 figures)", lambda: build_figures(result))
    page = out / f"{threads}" / "report.html"
    timed("write_report (plotly.js inline)", lambda: write_report(result, page))
    size("report.html, plotly.js inline", page)
    shared = out / f"{threads}-dir" / "report.html"
    write_report(result, shared, plotly="directory")
    size("report.html, --plotly directory (page alone)", shared)
    if bar:
        bars = timed("go.Bar per-CPU timeline", lambda: bar_timeline(result))
        bar_page = out / f"{threads}-bar.html"
        timed("go.Bar page write_html", lambda: bars.write_html(bar_page))
        size("go.Bar page", bar_page)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="20,200,1000", help="comma-separated sizes")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--bar", action="store_true", help="also time a go.Bar CPU timeline")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="cfssim-report-scale-"))
    browser = not args.no_browser and CHROMIUM.exists()
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        page = build_and_write(threads, out, args.bar)
        if browser:
            rows.append((threads, browser_metrics(page, out / f"profile-{threads}")))
    if rows:
        print(
            "headless Chromium, whole page: plotted / script / tasks / zoom in, per-task figure"
            " alone / zoom in+out, all figures following / expand a cgroup:"
        )
        for threads, m in rows:
            print(
                f"  {threads:>5} threads {m['plotted_s']:6.2f} s {m['script_s']:6.2f} s"
                f" {m['task_s']:6.2f} s {m['alone_ms']:6.0f} ms {m['zoom_ms']:8.0f} ms"
                f" {m['expand_ms']:6.0f} ms"
            )
    else:
        print("(no Chromium timings)")
    print(f"pages kept in {out}")


if __name__ == "__main__":
    main()
