"""The bundled scenarios: the YAML files of ``scenarios/`` in a checkout (``cfssim/_scenarios``
when installed), listed by name (``cfssim scenarios``) and found by name where a command takes a
scenario file (`resolve_scenario`).
"""

from __future__ import annotations

from pathlib import Path

from .._errors import did_you_mean
from .errors import ScenarioError

_PACKAGE = Path(__file__).resolve().parent.parent  # cfssim/
_SCENARIO_DIR = _PACKAGE.parent / "scenarios"
_PACKAGED_SCENARIO_DIR = _PACKAGE / "_scenarios"


def scenario_dir() -> Path:
    """The bundled scenarios: ``scenarios/`` in a checkout, ``cfssim/_scenarios`` when installed."""
    return _PACKAGED_SCENARIO_DIR if _PACKAGED_SCENARIO_DIR.is_dir() else _SCENARIO_DIR


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario name (file stem) → path, sorted by name."""
    directory = scenario_dir()
    return {path.stem: path for path in sorted(directory.glob("*.yaml"))}


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A scenario file: an existing path, or the name of a bundled scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = bundled_scenarios()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    raise ScenarioError(
        [
            f"{name_or_path}:1:1: document: expected a YAML file or a bundled "
            f"scenario ({', '.join(bundled)}){did_you_mean(name_or_path, bundled)}, "
            "found neither"
        ]
    )
