"""Open the weblog in headless Chromium and report what an analyst would see break.

Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
descriptors 3 and 4), so no Python package, no network port and no browser
download is needed: Debian's ``chromium`` is enough. Used by the end-to-end
weblog test, the page-weight benchmark and the README screenshots.

What is collected per page: console errors and uncaught exceptions, requests
that failed or answered >= 400, requests leaving the machine (the weblog must
work offline), images that did not decode, and every link; a crawl follows the
weblog's own pages and checks that every other link resolves.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urlparse

LOG = logging.getLogger(__name__)

#: Names of the Chromium executable, Debian's first.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium executable on PATH (Debian: ``apt-get install chromium``), or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    """Chromium could not be started or stopped answering."""


@dataclass
class PageReport:
    """What loading one page showed."""

    url: str
    load_s: float = 0.0  # wall time from navigation to the load event
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    missing_anchors: list[str] = field(default_factory=list)  # '#id' links with no such id
    links: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return ([f"{self.url}: console error: {m}" for m in self.console_errors]
                + [f"{self.url}: failed request: {m}" for m in self.failed_requests]
                + [f"{self.url}: external request: {m}" for m in self.external_requests]
                + [f"{self.url}: image not shown: {m}" for m in self.broken_images]
                + [f"{self.url}: link to a missing anchor: #{m}" for m in self.missing_anchors])


class HeadlessChromium:
    """A headless Chromium with one page, driven over the DevTools pipe.

    Use as a context manager: ``with HeadlessChromium() as b: b.load(url)``.
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900,
                 timeout_s: float = 60.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found on PATH (Debian/Ubuntu: apt-get install -y chromium)")
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self._proc: subprocess.Popen | None = None
        self._profile: str | None = None
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session = ""

    # -- process and protocol ------------------------------------------------
    def __enter__(self) -> "HeadlessChromium":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start Chromium with the DevTools pipe on fds 3 (commands) and 4 (answers)."""
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        self._profile = tempfile.mkdtemp(prefix="solarpipe-chromium-")

        def _child_fds() -> None:  # runs in the child between fork and exec
            hi_r, hi_w = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [self.executable, "--headless=new", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--mute-audio", "--hide-scrollbars",
                f"--window-size={self.width},{self.height}", f"--user-data-dir={self._profile}",
                "about:blank"]
        self._proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=_child_fds,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                         "deviceScaleFactor": 1, "mobile": False})

    def close(self) -> None:
        """Stop Chromium (by its own process id) and remove its temporary profile."""
        if self._proc is not None:
            try:
                self.call("Browser.close", session=False, timeout_s=5)
            except (BrowserError, OSError):
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._proc = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (it exited)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout_s: float | None = None) -> dict[str, Any]:
        """Send one DevTools command and return its result; events seen meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self._session:
            msg["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            if "method" in answer:
                self._events.append(answer)

    def _wait_event(self, method: str, deadline: float) -> dict[str, Any]:
        for i, ev in enumerate(self._events):
            if ev["method"] == method:
                return self._events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method:
                return ev
            if "method" in ev:
                self._events.append(ev)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        out = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        if "exceptionDetails" in out:
            raise BrowserError(f"{expression[:60]}...: {out['exceptionDetails'].get('text')}")
        return out["result"].get("value")

    # -- pages -----------------------------------------------------------------
    def load(self, url: str) -> PageReport:
        """Load ``url``, wait for its load event, and report errors, requests, images, links."""
        self._events.clear()
        report = PageReport(url=url)
        t0 = time.monotonic()
        nav = self.call("Page.navigate", {"url": url})
        if nav.get("errorText"):
            report.failed_requests.append(f"{url} ({nav['errorText']})")
            return report
        self._wait_event("Page.loadEventFired", t0 + self.timeout_s)
        report.load_s = time.monotonic() - t0
        state = self.evaluate(
            "({images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.currentSrc || i.src),"
            " links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),"
            " anchors: Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href')"
            ".slice(1)).filter(id => id && !document.getElementById(id))})")
        report.broken_images = state["images"]
        report.missing_anchors = state["anchors"]
        report.links = state["links"]
        self._collect_events(report)
        return report

    def _collect_events(self, report: PageReport) -> None:
        """Turn the DevTools events of one page load into the report's lists."""
        urls: dict[str, str] = {}
        for ev in self._events:
            method, p = ev["method"], ev.get("params", {})
            if method == "Network.requestWillBeSent":
                url = p["request"]["url"]
                urls[p["requestId"]] = url
                if urlparse(url).scheme in ("http", "https", "ws", "wss") and not _is_loopback(url):
                    report.external_requests.append(url)
            elif method == "Network.loadingFailed":
                report.failed_requests.append(f"{urls.get(p['requestId'], '?')} ({p.get('errorText')})")
            elif method == "Network.responseReceived" and p["response"].get("status", 200) >= 400:
                report.failed_requests.append(f"{p['response']['url']} (HTTP {p['response']['status']})")
            elif method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                report.console_errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                report.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                      for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                report.console_errors.append(p["entry"].get("text", ""))
        self._events.clear()

    def screenshot(self, url: str, path: str | Path, height: int | None = None) -> Path:
        """A PNG of ``url`` at the browser width: the whole page, or its top ``height`` pixels."""
        self.load(url)
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": self.width, "height": min(full, height or full), "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                    "captureBeyondViewport": True})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


def _is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


@dataclass
class WeblogCheck:
    """The outcome of crawling a weblog: every page loaded and every link checked."""

    pages: dict[str, PageReport] = field(default_factory=dict)
    broken_links: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [p for r in self.pages.values() for p in r.problems] + self.broken_links


def crawl_weblog(browser: HeadlessChromium, index_url: str, max_pages: int = 500) -> WeblogCheck:
    """Load the index and every weblog page reachable from it; check every other link.

    Pages are the ``.html`` links below the index's directory; any other link
    (plots, listobs, logs) must resolve: an existing file for ``file://``, an
    HTTP 200 for a served weblog. External links are problems (offline weblog).
    """
    base = index_url.rsplit("/", 1)[0] + "/"
    check = WeblogCheck()
    queue: deque[str] = deque([index_url])
    seen_links: set[str] = set()
    while queue and len(check.pages) < max_pages:
        url = queue.popleft()
        if url in check.pages:
            continue
        report = browser.load(url)
        check.pages[url] = report
        for link in report.links:
            target, _ = urldefrag(link)
            if target in seen_links or target in check.pages:
                continue
            seen_links.add(target)
            if urlparse(target).scheme in ("http", "https") and not _is_loopback(target):
                check.broken_links.append(f"{url}: external link {target}")
            elif target.startswith(base) and target.endswith(".html"):
                queue.append(target)
            elif not _resolves(target):
                check.broken_links.append(f"{url}: broken link {target}")
    return check


def _resolves(url: str) -> bool:
    """True if a file:// URL names an existing file or a loopback http URL answers 200."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)).exists()
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback only
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False
