"""The guard itself: connections beyond loopback are refused and recorded, in this
process and in the processes the suite starts; loopback and Unix sockets pass."""

import os
import socket
import subprocess
import sys

import pytest

from tests.reliability.conftest import net_refusals, netguard

# TEST-NET-1 (RFC 5737): documentation only, never routed; and the cloud metadata address
FAR = [("192.0.2.1", 80), ("169.254.169.254", 80)]


@pytest.mark.net_refusals_expected
@pytest.mark.parametrize("address", FAR)
def test_a_connection_beyond_loopback_is_refused_and_recorded(address):
    before = len(net_refusals())
    with socket.socket() as s, pytest.raises(PermissionError, match="not loopback"):
        s.connect(address)
    new = net_refusals()[before:]
    assert [(r["event"], r["address"]) for r in new] == [("socket.connect", repr(address))]


@pytest.mark.net_refusals_expected
def test_a_child_process_is_guarded_too(tmp_path):
    before = len(net_refusals())
    code = (
        "import socket, urllib.request\n"
        "try:\n"
        "    urllib.request.urlopen('http://169.254.169.254/latest/meta-data/', timeout=2)\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "not loopback" in out.stdout, out.stdout + out.stderr
    new = net_refusals()[before:]
    assert len(new) == 1
    assert "169.254.169.254" in new[0]["address"]


def test_loopback_and_unix_sockets_pass(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    a, b = socket.socketpair()
    a.sendall(b"x")
    assert b.recv(1) == b"x"
    a.close()
    b.close()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(b"x", ("127.0.0.1", 9))
    udp.close()


@pytest.mark.net_refusals_expected
def test_a_ray_worker_is_guarded_too(ray_session):
    before = len(net_refusals())

    @ray_session.remote
    def reach_out():
        import socket

        with socket.socket() as s:
            try:
                s.connect(("192.0.2.1", 443))
            except PermissionError as e:
                return str(e)
        return "connected"

    assert "not loopback" in ray_session.get(reach_out.remote(), timeout=120)
    new = [r for r in net_refusals()[before:] if netguard.upstream_probe(r) is None]
    assert [r["address"] for r in new] == [repr(("192.0.2.1", 443))]


def test_ray_start_up_probe_is_refused_and_attributed(tmp_path):
    """A Ray head started the way smartray starts one asks the cloud metadata address which
    cloud it is on (its dashboard process, usage stats off or not). The guard refuses it and
    names it; a refusal it cannot name would be ours, and fails the run."""
    log = tmp_path / "guard.jsonl"
    code = (
        "import ray, time\n"
        "ray.init(address='local', num_cpus=1, include_dashboard=False,"
        " _node_ip_address='127.0.0.1')\n"
        "time.sleep(5)\n"
        "ray.shutdown()\n"
    )
    env = dict(os.environ, SMARTRAY_NET_GUARD=str(log))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = netguard.refusals(log)
    assert seen, "Ray no longer probes at start-up: drop it from netguard.UPSTREAM_PROBES"
    what = {netguard.upstream_probe(r) for r in seen}
    assert None not in what, [r["where"][-3:] for r in seen]
    for r in seen:
        assert r["address"] == repr(("169.254.169.254", 80))
        assert any("dashboard" in a for a in r["argv"]), r["argv"]
