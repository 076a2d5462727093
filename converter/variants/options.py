"""The variant options: which variants to make, their tolerances, the pick, the required ones.

Parsed with the rest of the request (``converter.request``), so a bad value is one ``error:``
line and exit 2 before any work. Nothing here imports onnxruntime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from converter.errors import UserError

VARIANT_NAMES = ("optimized", "fp16", "int8-dynamic", "int8-static")
PICKS = ("smallest", "fastest")
TOLERANCE_KEYS = ("rtol", "atol", "label-agreement")
_NAMES_TEXT = "optimized, fp16, int8-dynamic or int8-static"


@dataclass(frozen=True)
class Tolerance:
    """When a variant reproduces the original model.

    Float outputs: an element fails when ``|variant - original| > atol + rtol * |original|``
    (class scores are compared as probabilities). Labels (label outputs, and the argmax of
    class scores) must agree on at least ``label_agreement`` of the rows.
    """

    rtol: float
    atol: float
    label_agreement: float

    def to_dict(self) -> dict[str, float]:
        return {"rtol": self.rtol, "atol": self.atol, "label_agreement": self.label_agreement}

    def text(self) -> str:
        return f"rtol {self.rtol:g}, atol {self.atol:g}, label agreement ≥ {self.label_agreement:.0%}"


# The defaults (README, "Optimised variants", says why). fp16 keeps ~3 significant digits
# per operation, so 1e-2 leaves room for their accumulation over a deep network; int8 keeps
# 256 levels per tensor, about 0.4% of its range per operation, hence a 5% relative error. A
# probability moves by at most a quarter of its logit's error (p(1-p) <= 1/4), and int8 moves
# logits by a few tenths near a decision: atol 0.1 (a trained MLP's int8 files reached 0.079 and
# 0.094 while 99.7% of their labels agreed, bench/RESULTS.md section 7). A classifier is judged
# by its decisions: 99 of 100 labels must agree. ``optimized`` only rewrites the graph, so it
# is held to the fp32 file's own --rtol/--atol and every label.
DEFAULT_TOLERANCES: Mapping[str, Tolerance] = {
    "fp16": Tolerance(rtol=1e-2, atol=1e-2, label_agreement=0.99),
    "int8-dynamic": Tolerance(rtol=5e-2, atol=1e-1, label_agreement=0.99),
    "int8-static": Tolerance(rtol=5e-2, atol=1e-1, label_agreement=0.99),
}


@dataclass(frozen=True)
class VariantSettings:
    """The parsed variant options of one conversion."""

    names: tuple[str, ...] = ()  # in VARIANT_NAMES order
    overrides: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # --variant-tolerance
    pick: str = "smallest"
    required: tuple[str, ...] = ()

    def tolerance(self, name: str, rtol: float, atol: float) -> Tolerance:
        """The tolerance of one variant: its default, with the user's keys on top.
        ``rtol`` and ``atol`` are the fp32 file's (the default of ``optimized``)."""
        base = DEFAULT_TOLERANCES.get(name, Tolerance(rtol=rtol, atol=atol, label_agreement=1.0))
        given = self.overrides.get(name, {})
        return Tolerance(
            rtol=given.get("rtol", base.rtol),
            atol=given.get("atol", base.atol),
            label_agreement=given.get("label-agreement", base.label_agreement),
        )


def parse_variant_settings(raw: Mapping[str, str], has_sample_data: bool) -> VariantSettings:
    """The four variant options from the request's raw values (option name -> text)."""
    names = parse_variant_names("variants", raw["variants"])
    if "int8-static" in names and not has_sample_data:
        raise UserError.bad_value(
            "variants",
            raw["variants"],
            "int8-static is calibrated on real inputs and --sample-data is not set "
            "(generated inputs would give it wrong scales)",
            "give --sample-data with rows of real inputs, or use int8-dynamic",
        )
    required = parse_variant_names("require-variants", raw["require-variants"])
    for name in required:
        if name not in names:
            raise UserError.bad_value(
                "require-variants", raw["require-variants"], f"{name} is not in --variants", "add it to --variants"
            )
    pick = raw["pick"].strip().lower()
    if pick not in PICKS:
        raise UserError.bad_value("pick", raw["pick"], "unknown value", "use smallest or fastest")
    overrides = parse_variant_tolerance(raw["variant-tolerance"], names)
    return VariantSettings(names=names, overrides=overrides, pick=pick, required=required)


def parse_variant_names(option: str, value: str) -> tuple[str, ...]:
    """``fp16,int8-dynamic`` -> the names, each once, in VARIANT_NAMES order."""
    given = [token for token in re.split(r"[,\s]+", value.strip().lower()) if token]
    for token in given:
        if token not in VARIANT_NAMES:
            raise UserError.bad_value(
                option, value, f'"{token}" is not a variant', f"use {_NAMES_TEXT}, separated by commas"
            )
    return tuple(name for name in VARIANT_NAMES if name in given)


def parse_variant_tolerance(value: str, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``fp16:rtol=1e-2,atol=1e-2;int8-dynamic:label-agreement=0.99`` -> {variant: {key: number}}."""
    overrides: dict[str, dict[str, float]] = {}
    for entry in (part.strip() for part in value.split(";")):
        if not entry:
            continue
        name, colon, pairs = (text.strip() for text in entry.partition(":"))
        name = name.lower()
        if not colon:
            _bad_tolerance(value, f'"{entry}" names no variant', "write variant:key=value,... such as fp16:rtol=1e-2")
        if name not in VARIANT_NAMES:
            _bad_tolerance(value, f'"{name}" is not a variant', f"use {_NAMES_TEXT}")
        if name not in names:
            _bad_tolerance(value, f"{name} is not in --variants", "add it to --variants or drop its tolerance")
        if name in overrides:
            _bad_tolerance(value, f"{name} is given twice", "give each variant once, with all its keys")
        overrides[name] = _parse_pairs(value, name, pairs)
    return overrides


def _parse_pairs(value: str, name: str, pairs: str) -> dict[str, float]:
    keys: dict[str, float] = {}
    for pair in (p.strip() for p in pairs.split(",")):
        key, equals, number = (text.strip() for text in pair.partition("="))
        key = key.lower()
        if key not in TOLERANCE_KEYS:
            _bad_tolerance(value, f'{name}: "{key}" is not a key', "use rtol, atol or label-agreement")
        if not equals or not number:
            _bad_tolerance(value, f"{name}: {key} has no value", f"write {key}=<number>")
        if key in keys:
            _bad_tolerance(value, f"{name}: {key} is given twice", "give each key once")
        keys[key] = _parse_number(value, name, key, number)
    return keys


def _parse_number(value: str, name: str, key: str, text: str) -> float:
    # ASCII digits only: float() would also take "１e-2", "nan" or "infinity".
    if not re.fullmatch(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", text):
        _bad_tolerance(value, f'{name}: {key} "{text}" is not a number', "use a number such as 1e-2")
    number = float(text)
    if number == float("inf"):
        _bad_tolerance(value, f"{name}: {key} {text} is too large", "use a number such as 1e-2")
    if number < 0:
        _bad_tolerance(value, f"{name}: {key} {text} is negative", "use a number from 0 up, such as 1e-2")
    if key == "label-agreement" and number > 1:
        _bad_tolerance(value, f"{name}: label-agreement {text} is above 1", "give a fraction from 0 to 1, such as 0.99")
    return number


def _bad_tolerance(value: str, problem: str, fix: str) -> NoReturn:
    raise UserError.bad_value("variant-tolerance", value, problem, fix)
