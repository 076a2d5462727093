"""HTTP calls whose every attempt ends by a deadline, however slowly the server answers.

requests' ``timeout`` bounds each socket operation, connect and every single read ("timeout is
not a time limit on the entire response download": requests docs, Advanced Usage, Timeouts;
psf/requests#7350), so a server that sends one byte every few seconds holds a call forever.

urllib3 retries a call inside one ``HTTPAdapter.send`` (the adapter's ``max_retries``, a Retry),
so the deadline is per attempt: an attempt starts when it takes a connection from the pool, and a
watchdog thread shuts that connection's socket down when the deadline passes. The blocked read
returns, urllib3 raises, and the Retry retries it like any dropped connection; ``last_attempt_cut``
tells it (and the caller) that it was the deadline. The attempt ends when the next one starts or
when ``send`` has read the body, which it does inside the deadline; a body cut short is retried
through the same Retry.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError

_calls = threading.local()  # .adapter: the adapter whose call runs on this thread; .attempt: its attempt


class _Attempt:
    """One attempt's watchdog: it shuts the attempt's connection down once ``seconds`` have passed."""

    def __init__(self, connection: Any, seconds: float) -> None:
        self.seconds = seconds
        self.done, self.expired = threading.Event(), threading.Event()
        self.watchdog = threading.Thread(target=self._watch, args=(connection,), daemon=True)
        self.watchdog.start()

    def _watch(self, connection: Any) -> None:
        if self.done.wait(self.seconds):
            return
        self.expired.set()
        while not self.done.is_set():  # until the attempt gives up: a socket opened late is shut too
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    # socket.socket's own shutdown: SSLSocket's would also drop its TLS state
                    # under the thread that is reading.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            self.done.wait(0.05)

    def end(self) -> None:
        self.done.set()
        self.watchdog.join()  # no shutdown after this: the pool may hand the connection out again


def last_attempt_cut() -> float | None:
    """The deadline, in seconds, that cut the last attempt on this thread; None if none did."""
    attempt = getattr(_calls, "attempt", None)
    return attempt.seconds if attempt is not None and attempt.expired.is_set() else None


def _start_attempt(connection: Any) -> Any:
    adapter = getattr(_calls, "adapter", None)
    if adapter is not None:
        _calls.attempt = _Attempt(connection, max(0.0, min(adapter.deadline, adapter.ends - time.monotonic())))
    return connection


def _end_attempt() -> None:
    attempt = getattr(_calls, "attempt", None)
    if attempt is not None:
        attempt.end()


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose every attempt (headers and body) ends within ``deadline`` seconds,
    and by ``ends`` (monotonic time) at the latest."""

    def __init__(self, deadline: float, max_retries: Any = 0) -> None:
        self.deadline = deadline
        self.ends = math.inf  # the client sets it for an upload: every attempt ends by then
        super().__init__(max_retries=max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """HTTPAdapter.send (requests.Session passes its options by keyword), and the body read."""
        _calls.adapter, _calls.attempt = self, None
        retry = self.max_retries
        try:
            while True:
                response = super().send(request, *args, **kwargs)
                try:
                    if not kwargs.get("stream"):
                        response.content  # noqa: B018 (reads the body now, inside the attempt's deadline)
                    return response
                except requests.RequestException as exc:  # a body cut short, or cut at the deadline
                    response.close()
                    self.max_retries = _retry_body(response, request, exc)
        finally:
            _end_attempt()
            _calls.adapter = None
            self.max_retries = retry


def _retry_body(response: requests.Response, request: requests.PreparedRequest, error: Exception) -> Any:
    """The Retry for the attempt after one whose body failed, after its pause: the same Retry
    (counts, pauses, log) as every other retry of the call."""
    retries = response.raw.retries
    if retries is None:  # the adapter retries nothing
        raise error
    try:
        retry = retries.increment(request.method, request.url, error=error)
    except MaxRetryError as exc:
        raise requests.ConnectionError(exc, request=request) from error
    retry.sleep()
    return retry


class _DeadlineHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        # The attempt before this one (of this call) failed: this is its retry. It ends before the
        # pool checks the connection it hands out, so that no shutdown can follow that check.
        _end_attempt()
        return _start_attempt(super()._get_conn(timeout))


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        _end_attempt()
        return _start_attempt(super()._get_conn(timeout))
