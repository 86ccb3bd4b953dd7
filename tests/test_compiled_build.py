"""The opt-in compiled build (``HATCH_BUILD_HOOK_ENABLE_MYPYC=true pip install .``): the core built
with mypyc runs every bundled scenario, under both policies, to byte-identical traces — and hog
machines whose CPUs replay their round robins to the same traces and replayed switches.

Building takes 1–2 minutes and needs a C compiler and the build dependencies (hatch-mypyc,
setuptools, mypy) from the package index; without them the test skips and says which is missing.
Marked ``build``: ``-m "not build"`` leaves it out of a quick run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cfssim
import cfssim.sched.core
from cfssim.scenario import bundled_scenarios

ROOT = Path(__file__).resolve().parent.parent
DURATION_NS = 500_000_000
#: pip's messages when a build dependency cannot be fetched (offline, no index)
UNREACHABLE_INDEX = (
    "No matching distribution",
    "Could not find a version",
    "Failed to establish",
    "Temporary failure in name resolution",
    "ProxyError",
)

#: hog machines whose CPUs replay their round robins (`cfssim.sched.replay`), the second cut
#: by the balancer's moves: their digests and replayed switches, compiled and interpreted
HOG_RUNS = """
import cfssim

def hog_lines(ns):
    for cpus, hogs in ((2, 10), (2, 5)):
        for policy in ("cfs", "eevdf"):
            sim = cfssim.Simulation(cpus=cpus, policy=policy, seed=1)
            sim.add_process("hog", threads=hogs, behaviour=cfssim.program(run="forever"))
            digest = sim.run(4 * ns).trace.digest(every=True)
            yield f"hogs-{cpus}x{hogs} {policy} {digest} {sim.machine.replayed_switches}"
"""

DIGESTS = (
    """
import sys, cfssim, cfssim.sched.core
from cfssim.scenario import bundled_scenarios
print("compiled" if not cfssim.sched.core.__file__.endswith(".py") else "interpreted")
for name, path in sorted(bundled_scenarios().items()):
    for policy in ("cfs", "eevdf"):
        result = cfssim.run_scenario(
            cfssim.load_scenario(path), policy=policy, duration_ns=int(sys.argv[1]))
        print(name, policy, result.trace.digest(every=True))
"""
    + HOG_RUNS
    + """
for line in hog_lines(int(sys.argv[1])):
    print(line)
"""
)


def digests_here() -> list[str]:
    assert cfssim.sched.core.__file__.endswith(".py"), (
        f"this checkout's core is compiled ({cfssim.sched.core.__file__}): the comparison would be "
        "compiled against compiled — `find cfssim -name '*.so' -delete` first"
    )
    lines = []
    for name, path in sorted(bundled_scenarios().items()):
        for policy in ("cfs", "eevdf"):
            scenario = cfssim.load_scenario(path)
            result = cfssim.run_scenario(scenario, policy=policy, duration_ns=DURATION_NS)
            assert result.trace is not None
            lines.append(f"{name} {policy} {result.trace.digest(every=True)}")
    namespace: dict[str, Any] = {}
    exec(HOG_RUNS, namespace)
    hog_lines = list(namespace["hog_lines"](DURATION_NS))
    assert all(int(line.split()[-1]) > 0 for line in hog_lines)  # the runs replay
    return lines + hog_lines


pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (cc/gcc) to build the compiled core")
    # hatch-mypyc builds in place (and hides pyproject.toml meanwhile): build from a copy
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("cfssim", "scenarios"):
        skip = shutil.ignore_patterns("__pycache__", "*.so")
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    wheels = tmp_path_factory.mktemp("wheels")
    env = dict(os.environ, HATCH_BUILD_HOOK_ENABLE_MYPYC="true")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if build.returncode != 0:
        if any(text in build.stderr for text in UNREACHABLE_INDEX):
            pytest.skip(f"the build dependencies cannot be fetched: {build.stderr.strip()[-300:]}")
        pytest.fail(f"the compiled build failed:\n{build.stderr[-3000:]}")
    site = tmp_path_factory.mktemp("site")
    (wheel,) = wheels.glob("cfssim-*.whl")
    assert "py3-none-any" not in wheel.name, f"{wheel.name}: the build hook did not compile"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def test_the_compiled_core_traces_every_bundled_scenario_identically(compiled_site: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", DIGESTS, str(DURATION_NS)],
        env=dict(os.environ, PYTHONPATH=str(compiled_site)),
        cwd=compiled_site,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    kind, *lines = run.stdout.splitlines()
    assert kind == "compiled"
    assert lines == digests_here()
