"""HTTP calls with a deadline for the whole call, however slowly the server answers.

requests' ``timeout`` bounds each socket operation, connect and every single read ("timeout is
not a time limit on the entire response download": requests docs, Advanced Usage, Timeouts;
psf/requests#7350), so a server that sends one byte every few seconds holds a call forever.
``DeadlineAdapter`` starts a watchdog thread per call; when the deadline passes, it shuts down the
sockets of the connections the call uses. The blocked read returns, urllib3 raises, and the
adapter raises ``requests.Timeout``, which the caller retries like any timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_calls = threading.local()  # .connections: those handed out to the call in flight on this thread


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose every call (headers and body) ends within ``deadline`` seconds."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # the client may shorten it per call (a bound on a whole upload)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """HTTPAdapter.send (requests.Session passes its options by keyword), and the body read."""
        connections: list[Any] = []
        done, expired = threading.Event(), threading.Event()
        seconds = self.deadline
        watchdog = threading.Thread(target=_watch, args=(connections, seconds, done, expired), daemon=True)
        _calls.connections = connections
        watchdog.start()
        try:
            response = super().send(request, *args, **kwargs)
            if not kwargs.get("stream"):
                response.content  # noqa: B018 (reads the body now, inside the deadline)
            return response
        except requests.RequestException as exc:
            if expired.is_set():
                raise requests.Timeout(f"no complete answer within {seconds:g} s", request=request) from exc
            raise
        finally:
            done.set()
            _calls.connections = None


def _watch(connections: list[Any], seconds: float, done: threading.Event, expired: threading.Event) -> None:
    if done.wait(seconds):
        return
    expired.set()
    while not done.is_set():  # until the call gives up: a connection opened late is shut too
        for connection in list(connections):
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    # socket.socket's own shutdown: SSLSocket's would also drop its TLS state
                    # under the thread that is reading.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
        done.wait(0.05)


def _track(connection: Any) -> Any:
    tracked = getattr(_calls, "connections", None)
    if tracked is not None:
        tracked.append(connection)
    return connection


class _TrackedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))


class _TrackedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _track(super()._get_conn(timeout))
