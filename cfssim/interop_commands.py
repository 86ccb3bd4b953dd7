"""The ``convert``, ``export`` and ``sweep`` commands (registered on ``cfssim`` by cli.py).

Bad input raises `ScenarioError` (the cfssim group prints its messages, exit 2) or
`click.BadParameter`/`click.UsageError` (exit 2); never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

import click

from ._progress import progress_bar
from .report_options import plotly_option
from .scenario import dump_scenario, load_workload, resolve_scenario
from .sweep import (
    DEFAULT_METRICS,
    SweepError,
    invalid_points,
    parquet_available,
    parse_seeds,
    parse_set,
    plot,
    write_table,
)
from .sweep import sweep as run_sweep


def echo_warnings(warnings: list[str]) -> None:
    """What loading approximated (rt-app workloads), one ``warning:`` line each on stderr."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


# ---- convert ------------------------------------------------------------------------------------
@click.command()
@click.argument("workload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scenario YAML here instead of stdout.",
)
@click.option(
    "--cpus",
    type=click.IntRange(1, 1024),
    help="machine.cpus (default: 2, or enough for the CPUs the workload names).",
)
@click.option(
    "--duration",
    help="Run time when global.duration is -1, e.g. 10s (manifests: "
    "the scenario's duration, default 10s).",
)
@click.option(
    "--from",
    "kind",
    type=click.Choice(["auto", "rt-app", "k8s", "compose"]),
    default="auto",
    show_default=True,
    help="Input kind; auto: .json is rt-app, YAML with kind: is a Kubernetes manifest, "
    "with services: a compose file.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse what cfssim does not model and what the YAML can only approximate "
    "(shared or absolute timers, phase nice/taskgroup changes, mem growth).",
)
def convert(
    workload: Path,
    output: Path | None,
    cpus: int | None,
    duration: str | None,
    kind: str,
    strict: bool,
) -> None:
    """Convert an rt-app WORKLOAD (JSON), a Kubernetes Pod/Deployment manifest or a compose file
    into a cfssim scenario YAML.

    What YAML cannot express exactly (timers, phase changes, unmodelled events) is listed as
    warnings on stderr; `cfssim run WORKLOAD.json` simulates timers and phases exactly.
    Manifests become the cgroup part of a scenario (docker:/kubernetes: keys) with one
    placeholder hog per container.
    """
    from .scenario.manifests import convert_manifest, detect_kind
    from .scenario.yaml_io import dump_data
    from .units import parse_duration

    if kind == "auto":
        kind = detect_kind(workload)
    if kind != "rt-app":
        converted = convert_manifest(workload, kind, duration=duration or "10s", cpus=cpus)
        echo_warnings(converted.warnings)
        _write(dump_data(converted.data, converted.header), output)
        return

    duration_ns = None
    if duration is not None:
        try:
            duration_ns = parse_duration(duration)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--duration") from None
    loaded = load_workload(
        workload, cpus=cpus, duration_ns=duration_ns, strict="convert" if strict else False
    )
    echo_warnings(loaded.warnings)
    text = dump_scenario(
        loaded.scenario,
        header=[
            f"converted from {workload.name} by cfssim convert",
            *(f"warning: {w}" for w in loaded.warnings),
        ],
    )
    _write(text, output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


# ---- export -------------------------------------------------------------------------------------
@click.command()
@click.argument("result_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["perfetto", "chrome", "ftrace"]),
    default="perfetto",
    show_default=True,
    help="Trace format to write.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output file (default: RESULT_DIR/trace.perfetto-trace, trace.json or trace.txt).",
)
@click.option(
    "--ns",
    "ns_precision",
    is_flag=True,
    help="ftrace: nanosecond timestamps (as trace-cmd report -t) instead of µs.",
)
def export(result_dir: Path, fmt: str, output: Path | None, ns_precision: bool) -> None:
    """Export the trace of a run (RESULT_DIR with result.json and trace.npz) for Perfetto,
    chrome://tracing or ftrace tools."""
    from .export import SUFFIXES
    from .export import export as write_trace
    from .result import RESULT_FILE, TRACE_FILE, Result

    for needed in (RESULT_FILE, TRACE_FILE):
        if not (result_dir / needed).is_file():
            raise click.UsageError(
                f"{result_dir}: expected a run directory with {RESULT_FILE} "
                f"and {TRACE_FILE} (measured runs need --trace), found no "
                f"{needed}"
            )
    result = Result.load(result_dir)
    out = output or result_dir / f"trace{SUFFIXES[fmt]}"
    try:
        write_trace(result, fmt, out, ns_precision=ns_precision)
    except RuntimeError as error:  # the perfetto extra is missing
        raise click.UsageError(str(error)) from None
    click.echo(f"wrote {out}")


# ---- sweep --------------------------------------------------------------------------------------
def _executor(dask: str | None, workers: int | None) -> tuple[Executor, Callable[[], None]]:
    """The executor and how to release it: Dask's when --dask, else a local process pool."""
    if dask is None:
        from concurrent.futures import ProcessPoolExecutor

        from .sweep import stop_pool

        pool = ProcessPoolExecutor(max_workers=workers)
        return pool, lambda: stop_pool(pool)  # all done, or interrupted: stop at once
    try:
        from distributed import Client
    except ImportError:
        raise click.UsageError(
            "--dask needs the distributed package: pip install 'cfssim[dask]'"
        ) from None
    client = Client(dask)
    return client.get_executor(), client.close


@click.command()
@click.argument("scenario")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=V1,V2",
    help="A swept field and its values, e.g. machine.cpus=2,4,8 or "
    "'cgroups./app.cpu.max=50000 100000,max 100000' (repeatable: a grid).",
)
@click.option("--seeds", help="Seeds, e.g. 1,2,3 or 1-8 (default: the scenario's).")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    help="Result figures to keep (glob patterns over names such as "
    "tasks.web/0.cpu_time_ns; repeatable). Default: CPU, wait and throttling.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (default: cfssim-out/<scenario>-sweep).",
)
@click.option("--plot", "plot_metric", help="Plot this metric against --x into sweep.html.")
@click.option(
    "--x", "x_field", help="The swept field on the plot's x axis (default: the first --set)."
)
@click.option("--workers", type=click.IntRange(min=1), help="Local worker processes.")
@click.option("--dask", metavar="ADDRESS", help="Run on a Dask scheduler (tcp://host:8786).")
@plotly_option
def sweep(
    scenario: str,
    sets: tuple[str, ...],
    seeds: str | None,
    metrics: tuple[str, ...],
    out_dir: Path | None,
    plot_metric: str | None,
    x_field: str | None,
    workers: int | None,
    dask: str | None,
    plotly_js: str,
) -> None:
    """Run SCENARIO (YAML, rt-app JSON or a bundled name) over a grid of field values and seeds;
    write one row per run to sweep.csv (and sweep.parquet with pyarrow)."""
    try:
        axes = [parse_set(option) for option in sets]
        seed_list = parse_seeds(seeds) if seeds else None
    except SweepError as error:
        raise click.BadParameter(str(error)) from None
    loaded = load_workload(resolve_scenario(scenario))
    echo_warnings(loaded.warnings)
    if plot_metric and not (x_field or axes):
        raise click.UsageError("--plot needs a swept field (--set or --x)")
    swept = [axis.field for axis in axes] + ["seed"]
    if x_field is not None and x_field not in swept:
        raise click.BadParameter(
            f"expected one of the swept fields ({', '.join(swept)}), found {x_field!r}",
            param_hint="--x",
        )
    problems = invalid_points(loaded.scenario, axes)
    if problems:
        for problem in problems:
            click.echo(f"cfssim sweep: {problem}", err=True)
        raise SystemExit(2)
    executor, release = _executor(dask, workers)
    try:
        with progress_bar("sweeping", enabled=True, counted=True) as hook:
            rows = run_sweep(
                loaded.scenario,
                axes,
                seed_list,
                metrics=list(metrics) or list(DEFAULT_METRICS),
                executor=executor,
                on_done=hook,
            )
    finally:
        release()
    out = out_dir or Path("cfssim-out") / f"{loaded.scenario.name}-sweep"
    out.mkdir(parents=True, exist_ok=True)
    written = [write_table(rows, out / "sweep.csv")]
    if parquet_available():
        written.append(write_table(rows, out / "sweep.parquet"))
    if plot_metric:
        try:
            written.append(
                plot(
                    rows,
                    plot_metric,
                    x_field or axes[0].field,
                    out / "sweep.html",
                    plotly=plotly_js,
                )
            )
        except SweepError as error:
            raise click.BadParameter(str(error), param_hint="--plot") from None
    failed = [row for row in rows if row.get("error")]
    for row in failed:
        click.echo(f"run {row['run']} failed: {row['error']}", err=True)
    click.echo(
        f"{len(rows)} runs, {len(failed)} failed; wrote " + ", ".join(str(p) for p in written)
    )
    if rows and len(failed) == len(rows):
        raise SystemExit(1)


COMMANDS = (convert, export, sweep)
