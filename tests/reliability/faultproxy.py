"""A small fault-injecting HTTP proxy for S3 on loopback (issue #17, DESIGN.md "Testing").

It listens on 127.0.0.1, forwards each HTTP/1.1 request to the upstream server (SeaweedFS)
unchanged (the Host header too, so SigV4 signatures stay valid) and relays the reply,
unless a `Rule` matches the request's method and path. Faults:

- `drop_reply`: the request reaches the server (a commit lands), then the client's
  connection is closed without the reply;
- `status`: answered at once with `status` (503 SlowDown by default), not forwarded;
- `cut`: the request head and `cut_after` bytes of its body are forwarded, then both
  connections are closed (a connection cut mid-write);
- `delay`: the reply is held `delay_s` seconds before it is sent (a slow read).

A rule applies to the matching requests after the first `skip`, `times` of them (-1: all),
each with probability `p` drawn from the proxy's seeded generator. Every request is
logged with what was done to it.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ACTIONS = ("drop_reply", "status", "cut", "delay")


@dataclass
class Rule:
    """One fault, matched on method (`*`: any) and a regex searched in the path + query."""

    method: str
    path: str
    action: str
    times: int = 1
    skip: int = 0
    p: float = 1.0
    status: int = 503
    cut_after: int = 0
    delay_s: float = 0.0
    seen: int = 0
    applied: int = 0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action {self.action!r}: one of {ACTIONS}")

    def matches(self, method: str, target: str) -> bool:
        return self.method in ("*", method) and re.search(self.path, target) is not None


@dataclass
class Logged:
    method: str
    target: str
    action: str  # "forward" or the fault
    status: int | None = None


@dataclass
class _Message:
    head: bytes
    first: str  # request or status line
    headers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


class FaultProxy:
    """Runs in a thread of its own; `endpoint` is what clients use instead of the server's.

    Args:
        upstream: The server's endpoint, `http://127.0.0.1:PORT`.
        seed: Seeds the draws of rules with `p < 1`.
    """

    def __init__(self, upstream: str, seed: int = 0):
        u = urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.rng = random.Random(seed)
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # -- control (from the test's thread) -------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        fut.result(timeout=10)
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_rules(self, rules: list[Rule], seed: int | None = None) -> None:
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self.rng = random.Random(seed)

    def faults(self, since: int = 0) -> list[Logged]:
        """The requests a rule applied to, from log entry `since` on."""
        with self._lock:
            return [e for e in self.log[since:] if e.action != "forward"]

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:  # held replies (`delay`) among them
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # -- the proxy ----------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _choose(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, target):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip or (0 <= rule.times <= rule.applied):
                    continue
                if rule.p < 1 and self.rng.random() >= rule.p:
                    continue
                rule.applied += 1
                return rule
        return None

    def _record(self, entry: Logged) -> None:
        with self._lock:
            self.log.append(entry)

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await _read_head(cr)
                if req is None:
                    break
                if not await self._one(req, cr, cw):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            cw.close()

    async def _one(self, req: _Message, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> bool:
        """Handles one request; False once the client connection must be closed."""
        method, target, _ = req.first.split(" ", 2)
        rule = self._choose(method, target)
        entry = Logged(method, target, rule.action if rule else "forward")
        self._record(entry)
        if (req.header("expect") or "").lower() == "100-continue":
            req = _without(req, "expect")
            if rule is None or rule.action != "status":
                cw.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await cw.drain()
        if rule is not None and rule.action == "status":
            await _skip_body(req, cr)
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                b"<Message>Please reduce your request rate.</Message></Error>"
            )
            reason = {503: "Service Unavailable", 500: "Internal Server Error"}.get(
                rule.status, "Error"
            )
            cw.write(
                f"HTTP/1.1 {rule.status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await cw.drain()
            entry.status = rule.status
            return True
        ur, uw = await asyncio.open_connection(*self.upstream)
        try:
            uw.write(req.head)
            if rule is not None and rule.action == "cut":
                await _copy_body(req, cr, uw, limit=rule.cut_after)
                await uw.drain()
                return False  # both connections close mid-body
            await _copy_body(req, cr, uw)
            await uw.drain()
            resp = await _read_head(ur)
            if resp is None:
                return False
            entry.status = int(resp.first.split(" ", 2)[1])
            chunks: list[bytes] = []
            close_after = await _read_body(resp, ur, chunks, head_only=method == "HEAD")
            if rule is not None and rule.action == "drop_reply":
                return False  # the server did it; the client never hears
            if rule is not None and rule.action == "delay":
                await asyncio.sleep(rule.delay_s)
            cw.write(resp.head + b"".join(chunks))
            await cw.drain()
            return not close_after
        finally:
            uw.close()


async def _read_head(r: asyncio.StreamReader) -> _Message | None:
    try:
        head = await r.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return _Message(head, lines[0], headers)


def _without(msg: _Message, name: str) -> _Message:
    headers = [(k, v) for k, v in msg.headers if k.lower() != name]
    head = "\r\n".join([msg.first, *(f"{k}: {v}" for k, v in headers)]) + "\r\n\r\n"
    return _Message(head.encode("latin-1"), msg.first, headers)


async def _copy_body(
    msg: _Message, r: asyncio.StreamReader, w: asyncio.StreamWriter, limit: int | None = None
) -> None:
    """Copies a request body (Content-Length or chunked) from `r` to `w`, or its first
    `limit` bytes."""
    chunks: list[bytes] = []
    await _read_body(msg, r, chunks, head_only=False, request=True, limit=limit)
    data = b"".join(chunks)
    w.write(data if limit is None else data[:limit])


async def _skip_body(msg: _Message, r: asyncio.StreamReader) -> None:
    await _read_body(msg, r, [], head_only=False, request=True)


async def _read_body(
    msg: _Message,
    r: asyncio.StreamReader,
    out: list[bytes],
    *,
    head_only: bool,
    request: bool = False,
    limit: int | None = None,
) -> bool:
    """Reads a message body into `out` as raw bytes; True if the body ends at EOF (the
    connection cannot be reused)."""
    if head_only:
        return False
    if not request:
        code = int(msg.first.split(" ", 2)[1])
        if code < 200 or code in (204, 304):
            return False
    te = (msg.header("transfer-encoding") or "").lower()
    if "chunked" in te:
        got = 0
        while True:
            size_line = await r.readuntil(b"\r\n")
            out.append(size_line)
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await r.readuntil(b"\r\n")
                    out.append(line)
                    if line == b"\r\n":
                        return False
            data = await r.readexactly(size + 2)
            out.append(data)
            got += len(size_line) + len(data)
            if limit is not None and got >= limit:
                return True
    length = msg.header("content-length")
    if length is not None:
        n = int(length)
        if limit is not None:
            n = min(n, limit)
        if n:
            out.append(await r.readexactly(n))
        return False
    if request:
        return False
    out.append(await r.read())
    return True
