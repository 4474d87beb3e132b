"""The kustomize overlays in k8s/, rendered with kubectl and checked as a cluster would.

`ray.io` objects go through the KubeRay v1.7.0 CRDs (skipped, saying where to get them,
when the CRD folder is absent) and the operator's rules; core objects through
`kubernetes-validate --strict`; every pod through smartray's security policy.
"""

import copy
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from smartray.cli import job_names
from smartray.deploy.manifests import (
    check,
    crd_dir,
    missing_crds_message,
    object_name,
    render,
)
from smartray.jobrun import job_settings, parse

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("cpu", "gpu")


@pytest.fixture(scope="module")
def rendered():
    return {name: render(ROOT / "k8s" / "overlays" / name) for name in OVERLAYS}


@pytest.fixture
def crds(kuberay_crds):
    return kuberay_crds


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def the(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_crds_operator_rules_core_schemas_and_policy(rendered, crds, overlay):
    objects = rendered[overlay]
    assert check(objects, crds) == []
    assert sorted({o["kind"] for o in objects}) == [
        "ConfigMap", "RayCluster", "RayJob", "ServiceAccount"
    ]  # fmt: skip
    assert {o["metadata"]["namespace"] for o in objects} == {"smartray"}


def test_core_objects_pass_kubernetes_validate_strict_without_crds(rendered):
    core = [o for o in rendered["cpu"] if not o["apiVersion"].startswith("ray.io/")]
    assert len(core) == 3
    assert check(core, None) == []


def test_one_rayjob_per_job_module_named_after_it(rendered):
    for objects in rendered.values():
        jobs = {}
        for rayjob in by_kind(objects, "RayJob"):
            argv = shlex.split(rayjob["spec"]["entrypoint"])
            assert argv[:2] == ["python", "-m"]
            assert argv[2].startswith("jobs.")
            jobs[argv[2].removeprefix("jobs.").replace("_", "-")] = rayjob["metadata"]["name"]
        modules = {p.stem.replace("_", "-") for p in (ROOT / "jobs").glob("*.py")}
        modules.discard("--init--")
        assert sorted(jobs) == sorted(modules) == job_names()
        assert all(name == f"smartray-{job}" for job, name in jobs.items())


def test_rayjob_entrypoints_take_the_clis_flags_and_their_configmap(rendered, tmp_path):
    objects = rendered["gpu"]
    config = the(objects, "ConfigMap", "smartray-jobs")["data"]
    for rayjob in by_kind(objects, "RayJob"):
        argv = shlex.split(rayjob["spec"]["entrypoint"])
        args = []
        for arg in argv[3:]:  # the mounted ConfigMap, as the head pod sees it
            if arg.startswith("/etc/smartray/"):
                local = tmp_path / Path(arg).name
                local.write_text(config[Path(arg).name])
                arg = str(local)
            args.append(arg)
        cfg = parse(
            job_settings(argv[2].removeprefix("jobs.")), args, argv[2]
        )  # exits 2 on any flag the job does not take
        assert cfg.lake.startswith("s3://"), argv


def test_rayjobs_run_on_the_clusters_own_spec_and_clean_up(rendered):
    for objects in rendered.values():
        cluster = the(objects, "RayCluster", "smartray")["spec"]
        for rayjob in by_kind(objects, "RayJob"):
            spec = rayjob["spec"]
            assert spec["rayClusterSpec"] == cluster
            assert spec["shutdownAfterJobFinishes"] is True
            assert spec["suspend"] is True  # `kubectl apply -k` starts no job
            assert spec["ttlSecondsAfterFinished"] > 0
            assert spec["activeDeadlineSeconds"] > 0
            assert spec["backoffLimit"] >= 0
            submitter = spec["submitterPodTemplate"]["spec"]
            assert submitter["serviceAccountName"] == "smartray"


def test_gpu_overlay_has_an_autoscaling_gpu_group_and_cpu_overlay_none(rendered):
    cpu = the(rendered["cpu"], "RayCluster", "smartray")["spec"]
    gpu = the(rendered["gpu"], "RayCluster", "smartray")["spec"]
    assert [g["groupName"] for g in cpu["workerGroupSpecs"]] == ["cpu"]
    assert [g["groupName"] for g in gpu["workerGroupSpecs"]] == ["cpu", "gpu"]
    group = gpu["workerGroupSpecs"][1]
    pod = group["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert group["minReplicas"] < group["maxReplicas"]
    assert gpu["enableInTreeAutoscaling"] is True
    assert gpu["authOptions"] == {"mode": "token"}
    assert gpu["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_no_credentials_anywhere_and_the_serviceaccount_is_ready_for_a_role(rendered):
    text = "\n".join(str(o) for o in rendered["gpu"]).lower()
    for secret in ("aws_secret_access_key", "aws_access_key_id", "akia", "password"):
        assert secret not in text
    account = the(rendered["gpu"], "ServiceAccount", "smartray")
    for pod_spec in [p for o in rendered["gpu"] for p in _pods(o)]:
        assert pod_spec["serviceAccountName"] == account["metadata"]["name"]


def _pods(obj):
    from smartray.deploy.manifests import pod_templates

    return [pod for _, pod in pod_templates(obj)]


def _set(obj, path, value):
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()
SPEC = ("spec", "rayClusterSpec")
HEAD = (*SPEC, "headGroupSpec")
HEAD_CONTAINER = (*HEAD, "template", "spec", "containers", 0)
BROKEN = {
    # what a user gets wrong, and the words that must name it
    "misspelt field": (("spec", "shutdownAfterJobFinish"), True, "unknown field"),
    "integer in rayStartParams": (
        (*HEAD, "rayStartParams", "num-cpus"), 0, "rayStartParams.num-cpus: must be of type string"
    ),
    "too-long name": (("metadata", "name"), "smartray-" + "x" * 39, "at most 47 characters"),
    "name not DNS-1035": (("metadata", "name"), "9-smartray", "DNS-1035"),
    "min above max": ((*SPEC, "workerGroupSpecs", 0, "minReplicas"), 20, "must not exceed"),
    "CEL rule": (("spec", "deletionStrategy"), {"onSuccess": {"policy": "DeleteCluster"}},
                 "deletionStrategy requires either BOTH onSuccess and onFailure"),
    "bad enum": ((*SPEC, "authOptions", "mode"), "tokens", "Unsupported value"),
    "token auth on an old Ray": ((*SPEC, "rayVersion"), "2.40.0", "needs Ray 2.52.0"),
    "no token auth": ((*SPEC, "authOptions"), _DELETE, "authOptions.mode: must be token"),
    "writable root": (
        (*HEAD_CONTAINER, "securityContext", "readOnlyRootFilesystem"), False,
        "readOnlyRootFilesystem: must be true",
    ),
    "root allowed": (
        (*HEAD, "template", "spec", "securityContext", "runAsNonRoot"), _DELETE,
        "must run as non-root",
    ),
    "no ttl": (("spec", "ttlSecondsAfterFinished"), _DELETE, "ttlSecondsAfterFinished: must"),
    "inline key": (
        (*HEAD_CONTAINER, "env"), [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}],
        "credentials come from a Secret or role",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_rayjob_is_caught(rendered, crds, case):
    path, value, words = BROKEN[case]
    rayjob = copy.deepcopy(the(rendered["cpu"], "RayJob", "smartray-ingest"))
    assert check([rayjob], crds) == []
    _set(rayjob, path, value)
    problems = check([rayjob], crds)
    assert any(words in p for p in problems), problems


def test_a_broken_core_object_is_caught(rendered):
    account = copy.deepcopy(the(rendered["cpu"], "ServiceAccount", "smartray"))
    account["automountServiceAccountTokens"] = False  # misspelt
    problems = check([account], None)
    assert len(problems) == 1
    assert problems[0].startswith(f"{object_name(account)}: ")
    assert "automountServiceAccountTokens" in problems[0]


def test_the_check_command_fails_on_a_broken_overlay(tmp_path, crds, rendered):
    """`python -m smartray.deploy.manifests OVERLAY`, on an overlay with an int flag."""
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(ROOT / 'k8s' / 'overlays' / 'cpu', overlay)}]\n"
        "patches:\n"
        "  - target: {kind: RayCluster}\n"
        "    patch: |-\n"
        "      - {op: add, path: /spec/workerGroupSpecs/0/rayStartParams/num-gpus, value: 1}\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "smartray.deploy.manifests", str(overlay), "k8s/overlays/cpu"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    lines = [x for x in run.stdout.splitlines() if "num-gpus: must be of type string" in x]
    assert lines == [
        f"{overlay}: RayCluster/smartray: spec.workerGroupSpecs[0].rayStartParams.num-gpus:"
        " must be of type string, got integer"
    ]
    n = len(rendered["cpu"])
    assert f"k8s/overlays/cpu: {n} objects (ConfigMap, RayCluster, RayJob, ServiceAccount): ok" in (
        run.stdout
    )


def test_the_check_command_says_where_to_get_missing_crds(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "smartray.deploy.manifests", "k8s/overlays/cpu",
         "--crds", str(tmp_path / "none")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2
    assert "github.com/ray-project/kuberay/tree/v1.7.0/ray-operator/config/crd/bases" in run.stderr


def test_without_the_crds_the_tests_skip_and_say_where_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTRAY_K8S_CRDS", str(tmp_path / "none"))
    assert crd_dir() is None
    message = missing_crds_message()
    assert "KubeRay v1.7.0 CRDs" in message
    assert "github.com/ray-project/kuberay/tree/v1.7.0/ray-operator/config/crd/bases" in message
    assert "SMARTRAY_K8S_CRDS" in message
