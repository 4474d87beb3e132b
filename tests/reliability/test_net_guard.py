"""The guard itself: connections beyond loopback are refused and recorded, in this
process and in the processes the suite starts; loopback and Unix sockets pass."""

import socket
import subprocess
import sys

import pytest

from tests.reliability.conftest import net_refusals

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
    new = net_refusals()[before:]
    assert [r["address"] for r in new] == [repr(("192.0.2.1", 443))]
