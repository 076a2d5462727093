"""Untrusted text made safe where it is shown: one log line, or markdown.

File names, manifest entries, tensor names and error messages come from the repository, so from
pull requests. A log line must not become a workflow command (GitHub's runner reads ``::name::``
at the start of a line and the legacy ``##[name]`` anywhere in one:
actions/runner src/Runner.Common/ActionCommand.cs), and markdown must not become markup in the job
summary or the .report.md (``<script>``, a table pipe, a link). Every renderer calls these.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that break a line or hide text: controls (\n, \r, \x1b ...), line and paragraph
# separators, and format characters (bidi overrides, zero-width spaces).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cf"})
# Inline markdown (CommonMark, GFM) that a backslash turns into plain text; line-start constructs
# (lists, quotes) cannot occur, since no value starts a line.
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]~#$!")
# As entities: HTML cannot start, and a table pipe cannot end a cell (entities are decoded after
# GFM splits the row, https://github.github.com/gfm/#tables-extension-).
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;"}
_BACKTICKS = re.compile(r"`+")


def one_line(text: object) -> str:
    """``text`` on one line: hidden characters as Python escapes (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return "".join(_escaped(c) if unicodedata.category(c) in _HIDDEN_CATEGORIES else c for c in str(text))


def printable(text: object) -> str:
    """``text`` for a log line that GitHub's runner reads: one line, and no ``##[`` command marker."""
    return one_line(text).replace("##[", "##\\x5b")


def inert(line: str) -> str:
    """A line of someone else's output (a framework's) that the runner cannot read as a command.

    Unlike ``printable`` it changes nothing else: only a ``::`` that starts the line (after
    whitespace, which the runner skips) and a ``##[`` anywhere are escaped, as Python escapes.
    """
    line = line.replace("##[", "##\\x5b")
    body = line.lstrip()
    if body.startswith("::"):
        line = line[: len(line) - len(body)] + "\\x3a" + body[1:]
    return line


def markdown_text(text: object) -> str:
    """``text`` as literal inline markdown, for prose and table cells."""
    out = []
    for char in one_line(text):
        if char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char in _MARKDOWN_PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def markdown_code(text: object) -> str:
    """``text`` as a code span: nothing in it is markup. Its fence is longer than any run of
    backticks inside; a table cell must still escape ``|`` (see ``table_cell``)."""
    content = one_line(text)
    if not content:
        return "` `"
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(content)), default=0) + 1)
    if content[0] in "` " or content[-1] in "` ":
        content = f" {content} "  # CommonMark strips one space on each side
    return f"{fence}{content}{fence}"


def markdown_block(text: str, info: str = "") -> str:
    """``text`` as a fenced code block that no line of it can close."""
    fence = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def table_cell(markdown: str) -> str:
    """Markdown (already escaped) for one GFM table cell: a pipe inside a code span needs ``\\|``."""
    return markdown.replace("|", "\\|")


def _escaped(char: str) -> str:
    return char.encode("unicode_escape").decode("ascii")
