"""Retries of the artifact client's HTTP calls: urllib3's ``Retry``, mounted on the session's adapter.

As twine mounts it (``twine/utils.py`` ``make_requests_session``: ``HTTPAdapter(max_retries=
urllib3.Retry(...))``), urllib3 decides what is retried (statuses, methods, dropped connections,
timeouts), counts the attempts and reads Retry-After. ``CallRetry`` adds what an upload needs on
top: one log line per retry that names the call (never its URL: a signed URL's query is a
credential), pauses capped at ``max_delay``, and no pause or attempt past the upload's deadline.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, InvalidHeader, MaxRetryError, ReadTimeoutError, SSLError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from converter.errors import shorten
from converter.github import deadline

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# POST is retried as well as PUT and GET: every call of the upload can be sent twice. actions/toolkit
# retries each Twirp call the same way (artifact-twirp-client.ts, retryableRequest); CreateArtifact
# for a name not yet finalized starts that upload again; FinalizeArtifact checks the size and hash
# of what was committed; Put Block and Put Block List with the same block ids replace what they wrote.
RETRY_METHODS = frozenset({"GET", "PUT", "POST"})


@dataclass(frozen=True)
class Call:
    """One call of the upload, as its retries log it and bound it."""

    what: str  # "Put Block 2 of 3": what the log and the error name
    where: str  # the URL without its query
    log: Callable[[str], None]
    retries: int  # how many retries the call may take
    max_delay: float  # the longest pause before a retry, Retry-After included
    ends: float  # monotonic time by which the whole upload must be done
    upload_deadline: float  # seconds the whole upload may take, for the message


class UploadTooSlow(Exception):
    """The upload's deadline passed between two attempts; ``failure`` is the last attempt's."""

    def __init__(self, call: Call, failure: str) -> None:
        super().__init__(f"the upload took longer than {call.upload_deadline:g} s (last attempt: {failure})")


class CallRetry(Retry):
    """urllib3's Retry for one call, logging each retry and keeping the upload within its deadline."""

    RETRY_AFTER_STATUS_CODES = RETRY_STATUSES  # urllib3 also retries 413 when it has Retry-After

    def __init__(self, *args: Any, call: Call | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call = call
        self.pause = 0.0

    @classmethod
    def for_call(cls, call: Call, backoff: float) -> CallRetry:
        return cls(
            total=call.retries,
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff,  # 0, then 2, 4, 8... times it (urllib3's backoff), plus the jitter
            backoff_max=call.max_delay,
            backoff_jitter=backoff,  # so that parallel matrix jobs do not retry in step
            raise_on_status=False,  # the last answer is returned: its status and message name the failure
            call=call,
        )

    def new(self, **kw: Any) -> CallRetry:
        retry = super().new(**kw)
        retry.call = self.call
        return retry

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> CallRetry:
        """The Retry for the next attempt; urllib3 raises MaxRetryError once the attempts are spent."""
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        assert self.call is not None, "CallRetry.for_call makes the Retry of a call"
        failure = describe_answer(response) if response is not None else describe_error(error)
        retry.pause = min(self.call.max_delay, _pause(retry, response))
        if time.monotonic() + retry.pause >= self.call.ends:
            if response is not None:
                response.close()  # not drained: it may be the trickle that used the time up
            raise UploadTooSlow(self.call, failure)
        self.call.log(
            f"{self.call.what}: {failure}; retry {len(retry.history)} of {self.call.retries} in {retry.pause:.1f} s"
        )
        return retry

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        time.sleep(self.pause)


def _pause(retry: Retry, response: BaseHTTPResponse | None) -> float:
    """Seconds before the next attempt: the server's Retry-After, else urllib3's backoff."""
    retry_after = response.headers.get("Retry-After") if response is not None else None
    if retry_after:
        try:
            return retry.parse_retry_after(retry_after)
        except InvalidHeader:
            pass  # neither seconds nor an HTTP date: our own backoff
    return retry.get_backoff_time()


def describe_answer(response: BaseHTTPResponse) -> str:
    """``HTTP 503 (unavailable: injected fault)`` from an answer urllib3 will retry."""
    try:
        text = response.read(2000, decode_content=True).decode("utf-8", "replace")
    except Exception:
        text = ""
    return f"HTTP {response.status}{error_detail(text)}"


# The names requests gives these urllib3 errors, which the log has always shown.
_REQUESTS_NAMES = ((ConnectTimeoutError, "ConnectTimeout"), (ReadTimeoutError, "ReadTimeout"), (SSLError, "SSLError"))


def describe_error(error: BaseException | None) -> str:
    """One line for a failed attempt: ``Timeout: no complete answer within 1 s`` when the attempt's
    deadline cut it (deadline.py), else the error's name as requests gives it and its message."""
    cut = deadline.last_attempt_cut()
    if cut is not None:
        return f"Timeout: no complete answer within {cut:g} s"
    if isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    if isinstance(error, requests.RequestException) and error.args and isinstance(error.args[0], MaxRetryError):
        return describe_error(error.args[0])
    if isinstance(error, requests.RequestException):
        name = type(error).__name__
    else:
        name = next((label for kind, label in _REQUESTS_NAMES if isinstance(error, kind)), "ConnectionError")
    return f"{name}: {shorten(without_query(str(error)), 160)}"


def error_detail(text: str) -> str:
    """Twirp's {"code", "msg"} or Azure's <Code>, when the body has them."""
    try:
        body = json.loads(text)
        if isinstance(body, dict) and (body.get("msg") or body.get("code")):
            return f" ({body.get('code', '')}: {shorten(str(body.get('msg', '')), 160)})"
    except ValueError:
        pass
    if "<Code>" in text:
        return f" ({text.split('<Code>', 1)[1].split('</Code>', 1)[0]})"
    return ""


def without_query(text: str) -> str:
    # requests and urllib3 put the URL, signature included, into some exception messages.
    return re.sub(r"\?\S*", "", text)


class _NoRetryWarnings(logging.Filter):
    """urllib3 logs each retry as a warning with the URL, whose query (a signed URL's) is a
    credential; CallRetry logs its own line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "__urllib3-retry-warning")


def quiet_urllib3_retry_warnings() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _NoRetryWarnings) for f in logger.filters):
        logger.addFilter(_NoRetryWarnings())
