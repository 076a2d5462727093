"""Run work in a forked child process, so that a native crash ends the child and not the caller.

A hostile or damaged model file can crash a framework's C++ code (a scikit-learn tree whose node
indices point past its arrays segfaults in predict: scikit-learn does not check them,
scikit-learn/scikit-learn#34558), and the kernel's OOM killer ends the process that holds the
model. Neither raises an exception: the process is gone, and with it the job summary, the
outputs and the annotation. So the shells fork before any framework is imported (the parent has
loaded only the converter's modules: fork is cheap) and the child does the work.

The child sends its messages as JSON lines over a pipe, never pickles: it has read a hostile file.
Its stdout and stderr (Python's and the C libraries') go through two more pipes and the parent
writes them to its own streams, optionally made inert line by line (``line_filter``). When the
child dies without finishing, ``run_in_child`` returns how (``Death``): the parent lives on.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import faulthandler
import io
import json
import os
import selectors
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

WAIT_SECONDS = 0.2  # how often the parent checks whether the child ended (a grandchild may hold the pipes)
MAX_LINE_CHARS = 64 * 1024  # a longer line is passed on in pieces, not held whole
MAX_MESSAGE_BYTES = 256 * 1024**2  # the child's messages are reports: far smaller
_DONE = "done"
_BUG = "bug"

OnMessage = Callable[[str, Any], None]
LineFilter = Callable[[str], str]


class ChildBugError(RuntimeError):
    """The child raised an exception its work did not handle: a bug, whose traceback the child printed."""


@dataclass(frozen=True)
class Death:
    """How a child ended before its work was done: killed by a signal, or an exit code."""

    signal: int | None = None
    exit_code: int | None = None

    def describe(self) -> str:
        """E.g. ``killed by SIGSEGV (Segmentation fault)``."""
        if self.signal is None:
            return f"exited with code {self.exit_code} before it finished"
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        text = f"killed by {name} ({signal.strsignal(self.signal) or 'unknown signal'})"
        if self.signal == signal.SIGKILL:
            text += ", which is how the kernel's out-of-memory killer ends a process"
        return text


class Channel:
    """The child's end of the message pipe: one JSON object per line."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def send(self, kind: str, value: Any = None) -> None:
        data = (json.dumps({"kind": kind, "value": value}) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]


def available() -> bool:
    """Whether this platform can fork (not Windows)."""
    return hasattr(os, "fork")


@dataclass(frozen=True)
class Options:
    """How the child's output reaches ours, and what it prints when it crashes."""

    line_filter: LineFilter | None = None  # applied to each line the child writes
    merge_stderr: bool = False  # the child's stderr goes to our stdout (the action writes one stream)
    debug: bool = False  # a crash prints the child's Python stack (faulthandler)


def run_in_child(work: Callable[[Channel], None], on_message: OnMessage, options: Options) -> Death | None:
    """Run ``work`` in a forked child; None when it finished, else how it died.

    ``on_message(kind, value)`` is called in the parent for each message the child sent, as it
    arrives. An exception that ``work`` does not handle is printed by the child and raised here as
    ``ChildBugError``.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write out what is buffered a second time
    control, out, err = os.pipe(), os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(work, control[1], out[1], err[1], options.debug)
    for _, write_end in (control, out, err):
        os.close(write_end)
    err_target = sys.stdout if options.merge_stderr else sys.stderr
    targets = {out[0]: _Relay(sys.stdout, options.line_filter), err[0]: _Relay(err_target, options.line_filter)}
    messages = _Messages(on_message)
    try:
        status = _relay_until_exit(pid, control[0], targets, messages)
    except BaseException:  # an interrupt, or on_message raised: the child must not outlive us
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    finally:
        for read_end in (control[0], out[0], err[0]):
            os.close(read_end)
    for relay in targets.values():
        relay.finish()
    if messages.bug is not None:
        raise ChildBugError(messages.bug)
    if messages.done and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    if os.WIFSIGNALED(status):
        return Death(signal=os.WTERMSIG(status))
    return Death(exit_code=os.waitstatus_to_exitcode(status))


def _relay_until_exit(pid: int, control: int, targets: dict[int, _Relay], messages: _Messages) -> int:
    """Pass on what the child writes until it has exited and its pipes are drained: its wait status."""
    selector = selectors.DefaultSelector()
    for fd in (control, *targets):
        selector.register(fd, selectors.EVENT_READ)
    status: int | None = None
    while selector.get_map():
        ready = selector.select(timeout=0 if status is not None else WAIT_SECONDS)
        if not ready and status is not None:
            break  # exited, and nothing left: a grandchild may hold the pipes open, do not wait for it
        for key, _ in ready:
            data = os.read(key.fd, 65536)
            if not data:
                selector.unregister(key.fd)
            elif key.fd == control:
                messages.feed(data)
            else:
                targets[key.fd].feed(data)
        if status is None:
            done_pid, done_status = os.waitpid(pid, os.WNOHANG)
            status = done_status if done_pid else None
    selector.close()
    if status is None:
        _, status = os.waitpid(pid, 0)
    return status


class _Messages:
    """The control pipe in the parent: complete JSON lines go to ``on_message``."""

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.pending = b""
        self.done = False
        self.bug: str | None = None

    def feed(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) > MAX_MESSAGE_BYTES:
            raise ChildBugError(f"the child process sent a message over {MAX_MESSAGE_BYTES:,} bytes")
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            message = json.loads(line)
            kind, value = message["kind"], message["value"]
            if kind == _DONE:
                self.done = True
            elif kind == _BUG:
                self.bug = value
            else:
                self.on_message(kind, value)


class _Relay:
    """One of the child's output pipes, written to one of ours; with a filter, line by line."""

    def __init__(self, target: TextIO, line_filter: LineFilter | None) -> None:
        self.target = target
        self.filter = line_filter
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""  # the start of a line not yet passed on (with a filter)
        self.mid_line = False  # a long line was passed on in pieces: the next piece does not start a line
        self.last = "\n"

    def feed(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final)
        if self.filter is None:
            self._write(text)
            return
        self.pending += text
        lines = self.pending.splitlines(keepends=True)
        self.pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        for line in lines:
            self._write(self._filtered(line))
            self.mid_line = False
        if len(self.pending) > MAX_LINE_CHARS:  # keep two characters: "##[" may span the cut
            piece, self.pending = self.pending[:-2], self.pending[-2:]
            self._write(self._filtered(piece))
            self.mid_line = True

    def finish(self) -> None:
        """Pass on the rest, and end the line: a command of ours must start a line of its own."""
        self.feed(b"", final=True)
        if self.pending:
            self._write(self._filtered(self.pending))
            self.pending = ""
        if self.last not in "\n\r":
            self._write("\n")

    def _filtered(self, text: str) -> str:
        assert self.filter is not None
        if self.mid_line:
            return self.filter("x" + text)[1:]  # not at a line start: only what is inside the line applies
        return self.filter(text)

    def _write(self, text: str) -> None:
        if text:
            self.target.write(text)
            self.target.flush()
            self.last = text[-1]


def _child(work: Callable[[Channel], None], control: int, out: int, err: int, debug: bool) -> NoReturn:
    """The child: its output into the pipes, ``work``, then an exit that runs none of the parent's
    clean-up (atexit, pytest's fixtures)."""
    code = 0
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout, sys.stderr = _text_stream(1), _text_stream(2)
        if debug:
            faulthandler.enable(file=sys.stderr)  # a crash prints the Python stack where it happened
        channel = Channel(control)
        try:
            work(channel)
        except Exception as exc:
            traceback.print_exc()
            channel.send(_BUG, f"{type(exc).__name__}: {exc}")
        channel.send(_DONE)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # SystemExit from a library, a broken pipe: never return into the parent's code
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            _flush_c_streams()
        os._exit(code)


def _text_stream(fd: int) -> TextIO:
    """A line-buffered text stream on ``fd`` (under pytest, sys.stdout is not the process's fd 1)."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _flush_c_streams() -> None:
    """What C code printed and its stdio still buffers (a pipe is block-buffered): os._exit drops it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)
