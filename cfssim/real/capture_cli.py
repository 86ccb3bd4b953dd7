"""The ``cfssim capture`` click command (registered with ``main.add_command(capture_command)``).

Exit statuses as ``cfssim measure``'s (`cfssim.real.commands`): 22 not root, 23–26 cgroupfs,
28 refused (bad ``--cgroup`` value, no such ``--pid``, a duration above the cap), 30 tracefs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..units import parse_duration
from .commands import _exits


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _files(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    files = {}
    for value in values:
        file, sep, content = value.partition("=")
        if not sep or not file:
            raise click.BadParameter(
                f"expected FILE=VALUE such as cpu.cfs_quota_us=50000, found {value!r}"
            )
        files[file.strip()] = content.strip()
    return files


@click.command("capture", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[--] COMMAND [ARGS]...")
@click.option(
    "-o",
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The scenario file to write (YAML).",
)
@click.option(
    "--duration",
    "duration_ns",
    default="10s",
    show_default=True,
    metavar="DURATION",
    callback=_duration,
    help="How long to record (less if the program exits first).",
)
@click.option(
    "--pid",
    type=int,
    help="Attach to this running process (and its children) "
    "instead of starting COMMAND; its cgroup's limits are read, not changed.",
)
@click.option(
    "--model",
    is_flag=True,
    help="Per-thread burst/sleep distributions drawn with "
    "the scenario seed, instead of the exact replay.",
)
@click.option(
    "--cgroup",
    "cgroup_files",
    multiple=True,
    callback=_files,
    metavar="FILE=VALUE",
    help="A cgroup file for COMMAND's cgroup (/app in the scenario), e.g. "
    "cpu.cfs_quota_us=50000; repeatable.",
)
@click.option(
    "--relative-sleeps",
    is_flag=True,
    help="Replay each sleep for its captured "
    "length (a thread delayed stays delayed), instead of waking at the captured time.",
)
@click.option("--name", default="captured", show_default=True, help="The scenario's name.")
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="The scenario's seed (draws of --model).",
)
@click.option(
    "--result",
    "result_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also save what the capture measured (result.json, kernel-shaped) here.",
)
def capture_command(
    command: tuple[str, ...],
    out_file: Path,
    duration_ns: int,
    pid: int | None,
    model: bool,
    cgroup_files: dict[str, str],
    relative_sleeps: bool,
    name: str,
    seed: int,
    result_dir: Path | None,
) -> None:
    """Record COMMAND (started in a fresh cgroup) or --pid PID with tracefs and write a
    scenario replaying every thread's CPU bursts and sleeps (root, cgroups, tracefs)."""
    from .capture import capture

    if bool(command) == (pid is not None):
        raise click.UsageError("expected COMMAND or --pid PID (one of them)")
    with _exits("capture"):
        done = capture(
            list(command) or None,
            pid=pid,
            duration_ns=duration_ns,
            cgroup=cgroup_files,
            model=model,
            name=name,
            seed=seed,
            absolute=not relative_sleeps,
        )
    out_file.write_text(done.yaml)
    if result_dir is not None:
        done.result.save(result_dir)
    for note in done.result.meta.get("warnings", []):
        click.echo(f"note: {note}", err=True)
    threads = sum(p.threads for p in done.scenario.processes)
    click.echo(
        f"captured {len(done.scenario.processes)} process(es), {threads} thread(s) over "
        f"{done.recording.duration_ns / 1e9:.3f} s: {out_file}"
    )
