"""Kubernetes manifests and compose files → the cgroup part of a scenario (``cfssim convert``).

`convert_manifest(path)` reads a Kubernetes manifest (Pod, or a workload with a pod template:
Deployment, StatefulSet, DaemonSet, ReplicaSet, Job; several ``---`` documents allowed) or a
compose file (``services.<name>``: ``cpus``, ``cpu_shares``, ``cpu_quota``, ``cpu_period``,
``cpuset``, ``mem_limit``, ``memswap_limit``, ``mem_reservation``, ``oom_kill_disable`` and
``deploy.resources.limits/reservations``) and returns scenario data whose cgroups use the
``kubernetes:`` pod form under ``/kubepods`` or ``docker:`` flags under ``/docker/<service>``
(`cfssim.container` converts them when the scenario loads). A scenario needs at least one
process, so each container gets a placeholder hog (one thread running forever), said so in the
header. Errors are `ScenarioError`s at the manifest's file:line:col.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import container
from .._errors import describe
from .checks import Limits
from .errors import Loc, ScenarioError
from .yaml_io import Located, format_path, position, read_yaml

TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
KUBEPODS = "/kubepods"
DOCKER_PARENT = "/docker"
PLACEHOLDER_NOTE = (
    "processes: one placeholder hog per container (1 thread running forever) — "
    "a scenario needs at least one process; replace them with the real workload"
)


@dataclass
class Converted:
    """Scenario data, the header lines to print above it and warnings."""

    data: dict[str, Any]
    header: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Document:
    """One YAML document of a file, with positions shifted to the file's lines."""

    def __init__(self, located: Located, origin: str, first_line: int) -> None:
        self.located, self.origin, self.first_line = located, origin, first_line

    @property
    def data(self) -> Any:
        return self.located.data

    def error(self, loc: Loc, message: str, *, about_key: bool = False) -> ScenarioError:
        line, col = position(self.located, loc, about_key)
        return ScenarioError(
            [f"{self.origin}:{line + self.first_line}:{col}: {format_path(loc)}: {message}"]
        )


def _documents(path: Path) -> list[_Document]:
    """Every ``---``-separated YAML document of `path`, parsed with positions."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(
            [f"{path}:1:1: document: expected a readable UTF-8 YAML file, found {error}"]
        ) from None
    lines = text.splitlines(keepends=True)
    starts = [0] + [i + 1 for i, line in enumerate(lines) if re.match(r"^---\s*$", line)]
    ends = [start - 1 for start in starts[1:]] + [len(lines)]
    documents = []
    for start, end in zip(starts, ends, strict=True):
        part = "".join(lines[start:end])
        if not part.strip() or all(
            not ln.strip() or ln.lstrip().startswith("#") for ln in lines[start:end]
        ):
            continue
        try:
            located = read_yaml(part, str(path), Limits().max_loop_depth)
        except ScenarioError as error:  # shift "file:line:col" by the document's first line
            raise ScenarioError([_shift(message, start) for message in error.messages]) from None
        documents.append(_Document(located, str(path), start))
    if not documents:
        raise ScenarioError(
            [
                f"{path}:1:1: document: expected a Kubernetes manifest or a "
                "compose file, found an empty file"
            ]
        )
    return documents


def _shift(message: str, lines: int) -> str:
    """``file:line:col: …`` with its line moved down by `lines`."""
    return re.sub(
        r"^(.*?):(\d+):", lambda m: f"{m.group(1)}:{int(m.group(2)) + lines}:", message, count=1
    )


def detect_kind(path: Path) -> str:
    """``k8s`` (a document with ``kind``), ``compose`` (``services``) or ``rt-app`` (JSON)."""
    if path.suffix.lower() == ".json":
        return "rt-app"
    data = _documents(path)[0].data
    if isinstance(data, Mapping) and "kind" in data:
        return "k8s"
    if isinstance(data, Mapping) and "services" in data:
        return "compose"
    raise ScenarioError(
        [
            f"{path}:1:1: document: expected a Kubernetes manifest (kind: Pod, "
            "Deployment…), a compose file (services:) or rt-app JSON, found "
            "neither kind nor services"
        ]
    )


def _scenario(
    name: str, cgroups: dict[str, Any], hogs: list[tuple[str, str]], cpus: int, duration: str
) -> dict[str, Any]:
    return {
        "name": re.sub(r"[^A-Za-z0-9_.:+-]", "-", name) or "converted",
        "duration": duration,
        "seed": 1,
        "machine": {"cpus": cpus},
        "cgroups": cgroups,
        "processes": [
            {
                "name": process,
                "cgroup": cgroup,
                "threads": 1,
                "repeat": "forever",
                "program": [{"run": "forever"}],
            }
            for process, cgroup in hogs
        ],
    }


# ---- Kubernetes ----------------------------------------------------------------------------------
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pod_spec(doc: _Document) -> tuple[Loc, Any, str, int]:
    """(where the pod spec is, the spec, the pod name, replicas)."""
    data = doc.data
    kind = data.get("kind")
    raw_metadata = data.get("metadata")
    metadata = raw_metadata if isinstance(raw_metadata, Mapping) else {}
    name = str(metadata.get("name", "pod"))
    if kind == "Pod":
        return ("spec",), data.get("spec"), name, 1
    if kind in TEMPLATE_KINDS:
        spec = _mapping(data.get("spec"))
        template = _mapping(spec.get("template"))
        replicas = spec.get("replicas", 1) if kind != "DaemonSet" else 1
        if type(replicas) is not int or replicas < 0:
            raise doc.error(
                ("spec", "replicas"), f"expected a count ≥ 0, found {describe(replicas)}"
            )
        return ("spec", "template", "spec"), template.get("spec"), name, replicas
    raise doc.error(
        ("kind",), f"expected Pod or one of {', '.join(TEMPLATE_KINDS)}, found {describe(kind)}"
    )


def _k8s(path: Path, duration: str, cpus: int | None) -> Converted:
    pods: list[dict[str, Any]] = []
    hogs: list[tuple[str, str]] = []
    header: list[str] = []
    for doc in _documents(path):
        if not isinstance(doc.data, Mapping) or "kind" not in doc.data:
            raise doc.error(
                (), f"expected a Kubernetes object with kind, found {describe(doc.data)}"
            )
        where, spec, name, replicas = _pod_spec(doc)
        containers = spec.get("containers") if isinstance(spec, Mapping) else None
        if not isinstance(containers, list) or not containers:
            raise doc.error(
                (*where, "containers"),
                f"expected a list of containers, found {describe(containers)}",
            )
        resources: dict[str, Any] = {}
        for index, item in enumerate(containers):
            at: Loc = (*where, "containers", index)
            cname = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(cname, str):
                raise doc.error(
                    (*at, "name"), f"expected a container name, found {describe(cname)}"
                )
            spec_resources = item.get("resources") or {}
            try:
                container.parse_container(cname, spec_resources)
            except container.ContainerSpecError as error:
                raise doc.error((*at, "resources", *error.loc), str(error)) from None
            resources[cname] = {
                k: v for k, v in spec_resources.items() if k in ("requests", "limits")
            }
        for replica in range(replicas):
            uid = name if replicas == 1 else f"{name}-{replica}"
            pod = container.parse_pod({"pod": uid, "containers": resources})
            pods.append({"pod": uid, "containers": resources})
            pod_cgroup = container.pod_path(KUBEPODS, pod)
            header.append(f"pod {uid}: QoS {pod.qos}, cgroup {pod_cgroup}")
            hogs.extend((f"{uid}.{c}", f"{pod_cgroup}/{c}") for c in resources)
    data = _scenario(
        path.stem, {KUBEPODS: {container.KUBERNETES_KEY: pods}}, hogs, cpus or 2, duration
    )
    return Converted(data, header)


# ---- docker compose ------------------------------------------------------------------------------
#: compose service key → docker run flag (compose-go's names)
COMPOSE_FLAGS = {
    "cpus": "--cpus",
    "cpu_shares": "--cpu-shares",
    "cpu_quota": "--cpu-quota",
    "cpu_period": "--cpu-period",
    "cpuset": "--cpuset-cpus",
    "mem_limit": "--memory",
    "memswap_limit": "--memory-swap",
    "mem_reservation": "--memory-reservation",
}
_DEPLOY_FLAGS = {
    ("limits", "cpus"): "--cpus",
    ("limits", "memory"): "--memory",
    ("reservations", "memory"): "--memory-reservation",
}


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compose(path: Path, duration: str, cpus: int | None) -> Converted:
    doc = _documents(path)[0]
    services = doc.data.get("services")
    if not isinstance(services, Mapping) or not services:
        raise doc.error(("services",), f"expected services by name, found {describe(services)}")
    cgroups: dict[str, Any] = {}
    hogs: list[tuple[str, str]] = []
    warnings: list[str] = []
    most = 0
    for name, service in services.items():
        where: Loc = ("services", name)
        if not isinstance(service, Mapping):
            raise doc.error(where, f"expected a service mapping, found {describe(service)}")
        flags: list[tuple[Loc, str]] = [
            ((*where, key), f"{flag}={_flag_value(service[key])}")
            for key, flag in COMPOSE_FLAGS.items()
            if key in service
        ]
        if service.get("oom_kill_disable") is True:
            flags.append(((*where, "oom_kill_disable"), "--oom-kill-disable"))
        deploy = service.get("deploy")
        resources = deploy.get("resources") if isinstance(deploy, Mapping) else None
        for (group, key), flag in _DEPLOY_FLAGS.items():
            section = resources.get(group) if isinstance(resources, Mapping) else None
            if isinstance(section, Mapping) and key in section:
                flags.append(
                    (
                        (*where, "deploy", "resources", group, key),
                        f"{flag}={_flag_value(section[key])}",
                    )
                )
        reservations = resources.get("reservations") if isinstance(resources, Mapping) else None
        if isinstance(reservations, Mapping) and "cpus" in reservations:
            warnings.append(
                f"{name}: deploy.resources.reservations.cpus not converted (no "
                "docker run flag reserves CPUs)"
            )
        for loc, flag in flags:  # each value alone, so that its error points at its key
            try:
                container.parse_docker_flags(flag)
            except container.ContainerSpecError as error:
                raise doc.error(loc, str(error)) from None
        text = " ".join(flag for _, flag in flags)
        try:
            resources_ = container.parse_docker_flags(text)
            container.check_docker(resources_, None)
        except container.ContainerSpecError as error:
            raise doc.error(where, str(error), about_key=True) from None
        most = max(most, resources_.nano_cpus)
        cgroup = f"{DOCKER_PARENT}/{name}"
        cgroups[cgroup] = {container.DOCKER_KEY: text} if text else {}
        hogs.append((str(name), cgroup))
    machine_cpus = cpus or max(2, math.ceil(most / container.NANO_CPUS))
    data = _scenario(path.stem, cgroups, hogs, machine_cpus, duration)
    return Converted(data, [f"service {n}: cgroup {c}" for n, c in hogs], warnings)


def convert_manifest(
    path: Path, kind: str, *, duration: str = "10s", cpus: int | None = None
) -> Converted:
    """A Kubernetes manifest (`kind` ``k8s``) or compose file (``compose``) as scenario data."""
    converted = (_k8s if kind == "k8s" else _compose)(path, duration, cpus)
    converted.header = [
        f"converted from {path.name} by cfssim convert",
        *converted.header,
        PLACEHOLDER_NOTE,
        *(f"warning: {w}" for w in converted.warnings),
    ]
    return converted
