"""Serve a weblog over HTTP on the loopback interface (``solarpipe weblog --serve``).

The weblog works from the file system; a local server is for browsers that
restrict file:// pages, or to look at a weblog on a remote machine through an
SSH tunnel. Only 127.0.0.1 is bound: nothing is exposed to the network.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

LOG = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files of one directory; requests go to the debug log, not to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("weblog server: " + format, *args)


def weblog_server(weblog_dir: str | Path, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for ``weblog_dir`` on 127.0.0.1 (port 0: a free port is chosen).

    The caller runs ``serve_forever()`` (or in a thread) and ``server_close()``;
    ``server.server_address[1]`` is the port actually bound.
    """
    handler = functools.partial(_QuietHandler, directory=str(Path(weblog_dir).resolve()))
    return ThreadingHTTPServer((LOOPBACK, int(port)), handler)


def server_url(server: ThreadingHTTPServer) -> str:
    """The URL of the weblog's index on a running server."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/index.html"


@contextlib.contextmanager
def serving(weblog_dir: str | Path, port: int = 0) -> Iterator[str]:
    """Serve ``weblog_dir`` from a background thread for the duration of a ``with``
    block; yields the index URL (for tests and scripts; the CLI serves in the foreground)."""
    server = weblog_server(weblog_dir, port)
    thread = threading.Thread(target=server.serve_forever, name="weblog-server", daemon=True)
    thread.start()
    try:
        yield server_url(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
