#!/usr/bin/env python3
"""Start and stop a Ray head on this machine with token authentication.

    python cluster/local_head.py start [--num-cpus N] [--dashboard-port P] [--state-dir D]
    python cluster/local_head.py status [--state-dir D]
    python cluster/local_head.py stop [--state-dir D]

`start` writes a random token (mode 0600) into the state directory, starts
`ray start --head --block` with `RAY_AUTH_MODE=token` on free ports (or those given), its
own temporary directory and the dashboard on 127.0.0.1 only, waits until the Jobs API
answers and the head node's raylet has registered (a job can run), and prints the lines
to export for `smartray submit`. `stop` ends exactly the processes of that head, by
their process ids: `ray stop` would stop every Ray process of the user.

Ray's GCS, raylet, object manager, dashboard agent and three metrics pages still listen
on all addresses, the Ray Client server and two agents on the host's (Ray's own choice;
docs/deploy.md lists each): the token guards all but the object manager and the metrics
pages.

Run it with the Python of the environment that has smartray installed: the head and the
jobs it runs use that interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_STATE_DIR = (
    Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    / "smartray"
    / "local-head"
)

# Ports `ray start --head` opens; each is given explicitly so two heads never collide.
PORT_FLAGS = (
    "--port", "--dashboard-port", "--ray-client-server-port", "--node-manager-port",
    "--object-manager-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
    "--metrics-export-port", "--runtime-env-agent-port",
)  # fmt: skip
# Ports Ray takes from the environment only: the Prometheus metrics of the autoscaler and
# of the dashboard (fixed 44217 and 44227 otherwise, on all addresses: two heads collide).
PORT_ENV = ("AUTOSCALER_METRIC_PORT", "DASHBOARD_METRIC_PORT")


def free_port() -> int:
    """A TCP port that is free on loopback now."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports free on loopback now.

    All are held bound until all are chosen: one at a time, the kernel can hand the same
    port out twice, and Ray refuses to start when two of its components get one port.
    """
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def _state_file(state_dir: Path) -> Path:
    return state_dir / "head.json"


def _read_state(state_dir: Path) -> dict[str, object] | None:
    try:
        return dict(json.loads(_state_file(state_dir).read_text()))
    except FileNotFoundError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _head_pids(session: int, temp_dir: str) -> list[int]:
    """The head's live processes.

    Those of the session `start` opened, and any process whose command line names the
    head's own temporary directory (Ray renames many of its processes,
    `ray::DashboardAgent` say, so the session is the surer sign).
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        if int(fields[3]) == session or temp_dir.encode() in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def _get_json(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _ready(dashboard: str, token: str) -> bool:
    """The Jobs API answers and the head node is alive.

    The dashboard answers before `ray start` has started the raylet (it starts last):
    until the node registers, a submitted job waits and the raylet's ports are closed.
    """
    try:
        _get_json(dashboard + "/api/jobs/", token)
        nodes = _get_json(dashboard + "/api/v0/nodes?detail=false", token)
        rows = nodes["data"]["result"]["result"]  # type: ignore[index]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return False
    return any(r.get("is_head_node") and r.get("state") == "ALIVE" for r in rows)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def start(args: argparse.Namespace) -> int:
    """Starts the head, waits until its Jobs API and its node answer; prints the exports."""
    state_dir = Path(args.state_dir)
    state = _read_state(state_dir)
    if state is not None and _alive(int(str(state["pid"]))):
        print(f"a head is already running: {state['dashboard']} (stop it first)", file=sys.stderr)
        return 1
    state_dir.mkdir(parents=True, exist_ok=True)
    token_file = state_dir / "auth_token"
    token = secrets.token_hex(32)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    # Ray's socket paths must stay under 107 bytes: a short temp dir of its own.
    temp_dir = args.temp_dir or tempfile.mkdtemp(prefix="smartray-head-", dir="/tmp")
    chosen = free_ports(len(PORT_FLAGS) + len(PORT_ENV))
    ports = dict(zip(PORT_FLAGS, chosen, strict=False))
    env_ports = dict(zip(PORT_ENV, chosen[len(PORT_FLAGS) :], strict=True))
    if args.dashboard_port:
        ports["--dashboard-port"] = args.dashboard_port
    if args.port:
        ports["--port"] = args.port
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if ray is None:
        print("`ray` is not installed in this environment", file=sys.stderr)
        return 1
    command = [
        ray, "start", "--head", "--block", f"--num-cpus={args.num_cpus}",
        "--dashboard-host=127.0.0.1", "--node-ip-address=127.0.0.1",
        f"--temp-dir={temp_dir}", "--disable-usage-stats", "--include-dashboard=true",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]  # fmt: skip
    env = dict(os.environ)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_file))
    env.update({name: str(port) for name, port in env_ports.items()})
    env.pop("RAY_AUTH_TOKEN", None)  # the file is the one source of the token
    env.pop("RAY_ADDRESS", None)
    # Jobs run `python -m jobs.<name>`: that `python` is this environment's.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    log_file = state_dir / "head.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    dashboard = f"http://127.0.0.1:{ports['--dashboard-port']}"
    state = {
        "pid": proc.pid, "dashboard": dashboard, "gcs": f"127.0.0.1:{ports['--port']}",
        "temp_dir": temp_dir, "token_file": str(token_file), "log": str(log_file),
    }  # fmt: skip
    _state_file(state_dir).write_text(json.dumps(state, indent=2))
    deadline = time.monotonic() + args.timeout
    while not _ready(dashboard, token):
        if proc.poll() is not None or time.monotonic() > deadline:
            why = "exited" if proc.poll() is not None else f"not ready in {args.timeout:.0f} s"
            print(f"the Ray head {why}; its log ({log_file}) ends:", file=sys.stderr)
            print(log_file.read_text(errors="replace")[-3000:], file=sys.stderr)
            stop(args)
            return 1
        time.sleep(0.5)
    print(f"Ray head running: dashboard {dashboard}, pid {proc.pid}, temp dir {temp_dir}")
    print("to submit jobs to it:")
    print(f"  export RAY_ADDRESS={dashboard} RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={token_file}")
    return 0


def status(args: argparse.Namespace) -> int:
    """Exit 0 and the dashboard address if the head runs; 1 if it does not."""
    state = _read_state(Path(args.state_dir))
    if state is None or not _alive(int(str(state["pid"]))):
        print("no head running")
        return 1
    print(f"running: dashboard {state['dashboard']}, pid {state['pid']}")
    return 0


def stop(args: argparse.Namespace) -> int:
    """Stops the head's processes by id: SIGTERM, then SIGKILL after a grace period."""
    state_dir = Path(args.state_dir)
    state = _read_state(state_dir)
    if state is None:
        print("no head was started from this state directory")
        return 0
    pid, temp_dir = int(str(state["pid"])), str(state["temp_dir"])
    # `start` made `ray start` a session leader: every process of this head is in that
    # session (pid) unless it left it, and then its command line names the temp dir.
    pids = _head_pids(pid, temp_dir)
    for p in pids:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + args.grace
    while time.monotonic() < deadline and _head_pids(pid, temp_dir):
        time.sleep(0.25)
    left = _head_pids(pid, temp_dir)
    for p in left:
        _signal(p, signal.SIGKILL)
    _state_file(state_dir).unlink(missing_ok=True)
    if not args.temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    killed = f", {len(left)} killed after {args.grace:.0f} s" if left else ""
    print(f"Ray head stopped ({len(pids)} processes{killed})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("action", choices=("start", "status", "stop"))
    parser.add_argument(
        "--state-dir",
        default=str(DEFAULT_STATE_DIR),
        help=f"token, log and process ids (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=0, help="GCS port (default: a free one)")
    parser.add_argument("--dashboard-port", type=int, default=0,
                        help="dashboard and Jobs API port (default: a free one)")  # fmt: skip
    parser.add_argument("--temp-dir", default=None, help="Ray's temp dir (default: a new one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for start")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`start`, `status` or `stop`; returns the exit code."""
    args = build_parser().parse_args(argv)
    return {"start": start, "status": status, "stop": stop}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
