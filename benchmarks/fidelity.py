"""The fidelity scoreboard: every bundled scenario simulated and measured on this kernel, and the
errors of the simulation against the measurement.

    python benchmarks/fidelity.py [--scenario NAME ...] [--policy cfs] [--out DIR] [--json]

Per scenario: the background load during the real run (above 5% the row is unreliable), the
worst per-task CPU-time error as a share of the run's capacity (tolerance 5%), the worst
|Δ nr_periods| and |Δ nr_throttled| (±2), the worst relative throttled_time error (20%), OOM
kills (victims, order, times within 10%), and how many judged figures failed. Needs root and
cgroups; the simulation uses the scenario's policy when the simulator has it, else ``--policy``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cfssim.compare import FAIL, INFO, Comparison, Row, compare
from cfssim.real import RealRunError, measure
from cfssim.real.measure import as_measured
from cfssim.scenario import bundled_scenarios, load_scenario
from cfssim.sched.core import FAIR_POLICIES
from cfssim.simulation import run_scenario

FALLBACK_POLICY = "cfs"


def score(comparison: Comparison, capacity_ns: int, background: float) -> dict[str, Any]:
    """The scoreboard row of one comparison (errors as the worst over tasks/cgroups)."""
    judged = [row for row in comparison.rows if row.verdict != INFO]

    def worst(figure: str, key: str = "abs") -> float | None:
        rows = [r for r in judged if r.figure == figure and r.abs_diff is not None]
        if key == "rel":
            values = [abs(r.rel_diff) for r in rows if r.rel_diff is not None]
        else:
            values = [abs(r.abs_diff) for r in rows if r.abs_diff is not None]
        return max(values) if values else None

    cpu = worst("cpu_time_ns")
    kills = [r for r in judged if r.kind == "kills"]
    return {
        "scenario": comparison.scenario,
        "background": background,
        "cpu_error_of_capacity": None if cpu is None else cpu / capacity_ns,
        "nr_periods": worst("cpu.stat.nr_periods"),
        "nr_throttled": worst("cpu.stat.nr_throttled"),
        "throttled_time_rel": worst("cpu.stat.throttled_time", "rel"),
        "burst_time_rel": worst("cpu.stat.burst_time", "rel"),
        "kills": "–" if not kills else "differ" if any(r.verdict == FAIL for r in kills) else "ok",
        "judged": len(judged),
        "failed": [f"{r.subject} {r.figure}" for r in judged if r.verdict == FAIL],
    }


def run_one(
    name: str, path: Path, policy: str, out: Path | None
) -> tuple[Comparison, dict[str, Any]]:
    """Simulate and measure one scenario; its comparison and scoreboard row."""
    scenario = load_scenario(path)
    chosen = scenario.machine.policy if scenario.machine.policy in FAIR_POLICIES else policy
    kernel = measure(scenario)
    simulated = run_scenario(as_measured(kernel, scenario), policy=chosen)
    comparison = compare(simulated, kernel)
    if chosen != scenario.machine.policy:
        comparison.notes.append(f"simulated with {chosen!r}, not {scenario.machine.policy!r}")
    if out is not None:
        simulated.save(out / name / "simulation")
        kernel.save(out / name / "kernel")
        (out / name / "compare.json").write_text(comparison.to_json())
    background = float(kernel.meta.get("background_cpu_fraction", 0.0))
    row = score(comparison, kernel.cpus * kernel.duration_ns, background)
    row["policy"] = chosen
    return comparison, row


def table(rows: list[dict[str, Any]]) -> Table:
    board = Table(title="cfssim fidelity scoreboard (simulation vs this kernel)")
    columns = (
        "scenario",
        "policy",
        "bg load",
        "CPU err/cap",
        "Δperiods",
        "Δthrottled",
        "throttled_time",
        "burst_time",
        "kills",
        "failed/judged",
    )
    for column in columns:
        board.add_column(column, justify="left" if column in ("scenario", "policy") else "right")
    for row in rows:
        board.add_row(
            row["scenario"],
            row["policy"],
            f"{row['background']:.0%}" + (" !" if row["background"] > 0.05 else ""),
            _pct(row["cpu_error_of_capacity"]),
            _num(row["nr_periods"]),
            _num(row["nr_throttled"]),
            _pct(row["throttled_time_rel"]),
            _pct(row["burst_time_rel"]),
            row["kills"],
            f"{len(row['failed'])}/{row['judged']}",
        )
    return board


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", help="only these bundled scenarios")
    parser.add_argument(
        "--policy",
        default=FALLBACK_POLICY,
        help="policy when the simulator lacks the scenario's (default cfs)",
    )
    parser.add_argument("--out", type=Path, help="save both results and compare.json per scenario")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    bundled = bundled_scenarios()
    names = args.scenario or list(bundled)
    rows: list[dict[str, Any]] = []
    failures: list[tuple[str, Row]] = []
    for name in names:
        try:
            comparison, row = run_one(name, bundled[name], args.policy, args.out)
        except RealRunError as exc:
            print(f"{name}: cannot measure: {exc.message}", file=sys.stderr)
            return exc.exit_status
        rows.append(row)
        failures += [(name, r) for r in comparison.failures]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    console = Console(width=160)
    console.print(table(rows))
    for name, failed in failures:
        console.print(_failure_line(name, failed), markup=False, highlight=False)
    return 0


def _failure_line(name: str, row: Row) -> str:
    rel = "" if row.rel_diff is None else f" ({row.rel_diff:+.0%})"
    return f"  {name}: {row.subject} {row.figure}: sim {row.a} vs kernel {row.b}{rel}"


if __name__ == "__main__":
    raise SystemExit(main())
