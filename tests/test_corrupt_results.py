"""Corrupt and hostile result directories: every one is refused with exit 2 by ``cfssim compare``
and ``cfssim export``, naming the file and the field — never exit 1, a traceback, or a silent
load (a negative task index used to wrap to another task). The corpus is generated here from one
valid run: each case breaks one field of result.json or one column of trace.npz."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import cfssim
from cfssim.cli import main
from cfssim.result import Result, ResultError

SCENARIO = """
name: corpus
duration: 200ms
machine: {cpus: 2, policy: cfs}
cgroups:
  /app: {cpu.cfs_quota_us: 50000}
  /mem: {memory.limit_in_bytes: 8MiB}
processes:
  - {name: web, cgroup: /app, threads: 2, repeat: forever, program: [{run: 7ms}, {sleep: 3ms}]}
  - {name: m, cgroup: /mem, program: [{alloc: 4MiB}, {alloc: 8MiB}]}
"""

Json = dict[str, Any]
Arrays = dict[str, np.ndarray]


def _json(edit: Callable[[Json], None]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))

    return mutate


def _text(edit: Callable[[str], str]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        path.write_text(edit(path.read_text()))

    return mutate


def _bytes(edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        path.write_bytes(edit(path.read_bytes()))

    return mutate


def _arrays(edit: Callable[[Arrays], None]) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
        edit(arrays)
        np.savez_compressed(path, **arrays)

    return mutate


def _task(data: Json) -> Json:
    return data["tasks"]["web/0"]


def _set(arrays: Arrays, key: str, row: int, value: int) -> None:
    arrays[key] = arrays[key].copy()
    arrays[key][row] = value


def _zip(path: Path, members: dict[str, bytes], claimed: int | None = None) -> None:
    """Write a zip of `members`; `claimed`: the unpacked size (< 4 GiB) each member's central
    directory entry claims instead of its own (a zip bomb's claim)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    if claimed is not None:
        raw = bytearray(path.read_bytes())
        at = raw.find(b"PK\x01\x02")
        while at >= 0:
            raw[at + 24 : at + 28] = claimed.to_bytes(4, "little")
            at = raw.find(b"PK\x01\x02", at + 4)
        path.write_bytes(bytes(raw))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: name → (file, mutation, what the message must name besides the file)
CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # result.json: the file as a whole
    "json empty file": ("result.json", _text(lambda t: ""), "valid JSON"),
    "json truncated": ("result.json", _text(lambda t: t[: len(t) // 2]), "valid JSON"),
    "json not UTF-8": ("result.json", _bytes(lambda b: b"\xff\xfe" + b), "not UTF-8"),
    "json a list": ("result.json", _text(lambda t: "[1, 2]"), "found list"),
    "json deep nesting": (
        "result.json",
        _text(lambda t: t.replace('"warnings": []', f'"warnings": [{_nested(100_000)}]')),
        "levels of nested",
    ),
    "json NaN": (
        "result.json",
        _text(lambda t: t.replace('"duration_ns": 200000000', '"duration_ns": NaN')),
        "found NaN",
    ),
    "json Infinity": (
        "result.json",
        _text(lambda t: t.replace('"seed": 0', '"seed": -Infinity')),
        "found -Infinity",
    ),
    "json 1e999": (
        "result.json",
        _text(lambda t: t.replace('"duration_ns": 200000000', '"duration_ns": 1e999')),
        "a finite number",
    ),
    "json 5000 digits": (
        "result.json",
        _text(lambda t: t.replace('"duration_ns": 200000000', '"duration_ns": ' + "9" * 5000)),
        "fits 64 bits",
    ),
    "json 2**64": (
        "result.json",
        _text(lambda t: t.replace('"duration_ns": 200000000', f'"duration_ns": {2**64}')),
        "fits 64 bits",
    ),
    # result.json: top-level fields
    "json no source": ("result.json", _json(lambda d: d.pop("source")), "no source"),
    "json source wrong": ("result.json", _json(lambda d: d.update(source="sim")), "source"),
    "json cpus true": ("result.json", _json(lambda d: d.update(cpus=True)), "cpus"),
    "json cpus zero": ("result.json", _json(lambda d: d.update(cpus=0)), "cpus"),
    "json duration string": (
        "result.json",
        _json(lambda d: d.update(duration_ns="1")),
        "duration_ns",
    ),
    "json seed float": ("result.json", _json(lambda d: d.update(seed=1.5)), "seed"),
    "json tasks list": ("result.json", _json(lambda d: d.update(tasks=[])), "tasks"),
    # result.json: typed fields and ranges
    "json nice 99": (
        "result.json",
        _json(lambda d: _task(d).update(nice=99)),
        'tasks["web/0"]["nice"]',
    ),
    "json nice true": (
        "result.json",
        _json(lambda d: _task(d).update(nice=True)),
        'tasks["web/0"]["nice"]',
    ),
    "json negative cpu time": (
        "result.json",
        _json(lambda d: _task(d).update(cpu_time_ns=-5)),
        'tasks["web/0"]["cpu_time_ns"]',
    ),
    "json fractional count": (
        "result.json",
        _json(lambda d: _task(d).update(timeslices=1.5)),
        'tasks["web/0"]["timeslices"]',
    ),
    "json missing figure": (
        "result.json",
        _json(lambda d: _task(d).pop("wait_time_ns")),
        'tasks["web/0"]["wait_time_ns"]',
    ),
    "json exit time string": (
        "result.json",
        _json(lambda d: _task(d).update(exit={"time_ns": "soon", "reason": "exited"})),
        'tasks["web/0"]["exit"]["time_ns"]',
    ),
    "json latency unordered": (
        "result.json",
        _json(
            lambda d: _task(d).update(wakeup_latency_ns={"p50": 5, "p99": 9, "max": 3, "mean": 2})
        ),
        'tasks["web/0"]["wakeup_latency_ns"]["max"]',
    ),
    "json negative throttles": (
        "result.json",
        _json(lambda d: d["cgroups"]["/app"]["cpu.stat"].update(nr_throttled=-1)),
        'cgroups["/app"]["cpu.stat"]["nr_throttled"]',
    ),
    "json cpu out of range": (
        "result.json",
        _json(lambda d: d["cpu"].update({"7": {}})),
        'cpu["7"]',
    ),
    "json kill time string": (
        "result.json",
        _json(
            lambda d: d.update(
                kills=[{"time_ns": "late", "process": "m", "cgroup": "/mem", "reason": "oom_kill"}]
            )
        ),
        'kills[0]["time_ns"]',
    ),
    "json events not a list": (
        "result.json",
        _json(lambda d: d["meta"].update(events="x")),
        'meta["events"]',
    ),
    # trace.npz: the file as a whole
    "npz empty file": ("trace.npz", _bytes(lambda b: b""), "an empty file"),
    "npz truncated zip": ("trace.npz", _bytes(lambda b: b[: len(b) // 2]), "a corrupt zip"),
    "npz not a zip": ("trace.npz", _bytes(lambda b: b"hello, world\n" * 10), "not a zip"),
    "npz zip of text": (
        "trace.npz",
        lambda p: _zip(p, {"segments.cpu.npy": b"not numpy"}),
        "segments.cpu to be a numpy array",
    ),
    "npz zip bomb": (
        "trace.npz",
        lambda p: _zip(p, {f"t.c{i}.npy": b"\0" * 99 for i in range(3)}, claimed=(4 << 30) - 1),
        "GiB of columns",
    ),
    "npz pickled column": (
        "trace.npz",
        lambda p: np.savez(
            p, allow_pickle=True, **{"__tasks__": np.array([{"a": 1}], dtype=object)}
        ),
        "numpy arrays",
    ),
    # trace.npz: names and columns
    "npz no task names": ("trace.npz", _arrays(lambda a: a.pop("__tasks__")), "__tasks__"),
    "npz task names numbers": (
        "trace.npz",
        _arrays(lambda a: a.update(__tasks__=np.arange(3))),
        "__tasks__",
    ),
    "npz no cpus": ("trace.npz", _arrays(lambda a: a.update(__cpus__=np.array([0]))), "__cpus__"),
    "npz float column": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments.start": a["segments.start"].astype(float)})),
        "segments.start",
    ),
    "npz NaN column": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments.end": np.full(len(a["segments.end"]), np.nan)})),
        "segments.end",
    ),
    "npz 2-D column": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments.cpu": a["segments.cpu"].reshape(1, -1)})),
        "segments.cpu",
    ),
    "npz short column": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments.end": a["segments.end"][:-1]})),
        "segments.end",
    ),
    "npz missing column": ("trace.npz", _arrays(lambda a: a.pop("segments.end")), "segments.end"),
    "npz unknown column": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments.colour": a["segments.end"]})),
        "segments.colour",
    ),
    "npz key without table": (
        "trace.npz",
        _arrays(lambda a: a.update({"segments": a["segments.end"]})),
        "table.column",
    ),
    "npz negative task": (
        "trace.npz",
        _arrays(lambda a: _set(a, "segments.task", 0, -1)),
        "segments.task[0]",
    ),
    "npz task out of range": (
        "trace.npz",
        _arrays(lambda a: _set(a, "segments.task", 2, 4)),
        "segments.task[2]",
    ),
    "npz cpu out of range": (
        "trace.npz",
        _arrays(lambda a: _set(a, "segments.cpu", 1, 2)),
        "segments.cpu[1]",
    ),
    "npz negative cgroup": (
        "trace.npz",
        _arrays(lambda a: _set(a, "throttles.cgroup", 0, -2)),
        "throttles.cgroup[0]",
    ),
    "npz end before start": (
        "trace.npz",
        _arrays(lambda a: _set(a, "segments.end", 3, 0)),
        "segments.end[3]",
    ),
    "npz negative latency": (
        "trace.npz",
        _arrays(lambda a: _set(a, "wakeups.latency", 0, -7)),
        "wakeups.latency[0]",
    ),
    "npz kill reason": (
        "trace.npz",
        _arrays(lambda a: _set(a, "kills.reason", 0, 9)),
        "kills.reason[0]",
    ),
    "npz throttled flag": (
        "trace.npz",
        _arrays(lambda a: _set(a, "periods.throttled", 0, 5)),
        "periods.throttled[0]",
    ),
}


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = cfssim.run_scenario(cfssim.load_scenario(SCENARIO))
    assert result.kills and result.trace is not None  # the corpus breaks a kill row
    assert len(result.trace["wakeups"]["time"]) and len(result.trace["throttles"]["start"])
    return result.save(tmp_path_factory.mktemp("valid"))


def _corrupt(valid: Path, tmp_path: Path, case: str) -> tuple[Path, str, str]:
    file, mutate, names = CASES[case]
    directory = tmp_path / "corrupt"
    shutil.copytree(valid, directory)
    mutate(directory / file)
    return directory, file, names


def test_the_corpus_has_forty_cases_or_more() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_corrupt_result_is_refused_naming_file_and_field(
    valid: Path, tmp_path: Path, case: str
) -> None:
    directory, file, names = _corrupt(valid, tmp_path, case)
    runner = CliRunner()
    for args in (
        ["compare", str(directory), str(valid), "-o", str(tmp_path / "cmp")],
        ["export", str(directory), "--format", "chrome"],
    ):
        outcome = runner.invoke(main, args)
        assert outcome.exit_code == 2, (args[0], outcome.output)
        first = outcome.output.strip().splitlines()
        assert len(first) == 1 and "Traceback" not in outcome.output
        assert str(directory / file) in first[0] and names in first[0], first[0]
        assert len(first[0]) < 400  # no 100,000-bracket or 5,000-digit echo
    with pytest.raises(ResultError) as raised:  # the library loader says the same
        Result.load(directory)
    assert names in str(raised.value)


def test_valid_results_still_load_and_export(valid: Path, tmp_path: Path) -> None:
    loaded = Result.load(valid)
    assert loaded.trace is not None and loaded.trace.tasks == ["web/0", "web/1", "m/0"]
    outcome = CliRunner().invoke(
        main, ["export", str(valid), "--format", "chrome", "-o", str(tmp_path / "t.json")]
    )
    assert outcome.exit_code == 0, outcome.output
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
