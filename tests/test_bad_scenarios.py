"""The bad-input corpus: every file in tests/bad_scenarios names, on its first line, the exact
``line:col: field: expected …, found …`` message it must produce (``# expect: …``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfssim.scenario import ScenarioError, load_scenario

CORPUS = Path(__file__).parent / "bad_scenarios"
FILES = sorted(CORPUS.glob("*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    return first.removeprefix("# expect: ")


def test_corpus_is_large() -> None:
    assert len(FILES) >= 45


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_bad_scenario_reports_file_line_field_expected_found(path: Path) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert f"{path}:{expectation(path)}" in raised.value.messages


def test_truly_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(empty)
    assert raised.value.messages == [
        f"{empty}:1:1: document: expected a mapping with name, duration, machine and "
        "processes, found an empty document"
    ]


def test_several_errors_are_reported_at_once_in_file_order() -> None:
    text = (
        "name: x\nduration: 3 parsecs\nmachine: {cpus: 0}\n"
        "processes:\n  - {name: a, nice: 30, program: [{run: 10ms}]}\n"
    )
    with pytest.raises(ScenarioError) as raised:
        load_scenario(text)
    assert raised.value.messages == [
        "<string>:2:11: duration: expected a duration such as '100ms' or '1.5s' (units ns, us, "
        "ms, s, m, h), found '3 parsecs'",
        "<string>:3:17: machine.cpus: expected a value ≥ 1, found 0",
        "<string>:5:21: processes[0].nice: expected a value ≤ 19, found 30",
    ]
