"""The memcg model against numbers worked out from the kernel's rules (see each test)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfssim.cgroup.files import UNLIMITED_MEMORY_BYTES, Interface
from cfssim.cgroup.files import CgroupConfig as Cfg
from cfssim.cgroup.memory import (
    PAGE_SIZE,
    MemCgroup,
    MemoryController,
    MemoryLimitBusy,
    MemProcess,
    OomAction,
    ProcessMemory,
    calculate_high_delay,
    calculate_overage,
    high_penalty_jiffies,
    oom_badness,
)

MiB = 1 << 20


def controller(version: Interface = "v1", hz: int = 250, **paths: Cfg) -> MemoryController:
    """A tree from keyword paths: `app__web` is /app/web (parents must come first)."""
    configs = {"/": Cfg(interface=version)}
    for key, cfg in paths.items():
        configs["/" + key.replace("__", "/")] = cfg
    return MemoryController(configs, hz=hz, version=version)


def kill(ctl: MemoryController, victim: MemProcess) -> tuple[object, ...]:
    """The victim exits: its memory is uncharged (all of it was charged in its cgroup)."""
    assert isinstance(victim, ProcessMemory)
    woken = ctl.uncharge(ctl[victim.cgroup], victim.rss)
    victim.rss, victim.alive = 0, False
    return woken


def allocate(ctl: MemoryController, proc: ProcessMemory, nbytes: int, procs: list) -> None:
    """An alloc step as the simulator runs it: charge, OOM on failure, retry the rest."""
    remaining = nbytes
    while proc.alive:
        result = ctl.charge(ctl[proc.cgroup], remaining)
        proc.rss += result.charged
        remaining -= result.charged
        if result.failed is None:
            return
        decision = ctl.mem_cgroup_oom(result.failed, procs, waiter=proc, charger=proc)
        assert decision.action is OomAction.KILL
        for victim in decision.victims:
            kill(ctl, victim)


# -- charging -----------------------------------------------------------------------------


def test_child_under_smaller_parent_limit_fails_at_parent() -> None:
    ctl = controller(p=Cfg(memory_limit=10 * MiB), p__c=Cfg(memory_limit=20 * MiB))
    result = ctl.charge(ctl["/p/c"], 12 * MiB)
    # 10 MiB fit under every level; the 2561st page fails at /p, the lowest full level.
    # try_charge_memcg fails there 19 times before the OOM killer (a 64-page batch attempt,
    # the exact one, one after draining the stocks, 16 retries): failcnt 19, and the max event
    # 18 (the batch attempt comes before memcg_memory_event) — 19 is what 6.18 counts.
    assert (result.charged, result.failed) == (10 * MiB, ctl["/p"])
    assert [ctl[p].usage for p in ("/p/c", "/p", "/")] == [10 * MiB] * 3
    assert (ctl["/p"].failcnt, ctl["/p/c"].failcnt, ctl.root.failcnt) == (19, 0, 0)
    assert ctl["/p"].events["max"] == 18 and ctl["/p/c"].events["max"] == 0


def test_lowest_full_level_fails_first() -> None:
    ctl = controller(p=Cfg(memory_limit=10 * MiB), p__c=Cfg(memory_limit=4 * MiB))
    result = ctl.charge(ctl["/p/c"], 6 * MiB)
    assert (result.charged, result.failed) == (4 * MiB, ctl["/p/c"])
    assert (ctl["/p/c"].failcnt, ctl["/p"].failcnt) == (19, 0)


def test_charges_are_whole_pages_and_limits_are_floored_to_pages() -> None:
    ctl = controller(g=Cfg(memory_limit=10_000))  # page_counter_memparse: 2 pages
    assert ctl["/g"].limit == 2 * PAGE_SIZE
    assert ctl.charge(ctl["/g"], 1).charged == PAGE_SIZE
    result = ctl.charge(ctl["/g"], PAGE_SIZE + 1)  # needs 2 pages, 1 fits
    assert (result.requested, result.charged, result.failed) == (
        2 * PAGE_SIZE,
        PAGE_SIZE,
        ctl["/g"],
    )
    ctl.uncharge(ctl["/g"], 1)  # one page back
    assert ctl["/g"].usage == PAGE_SIZE


def test_max_usage_is_a_watermark() -> None:
    ctl = controller(g=Cfg())
    ctl.charge(ctl["/g"], 8 * MiB)
    ctl.uncharge(ctl["/g"], 6 * MiB)
    ctl.charge(ctl["/g"], 1 * MiB)
    assert (ctl["/g"].usage, ctl["/g"].max_usage) == (3 * MiB, 8 * MiB)
    ctl.reset_max_usage(ctl["/g"])
    assert ctl["/g"].max_usage == 3 * MiB


def test_uncharging_more_than_charged_is_an_error() -> None:
    ctl = controller(g=Cfg())
    ctl.charge(ctl["/g"], PAGE_SIZE)
    with pytest.raises(ValueError, match="exceeds usage"):
        ctl.uncharge(ctl["/g"], 2 * PAGE_SIZE)


# -- two growers under one limit: the OOM case ------------------------------------------------


def grow(
    ctl: MemoryController, procs: list[ProcessMemory], sizes: dict[str, int], steps: int
) -> list[tuple[int, str]]:
    """Every step (25 ms apart) each live process allocates its size, in list order.

    Returns (step, name) for each process at the step it was killed.
    """
    kills: list[tuple[int, str]] = []
    for step in range(1, steps + 1):
        alive_before = [p for p in procs if p.alive]
        for proc in alive_before:
            allocate(ctl, proc, sizes[proc.name], procs)
        kills += [(step, p.name) for p in alive_before if not p.alive]
    return kills


def test_two_growing_processes_under_128mib() -> None:
    # After k steps the group holds 8k MiB; step 16 reaches exactly 128 MiB (fits: a charge
    # fails only when usage would exceed the limit), so step 17 (t = 400 ms) is the first
    # that cannot fit. Badness at step 17: big 96 MiB = 24576 pages, small 32 MiB = 8192
    # pages: big dies. small alone holds 2k MiB after k steps: 128 MiB at step 64, so it is
    # killed at step 65 (t = 1600 ms).
    ctl = controller(g=Cfg(memory_limit=128 * MiB))
    procs = [ProcessMemory("big", "/g"), ProcessMemory("small", "/g")]
    kills = grow(ctl, procs, {"big": 6 * MiB, "small": 2 * MiB}, steps=70)
    assert kills == [(17, "big"), (65, "small")]
    g = ctl["/g"]
    # Each victim was the allocating process itself: 19 failed passes before the OOM killer,
    # 17 after it (the retries restart, then the dying task gives up) — 36 per kill, as 6.18
    # counts for one allocator killed under its limit.
    assert g.oom_kill == 2 and g.failcnt == 2 * 36 and g.events["oom"] == 2
    assert g.events["max"] == 2 * (18 + 17)
    assert (g.usage, g.max_usage, g.under_oom) == (0, 128 * MiB, False)
    assert ctl.stats(g, "v1")["memory.oom_control"] == {
        "oom_kill_disable": 0,
        "under_oom": 0,
        "oom_kill": 2,
    }


def test_oom_score_adj_shifts_the_choice() -> None:
    # totalpages = 32768, so adj counts 32768 // 1000 = 32 pages per unit.
    # +500: small = 8192 + 16000 = 24192 < big 24576 → big still dies.
    # +600: small = 8192 + 19200 = 27392 → small dies at step 17; big then holds 102 MiB and
    # reaches 126 MiB at step 21; at step 22 only 2 of its 6 MiB fit and big is killed.
    assert oom_badness(ProcessMemory("s", rss=32 * MiB, oom_score_adj=500), 32768) == 24192
    for adj, expected in ((500, [(17, "big"), (65, "small")]), (600, [(17, "small"), (22, "big")])):
        ctl = controller(g=Cfg(memory_limit=128 * MiB))
        procs = [ProcessMemory("big", "/g"), ProcessMemory("small", "/g", oom_score_adj=adj)]
        assert grow(ctl, procs, {"big": 6 * MiB, "small": 2 * MiB}, steps=70) == expected


def test_unkillable_process_is_never_chosen() -> None:
    ctl = controller(g=Cfg(memory_limit=64 * MiB))
    big = ProcessMemory("big", "/g", rss=50 * MiB, oom_score_adj=-1000)
    small = ProcessMemory("small", "/g", rss=1 * MiB)
    assert ctl.select_victims(ctl["/g"], [big, small]).victim is small
    decision = ctl.select_victims(ctl["/g"], [big])
    assert (decision.action, decision.victim) == (OomAction.NO_VICTIM, None)


def test_ties_go_to_the_later_process_in_iteration_order() -> None:
    ctl = controller(g=Cfg(memory_limit=64 * MiB), g__c=Cfg())
    a = ProcessMemory("a", "/g", rss=8 * MiB)
    b = ProcessMemory("b", "/g", rss=8 * MiB)
    assert ctl.select_victims(ctl["/g"], [a, b]).victim is b
    assert ctl.select_victims(ctl["/g"], [b, a]).victim is a
    child = ProcessMemory("child", "/g/c", rss=8 * MiB)  # pre-order: /g's tasks, then /g/c's
    assert ctl.select_victims(ctl["/g"], [child, a]).victim is child


def test_no_new_victim_while_one_is_exiting() -> None:
    ctl = controller(g=Cfg(memory_limit=16 * MiB))
    a = ProcessMemory("a", "/g")
    b = ProcessMemory("b", "/g")
    ctl.charge(ctl["/g"], 12 * MiB)
    a.rss = 12 * MiB
    b.rss = ctl.charge(ctl["/g"], 8 * MiB).charged  # 4 MiB fit
    first = ctl.mem_cgroup_oom(ctl["/g"], [a, b], waiter=b, charger=b)
    assert (first.action, first.victims, a.oom_victim) == (OomAction.KILL, (a,), True)
    second = ctl.mem_cgroup_oom(ctl["/g"], [a, b], waiter=b, charger=b)
    assert (second.action, second.victim) == (OomAction.WAIT_VICTIM, a)
    assert ctl.waiting() == (b,)
    assert kill(ctl, a) == (b,)  # a's memory freed in the domain: b retries
    assert ctl["/g"].oom_kill == 1 and ctl["/g"].events["oom"] == 2


# -- memory.oom.group (v2) -------------------------------------------------------------------


def test_oom_group_kills_the_whole_group_but_unkillable_tasks() -> None:
    ctl = controller(
        "v2",
        app=Cfg(memory_limit=64 * MiB, oom_group=True, interface="v2"),
        app__a=Cfg(oom_group=True, interface="v2"),
        app__b=Cfg(interface="v2"),
    )
    p1 = ProcessMemory("p1", "/app/a", rss=40 * MiB)
    p2 = ProcessMemory("p2", "/app/b", rss=20 * MiB)
    p3 = ProcessMemory("p3", "/app/b", rss=4 * MiB, oom_score_adj=-1000)
    for p in (p1, p2, p3):
        ctl.charge(ctl[p.cgroup], p.rss)
    result = ctl.charge(ctl["/app/b"], 8 * MiB)
    assert result.failed is ctl["/app"] and result.charged == 0
    decision = ctl.mem_cgroup_oom(ctl["/app"], [p1, p2, p3], waiter=p2, charger=p2)
    # The highest oom.group memcg between p1's /app/a and the domain /app is /app.
    assert (decision.victim, decision.oom_group, decision.victims) == (p1, ctl["/app"], (p1, p2))
    assert decision.points == 40 * MiB // PAGE_SIZE
    assert not p3.oom_victim
    # oom_kill: p1 by __oom_kill_process, then p1 again and p2 by oom_kill_memcg_member.
    app, a, b = ctl["/app"], ctl["/app/a"], ctl["/app/b"]
    assert (a.events_local["oom_kill"], b.events_local["oom_kill"]) == (2, 1)
    assert (app.events["oom_kill"], app.events_local["oom_kill"]) == (3, 0)
    # p2's charge failed 19 times before the OOM killer (18 max events); p2 dies as a member
    # of the oom.group, so its charge fails 17 more times before it gives up as dying.
    assert (app.events["oom_group_kill"], app.events["oom"], app.events["max"]) == (1, 1, 35)
    assert app.failcnt == 19 + 17
    assert ctl.stats(app, "v2")["memory.events.local"] == {
        "low": 0,
        "high": 0,
        "max": 35,
        "oom": 1,
        "oom_kill": 0,
        "oom_group_kill": 1,
    }


def test_oom_group_above_the_oom_domain_is_ignored() -> None:
    ctl = controller(
        "v2",
        app=Cfg(oom_group=True, interface="v2"),
        app__a=Cfg(memory_limit=8 * MiB, interface="v2"),
    )
    p1 = ProcessMemory("p1", "/app/a", rss=8 * MiB)
    p2 = ProcessMemory("p2", "/app", rss=1 * MiB)
    decision = ctl.select_victims(ctl["/app/a"], [p1, p2])
    assert (decision.victims, decision.oom_group) == ((p1,), None)
    # Only v2 has oom groups: on v1 the flag is ignored (mem_cgroup_get_oom_group → NULL).
    v1 = controller("v1", app=Cfg(memory_limit=8 * MiB, oom_group=True), app__a=Cfg())
    assert v1.get_oom_group(p1, v1["/app"]) is None


def test_v1_events_stay_at_their_memcg_v2_events_propagate() -> None:
    cases: tuple[tuple[Interface, int], ...] = (("v1", 0), ("v2", 1))
    for version, parent_kills in cases:
        ctl = controller(
            version,
            p=Cfg(interface=version),
            p__c=Cfg(memory_limit=4 * MiB, interface=version),
        )
        proc = ProcessMemory("x", "/p/c", rss=4 * MiB)
        ctl.charge(ctl["/p/c"], 4 * MiB)
        failed = ctl.charge(ctl["/p/c"], PAGE_SIZE).failed
        assert failed is ctl["/p/c"]
        ctl.mem_cgroup_oom(failed, [proc], proc, charger=proc)
        assert ctl["/p/c"].oom_kill == 1
        assert ctl["/p"].oom_kill == parent_kills
        assert ctl["/p"].events_local["oom_kill"] == 0


# -- v1 oom_kill_disable ---------------------------------------------------------------------


def test_oom_kill_disable_sleeps_until_memory_is_freed_or_the_limit_rises() -> None:
    ctl = controller(g=Cfg(memory_limit=8 * MiB, oom_kill_disable=True), g__c=Cfg(), h=Cfg())
    task, other = ProcessMemory("task", "/g/c"), ProcessMemory("other", "/g")
    other.rss = ctl.charge(ctl["/g"], 4 * MiB).charged
    result = ctl.charge(ctl["/g/c"], 6 * MiB)
    assert (result.charged, result.failed) == (4 * MiB, ctl["/g"])
    decision = ctl.mem_cgroup_oom(ctl["/g"], [task, other], waiter=task, charger=task)
    assert decision.action is OomAction.WAIT_OOM and decision.victims == ()
    # mem_cgroup_mark_under_oom marks the OOM memcg and its descendants, not ancestors.
    assert (ctl["/g"].under_oom, ctl["/g/c"].under_oom, ctl.root.under_oom) == (True, True, False)
    assert ctl.stats(ctl["/g"], "v1")["memory.oom_control"] == {
        "oom_kill_disable": 1,
        "under_oom": 1,
        "oom_kill": 0,
    }
    assert ctl["/g"].events["oom"] == 1
    ctl.charge(ctl["/h"], PAGE_SIZE)
    assert ctl.uncharge(ctl["/h"], PAGE_SIZE) == ()  # unrelated memcg: nobody wakes
    assert ctl.uncharge(ctl["/g"], 1 * MiB) == (task,)  # a free in the subtree wakes it
    assert not ctl["/g"].under_oom and not ctl["/g/c"].under_oom

    ctl.mem_cgroup_oom(ctl["/g"], [task, other], waiter=task, charger=task)  # retried, failed again
    assert ctl.set_limit(ctl["/g"], 7 * MiB) == ()  # lowering wakes nobody
    assert ctl.set_limit(ctl["/g"], 16 * MiB) == (task,)
    assert ctl.charge(ctl["/g/c"], 2 * MiB).complete

    ctl.set_limit(ctl["/g"], 10 * MiB)
    ctl.mem_cgroup_oom(ctl["/g"], [task, other], waiter=task, charger=task)
    assert ctl.set_oom_kill_disable(ctl["/g"], False) == (task,)
    assert ctl.mem_cgroup_oom(ctl["/g"], [task, other], task, charger=task).action is OomAction.KILL


def test_cancelled_waiter_clears_under_oom() -> None:
    ctl = controller(g=Cfg(memory_limit=PAGE_SIZE, oom_kill_disable=True))
    ctl.charge(ctl["/g"], PAGE_SIZE)
    ctl.mem_cgroup_oom(ctl["/g"], [], waiter="t1", charger=None)
    assert ctl.cancel_wait("t1") and not ctl["/g"].under_oom
    assert not ctl.cancel_wait("t1")


# -- limit writes ------------------------------------------------------------------------------


def test_v1_limit_below_usage_is_ebusy() -> None:
    ctl = controller(g=Cfg(memory_limit=64 * MiB))
    ctl.charge(ctl["/g"], 32 * MiB)
    with pytest.raises(MemoryLimitBusy, match="Device or resource busy") as info:
        ctl.set_limit(ctl["/g"], 16 * MiB)
    assert info.value.errno == errno.EBUSY
    assert ctl["/g"].limit == 64 * MiB
    ctl.set_limit(ctl["/g"], 32 * MiB)  # equal to usage is fine
    assert ctl["/g"].limit == 32 * MiB


def test_v2_max_below_usage_kills_until_under() -> None:
    ctl = controller("v2", w=Cfg(interface="v2"))
    a, b = ProcessMemory("a", "/w", rss=30 * MiB), ProcessMemory("b", "/w", rss=10 * MiB)
    for p in (a, b):
        ctl.charge(ctl["/w"], p.rss)
    assert ctl.set_limit(ctl["/w"], 8 * MiB) == () and ctl["/w"].limit == 8 * MiB
    first = ctl.enforce_max(ctl["/w"], [a, b], waiter="writer")
    assert first is not None and first.victims == (a,)
    waiting = ctl.enforce_max(ctl["/w"], [a, b], waiter="writer")
    assert waiting is not None and waiting.action is OomAction.WAIT_VICTIM
    assert kill(ctl, a) == ("writer",)
    second = ctl.enforce_max(ctl["/w"], [a, b])
    assert second is not None and second.victims == (b,)
    kill(ctl, b)
    assert ctl.enforce_max(ctl["/w"], [a, b]) is None
    assert ctl["/w"].events["oom"] == 3 and ctl["/w"].events["oom_kill"] == 2
    assert ctl["/w"].failcnt == 0  # no charge failed


def test_apply_config_writes_only_what_changed() -> None:
    ctl = controller(g=Cfg(memory_limit=8 * MiB, oom_kill_disable=True))
    ctl.charge(ctl["/g"], 8 * MiB)
    ctl.mem_cgroup_oom(ctl["/g"], [], waiter="t", charger=None)
    woken = ctl.apply_config(ctl["/g"], Cfg(memory_limit=None, oom_kill_disable=True))
    assert woken == ("t",) and ctl["/g"].limit is None
    with pytest.raises(MemoryLimitBusy):
        ctl.apply_config(ctl["/g"], Cfg(memory_limit=4 * MiB))


# -- memory.high -------------------------------------------------------------------------------


def test_high_delay_matches_the_kernel_table() -> None:
    # The table in mm/memcontrol.c (high = 100M, 64 pages, HZ = 1000, ms = jiffies).
    high = 100 * MiB // PAGE_SIZE
    table = {101: 6, 102: 25, 105: 159, 110: 639, 117: 1849, 118: 2000, 120: 2000}
    for usage_mib, ms in table.items():
        overage = calculate_overage(usage_mib * MiB // PAGE_SIZE, high)
        assert min(calculate_high_delay(64, overage, 1000), 2000) == ms
    # 110M: overage = (2560 << 20) // 25600 = 104857; 104857² · 1000 >> 34 = 639 jiffies.
    assert calculate_overage(110 * MiB // PAGE_SIZE, high) == 104857
    # Sleeps of ≤ HZ/100 jiffies are skipped: 101M would owe 6 ms, which is not slept.
    assert high_penalty_jiffies(64, calculate_overage(101 * MiB // PAGE_SIZE, high), 1000) == 0


def test_charge_above_high_returns_the_penalty_and_never_kills() -> None:
    for hz, penalty_ns in ((1000, 639_000_000), (250, 159 * 4_000_000)):
        ctl = controller("v2", hz=hz, h=Cfg(memory_high=100 * MiB, interface="v2"))
        assert ctl.charge(ctl["/h"], 110 * MiB - 64 * PAGE_SIZE).complete
        result = ctl.charge(ctl["/h"], 64 * PAGE_SIZE)  # ends at 110M: the reference example
        assert result.complete and result.penalty_ns == penalty_ns
        assert ctl["/h"].events["high"] == 2 and ctl["/h"].events["oom"] == 0
    # One page is accounted as a whole MEMCG_CHARGE_BATCH, like memcg_nr_pages_over_high.
    assert ctl.charge(ctl["/h"], 1).penalty_ns > 0
    assert ctl["/h"].usage > 110 * MiB  # memory.high is not a limit


# -- reporting -----------------------------------------------------------------------------------


def test_stats_use_the_kernel_file_names_and_unlimited_values() -> None:
    ctl = controller(g=Cfg())
    stats = ctl.stats(ctl["/g"])
    assert stats["memory.limit_in_bytes"] == UNLIMITED_MEMORY_BYTES == 9223372036854771712
    assert (stats["memory.max"], stats["memory.high"]) == ("max", "max")
    assert set(stats) == {
        "memory.usage_in_bytes",
        "memory.max_usage_in_bytes",
        "memory.limit_in_bytes",
        "memory.failcnt",
        "memory.oom_control",
        "memory.current",
        "memory.max",
        "memory.high",
        "memory.peak",
        "memory.events",
        "memory.events.local",
    }


def test_missing_parent_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="expected its parent /a"):
        MemoryController({"/": Cfg(), "/a/b": Cfg()})


# -- invariants ----------------------------------------------------------------------------------

TREE = ("/a", "/a/x", "/a/y", "/b", "/b/z")
limits = st.one_of(st.none(), st.integers(1, 64).map(lambda pages: pages * PAGE_SIZE))


@settings(max_examples=150, deadline=None)
@given(
    tree_limits=st.tuples(*[limits] * len(TREE)),
    ops=st.lists(
        st.tuples(st.sampled_from(TREE), st.booleans(), st.integers(0, 40 * PAGE_SIZE)),
        max_size=40,
    ),
)
def test_usage_is_the_sum_of_charges_and_never_exceeds_a_limit(tree_limits, ops) -> None:
    ctl = MemoryController(
        {"/": Cfg(), **{p: Cfg(memory_limit=lim) for p, lim in zip(TREE, tree_limits, strict=True)}}
    )
    own = dict.fromkeys(ctl.memcgs, 0)
    for path, is_charge, nbytes in ops:
        memcg = ctl[path]
        if is_charge:
            own[path] += ctl.charge(memcg, nbytes).charged
        else:
            freed = min(nbytes // PAGE_SIZE * PAGE_SIZE, own[path])
            ctl.uncharge(memcg, freed)
            own[path] -= freed
        for level in ctl.memcgs.values():
            assert level.usage == sum(own[m.path] for m in level.walk())
            assert level.usage_pages <= level.max_pages
            assert level.max_usage >= level.usage


processes = st.lists(
    st.tuples(
        st.sampled_from(("/", *TREE)),
        st.integers(0, 2000),
        st.sampled_from((-1000, -999, -500, -1, 0, 1, 300, 1000)),
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(procs=processes, domain=st.sampled_from(TREE), limit_pages=st.integers(1, 10**6))
def test_victim_has_maximal_badness(procs, domain, limit_pages) -> None:
    configs = {"/": Cfg(), **{p: Cfg() for p in TREE}}
    configs[domain] = Cfg(memory_limit=limit_pages * PAGE_SIZE)
    ctl = MemoryController(configs)
    tasks = [
        ProcessMemory(f"p{i}", path, rss=pages * PAGE_SIZE, oom_score_adj=adj)
        for i, (path, pages, adj) in enumerate(procs)
    ]
    dom: MemCgroup = ctl[domain]
    order = [t for m in dom.walk() for t in tasks if t.cgroup == m.path]
    scores = [(oom_badness(t, limit_pages), t) for t in order]
    candidates = [(s, t) for s, t in scores if s is not None]
    decision = ctl.select_victims(dom, tasks)
    if not candidates:
        assert decision.action is OomAction.NO_VICTIM
        return
    best = max(s for s, _ in candidates)
    assert decision.points == best
    assert decision.victim is [t for s, t in candidates if s == best][-1]
