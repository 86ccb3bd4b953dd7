"""Machine profiles: loading, validation errors located in the YAML, defaults, distributions."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfssim.profile import (
    DEFAULT_PROFILE,
    Distribution,
    ProfileError,
    default_profile,
    dump_profile,
    load_profile,
    parse_profile,
    resolve_profile,
)
from cfssim.scenario import ScenarioError

GOOD = """\
host: vm
kernel: 6.18.44-fc-v1147
date: '2026-11-28T03:40:00+00:00'
loadavg: 0.2
cpus: 2
hz: 250
slice_ends: tick
base_slice_ns: 1400000
timer_slack_ns: 50000
page_fault_ns_per_page: 2500
sched_cfs_bandwidth_slice_us: 5000
sched_rt_runtime_us: 950000
sched_rt_period_us: 1000000
tick:
  phase: 120us
  cpus:
    - {cpu: 0, offset: 0, jitter: {quantiles: {p5: 0, p95: 0}}}
    - {cpu: 1, offset: -12us, jitter: {quantiles: {p5: -40us, p50: 1us, p95: 30us}}}
noise:
  window: 3s
  cpus:
    - {cpu: 0, rate_per_s: 5.5, run_length: {lognormal: {mu: 9, sigma: 1}}}
    - {cpu: 1, rate_per_s: 4, run_length: {quantiles: {p0: 2us, p50: 10us, p100: 1ms}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "host.yaml"
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return [message.replace(str(path), "host.yaml") for message in caught.value.messages]


# ---- good files -------------------------------------------------------------------------------
def test_a_good_profile_loads_in_ns(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert (profile.cpus, profile.hz, profile.slice_ends) == (2, 250, "tick")
    assert (profile.base_slice_ns, profile.timer_slack_ns) == (1_400_000, 50_000)
    assert profile.page_fault_ns_per_page == 2500
    assert (profile.sched_rt_runtime_us, profile.sched_rt_period_us) == (950_000, 1_000_000)
    assert profile.tick is not None and profile.tick.phase_ns == 120_000
    cpu1 = profile.tick.cpus[1]
    assert cpu1.offset_ns == -12_000
    assert cpu1.jitter.points == [(0.05, -40_000), (0.5, 1_000), (0.95, 30_000)]
    assert profile.noise is not None and profile.noise.window_ns == 3_000_000_000
    assert profile.noise.cpus[0].run_length.quantile(0.5) == round(math.exp(9))  # 8103 ns
    assert profile.tick_ns == 4_000_000


def test_dump_reads_back_equal(tmp_path: Path) -> None:
    profile = load_profile(
        write(tmp_path, GOOD + "null_write_ns_per_call: 78\ntick_switch_ns: 10000\n")
    )
    text = dump_profile(profile, ("a header",))
    assert text.startswith("# a header\n")
    assert "offset: -12us" in text and "base_slice_ns: 1400000" in text
    # keys naming their unit are written as plain ints of it
    assert "null_write_ns_per_call: 78\n" in text and "tick_switch_ns: 10000\n" in text
    assert parse_profile(text) == profile


def test_defaults_of_a_minimal_profile() -> None:
    profile = parse_profile("cpus: 4\nbase_slice_ns: 2.1ms\n")
    assert profile.base_slice_ns == 2_100_000
    assert (profile.hz, profile.slice_ends, profile.timer_slack_ns) == (250, "tick", 50_000)
    assert profile.page_fault_ns_per_page == 0
    assert profile.tick is None and profile.noise is None
    assert profile.tick_for(3) is None and profile.noise_for(0) is None
    assert profile.machine_settings() == {
        "hz": 250,
        "slice_ends": "tick",
        "sched_base_slice_ns": 2_100_000,
        "timer_slack_ns": 50_000,
    }


def test_per_cpu_entries_repeat_beyond_the_profiles_cpus(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD))
    assert profile.tick_for(3) == profile.tick_for(1)
    assert profile.noise_for(2) == profile.noise_for(0)
    assert profile.machine_settings()["sched_cfs_bandwidth_slice_us"] == 5000


def test_a_scenario_names_its_profile_relative_to_itself(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    scenario = tmp_path / "my.yaml"
    assert resolve_profile("host.yaml", scenario) == load_profile(tmp_path / "host.yaml")
    assert resolve_profile(tmp_path / "host.yaml") == load_profile(tmp_path / "host.yaml")
    assert resolve_profile("default", scenario) is default_profile()


def test_the_default_profile_is_this_hosts() -> None:
    profile = default_profile()
    assert DEFAULT_PROFILE.is_file()
    assert (profile.cpus, profile.hz, profile.slice_ends) == (2, 250, "tick")
    assert profile.base_slice_ns == 1_400_000 and profile.timer_slack_ns == 50_000
    assert profile.sched_cfs_bandwidth_slice_us == 5000
    assert profile.tick is not None and len(profile.tick.cpus) == 2
    assert profile.noise is not None and len(profile.noise.cpus) == 2
    assert profile.kernel.startswith("6.18")


# ---- bad files --------------------------------------------------------------------------------
def test_a_misspelt_key_names_its_line_and_the_key_meant(tmp_path: Path) -> None:
    bad = GOOD.replace("page_fault_ns_per_page:", "page_fault_ns_per_pag:")
    assert errors(tmp_path, bad) == [
        "host.yaml:10:1: page_fault_ns_per_pag: expected a known key (did you mean "
        "'page_fault_ns_per_page'?), found unknown key 'page_fault_ns_per_pag'"
    ]


def test_every_bad_value_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = GOOD.replace("hz: 250", "hz: 251").replace("p95: 30us", "p95: -50us")
    assert errors(tmp_path, bad) == [
        "host.yaml:6:5: hz: expected 100, 250, 300 or 1000, found 251",
        "host.yaml:18:51: tick.cpus[1].jitter.quantiles: expected values that grow with the "
        "quantile, found p95 (-50000 ns) below p50 (1000 ns)",
    ]


def test_cross_checks_point_at_their_fields(tmp_path: Path) -> None:
    bad = GOOD.replace("offset: 0,", "offset: 3us,").replace("phase: 120us", "phase: 4ms")
    assert errors(tmp_path, bad) == [
        "host.yaml:15:10: tick.phase: expected a phase below one tick (4000000 ns at hz 250), "
        "found 4000000",
        "host.yaml:17:24: tick.cpus[0].offset: expected 0 (CPU 0 is the reference), found 3000",
    ]
    rt = GOOD.replace("sched_rt_runtime_us: 950000", "sched_rt_runtime_us: 1000001")
    assert errors(tmp_path, rt) == [
        "host.yaml:12:22: sched_rt_runtime_us: expected at most sched_rt_period_us (1000000 µs) "
        "or -1, found 1000001"
    ]


def test_bad_distributions_and_cpu_order(tmp_path: Path) -> None:
    bad = GOOD.replace("{lognormal: {mu: 9, sigma: 1}}", "{normal: {mu: 9}}").replace(
        "p100: 1ms", "q100: 1ms"
    )
    assert errors(tmp_path, bad) == [
        "host.yaml:22:45: noise.cpus[0].run_length: expected {quantiles: {p5: …, p95: …}} or "
        "{lognormal: {mu: …, sigma: …}}, found a mapping {'normal': {'mu': 9}}",
        "host.yaml:23:55: noise.cpus[1].run_length.quantiles: expected quantile keys p0 … p100 "
        "(p5, p50, p99.9), found 'q100'",
    ]
    assert errors(tmp_path, GOOD.replace("p0: 2us", "p0: -2us")) == [
        "host.yaml:23:43: noise.cpus[1].run_length: expected run lengths ≥ 0, found one of -2000 ns"
    ]
    assert errors(tmp_path, GOOD.replace("- {cpu: 1, offset", "- {cpu: 3, offset")) == [
        "host.yaml:18:13: tick.cpus[1].cpu: expected cpu 1 (entries list CPUs 0, 1, … in "
        "order), found 3"
    ]


def test_wrong_types_and_documents(tmp_path: Path) -> None:
    assert errors(tmp_path, GOOD.replace("kernel: 6.18.44-fc-v1147", "kernel: 6.18")) == [
        "host.yaml:2:9: kernel: expected a string, found 6.18"
    ]
    assert errors(tmp_path, GOOD.replace("date: '2026-11-28T03:40:00+00:00'", "date: soon")) == [
        "host.yaml:3:7: date: expected an ISO 8601 time such as "
        "2026-11-28T03:40:00+00:00, found 'soon'"
    ]
    assert errors(tmp_path, "") == [
        "host.yaml:1:1: document: expected a machine profile mapping (as cfssim calibrate "
        "writes it), found an empty document"
    ]
    assert errors(tmp_path, "- 1\n") == [
        "host.yaml:1:1: document: expected a machine profile mapping (as cfssim calibrate "
        "writes it), found a list [1]"
    ]
    assert errors(tmp_path, "base_slice_ns: 1ms\n") == [
        "host.yaml:1:1: cpus: expected a value, found no 'cpus' key"
    ]


def test_a_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:  # ProfileError is one: the CLI prints it
        load_profile(tmp_path / "none.yaml")
    assert caught.value.messages[0].startswith(
        f"{tmp_path / 'none.yaml'}:1:1: document: expected a readable UTF-8 YAML machine profile"
    )


# ---- distributions ----------------------------------------------------------------------------
def test_empirical_quantiles_interpolate_and_clamp() -> None:
    dist = Distribution(quantiles={"p0": 0, "p50": 10_000, "p100": 110_000})
    assert [dist.quantile(u) for u in (0, 0.25, 0.5, 0.75, 1.0)] == [
        0,
        5_000,
        10_000,
        60_000,
        110_000,
    ]
    narrow = Distribution.of_quantiles({0.05: -40_000, 0.95: 30_000})
    assert narrow.quantiles == {"p5": -40_000, "p95": 30_000}
    assert (narrow.quantile(0.0), narrow.quantile(0.5), narrow.quantile(1.0)) == (
        -40_000,
        -5_000,
        30_000,
    )


def test_lognormal_quantiles() -> None:
    dist = Distribution.model_validate({"lognormal": {"mu": math.log(10_000), "sigma": 0.5}})
    assert dist.quantile(0.5) == 10_000
    # the 84.13th percentile of a normal is one sigma above the mean
    assert dist.quantile(0.841344746) == round(10_000 * math.exp(0.5))


@given(st.integers(0, 2**32), st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=8))
def test_draws_are_deterministic_per_seed_and_within_the_points(
    seed: int, values: list[int]
) -> None:
    values.sort()
    fractions = [i / max(1, len(values) - 1) for i in range(len(values))]
    dist = Distribution.of_quantiles(dict(zip(fractions, values, strict=True)))
    first = [dist.sample(random.Random(seed)) for _ in range(3)]
    draws = [dist.sample(rng) for rng in [random.Random(seed)] for _ in range(50)]
    assert first == [draws[0]] * 3
    assert all(values[0] <= draw <= values[-1] for draw in draws)
    us = sorted(random.Random(seed).random() for _ in range(20))
    quantiles = [dist.quantile(u) for u in us]
    assert quantiles == sorted(quantiles)
