"""Sweeps: one scenario run over a grid of field values and seeds, on any executor.

    axes = [parse_set("machine.cpus=2,4"), parse_set("cgroups./app.cpu.cfs_quota_us=50000,-1")]
    rows = sweep(scenario, axes, seeds=[1, 2], executor=ProcessPoolExecutor())

A field is a dotted path into the scenario's YAML shape (see `cfssim.scenario.yaml_io`):
``machine.cpus``, ``duration``, ``processes.web.threads`` (a list item by ``name`` or index),
``cgroups./app.slice/web.cpu.max`` (a cgroup path may hold dots and slashes; the file name is
the known cgroup file it ends with). Every point is validated and simulated in a worker; any
failure — invalid values, a crash, a lost worker — becomes that row's ``error`` and the sweep
goes on. Rows come back in grid order whatever the completion order: one per run, with ``run``,
the swept fields, ``seed``, ``error`` and the chosen metrics (result figures flattened to dotted
names such as ``tasks.web/0.cpu_time_ns`` or ``cgroups./app.cpu.stat.nr_throttled``; glob
patterns pick them). Any `concurrent.futures.Executor` works: a local process pool by default,
or Dask's ``Client.get_executor()`` (the ``dask`` extra).
"""

from __future__ import annotations

import fnmatch
import io
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .cgroup import files as cgfiles
from .result import Result, _flatten
from .scenario import Scenario, ScenarioError, dump_data, load_scenario, scenario_data

DEFAULT_METRICS = (
    "tasks.*.cpu_time_ns",
    "tasks.*.wait_time_ns",
    "cgroups.*.cpuacct.usage",
    "cgroups.*.cpu.stat.nr_throttled",
    "cgroups.*.cpu.stat.throttled_time",
)
FIXED_COLUMNS = ("run", "seed", "error")


class SweepError(ValueError):
    """A malformed ``--set`` or field path (before anything runs)."""


@dataclass(frozen=True)
class Axis:
    """One swept field and its values (plain YAML values: ints, strings, lists…)."""

    field: str
    values: tuple[Any, ...]


# ---- --set parsing ------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """``"2,4,[0, 1]"`` → ``["2", "4", "[0, 1]"]``: commas inside brackets or quotes stay."""
    parts, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def parse_value(text: str) -> Any:
    """A value as YAML reads it (``2`` → 2, ``50000 100000`` → the string, ``[0, 1]`` → list)."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        raise SweepError(f"expected a YAML value, found {text!r}") from None


def parse_set(option: str) -> Axis:
    """``FIELD=V1,V2,…`` → `Axis`."""
    field, sep, values = option.partition("=")
    if not sep or not field.strip() or not values.strip():
        raise SweepError(
            f"expected FIELD=VALUE[,VALUE…] such as machine.cpus=2,4, found {option!r}"
        )
    return Axis(field.strip(), tuple(parse_value(v.strip()) for v in split_values(values)))


#: Most seeds one sweep runs (each is a whole simulation per grid point).
MAX_SEEDS = 100_000


def parse_seeds(text: str) -> list[int]:
    """``"1,2,5-7"`` → [1, 2, 5, 6, 7]; at most `MAX_SEEDS`."""
    seeds: list[int] = []
    for part in split_values(text):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise SweepError(f"expected seeds such as 1,2 or 1-8 (low-high), found {text!r}")
        last = int(high if dash else low)
        if len(seeds) + last - int(low) + 1 > MAX_SEEDS:
            raise SweepError(f"expected at most {MAX_SEEDS} seeds, found {text!r}")
        seeds.extend(range(int(low), last + 1))
    return seeds


# ---- fields -------------------------------------------------------------------------------------
def _key_in(node: Mapping[str, Any], rest: str) -> str | None:
    """The longest existing key that `rest` is, or starts with followed by a dot."""
    keys = [k for k in node if isinstance(k, str) and (rest == k or rest.startswith(k + "."))]
    return max(keys, key=len) if keys else None


def _cgroup_key(rest: str) -> str:
    """A new cgroup path at the front of ``<path>.<file…>``: up to the known file it ends with."""
    for file in sorted(cgfiles.FILES, key=len, reverse=True):
        if rest.endswith("." + file):
            return rest[: -len(file) - 1]
    return rest


def set_field(data: dict[str, Any], field: str, value: Any) -> None:
    """Set the dotted `field` of YAML-shaped scenario `data` to `value` (in place)."""
    node: Any = data
    rest = field
    while True:
        if isinstance(node, list):
            head, _, tail = rest.partition(".")
            names = [item.get("name") for item in node if isinstance(item, dict)]
            if head.isdigit() and int(head) < len(node):
                index = int(head)
            elif head in names:
                index = names.index(head)
            else:
                raise SweepError(
                    f"{field}: expected an index below {len(node)} or a name of "
                    f"({', '.join(map(str, names))}), found {head!r}"
                )
            if not tail:
                node[index] = value
                return
            node, rest = node[index], tail
            continue
        if not isinstance(node, dict):
            raise SweepError(f"{field}: expected a mapping or list before {rest!r}, found {node!r}")
        cgroup_files = (
            node is not data
            and data.get("cgroups") is not None
            and any(node is files for files in data["cgroups"].values())
        )
        key = _key_in(node, rest) or (
            rest
            if cgroup_files
            else _cgroup_key(rest)
            if node is data.get("cgroups")
            else rest.partition(".")[0]
        )
        tail = rest[len(key) + 1 :]
        if not tail:
            node[key] = value
            return
        if node.get(key) is None:
            node[key] = {}
        node, rest = node[key], tail


def grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values (the first axis varies slowest)."""
    return [
        dict(zip([a.field for a in axes], combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


# ---- running ------------------------------------------------------------------------------------
def flatten_result(result: Result) -> dict[str, Any]:
    """A result's figures as dotted names: ``tasks.<name>.<field…>``, ``cgroups.<path>.…``,
    ``cpu.<n>.busy_ns``."""
    return _flatten({"tasks": result.tasks, "cgroups": result.cgroups, "cpu": result.cpu})


def pick_metrics(figures: Mapping[str, Any], patterns: Sequence[str]) -> dict[str, Any]:
    """The figures whose names match any glob pattern, in the figures' order."""
    return {
        name: value
        for name, value in figures.items()
        if not isinstance(value, (dict, list))
        and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    }


@dataclass(frozen=True)
class Point:
    """One run of the sweep: the base scenario data with `values` set, under `seed`."""

    run: int
    values: Mapping[str, Any]
    seed: int | None
    data: Mapping[str, Any]
    metrics: tuple[str, ...]


def run_point(point: Point) -> dict[str, Any]:
    """Validate and simulate one point (in a worker); failures go into the row's error."""
    from .simulation import run_scenario

    row: dict[str, Any] = {"run": point.run, **point.values, "seed": point.seed, "error": None}
    try:
        result = run_scenario(point_scenario(point.data, point.values), seed=point.seed)
        row.update(pick_metrics(flatten_result(result), point.metrics))
    except Exception as error:  # a failed run is reported in its row, never stops the sweep
        row["error"] = (
            str(error) if isinstance(error, SweepError) else (f"{type(error).__name__}: {error}")
        )
    return row


def point_scenario(data: Mapping[str, Any], values: Mapping[str, Any]) -> Scenario:
    """The scenario of one grid point: YAML-shaped `data` with the swept `values` set.

    Raises `SweepError` naming the ``--set`` values (positions would point into the re-dumped
    YAML, not the user's file) and keeping each "field: expected …, found …"."""
    copy = _copy(data)
    for field, value in values.items():
        set_field(copy, field, value)
    try:
        return load_scenario(dump_data(copy))
    except ScenarioError as error:
        setting = ", ".join(f"{field}={value}" for field, value in values.items())
        found = "; ".join(m.split(": ", 1)[-1] for m in error.messages)
        where = f" with --set {setting}" if setting else ""
        raise SweepError(f"invalid scenario{where}: {found}") from None


def invalid_points(scenario: Scenario, axes: Sequence[Axis]) -> list[str]:
    """What is wrong with each grid point that cannot become a valid scenario (checked before
    anything runs: a misspelt field fails every point the same way)."""
    data = scenario_data(scenario)
    problems = []
    for values in grid(axes):
        try:
            point_scenario(data, values)
        except SweepError as error:
            problems.append(str(error))
    return problems


def _copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {key: _copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_copy(item) for item in data]
    return data


def points(
    scenario: Scenario,
    axes: Sequence[Axis],
    seeds: Sequence[int] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> list[Point]:
    """The runs of the grid × seeds (None: the scenario's own seed)."""
    data = scenario_data(scenario)
    return [
        Point(index, values, seed, data, tuple(metrics))
        for index, (values, seed) in enumerate(
            itertools.product(grid(axes), list(seeds) if seeds else [None])
        )
    ]


def sweep(
    scenario: Scenario,
    axes: Sequence[Axis],
    seeds: Sequence[int] | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    executor: Executor | None = None,
    on_done: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every point on `executor` (default: a local process pool); rows in grid order.

    `on_done(done, total)` is called as runs finish (a progress bar)."""
    todo = points(scenario, axes, seeds, metrics)
    own = executor is None
    pool = executor or ProcessPoolExecutor()
    rows: dict[int, dict[str, Any]] = {}
    try:
        futures: dict[Future[dict[str, Any]], Point] = {
            pool.submit(run_point, point): point for point in todo
        }
        for done, future in enumerate(as_completed(futures), start=1):
            point = futures[future]
            try:
                rows[point.run] = future.result()
            except Exception as error:  # the worker itself failed
                rows[point.run] = {
                    "run": point.run,
                    **point.values,
                    "seed": point.seed,
                    "error": f"{type(error).__name__}: {error}",
                }
            if on_done is not None:
                on_done(done, len(todo))
    except BaseException:  # interrupted (SIGINT/SIGTERM) or failed: stop our own pool's points now
        if own:
            stop_pool(pool)
        raise
    finally:
        if own:
            pool.shutdown()
    return [rows[point.run] for point in todo]


def stop_pool(pool: Executor) -> None:
    """Shut `pool` down without waiting for the points still to run: pending ones cancelled, a
    local process pool's workers terminated (SIGTERM) — an interrupted sweep stops at once."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
    pool.shutdown(cancel_futures=True)


# ---- output -------------------------------------------------------------------------------------
def swept_fields(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The swept field names (the columns between ``run`` and ``seed``)."""
    keys = list(rows[0]) if rows else []
    return keys[1 : keys.index("seed")] if "seed" in keys else []


def columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``run``, the swept fields, ``seed``, ``error``, then the metrics in first-seen order."""
    swept = swept_fields(rows)
    names = dict.fromkeys(name for row in rows for name in row)
    return [
        "run",
        *swept,
        "seed",
        "error",
        *(n for n in names if n not in FIXED_COLUMNS and n not in swept),
    ]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    import csv

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else (str(value) if isinstance(value, (list, dict)) else value)


def write_table(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write rows as CSV, or Parquet for a ``.parquet`` path (needs pyarrow: ``parquet`` extra)."""
    out = Path(path)
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise RuntimeError(
                "Parquet output needs pyarrow: pip install 'cfssim[parquet]'"
            ) from None
        import pandas as pd

        frame = pd.DataFrame(
            [{k: _cell(v) for k, v in row.items()} for row in rows], columns=columns(rows)
        )
        for name in frame.columns:  # a swept column may mix numbers and bad strings: text
            if frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: "" if v is None else str(v))
        frame.to_parquet(out, index=False)
    else:
        out.write_text(to_csv(rows))
    return out


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def plot(
    rows: Sequence[Mapping[str, Any]], metric: str, x: str, path: str | Path, plotly: str = "inline"
) -> Path:
    """An HTML plot of `metric` against the swept field `x`: one line (mean over seeds) per
    combination of the other swept fields, each run a marker. `plotly`: where the page gets
    plotly.js (``inline``, ``directory``: a shared ``plotly.min.js`` beside it, ``cdn``)."""
    import plotly.graph_objects as go

    swept = [name for name in swept_fields(rows) if name != x]
    good = [row for row in rows if not row.get("error") and metric in row]
    if not good:
        raise SweepError(f"expected a metric present in successful runs, found {metric!r}")
    figure = go.Figure()
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in good:
        groups.setdefault(tuple(str(row.get(name)) for name in sorted(swept)), []).append(row)
    for key, members in groups.items():
        label = ", ".join(f"{n}={v}" for n, v in zip(sorted(swept), key, strict=True)) or metric
        xs = list(dict.fromkeys(str(row[x]) for row in members))
        means = [
            sum(r[metric] for r in members if str(r[x]) == value)
            / sum(1 for r in members if str(r[x]) == value)
            for value in xs
        ]
        figure.add_trace(go.Scatter(x=xs, y=means, mode="lines", name=label))
        figure.add_trace(
            go.Scatter(
                x=[str(r[x]) for r in members],
                y=[r[metric] for r in members],
                mode="markers",
                name=f"{label} (runs)",
                showlegend=False,
            )
        )
    figure.update_layout(title=f"{metric} against {x}", xaxis_title=x, yaxis_title=metric)
    out = Path(path)
    figure.write_html(out, include_plotlyjs=True if plotly == "inline" else plotly)
    return out
