"""docs/deploy.md: its commands are the tests' own, and each still parses.

The tests run these commands (tests/integration/test_submit.py runs the local head and
`smartray submit`; tests/unit/test_k8s_manifests.py the manifest check); here every
command of those kinds in the doc goes through the real parser, and the example overlay
is rendered and checked.
"""

import importlib.util
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from smartray.cluster.submit import parse_submission
from smartray.deploy.manifests import check, crd_dir, load_crds, render

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "deploy.md").read_text()
# what the suite runs, as the doc must show it
TESTED = [
    "python cluster/local_head.py start --num-cpus 2",
    'smartray submit ingest "$PWD/demo-data" --lake "$PWD/lake"',
    "python cluster/local_head.py stop",
    "kubectl kustomize k8s/overlays/gpu",
    "python -m smartray.deploy.manifests k8s/overlays/cpu k8s/overlays/gpu",
]


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def commands():
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield line.removesuffix("&").strip()


def test_every_command_the_tests_run_is_in_the_doc():
    found = set(commands())
    for command in TESTED:
        assert command in found, command


def local_head_parser():
    spec = importlib.util.spec_from_file_location("local_head", ROOT / "cluster" / "local_head.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def test_each_local_head_and_submit_command_parses(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # --token-file sets them; restored after
    monkeypatch.setenv("PWD", str(tmp_path))
    parser, seen = local_head_parser(), 0
    for line in commands():
        argv = [os.path.expandvars(a) for a in shlex.split(line)]
        if argv[:2] == ["python", "cluster/local_head.py"]:
            parser.parse_args(argv[2:])
            seen += 1
        elif argv[:2] == ["smartray", "submit"]:
            if "--token-file" in argv:  # the token is made at run time; any file will do
                token = tmp_path / "token"
                token.write_text("t")
                argv[argv.index("--token-file") + 1] = str(token)
            submission = parse_submission(argv[2:])
            assert submission.address.startswith("http://127.0.0.1:")
            seen += 1
    assert seen == 7  # 2 of the local head, 5 submissions


def test_each_kustomize_command_renders():
    for line in commands():
        argv = shlex.split(line)
        if argv[:2] == ["kubectl", "kustomize"]:
            assert render(ROOT / argv[2])


def test_the_docs_own_overlay_renders_names_the_image_and_role_and_passes(tmp_path):
    example = next(b for b in blocks("yaml") if "k8s/overlays/prod/kustomization.yaml" in b)
    overlay = tmp_path / "prod"
    overlay.mkdir()
    text = example.replace("../gpu", os.path.relpath(ROOT / "k8s" / "overlays" / "gpu", overlay))
    (overlay / "kustomization.yaml").write_text(text)
    assert yaml.safe_load(text)["resources"]
    objects = render(overlay)
    images = {
        c["image"] for o in objects if o["kind"] == "RayCluster"
        for g in [o["spec"]["headGroupSpec"], *o["spec"]["workerGroupSpecs"]]
        for c in g["template"]["spec"]["containers"]
    }  # fmt: skip
    assert images == {"123456789012.dkr.ecr.us-west-2.amazonaws.com/smartray:0.1.0"}
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/smartray"
    }
    folder = crd_dir()
    if folder is None:
        pytest.skip("KubeRay CRDs absent: the rest of the check needs them")
    assert check(objects, load_crds(str(folder))) == []
