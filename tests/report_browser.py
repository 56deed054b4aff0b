"""A page in a real headless Chromium (Debian's ``chromium``), driven over the DevTools protocol
through ``--remote-debugging-pipe``: no websocket library, no port, standard library only.

``load_page`` opens a file, waits for its load event and returns what a person would have seen:
console errors, uncaught exceptions, CSP violations, requests that left the machine, dialogs
(``alert``), and a full-page screenshot; ``Page.evaluate`` runs JavaScript in it.

Also a script: ``python tests/report_browser.py RUN_FOLDER docs/report.png`` screenshots the run's
``report.html`` (its top: overview and the first charts) for the README.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: a message or event that does not come within this many seconds means the browser is stuck
TIMEOUT_S = 30.0
LOCAL_SCHEMES = ("file:", "data:", "about:")


def chromium_binary() -> str | None:
    """Debian's ``chromium`` (or a ``chromium-browser`` / ``google-chrome`` on the PATH)."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@dataclass
class PageLoad:
    """What happened while a page loaded and was used."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class Page:
    """One Chromium tab over the DevTools protocol (messages are JSON ending in a NUL byte, sent on
    the browser's fd 3 and read from its fd 4)."""

    def __init__(self, binary: str, width: int, height: int, profile: Path):
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        self._stderr = (profile / "stderr.txt").open("wb")
        arguments = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", "--force-device-scale-factor=1", "about:blank",
        ]
        actions = [
            (os.POSIX_SPAWN_DUP2, commands_read, 3), (os.POSIX_SPAWN_DUP2, replies_write, 4),
            (os.POSIX_SPAWN_DUP2, self._stderr.fileno(), 1), (os.POSIX_SPAWN_DUP2, self._stderr.fileno(), 2),
        ]
        self._pid = os.posix_spawn(binary, arguments, os.environ, file_actions=actions)
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self.load = PageLoad()
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method in the tab (``Target.*`` on the browser) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None and not method.startswith("Target."):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda received: received.get("id") == message["id"])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def navigate(self, url: str) -> None:
        """Open ``url`` and wait for its load event."""
        self.send("Page.navigate", url=url)
        self._wait(lambda received: received.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        """A PNG of the whole page (the viewport grown to the page's height first)."""
        width = self.evaluate("document.documentElement.scrollWidth")
        height = self.evaluate("document.documentElement.scrollHeight")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        return base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, RuntimeError, TimeoutError, EOFError):
            os.kill(self._pid, 9)
        os.waitpid(self._pid, 0)
        for descriptor in (self._commands, self._replies):
            os.close(descriptor)
        self._stderr.close()

    def _wait(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read messages until ``wanted`` accepts one, recording the events read on the way."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError(f"Chromium did not answer within {TIMEOUT_S} s; its output:\n{self._output()}")
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise EOFError(f"Chromium closed the DevTools pipe; its output:\n{self._output()}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            message = json.loads(raw)
            if wanted(message):
                return message
            self._record(message)

    def _output(self, characters: int = 3000) -> str:
        """The end of what Chromium printed, for an error message."""
        self._stderr.flush()
        return Path(self._stderr.name).read_text(errors="replace")[-characters:]

    def _record(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.load.console_errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.load.console_errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.load.console_errors.append(params["entry"]["text"])  # CSP violations, failed loads
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(LOCAL_SCHEMES):
            self.load.outside_requests.append(params["request"]["url"])
        elif method == "Page.javascriptDialogOpening":
            self.load.dialogs.append(params.get("message", ""))
            self.send("Page.handleJavaScriptDialog", accept=True)


class open_page:
    """``with open_page(path) as page:`` a file loaded in headless Chromium, closed afterwards."""

    def __init__(self, path: Path, width: int = 1280, height: int = 900):
        self.path, self.width, self.height = Path(path).resolve(), width, height

    def __enter__(self) -> Page:
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("no chromium on the PATH (make chromium installs Debian's)")
        self._profile = tempfile.TemporaryDirectory(prefix="rft-chromium-")
        self.page = Page(binary, self.width, self.height, Path(self._profile.name))
        try:
            self.page.navigate(self.path.as_uri())
            self.page.evaluate("document.fonts.ready.then(() => true)")
        except BaseException:
            self.__exit__()
            raise
        return self.page

    def __exit__(self, *exc_info: Any) -> None:
        self.page.close()
        self._profile.cleanup()


def screenshot_for_readme(run_folder: Path, png: Path, height: int = 1150, colours: int = 128) -> Path:
    """The top of a run's report (overview and the first charts), with its colours reduced so the
    PNG stays small enough to commit."""
    import io

    from PIL import Image

    with open_page(run_folder / "report.html") as page:
        shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    top = shot.crop((0, 0, shot.width, min(height, shot.height)))
    top.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(png, optimize=True)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/report_browser.py RUN_FOLDER OUTPUT.png")
    print(screenshot_for_readme(Path(sys.argv[1]), Path(sys.argv[2])))
