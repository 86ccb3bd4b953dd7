"""cgroup file semantics, checked against the kernel's rules and the 6.18 machine's answers."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfssim.cgroup.files import (
    UNLIMITED_MEMORY_BYTES,
    CgroupConfig,
    CgroupFileError,
    HierarchyError,
    apply_write,
    check_hierarchy,
    check_path,
    configure,
    effective_cpus,
    effective_quota,
    format_cpulist,
    hierarchical_quota,
    is_descendant,
    normalise_path,
    parse_cpulist,
    path_depth,
    read_file,
    read_oom_control,
    shares_to_nice,
    shares_to_weight,
    validate_cpuset_change,
    weight_to_shares,
)
from cfssim.units import ms, us

DEFAULT = CgroupConfig()


def write(file: str, value: object, config: CgroupConfig = DEFAULT) -> CgroupConfig:
    return apply_write(config, file, value)  # type: ignore[arg-type]


# ---- defaults and reads -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("cpu.shares", "1024"),
        ("cpu.idle", "0"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "-1"),
        ("cpu.cfs_burst_us", "0"),
        ("cpu.weight", "100"),
        ("cpu.weight.nice", "0"),
        ("cpu.max", "max 100000"),
        ("cpu.max.burst", "0"),
        ("cpuset.cpus", ""),
        ("memory.limit_in_bytes", "9223372036854771712"),
        ("memory.max", "max"),
        ("memory.high", "max"),
        ("memory.oom.group", "0"),
        ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0"),
    ],
)
def test_default_reads_like_a_fresh_kernel_group(file: str, text: str) -> None:
    assert read_file(DEFAULT, file) == text


# ---- cpu.shares / cpu.weight / cpu.idle ---------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "read"),
    [
        (0, 2),
        (1, 2),
        (2, 2),
        (3, 3),
        (1024, 1024),
        (262144, 262144),
        (262145, 262144),
        ("1000000", 262144),
    ],
)
def test_shares_clamp_like_sched_group_set_shares(written: object, read: int) -> None:
    config = write("cpu.shares", written)
    assert config.shares == read and read_file(config, "cpu.shares") == str(read)


def test_negative_shares_are_einval() -> None:
    with pytest.raises(CgroupFileError, match=re.escape("cpu.shares: expected a non-negative")):
        write("cpu.shares", -1)


@pytest.mark.parametrize(
    ("weight", "shares"), [(1, 10), (3, 31), (50, 512), (100, 1024), (10000, 102400)]
)
def test_weight_to_shares_rounds_to_closest(weight: int, shares: int) -> None:
    assert weight_to_shares(weight) == shares
    assert write("cpu.weight", weight).shares == shares


@pytest.mark.parametrize("weight", [0, 10001, "abc"])
def test_weight_out_of_range(weight: object) -> None:
    with pytest.raises(CgroupFileError, match=r"expected an integer within 1\.\.10000"):
        write("cpu.weight", weight)


@given(st.integers(min_value=1, max_value=10000))
def test_weight_reads_back_what_was_written(weight: int) -> None:
    assert shares_to_weight(weight_to_shares(weight)) == weight


def test_shares_read_as_weight_and_nice() -> None:
    assert shares_to_weight(2048) == 200
    assert shares_to_weight(2) == 1  # clamped to CGROUP_WEIGHT_MIN
    assert [shares_to_nice(w) for w in (1024, 335, 88761, 15, 10, 1000)] == [0, 5, -20, 19, 19, 0]
    assert write("cpu.weight.nice", 5).shares == 335
    assert read_file(write("cpu.weight.nice", -3), "cpu.weight.nice") == "-3"


def test_idle_groups_weigh_three_and_refuse_weight_writes() -> None:
    idle = write("cpu.idle", 1, write("cpu.shares", 2048))
    assert (idle.idle, idle.shares) == (True, 3)
    with pytest.raises(CgroupFileError, match=re.escape("cpu.shares: expected cpu.idle 0 first")):
        write("cpu.shares", 500, idle)
    assert write("cpu.idle", 0, idle).shares == 1024  # leaving idle resets to NICE_0_LOAD
    with pytest.raises(CgroupFileError, match="expected 0 or 1"):
        write("cpu.idle", 2)


# ---- bandwidth ----------------------------------------------------------------------------------
def test_period_range() -> None:
    assert write("cpu.cfs_period_us", 1000).period_ns == ms(1)
    assert write("cpu.cfs_period_us", "1s").period_ns == 10**9
    for bad in (999, 1000001):
        with pytest.raises(CgroupFileError, match=r"within 1000\.\.1000000 µs"):
            write("cpu.cfs_period_us", bad)


def test_quota_rules() -> None:
    assert write("cpu.cfs_quota_us", 1000).quota_ns == us(1000)
    assert write("cpu.cfs_quota_us", 200000).quota_ns == ms(200)  # may exceed the period
    assert write("cpu.cfs_quota_us", "50ms").quota_ns == ms(50)
    assert write("cpu.cfs_quota_us", -5).quota_ns is None  # any negative: unlimited
    assert read_file(write("cpu.cfs_quota_us", -5), "cpu.cfs_quota_us") == "-1"
    with pytest.raises(CgroupFileError, match="at least 1000 µs"):
        write("cpu.cfs_quota_us", 999)
    with pytest.raises(CgroupFileError, match="whole microseconds"):
        write("cpu.cfs_quota_us", "1500ns")


def test_burst_must_not_exceed_quota() -> None:
    limited = write("cpu.cfs_quota_us", 50000)
    assert write("cpu.cfs_burst_us", 50000, limited).burst_ns == ms(50)
    with pytest.raises(CgroupFileError, match=r"burst no larger than the quota \(50000 µs\)"):
        write("cpu.cfs_burst_us", 60000, limited)
    bursty = write("cpu.cfs_burst_us", 50000, limited)
    with pytest.raises(CgroupFileError, match=re.escape("cpu.cfs_quota_us: expected a burst")):
        write("cpu.cfs_quota_us", 40000, bursty)
    assert write("cpu.cfs_burst_us", 5000).burst_ns == ms(5)  # unlimited quota: no bound


@pytest.mark.parametrize(
    ("text", "quota_ns", "period_ns"),
    [
        ("max 100000", None, ms(100)),
        ("50000 100000", ms(50), ms(100)),
        ("50000", ms(50), ms(100)),
        ("max", None, ms(100)),
        ("20000 50000", ms(20), ms(50)),
    ],
)
def test_cpu_max(text: str, quota_ns: int | None, period_ns: int) -> None:
    config = write("cpu.max", text)
    assert (config.quota_ns, config.period_ns, config.interface) == (quota_ns, period_ns, "v2")
    assert read_file(config, "cpu.max") == text if " " in text else True


def test_cpu_max_keeps_the_period_when_only_quota_is_written() -> None:
    config = write("cpu.max", "30000", write("cpu.max", "max 50000"))
    assert read_file(config, "cpu.max") == "30000 50000"


@pytest.mark.parametrize("text", ["", "fast 100000", "50000 100000 7", "-1 100000", "max x"])
def test_cpu_max_syntax(text: str) -> None:
    with pytest.raises(CgroupFileError, match=re.escape("cpu.max: expected 'max', 'max 100000'")):
        write("cpu.max", text)


# ---- cpuset -------------------------------------------------------------------------------------
def test_cpulists() -> None:
    assert parse_cpulist("cpuset.cpus", "0-1,3") == {0, 1, 3}
    assert parse_cpulist("cpuset.cpus", "1,0") == {0, 1}
    assert parse_cpulist("cpuset.cpus", [2, 0]) == {0, 2}
    assert format_cpulist({0, 1, 3, 5, 6, 7}) == "0-1,3,5-7"
    assert read_file(write("cpuset.cpus", "0-1,1"), "cpuset.cpus") == "0-1"
    for bad in ("", "1-0", "a", [], [-1]):
        with pytest.raises(CgroupFileError, match="expected a CPU list"):
            write("cpuset.cpus", bad)


# ---- memory -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "limit"),
    [
        (1, 0),
        (4095, 0),
        (4097, 4096),
        ("100M", 100 << 20),
        ("1G", 1 << 30),
        ("1k", 0),
        ("8K", 8192),
        (100000000, 99999744),
        ("64MiB", 64 << 20),
        ("100MB", 99999744),
        (-1, None),
        ("-1", None),
        (9223372036854775807, None),
        (UNLIMITED_MEMORY_BYTES, None),
    ],
)
def test_limit_in_bytes_rounds_down_to_pages(written: object, limit: int | None) -> None:
    config = write("memory.limit_in_bytes", written)
    assert config.memory_limit == limit
    expected = UNLIMITED_MEMORY_BYTES if limit is None else limit
    assert read_file(config, "memory.limit_in_bytes") == str(expected)


@pytest.mark.parametrize("written", [-2, "1.5M", "max", "lots", 2**64])
def test_limit_in_bytes_rejects(written: object) -> None:
    with pytest.raises(CgroupFileError, match=re.escape("memory.limit_in_bytes: expected a size")):
        write("memory.limit_in_bytes", written)


def test_v2_memory_files() -> None:
    config = write("memory.high", "80M", write("memory.max", "100M"))
    assert (config.memory_limit, config.memory_high, config.interface) == (
        100 << 20,
        80 << 20,
        "v2",
    )
    assert read_file(config, "memory.max") == str(100 << 20)
    assert write("memory.max", "max", config).memory_limit is None
    with pytest.raises(CgroupFileError, match="or max for unlimited"):
        write("memory.max", -1)
    assert write("memory.oom.group", 1).oom_group is True


def test_oom_control_sets_oom_kill_disable() -> None:
    config = write("memory.oom_control", 1)
    assert config.oom_kill_disable is True
    assert read_oom_control(config, under_oom=True, oom_kill=2) == (
        "oom_kill_disable 1\nunder_oom 1\noom_kill 2"
    )
    with pytest.raises(CgroupFileError, match=re.escape("memory.oom_control: expected 0 or 1")):
        write("memory.oom_control", {"oom_kill_disable": 1})


# ---- files, root, paths -----------------------------------------------------------------------
def test_unknown_file_suggests() -> None:
    with pytest.raises(CgroupFileError, match=r"did you mean 'cpu.shares'\?"):
        write("cpu.share", 1)


def test_root_files_are_read_only() -> None:
    with pytest.raises(CgroupFileError, match="root cgroup"):
        apply_write(DEFAULT, "cpu.shares", 2048, is_root=True)


def test_paths() -> None:
    assert check_path("/") == "/" and check_path("/a/b-c") == "/a/b-c"
    for bad in ("a", "/a/", "//a", "/a/../b", "/a b", 5):
        with pytest.raises(ValueError, match="expected an absolute cgroup path"):
            check_path(bad)


# ---- hierarchy ----------------------------------------------------------------------------------
def quota(value: int, period: int = 100000, interface: str = "v1") -> CgroupConfig:
    if interface == "v2":
        return configure({"cpu.max": f"{value} {period}"})
    return configure({"cpu.cfs_period_us": period, "cpu.cfs_quota_us": value})


def test_v1_child_ratio_above_parent_is_einval() -> None:
    configs = {"/": DEFAULT, "/p": quota(50000), "/p/c": quota(60000)}
    with pytest.raises(HierarchyError) as raised:
        check_hierarchy(configs)
    assert raised.value.path == "/p/c" and raised.value.parent == "/p"
    assert "50000/100000 µs = 0.5 CPUs" in str(raised.value)
    assert "found 60000/100000 µs = 0.6 CPUs" in str(raised.value)


def test_v1_equal_ratios_and_unlimited_children_pass() -> None:
    configs = {
        "/": DEFAULT,
        "/p": quota(50000),
        "/p/c": quota(100000, 200000),
        "/p/u": DEFAULT,
        "/p/u/g": quota(40000),
    }
    bounds = hierarchical_quota(configs)
    assert bounds["/p"] == bounds["/p/c"] == bounds["/p/u"] == (50000 << 20) // 100000
    assert bounds["/"] is None


def test_v1_grandchild_is_checked_through_an_unlimited_parent() -> None:
    configs = {"/": DEFAULT, "/p": quota(50000), "/p/u": DEFAULT, "/p/u/g": quota(70000)}
    with pytest.raises(HierarchyError, match="ancestor /p"):
        check_hierarchy(configs)


def test_v2_takes_the_minimum() -> None:
    configs = {
        "/": DEFAULT,
        "/p": quota(50000, interface="v2"),
        "/p/c": quota(80000, interface="v2"),
    }
    check_hierarchy(configs)
    assert hierarchical_quota(configs)["/p/c"] == (50000 << 20) // 100000
    assert effective_quota(configs, "/p/c") == Fraction(1, 2)
    assert effective_quota(configs, "/") is None


def test_cpuset_subset_and_effective_cpus() -> None:
    parent = configure({"cpuset.cpus": "0"})
    configs = {"/": DEFAULT, "/p": parent, "/p/c": configure({"cpuset.cpus": "0-1"})}
    with pytest.raises(HierarchyError, match=re.escape("cpuset.cpus: expected CPUs within")):
        check_hierarchy(configs)
    assert effective_cpus(configs, "/p/c") == {0}
    assert effective_cpus(configs, "/") is None


def test_cpuset1_validate_change_errno_per_case() -> None:
    """kernel/cgroup/cpuset-v1.c ``cpuset1_validate_change``: a child's CPUs outside the new set
    is -EBUSY, the new set outside the parent's is -EACCES; both refuse the write."""
    import errno

    configs = {
        "/": DEFAULT,
        "/p": configure({"cpuset.cpus": "0-1"}),
        "/p/c": configure({"cpuset.cpus": "1"}),
    }
    busy = validate_cpuset_change(configs, "/p", frozenset({0}))
    assert busy is not None and (busy.code, busy.other, busy.other_cpus) == (
        errno.EBUSY,
        "/p/c",
        {1},
    )
    assert busy.write_error() == (
        "/p: cpuset.cpus: write error: Device or resource busy (child /p/c uses CPUs 1 outside 0)"
    )
    denied = validate_cpuset_change(configs, "/p/c", frozenset({2}))
    assert denied is not None and (denied.code, denied.other, denied.other_cpus) == (
        errno.EACCES,
        "/p",
        {0, 1},
    )
    assert denied.write_error() == (
        "/p/c: cpuset.cpus: write error: Permission denied (CPUs 2 outside the parent's 0-1)"
    )
    assert validate_cpuset_change(configs, "/p", frozenset({1, 2})) is None
    assert validate_cpuset_change(configs, "/", frozenset({1})) is not None  # /p holds 0-1
    # a tree created parent first: the child written outside its parent is EACCES
    with pytest.raises(HierarchyError, match="rejects others with EACCES, found '0-1'"):
        check_hierarchy(
            {
                "/": DEFAULT,
                "/p": configure({"cpuset.cpus": "0"}),
                "/p/c": configure({"cpuset.cpus": "0-1"}),
            }
        )


def test_cgroup_path_helpers() -> None:
    assert [path_depth(p) for p in ("/", "/a", "/a/b", "a/b/")] == [0, 1, 2, 2]
    assert [normalise_path(p) for p in ("", "/", "a/b/", "//a//b")] == ["/", "/", "/a/b", "/a/b"]
    assert is_descendant("/a/b", "/a") and is_descendant("/a", "/a") and is_descendant("/x", "/")
    assert not is_descendant("/ab", "/a") and not is_descendant("/a", "/a/b")
