"""A guard that refuses, and records, every connection beyond loopback (no imports beyond
the standard library: it loads in every Python process the suite starts).

The reliability suite (`tests/reliability/`) installs it in its own process and, through
`tests/reliability/guard/sitecustomize.py` on `PYTHONPATH`, in every Python process it
starts: job drivers, Ray workers, servers written in Python. It is an audit hook
(PEP 578), so it sees `socket.connect`, `sendto` and `sendmsg` from any library, urllib,
requests, boto3 and fsspec included; native code that opens its own sockets (Ray's gRPC
core, the Rust object store under deltalake) is not seen, which is why the tests also
point every such client at loopback only.

A refused attempt raises `PermissionError` in the caller (nothing is sent) and appends
one JSON line to the log named by `SMARTRAY_NET_GUARD`: the process id and command line, the
event, the address and the caller's whole stack. `upstream_probe` names the refusals that
come from a library's own fixed behaviour rather than from smartray or a test.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV = "SMARTRAY_NET_GUARD"
_EVENTS = ("socket.connect", "socket.sendto", "socket.sendmsg")
_installed = False


def allowed(family: int, address: Any) -> bool:
    """True for a Unix socket or an IP address on loopback."""
    if family == getattr(socket, "AF_UNIX", None):
        return True
    if family not in (socket.AF_INET, socket.AF_INET6):
        return False  # netlink, packet sockets, ...: nothing a job needs
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a name: connect() takes resolved addresses, so this is not one


# Refusals that come from a dependency's own start-up, whatever smartray does: (a frame's
# path suffix, its function) -> what it is. Ray's dashboard process (started even with
# include_dashboard=False, to run its usage-stats module) asks the Azure and AWS metadata
# address which cloud it is on, with usage stats disabled too
# (ray/dashboard/modules/usage_stats/usage_stats_head.py `run`); Ray has no setting to
# turn this off. The guard refuses both requests before anything is sent.
UPSTREAM_PROBES = {
    ("ray/_common/usage/usage_lib.py", "get_cloud_from_metadata_requests"): (
        "Ray dashboard's cloud-provider probe (usage_lib.get_cloud_from_metadata_requests)"
    ),
}


def upstream_probe(entry: dict[str, Any]) -> str | None:
    """What a recorded refusal is when a dependency's fixed behaviour made it, else None."""
    for frame in entry.get("where", []):
        path, _, func = frame.rpartition(" ")
        for (suffix, name), what in UPSTREAM_PROBES.items():
            if func == name and path.rsplit(":", 1)[0].endswith(suffix):
                return what
    return None


def _record(log_path: str, event: str, address: Any) -> None:
    frames = traceback.extract_stack()[:-2]
    entry = {
        "pid": os.getpid(),
        "argv": sys.argv[:3],
        "event": event,
        "address": repr(address),
        "where": [f"{f.filename}:{f.lineno} {f.name}" for f in frames],
    }
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def install(log_path: str | None = None) -> None:
    """Installs the guard in this process (once; audit hooks cannot be removed)."""
    global _installed
    path = log_path or os.environ.get(ENV)
    if _installed or not path:
        return
    _installed = True
    busy = False  # the hook's own file write must not re-enter it

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal busy
        if event not in _EVENTS or busy:
            return
        sock, address = args[0], args[-1]
        if event == "socket.sendmsg":
            address = args[-1]
            if address is None:  # sendmsg on a connected socket: connect was checked
                return
        try:
            family = sock.family
        except Exception:
            family = -1
        if allowed(family, address):
            return
        busy = True
        try:
            _record(path, event, address)
        finally:
            busy = False
        raise PermissionError(f"smartray net guard: {event} to {address!r} refused (not loopback)")

    sys.addaudithook(hook)


def refusals(log_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The attempts recorded in a guard log, oldest first."""
    p = Path(log_path)
    if not p.exists():
        return []
    return [json.loads(line) for line in _lines(p)]


def _lines(p: Path) -> Iterator[str]:
    with p.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line
