"""The ``cfssim measure`` click command (register it with ``main.add_command(measure_command)``).

Exit statuses: 0 success, 2 bad scenario, and the `RealRunError` subclasses' own (21 not Linux,
22 not root, 23 no cgroupfs, 24 read-only, 25 controller missing, 26 v2 without controllers,
27 no compiler, 28 refused, 29 worker failure).
"""

from __future__ import annotations

from pathlib import Path

import click

from .errors import RealRunError


@click.command("measure")
@click.argument("scenario_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for result.json and trace.npz (default: out/<scenario name>-kernel).")
@click.option("--trace", is_flag=True, help="Also record sched_switch/sched_wakeup from tracefs.")
@click.option("--force", is_flag=True, help="Run even when an allocation has no memory limit.")
@click.option("--host-root", is_flag=True,
              help="Keep root-level processes in the host's root cpu cgroup (autogroups apply).")
@click.option("--cleanup", is_flag=True,
              help="Remove the cgroups and workers left by crashed runs, then exit.")
def measure_command(
    scenario_file: Path | None,
    out_dir: Path | None,
    trace: bool,
    force: bool,
    host_root: bool,
    cleanup: bool,
) -> None:
    """Run SCENARIO_FILE as real processes under real cgroups and measure it."""
    from ..scenario import ScenarioError, load_scenario
    from .cgroupfs import cleanup_leftovers
    from .measure import measure

    try:
        if cleanup:
            removed = cleanup_leftovers()
            click.echo(f"removed {len(removed)} leftover cgroup director(ies)")
            for path in removed:
                click.echo(f"  {path}")
            return
        if scenario_file is None:
            raise click.UsageError("SCENARIO_FILE is required (or use --cleanup)")
        scenario = load_scenario(scenario_file)
        out = out_dir or Path("out") / f"{scenario.name}-kernel"
        result = measure(scenario, out, trace=trace, force=force, host_root=host_root)
    except ScenarioError as exc:
        for message in exc.messages:
            click.echo(message, err=True)
        raise SystemExit(2) from None
    except RealRunError as exc:
        click.echo(f"cfssim measure: {exc.message}", err=True)
        raise SystemExit(exc.exit_status) from None
    for warning in result.meta.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"measured {scenario.name!r} on {result.policy}: {out}")
