"""The C worker (`worker.c`): compiling it, encoding programs for it, talking to its sessions.

The worker is compiled on first use with ``cc -O2 -pthread`` into ``~/.cache/cfssim/`` (or
``$XDG_CACHE_HOME/cfssim``), keyed by the hash of its source. One worker process runs one
scenario session: it forks a child per scenario process, whose threads report their tids, wait
on the shared "go" pipe and run their program (see the protocol in worker.c).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..scenario import Alloc, Exit, Free, Loop, Run, Sleep, Step, Timer, iter_steps
from ..scenario.steps import CAPTURED_STEPS
from .errors import NoCompiler, Refused, WorkerFailed

SOURCE = Path(__file__).with_name("worker.c")
OP_RUN, OP_SLEEP, OP_ALLOC, OP_FREE, OP_EXIT, OP_LOOP, OP_TIMER = range(1, 8)
FOREVER = -1
TIMER_MODES = {"absolute": 0, "relative": 1}


# ---- the binary -------------------------------------------------------------------------------
def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cfssim"


def worker_binary(compiler: str | None = None) -> Path:
    """The compiled worker for the current source, building it if needed."""
    return compiled(SOURCE, compiler)


def compiled(source_file: Path, compiler: str | None = None) -> Path:
    """The binary of C program `source_file` (``cc -O2 -pthread``), cached in `cache_dir` under
    its stem and the hash of its source, building it if needed; `NoCompiler` when it cannot."""
    source = source_file.read_bytes()
    target = cache_dir() / f"{source_file.stem}-{hashlib.sha256(source).hexdigest()[:16]}"
    if target.exists():
        return target
    cc = compiler or next((c for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    if cc is None or shutil.which(cc) is None:
        raise NoCompiler(
            f"cfssim compiles a small C program ({source_file.name}) on first use, but no C "
            "compiler (cc, gcc or clang) was found; install one (e.g. apt-get install gcc)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    done = subprocess.run(
        [cc, "-O2", "-pthread", "-o", str(partial), str(source_file)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise NoCompiler(f"compiling {source_file} with {cc} failed:\n{done.stderr.strip()}")
    partial.replace(target)
    return target


# ---- programs ---------------------------------------------------------------------------------
def encode_program(program: Sequence[Step], repeat: int | None = 1) -> list[int]:
    """Scenario steps (Run, Sleep, Timer, Alloc, Free, Exit, Loop) → the worker's integer tokens.

    A process's `repeat` (None: forever) wraps the whole program in one loop.
    """
    body = _encode_steps(program)
    if repeat == 1:
        return body
    return [OP_LOOP, FOREVER if repeat is None else repeat, len(body), *body]


def unsupported_step(program: Sequence[Step]) -> str | None:
    """Why the worker cannot run `program` (a captured program's ``draw``, ``until`` or
    ``per_thread`` step, which only the simulator runs), or None."""
    kinds = {model: kind for kind, model in CAPTURED_STEPS.items()}
    for step, _depth in iter_steps(program):
        if type(step) in kinds:
            return (
                f"the real twin's worker has no {kinds[type(step)]} step (captured programs "
                "are simulated; measure the captured command itself instead)"
            )
    return None


def _encode_steps(steps: Iterable[Step]) -> list[int]:
    tokens: list[int] = []
    for step in steps:
        if isinstance(step, Run):
            tokens += [OP_RUN, FOREVER if step.ns is None else step.ns]
        elif isinstance(step, Sleep):
            tokens += [OP_SLEEP, step.ns]
        elif isinstance(step, Timer):
            tokens += [OP_TIMER, step.period_ns, TIMER_MODES[step.mode]]
        elif isinstance(step, Alloc):
            tokens += [OP_ALLOC, step.bytes]
        elif isinstance(step, Free):
            tokens += [OP_FREE, FOREVER if step.bytes is None else step.bytes]
        elif isinstance(step, Exit):
            tokens += [OP_EXIT, step.code]
        elif isinstance(step, Loop):
            inner = _encode_steps(step.program)
            tokens += [OP_LOOP, FOREVER if step.repeat is None else step.repeat, len(inner), *inner]
        elif (problem := unsupported_step([step])) is not None:
            raise Refused(problem)
        else:
            raise TypeError(f"unknown program step {step!r}")
    return tokens


# ---- sessions and their reports ---------------------------------------------------------------
@dataclass(frozen=True)
class ProcessJob:
    """One scenario process as the worker sees it."""

    index: int
    threads: int
    start_ns: int
    tokens: tuple[int, ...]

    def line(self) -> str:
        return (
            f"proc {self.index} {self.threads} {self.start_ns} {len(self.tokens)} "
            + " ".join(map(str, self.tokens))
            + "\n"
        )


@dataclass(frozen=True)
class TidReport:
    process: int
    thread: int
    tid: int
    pid: int


@dataclass(frozen=True)
class DoneReport:
    """A thread finished its program at `time_ns` (CLOCK_MONOTONIC) with `code`."""

    process: int
    thread: int
    time_ns: int
    code: int


@dataclass(frozen=True)
class ExitReport:
    """A process was reaped: `status` is the raw wait status."""

    process: int
    pid: int
    status: int
    time_ns: int


Report = TidReport | DoneReport | ExitReport


def parse_report(line: str) -> Report:
    word, *fields = line.split()
    if word == "tid":
        return TidReport(*map(int, fields))
    if word == "done":
        return DoneReport(*map(int, fields))
    if word == "exit":
        return ExitReport(*map(int, fields))
    raise WorkerFailed(f"worker reported: {line.strip()}")


class Sessions:
    """The worker processes of one run (one per scenario session) and their merged reports."""

    def __init__(self, binary: Path, stat_dir: Path, sessions: Sequence[Sequence[ProcessJob]]):
        """Spawn one worker per session. If any spawn fails (or is interrupted), the workers
        already spawned are killed and reaped and the pipes closed before the error goes on:
        they are in no run cgroup yet, so nothing else could find them."""
        self.go_read, self.go_write = os.pipe()
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[int, bytes] = {}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.thread_count = sum(job.threads for jobs in sessions for job in jobs)
        try:
            for jobs in sessions:
                self._spawn(binary, stat_dir, jobs)
        except BaseException:
            self.kill()
            raise
        finally:
            os.close(self.go_read)

    def _spawn(self, binary: Path, stat_dir: Path, jobs: Sequence[ProcessJob]) -> None:
        worker = subprocess.Popen(
            [str(binary), str(stat_dir), str(self.go_read)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(self.go_read,),
            start_new_session=True,  # its own session, hence its own autogroup
        )
        self.workers.append(worker)
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(("".join(job.line() for job in jobs) + "end\n").encode())
        worker.stdin.close()
        os.set_blocking(worker.stdout.fileno(), False)
        self.selector.register(worker.stdout, selectors.EVENT_READ)
        self.buffers[worker.stdout.fileno()] = b""

    def release(self, t0_ns: int) -> None:
        """Open the barrier: every thread reads the start instant `t0_ns` (CLOCK_MONOTONIC)."""
        payload = t0_ns.to_bytes(8, "little", signed=True) * self.thread_count
        view = memoryview(payload)
        while view:
            view = view[os.write(self.go_write, view) :]
        os.close(self.go_write)
        self.go_write = -1

    def poll(self, timeout_s: float) -> list[Report]:
        """Reports that arrived within `timeout_s` (an empty list when none did)."""
        reports: list[Report] = []
        for key, _ in self.selector.select(timeout_s):
            fd = key.fileobj.fileno()  # type: ignore[union-attr]
            chunk = os.read(fd, 65536)
            if not chunk:
                self.selector.unregister(key.fileobj)
                continue
            *lines, self.buffers[fd] = (self.buffers[fd] + chunk).split(b"\n")
            reports += [parse_report(line.decode()) for line in lines if line.strip()]
        return reports

    @property
    def open_pipes(self) -> int:
        return len(self.selector.get_map())

    def kill(self) -> None:
        """SIGKILL every worker process group (children included) and reap the session leaders."""
        if self.go_write >= 0:
            os.close(self.go_write)
            self.go_write = -1
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, 9)
        for worker in self.workers:
            worker.wait()
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a stdin the worker broke
                        pipe.close()
        self.selector.close()
