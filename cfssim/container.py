"""Container resource specs → cgroup files: ``docker run`` flags and Kubernetes resources.

A scenario's cgroup may say ``docker: "--cpus=1.5 --memory=100m"`` or ``kubernetes: {requests:
{cpu: 500m}, limits: {cpu: "1", memory: 256Mi}}`` (one container), and a cgroup that roots pods
(``/kubepods``) may say ``kubernetes: {pod: web, containers: {app: {…}, sidecar: {…}}}`` (or a
list of such pods). `expand_cgroups` turns these keys into exactly the kernel files Docker and the
kubelet would write — v1 (``cpu.shares``, ``cpu.cfs_period_us``/``cpu.cfs_quota_us``,
``memory.limit_in_bytes``…) or v2 (``cpu.weight`` via runc's conversion, ``cpu.max``,
``memory.max``) by the scenario's interface — so the simulator and the real twin see only files.

Sources mirrored (names cited where the code follows them):

- moby/moby ``daemon/oci_linux.go`` ``getCPUResources`` (NanoCPUs → quota over a 100000 µs
  period) and ``daemon/daemon_unix.go`` ``verifyPlatformContainerResources`` /
  ``adaptContainerSettings`` (``linuxMinMemory`` 6 MiB, cpu-shares clamped to 2..262144, the
  period 1000..1000000 µs, quota ≥ 1000 µs, "Range of CPUs is from 0.01 to N", memory-swap ≥
  memory, NanoCPUs exclusive with period/quota); docker/go-units ``RAMInBytes`` (``100m`` = 100
  MiB); docker/cli ``opts.NanoCPUs`` (``--cpus`` in units of 10⁻⁹ CPU).
- opencontainers/runc ``libcontainer/cgroups/utils.go`` ``ConvertCPUSharesToCgroupV2Value``
  (``1 + ((shares-2)*9999)/262142``; opencontainers/cgroups has since moved to a log-quadratic
  mapping, which Kubernetes' e2e tests accept alongside this one) and ``fs2/cpu.go`` ``setCpu``
  (``cpu.max`` = ``"$QUOTA $PERIOD"``, ``max`` when the quota is unset or negative).
- kubernetes/kubernetes ``pkg/kubelet/cm/helpers_linux.go`` (``MilliCPUToShares``: MinShares 2,
  SharesPerCPU 1024, MilliCPUToCPU 1000, MaxShares 262144; ``MilliCPUToQuota``: QuotaPeriod
  100000 µs, MinQuotaPeriod 1000 µs; ``ResourceConfigForPod``), ``pkg/kubelet/cm/
  qos_container_manager_linux.go`` ``setCPUCgroupConfig`` (besteffort = MinShares, burstable =
  the burstable pods' summed requests), ``pkg/kubelet/kuberuntime/kuberuntime_container_linux.go``
  ``calculateLinuxResources`` (a container's shares, quota and memory limit), ``pkg/apis/core/v1/
  helper/qos`` ``ComputePodQOS``, ``pkg/apis/core/v1/defaults.go`` (requests default to limits),
  ``pkg/apis/core/validation`` ``ValidateResourceRequirements`` (request ≤ limit) and
  ``staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go`` (``500m``, ``128Mi``, ``1e3``;
  ``MilliValue``/``Value`` round up).

Not modelled, and so refused or said: cfssim's memcg has no swap and no soft limit (as on a host
without swap and without global memory pressure), so ``--memory-swap`` and
``--memory-reservation`` are checked as Docker checks them and write no file; cgroup v2 has no
``oom_kill_disable`` (Docker discards ``--oom-kill-disable`` there), so it is refused on v2.
A number (``--cpus``, a size, a quantity) of more than `MAX_DECIMAL_DIGITS` digits or an exponent
beyond ±`MAX_DECIMAL_EXPONENT` is refused before it is built: no cgroup file takes such a value.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from ._errors import describe, did_you_mean, quoted
from .cgroup import files as cgfiles

Interface = Literal["v1", "v2"]
Loc = tuple[str | int, ...]
Files = dict[str, int | str]

# ---- constants of the cited sources --------------------------------------------------------------
LINUX_MIN_MEMORY = 6 * 1024 * 1024  # moby daemon_unix.go linuxMinMemory ("6MB")
LINUX_MIN_CPU_SHARES = 2  # moby linuxMinCPUShares
LINUX_MAX_CPU_SHARES = 262144  # moby linuxMaxCPUShares
DOCKER_CPU_PERIOD_US = 100_000  # getCPUResources: 100 * time.Millisecond / time.Microsecond
NANO_CPUS = 10**9
MIN_SHARES = 2  # kubelet cm.MinShares
MAX_SHARES = 262144  # kubelet cm.MaxShares
SHARES_PER_CPU = 1024  # kubelet cm.SharesPerCPU
MILLI_CPU_TO_CPU = 1000  # kubelet cm.MilliCPUToCPU
QUOTA_PERIOD_US = 100_000  # kubelet cm.QuotaPeriod
MIN_QUOTA_PERIOD_US = 1000  # kubelet cm.MinQuotaPeriod
QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")
DOCKER_KEY, KUBERNETES_KEY = "docker", "kubernetes"
CONTAINER_KEYS = (DOCKER_KEY, KUBERNETES_KEY)

#: what each kernel file sets, so that an explicit file next to a container key that sets the
#: same thing is refused (``docker: --cpus=1`` with ``cpu.cfs_quota_us``)
_ASPECT = {
    "cpu.shares": "the CPU weight",
    "cpu.weight": "the CPU weight",
    "cpu.weight.nice": "the CPU weight",
    "cpu.cfs_period_us": "the CPU bandwidth",
    "cpu.cfs_quota_us": "the CPU bandwidth",
    "cpu.max": "the CPU bandwidth",
    "cpuset.cpus": "the cpuset",
    "memory.limit_in_bytes": "the memory limit",
    "memory.max": "the memory limit",
    "memory.oom_control": "oom_kill_disable",
}


class ContainerSpecError(ValueError):
    """A container spec Docker or Kubernetes would refuse; `loc` is relative to the spec."""

    def __init__(self, message: str, loc: Loc = ()) -> None:
        super().__init__(message)
        self.loc = loc


# ---- runc's shares → weight ----------------------------------------------------------------------
def shares_to_weight_runc(shares: int) -> int:
    """runc ``ConvertCPUSharesToCgroupV2Value``: ``1 + ((shares-2)*9999)/262142`` (0 = unset)."""
    return 0 if shares == 0 else 1 + ((shares - 2) * 9999) // 262142


def _cpu_files(
    interface: Interface, shares: int | None, quota_us: int | None, period_us: int | None
) -> Files:
    """A container's CPU settings as runc writes them: v1 files, or v2 (``fs2`` ``setCpu``).

    `quota_us` None/negative = unlimited; `period_us` None = left at the kernel's default.
    """
    files: Files = {}
    if interface == "v1":
        if shares is not None:
            files["cpu.shares"] = shares
        if period_us is not None:
            files["cpu.cfs_period_us"] = period_us
        if quota_us is not None:
            files["cpu.cfs_quota_us"] = quota_us if quota_us > 0 else -1
        return files
    if shares is not None:
        files["cpu.weight"] = shares_to_weight_runc(shares)
    if quota_us is not None or period_us is not None:
        text = str(quota_us) if quota_us is not None and quota_us > 0 else "max"
        files["cpu.max"] = text if period_us is None else f"{text} {period_us}"
    return files


def _memory_files(interface: Interface, limit: int | None) -> Files:
    if limit is None:
        return {}
    return {"memory.limit_in_bytes" if interface == "v1" else "memory.max": limit}


# ---- decimal literals ----------------------------------------------------------------------------
#: a decimal such as ``1.5``, ``.5`` or ``1e3`` (the number part of a quantity and of ``--cpus``)
_DECIMAL = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
#: bounds on a decimal literal, far beyond any value a cgroup file takes (int64: 19 digits), so
#: that a hostile ``1e99999999`` is refused before an exact number is built from it
MAX_DECIMAL_DIGITS = 40
MAX_DECIMAL_EXPONENT = 40


def exact_decimal(text: str, what: str, flag: str = "") -> Fraction:
    """`text` (matching `_DECIMAL`) as an exact number; `ContainerSpecError` naming `flag` and
    `what` when it has more than `MAX_DECIMAL_DIGITS` digits or an exponent beyond
    ±`MAX_DECIMAL_EXPONENT`."""
    mantissa, _, exponent = text.lower().partition("e")
    digits = sum(char.isdigit() for char in mantissa)
    power = exponent.lstrip("+-").lstrip("0")
    if (
        digits > MAX_DECIMAL_DIGITS
        or len(power) > 3
        or (power and int(power) > MAX_DECIMAL_EXPONENT)
    ):
        raise ContainerSpecError(
            f"{flag}{': ' if flag else ''}expected {what} with at most "
            f"{MAX_DECIMAL_DIGITS} digits and an exponent within "
            f"±{MAX_DECIMAL_EXPONENT}, found {quoted(text)}"
        )
    number = Fraction(mantissa)
    return number * Fraction(10) ** int(exponent) if exponent else number


# ---- Docker --------------------------------------------------------------------------------------
_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(flag: str, text: str) -> int:
    """docker/go-units ``RAMInBytes``: ``100m`` = 100 MiB, ``1g``, ``512k``, ``4096b``, ``1.5g``."""
    match = _RAM.match(text)
    if match is None:
        raise ContainerSpecError(
            f"{flag}: expected a size such as 100m, 1g, 512k or 4096b "
            f"(binary units, as docker run reads them), found {quoted(text)}"
        )
    number = exact_decimal(match.group(1), "a size", flag)
    return int(number * _BINARY.get((match.group(2) or "").lower(), 1))


def _docker_int(flag: str, text: str) -> int:
    if not re.fullmatch(r"[-+]?\d+", text):
        raise ContainerSpecError(f"{flag}: expected an integer, found {quoted(text)}")
    if len(text.lstrip("+-")) > MAX_DECIMAL_DIGITS:
        raise ContainerSpecError(
            f"{flag}: expected an integer of at most {MAX_DECIMAL_DIGITS} "
            f"digits, found {quoted(text)}"
        )
    return int(text)


def _nano_cpus(flag: str, text: str) -> int:
    """docker/cli ``opts.NanoCPUs.Set``: a decimal number of CPUs, exact to 10⁻⁹."""
    if not re.fullmatch(_DECIMAL, text):
        raise ContainerSpecError(
            f"{flag}: expected a number of CPUs such as 1.5, found {quoted(text)}"
        )
    cpus = exact_decimal(text, "a number of CPUs", flag)
    nano = cpus * NANO_CPUS
    if nano.denominator != 1:
        raise ContainerSpecError(
            f"{flag}: expected at most 9 decimals (docker: 'value is too precise'), found {text!r}"
        )
    return int(nano)


def _bool_flag(flag: str, text: str | None) -> bool:
    if text is None or text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ContainerSpecError(f"{flag}: expected true or false, found {text!r}")


@dataclass(frozen=True)
class DockerResources:
    """The resources of one ``docker run`` (moby's ``container.Resources``), 0 = unset."""

    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    oom_kill_disable: bool = False


#: flag → (DockerResources field, parser); short aliases as docker run has them
_DOCKER_FLAGS: dict[str, tuple[str, Any]] = {
    "--cpus": ("nano_cpus", _nano_cpus),
    "--cpu-shares": ("cpu_shares", _docker_int),
    "--cpu-period": ("cpu_period", _docker_int),
    "--cpu-quota": ("cpu_quota", _docker_int),
    "--cpuset-cpus": ("cpuset_cpus", lambda flag, text: text),
    "--memory": ("memory", ram_in_bytes),
    "--memory-swap": (
        "memory_swap",
        lambda flag, text: -1 if text == "-1" else ram_in_bytes(flag, text),
    ),
    "--memory-reservation": ("memory_reservation", ram_in_bytes),
    "--oom-kill-disable": ("oom_kill_disable", _bool_flag),
}
_SHORT_FLAGS = {"-c": "--cpu-shares", "-m": "--memory"}


def parse_docker_flags(text: str) -> DockerResources:
    """``docker run`` resource flags (``--cpus=1.5``, ``--cpus 1.5``, ``-m 100m``, …)."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise ContainerSpecError(
            f"expected docker run flags such as '--cpus=1.5 "
            f"--memory=100m', found {text!r} ({error})"
        ) from None
    values: dict[str, Any] = {}
    index = 0
    while index < len(words):
        word = words[index]
        name, has_value, value = word.partition("=")
        name = _SHORT_FLAGS.get(name, name)
        if name not in _DOCKER_FLAGS:
            raise ContainerSpecError(
                f"expected a docker run resource flag ({', '.join(_DOCKER_FLAGS)})"
                f"{did_you_mean(name, _DOCKER_FLAGS)}, found {word!r}"
            )
        field_name, parse = _DOCKER_FLAGS[name]
        if field_name == "oom_kill_disable":  # a boolean flag: a value only after '='
            values[field_name] = parse(name, value if has_value else None)
            index += 1
            continue
        if not has_value:
            if index + 1 >= len(words):
                raise ContainerSpecError(f"{name}: expected a value, found the end of the flags")
            index += 1
            value = words[index]
        values[field_name] = parse(name, value)
        index += 1
    return DockerResources(**values)


def check_docker(resources: DockerResources, cpus: int | None) -> None:
    """moby ``verifyPlatformContainerResources``: what ``docker run`` refuses (its messages)."""
    r = resources
    if r.nano_cpus and r.cpu_period:
        raise ContainerSpecError(
            "--cpus: expected --cpus or --cpu-period, not both (docker: "
            "'Conflicting options: Nano CPUs and CPU Period cannot both "
            "be set'), found both"
        )
    if r.nano_cpus and r.cpu_quota:
        raise ContainerSpecError(
            "--cpus: expected --cpus or --cpu-quota, not both (docker: "
            "'Conflicting options: Nano CPUs and CPU Quota cannot both "
            "be set'), found both"
        )
    # the kernel's least quota (1000 µs) over getCPUResources' 100000 µs period: 0.01 CPU
    least = MIN_QUOTA_PERIOD_US * NANO_CPUS // DOCKER_CPU_PERIOD_US
    if (
        r.nano_cpus < 0
        or (r.nano_cpus and r.nano_cpus < least)
        or (cpus is not None and r.nano_cpus > cpus * NANO_CPUS)
    ):
        top = f"{cpus}.00" if cpus is not None else "N"
        raise ContainerSpecError(
            f"--cpus: expected a value within 0.01..{top} (docker: 'Range "
            f"of CPUs is from 0.01 to {top}'), found "
            f"{_cpus_text(r.nano_cpus)}"
        )
    if r.cpu_period and not 1000 <= r.cpu_period <= 1_000_000:
        raise ContainerSpecError(
            f"--cpu-period: expected 1000..1000000 µs (docker: 'CPU cfs "
            f"period can not be less than 1ms (i.e. 1000) or larger than "
            f"1 second'), found {r.cpu_period}"
        )
    if 0 < r.cpu_quota < 1000:
        raise ContainerSpecError(
            f"--cpu-quota: expected at least 1000 µs or -1 (docker: 'CPU "
            f"cfs quota can not be less than 1ms'), found {r.cpu_quota}"
        )
    if r.memory and r.memory < LINUX_MIN_MEMORY:
        raise ContainerSpecError(
            f"--memory: expected at least 6m (docker: 'Minimum memory "
            f"limit allowed is 6MB'), found {r.memory} bytes"
        )
    if r.memory_swap and r.memory_swap < -1:
        raise ContainerSpecError(
            f"--memory-swap: expected -1 (unlimited) or a size, found {r.memory_swap}"
        )
    if r.memory > 0 and r.memory_swap > 0 and r.memory_swap < r.memory:
        raise ContainerSpecError(
            f"--memory-swap: expected at least --memory ({r.memory} bytes; "
            f"docker: 'Minimum memoryswap limit should be larger than "
            f"memory limit'), found {r.memory_swap} bytes"
        )
    if r.memory == 0 and r.memory_swap > 0:
        raise ContainerSpecError(
            "--memory-swap: expected --memory with it (docker: 'You should "
            "always set the Memory limit when using Memoryswap limit'), "
            "found no --memory"
        )
    if r.memory_reservation and r.memory_reservation < LINUX_MIN_MEMORY:
        raise ContainerSpecError(
            f"--memory-reservation: expected at least 6m (docker: "
            f"'Minimum memory reservation allowed is 6MB'), found "
            f"{r.memory_reservation} bytes"
        )
    if r.memory and r.memory_reservation > r.memory:
        raise ContainerSpecError(
            f"--memory-reservation: expected at most --memory ({r.memory} "
            f"bytes), found {r.memory_reservation} bytes"
        )


def _cpus_text(nano: int) -> str:
    return format(Fraction(nano, NANO_CPUS).limit_denominator(NANO_CPUS).__float__(), "g")


def docker_files(resources: DockerResources, interface: Interface) -> Files:
    """The cgroup files ``docker run`` writes for `resources` (call `check_docker` first).

    moby ``getCPUResources``: ``--cpus`` → period 100000 µs and quota NanoCPUs·period/10⁹;
    ``--cpu-period``/``--cpu-quota`` as given; shares clamped to 2..262144
    (``adaptContainerSettings``); runc writes v2 ``cpu.weight`` by
    `shares_to_weight_runc`. ``--memory`` → ``memory.limit_in_bytes``/``memory.max``.
    """
    r = resources
    shares = None
    if r.cpu_shares:
        shares = min(max(r.cpu_shares, LINUX_MIN_CPU_SHARES), LINUX_MAX_CPU_SHARES)
    period = quota = None
    if r.nano_cpus:
        period = DOCKER_CPU_PERIOD_US
        quota = r.nano_cpus * period // NANO_CPUS
    if r.cpu_period:
        period = r.cpu_period
    if r.cpu_quota:
        quota = r.cpu_quota
    files = _cpu_files(interface, shares, quota, period)
    if r.cpuset_cpus:
        files["cpuset.cpus"] = r.cpuset_cpus
    files.update(_memory_files(interface, r.memory or None))
    if r.oom_kill_disable:
        if interface == "v2":
            raise ContainerSpecError(
                "--oom-kill-disable: expected a cgroup v1 scenario (v2 has "
                "no oom_kill_disable; docker discards the flag there), "
                "found a v2 scenario"
            )
        files["memory.oom_control"] = 1
    return files


# ---- Kubernetes quantities -----------------------------------------------------------------------
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?$")
_SUFFIX = {
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def parse_quantity(value: Any) -> Fraction:
    """apimachinery ``resource.ParseQuantity``: ``500m``, ``1``, ``1.5``, ``128Mi``, ``1G``,
    ``1e3`` (YAML numbers too) → an exact non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ContainerSpecError(
            f"expected a quantity such as 500m, 1, 1.5, 128Mi or 1G, found {describe(value)}"
        )
    text = repr(value) if isinstance(value, float) else str(value).strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise ContainerSpecError(
            f"expected a quantity such as 500m, 1, 1.5, 128Mi or 1G, found {describe(value)}"
        )
    number, suffix = match.group(1), match.group(2) or ""
    if suffix in _SUFFIX:  # E and Ei are exa, not an exponent
        quantity = exact_decimal(number, "a quantity") * _SUFFIX[suffix]
    else:  # none, or a decimal exponent such as e3
        quantity = exact_decimal(number + suffix, "a quantity")
    if quantity < 0:
        raise ContainerSpecError(f"expected a non-negative quantity, found {describe(value)}")
    return quantity


def milli_value(quantity: Fraction) -> int:
    """``Quantity.MilliValue``: thousandths, rounded up."""
    return math.ceil(quantity * 1000)


def whole_value(quantity: Fraction) -> int:
    """``Quantity.Value``: units, rounded up."""
    return math.ceil(quantity)


# ---- Kubernetes containers and pods --------------------------------------------------------------
def milli_cpu_to_shares(milli_cpu: int) -> int:
    """kubelet ``MilliCPUToShares``: ``milliCPU·1024/1000`` within 2..262144; 0 → MinShares."""
    if milli_cpu == 0:
        return MIN_SHARES
    return min(max(milli_cpu * SHARES_PER_CPU // MILLI_CPU_TO_CPU, MIN_SHARES), MAX_SHARES)


def milli_cpu_to_quota(milli_cpu: int, period_us: int = QUOTA_PERIOD_US) -> int:
    """kubelet ``MilliCPUToQuota``: ``milliCPU·period/1000`` µs, at least MinQuotaPeriod (1000);
    0 when there is no limit (the runtime then leaves the quota unlimited)."""
    if milli_cpu == 0:
        return 0
    return max(milli_cpu * period_us // MILLI_CPU_TO_CPU, MIN_QUOTA_PERIOD_US)


@dataclass(frozen=True)
class ContainerResources:
    """One container's ``resources`` after API defaulting: cpu in milli-CPU, memory in bytes
    (0 = not given)."""

    name: str
    cpu_request: int = 0
    cpu_limit: int = 0
    memory_request: int = 0
    memory_limit: int = 0


_RESOURCES = ("cpu", "memory")


def _resource_list(data: Any, where: str) -> dict[str, Fraction]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ContainerSpecError(
            f"expected a mapping such as {{cpu: 500m, memory: 128Mi}}, found {describe(data)}",
            (where,),
        )
    out = {}
    for name, value in data.items():
        if name not in _RESOURCES:
            raise ContainerSpecError(
                f"expected cpu or memory{did_you_mean(name, _RESOURCES)}, found {describe(name)}",
                (where, name),
            )
        try:
            out[name] = parse_quantity(value)
        except ContainerSpecError as error:
            raise ContainerSpecError(str(error), (where, name)) from None
    return out


def _check_mapping(data: Any, keys: tuple[str, str], what: str) -> None:
    """`data` is a mapping with no keys but `keys`; else `ContainerSpecError` naming the
    offender."""
    if not isinstance(data, Mapping):
        raise ContainerSpecError(f"expected {what}, found {describe(data)}")
    for key in data:
        if key not in keys:
            raise ContainerSpecError(
                f"expected {keys[0]} or {keys[1]}{did_you_mean(key, keys)}, found {describe(key)}",
                (key,),
            )


def parse_container(name: str, data: Any) -> ContainerResources:
    """``{requests: {cpu, memory}, limits: {cpu, memory}}``: defaulted (``SetDefaults_Pod``:
    a request not given takes its limit) and validated (``ValidateResourceRequirements``: a
    request above its limit is refused)."""
    if data is None:
        data = {}
    _check_mapping(data, ("requests", "limits"), "a mapping {requests: …, limits: …}")
    requests = _resource_list(data.get("requests"), "requests")
    limits = _resource_list(data.get("limits"), "limits")
    for resource, limit in limits.items():
        requests.setdefault(resource, limit)
        if requests[resource] > limit:
            raise ContainerSpecError(
                f"expected a request less than or equal to the {resource} limit "
                f"({_quantity_text(limit)}), as Kubernetes validation requires, found "
                f"{_quantity_text(requests[resource])}",
                ("requests", resource),
            )
    return ContainerResources(
        name,
        cpu_request=milli_value(requests.get("cpu", Fraction(0))),
        cpu_limit=milli_value(limits.get("cpu", Fraction(0))),
        memory_request=whole_value(requests.get("memory", Fraction(0))),
        memory_limit=whole_value(limits.get("memory", Fraction(0))),
    )


def _quantity_text(quantity: Fraction) -> str:
    return str(quantity) if quantity.denominator == 1 else f"{milli_value(quantity)}m"


def container_files(container: ContainerResources, interface: Interface) -> Files:
    """kuberuntime ``calculateLinuxResources``: shares from the request, the quota from the limit
    over the 100 ms period (unlimited without one), the memory limit."""
    quota = milli_cpu_to_quota(container.cpu_limit)
    return {
        **_cpu_files(
            interface, milli_cpu_to_shares(container.cpu_request), quota or -1, QUOTA_PERIOD_US
        ),
        **_memory_files(interface, container.memory_limit or None),
    }


def qos_class(containers: Iterable[ContainerResources]) -> str:
    """``ComputePodQOS``: Guaranteed when every container limits cpu and memory and requests
    equal limits; BestEffort when nothing is requested or limited; else Burstable."""
    listed = list(containers)
    if not any(
        (c.cpu_request, c.cpu_limit, c.memory_request, c.memory_limit) != (0, 0, 0, 0)
        for c in listed
    ):
        return "BestEffort"
    guaranteed = all(
        c.cpu_limit
        and c.memory_limit
        and c.cpu_request == c.cpu_limit
        and c.memory_request == c.memory_limit
        for c in listed
    )
    return "Guaranteed" if guaranteed else "Burstable"


@dataclass(frozen=True)
class Pod:
    """A pod: its uid (the cgroup is ``pod<uid>``) and containers."""

    uid: str
    containers: tuple[ContainerResources, ...]
    qos: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "qos", qos_class(self.containers))

    @property
    def cpu_request(self) -> int:
        """``PodRequests``' cpu in milli-CPU (init containers and overhead not modelled)."""
        return sum(c.cpu_request for c in self.containers)


_POD_NAME = re.compile(r"^[A-Za-z0-9_.:+-]+$")


def parse_pod(data: Any) -> Pod:
    """``{pod: <uid>, containers: {<name>: {requests, limits}, …}}``."""
    _check_mapping(data, ("pod", "containers"), "a pod {pod: <uid>, containers: {…}}")
    uid = data.get("pod")
    if not isinstance(uid, str) or not _POD_NAME.match(uid):
        raise ContainerSpecError(
            f"expected the pod's uid (letters, digits and _ . : + -), found {describe(uid)}",
            ("pod",),
        )
    containers = data.get("containers")
    if not isinstance(containers, Mapping) or not containers:
        raise ContainerSpecError(
            f"expected containers by name, such as {{app: {{limits: "
            f"{{cpu: 1}}}}}}, found {describe(containers)}",
            ("containers",),
        )
    parsed = []
    for name, spec in containers.items():
        if not isinstance(name, str) or not _POD_NAME.match(name):
            raise ContainerSpecError(
                f"expected a container name, found {describe(name)}", ("containers", name)
            )
        try:
            parsed.append(parse_container(name, spec))
        except ContainerSpecError as error:
            raise ContainerSpecError(str(error), ("containers", name, *error.loc)) from None
    return Pod(uid, tuple(parsed))


def pod_path(root: str, pod: Pod) -> str:
    """The pod's cgroup: ``<root>/pod<uid>`` (Guaranteed) or ``<root>/<qos>/pod<uid>``."""
    base = root.rstrip("/")
    tier = "" if pod.qos == "Guaranteed" else f"/{pod.qos.lower()}"
    return f"{base}{tier}/pod{pod.uid}"


def pod_files(pod: Pod, interface: Interface) -> Files:
    """``ResourceConfigForPod``: summed requests → shares; summed limits → quota and memory when
    every container declares them (always for Guaranteed); BestEffort → MinShares only."""
    if pod.qos == "BestEffort":
        return _cpu_files(interface, MIN_SHARES, None, None)
    cpu_limited = all(c.cpu_limit for c in pod.containers)
    memory_limited = all(c.memory_limit for c in pod.containers)
    quota = milli_cpu_to_quota(sum(c.cpu_limit for c in pod.containers)) if cpu_limited else None
    return {
        **_cpu_files(
            interface,
            milli_cpu_to_shares(pod.cpu_request),
            quota,
            QUOTA_PERIOD_US if cpu_limited else None,
        ),
        **_memory_files(
            interface, sum(c.memory_limit for c in pod.containers) if memory_limited else None
        ),
    }


def kubepods_cgroups(
    root: str, pods: Iterable[Pod], cpus: int | None, interface: Interface
) -> dict[str, Files]:
    """The kubepods hierarchy the kubelet makes for `pods` under `root` (``/kubepods``).

    `root`: node allocatable (``createNodeAllocatableCgroups``: shares from the machine's CPUs;
    its memory is not limited: cfssim's machine has no memory size); ``burstable`` and
    ``besteffort`` (``setCPUCgroupConfig``); each pod (`pod_files`) and container
    (`container_files`), the container cgroup named after the container.
    """
    listed = list(pods)
    burstable = sum(p.cpu_request for p in listed if p.qos == "Burstable")
    tree: dict[str, Files] = {
        root: _cpu_files(
            interface,
            None if cpus is None else milli_cpu_to_shares(cpus * MILLI_CPU_TO_CPU),
            None,
            None,
        ),
        f"{root.rstrip('/')}/burstable": _cpu_files(
            interface, milli_cpu_to_shares(burstable), None, None
        ),
        f"{root.rstrip('/')}/besteffort": _cpu_files(interface, MIN_SHARES, None, None),
    }
    for pod in listed:
        path = pod_path(root, pod)
        tree[path] = pod_files(pod, interface)
        for container in pod.containers:
            tree[f"{path}/{container.name}"] = container_files(container, interface)
    return tree


# ---- scenario expansion --------------------------------------------------------------------------
def _file_interfaces(data: Mapping[str, Any]) -> Iterator[str]:
    cgroups = data.get("cgroups")
    for files in cgroups.values() if isinstance(cgroups, Mapping) else ():
        if isinstance(files, Mapping):
            yield from (str(file) for file in files)
    events = data.get("events")
    for event in events if isinstance(events, list) else ():
        write = event.get("write") if isinstance(event, Mapping) else None
        for files in write.values() if isinstance(write, Mapping) else ():
            if isinstance(files, Mapping):
                yield from (str(file) for file in files)


def scenario_interface(data: Mapping[str, Any]) -> Interface:
    """The interface of a raw scenario's explicit files (the first v1- or v2-only one), else v1."""
    for file in _file_interfaces(data):
        spec = cgfiles.FILES.get(file)
        if spec is not None and spec.interface is not None:
            return spec.interface
    return "v1"


def _machine_cpus(data: Mapping[str, Any]) -> int | None:
    machine = data.get("machine")
    cpus = machine.get("cpus") if isinstance(machine, Mapping) else None
    return cpus if type(cpus) is int and cpus >= 1 else None


def _expand_one(
    path: str, key: str, spec: Any, cpus: int | None, interface: Interface
) -> dict[str, Files]:
    if key == DOCKER_KEY:
        if not isinstance(spec, str):
            raise ContainerSpecError(
                f"expected docker run flags as a string such as "
                f"'--cpus=1.5 --memory=100m', found {describe(spec)}"
            )
        resources = parse_docker_flags(spec)
        check_docker(resources, cpus)
        return {path: docker_files(resources, interface)}
    pods_form = isinstance(spec, list) or (isinstance(spec, Mapping) and "containers" in spec)
    if not pods_form:
        return {path: container_files(parse_container(path.rsplit("/", 1)[-1], spec), interface)}
    pods = []
    for index, item in enumerate(spec if isinstance(spec, list) else [spec]):
        try:
            pods.append(parse_pod(item))
        except ContainerSpecError as error:
            raise ContainerSpecError(
                str(error), ((index,) if isinstance(spec, list) else ()) + error.loc
            ) from None
    return kubepods_cgroups(path, pods, cpus, interface)


def expand_cgroups(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[Loc, str]]]:
    """A raw scenario with every ``docker:``/``kubernetes:`` key replaced by its cgroup files.

    Returns (the new data, errors as (location from the document root, message)). A generated
    file may not meet an explicit file that sets the same thing (in the same cgroup, or in a
    cgroup a pod form generates), nor may two container keys generate the same cgroup.
    """
    cgroups = data.get("cgroups")
    if not isinstance(cgroups, Mapping) or not any(
        isinstance(files, Mapping) and any(key in files for key in CONTAINER_KEYS)
        for files in cgroups.values()
    ):
        return dict(data), []
    interface, cpus = scenario_interface(data), _machine_cpus(data)
    errors: list[tuple[Loc, str]] = []
    out: dict[Any, Any] = {
        path: (dict(files) if isinstance(files, Mapping) else files)
        for path, files in cgroups.items()
    }
    made_by: dict[str, str] = {}  # generated cgroup → the container key's cgroup
    for path, files in cgroups.items():
        if not isinstance(files, Mapping):
            continue
        keys = [key for key in CONTAINER_KEYS if key in files]
        if not keys:
            continue
        where: Loc = ("cgroups", path, keys[-1])
        if len(keys) > 1:
            errors.append(
                (where, "expected docker or kubernetes, not both in one cgroup, found both")
            )
            continue
        try:
            generated = _expand_one(str(path), keys[0], files[keys[0]], cpus, interface)
        except ContainerSpecError as error:
            errors.append(((*where, *error.loc), str(error)))
            continue
        del out[path][keys[0]]
        for target, made in generated.items():
            if target in made_by:
                errors.append(
                    (
                        where,
                        f"expected each cgroup generated once, found {target} "
                        f"generated again (also by {made_by[target]})",
                    )
                )
                continue
            made_by[target] = str(path)
            explicit = out.get(target)
            explicit = explicit if isinstance(explicit, Mapping) else {}
            for file in explicit:
                aspect = _ASPECT.get(file)
                clash = [m for m in made if _ASPECT.get(m) == aspect] if aspect else []
                if clash:
                    loc = ("cgroups", target, file) if target in cgroups else where
                    errors.append(
                        (
                            loc,
                            f"expected {aspect} of {target} from {keys[0]} "
                            f"({', '.join(f'{m}: {made[m]}' for m in clash)}) or "
                            f"from {file}, not both, found both",
                        )
                    )
            out[target] = {**made, **explicit}
    return {**data, "cgroups": out}, errors
