"""Workflow commands: while the action runs, the runner acts on ours and on no other line.

Anything the action prints can carry text from the repository: a model file named
``m\\n::warning::...``, a manifest entry, an exception message, a model that prints (a TorchScript
``print`` in ``forward`` writes to our stdout). GitHub's runner acts on ``::name::`` at the start of
any line of a step's stdout or stderr and on the legacy ``##[name]`` anywhere in a line
(actions/runner src/Runner.Common/ActionCommand.cs), so escaping the strings we know of is not
enough. As GitHub recommends (docs.github.com, "Stopping and starting workflow commands"), the
action stops command processing with ``::stop-commands::<random token>`` before it does anything,
and every command of its own is written in one write: resume with the token, the command, stop
again with a new token. The values inside our commands are escaped by github-action-utils (``%``,
CR and LF as ``%25``, ``%0D``, ``%0A``), so a message cannot end its line.

Nothing resumes processing at the end: a traceback or a framework's exit message printed later is
inert too, and the stop lasts only for this step (the runner makes one command manager per step:
actions/runner src/Runner.Worker/Handlers/Handler.cs; act one handler per step).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterator

import github_action_utils as gha

from converter.child_process import Options
from converter.escape import printable

# How the action runs each conversion (converter/isolated.py): in a child process, whose stderr
# joins stdout as ours does (one_stream). Its output needs no filter: commands are stopped.
CHILD = Options(merge_stderr=True)

_lock = threading.Lock()
_token: str | None = None  # while commands are stopped: the token that resumes them


@contextlib.contextmanager
def commands_stopped() -> Iterator[None]:
    """The runner acts on no command printed in this block but the ones sent through this module."""
    global _token
    token = secrets.token_hex(16)
    with _lock:
        _write(f"::stop-commands::{token}\n")
        _token = token
    try:
        yield
    finally:
        with _lock:
            _token = None  # for the next run in this process (tests); the runner stays stopped


def error(message: str, title: str) -> None:
    _send(lambda: gha.error(message, title=title))


def warning(message: str, title: str) -> None:
    _send(lambda: gha.warning(message, title=title))


def notice(message: str, title: str) -> None:
    _send(lambda: gha.notice(message, title=title))


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """A collapsible group of log lines."""
    _send(lambda: gha.start_group(printable(title)))
    try:
        yield
    finally:
        _send(gha.end_group)


def log(message: str) -> None:
    """One line of progress for the log: one line, whatever the message holds."""
    print(printable(message), flush=True)


def one_stream() -> None:
    """Send stderr into stdout, so the runner reads what we print in the order it was written.

    The runner reads stdout and stderr through two pipes; a line on stderr could overtake the
    stop line on stdout, or slip into the moment a command of ours resumes processing.
    """
    try:
        out, err = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return  # not files (a test captures them): nothing reads them as two pipes
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(out, err)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)


def _send(emit: Callable[[], None]) -> None:
    global _token
    with _lock:
        text = _captured(emit)
        if _token is not None:
            stop = secrets.token_hex(16)
            text = f"::{_token}::\n{text}::stop-commands::{stop}\n"
            _token = stop
        _write(text)


def _captured(emit: Callable[[], None]) -> str:
    """What a github-action-utils call prints, so that the whole of it goes out in one write.

    Without properties it writes ``::group ::title``; GitHub's runner reads that, but act's
    pattern (``^::([^ ]+)( (.+))?::``, nektos/act pkg/runner/command.go) does not: drop the space.
    """
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        emit()
    return re.sub(r"^(::[a-z-]+) ::", r"\1::", buffer.getvalue())


def _write(text: str) -> None:
    # What others buffered goes out first, while commands are still stopped.
    sys.stderr.flush()
    sys.stdout.flush()
    sys.stdout.write(text)
    sys.stdout.flush()
