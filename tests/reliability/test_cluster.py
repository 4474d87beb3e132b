"""The cluster as shipped: `cluster/local_head.py` and the KubeRay manifests.

- `start` returns only once the head node is alive (the raylet registers after the
  dashboard answers), so a job submitted at once runs.
- A job submitted to the local head without its token (or with a wrong one) is refused,
  and no job is created.
- The head's listening sockets, read with psutil from its processes (not probed from
  outside), are exactly those the table "What the head listens on" in docs/deploy.md
  names, on the addresses it names.
- The rendered KubeRay manifests turn token auth on for every cluster and expose the
  dashboard no further than docs/deploy.md says (a ClusterIP service, reached through
  `kubectl port-forward`): no LoadBalancer, NodePort or Ingress.
"""

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.own_cluster

ROOT = Path(__file__).resolve().parents[2]
HEAD_SCRIPT = ROOT / "cluster" / "local_head.py"
DOC = ROOT / "docs" / "deploy.md"


def _head(action, state_dir, *extra):
    return subprocess.run(
        [sys.executable, str(HEAD_SCRIPT), action, "--state-dir", str(state_dir), *extra],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    import ray

    ray.shutdown()  # the suite's shared Ray: this test brings its own
    state = tmp_path_factory.mktemp("head-state")
    t0 = time.monotonic()
    started = _head("start", state, "--num-cpus", "1")
    assert started.returncode == 0, started.stderr[-3000:]
    info = json.loads((state / "head.json").read_text())
    info["start_s"] = round(time.monotonic() - t0, 1)
    # read at once: `start` must not return before the node can run a job
    token = Path(info["token_file"]).read_text()
    info["nodes_when_started"] = _request(
        info["dashboard"] + "/api/v0/nodes?detail=false", token=token
    )
    yield info
    stopped = _head("stop", state)
    assert stopped.returncode == 0, stopped.stderr


def _request(url, method="GET", body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_start_returns_once_the_head_node_is_alive(head, figures):
    status, body = head["nodes_when_started"]
    assert status == 200, body
    nodes = json.loads(body)["data"]["result"]["result"]
    alive = [n for n in nodes if n["is_head_node"] and n["state"] == "ALIVE"]
    figures.record("test_cluster[start]", nodes_alive_when_started=len(alive))
    assert len(alive) == 1, f"`start` returned before the head node registered: {nodes}"


def test_a_job_without_the_token_is_refused(head, figures):
    jobs = head["dashboard"] + "/api/jobs/"
    marker = ROOT / "test-artifacts" / "reliability" / "unauthenticated-job-ran"
    marker.unlink(missing_ok=True)
    body = {"entrypoint": f"touch {marker}"}
    answers = {
        "submit, no token": _request(jobs, "POST", body),
        "submit, wrong token": _request(jobs, "POST", body, token="0" * 64),
        "list, no token": _request(jobs),
    }
    codes = {k: v[0] for k, v in answers.items()}
    assert all(c in (401, 403) for c in codes.values()), answers
    token = Path(head["token_file"]).read_text()
    status, listed = _request(jobs, token=token)
    assert status == 200, listed
    assert json.loads(listed) == [], "a refused submission still created a job"
    assert not marker.exists()
    figures.record("test_cluster[token]", head_start_s=head["start_s"], answers=codes)


def _head_processes(head):
    pid, temp_dir = int(head["pid"]), head["temp_dir"]
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if (
                p.pid == pid
                or temp_dir in " ".join(p.info["cmdline"] or [])
                or (pid in {a.pid for a in p.parents()})
            ):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _ports_by_flag(head):
    """`--flag` or env name -> port, from the `ray start` process local_head.py ran."""
    proc = psutil.Process(int(head["pid"]))
    args = (a.split("=", 1) for a in proc.cmdline() if re.match(r"--(\S+-)?port=", a))
    ports = {k: int(v) for k, v in args}
    env = proc.environ()
    ports.update({k: int(env[k]) for k in ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT")})
    return ports


def _kind(ip):
    ip = ip.removeprefix("::ffff:")
    if ip in ("0.0.0.0", "::"):
        return "all addresses"
    if ip == "127.0.0.1":
        return "127.0.0.1"
    return "host address"


def _documented():
    """The table under "What the head listens on": `--flag` -> set of address kinds."""
    text = DOC.read_text()
    section = text.split("What the head listens on", 1)[1].split("\n\n", 2)[1]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            table[cells[1].strip("`")] = {a.strip() for a in cells[2].split(" and ")}
    assert table, "docs/deploy.md has no table of the head's listening sockets"
    return table


def _listening(head, by_port):
    """flag -> address kinds its port listens on; stray sockets; unreadable processes."""
    seen: dict[str, set[str]] = {}
    stray, unread, names = [], [], []
    for p in _head_processes(head):
        try:
            names.append(p.name())
            conns = p.net_connections(kind="inet")
        except psutil.Error as e:
            unread.append((p.pid, repr(e)))
            continue
        for c in conns:
            if c.status != psutil.CONN_LISTEN:
                continue
            flag = by_port.get(c.laddr.port)
            if flag is None:
                stray.append((p.name(), c.laddr.ip, c.laddr.port))
                continue
            seen.setdefault(flag, set()).add(_kind(c.laddr.ip))
    return seen, stray, unread, sorted(names)


def test_the_heads_listening_sockets_are_the_documented_ones(head, figures):
    by_port = {port: flag for flag, port in _ports_by_flag(head).items()}
    documented = _documented()
    # The raylet starts its agents after `start` returns: read until they are up.
    deadline = time.monotonic() + 60
    while True:
        seen, stray, unread, names = _listening(head, by_port)
        assert stray == [], f"listening on ports no flag set: {stray}"
        if seen == documented or time.monotonic() > deadline:
            break
        time.sleep(1)
    found = {k: sorted(v) for k, v in sorted(seen.items())}
    figures.record("test_cluster[sockets]", sockets_found=found, stray=stray, unread=unread)
    assert seen == documented, (
        f"measured {seen}, docs/deploy.md says {documented}; "
        f"processes read: {names}, unreadable: {unread}"
    )
    assert seen["--dashboard-port"] == {"127.0.0.1"}
    figures.record(
        "test_cluster[sockets]",
        documented={k: sorted(v) for k, v in sorted(documented.items())},
    )


def test_the_kuberay_manifests_turn_token_auth_on_and_keep_the_dashboard_inside(figures):
    from smartray.deploy.manifests import render

    clusters = exposed = 0
    for overlay in ("cpu", "gpu"):
        for obj in render(ROOT / "k8s" / "overlays" / overlay):
            kind, name = obj["kind"], obj["metadata"]["name"]
            where = f"{overlay}: {kind} {name}"
            spec = obj.get("spec", {})
            cluster = spec if kind == "RayCluster" else spec.get("rayClusterSpec")
            if kind in ("RayCluster", "RayJob") and cluster is not None:
                clusters += 1
                assert cluster.get("authOptions", {}).get("mode") == "token", where
                head = cluster["headGroupSpec"]
                assert head.get("serviceType", "ClusterIP") == "ClusterIP", where
                assert "ingress" not in json.dumps(head).lower(), where
                assert not head.get("enableIngress"), where
            if kind == "Ingress" or (
                kind == "Service" and spec.get("type", "ClusterIP") != "ClusterIP"
            ):
                exposed += 1
            if kind == "Pod" or "template" in spec:
                pod = json.dumps(spec)
                assert '"hostNetwork": true' not in pod, where
                assert '"hostPort"' not in pod, where
    assert clusters > 0
    assert exposed == 0
    figures.record("test_cluster[kuberay]", clusters_with_token_auth=clusters, exposed=exposed)
