"""Open an HTML page in Debian's headless Chromium and see what it loaded and drew.

Driven over the Chrome DevTools Protocol with aiohttp's websocket client (installed with
Ray): no browser package from PyPI. `check_page(html, png)` starts Chromium with a
throw-away profile, records every request the page makes (`Network.requestWillBeSent`),
waits for it to load and its images to decode, asks the page what it shows, saves a
full-page screenshot, and always kills Chromium.

What the page is asked (the report's markup): images in `.batch-grid`, and for each
`.plot` whether it drew (an `<svg>` with a non-empty box and drawn paths, or an `<img>`
that decoded).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

MISSING = (
    "Chromium is not installed (no `chromium` on PATH nor /usr/bin/chromium): `make test` "
    "installs it (apt-get install chromium)"
)
LOCAL_SCHEMES = ("file:", "data:", "about:")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
    "--remote-debugging-port=0", "--window-size=1280,900", "--hide-scrollbars",
)  # fmt: skip

# Runs in the page once it has loaded: waits for every image to decode, then reports.
PROBE = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const loaded = i => i.complete && i.naturalWidth > 0;
  const batch = [...document.querySelectorAll('.batch-grid img')];
  const plots = {};
  for (const el of document.querySelectorAll('.plot')) {
    const svg = el.querySelector('svg'), img = el.querySelector('img');
    let drawn = false;
    if (svg) {
      const box = svg.getBoundingClientRect();
      const paths = [...svg.querySelectorAll('path')].filter(p => p.getAttribute('d'));
      drawn = box.width > 0 && box.height > 0 && paths.length > 0;
    } else if (img) {
      drawn = loaded(img);
    }
    plots[el.id || `plot-${Object.keys(plots).length}`] = drawn;
  }
  return {title: document.title, images: imgs.length, images_loaded: imgs.filter(loaded).length,
          batch_images: batch.length, batch_loaded: batch.filter(loaded).length, plots};
})()"""


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or did not load the page in time."""


@dataclass(frozen=True)
class PageCheck:
    """What the page loaded and drew in Chromium.

    Attributes:
        title: The document's title.
        requests: Every URL the page requested, in order (data: URIs cut short).
        images: `<img>` elements on the page; images_loaded: those that decoded.
        batch_images: `<img>` in `.batch-grid`; batch_loaded: those that decoded.
        plots: Each `.plot`'s id -> whether it drew.
        screenshot: The full-page PNG.
    """

    title: str
    requests: list[str]
    images: int
    images_loaded: int
    batch_images: int
    batch_loaded: int
    plots: dict[str, bool]
    screenshot: Path

    @property
    def remote_requests(self) -> list[str]:
        """Requests other than `file:`, `data:` and `about:` URLs."""
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


def chromium() -> str:
    """The Chromium binary.

    Raises:
        BrowserError: it is not installed (the message says `make test` installs it).
    """
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    if found is None:
        raise BrowserError(MISSING)
    return found


class _DevTools:
    """One websocket to the browser; page commands go to an attached flat session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.lifecycle: set[tuple[str, str]] = set()  # (loader id, event name) seen
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Network.requestWillBeSent":
                url = data["params"]["request"]["url"]
                self.requests.append(url[:80] if url.startswith("data:") else url)
            elif data.get("method") == "Page.lifecycleEvent":
                self.lifecycle.add((data["params"]["loaderId"], data["params"]["name"]))
        for future in self.pending.values():  # the browser went away
            if not future.done():
                future.set_exception(BrowserError("Chromium closed the DevTools connection"))

    async def send(self, method: str, session: str | None = None, **params: Any) -> Any:
        """Sends a command and returns its result.

        Raises:
            BrowserError: the command failed.
        """
        msg_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = future
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        answer = await future
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result", {})


async def _devtools_url(proc: asyncio.subprocess.Process, lines: deque[str]) -> str:
    assert proc.stderr is not None
    while raw := await proc.stderr.readline():
        line = raw.decode(errors="replace").strip()
        lines.append(line)
        if line.startswith("DevTools listening on "):
            return line.removeprefix("DevTools listening on ")
    tail = "\n".join(lines)
    raise BrowserError(f"Chromium exited ({await proc.wait()}) before DevTools listened:\n{tail}")


async def _drain(proc: asyncio.subprocess.Process, lines: deque[str]) -> None:
    assert proc.stderr is not None
    while raw := await proc.stderr.readline():  # a full pipe would stall Chromium
        lines.append(raw.decode(errors="replace").rstrip())


async def _check(html: Path, screenshot: Path, profile: str, procs: list[Any]) -> PageCheck:
    lines: deque[str] = deque(maxlen=40)
    proc = await asyncio.create_subprocess_exec(
        chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    procs.append(proc)
    url = await _devtools_url(proc, lines)
    drain = asyncio.create_task(_drain(proc, lines))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, max_msg_size=0) as ws,
    ):
        cdp = _DevTools(ws)
        target = (await cdp.send("Target.createTarget", url="about:blank"))["targetId"]
        session = (await cdp.send("Target.attachToTarget", targetId=target, flatten=True))[
            "sessionId"
        ]
        await cdp.send("Network.enable", session)
        await cdp.send("Page.enable", session)
        await cdp.send("Page.setLifecycleEventsEnabled", session, enabled=True)
        nav = await cdp.send("Page.navigate", session, url=html.resolve().as_uri())
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {html}: {nav['errorText']}")
        while (nav["loaderId"], "load") not in cdp.lifecycle:  # this document's load
            await asyncio.sleep(0.02)
        probe = await cdp.send(
            "Runtime.evaluate", session, expression=PROBE, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in probe:
            raise BrowserError(f"the page probe failed: {probe['exceptionDetails']}")
        seen = probe["result"]["value"]
        size = (await cdp.send("Page.getLayoutMetrics", session))["cssContentSize"]
        shot = await cdp.send(
            "Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        )  # fmt: skip
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        with contextlib.suppress(BrowserError, aiohttp.ClientError):
            await asyncio.wait_for(cdp.send("Browser.close"), 5)
        cdp.reader.cancel()
    drain.cancel()
    return PageCheck(
        title=seen["title"],
        requests=list(cdp.requests),
        images=seen["images"],
        images_loaded=seen["images_loaded"],
        batch_images=seen["batch_images"],
        batch_loaded=seen["batch_loaded"],
        plots=dict(seen["plots"]),
        screenshot=screenshot,
    )


def check_page(
    html_path: str | os.PathLike[str],
    screenshot_path: str | os.PathLike[str],
    *,
    timeout: float = 60,
) -> PageCheck:
    """Opens `html_path` in headless Chromium, saves a full-page PNG, says what loaded.

    Raises:
        BrowserError: Chromium is missing or failed, or the page took over `timeout` s.
    """
    html, screenshot = Path(html_path), Path(screenshot_path)
    procs: list[asyncio.subprocess.Process] = []

    async def bounded() -> PageCheck:
        try:
            return await asyncio.wait_for(_check(html, screenshot, profile, procs), timeout)
        except TimeoutError:
            raise BrowserError(
                f"Chromium did not load and draw {html} within {timeout} s"
            ) from None
        finally:
            for proc in procs:  # always: no Chromium process outlives the check
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its group: renderers, zygote, ...
                await proc.wait()

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return asyncio.run(bounded())
