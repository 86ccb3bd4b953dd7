"""The HTML report: figures built from a hand-made run whose numbers follow from CFS bandwidth
rules, the page's offline self-containment, and (marked ``browser``) rendering in headless
Chromium.

The fake run: 2 CPUs, 1 s, cgroups ``/``, ``/batch`` and ``/web`` (quota 50 ms per 100 ms period).
Each period ``web/0`` (CPU 0) and ``web/1`` (CPU 1) both run 25 ms from the period start: 50 ms of
quota is gone at +25 ms, so ``/web`` is throttled on both CPUs until the period ends (8 periods,
2 × 75 ms each). ``batch/0`` fills CPU 1 from +25 ms; ``init/0`` runs 5 ms on CPU 0 at +30 ms.
``/web`` allocates 8 MiB per period against a 64 MiB limit: full at 700 ms, and at 800 ms the next
charge OOM-kills ``web/1`` (usage back to 32 MiB); periods 8 and 9 have only ``web/0``: 25 ms,
not throttled.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from plotly.offline import get_plotlyjs

from cfssim.behaviour import program
from cfssim.cli import main
from cfssim.profile import default_profile
from cfssim.report import (
    MAX_VRUNTIME_TRACES,
    PLOTLY_FILE,
    PLOTLY_MODES,
    build_comparison_figures,
    build_figures,
    cgroup_colours,
    distinct_colours,
    format_figure,
    task_states,
    write_comparison_report,
    write_report,
)
from cfssim.report_options import PLOTLY_CHOICES
from cfssim.result import Result
from cfssim.scenario import bundled_scenarios, load_scenario
from cfssim.simulation import Simulation, run_scenario
from cfssim.trace import Recorder, Trace, covered_ns
from cfssim.units import NSEC_PER_MSEC as MS
from cfssim.units import format_duration

MIB = 1 << 20
PERIOD = 100 * MS
QUOTA = 50 * MS
KILL_AT = 800 * MS
TASKS = ["web/0", "web/1", "batch/0", "init/0"]
CGROUPS = ["/", "/batch", "/web"]
TASK_CGROUP = {"web/0": "/web", "web/1": "/web", "batch/0": "/batch", "init/0": "/"}


def fake_run() -> Result:
    """The run described in the module docstring, recorded through the real `Recorder`."""
    rec = Recorder()
    web, batch = CGROUPS.index("/web"), CGROUPS.index("/batch")
    vruntime = dict.fromkeys(TASKS, 0)

    def run(cpu: int, task: str, start: int, end: int) -> None:
        rec.segment(cpu, TASKS.index(task), start, end)
        vruntime[task] += end - start
        rec.add("vruntime", TASKS.index(task), end, vruntime[task])

    for k in range(10):
        p = k * PERIOD
        both = p < KILL_AT
        run(0, "web/0", p, p + 25 * MS)
        if both:
            run(1, "web/1", p, p + 25 * MS)
            for cpu in (0, 1):
                rec.add("throttles", web, cpu, p + 25 * MS, p + PERIOD)
        run(1, "batch/0", p + 25 * MS, p + PERIOD)
        run(0, "init/0", p + 30 * MS, p + 35 * MS)
        rec.add("periods", web, p, PERIOD, (50 if both else 25) * MS, int(both), QUOTA)
        if k < 8:
            rec.add("memory", web, p, (k + 1) * 8 * MIB, 64 * MIB)
        rec.add("memory", batch, p, 4 * MIB, -1)
    rec.add("kills", TASKS.index("web/1"), web, KILL_AT, 0)
    rec.add("memory", web, KILL_AT, 32 * MIB, 64 * MIB)
    trace = rec.freeze(TASKS, CGROUPS, cpus=2)

    def task(name: str, cpu_ms: int, exit: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "cgroup": TASK_CGROUP[name],
            "cpu_time_ns": cpu_ms * MS,
            "wait_time_ns": 0,
            "timeslices": 10,
            "nr_switches": 10,
            "nr_voluntary_switches": 10,
            "nr_involuntary_switches": 0,
            "nr_migrations": 0,
            "wakeups": 10,
            "wakeup_latency_ns": {"p50": 0, "p99": 75 * MS, "max": 75 * MS, "mean": 0},
            "exit": exit,
        }

    return Result(
        source="simulation",
        scenario="fake-web",
        policy="eevdf",
        cpus=2,
        duration_ns=1000 * MS,
        seed=7,
        tasks={
            "web/0": task("web/0", 250),
            "web/1": task("web/1", 200, {"time_ns": KILL_AT, "reason": "oom_kill"}),
            "batch/0": task("batch/0", 750),
            "init/0": task("init/0", 50),
        },
        cgroups={
            "/": {"cpuacct.usage": 1250 * MS, "cpu.cfs_quota_us": -1, "cpu.cfs_period_us": 100000},
            "/batch": {"cpuacct.usage": 750 * MS, "memory.limit_in_bytes": 9223372036854771712},
            "/web": {
                "cpu.stat": {
                    "nr_periods": 10,
                    "nr_throttled": 8,
                    "throttled_time": 8 * 2 * 75 * MS,
                    "nr_bursts": 0,
                    "burst_time": 0,
                },
                "cpuacct.usage": 450 * MS,
                "cpu.cfs_quota_us": 50000,
                "cpu.cfs_period_us": 100000,
                "memory.limit_in_bytes": 64 * MIB,
                "memory.max_usage_in_bytes": 64 * MIB,
                "memory.failcnt": 1,
                "memory.oom_control": {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 1},
            },
        },
        meta={"description": "Two web threads against a 50% quota and a 64 MiB limit."},
        trace=trace,
    )


def kernel_like(result: Result) -> Result:
    """A measured-style Result of the same run: only the periods and memory tables."""
    assert result.trace is not None
    keep = {name: result.trace.tables[name] for name in ("periods", "memory")}
    measured = Result.from_dict({**result.to_dict(), "source": "kernel", "policy": "kernel-6.18"})
    measured.trace = Trace(tasks=[], cgroups=result.trace.cgroups, cpus=2, tables=keep)
    return measured


def traces(fig: go.Figure, name_part: str) -> list[Any]:
    return [t for t in fig.data if name_part in (t.name or "")]


# ---- figures -------------------------------------------------------------------------------
def test_all_figures_built_from_a_full_trace() -> None:
    figures = build_figures(fake_run())
    assert list(figures) == ["timeline", "tasks", "usage", "throttling", "memory", "vruntime"]


def test_timeline_is_one_webgl_line_trace_per_cgroup() -> None:
    fig = build_figures(fake_run())["timeline"]
    lines = [t for t in fig.data if t.mode == "lines" and t.fill is None]
    assert [t.name for t in lines] == ["/", "/batch", "/web"]
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    web = next(t for t in lines if t.name == "/web")
    # 10 web/0 + 8 web/1 segments, each [start, end, gap]
    assert len(web.x) == 3 * 18
    assert list(web.x[:3][:2]) == [0.0, 25.0] and np.isnan(web.x[2])
    assert set(web.text) == {"web/0", "web/1", ""}
    assert list(web.y[:2]) == [0, 0]


def test_timeline_shades_throttled_intervals_and_marks_the_kill() -> None:
    fig = build_figures(fake_run())["timeline"]
    (band,) = traces(fig, "/web throttled")
    assert band.fill == "toself"
    # 8 periods × 2 CPUs, one closed rectangle (5 points + gap) each
    assert len(band.x) == 16 * 6
    assert list(band.x[:5]) == [25.0, 100.0, 100.0, 25.0, 25.0]
    assert list(band.y[:4]) == [-0.45, -0.45, 0.45, 0.45]
    (kill,) = traces(fig, "killed")
    assert list(kill.x) == [800.0]
    assert list(kill.y) == [1]  # web/1 last ran on CPU 1
    assert kill.text == ("oom_kill: web/1 (/web)",)


def test_kill_marker_sits_on_the_cpu_the_task_ran_on_last() -> None:
    rec = Recorder()
    for cpu, start in ((1, 0), (0, 10 * MS), (1, 5 * MS)):  # recorded out of order
        rec.segment(cpu, 0, start, start + MS)
    rec.add("kills", 0, 0, 12 * MS, 2)
    result = Result("simulation", "k", "eevdf", 2, 20 * MS, 1, tasks={"a/0": {"cgroup": "/"}})
    result.trace = rec.freeze(["a/0"], ["/"], cpus=2)
    (kill,) = traces(build_figures(result)["timeline"], "killed")
    assert list(kill.y) == [0] and kill.text == ("killed: a/0 (/)",)


def test_usage_per_period_with_quota_line_and_throttled_marks() -> None:
    fig = build_figures(fake_run())["usage"]
    (usage,) = [t for t in fig.data if t.name == "/web"]
    # % of one CPU per period, the last one held until its end (1000 ms)
    assert list(usage.y) == [50.0] * 8 + [25.0] * 3
    assert usage.x[-1] == 1000.0
    (quota,) = traces(fig, "/web quota")
    assert list(quota.y) == [50.0] * 11
    (marks,) = traces(fig, "/web throttled")
    assert list(marks.x) == [k * 100.0 for k in range(8)]


def test_usage_without_periods_is_bucketed_from_segments() -> None:
    fig = build_figures(fake_run())["usage"]
    (batch,) = [t for t in fig.data if t.name == "/batch"]
    # 1 s run → 50 ms buckets; batch/0 runs [+25, +100) ms of each period
    assert list(batch.x[:4]) == [0.0, 50.0, 100.0, 150.0]
    assert list(batch.y) == [50.0, 100.0] * 10 + [100.0]
    # the root is hierarchical: every task; its quota (-1) draws no quota line
    (root,) = [t for t in fig.data if t.name == "/"]
    assert root.y[0] == 100 * (25 + 25 + 25 + 5) / 50
    assert not traces(fig, "/ quota")


def test_throttling_counts_add_up_to_cpu_stat() -> None:
    result = fake_run()
    fig = build_figures(result)["throttling"]
    periods, time = traces(fig, "/web")
    stat = result.cgroups["/web"]["cpu.stat"]
    assert periods.y[-1] == stat["nr_throttled"]
    assert time.y[-1] == stat["throttled_time"] / MS


def test_memory_limit_line_and_kill_marker() -> None:
    fig = build_figures(fake_run())["memory"]
    (limit,) = traces(fig, "/web limit")
    assert set(limit.y) == {64.0}
    assert not traces(fig, "/batch limit")  # limit -1: none
    (kill,) = traces(fig, "killed")
    assert list(kill.x) == [800.0] and list(kill.y) == [64.0]
    (web,) = [t for t in fig.data if t.name == "/web"]
    assert list(web.y) == [8.0 * (k + 1) for k in range(8)] + [32.0, 32.0]
    assert web.x[-1] == 1000.0  # held until the end of the run


def test_vruntime_batches_tasks_beyond_the_limit() -> None:
    n = MAX_VRUNTIME_TRACES + 5
    rec = Recorder()
    for task in range(n):
        for k in range(1, 4):
            rec.segment(task % 2, task, k * MS, k * MS + 1)
            rec.add("vruntime", task, k * MS, k * 1000 + task)
    names = [f"t/{i}" for i in range(n)]
    result = Result("simulation", "many", "eevdf", 2, 4 * MS, 1, tasks={})
    result.trace = rec.freeze(names, ["/"], cpus=2)
    fig = build_figures(result)["vruntime"]
    assert len(fig.data) == MAX_VRUNTIME_TRACES + 1
    other = fig.data[-1]
    assert other.name == "5 other tasks"
    assert len(other.x) == 5 * 4  # 3 samples + a gap per task
    assert int(np.isnan(np.asarray(other.x, dtype=float)).sum()) == 5
    # tasks not in result.tasks fall into one "unknown" timeline trace
    assert [t.name for t in build_figures(result)["timeline"].data] == ["(unknown cgroup)"]


def test_usage_of_periods_without_their_length_column() -> None:
    """A periods table lacking the ``period`` column: lengths from the gaps between starts, and
    from ``cpu.cfs_period_us`` for the last one."""
    result = kernel_like(fake_run())
    assert result.trace is not None
    del result.trace.tables["periods"]["period"]
    (usage,) = [t for t in build_figures(result)["usage"].data if t.name == "/web"]
    assert list(usage.y) == [50.0] * 8 + [25.0] * 3
    assert usage.x[-1] == 1000.0


def test_missing_tables_and_keys() -> None:
    bare = Result("kernel", "bare", "kernel-6.18", 2, 1000 * MS, None, tasks={"x/0": {}})
    assert build_figures(bare) == {}
    measured = build_figures(kernel_like(fake_run()))
    assert list(measured) == ["usage", "throttling", "memory"]
    (usage,) = [t for t in measured["usage"].data if t.name == "/web"]
    assert list(usage.y) == [50.0] * 8 + [25.0] * 3


def test_comparison_overlays_runs_per_cgroup() -> None:
    sim = fake_run()
    figures = build_comparison_figures([("simulation", sim), ("kernel", kernel_like(sim))])
    names = {t.name for t in figures["usage"].data}
    assert {"/web · simulation", "/web · kernel"} <= names
    dashes = {t.name: t.line.dash for t in figures["memory"].data if t.mode == "lines"}
    assert dashes["/web · simulation"] == "solid" and dashes["/web · kernel"] == "dash"


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 200)), max_size=30))
def test_covered_ns_matches_brute_force(intervals: list[tuple[int, int]]) -> None:
    start = np.array([s for s, _ in intervals], dtype=np.int64)
    end = np.array([s + d for s, d in intervals], dtype=np.int64)
    at = np.arange(0, 1300, 37, dtype=np.int64)
    expected = [sum(max(0, min(t, e) - s) for s, e in zip(start, end, strict=True)) for t in at]
    assert covered_ns(start, end, at).tolist() == expected


def test_figures_formatted_by_kernel_file_name() -> None:
    assert format_figure("cpu.cfs_quota_us", -1) == "none"
    assert format_figure("cpu.cfs_quota_us", 50000) == "50ms"
    assert format_figure("cpu.stat.throttled_time", 1_200_000_000) == "1.2s"
    assert format_figure("memory.limit_in_bytes", 64 * MIB) == "64MiB"
    assert format_figure("memory.limit_in_bytes", 9223372036854771712) == "unlimited"
    assert format_figure("memory.oom_control.oom_kill", 1) == "1"
    assert format_figure("memory.max", "max") == "max"


# ---- the page ------------------------------------------------------------------------------
def page_without_plotlyjs(path: Path) -> str:
    text = path.read_text()
    bundle = get_plotlyjs()
    assert text.count(bundle) == 1, "plotly.js must be inlined exactly once"
    return text.replace(bundle, "")


def test_report_is_self_contained(tmp_path: Path) -> None:
    page = page_without_plotlyjs(write_report(fake_run(), tmp_path / "report.html"))
    assert "http" not in page and "cdn.plot.ly" not in page
    assert not re.search(r"<script[^>]+src=|<link", page)
    assert page.count('class="plotly-graph-div"') == 6
    for text in ("fake-web", "Two web threads", "eevdf", "oom_kill at 800ms", "1.2s", "64MiB"):
        assert text in page


def test_reports_without_trace_or_keys(tmp_path: Path) -> None:
    bare = Result("kernel", "bare", "kernel-6.18", 2, 1000 * MS, None, tasks={"x/0": {}})
    page = page_without_plotlyjs(write_report(bare, tmp_path / "bare.html"))
    assert "No figure: no run segments recorded." in page
    assert "<td>x/0</td>" in page and "–" in page
    sim = fake_run()
    page = page_without_plotlyjs(
        write_comparison_report(sim, kernel_like(sim), tmp_path / "compare.html")
    )
    assert page.count('class="plotly-graph-div"') == 3
    assert "http" not in page


# ---- in a browser ---------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

#: JavaScript: per plot div, whether plotly finished it and how many WebGL pixels were drawn.
RENDER_STATE = """(() => {
  const plots = [...document.querySelectorAll('.plotly-graph-div')];
  return JSON.stringify(plots.map(div => {
    const canvas = div.querySelector('canvas.gl-canvas-context');
    let drawn = -1;
    if (canvas && canvas.width) {
      const copy = document.createElement('canvas');
      copy.width = canvas.width; copy.height = canvas.height;
      const ctx = copy.getContext('2d');
      ctx.drawImage(canvas, 0, 0);
      const px = ctx.getImageData(0, 0, copy.width, copy.height).data;
      drawn = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) drawn++;
    }
    return {id: div.id, done: !!div._fullLayout && !!div.querySelector('.main-svg'),
            drawn: drawn, noWebgl: div.innerText.includes('WebGL is not supported')};
  }));
})()"""


FIGURE_KEYS = ("timeline", "tasks", "usage", "throttling", "memory", "vruntime")

#: JavaScript: zoom the per-task timeline, wait for the linked figures, read their x ranges.
LINKED_ZOOM = """(async () => {
  await Plotly.relayout(document.getElementById('figure-tasks'), {'xaxis.range': [100, 200]});
  await window.cfssimSynced;
  const ranges = {};
  for (const div of document.querySelectorAll('.plotly-graph-div')) {
    if (div.id !== 'figure-tasks') ranges[div.id.slice(7)] = div.layout.xaxis.range;
  }
  return JSON.stringify(ranges);
})()"""


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (fds 3/4,
    NUL-separated JSON), stdlib only."""

    def __init__(self, args: list[str], log: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # the browser reads commands on fd 3 and answers on fd 4: a tiny exec wrapper wires them
        wire = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
        wire += "os.execv(sys.argv[3], sys.argv[3:])"
        fds = (str(to_browser_r), str(from_browser_w))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", wire, *fds, str(CHROMIUM), "--remote-debugging-pipe", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        self.log = log
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, predicate: Any, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the page did not finish rendering")
            time.sleep(0.2)

    def _read(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.log.read_text()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.session = None
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def console_errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif event.get("method") == "Runtime.consoleAPICalled" and params["type"] in (
            "error",
            "assert",
        ):
            errors.append(json.dumps(params["args"])[:500])
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
    return errors


#: the page's width against the viewport's, and where each table's box ends (px)
TABLE_WIDTHS = """JSON.stringify({
  page: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
  tables: [...document.querySelectorAll('div.scroll')].map(d => d.getBoundingClientRect().right),
})"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    report = write_report(fake_run(), tmp_path / "report.html")
    browser = DevTools(
        [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # any network fetch would fail loudly
            "--window-size=1400,2400",
            f"--user-data-dir={tmp_path / 'profile'}",
            "about:blank",
        ],
        log=tmp_path / "chromium.log",
    )
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        browser.session = browser.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable")
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=2400,
            deviceScaleFactor=1,
            mobile=False,
        )
        browser.call("Page.navigate", url=report.as_uri())

        def state() -> list[dict[str, Any]]:
            value = browser.call("Runtime.evaluate", expression=RENDER_STATE)["result"]["value"]
            return json.loads(value)

        browser.wait_for(lambda: len(state()) == 6 and all(p["done"] for p in state()))
        time.sleep(0.5)  # WebGL draws on the next animation frames
        plots = {p["id"]: p for p in state()}
        shot = browser.call("Page.captureScreenshot", format="png")["data"]
        linked = browser.call(
            "Runtime.evaluate", expression=LINKED_ZOOM, awaitPromise=True, timeout=60
        )["result"]["value"]
        widths = json.loads(
            browser.call("Runtime.evaluate", expression=TABLE_WIDTHS)["result"]["value"]
        )
        events = browser.events
    finally:
        browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report.png").write_bytes(base64.b64decode(shot))
    assert not console_errors(events), console_errors(events)
    assert not any(p["noWebgl"] for p in plots.values())
    # the WebGL timeline and vruntime plots actually drew pixels
    assert plots["figure-timeline"]["drawn"] > 10_000
    assert plots["figure-vruntime"]["drawn"] > 1_000
    # tables fit: the page never scrolls sideways; a wide table scrolls inside its own box
    assert widths["page"] <= widths["viewport"], widths
    assert widths["tables"] and all(right <= widths["viewport"] for right in widths["tables"])
    # zooming the per-task timeline to 100..200 ms zoomed every other figure alike
    assert json.loads(linked) == {key: [100, 200] for key in FIGURE_KEYS if key != "tasks"}


# ---- per-task states and timeline -----------------------------------------------------------
def hog_and_sleeper(policy: str) -> Result:
    """One CPU (HZ=250: ticks every 4 ms): ``hog`` runs forever from 0; ``sleeper`` starts at
    1 ms and loops run 2 ms / sleep 8 ms; 40 ms."""
    sim = Simulation(cpus=1, policy=policy, seed=1)
    sim.add_process("hog", program({"run": "forever"}))
    sim.add_process("sleeper", program({"run": "2ms"}, {"sleep": "8ms"}), start="1ms")
    return sim.run(until="40ms")


def intervals(result: Result, task: int) -> list[tuple[str, float, float]]:
    states = task_states(result)
    assert states is not None
    return [(state, start / MS, end / MS) for state, start, end in states.of(task)]


def test_task_states_of_a_hog_and_a_sleeper_follow_the_cfs_rules() -> None:
    """CFS: the new sleeper starts one vslice behind (START_DEBIT) and does not preempt; the tick
    at 4 ms finds the hog past its ideal runtime (6 ms × 1024/2048 = 3 ms) and switches. Each
    wakeup then places the sleeper sched_latency/2 = 3 ms behind min_vruntime (GENTLE_FAIR_
    SLEEPERS), more than the 1 ms wakeup granularity ahead of the hog: it preempts at once and
    runs its 2 ms — running 2, sleeping 8, every 10 ms; the hog waits while it runs."""
    result = hog_and_sleeper("cfs")
    assert intervals(result, 0) == [
        ("running", 0, 4), ("waiting", 4, 6), ("running", 6, 14), ("waiting", 14, 16),
        ("running", 16, 24), ("waiting", 24, 26), ("running", 26, 34), ("waiting", 34, 36),
        ("running", 36, 40),
    ]  # fmt: skip
    assert intervals(result, 1) == [
        ("waiting", 1, 4), ("running", 4, 6), ("sleeping", 6, 14), ("running", 14, 16),
        ("sleeping", 16, 24), ("running", 24, 26), ("sleeping", 26, 34), ("running", 34, 36),
        ("sleeping", 36, 40),
    ]  # fmt: skip


def test_task_states_throttled_while_the_cgroup_is_throttled() -> None:
    """The fake run: web/0 and web/1 run 25 ms per period, then wait throttled to the period's
    end (8 periods); web/1 is killed at 800 ms; from then web/0 waits unthrottled."""
    result = fake_run()
    web0 = intervals(result, TASKS.index("web/0"))
    assert web0[:4] == [
        ("running", 0, 25), ("throttled", 25, 100), ("running", 100, 125), ("throttled", 125, 200)
    ]  # fmt: skip
    assert web0[-4:] == [
        ("running", 800, 825), ("waiting", 825, 900), ("running", 900, 925), ("waiting", 925, 1000)
    ]  # fmt: skip
    web1 = intervals(result, TASKS.index("web/1"))
    assert web1[-2:] == [("running", 700, 725), ("throttled", 725, 800)]  # killed at 800


def test_task_states_oom_wait_from_the_memcg_wait_queue() -> None:
    """oom-kill-disable: the 11th 10 MiB allocation at 500 ms hits the 100M limit and waits on
    the memcg OOM queue until the limit is raised at 1.5 s; then it runs again."""
    result = run_scenario(load_scenario(bundled_scenarios()["oom-kill-disable"]))
    around = [i for i in intervals(result, 0) if 450 <= i[1] <= 1500]
    assert around == [
        ("running", 450, 452), ("sleeping", 452, 500), ("oom", 500, 1500), ("running", 1500, 1502)
    ]  # fmt: skip


def many_threads(cgroups: int, per_cgroup: int) -> Result:
    """Threads ``g<i>/<k>`` in cgroups ``/g<i>``: thread k runs [k ms, k+1 ms) on CPU k % 2."""
    rec = Recorder()
    names, tasks = [], {}
    for g in range(cgroups):
        for k in range(per_cgroup):
            tid = len(names)
            names.append(f"g{g}/{k}")
            tasks[names[-1]] = {"cgroup": f"/g{g}"}
            rec.segment(k % 2, tid, k * MS, (k + 1) * MS)
    result = Result("simulation", "many", "eevdf", 2, (per_cgroup + 1) * MS, 1, tasks=tasks)
    result.trace = rec.freeze(names, [f"/g{g}" for g in range(cgroups)], cpus=2)
    return result


def test_task_timeline_one_lane_per_thread_grouped_by_cgroup() -> None:
    fig = build_figures(fake_run())["tasks"]
    assert list(fig.layout.yaxis.ticktext) == [
        "/ · init/0", "/batch · batch/0", "/web · web/0", "/web · web/1"
    ]  # fmt: skip
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    (throttled,) = [t for t in fig.data if t.name == "throttled"]
    # web/0 (lane 2) and web/1 (lane 3): 8 throttled intervals each, [start, end, gap] each
    assert len(throttled.x) == 3 * 16 and set(throttled.y) == {2, 3}
    assert not fig.layout.updatemenus


def test_task_timeline_collapses_cgroups_beyond_the_lane_limit() -> None:
    result = many_threads(cgroups=10, per_cgroup=25)  # 250 threads > EXPANDED_TASKS
    fig = build_figures(result)["tasks"]
    layout = fig.layout
    assert list(layout.yaxis2.ticktext) == [f"/g{g} (25)" for g in range(10)]
    assert layout.yaxis.visible is False  # the thread lanes' axis starts collapsed
    (menu,) = layout.updatemenus
    assert [b.label for b in menu.buttons][:2] == [
        "all cgroups collapsed", "expand /g0 (25 threads)"
    ]  # fmt: skip
    assert len(menu.buttons) == 11 and {b.method for b in menu.buttons} == {"update"}
    summary = [t for t in fig.data if t.yaxis == "y2"]
    assert [t.name for t in summary] == ["running (any thread)", "runnable, waiting (any thread)"]
    # the summary merges /g0's 25 back-to-back runs into one interval: [0, 25 ms]
    assert list(summary[0].x[:2]) == [0.0, 25.0] and summary[0].y[0] == -0.3
    # per cgroup, one hidden trace per state; /g3's lanes are 75..99
    threads = [t for t in fig.data if t.yaxis != "y2"]
    assert len(threads) == 10 * 2 and not any(t.visible for t in threads)
    assert set(threads[3 * 2].y) == set(range(75, 100))
    visible, expand_g3 = menu.buttons[4].args
    shown = [t for t, v in zip(fig.data, visible["visible"], strict=True) if v]
    assert shown == [threads[6], threads[7], *summary]
    assert expand_g3["yaxis.range"] == [99.5, 74.5] and expand_g3["yaxis.visible"] is True
    assert expand_g3["yaxis.ticktext"][:2] == ["/g3 · g3/0", "/g3 · g3/1"]
    assert expand_g3["yaxis2.domain"] == [1 - 10 / 35, 1]
    assert expand_g3["height"] == 110 + 16 * 35


# ---- EEVDF lag, deadline, eligibility ---------------------------------------------------------
def test_eevdf_lag_deadline_and_eligibility_recorded_with_vruntime() -> None:
    """EEVDF, base slice 0.7 ms: the sleeper forks at 1 ms at V (lag 0) beside the hog (v = 1 ms)
    and runs 2 ms; when it blocks at 3 ms, v = 3 ms and V = (1 + 3)/2 = 2 ms: lag −1 ms, not
    eligible (it stays queued, DELAY_DEQUEUE), deadline v + 0.7 ms = 3.7 ms."""
    result = hog_and_sleeper("eevdf")
    assert result.trace is not None
    eevdf, vr = result.trace["eevdf"], result.trace["vruntime"]
    assert list(eevdf) == ["task", "time", "lag", "deadline", "eligible"]
    assert len(eevdf["time"]) == len(vr["time"]) > 0
    row = list(zip(eevdf["task"], eevdf["time"], strict=True)).index((1, 3 * MS))
    assert (eevdf["lag"][row], eevdf["deadline"][row], eevdf["eligible"][row]) == (
        -MS, 3.7 * MS, 0
    )  # fmt: skip
    assert ((eevdf["lag"] >= 0) == (eevdf["eligible"] == 1)).all()
    fig = build_figures(result)["vruntime"]
    titles = [fig.layout[f"yaxis{i}"].title.text for i in ("", "2", "3")]
    assert titles == [
        "vruntime (virtual ms)", "lag V − v (virtual ms)", "deadline − vruntime (virtual ms)"
    ]  # fmt: skip
    (marks,) = traces(fig, "not eligible")
    assert 3.0 in list(marks.x)
    # the request left at 3 ms: deadline 3.7 ms − vruntime 3 ms
    (sleeper,) = [t for t in fig.data if t.name == "sleeper/0" and t.yaxis == "y3"]
    assert sleeper.y[list(sleeper.x).index(3.0)] == pytest.approx(0.7)


def test_cfs_records_no_eevdf_columns() -> None:
    result = hog_and_sleeper("cfs")
    assert result.trace is not None
    assert len(result.trace["vruntime"]["time"]) > 0
    assert len(result.trace["eevdf"]["time"]) == 0
    fig = build_figures(result)["vruntime"]
    axes = fig.layout.to_plotly_json()
    assert "yaxis" in axes and "yaxis2" not in axes and not traces(fig, "not eligible")


def test_every_time_axis_spans_the_run() -> None:
    figures = build_figures(fake_run())
    for key, fig in figures.items():
        axes = [a for a in fig.layout if a.startswith("xaxis")]
        assert all(tuple(fig.layout[a].range) == (0, 1000.0) for a in axes), key


# ---- palette, units, notes ---------------------------------------------------------------------
def test_palette_gives_twelve_cgroups_twelve_colours() -> None:
    result = many_threads(cgroups=12, per_cgroup=1)
    colours = cgroup_colours([result])
    paths = [f"/g{g}" for g in range(12)]
    assert len({colours[p] for p in paths}) == 12
    assert colours["/"] not in {colours[p] for p in paths}
    assert len(set(distinct_colours(100))) == 100


def test_counts_as_counts_and_bytes_in_units() -> None:
    assert format_figure("memory.events.max", 35) == "35"
    assert format_figure("memory.events.local.high", 1024) == "1,024"
    assert format_figure("memory.events.oom_kill", 1) == "1"
    assert format_figure("memory.failcnt", 36) == "36"
    assert format_figure("memory.peak", 104857600) == "100MiB"
    assert format_figure("memory.max", 104857600) == "100MiB"
    assert format_figure("memory.max_usage_in_bytes", 1536) == "1.5KiB"
    assert format_figure("memory.stat.anon", 2 * MIB) == "2MiB"
    assert format_figure("memory.stat.pgfault", 2048) == "2,048"
    assert format_figure("cpuacct.usage_percpu", [20_000_000, 0]) == "20ms 0ns"


def test_warnings_and_failed_writes_on_the_page(tmp_path: Path) -> None:
    result = fake_run()
    result.meta["warnings"] = ["w.json:3:5: tasks.t.lock: not modelled"]
    result.meta["events"] = [
        {"time_ns": 100 * MS, "write": {"/web": {"cpu.cfs_quota_us": 1}}},
        {"time_ns": 200 * MS, "path": "/web", "error": "/web: memory.limit_in_bytes: EBUSY"},
    ]
    page = page_without_plotlyjs(write_report(result, tmp_path / "report.html"))
    assert "Warnings (2)" in page
    assert "<li>warning: w.json:3:5: tasks.t.lock: not modelled</li>" in page
    assert "<li>write failed at 200ms: /web: memory.limit_in_bytes: EBUSY</li>" in page


def test_cli_run_prints_failed_writes(tmp_path: Path) -> None:
    scenario = tmp_path / "busy.yaml"
    scenario.write_text(
        "name: busy\nduration: 200ms\nmachine: {cpus: 1}\n"
        "cgroups: {/m: {memory.limit_in_bytes: 64MiB}}\n"
        "processes: [{name: w, cgroup: /m, program: [{alloc: 20MiB}, {sleep: 1s}]}]\n"
        "events: [{at: 100ms, write: {/m: {memory.limit_in_bytes: 10MiB}}}]\n"
    )
    out = CliRunner().invoke(main, ["run", str(scenario), "-o", str(tmp_path / "o"),
                                    "--format", "json", "--plotly", "cdn"])  # fmt: skip
    assert out.exit_code == 0, out.output
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("write failed")]
    assert line.startswith("write failed at 100ms: /m: memory.limit_in_bytes: write error:")
    assert "Device or resource busy" in line
    assert "write failed at 100ms" in (tmp_path / "o" / "report.html").read_text()


# ---- where plotly.js comes from -------------------------------------------------------------
def test_plotly_modes(tmp_path: Path) -> None:
    assert PLOTLY_MODES == PLOTLY_CHOICES
    bundle = len(get_plotlyjs().encode())
    inline = write_report(fake_run(), tmp_path / "inline" / "report.html")
    assert inline.stat().st_size > bundle
    cdn = write_report(fake_run(), tmp_path / "cdn" / "report.html", plotly="cdn")
    assert cdn.stat().st_size < bundle / 10
    assert re.search(r"<script src='https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js'", cdn.read_text())
    # directory: one shared copy beside the reports, referenced relatively
    a = write_report(fake_run(), tmp_path / "dir" / "a.html", plotly="directory")
    b = write_report(fake_run(), tmp_path / "dir" / "b.html", plotly="directory")
    assert (tmp_path / "dir" / PLOTLY_FILE).stat().st_size == bundle
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["a.html", "b.html", PLOTLY_FILE]
    for page in (a, b):
        assert a.stat().st_size < bundle / 10
        assert f"<script src='{PLOTLY_FILE}'" in page.read_text()
    # …or in a shared directory above them (a sweep's runs)
    shared = write_comparison_report(
        fake_run(), fake_run(), tmp_path / "runs" / "1" / "compare.html", plotly="directory",
        plotly_dir=tmp_path / "runs",
    )  # fmt: skip
    assert f"<script src='../{PLOTLY_FILE}'" in shared.read_text()
    assert (tmp_path / "runs" / PLOTLY_FILE).exists()


def test_the_report_shows_the_simulated_host(tmp_path: Path) -> None:
    hosted = load_scenario(
        "name: hosted\nduration: 200ms\nmachine: {cpus: 2, profile: default}\n"
        "processes: [{name: hog, program: [{run: forever}]}]\n"
    )
    page = write_report(run_scenario(hosted), tmp_path / "report.html").read_text()
    assert "<h2>Simulated host</h2>" in page
    assert "default" in page and "/ 4 KiB" in page
    profile = default_profile()
    assert profile.tick is not None and profile.tick.cpus[0].delay is not None
    latency = format_duration(profile.tick.cpus[0].delay.quantile(0.5))
    assert "<th>timer latency p50</th>" in page and f"<td>{latency}</td>" in page
    assert f"<td>{format_duration(profile.tick_switch_ns)}</td>" in page
    ideal = load_scenario(
        "name: ideal\nduration: 200ms\nmachine: {cpus: 2}\n"
        "processes: [{name: hog, program: [{run: forever}]}]\n"
    )
    assert (
        "Simulated host"
        not in write_report(run_scenario(ideal), tmp_path / "ideal.html").read_text()
    )
