"""The ``cfssim measure`` and ``cfssim compare`` click commands (register them with
``main.add_command(measure_command)`` and ``main.add_command(compare_command)``).

Exit statuses: 0 success, 2 bad scenario, and the `RealRunError` subclasses' own (21 not Linux,
22 not root, 23 no cgroupfs, 24 read-only, 25 controller missing, 26 v2 without controllers,
27 no compiler, 28 refused, 29 worker failure, 30 tracefs unusable, 31 cleanup incomplete:
what is left and ``cfssim measure --cleanup`` are printed); 130 / 143 interrupted by SIGINT /
SIGTERM (after the cleanup); ``compare --check`` exits 1 when a figure is outside its
tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from ..report_options import echo_notes, plotly_option
from ..units import format_duration, parse_duration
from .errors import CleanupIncomplete, RealRunError
from .measure import SAMPLE_INTERVAL_NS

if TYPE_CHECKING:
    from ..result import Result
    from ..scenario import Scenario

DEFAULT_OUT = Path("cfssim-out")
#: Shortest sampling interval accepted (the sampler reads a few files per cgroup and thread).
MIN_SAMPLE_INTERVAL_NS = 1_000_000


def _parse_sample_interval(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        interval_ns = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if interval_ns < MIN_SAMPLE_INTERVAL_NS:
        raise click.BadParameter(
            f"expected at least {format_duration(MIN_SAMPLE_INTERVAL_NS)}, found {value!r}"
        )
    return interval_ns


def _refuse_unused_sample_interval(ctx: click.Context, why: str) -> None:
    """`--sample-interval` given where nothing is measured: say so rather than ignore it."""
    if ctx.get_parameter_source("sample_interval_ns") is ParameterSource.COMMANDLINE:
        raise click.UsageError(f"--sample-interval: {why}")


sample_interval_option = click.option(
    "--sample-interval",
    "sample_interval_ns",
    metavar="DURATION",
    default=format_duration(SAMPLE_INTERVAL_NS),
    show_default=True,
    callback=_parse_sample_interval,
    help="How often cgroup and thread figures are sampled for the timelines. The sampler is a "
    "task too: each sample wakes it on some CPU, which can end a running task's timeslice "
    "early; use e.g. 1s when comparing timeslice counts.",
)


@click.command("measure")
@click.argument("scenario_file", required=False, metavar="SCENARIO")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for result.json, trace.npz and report.html "
    "(default: cfssim-out/<name>-kernel).",
)
@click.option("--trace", is_flag=True, help="Also record sched_switch/sched_wakeup from tracefs.")
@click.option("--force", is_flag=True, help="Run even when an allocation has no memory limit.")
@click.option(
    "--host-root",
    is_flag=True,
    help="Keep root-level processes in the host's root cpu cgroup (autogroups apply).",
)
@click.option(
    "--cleanup",
    is_flag=True,
    help="Remove what killed runs left (cgroups and their workers, tracefs instances, "
    "cfssim-stats-* temporary directories; only ours, only of runs whose process "
    "is gone), say what was removed, then exit.",
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@sample_interval_option
@plotly_option
def measure_command(
    scenario_file: str | None,
    out_dir: Path | None,
    trace: bool,
    force: bool,
    host_root: bool,
    cleanup: bool,
    no_report: bool,
    sample_interval_ns: int,
    plotly_js: str,
) -> None:
    """Run SCENARIO (a file, a bundled name or an rt-app workload) as real processes under real
    cgroups and measure it: result.json and trace.npz as `cfssim run` writes them, and the same
    report."""
    from .cgroupfs import cleanup_leftovers
    from .measure import measure

    with _exits("measure"):
        if cleanup:
            _refuse_unused_sample_interval(
                click.get_current_context(), "--cleanup measures nothing"
            )
            found = cleanup_leftovers()
            removed = sum(leftover.state == "removed" for leftover in found)
            click.echo(
                f"removed {removed} leftover director(ies) of cfssim runs "
                "(cgroups, tracefs instances, cfssim-stats-* temporary directories)"
            )
            for leftover in found:
                click.echo(f"  {leftover.state} {leftover.path}: {leftover.why}")
            if any(leftover.state == "failed" for leftover in found):
                raise SystemExit(CleanupIncomplete.exit_status)
            return
        if scenario_file is None:
            raise click.UsageError("SCENARIO_FILE is required (or use --cleanup)")
        scenario = _load(scenario_file)
        out = out_dir or DEFAULT_OUT / f"{scenario.name}-kernel"
        result = measure(
            scenario,
            out,
            trace=trace,
            force=force,
            host_root=host_root,
            sample_interval_ns=sample_interval_ns,
        )
        if not no_report:
            from ..report import write_report

            write_report(result, out / "report.html", plotly=plotly_js)
    echo_notes(result)
    click.echo(f"measured {scenario.name!r} on {result.policy}: {out}")


@click.command("compare")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for compare.html and compare.json (and, for a scenario, both "
    "runs' results; default: cfssim-out/<scenario>-compare).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print the comparison.",
)
@click.option(
    "--policy",
    type=click.Choice(["eevdf", "cfs"]),
    help="Simulate with this policy instead of machine.policy.",
)
@click.option("--trace", is_flag=True, help="Also record sched_switch/sched_wakeup from tracefs.")
@click.option("--force", is_flag=True, help="Run even when an allocation has no memory limit.")
@click.option("--verdicts-only", is_flag=True, help="Leave out figures without a tolerance.")
@click.option("--check", is_flag=True, help="Exit with status 1 when a figure is out of tolerance.")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="Machine profile the simulation runs on, unless the scenario names one: "
    "'default' (the reference host), a file from `cfssim calibrate`, or 'none' "
    "(the ideal machine).",
)
@sample_interval_option
@plotly_option
def compare_command(
    inputs: tuple[str, ...],
    out_dir: Path | None,
    output_format: str,
    policy: str | None,
    trace: bool,
    force: bool,
    verdicts_only: bool,
    check: bool,
    profile: str,
    sample_interval_ns: int,
    plotly_js: str,
) -> None:
    """Compare a simulation with the kernel: SCENARIO (a file or bundled name) runs both sides;
    A_DIR B_DIR compares two saved results (B is the reference).

    Prints, per task and per cgroup, both values, their difference and a verdict against the
    real twin's tolerances, and writes compare.html (usage, throttling, memory overlaid).
    """
    from ..compare import compare, rich_table
    from ..report import write_comparison_report

    with _exits("compare"):
        if len(inputs) == 1:
            a, b, out = _run_both(
                inputs[0],
                out_dir,
                policy=policy,
                trace=trace,
                force=force,
                sample_interval_ns=sample_interval_ns,
                profile=None if profile == "none" else profile,
            )
        elif len(inputs) == 2:
            _refuse_unused_sample_interval(
                click.get_current_context(), "two saved results are compared, nothing is measured"
            )
            a, b = (_load_result(Path(i)) for i in inputs)
            out = out_dir or DEFAULT_OUT / f"{b.scenario or a.scenario}-compare"
        else:
            raise click.UsageError("expected SCENARIO, or A_DIR B_DIR (two result directories)")
    comparison = compare(a, b)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(comparison.to_json())
    write_comparison_report(a, b, out / "compare.html", labels=comparison.labels, plotly=plotly_js)
    if output_format == "json":
        click.echo(comparison.to_json(), nl=False)
    else:
        from rich.console import Console

        console = Console()
        if not console.is_terminal:
            console = Console(width=150)  # a wide table piped to a file stays one line per row
        console.print(rich_table(comparison, verdicts_only=verdicts_only))
        for note in comparison.notes:
            console.print(f"note: {note}", markup=False, highlight=False)
        verdict = (
            "all within tolerance"
            if comparison.ok
            else (f"{len(comparison.failures)} figure(s) out of tolerance")
        )
        console.print(f"{verdict}; compare.html in {out}/", markup=False, highlight=False)
    if check and not comparison.ok:
        raise SystemExit(1)


def _run_both(
    name_or_path: str,
    out_dir: Path | None,
    *,
    policy: str | None,
    trace: bool,
    force: bool,
    sample_interval_ns: int,
    profile: str | None,
) -> tuple[Result, Result, Path]:
    """Simulate and measure one scenario; both results saved under the output directory
    (``simulation/`` and ``kernel/``), which is returned."""
    from ..simulation import run_scenario
    from .measure import as_measured, measure

    scenario = _load(name_or_path)
    out = out_dir or DEFAULT_OUT / f"{scenario.name}-compare"
    kernel = measure(
        scenario, out / "kernel", trace=trace, force=force, sample_interval_ns=sample_interval_ns
    )
    # the simulation runs what the kernel ran: same cgroup placement, same tick phase
    simulated = run_scenario(as_measured(kernel, scenario, profile=profile), policy=policy)
    simulated.save(out / "simulation")
    return simulated, kernel, out


def _load(name_or_path: str | Path) -> Scenario:
    """A scenario file, a bundled scenario's name, or an rt-app JSON workload — as `run` takes."""
    from ..scenario import load_workload, resolve_scenario

    return load_workload(resolve_scenario(str(name_or_path))).scenario


def _load_result(directory: Path) -> Result:
    from ..result import RESULT_FILE, Result

    if not (directory / RESULT_FILE).is_file():
        raise click.UsageError(
            f"{directory}: expected a result directory holding {RESULT_FILE}, found none"
        )
    return Result.load(directory)


@contextmanager
def _exits(command: str) -> Iterator[None]:
    """Scenario errors → their messages and exit 2; real-run errors → one line, own status."""
    from ..scenario import ScenarioError

    try:
        yield
    except ScenarioError as exc:
        for message in exc.messages:
            click.echo(message, err=True)
        raise SystemExit(2) from None
    except RealRunError as exc:
        click.echo(f"cfssim {command}: {exc.message}", err=True)
        raise SystemExit(exc.exit_status) from None
