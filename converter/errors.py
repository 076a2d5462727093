"""User-facing errors and the one place that maps outcomes to exit codes.

A ``UserError`` is something the user can fix (bad value, missing file): exit 2.
A ``ConversionError`` is a model that loads but cannot be exported or run: exit 1.
Anything else is a bug in this tool and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class ConverterError(Exception):
    """Base of every error that is shown to the user as one line."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and the fix on one line, as printed after ``error:``."""
        text = self.message.rstrip(".")
        if self.hint:
            text = f"{text}; {self.hint}"
        return " ".join(text.split())


class UserError(ConverterError):
    """The input was wrong: a usage error, a missing file, a bad value."""

    exit_code = EXIT_USAGE

    @classmethod
    def bad_value(cls, option: str, value: object, problem: str, fix: str) -> UserError:
        return cls(f'--{option} "{value}": {problem}', fix)


class ConversionError(ConverterError):
    """The model loaded but could not be exported, checked or run."""

    exit_code = EXIT_FAILED


class UnsupportedByRoute(ConversionError):
    """An export route cannot take this model at any opset (no converter for an estimator, an op
    tf2onnx has no handler for, a graph it cannot take apart): the pipeline tries no lower opset
    of that route and moves to the next route."""


class MissingFrameworkError(UserError):
    """A framework the model needs is not installed (or not in this image)."""


def shorten(text: object, limit: int = 300) -> str:
    """One line of at most ``limit`` characters from an exception message."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe(exc: BaseException, limit: int = 240) -> str:
    """An exception as one short line; the type is named when the message says little."""
    message = shorten(str(exc), limit)
    if len(message) < 12:
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message


def exit_code_for(status: str, fail_on_mismatch: bool) -> int:
    """The exit code of a finished conversion (a ``ConverterError`` carries its own): 0 when it passed,
    or when its validation failed and the user forgave that (``--fail-on-mismatch false``); 1 otherwise.
    A conversion error ("error") and a rejection by the baseline comparison ("rejected") are never
    forgiven by fail-on-mismatch: they have switches of their own."""
    if status == "passed" or (status == "failed" and not fail_on_mismatch):
        return EXIT_OK
    return EXIT_FAILED


def exit_code_for_many(outcomes: Iterable[tuple[str, bool]]) -> int:
    """The exit code of many conversions, each (status, fail_on_mismatch): the worst; 1 when there were none."""
    codes = [exit_code_for(status, fail_on_mismatch) for status, fail_on_mismatch in outcomes]
    return max(codes) if codes else EXIT_FAILED
