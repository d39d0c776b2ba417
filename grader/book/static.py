"""Serve the built site over HTTP with the standard library (``grader serve`` / ``make serve``).

:func:`make_server` binds the socket and returns the server without serving, so callers (the
CLI, tests) can read the bound address first; :func:`serve` does both and blocks. Requests are
logged through :mod:`logging` (logger ``grader.book.static``), never printed.
"""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from grader.errors import UsageError
from grader.settings import Settings

__all__ = ["SiteHandler", "make_server", "serve", "url"]

logger = logging.getLogger(__name__)


class SiteHandler(SimpleHTTPRequestHandler):
    """Static files from one directory; access lines go to the ``grader.book.static`` logger."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), format % args)


def make_server(settings: Settings) -> ThreadingHTTPServer:
    """A server for ``settings.site_dir`` bound to ``settings.host:settings.port`` (port 0: any free port).

    Raises:
        UsageError: the site has not been built, or the address cannot be bound.
    """
    site = settings.site_dir
    if not (site / "index.html").is_file():
        raise UsageError(f"no site at {site}: run `grader book` (or `make serve`) first")
    handler = functools.partial(SiteHandler, directory=str(site))
    try:
        server = ThreadingHTTPServer((settings.host, settings.port), handler)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {settings.host}:{settings.port} ({exc.strerror}); "
            "choose another port with --port or GRADER_PORT"
        ) from None
    server.daemon_threads = True
    return server


def url(server: ThreadingHTTPServer) -> str:
    """The address a browser should open for ``server``."""
    host, port = server.server_address[:2]
    shown = host if isinstance(host, str) else host.decode()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def serve(settings: Settings) -> None:
    """Serve the site until interrupted (Ctrl-C raises KeyboardInterrupt to the caller)."""
    with make_server(settings) as server:
        logger.info("serving the course at %s", url(server))
        server.serve_forever()
