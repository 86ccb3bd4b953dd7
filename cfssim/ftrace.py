"""The ftrace text format (the ``trace`` file of tracefs, ``trace-cmd report``): one line parser
for every reader — `cfssim.real.tracefs` (a real run's scheduler events) and
`cfssim.export.read_ftrace` (ftrace text from elsewhere back into trace tables).

A line is ``<comm>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs>.<frac>: <event>: <fields>``; the
tgid column (``record-tgid``) and the flags column (irqs-off, need-resched, hard/softirq,
preempt depth, migrate-disable: 4 or 5 characters) are optional, and the fraction has 6 digits
(µs, the kernel's own output) or 9 (``trace-cmd report -t``). Comment lines (``#``) and lost-event
notes are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

#: One event line: task (comm), pid, optional tgid, cpu, optional flags, timestamp, event, body.
LINE = re.compile(
    r"^\s*(?P<task>.+)-(?P<pid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:\S{4,5}\s+)?(?P<secs>\d+)\.(?P<frac>\d+):\s+(?P<event>\w+):\s*(?P<body>.*)$"
)
#: ``name=value`` fields of an event body (values without spaces; see `SWITCH` for comms).
FIELD = re.compile(r"(\w+)=(\S*)")
#: ``sched_switch``'s body, comms taken whole (a comm may hold spaces).
SWITCH = re.compile(
    r"prev_comm=(?P<prev_comm>.*) prev_pid=(?P<prev_pid>\d+) prev_prio=-?\d+ "
    r"prev_state=(?P<state>\S+) ==> next_comm=(?P<next_comm>.*) "
    r"next_pid=(?P<next_pid>\d+) next_prio=-?\d+"
)
#: ``sched_wakeup``/``sched_waking``'s body (``success=`` only on kernels before 4.15).
WAKEUP = re.compile(
    r"comm=(?P<comm>.*) pid=(?P<pid>\d+) prio=-?\d+(?: success=\d+)? target_cpu=(?P<cpu>\d+)"
)


@dataclass(frozen=True)
class Event:
    """One traced event: time (ns on the trace clock), CPU, the pid of the task running there
    (whose context emitted it; 0 for the idle task), name, its numeric fields, and its body
    text (for fields that are not numbers, e.g. comms: `SWITCH`, `WAKEUP`)."""

    time_ns: int
    cpu: int
    pid: int
    name: str
    fields: dict[str, int]
    body: str = field(default="", compare=False, repr=False)


def timestamp_ns(secs: str, frac: str) -> int:
    """``<secs>.<frac>`` (µs or ns digits) as int ns, without float rounding."""
    return int(secs) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def parse_trace(text: str) -> Iterator[Event]:
    """The events of ftrace text, in file order (comment lines and lost-event notes skipped)."""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            continue
        body = match["body"]
        # comm=... may precede; keep the numeric fields (pids, prios, cpus)
        values = {k: int(v) for k, v in FIELD.findall(body.replace(" ==> ", " ")) if _isint(v)}
        time_ns = timestamp_ns(match["secs"], match["frac"])
        yield Event(time_ns, int(match["cpu"]), int(match["pid"]), match["event"], values, body)


def _isint(text: str) -> bool:
    return text.lstrip("-").isdigit()
