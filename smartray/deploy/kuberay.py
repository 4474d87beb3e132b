"""The checks KubeRay's operator makes beyond the CRD schema (KubeRay v1.7).

The API server accepts a RayJob that the operator then refuses, leaving a custom object
that never starts a cluster: these rules (from the operator's `validation.go` and its
webhook) catch that before `kubectl apply`. Run them on objects that passed the CRD
schema, with its defaults applied (`crd.CRDSet.validate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from smartray.deploy.names import dns1035_label_errors

MAX_RAYJOB_NAME = 47  # the operator derives longer names (cluster, submitter) from it
MAX_RAYCLUSTER_NAME = 63
MIN_RAY_VERSION_FOR_TOKEN_AUTH = (2, 52, 0)
# rayStartParams that declare resources; with the group's `resources` field they clash
RESOURCE_PARAMS = ("num-cpus", "num-gpus", "memory", "resources")


def operator_errors(obj: Mapping[str, Any]) -> list[str]:
    """What KubeRay's operator would refuse in a RayCluster or RayJob (`path: message`)."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "RayCluster":
        return _name_errors(obj, MAX_RAYCLUSTER_NAME) + cluster_spec_errors(spec, "spec")
    if kind == "RayJob":
        return _name_errors(obj, MAX_RAYJOB_NAME) + rayjob_spec_errors(spec)
    return []


def _name_errors(obj: Mapping[str, Any], limit: int) -> list[str]:
    name = str((obj.get("metadata") or {}).get("name", ""))
    kind = obj.get("kind")
    errors = []
    if len(name) > limit:
        errors.append(f"metadata.name: a {kind} name must be at most {limit} characters")
    errors += [f"metadata.name: {kind} name {p}" for p in dns1035_label_errors(name)]
    return errors


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.split("+")[0].split("-")[0].split("."))
    except ValueError:
        return None


def cluster_spec_errors(spec: Mapping[str, Any], path: str) -> list[str]:
    """The operator's rules for a RayCluster spec (also a RayJob's `rayClusterSpec`)."""
    errors: list[str] = []
    head = spec.get("headGroupSpec") or {}
    groups = [("headGroupSpec", "head", head)] + [
        (f"workerGroupSpecs[{i}]", g.get("groupName", ""), g)
        for i, g in enumerate(spec.get("workerGroupSpecs") or [])
    ]
    names: set[str] = set()
    for where, name, group in groups:
        at = f"{path}.{where}"
        if not ((group.get("template") or {}).get("spec") or {}).get("containers"):
            errors.append(f"{at}.template.spec.containers: a Ray group needs a container")
        params = group.get("rayStartParams") or {}
        for key, value in params.items():
            if not isinstance(value, str):
                errors.append(f'{at}.rayStartParams.{key}: must be a string, e.g. "{value}"')
        if "labels" in params:
            errors.append(f"{at}.rayStartParams.labels: not supported; use the group's labels")
        if group.get("resources") and any(params.get(k) for k in RESOURCE_PARAMS):
            errors.append(f"{at}: resources set both in rayStartParams and in resources")
        if where == "headGroupSpec":
            continue
        if name in names:
            errors.append(f"{at}.groupName: {name!r} is used by another worker group")
        names.add(name)
        low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            errors.append(f"{at}: minReplicas ({low}) must not exceed maxReplicas ({high})")
    auth = spec.get("authOptions") or {}
    if auth.get("mode") == "token":
        version = _version(str(spec.get("rayVersion", "")))
        if version is None:
            errors.append(f"{path}.rayVersion: token auth needs rayVersion 2.52.0 or later")
        elif version < MIN_RAY_VERSION_FOR_TOKEN_AUTH:
            errors.append(f"{path}.rayVersion: token auth needs Ray 2.52.0 or later")
    return errors


def rayjob_spec_errors(spec: Mapping[str, Any]) -> list[str]:
    """The operator's rules for a RayJob spec."""
    errors: list[str] = []
    shutdown = bool(spec.get("shutdownAfterJobFinishes"))
    selector = spec.get("clusterSelector") or {}
    mode = spec.get("submissionMode", "K8sJobMode")
    if spec.get("suspend") and not shutdown:
        errors.append(
            "spec.suspend: a RayJob that is not shut down after it finishes cannot be suspended"
        )
    ttl = spec.get("ttlSecondsAfterFinished", 0)
    if isinstance(ttl, int) and ttl < 0:
        errors.append("spec.ttlSecondsAfterFinished: must not be negative")
    if isinstance(ttl, int) and ttl > 0 and not shutdown:
        errors.append("spec.ttlSecondsAfterFinished: needs shutdownAfterJobFinishes: true")
    if spec.get("rayClusterSpec") is None and not selector:
        errors.append("spec: one of rayClusterSpec or clusterSelector must be set")
    if selector and not selector.get("ray.io/cluster"):
        errors.append("spec.clusterSelector: needs the cluster's name under ray.io/cluster")
    backoff = spec.get("backoffLimit")
    if mode == "InteractiveMode" and isinstance(backoff, int) and backoff > 0:
        errors.append("spec.backoffLimit: not allowed with InteractiveMode")
    if isinstance(backoff, int) and backoff < 0:
        errors.append("spec.backoffLimit: must not be negative")
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errors.append("spec.activeDeadlineSeconds: must be positive")
    if mode == "SidecarMode" and (spec.get("submitterPodTemplate") or spec.get("submitterConfig")):
        errors.append("spec: SidecarMode takes no submitterPodTemplate or submitterConfig")
    try:
        yaml.safe_load(spec.get("runtimeEnvYAML") or "")
    except yaml.YAMLError as e:
        errors.append(f"spec.runtimeEnvYAML: not valid YAML: {e}")
    if spec.get("rayClusterSpec") is not None:
        errors += cluster_spec_errors(spec["rayClusterSpec"], "spec.rayClusterSpec")
    return errors
