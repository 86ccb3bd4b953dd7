"""Hostile input is refused quickly and in little memory: each case runs ``cfssim validate`` (or
``cfssim compare``) in a fresh process and reports its wall time, peak RSS and exit status.

    python benchmarks/hostile_input.py [--events 100000]

Targets: a 100k-event scenario refused in < 2 s and < 200 MB (``Limits.max_file_bytes`` stops it
before YAML is parsed); a result.json nested 100,000 levels deep, a 5,000-digit integer and a
trace.npz zip bomb refused with exit 2 just as fast.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def scenario_with_events(events: int) -> str:
    """A valid scenario but for its size: one process and `events` nice events."""
    head = (
        "name: many\nduration: 1s\nmachine: {cpus: 1}\n"
        "processes:\n  - {name: p, program: [{run: 1ms}, {sleep: 1ms}]}\nevents:\n"
    )
    return head + "".join(
        f"  - {{at: {i}us, nice: {{process: p, value: 1}}}}\n" for i in range(events)
    )


def measure(args: list[str]) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MB, exit status, first line of stderr) of ``python -m cfssim``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cfssim", *args],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    line = (done.stderr.strip().splitlines() or [""])[0]
    return seconds, max(peak, before) / 1024, done.returncode, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenario = root / "many.yaml"
        scenario.write_text(scenario_with_events(options.events))
        result = root / "deep"
        result.mkdir()
        (result / "result.json").write_text(
            '{"source": "simulation", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"
        )
        digits = root / "digits"
        digits.mkdir()
        (digits / "result.json").write_text('{"cpus": ' + "9" * 5000 + "}")
        cases = {
            f"{options.events} events ({scenario.stat().st_size / 1e6:.1f} MB)": [
                "validate",
                str(scenario),
            ],
            "result.json nested 100k deep": ["compare", str(result), str(result)],
            "result.json 5000-digit integer": ["compare", str(digits), str(digits)],
        }
        print(f"{'case':40} {'seconds':>8} {'peak MB':>8} {'exit':>5}  message")
        for name, args in cases.items():
            seconds, peak, status, line = measure(args)
            print(f"{name:40} {seconds:8.2f} {peak:8.0f} {status:5}  {line[:100]}")


if __name__ == "__main__":
    main()
