"""Container specs: docker run flags and Kubernetes resources → what Docker and the kubelet write.

Every figure follows from the cited sources' formulas: moby ``getCPUResources`` (quota =
NanoCPUs·100000/10⁹ µs), runc ``ConvertCPUSharesToCgroupV2Value`` (1 + (shares-2)·9999/262142),
kubelet ``MilliCPUToShares`` (milli·1024/1000, ≥ 2) and ``MilliCPUToQuota`` (milli·100000/1000,
≥ 1000), ``ComputePodQOS`` and the kubepods hierarchy.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cfssim import load_scenario, run_scenario
from cfssim.cli import main
from cfssim.container import (
    MAX_DECIMAL_DIGITS,
    MAX_DECIMAL_EXPONENT,
    ContainerSpecError,
    check_docker,
    container_files,
    docker_files,
    kubepods_cgroups,
    milli_cpu_to_quota,
    milli_cpu_to_shares,
    parse_container,
    parse_docker_flags,
    parse_pod,
    parse_quantity,
    qos_class,
    ram_in_bytes,
    shares_to_weight_runc,
)
from cfssim.scenario import ScenarioError

HEAD = "name: t\nduration: 1s\nseed: 1\nmachine: {cpus: 2}\ncgroups:\n"
HOG = (
    "processes:\n  - {name: p, cgroup: /app, threads: 2, repeat: forever, "
    "program: [{run: forever}]}\n"
)


def scenario_text(cgroup_line: str, extra: str = "") -> str:
    return f"{HEAD}  /app: {cgroup_line}\n{extra}{HOG}"


def docker(flags: str, interface: str = "v1", cpus: int | None = 2) -> dict[str, int | str]:
    resources = parse_docker_flags(flags)
    check_docker(resources, cpus)
    return docker_files(resources, interface)  # type: ignore[arg-type]


# ---- Docker --------------------------------------------------------------------------------------
def test_cpus_become_a_quota_over_docker_s_100ms_period() -> None:
    assert docker("--cpus=1.5") == {"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": 150000}
    assert docker("--cpus 0.25", "v2") == {"cpu.max": "25000 100000"}
    assert docker("--cpus=0.01") == {"cpu.cfs_period_us": 100000, "cpu.cfs_quota_us": 1000}


def test_cpu_shares_on_v1_and_runc_s_v2_weight() -> None:
    assert docker("--cpu-shares=512") == {"cpu.shares": 512}
    assert docker("-c 512", "v2") == {"cpu.weight": 20}  # 1 + (510·9999)//262142 = 1 + 19
    assert shares_to_weight_runc(1024) == 39  # 1 + 1022·9999//262142 = 1 + 38
    assert shares_to_weight_runc(2) == 1 and shares_to_weight_runc(262144) == 10000
    assert docker("--cpu-shares=500000") == {"cpu.shares": 262144}  # adaptContainerSettings


def test_period_quota_cpuset_memory_and_oom_flags() -> None:
    assert docker(
        "--cpu-period=50000 --cpu-quota=25000 --cpuset-cpus=0-1 --memory=100m "
        "--memory-swap=-1 --oom-kill-disable"
    ) == {
        "cpu.cfs_period_us": 50000,
        "cpu.cfs_quota_us": 25000,
        "cpuset.cpus": "0-1",
        "memory.limit_in_bytes": 100 * 2**20,
        "memory.oom_control": 1,
    }
    assert docker("--cpu-period 20000 -m 1g", "v2") == {"cpu.max": "max 20000", "memory.max": 2**30}


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100m", 100 << 20),
        ("1g", 1 << 30),
        ("512k", 512 << 10),
        ("4096b", 4096),
        ("1.5g", 3 << 29),
        ("64MiB", 64 << 20),
    ],
)
def test_docker_memory_units_are_binary(text: str, size: int) -> None:
    assert ram_in_bytes("--memory", text) == size


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "--cpus=0.0005",
            "expected a value within 0.01..2.00 (docker: 'Range of CPUs is from 0.01 "
            "to 2.00'), found 0.0005",
        ),
        ("--cpus=3", "found 3"),
        ("--cpus=1 --cpu-quota=50000", "Conflicting options: Nano CPUs and CPU Quota"),
        ("--cpu-period=500", "expected 1000..1000000 µs"),
        ("--cpu-quota=999", "CPU cfs quota can not be less than 1ms"),
        ("--memory=5m", "Minimum memory limit allowed is 6MB"),
        ("--memory=100m --memory-swap=50m", "Minimum memoryswap limit should be larger"),
        ("--memory-swap=100m", "You should always set the Memory limit"),
        ("--memory=100m --memory-reservation=200m", "expected at most --memory"),
        ("--cpuz=1", "(did you mean '--cpus'?), found '--cpuz=1'"),
        ("--cpus=1.0000000001", "value is too precise"),
        ("--memory=lots", "expected a size such as 100m"),
    ],
)
def test_what_docker_refuses(flags: str, expected: str) -> None:
    with pytest.raises(ContainerSpecError, match=None) as error:
        docker(flags)
    assert expected in str(error.value)


def test_oom_kill_disable_is_refused_on_v2() -> None:
    with pytest.raises(ContainerSpecError, match="v2 has no oom_kill_disable"):
        docker("--memory=64m --oom-kill-disable", "v2")


@given(st.integers(min_value=10_000_000, max_value=2_000_000_000))
def test_nano_cpus_quota_is_exact_integer_division(nano: int) -> None:
    text = f"{nano / 1e9:.9f}"
    files = docker(f"--cpus={text}")
    assert files["cpu.cfs_quota_us"] == round(float(text) * 1e9) * 100000 // 10**9


# ---- Kubernetes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("1", 1),
        ("1.5", 1.5),
        ("128Mi", 128 << 20),
        ("1G", 10**9),
        ("1e3", 1000),
        (2, 2),
        (0.25, 0.25),
        ("1k", 1000),
        ("1E", 10**18),
        ("1Ei", 2**60),
        ("2E3", 2000),
        ("1e-3", Fraction(1, 1000)),
        ("1.5Ei", 3 << 59),
    ],
)
def test_quantities(text: object, value: float) -> None:
    """``E`` and ``Ei`` are exa (10¹⁸, 2⁶⁰); only ``[eE][+-]?\\d+`` is a decimal exponent."""
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["1e999999", "1e41", "1e-41", "1" * 41, "1e0000000000000041", "9" * 5000 + "Mi"]
)
def test_huge_quantities_are_refused_before_being_built(text: str) -> None:
    with pytest.raises(
        ContainerSpecError,
        match=f"expected a quantity with at most "
        f"{MAX_DECIMAL_DIGITS} digits and an exponent within ±"
        f"{MAX_DECIMAL_EXPONENT}, found",
    ):
        parse_quantity(text)
    assert parse_quantity("1e40") == 10**40 and parse_quantity("1" * 40) == int("1" * 40)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "--cpus=1e99999999",
            "--cpus: expected a number of CPUs with at most 40 digits and an "
            "exponent within ±40, found '1e99999999'",
        ),
        ("--cpus=1/2", "--cpus: expected a number of CPUs such as 1.5, found '1/2'"),
        ("--cpus=1_0", "--cpus: expected a number of CPUs such as 1.5, found '1_0'"),
        (
            "--memory=1.5.5g",
            "--memory: expected a size such as 100m, 1g, 512k or 4096b (binary "
            "units, as docker run reads them), found '1.5.5g'",
        ),
        ("--memory=" + "9" * 5000 + "g", "--memory: expected a size with at most 40 digits"),
        ("--cpu-shares=" + "9" * 5000, "--cpu-shares: expected an integer of at most 40 digits"),
    ],
)
def test_hostile_docker_numbers_are_refused(flags: str, expected: str) -> None:
    with pytest.raises(ContainerSpecError) as error:
        parse_docker_flags(flags)
    assert str(error.value).startswith(expected)
    assert len(str(error.value)) < 300  # a long literal is shortened, not echoed


@given(st.text(alphabet="0123456789.eE+-_/ kKmMgGiIbB", max_size=30))
def test_docker_number_parsers_raise_only_container_spec_errors(text: str) -> None:
    for flag, field in (
        ("--cpus", "nano_cpus"),
        ("--memory", "memory"),
        ("--cpu-shares", "cpu_shares"),
    ):
        try:
            resources = parse_docker_flags(f"{flag}={text}")
        except ContainerSpecError:
            continue
        assert type(getattr(resources, field)) is int


@given(st.text(alphabet="0123456789.eE+-KMGTPiunmk", max_size=30))
def test_quantity_parser_raises_only_container_spec_errors(text: str) -> None:
    with contextlib.suppress(ContainerSpecError):
        assert parse_quantity(text) >= 0


def test_kubelet_shares_and_quota_formulas() -> None:
    assert milli_cpu_to_shares(500) == 512  # 500·1024/1000
    assert milli_cpu_to_shares(0) == 2 and milli_cpu_to_shares(1) == 2  # MinShares
    assert milli_cpu_to_shares(100) == 102
    assert milli_cpu_to_quota(250) == 25000  # 250·100000/1000
    assert milli_cpu_to_quota(5) == 1000  # MinQuotaPeriod
    assert milli_cpu_to_quota(0) == 0


def test_container_files_v1_and_v2() -> None:
    spec = {
        "requests": {"cpu": "500m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    assert container_files(parse_container("app", spec), "v1") == {
        "cpu.shares": 512,
        "cpu.cfs_period_us": 100000,
        "cpu.cfs_quota_us": 100000,
        "memory.limit_in_bytes": 256 << 20,
    }
    assert container_files(parse_container("app", spec), "v2") == {
        "cpu.weight": 20,
        "cpu.max": "100000 100000",
        "memory.max": 256 << 20,
    }
    # a request not given defaults to the limit (SetDefaults_Pod)
    assert container_files(parse_container("c", {"limits": {"cpu": "250m"}}), "v1") == {
        "cpu.shares": 256,
        "cpu.cfs_period_us": 100000,
        "cpu.cfs_quota_us": 25000,
    }


def test_qos_classes() -> None:
    guaranteed = parse_container("a", {"limits": {"cpu": 1, "memory": "1Gi"}})
    burstable = parse_container("b", {"requests": {"cpu": "100m"}})
    best_effort = parse_container("c", {})
    assert qos_class([guaranteed]) == "Guaranteed"
    assert qos_class([guaranteed, burstable]) == "Burstable"
    assert qos_class([guaranteed, best_effort]) == "Burstable"
    assert qos_class([best_effort]) == "BestEffort"


def test_request_above_limit_is_refused_as_kubernetes_validation_does() -> None:
    with pytest.raises(ContainerSpecError) as error:
        parse_container("a", {"requests": {"cpu": 2}, "limits": {"cpu": "1"}})
    assert error.value.loc == ("requests", "cpu")
    assert "less than or equal to the cpu limit (1)" in str(error.value)


def test_kubepods_hierarchy() -> None:
    pods = [
        parse_pod(
            {"pod": "g", "containers": {"app": {"limits": {"cpu": "250m", "memory": "64Mi"}}}}
        ),
        parse_pod(
            {
                "pod": "b",
                "containers": {
                    "x": {"requests": {"cpu": "500m"}},
                    "y": {"requests": {"cpu": "100m"}, "limits": {"cpu": "200m"}},
                },
            }
        ),
        parse_pod({"pod": "e", "containers": {"z": {}}}),
    ]
    tree = kubepods_cgroups("/kubepods", pods, 2, "v1")
    assert tree == {
        "/kubepods": {"cpu.shares": 2048},
        "/kubepods/burstable": {"cpu.shares": 614},  # 600m summed over burstable pods
        "/kubepods/besteffort": {"cpu.shares": 2},
        "/kubepods/podg": {
            "cpu.shares": 256,
            "cpu.cfs_period_us": 100000,
            "cpu.cfs_quota_us": 25000,
            "memory.limit_in_bytes": 64 << 20,
        },
        "/kubepods/podg/app": {
            "cpu.shares": 256,
            "cpu.cfs_period_us": 100000,
            "cpu.cfs_quota_us": 25000,
            "memory.limit_in_bytes": 64 << 20,
        },
        # not every container limits cpu: no pod quota (ResourceConfigForPod)
        "/kubepods/burstable/podb": {"cpu.shares": 614},
        "/kubepods/burstable/podb/x": {
            "cpu.shares": 512,
            "cpu.cfs_period_us": 100000,
            "cpu.cfs_quota_us": -1,
        },
        "/kubepods/burstable/podb/y": {
            "cpu.shares": 102,
            "cpu.cfs_period_us": 100000,
            "cpu.cfs_quota_us": 20000,
        },
        "/kubepods/besteffort/pode": {"cpu.shares": 2},
        "/kubepods/besteffort/pode/z": {
            "cpu.shares": 2,
            "cpu.cfs_period_us": 100000,
            "cpu.cfs_quota_us": -1,
        },
    }


# ---- scenario keys -------------------------------------------------------------------------------
def test_docker_key_simulates_exactly_as_its_explicit_files() -> None:
    via_docker = load_scenario(scenario_text('{docker: "--cpus=1 --cpu-shares=512"}'))
    explicit = load_scenario(
        scenario_text("{cpu.shares: 512, cpu.cfs_period_us: 100000, cpu.cfs_quota_us: 100000}")
    )
    assert via_docker.cgroups == explicit.cgroups
    a, b = run_scenario(via_docker), run_scenario(explicit)
    assert a.cgroups == b.cgroups and a.tasks == b.tasks
    # period timers expire at 100, 200, … 900 ms inside the 1 s run: 9 periods, all throttled
    assert a.cgroups["/app"]["cpu.stat"]["nr_periods"] == 9
    assert sum(t["cpu_time_ns"] for t in a.tasks.values()) == pytest.approx(1e9, rel=0.02)


def test_kubernetes_keys_load_into_the_converted_configs() -> None:
    scenario = load_scenario(
        scenario_text("{kubernetes: {requests: {cpu: 100m}, limits: {cpu: 250m}}}")
    )
    assert (scenario.cgroups["/app"].shares, scenario.cgroups["/app"].quota_ns) == (102, 25_000_000)
    text = (
        f"{HEAD}  /kubepods:\n    kubernetes: {{pod: web, containers: {{app: {{limits: "
        f"{{cpu: 1, memory: 64Mi}}}}}}}}\nprocesses:\n  - {{name: p, cgroup: "
        f"/kubepods/podweb/app, program: [{{run: forever}}]}}\n"
    )
    pod = load_scenario(text)
    assert pod.cgroups["/kubepods/podweb"].quota_ns == 100_000_000  # Guaranteed: no QoS tier
    assert pod.cgroups["/kubepods/podweb/app"].memory_limit == 64 << 20
    assert pod.cgroups["/kubepods/besteffort"].shares == 2


def test_v2_scenario_gets_runc_s_weight() -> None:
    scenario = load_scenario(
        scenario_text('{docker: "--cpu-shares=512"}', "  /other: {cpu.max: max 100000}\n")
    )
    # cpu.weight 20 written; the kernel reads it back as 20·1024/100 shares
    assert scenario.interface == "v2" and scenario.cgroups["/app"].shares == 205


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as error:
        load_scenario(text)
    return error.value.messages


def test_errors_point_at_the_yaml() -> None:
    assert errors_of(scenario_text('{docker: "--cpus=0.0005"}')) == [
        "<string>:6:18: cgroups./app.docker: --cpus: expected a value within 0.01..2.00 "
        "(docker: 'Range of CPUs is from 0.01 to 2.00'), found 0.0005"
    ]
    assert errors_of(scenario_text('{docker: "--cpus=1", cpu.cfs_quota_us: 50000}')) == [
        "<string>:6:48: cgroups./app.cpu.cfs_quota_us: expected the CPU bandwidth of /app from "
        "docker (cpu.cfs_period_us: 100000, cpu.cfs_quota_us: 100000) or from "
        "cpu.cfs_quota_us, not both, found both"
    ]
    [message] = errors_of(scenario_text("{kubernetes: {limits: {cpu: 1x}}}"))
    assert message.startswith(
        "<string>:6:37: cgroups./app.kubernetes.limits.cpu: expected a quantity"
    )
    [message] = errors_of(scenario_text('{docker: "--cpus=1", kubernetes: {}}'))
    assert "expected docker or kubernetes, not both" in message


def test_hostile_numbers_point_at_the_container_key() -> None:
    """Refused at the cgroup's docker/kubernetes key (never at 1:1 "document")."""
    assert errors_of(scenario_text('{docker: "--memory=1.5.5g"}')) == [
        "<string>:6:18: cgroups./app.docker: --memory: expected a size such as 100m, 1g, 512k "
        "or 4096b (binary units, as docker run reads them), found '1.5.5g'"
    ]
    assert errors_of(scenario_text('{docker: "--cpus=1e99999999"}')) == [
        "<string>:6:18: cgroups./app.docker: --cpus: expected a number of CPUs with at most 40 "
        "digits and an exponent within ±40, found '1e99999999'"
    ]
    assert errors_of(scenario_text('{kubernetes: {limits: {cpu: "1e999999"}}}')) == [
        "<string>:6:37: cgroups./app.kubernetes.limits.cpu: expected a quantity with at most "
        "40 digits and an exponent within ±40, found '1e999999'"
    ]


def test_exa_quantities_reach_the_memory_limit() -> None:
    """``1Ei`` = 2⁶⁰ bytes is a valid limit (below int64); ``1E`` = 10¹⁸ too."""
    for text, size in (("1Ei", 2**60), ("1E", 10**18)):
        scenario = load_scenario(scenario_text(f"{{kubernetes: {{limits: {{memory: {text}}}}}}}"))
        assert scenario.cgroups["/app"].memory_limit == size


# ---- cfssim convert ------------------------------------------------------------------------------
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: app
          resources:
            requests: {cpu: 500m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
        - name: sidecar
          resources: {limits: {cpu: 250m, memory: 64Mi}}
"""
COMPOSE = """\
services:
  api: {image: api, cpus: 1.5, cpu_shares: 512, mem_limit: 100m}
  worker:
    image: worker
    deploy: {resources: {limits: {cpus: "0.5", memory: 50M}}}
"""


def convert(tmp_path: Path, name: str, text: str) -> tuple[int, str, str]:
    source = tmp_path / name
    source.write_text(text)
    result = CliRunner().invoke(main, ["convert", str(source), "-o", str(tmp_path / "out.yaml")])
    out = (tmp_path / "out.yaml").read_text() if result.exit_code == 0 else ""
    return result.exit_code, out, result.stderr


def test_convert_deployment(tmp_path: Path) -> None:
    code, out, _ = convert(tmp_path, "web.yaml", DEPLOYMENT)
    assert code == 0 and "# pod web: QoS Burstable, cgroup /kubepods/burstable/podweb" in out
    assert "placeholder hog per container" in out
    scenario = load_scenario(tmp_path / "out.yaml")
    app, sidecar = (scenario.cgroups[f"/kubepods/burstable/podweb/{c}"] for c in ("app", "sidecar"))
    assert (app.shares, app.quota_ns, app.memory_limit) == (512, 100_000_000, 256 << 20)
    assert (sidecar.shares, sidecar.quota_ns) == (256, 25_000_000)
    pod = scenario.cgroups["/kubepods/burstable/podweb"]  # 750m requested, 1250m limited
    assert (pod.shares, pod.quota_ns, pod.memory_limit) == (768, 125_000_000, 320 << 20)
    assert [p.cgroup for p in scenario.processes] == [
        "/kubepods/burstable/podweb/app",
        "/kubepods/burstable/podweb/sidecar",
    ]


def test_convert_compose(tmp_path: Path) -> None:
    code, _, _ = convert(tmp_path, "docker-compose.yaml", COMPOSE)
    assert code == 0
    scenario = load_scenario(tmp_path / "out.yaml")
    api, worker = scenario.cgroups["/docker/api"], scenario.cgroups["/docker/worker"]
    assert (api.shares, api.quota_ns, api.memory_limit) == (512, 150_000_000, 100 << 20)
    assert (worker.quota_ns, worker.memory_limit) == (50_000_000, 50 << 20)


def test_convert_errors_name_the_manifest_line(tmp_path: Path) -> None:
    code, _, err = convert(tmp_path, "web.yaml", DEPLOYMENT.replace("cpu: 500m", "cpu: 2"))
    assert code == 2
    assert (
        f"{tmp_path / 'web.yaml'}:11:29: spec.template.spec.containers[0].resources."
        f"requests.cpu: expected a request less than or equal to the cpu limit (1)"
    ) in err
    code, _, err = convert(tmp_path, "c.yaml", COMPOSE.replace("cpus: 1.5", "cpus: 0.0005"))
    assert code == 2 and f"{tmp_path / 'c.yaml'}:2:3: services.api: --cpus: expected" in err
    code, _, err = convert(
        tmp_path, "c.yaml", COMPOSE.replace("mem_limit: 100m", "mem_limit: much")
    )
    assert code == 2 and f"{tmp_path / 'c.yaml'}:2:60: services.api.mem_limit:" in err


def test_convert_multi_document_lines_are_the_file_s(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n"
        "    - name: c\n      resources: {limits: {cpu: -1}}\n"
    )
    code, _, err = convert(tmp_path, "pods.yaml", text)
    assert code == 2 and ":12:" in err and "containers[0].resources.limits.cpu" in err
