"""The ``cfssim`` command line: run, validate, schema, scenarios (and measure, from cfssim.real).

Exit statuses: 0 success, 2 bad input (scenario errors on stderr as ``file:line:col: …``),
1 an unexpected error (one line; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ._progress import progress_bar
from .interop_commands import echo_warnings
from .real.calibrate import calibrate_command
from .real.capture_cli import capture_command
from .real.commands import compare_command, measure_command
from .report_options import echo_notes, plotly_option
from .result import ResultError
from .scenario import (
    Limits,
    Scenario,
    ScenarioError,
    bundled_scenarios,
    load_workload,
    resolve_scenario,
    schema_text,
)
from .units import format_duration, format_size, parse_duration, parse_size

DEFAULT_SCENARIO = "seed-quota"
DEFAULT_OUT = Path("cfssim-out")
EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


class _Group(click.Group):
    """Turns scenario errors into exit 2 and unexpected errors into one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ScenarioError as error:
            for message in error.messages:
                click.echo(message, err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except ResultError as error:  # its message names the file, what was expected and found
            click.echo(str(error), err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except OSError as error:  # a path the user gave: bad input, not a bug
            if error.filename is None:  # not a path (a closed pipe, a full disk): say what it is
                click.echo(f"cfssim: error: {error.strerror or error}", err=True)
                ctx.exit(EXIT_FAILURE)
            found = error.strerror or str(error)
            click.echo(
                f"{error.filename}: expected a readable file or a writable file or "
                f"directory, found {found}",
                err=True,
            )
            ctx.exit(EXIT_BAD_INPUT)
        except Exception as error:
            if ctx.params.get("debug") or (ctx.obj or {}).get("debug"):
                raise
            click.echo(
                f"cfssim: error: {type(error).__name__}: {error} "
                "(run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_FAILURE)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """cfssim: simulate the Linux CFS/EEVDF scheduler and cgroups from a YAML scenario."""
    ctx.obj = {"debug": debug}


def _limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--max-tasks / --max-duration / --max-events / --max-loop-depth / --max-alloc /
    --max-size."""
    defaults = Limits()
    options = [
        click.option(
            "--max-tasks",
            type=click.IntRange(min=1),
            default=defaults.max_tasks,
            show_default=True,
            help="Most threads a scenario may have.",
        ),
        click.option(
            "--max-duration",
            default=format_duration(defaults.max_duration_ns),
            show_default=True,
            help="Longest simulated duration.",
        ),
        click.option(
            "--max-events",
            type=click.IntRange(min=0),
            default=defaults.max_events,
            show_default=True,
            help="Most events a scenario may have.",
        ),
        click.option(
            "--max-loop-depth",
            type=click.IntRange(min=1),
            default=defaults.max_loop_depth,
            show_default=True,
            help="Deepest nesting of loop steps.",
        ),
        click.option(
            "--max-alloc",
            default=format_size(defaults.max_alloc_bytes),
            show_default=True,
            help="Largest single alloc step.",
        ),
        click.option(
            "--max-size",
            default=format_size(defaults.max_file_bytes),
            show_default=True,
            help="Largest scenario file (checked before parsing).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _limits(params: dict[str, Any]) -> Limits:
    try:
        max_duration_ns = parse_duration(params["max_duration"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-duration") from None
    if max_duration_ns <= 0:
        raise click.BadParameter(
            f"expected a positive duration, found {params['max_duration']!r}",
            param_hint="--max-duration",
        )
    try:
        max_alloc_bytes = parse_size(params["max_alloc"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-alloc") from None
    try:
        max_file_bytes = parse_size(params["max_size"])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-size") from None
    return Limits(
        max_tasks=params["max_tasks"],
        max_duration_ns=max_duration_ns,
        max_events=params["max_events"],
        max_loop_depth=params["max_loop_depth"],
        max_alloc_bytes=max_alloc_bytes,
        max_file_bytes=max_file_bytes,
    )


# ---- validate / schema / scenarios ---------------------------------------------------------------
@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse what cfssim does not model (rt-app's SCHED_DEADLINE, uclamp, an "
    "io_device other than /dev/null…) instead of warning and dropping it.",
)
@_limit_options
def validate(files: tuple[str, ...], strict: bool, **limit_params: Any) -> None:
    """Check scenario FILES (YAML, rt-app JSON or bundled names); print errors as
    file:line:col."""
    limits = _limits(limit_params)
    failed = False
    for name in files:
        try:
            workload = load_workload(resolve_scenario(name), limits=limits, strict=strict)
        except ScenarioError as error:
            failed = True
            for message in error.messages:
                click.echo(message, err=True)
            continue
        echo_warnings(workload.warnings)
        scenario = workload.scenario
        threads = sum(process.threads for process in scenario.processes)
        click.echo(
            f"ok {name}: {scenario.name}, {format_duration(scenario.duration_ns)}, "
            f"{len(scenario.processes)} processes ({threads} threads), "
            f"{len(scenario.cgroups)} cgroups, {len(scenario.events)} events"
        )
    if failed:
        sys.exit(EXIT_BAD_INPUT)


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema to this file instead of stdout.",
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema (draft-07) of scenario files."""
    text = schema_text()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@main.command()
def scenarios() -> None:
    """List the bundled scenarios and what each teaches."""
    table = Table(title="bundled scenarios (cfssim run NAME)", show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("duration", justify="right")
    table.add_column("description")
    for name, path in bundled_scenarios().items():
        scenario = load_workload(path).scenario
        table.add_row(name, format_duration(scenario.duration_ns), scenario.description)
    Console().print(table)


# ---- run ---------------------------------------------------------------------------------------
@main.command()
@click.argument("scenario", required=False)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (default: cfssim-out/<scenario name>).",
)
@click.option("--seed", type=click.IntRange(min=0), help="Override the scenario's seed.")
@click.option("--policy", type=click.Choice(["eevdf", "cfs"]), help="Override machine.policy.")
@click.option("--duration", help="Override the duration, e.g. 500ms.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="How to print the summary.",
)
@click.option("--no-report", is_flag=True, help="Do not write report.html.")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse what cfssim does not model (rt-app's SCHED_DEADLINE, uclamp, an "
    "io_device other than /dev/null…) instead of warning and dropping it.",
)
@plotly_option
@_limit_options
def run(
    scenario: str | None,
    out_dir: Path | None,
    seed: int | None,
    policy: str | None,
    duration: str | None,
    output_format: str,
    no_report: bool,
    strict: bool,
    plotly_js: str,
    **limit_params: Any,
) -> None:
    """Simulate SCENARIO (a file or bundled name; default seed-quota) and summarise it.

    Writes result.json, trace.npz and report.html into the output directory.
    """
    limits = _limits(limit_params)
    duration_ns = None
    if duration is not None:
        try:
            duration_ns = parse_duration(duration)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--duration") from None
        if not 0 < duration_ns <= limits.max_duration_ns:
            raise click.BadParameter(
                f"expected a positive duration of at most {format_duration(limits.max_duration_ns)}"
                f" (raise with --max-duration), found {duration!r}",
                param_hint="--duration",
            )
    # an rt-app workload may lack a duration (-1): --duration gives it, as for convert
    workload = load_workload(
        resolve_scenario(scenario or DEFAULT_SCENARIO),
        limits=limits,
        duration_ns=duration_ns,
        strict=strict,
    )
    loaded = workload.scenario
    echo_warnings(workload.warnings)
    total = duration_ns or loaded.duration_ns
    with progress_bar("simulating", enabled=output_format == "table", total=total) as hook:
        result = workload.run(seed=seed, policy=policy, duration_ns=duration_ns, progress=hook)
    out = out_dir or DEFAULT_OUT / loaded.name
    result.save(out)
    if not no_report:
        from .report import write_report

        write_report(result, out / "report.html", plotly=plotly_js)
    echo_notes(result, already=workload.warnings)
    _print_summary(result, loaded, output_format, out)


# ---- summary -----------------------------------------------------------------------------------
def summary_rows(result: Any) -> list[dict[str, Any]]:
    """One row per task and per cgroup: the figures the summary prints (ns, bytes)."""
    duration = max(1, int(result.duration_ns))
    rows: list[dict[str, Any]] = []
    for name, task in result.tasks.items():
        exit_info = task.get("exit") or {}
        rows.append(
            {
                "kind": "task",
                "name": name,
                "cgroup": task.get("cgroup"),
                "cpu_time_ns": task.get("cpu_time_ns", 0),
                "cpu_percent": round(100 * task.get("cpu_time_ns", 0) / duration, 1),
                "wait_time_ns": task.get("wait_time_ns", 0),
                "nr_switches": task.get("nr_switches", 0),
                "exit": exit_info.get("reason", ""),
            }
        )
    for path, group in result.cgroups.items():
        stat = group.get("cpu.stat") or {}
        oom = group.get("memory.oom_control") or {}
        usage = group.get("cpuacct.usage", 0)
        rows.append(
            {
                "kind": "cgroup",
                "name": path,
                "cgroup": path,
                "cpu_time_ns": usage,
                "cpu_percent": round(100 * usage / duration, 1),
                "nr_periods": stat.get("nr_periods", 0),
                "nr_throttled": stat.get("nr_throttled", 0),
                "throttled_time_ns": stat.get("throttled_time", 0),
                "memory_max_usage_bytes": group.get("memory.max_usage_in_bytes", 0),
                "oom_kill": oom.get("oom_kill", 0),
            }
        )
    return rows


def _print_summary(result: Any, scenario: Scenario, output_format: str, out: Path) -> None:
    rows = summary_rows(result)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=1))
        return
    if output_format == "csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
        return
    console = Console()
    tasks = Table(
        title=f"{scenario.name}: tasks ({result.policy}, "
        f"{format_duration(result.duration_ns)} on {result.cpus} CPUs)"
    )
    for column in ("task", "cgroup", "CPU time", "CPU %", "wait", "switches", "exit"):
        tasks.add_column(column, justify="left" if column in ("task", "cgroup") else "right")
    groups = Table(title="cgroups")
    for column in (
        "cgroup",
        "cpuacct.usage",
        "CPU %",
        "nr_periods",
        "nr_throttled",
        "throttled_time",
        "max memory",
        "oom_kill",
    ):
        groups.add_column(column, justify="left" if column == "cgroup" else "right")
    for row in rows:
        if row["kind"] == "task":
            tasks.add_row(
                row["name"],
                row["cgroup"],
                format_duration(row["cpu_time_ns"]),
                f"{row['cpu_percent']:.1f}",
                format_duration(row["wait_time_ns"]),
                str(row["nr_switches"]),
                row["exit"],
            )
        else:
            groups.add_row(
                row["name"],
                format_duration(row["cpu_time_ns"]),
                f"{row['cpu_percent']:.1f}",
                str(row["nr_periods"]),
                str(row["nr_throttled"]),
                format_duration(row["throttled_time_ns"]),
                format_size(row["memory_max_usage_bytes"]),
                str(row["oom_kill"]),
            )
    console.print(tasks)
    console.print(groups)
    console.print(f"results in {out}/", markup=False, highlight=False)


main.add_command(measure_command)
main.add_command(compare_command)
main.add_command(calibrate_command)
main.add_command(capture_command)


from .interop_commands import COMMANDS as _INTEROP_COMMANDS  # noqa: E402

for _command in _INTEROP_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
