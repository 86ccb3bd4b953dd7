"""Synchronisation and thread steps (cfssim.sync): figures that follow from their semantics."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import cfssim
from cfssim.scenario import ScenarioError, load_workload
from cfssim.simulation import Simulation
from cfssim.sync import Mutex, SyncError, sched_yield
from cfssim.units import ms


def run_yaml(body: str, duration: str = "100ms"):
    text = f"name: t\nduration: {duration}\nmachine: {{cpus: 2}}\nprocesses:\n{body}"
    return load_workload(text).run()


def test_two_threads_contending_a_mutex_serialize_on_two_cpus() -> None:
    """2 ms critical sections: the second locker waits exactly the first's hold time."""
    result = run_yaml(
        "  - name: a\n    threads: 2\n    program: [{lock: m}, {run: 2ms}, {unlock: m}]\n"
    )
    exits = sorted(task["exit"]["time_ns"] for task in result.tasks.values())
    assert exits == [ms(2), ms(4)]
    assert all(task["cpu_time_ns"] == ms(2) for task in result.tasks.values())


def test_unlock_hands_the_mutex_to_the_first_waiter_fifo() -> None:
    sim = Simulation(cpus=2, seed=1)
    lock, order = Mutex("m"), []

    def holder(task):
        yield lock.lock(task)
        yield task.run(ms(3))
        yield lock.unlock(task)

    def waiter(task):
        yield task.sleep(ms(1) if task.process.name == "first" else ms(2))
        yield lock.lock(task)
        order.append((task.process.name, task.now))
        yield task.run(ms(1))
        yield lock.unlock(task)

    sim.add_process("holder", holder)
    sim.add_process("second", waiter)
    sim.add_process("first", waiter)
    sim.run("20ms")
    assert order == [("first", ms(3)), ("second", ms(4))]
    assert lock.contended == 2


def test_unlocking_a_mutex_not_held_is_an_error_in_python_and_refused_in_yaml() -> None:
    sim = Simulation(cpus=1)
    lock = Mutex("m")
    process = sim.add_process("p", lambda task: iter(()))
    with pytest.raises(SyncError, match="held by nobody"):
        lock.unlock(process.threads[0])
    with pytest.raises(ScenarioError) as refused:
        load_workload(
            "name: t\nduration: 10ms\nmachine: {cpus: 1}\nprocesses:\n"
            "  - name: a\n    program: [{run: 1ms}, {unlock: m}]\n"
        )
    assert ":6:" in refused.value.messages[0]  # the unlock step's line
    assert "expected a lock of mutex 'm' before its unlock" in refused.value.messages[0]


def test_producer_consumer_condvar_wakeups() -> None:
    """The consumer waits; the producer signals every 10 ms: one wakeup per signal."""
    result = run_yaml(
        "  - name: consumer\n    program: [{run: 1ms}, {lock: m}, {loop: {repeat: 5, program: "
        "[{wait: {cond: c, mutex: m}}, {run: 1ms}]}}, {unlock: m}]\n"
        "  - name: producer\n    program: [{loop: {repeat: 5, program: [{sleep: 10ms}, "
        "{lock: m}, {signal: c}, {unlock: m}]}}]\n"
    )
    consumer = result.tasks["consumer/0"]
    assert consumer["wakeups"] == 5
    assert consumer["cpu_time_ns"] == ms(6)
    assert consumer["exit"]["time_ns"] == 5 * ms(10) + ms(1)


def test_barrier_of_three_releases_at_the_slowest_arrival() -> None:
    result = run_yaml(
        "  - name: fast\n    threads: 2\n    program: [{run: 1ms}, {barrier: b}, {run: 1ms}]\n"
        "  - name: slow\n    program: [{sleep: 7ms}, {barrier: b}]\n",
        duration="50ms",
    )
    exits = {name: task["exit"]["time_ns"] for name, task in result.tasks.items()}
    assert exits["slow/0"] == ms(7)
    assert exits["fast/0"] == exits["fast/1"] == ms(8)  # one CPU each after it


def test_suspend_resume_latency_and_a_lost_resume() -> None:
    result = run_yaml(
        "  - name: a\n    program: [{run: 1ms}, {suspend: a}, {run: 1ms}, {suspend: a}]\n"
        "  - name: b\n    program: [{sleep: 5ms}, {resume: a}, {run: 2ms}, {resume: a}]\n"
    )
    a = result.tasks["a/0"]
    assert a["wakeups"] == 1 and a["wakeup_latency_ns"] is not None
    # resumed at 5 ms, a runs to 6 ms and suspends again; b resumes it at 7 ms: a exits then
    assert a["exit"]["time_ns"] == ms(7)


def test_fork_starts_a_thread_at_that_moment() -> None:
    result = run_yaml(
        "  - name: parent\n    program: [{run: 3ms}, {fork: child}, {run: 1ms}]\n"
        "  - name: child\n    threads: 0\n    program: [{run: 2ms}]\n"
    )
    assert result.tasks["child/0"]["exit"]["time_ns"] == ms(5)
    assert result.tasks["parent/0"]["exit"]["time_ns"] == ms(4)


def test_yield_makes_two_hogs_on_one_cpu_alternate_at_every_yield() -> None:
    """EEVDF: the yielder forfeits its request (vruntime = deadline), so the other, now
    eligible with the earlier deadline, runs next: 0.5 ms turns instead of 4 ms ticks."""
    sim = Simulation(cpus=1, seed=1)
    turns: list[tuple[str, int]] = []

    def hog(task):
        while True:
            yield task.run(ms(1) // 2)
            turns.append((task.process.name, task.now))
            yield sched_yield(task)

    sim.add_process("x", hog)
    sim.add_process("y", hog)
    sim.run("10ms")
    names = [name for name, _ in turns]
    assert all(a != b for a, b in itertools.pairwise(names))
    assert [t for _, t in turns[:4]] == [ms(1) // 2, ms(1), 3 * ms(1) // 2, ms(2)]


def test_runtime_counts_wall_time_and_run_counts_cpu_time_under_contention() -> None:
    """Two threads on one CPU: runtime 20 ms ends at 20 ms with ~half the CPU; run 20 ms
    needs 20 ms of CPU."""
    text = (
        "name: t\nduration: 100ms\nmachine: {cpus: 1}\nprocesses:\n"
        "  - name: wall\n    program: [{runtime: 20ms}]\n"
        "  - name: hog\n    program: [{run: forever}]\n"
    )
    # the two swap every 4 ms tick: wall runs [0,4) [8,12) [16,20); at 20 ms the hog runs,
    # and wall sees the clock past its end when it next runs, at 24 ms, with 12 ms of CPU
    result = load_workload(text).run()
    wall = result.tasks["wall/0"]
    assert (wall["exit"]["time_ns"], wall["cpu_time_ns"]) == (ms(24), ms(12))
    text = text.replace("runtime: 20ms", "run: 20ms")  # 5 turns of 4 ms: [32, 36) the last
    cpu = load_workload(text).run().tasks["wall/0"]
    assert (cpu["exit"]["time_ns"], cpu["cpu_time_ns"]) == (ms(36), ms(20))


def test_cpus_step_migrates_a_running_thread() -> None:
    result = run_yaml(
        "  - name: a\n    cpus: [0]\n    program: [{run: 2ms}, {cpus: [1]}, {run: 2ms}]\n",
        duration="10ms",
    )
    a = result.tasks["a/0"]
    assert a["nr_migrations"] == 1 and a["exit"]["time_ns"] == ms(4)


DATA = Path(__file__).parent / "data" / "rtapp"


def test_rtapp_example8_phase_cpus_loads_strictly_and_migrates_at_each_phase() -> None:
    """rt-app doc/examples/tutorial/example8.json: phases on CPU 0, 1, then the task's 2
    (1.5 ms each, looping forever); in 4 ms it moves at 1.5 and 3 ms, never waiting."""
    workload = load_workload(DATA / "example8.json", strict=True)
    assert workload.scenario.machine.cpus == 3
    result = workload.run(duration_ns=ms(4))
    thread = result.tasks["thread0/0"]
    assert thread["nr_migrations"] == 2
    assert thread["cpu_time_ns"] == ms(4)


def test_rtapp_mutex_and_condvar_events_run_strictly(tmp_path: Path) -> None:
    """tutorial.txt's lock/wait/signal grammar: a waiter woken by a signaller each period."""
    source = tmp_path / "pair.json"
    source.write_text("""{"tasks": {
      "waiter": {"loop": 3, "lock": "m", "wait": {"ref": "c", "mutex": "m"},
                 "unlock": "m", "run": 1000},
      "signaller": {"loop": 3, "sleep": 10000, "lock": "m", "signal": "c", "unlock": "m"}},
      "global": {"duration": 1}}""")
    workload = load_workload(source, strict=True)
    assert not workload.warnings
    result = workload.run(duration_ns=ms(50))
    assert result.tasks["waiter/0"]["cpu_time_ns"] == ms(3)
    assert result.tasks["waiter/0"]["exit"]["time_ns"] == ms(31)


def test_measure_refuses_sync_steps() -> None:
    from cfssim.real.errors import Refused
    from cfssim.real.measure import check_scenario

    scenario = load_workload(
        "name: t\nduration: 10ms\nmachine: {cpus: 2}\nprocesses:\n"
        "  - name: a\n    program: [{lock: m}, {run: 1ms}, "
        "{unlock: m}]\n"
    ).scenario
    with pytest.raises(Refused, match="cannot run 'lock' steps"):
        check_scenario(scenario, force=False, max_duration_ns=ms(1000))


@pytest.mark.parametrize(
    "steps",
    [[{"free": "4KiB"}], [{"lock": "m"}, {"unlock": "m"}], [{"signal": "c"}], [{"run": "1ms"}]],
)
def test_a_step_that_takes_no_time_after_a_run_is_no_sleep(steps: list[dict]) -> None:
    # the behaviour's next request arrives at the instant its run ends: no voluntary switch,
    # no wakeup — only the hog's tick preemptions (24 in 200 ms on one CPU)
    sim = cfssim.Simulation(cpus=1, seed=1)
    sim.add_process("hog", cfssim.program(run="forever"))
    sim.add_process("t", cfssim.program({"alloc": "4KiB"}, {"run": "2ms"}, *steps))
    t = sim.run("200ms").tasks["t/0"]
    assert (t["wakeups"], t["nr_voluntary_switches"]) == (0, 0)
    assert t["nr_involuntary_switches"] == 24


def test_a_yield_gives_the_cpu_up_without_sleeping() -> None:
    # EEVDF yield_task_fair: the eligible yielder forfeits its request, the hog runs: twice the
    # involuntary switches of the same program without the yield, and never a wakeup
    def switches(*steps: dict) -> tuple[int, int]:
        sim = cfssim.Simulation(cpus=1, seed=1)
        sim.add_process("hog", cfssim.program(run="forever"))
        sim.add_process("t", cfssim.program({"run": "2ms"}, *steps))
        t = sim.run("200ms").tasks["t/0"]
        return t["wakeups"], t["nr_involuntary_switches"]

    assert switches({"run": "1ms"}) == (0, 24)
    assert switches({"yield": None}) == (0, 47)


def test_a_sync_object_belongs_to_one_simulation() -> None:
    # a mutex first used in one simulation is refused by another (its owner would leak in)
    lock = Mutex("db")

    def worker(task):  # type: ignore[no-untyped-def]
        yield lock.lock(task)
        yield task.run(ms(2))
        yield lock.unlock(task)

    first = Simulation(cpus=1, seed=1)
    first.add_process("w", worker)
    assert first.run("10ms").tasks["w/0"]["cpu_time_ns"] == ms(2)
    second = Simulation(cpus=1, seed=1)
    second.add_process("w", worker)
    with pytest.raises(SyncError, match="belongs to another simulation"):
        second.run("10ms")


def test_a_sleeper_whose_dequeue_was_delayed_obeys_a_new_affinity() -> None:
    # EEVDF keeps an ineligible sleeper queued (DELAY_DEQUEUE): x, sharing CPU 0 with a hog, is
    # such a sleeper at 24.55 ms; an affinity that no longer allows CPU 0 completes that
    # dequeue, so x wakes onto CPU 1 (it had gone on running on CPU 0)
    sim = Simulation(cpus=2, seed=1)
    sim.add_process("hog", cfssim.program(run="forever"), cpus=[0])
    sim.add_process("hog1", cfssim.program(run="forever"), cpus=[1])
    sim.add_process("x", cfssim.program(run="500us", sleep="2ms"), cpus=[0])
    sim.at(24_550_000, lambda: sim.set_affinity("x", [1]))
    result = sim.run("100ms")
    assert result.trace is not None
    segments = result.trace["segments"]
    x = list(result.trace.tasks).index("x/0")
    late = (segments["task"] == x) & (segments["start"] > 24_550_000)
    assert late.any() and set(segments["cpu"][late].tolist()) == {1}


def refusals(body: str) -> list[str]:
    with pytest.raises(ScenarioError) as refused:
        load_workload(f"name: t\nduration: 10ms\nmachine: {{cpus: 2}}\nprocesses:\n{body}")
    return refused.value.messages


def test_mutex_misuse_inside_per_thread_programs_is_refused_per_thread() -> None:
    """Each thread's own per_thread program is checked as that thread runs it: thread 0 locks
    m twice (a default pthread mutex deadlocks), thread 1 unlocks a mutex it never locked."""
    messages = refusals(
        "  - name: p\n    threads: 2\n    program:\n      - per_thread:\n"
        "        - program: [{lock: m}, {run: 1ms}, {unlock: m}]\n"
        "        - program: [{unlock: m}, {run: 1ms}]\n"
    )
    assert messages == [
        "<string>:10:21: processes[0].program[0].per_thread[1].program[0]: expected a lock of "
        "mutex 'm' before its unlock, found the mutex not held"
    ]
    messages = refusals(
        "  - name: p\n    threads: 2\n    program:\n      - {lock: m}\n      - per_thread:\n"
        "        - program: [{lock: m}, {run: 1ms}]\n        - program: [{run: 1ms}]\n"
        "      - {unlock: m}\n"
    )
    assert messages == [
        "<string>:10:21: processes[0].program[1].per_thread[0].program[0]: expected mutex 'm' "
        "to be free for this thread, found it held already by the thread (deadlock)"
    ]


def test_a_lock_taken_in_one_thread_s_own_program_is_released_by_the_shared_part() -> None:
    result = run_yaml(
        "  - name: p\n    threads: 2\n    program:\n      - per_thread:\n"
        "        - program: [{lock: m}, {run: 2ms}]\n"
        "        - program: [{lock: m}, {run: 3ms}]\n      - {unlock: m}\n"
    )
    exits = sorted(task["exit"]["time_ns"] for task in result.tasks.values())
    assert exits == [ms(2), ms(5)]  # the second locker waits for the first's 2 ms


def test_a_barrier_counts_only_the_threads_whose_own_program_meets_it() -> None:
    """Threads 0 and 1 meet at b, thread 2 never does: 2 parties, not the process's 3 (which
    would never release)."""
    result = run_yaml(
        "  - name: p\n    threads: 3\n    program:\n      - per_thread:\n"
        "        - program: [{run: 1ms}, {barrier: b}, {run: 1ms}]\n"
        "        - program: [{sleep: 4ms}, {barrier: b}]\n"
        "        - program: [{run: 1ms}]\n"
    )
    exits = {name: task["exit"]["time_ns"] for name, task in result.tasks.items()}
    assert exits == {"p/0": ms(5), "p/1": ms(4), "p/2": ms(1)}
    assert refusals(
        "  - name: p\n    threads: 2\n    program:\n      - per_thread:\n"
        "        - program: [{barrier: b}, {run: 1ms}]\n"
        "        - program: [{run: 1ms}]\n"
    ) == [
        "<string>:9:21: processes[0].program[0].per_thread[0].program[0]: expected barrier "
        "'b' shared by at least 2 threads, found 1"
    ]
