"""Colours of the report: one distinct colour per cgroup, fixed colours for the root, kills,
runs (line dashes) and task states.

`cgroup_colours` gives every cgroup path its own colour: the first `len(PALETTE)` from a fixed list
of distinct, non-grey colours (D3's nine, then Glasbey-style picks that stay apart from them and
from each other), the rest by HSL golden-angle spacing with alternating lightness — never a colour
twice, however many cgroups.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable

from ..result import Result
from .common import UNKNOWN_CGROUP, task_cgroups

ROOT_COLOUR = "#7f7f7f"
OTHER_COLOUR = "#b0b0b0"
KILL_COLOUR = "#d62728"
RUN_DASHES = ("solid", "dash", "dot", "dashdot")

#: distinct colours for cgroups, most distinguishable first (no greys: grey is the root's)
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#1616a7", "#00a08b", "#fb00d1", "#6c7c32", "#a777f1", "#862a16", "#0d2a63",
    "#feaf16", "#620042", "#1cffce", "#b68100", "#3283fe", "#f8a19f", "#1c8356", "#c4451c",
    "#dea0fd", "#b00068", "#90ad1c", "#325a9b",
)  # fmt: skip

#: the per-task timeline's state colours (see `task_states.STATES`)
STATE_COLOURS = {
    "running": "#2ca02c",
    "waiting": "#ff7f0e",
    "throttled": "#d62728",
    "sleeping": "#e8e8e8",
    "oom": "#9467bd",
}


def distinct_colours(n: int) -> list[str]:
    """`n` colours, all different: `PALETTE`, then golden-angle hues at alternating lightness."""
    colours = list(PALETTE[:n])
    k = 0
    while len(colours) < n:
        hue = (0.11 + k * 0.618033988749895) % 1.0
        lightness = (0.35, 0.5, 0.65)[k % 3]
        red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
        colour = f"#{round(red * 255):02x}{round(green * 255):02x}{round(blue * 255):02x}"
        if colour not in colours and colour not in (ROOT_COLOUR, OTHER_COLOUR):
            colours.append(colour)
        k += 1
    return colours


def cgroup_colours(results: Iterable[Result]) -> dict[str, str]:
    """One distinct colour per cgroup path, the same for every run of an overlay (root grey)."""
    paths: set[str] = {UNKNOWN_CGROUP}
    for result in results:
        paths.update(result.cgroups)
        paths.update(task_cgroups(result))
        if result.trace is not None:
            paths.update(result.trace.cgroups)
    others = sorted(paths - {"/"})
    return {"/": ROOT_COLOUR} | dict(zip(others, distinct_colours(len(others)), strict=True))


def rgba(colour: str, alpha: float) -> str:
    """``#rrggbb`` → ``rgba(r,g,b,alpha)``."""
    red, green, blue = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red},{green},{blue},{alpha})"
