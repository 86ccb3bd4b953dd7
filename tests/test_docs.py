"""docs/kernel-facts.md stays true to the code: every test and function a fact names exists, and
every citation of a fact (in code, tests, benchmarks and README) names a fact that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTS = ROOT / "docs" / "kernel-facts.md"
REFERENCE = re.compile(r"`((?:cfssim|tests|benchmarks)/[\w/]+\.(?:py|c))::([\w.]+)`")


def defines(path: Path, dotted: str) -> bool:
    """Does `path` define `dotted` (``Class.member`` nested, or a top-level name)?"""
    source = path.read_text()
    parts = dotted.split(".")
    for i, name in enumerate(parts):
        if path.suffix == ".c":
            pattern = rf"^(static\s+)?[\w\s\*]+\b{name}\s*\([^;]*\)\s*\{{"
        elif i < len(parts) - 1:
            pattern = rf"^\s*class\s+{name}\b"
        else:
            pattern = rf"^\s*(async\s+)?def\s+{name}\b|^\s*class\s+{name}\b|^\s*{name}\s*(:|=)"
        found = re.compile(pattern, re.M).search(source)
        if found is None:
            return False
        source = source[found.end() :]
        if i < len(parts) - 1:  # the rest of this class only
            following = re.compile(r"^(class|def)\s", re.M).search(source)
            source = source[: following.start()] if following else source
    return True


def test_every_code_and_test_a_fact_names_exists() -> None:
    refs = sorted(set(REFERENCE.findall(FACTS.read_text())))
    assert len(refs) > 50  # the facts do name what pins and uses them
    missing = [
        f"{path}::{dotted}"
        for path, dotted in refs
        if not (ROOT / path).exists() or not defines(ROOT / path, dotted)
    ]
    assert missing == []


def test_every_citation_of_a_fact_names_a_fact() -> None:
    anchors = re.findall(r"^## ([a-z0-9-]+)$", FACTS.read_text(), re.M)
    assert len(anchors) == len(set(anchors)) >= 20
    sources = [*ROOT.glob("cfssim/**/*.py"), *ROOT.glob("cfssim/**/*.c")]
    sources += [*ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"), ROOT / "README.md"]
    cited = {
        (path.name, anchor)
        for path in sources
        for anchor in re.findall(r"kernel-facts\.md#([a-z0-9-]+)", path.read_text())
    }
    assert len(cited) >= 10
    assert sorted(c for c in cited if c[1] not in anchors) == []
