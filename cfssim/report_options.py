"""Command-line pieces shared by every command that writes a report page (run, measure,
compare): the ``--plotly`` option and printing a run's notes. Kept apart from `cfssim.report` so
that building the CLI does not import plotly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .result import Result

#: `cfssim.report.page.PLOTLY_MODES`, repeated here without importing plotly (a test keeps the
#: two equal)
PLOTLY_CHOICES = ("inline", "directory", "cdn")

plotly_option = click.option(
    "--plotly", "plotly_js", type=click.Choice(PLOTLY_CHOICES), default="inline",
    show_default=True,
    help="Where report pages get plotly.js (4.8 MB): inline (one self-contained file), "
         "directory (one shared plotly.min.js beside the report, referenced relatively), "
         "cdn (a link to cdn.plot.ly: small, needs the network to view).",
)  # fmt: skip


def echo_notes(result: Result, already: Iterable[str] = ()) -> None:
    """Print the run's warnings and failed timed writes on stderr, one line each (those in
    `already` — printed before the run — left out)."""
    from .report.notes import run_notes

    shown = {f"warning: {line}" for line in already}
    for line in run_notes(result):
        if line not in shown:
            click.echo(line, err=True)
