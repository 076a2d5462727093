"""The opset rule, in one place: which opset the pipeline asks each export route for.

- ``--opset N`` is exact or refused. The run exits 2 before any work when no route of the backend
  can write N, or onnxruntime cannot load it (``check_requested``). A route that cannot write N,
  or writes a file above N, is a failed attempt (``OpsetSearch.first``, ``check_written``); a file
  below N is accepted with a warning (skl2onnx writes the lowest opset that holds the model's
  operators, and any runtime that loads N loads it).
- ``--opset auto`` is the highest opset that exports and reproduces. Each candidate is an attempt
  of its own, highest first: the highest both the route and onnxruntime support. After a file at
  opset N fails (an onnxruntime error, or outputs over tolerance), the next candidate is the
  highest M < N at which one of the file's operators has another schema
  (``onnx.defs.get_schema(op, M).since_version``): an opset between them would write the same
  operators. After an export that raised, the next is N - 1, once: a second failure in a row ends
  the route. A route ends too at its lowest opset, when the exporter wrote a file above the opset
  asked for (it cannot go lower), when the failure is the same at any opset (``UnsupportedByRoute``,
  a batch axis the exporter fixed), and after ``MAX_OPSETS_PER_ROUTE`` attempts.

Why: the dynamo exporter at opset 23 fuses rotary embeddings into ONNX ``RotaryEmbedding``, which
onnxruntime 1.32 refuses at run time ("INVALID_ARGUMENT ... while running RotaryEmbedding node"),
and fails to export Falcon's attention ("SDPA (MHA) requires q_num_heads = kv_num_heads"); at
opset 22 both reproduce (issue 15).
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass

import onnx

from converter.errors import ConversionError, UserError
from converter.frameworks.base import Backend, ExportRoute
from converter.onnx_file import runtime_max_opset

# Each attempt exports and validates the model again: a model that mismatches at every opset costs
# this many attempts per route (docs/cli.md has the measurement).
MAX_OPSETS_PER_ROUTE = 3


def check_requested(requested: int | None, backend: Backend) -> None:
    """Refuse (exit 2) an opset that no route of the backend writes or onnxruntime does not load."""
    if requested is None:
        return
    low, high = backend.opset_range()
    runtime = runtime_max_opset()
    best = min(high, runtime)
    if requested < low or requested > best:
        raise UserError(
            f'--opset "{requested}": the {backend.name} exporter writes opsets {low} to {high} '
            f"and onnxruntime {md.version('onnxruntime')} loads up to {runtime}",
            f"use an opset from {low} to {best}, or auto",
        )


def check_written(requested: int | None, written: int) -> list[str]:
    """The warning for a file below an explicit opset; a file above it is refused (a failed attempt)."""
    if requested is None or written == requested:
        return []
    if written > requested:
        raise ConversionError(
            f"asked for opset {requested}, but the exporter wrote opset {written}", f"use --opset {written}, or auto"
        )
    return [
        f"asked for opset {requested}; the exporter wrote opset {written}, the lowest that holds every operator "
        f"of this model (any runtime that supports opset {requested} loads it)"
    ]


@dataclass(frozen=True)
class Outcome:
    """How an attempt at one opset failed, as far as the choice of the next opset goes."""

    asked: int
    written: int | None = None  # the file's default-domain opset; None when no file was written
    operators: frozenset[str] = frozenset()  # the file's operators (``domain.Op`` outside the default domain)
    same_at_any_opset: bool = False  # UnsupportedByRoute, or a batch axis the exporter fixed


class OpsetSearch:
    """The opsets to ask one route for: the one requested, or (auto) the candidates, highest first."""

    def __init__(self, route: ExportRoute, requested: int | None) -> None:
        self.route = route
        self.requested = requested
        self.tried: list[Outcome] = []

    def first(self) -> int:
        """The first opset to ask for; raises ``ConversionError`` when the route cannot write the one requested."""
        low, high = self.route.opsets
        if self.requested is None:
            return min(high, runtime_max_opset())
        if not low <= self.requested <= high:
            fix = f"use --opset {high} or lower" if self.requested > high else f"use --opset {low} or higher"
            why = f" ({self.route.fallback_reason})" if self.route.fallback_reason else ""
            raise ConversionError(
                f"asked for opset {self.requested}, but {self.route.name} writes opsets {low} to {high}{why}",
                f"{fix}, or auto",
            )
        return self.requested

    def next(self, outcome: Outcome) -> int | None:
        """The opset to try after ``outcome``, or None when this route has nothing more to try."""
        previous = self.tried[-1] if self.tried else None
        self.tried.append(outcome)
        if self.requested is not None or outcome.same_at_any_opset or len(self.tried) >= MAX_OPSETS_PER_ROUTE:
            return None
        if outcome.written is None:
            if previous is not None and previous.written is None:
                return None  # two exports in a row raised: the opset is not what fails
            candidate = outcome.asked - 1
        elif outcome.written > outcome.asked:
            return None  # the exporter cannot write lower than it just did
        else:
            candidate = other_schemas_below(outcome.written, outcome.operators)
        return candidate if candidate >= self.route.opsets[0] else None


def other_schemas_below(opset: int, operators: frozenset[str]) -> int:
    """The highest opset below ``opset`` at which one of the default-domain ``operators`` has another
    schema: every opset between them defines the same operators the same way."""
    since = []
    for name in operators:
        if "." in name:  # another domain (ai.onnx.ml, com.microsoft): versioned apart
            continue
        try:
            since.append(onnx.defs.get_schema(name, opset, "").since_version)
        except onnx.defs.SchemaError:  # not an ONNX operator: the checker would have said so
            continue
    return max(since, default=opset) - 1
