"""The Recorder's in-run layout (narrow columns, one ``samples`` table for ``vruntime`` and
``eevdf``) and what `Recorder.freeze` makes of it: the frozen int64 tables of `TABLES`."""

from __future__ import annotations

from array import array

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfssim
from cfssim.trace import RECORDED, TABLES, Recorder, typecode

INT64 = st.integers(1 - 2**62, 2**62 - 1)  # vruntimes and deadlines: their offset fits in int64


def row_bytes(table: str, columns: int | None = None) -> int:
    """Bytes of one row of recorded `table` (its first `columns`), from the typecodes."""
    return sum(array(typecode(col)).itemsize for col in RECORDED[table][:columns])


def recorded_bytes(rec: Recorder) -> int:
    return sum(len(col) * col.itemsize for cols in rec.columns.values() for col in cols)


def test_a_preemption_costs_the_narrow_rows_bytes() -> None:
    # A preemption under EEVDF records a segment (cpu, task int16; length int32, end int64) and one
    # sample serving vruntime and eevdf (task int16; time, vruntime int64; lag, deadline offset
    # int32; eligible int8); under CFS the sample's first three columns.
    h, i, q, b = (array(code).itemsize for code in "hiqb")
    rec = Recorder()
    rec.segment(3, 7, 1_000, 5_000)
    rec.eevdf(7, 5_000, 123_456_789, -2_000_000, 125_000_000, 0)
    assert recorded_bytes(rec) == row_bytes("segments") + row_bytes("samples")
    assert recorded_bytes(rec) == (2 * h + i + q) + (h + 2 * q + 2 * i + b) == 43
    # the int32-index layout it replaces: segment 24, vruntime row 20, eevdf row 32
    assert recorded_bytes(rec) == (2 * i + 2 * q) + (i + 2 * q) + (2 * i + 3 * q) - 33
    cfs = Recorder()
    cfs.segment(3, 7, 1_000, 5_000)
    cfs.vruntime(7, 5_000, 123_456_789)
    assert recorded_bytes(cfs) == row_bytes("segments") + row_bytes("samples", 3) == 34


def test_freeze_splits_eevdf_samples_into_the_two_tables() -> None:
    rec = Recorder()
    rec.segment(1, 0, 0, 4_000_000)
    rec.eevdf(0, 4_000_000, 10_000_000_000, -1_500_000, 10_002_000_000, 0)
    rec.block(1, 5_000_000)
    rec.eevdf(1, 5_000_000, 9_999_000_000, 700_000, 10_001_500_000, 1)
    trace = rec.freeze(["a", "b"], ["/"], 2)
    assert list(trace.tables) == list(TABLES)
    for name, cols in TABLES.items():
        assert list(trace.tables[name]) == list(cols)
        assert all(values.dtype == np.int64 for values in trace.tables[name].values())
    assert {col: v.tolist() for col, v in trace["vruntime"].items()} == {
        "task": [0, 1],
        "time": [4_000_000, 5_000_000],
        "vruntime": [10_000_000_000, 9_999_000_000],
    }
    assert {col: v.tolist() for col, v in trace["eevdf"].items()} == {
        "task": [0, 1],
        "time": [4_000_000, 5_000_000],
        "lag": [-1_500_000, 700_000],
        "deadline": [10_002_000_000, 10_001_500_000],
        "eligible": [0, 1],
    }
    assert trace["segments"]["end"].tolist() == [4_000_000]
    assert trace["blocks"]["task"].tolist() == [1]


def test_a_cfs_recording_freezes_an_empty_eevdf_table() -> None:
    rec = Recorder()
    rec.vruntime(2, 1_000, 3_000)
    rec.add("vruntime", 1, 2_000, 4_000)
    trace = rec.freeze(["a", "b", "c"], ["/"], 1)
    assert trace["vruntime"]["task"].tolist() == [2, 1]
    assert trace["vruntime"]["vruntime"].tolist() == [3_000, 4_000]
    assert {col: len(v) for col, v in trace["eevdf"].items()} == dict.fromkeys(TABLES["eevdf"], 0)


def test_a_value_too_wide_for_its_column_widens_it() -> None:
    rec = Recorder()
    rec.segment(0, 1, 0, 10)
    rec.segment(1, 40_000, 10, 20)  # task 40 000 > int16: the cpu was appended, then task failed
    rec.segment(1, 2, 20, 20 + 2**32)  # a length beyond int32
    rec.add("kills", 2, 70_000, 30, 2)
    rec.eevdf(40_000, 20, 0, 2**40, 2**33, 1)
    segments = rec.columns["segments"]
    assert [col.typecode for col in segments] == ["h", "i", "q", "q"]
    assert [len(col) for col in segments] == [3, 3, 3, 3]
    assert [col.typecode for col in rec.columns["samples"]] == ["i", "q", "q", "q", "q", "b"]
    rec.segment(2, 3, 20, 30)  # the hot path appends to the widened columns
    trace = rec.freeze([f"t{k}" for k in range(40_001)], [f"/g{k}" for k in range(70_001)], 3)
    assert trace["segments"]["task"].tolist() == [1, 40_000, 2, 3]
    assert trace["segments"]["cpu"].tolist() == [0, 1, 1, 2]
    assert trace["segments"]["start"].tolist() == [0, 10, 20, 20]
    assert trace["segments"]["end"].tolist() == [10, 20, 20 + 2**32, 30]
    assert trace["kills"]["cgroup"].tolist() == [70_000]
    assert trace["eevdf"]["lag"].tolist() == [2**40]
    assert trace["eevdf"]["deadline"].tolist() == [2**33]


def test_a_value_beyond_int64_is_refused_by_name() -> None:
    rec = Recorder()
    rec.segment(0, 1, 0, 10)
    with pytest.raises(OverflowError, match=r"segments\.length: 9223372036854775808 does not"):
        rec.segment(0, 1, 0, 2**63)
    assert [len(col) for col in rec.columns["segments"]] == [1, 1, 1, 1]


def test_add_names_the_table_and_the_row_length() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match=r"recorded with its vruntime by Recorder\.eevdf"):
        rec.add("eevdf", 0, 1, 2, 3, 1)
    with pytest.raises(ValueError, match="blocks: expected 2 values, found 3"):
        rec.add("blocks", 0, 1, 2)
    assert recorded_bytes(rec) == 0


def test_samples_with_and_without_eevdf_columns_do_not_freeze() -> None:
    rec = Recorder()
    rec.eevdf(0, 1, 2, 3, 4, 1)
    rec.vruntime(0, 5, 6)
    with pytest.raises(ValueError, match="found 1 of 2"):
        rec.freeze(["a"], ["/"], 1)


@given(
    st.lists(
        st.tuples(st.integers(0, 2**31 - 1), INT64, INT64, INT64, INT64, st.integers(0, 1)),
        max_size=20,
    )
)
def test_eevdf_samples_freeze_to_what_was_recorded(rows: list[tuple[int, ...]]) -> None:
    rec = Recorder()
    for row in rows:
        rec.eevdf(*row)
    trace = rec.freeze(["t"], ["/"], 1)
    vrt, eevdf = trace["vruntime"], trace["eevdf"]
    got = list(
        zip(
            vrt["task"].tolist(),
            vrt["time"].tolist(),
            vrt["vruntime"].tolist(),
            eevdf["lag"].tolist(),
            eevdf["deadline"].tolist(),
            eevdf["eligible"].tolist(),
            strict=True,
        )
    )
    assert got == rows
    assert eevdf["task"].tolist() == vrt["task"].tolist()
    assert eevdf["time"].tolist() == vrt["time"].tolist()


@pytest.mark.parametrize("policy", ["cfs", "eevdf"])
def test_a_run_freezes_int64_tables_with_one_sample_per_vruntime_row(policy: str) -> None:
    sim = cfssim.Simulation(cpus=2, policy=policy, seed=1)
    sim.add_process("hog", threads=3, behaviour=cfssim.program(run="forever"))
    sim.add_process("io", threads=2, behaviour=cfssim.program(run="1ms", sleep="3ms"))
    result = sim.run(cfssim.ms(200))
    assert result.trace is not None
    trace = result.trace
    assert all(
        values.dtype == np.int64 and list(cols) == list(TABLES[name])
        for name, cols in trace.tables.items()
        for values in cols.values()
    )
    samples = len(trace["vruntime"]["task"])
    assert samples == len(sim.machine.rec.columns["samples"][0])
    assert samples >= len(trace["blocks"]["task"]) > 0
    if policy == "eevdf":
        assert len(trace["eevdf"]["task"]) == samples
        assert (trace["eevdf"]["time"] == trace["vruntime"]["time"]).all()
        assert set(trace["eevdf"]["eligible"].tolist()) == {0, 1}
    else:
        assert len(trace["eevdf"]["task"]) == 0
