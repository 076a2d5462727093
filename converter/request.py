"""The conversion request and the parsing of every input value.

The CLI (``--model-path``) and the action (``INPUT_MODEL-PATH``) share one table of
options, ``OPTIONS``, and one parser per value, so the two shells cannot drift.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from converter.errors import UserError
from converter.frameworks.pytorch.hf_tasks import TASK_CHOICES
from converter.model_code import ALIAS as MODEL_CODE_ALIAS
from converter.model_code import OPTION as MODEL_CODE
from converter.model_code import ModelCode
from converter.variants.options import VariantSettings, parse_variant_settings

FRAMEWORKS = ("auto", "pytorch", "tensorflow", "sklearn", "xgboost", "lightgbm")
DTYPES = (
    "float32",
    "float16",
    "float64",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "string",
)
_DIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ASCII only: str.isdigit() and int() also take "²" or "١٦" (int("١٦") is 16), and float() takes "1_0".
_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")  # int() refuses over 4300 digits; no option needs 100
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]*$")

Dim = int | str
"""A dimension: a fixed size, or a name that makes it dynamic."""


@dataclass(frozen=True)
class Option:
    name: str
    default: str
    help: str
    required: bool = False


# One row per option. action.yml carries the same names and defaults (a test checks it).
OPTIONS: tuple[Option, ...] = (
    Option("model-path", "", "Model file or directory to convert.", required=True),
    Option(
        "framework",
        "auto",
        "auto, sklearn, pytorch, tensorflow, xgboost or lightgbm; auto detects it from the file.",
    ),
    Option("output-dir", "onnx-models", "Directory for the .onnx file and the reports."),
    Option(
        "opset",
        "auto",
        "ONNX opset: an integer (that one exactly, or the run fails), or auto for the highest that exports and reproduces the model.",
    ),
    Option(
        "input-shapes",
        "",
        "Input shapes, e.g. input:1x3x224x224;mask:1x128, or 1x3x224x224 for one input; "
        "a named dimension (batch) is dynamic.",
    ),
    Option("input-dtypes", "", "Input dtypes, e.g. input:float32;ids:int64, or one dtype for all."),
    Option("dynamic-batch", "true", "Make axis 0 of every input and output dynamic."),
    Option(
        "sample-data",
        "",
        "Real inputs (.npy, .npz with arrays named after the inputs, or .csv) used instead of generated ones.",
    ),
    Option(
        "validation-samples",
        "auto",
        "Rows of generated validation inputs; auto: 16, fewer for large rows.",
    ),
    Option("seed", "0", "Seed for the generated validation inputs."),
    Option("rtol", "1e-3", "Relative tolerance of the comparison."),
    Option("atol", "1e-3", "Absolute tolerance of the comparison."),
    Option(
        "fail-on-mismatch",
        "true",
        "Fail (exit 1) when validation fails; false reports the failure and exits 0.",
    ),
    Option(
        "allow-unsafe-load",
        "false",
        "Allow model files that run code when loaded (.pkl, .joblib, whole torch pickles, TorchScript that calls more than tensor operations, Keras unsafe layers).",
    ),
    Option(
        "model-code",
        "",
        "The model's Python code, imported (so run): file.py:Class for a state_dict, file.py for Keras custom layers.",
    ),
    Option("model-class", "", "Old name of model-code."),
    Option(
        "requirements",
        "",
        "A requirements file installed before the model loads, for the model-code file's imports (runs code; installed pins kept).",
    ),
    Option(
        "task",
        "auto",
        "Hugging Face: auto or an Optimum task.",
    ),
    Option("signature", "serving_default", "TensorFlow SavedModel only: the signature to convert."),
    Option(
        "baseline",
        "",
        "The last release's .report.json (its .onnx beside it), or a folder of them matched by model name: "
        "compare the interface, numbers, size and latency with it. Empty: no comparison.",
    ),
    Option(
        "baseline-optional",
        "false",
        "true: a baseline that does not exist (the first release, a new model) is noted and not compared; "
        "false: it is an error.",
    ),
    Option(
        "allow-interface-change",
        "false",
        "true: a breaking interface change from the baseline is reported but does not fail the run.",
    ),
    Option(
        "max-drift",
        "",
        "Fail when an output differs from the baseline .onnx's on the same inputs by more than this "
        "(absolute; labels must agree); empty: drift is reported only.",
    ),
    Option(
        "max-size-increase",
        "",
        "Fail when the ONNX file is more than this many percent larger than the baseline's; empty: no limit.",
    ),
    Option(
        "max-latency-increase",
        "",
        "Fail when the ONNX file is more than this many percent slower than the baseline .onnx, "
        "timed side by side; empty: no limit.",
    ),
    Option(
        "sign",
        "none",
        "Sign the ONNX file with OpenSSF model signing when the run passes: none; key (a PEM private key "
        "in the ONNX_CONVERT_SIGNING_KEY environment variable); or sigstore (keyless, needs id-token: write).",
    ),
    # Optimised variants (converter/variants/), each validated against the original model.
    Option(
        "variants",
        "",
        "Optimised variants to make next to the .onnx, comma-separated: optimized, fp16, int8-dynamic, "
        "int8-static (needs sample-data); each is validated against the original model.",
    ),
    Option(
        "variant-tolerance",
        "",
        "Tolerances per variant, e.g. fp16:rtol=1e-2,atol=1e-2;int8-dynamic:label-agreement=0.99; "
        "unset keys keep their defaults.",
    ),
    Option(
        "pick",
        "smallest",
        "smallest or fastest: which file that passed (the .onnx or a variant) the report's best and the output "
        "best-variant-path name.",
    ),
    Option(
        "require-variants",
        "",
        "Variants that must pass (comma-separated, from variants); otherwise a failing variant never fails the run.",
    ),
)
OPTION_NAMES = tuple(o.name for o in OPTIONS)


SIGN_METHODS = ("none", "key", "sigstore")


@dataclass(frozen=True)
class BaselineOptions:
    """The comparison with the last release (converter/baseline/) and its gates."""

    path: Path | None = None  # a .report.json, or a folder of them; None: no comparison
    optional: bool = False  # a path that does not exist is noted, not an error
    allow_interface_change: bool = False
    max_drift: float | None = None  # absolute; None: reported only
    max_size_increase: float | None = None  # percent
    max_latency_increase: float | None = None  # percent

    @property
    def gated(self) -> list[str]:
        """The options that need a baseline, as given."""
        limits = {
            "max-drift": self.max_drift,
            "max-size-increase": self.max_size_increase,
            "max-latency-increase": self.max_latency_increase,
        }
        return [name for name, value in limits.items() if value is not None]


@dataclass(frozen=True)
class ConversionRequest:
    """Everything one conversion needs, parsed and validated."""

    # No defaults here: OPTIONS holds them, and from_mapping is the only constructor.
    model_path: Path
    framework: str
    output_dir: Path
    opset: int | None  # None: auto
    input_shapes: dict[str, tuple[Dim, ...]]
    input_dtypes: dict[str, str]
    dynamic_batch: bool
    sample_data: Path | None
    validation_samples: int | None  # None: auto (inputs.validation_rows)
    seed: int
    rtol: float
    atol: float
    fail_on_mismatch: bool
    allow_unsafe_load: bool
    model_code: ModelCode
    task: str
    requirements: Path | None  # installed by converter/packages.py before the model is loaded
    import_root: Path  # importable from the model-code file: the workspace, or the working directory
    signature: str
    baseline: BaselineOptions
    sign: str
    variants: VariantSettings
    # The raw option values, to print the command that reproduces the run.
    raw: Mapping[str, str] = field(compare=False)
    # No symbolic link may be on the output path below this folder (check_output_dir): the
    # workspace in the action; a many-model run's output dir, whose folders it names itself.
    link_free_below: Path | None = field(compare=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str | None], base_dir: Path | None = None) -> ConversionRequest:
        """Parse option values keyed by option name (``model-path``); unknown keys are refused.

        ``base_dir`` confines paths: relative paths resolve against it and a path that
        escapes it is refused (the action passes the workspace).
        """
        unknown = sorted(set(values) - set(OPTION_NAMES))
        if unknown:
            raise UserError(
                f"unknown option {', '.join(unknown)}",
                f"the options are {', '.join(OPTION_NAMES)}",
            )
        raw = {o.name: o.default for o in OPTIONS}
        for key, value in values.items():
            if value is not None and str(value).strip() != "":
                raw[key] = str(value).strip()
        if not raw["model-path"]:
            raise UserError("--model-path is required", "give the model file or directory to convert")
        return cls(
            model_path=parse_path("model-path", raw["model-path"], base_dir, must_exist=True),
            framework=parse_choice("framework", raw["framework"], FRAMEWORKS),
            output_dir=parse_path("output-dir", raw["output-dir"], base_dir),
            opset=parse_opset(raw["opset"]),
            input_shapes=parse_input_shapes(raw["input-shapes"]),
            input_dtypes=parse_input_dtypes(raw["input-dtypes"]),
            dynamic_batch=parse_bool("dynamic-batch", raw["dynamic-batch"]),
            sample_data=(
                parse_path("sample-data", raw["sample-data"], base_dir, must_exist=True) if raw["sample-data"] else None
            ),
            validation_samples=parse_validation_samples(raw["validation-samples"]),
            seed=parse_int("seed", raw["seed"], minimum=0),
            rtol=parse_tolerance("rtol", raw["rtol"]),
            atol=parse_tolerance("atol", raw["atol"]),
            fail_on_mismatch=parse_bool("fail-on-mismatch", raw["fail-on-mismatch"]),
            allow_unsafe_load=parse_bool("allow-unsafe-load", raw["allow-unsafe-load"]),
            model_code=parse_model_code(raw, base_dir),
            task=parse_choice("task", raw["task"], TASK_CHOICES),
            requirements=(
                parse_path("requirements", raw["requirements"], base_dir, must_exist=True)
                if raw["requirements"]
                else None
            ),
            import_root=(base_dir or Path.cwd()).resolve(),
            signature=raw["signature"],
            baseline=parse_baseline_options(raw, base_dir),
            sign=parse_choice("sign", raw["sign"], SIGN_METHODS),
            variants=parse_variant_settings(raw, has_sample_data=bool(raw["sample-data"])),
            raw={k: v for k, v in raw.items() if v != _default(k)},
            link_free_below=base_dir.resolve() if base_dir is not None else None,
        )

    def check_output_dir(self) -> None:
        """Refuse (exit 2) an output path that passes through a symbolic link below ``link_free_below``.

        Called when the folder is about to be written, not only when the option was parsed: the
        repository (a pull request) can hold a link at ``<output-dir>/<model name>``, or put one
        there after parsing, and a write through it lands wherever it points.
        """
        if self.link_free_below is not None:
            check_no_link("output-dir", self.output_dir, self.link_free_below)

    def command_line(self) -> str:
        """The ``onnx-convert`` command that reproduces this run."""
        parts = ["onnx-convert"]
        for name in OPTION_NAMES:
            if name in self.raw:
                parts += [f"--{name}", _shell_quote(self.raw[name])]
        return " ".join(parts)


def _default(name: str) -> str:
    return next(o.default for o in OPTIONS if o.name == name)


def _shell_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@+-]+", value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


# --- one parser per kind of value -------------------------------------------------------


def parse_bool(option: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise UserError.bad_value(option, value, "not a boolean", "use true or false")


def parse_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise UserError.bad_value(option, value, "unknown value", f"use one of {', '.join(choices)}")
    return lowered


def ascii_int(text: str) -> int | None:
    """The integer ``text`` spells in ASCII digits (at most 100 of them), else None."""
    text = text.strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def ascii_float(text: str) -> float | None:
    """The number ``text`` spells in ASCII (digits, point, exponent), else None; no nan or inf."""
    text = text.strip()
    return float(text) if _DECIMAL.fullmatch(text) else None


def parse_int(option: str, value: str, minimum: int) -> int:
    number = ascii_int(value)
    if number is None:
        raise UserError.bad_value(
            option, value, "not an integer", f"use a whole number of at least {minimum}, in digits 0-9"
        )
    if number < minimum:
        raise UserError.bad_value(
            option, value, f"must be at least {minimum}", f"use a whole number of at least {minimum}"
        )
    return number


def parse_positive_int(option: str, value: str) -> int:
    return parse_int(option, value, minimum=1)


def parse_validation_samples(value: str) -> int | None:
    """``auto`` (None) or a positive number of rows."""
    return None if value.strip().lower() == "auto" else parse_positive_int("validation-samples", value)


def parse_opset(value: str) -> int | None:
    """``auto`` or an opset number; whether the exporter supports it is checked later."""
    if value.strip().lower() == "auto":
        return None
    opset = ascii_int(value)
    if opset is None:
        raise UserError.bad_value("opset", value, "not an integer", "use an opset number such as 17, or auto")
    if opset < 1:
        raise UserError.bad_value("opset", value, "opsets start at 1", "use an opset number such as 17, or auto")
    return opset


def parse_tolerance(option: str, value: str) -> float:
    number = ascii_float(value)
    if number is None and value.strip().lower().lstrip("+-") in {"nan", "inf", "infinity"}:
        number = float("nan")  # refused below as not finite, as it always was
    if number is None:
        raise UserError.bad_value(option, value, "not a number", "use a non-negative number such as 1e-3")
    if not 0 <= number < float("inf"):  # 1e999 parses as inf
        raise UserError.bad_value(
            option, value, "must be a finite number >= 0", "use a non-negative number such as 1e-3"
        )
    return number


def parse_limit(option: str, value: str, example: str) -> float | None:
    """An optional limit (a percent, or an absolute difference): a finite number >= 0; empty means none."""
    if not value.strip():
        return None
    number = ascii_float(value)
    if number is None or not 0 <= number < float("inf"):
        raise UserError.bad_value(
            option, value, "not a finite number >= 0", f"use a number such as {example}, or leave it empty for no limit"
        )
    return number


def parse_baseline_options(raw: Mapping[str, str], base_dir: Path | None) -> BaselineOptions:
    options = BaselineOptions(
        path=parse_path("baseline", raw["baseline"], base_dir) if raw["baseline"] else None,
        optional=parse_bool("baseline-optional", raw["baseline-optional"]),
        allow_interface_change=parse_bool("allow-interface-change", raw["allow-interface-change"]),
        max_drift=parse_limit("max-drift", raw["max-drift"], "1e-4"),
        max_size_increase=parse_limit("max-size-increase", raw["max-size-increase"], "10 (percent)"),
        max_latency_increase=parse_limit("max-latency-increase", raw["max-latency-increase"], "25 (percent)"),
    )
    if options.path is None and options.gated:
        name = options.gated[0]
        raise UserError.bad_value(
            name,
            raw[name],
            "compares with a baseline, and --baseline is empty",
            "give the last release's report with --baseline",
        )
    return options


def parse_path(option: str, value: str, base_dir: Path | None, must_exist: bool = False) -> Path:
    """A path from the user; with ``base_dir`` it must stay inside it."""
    if "\x00" in value:
        raise UserError.bad_value(option, value.replace("\x00", "\\0"), "contains a NUL byte", "give a plain path")
    path = Path(value).expanduser()
    if base_dir is not None:
        base = base_dir.resolve()
        path = (base / path).resolve()
        if path != base and base not in path.parents:
            raise UserError.bad_value(
                option, value, f"is outside the workspace {base}", "give a path inside the repository"
            )
    if must_exist and not path.exists():
        raise UserError.bad_value(
            option, value, "no such file or directory", "check the path (it is relative to the working directory)"
        )
    if must_exist and not (path.is_file() or path.is_dir()):  # a FIFO or a device would block or never end
        raise UserError.bad_value(option, value, "is not a regular file or directory", "give a file or directory")
    return path


def check_no_link(option: str, path: Path, below: Path) -> None:
    """Refuse (exit 2) ``path`` when a part of it below ``below`` is a symbolic link."""
    link = first_link(path, below)
    if link is not None:
        raise UserError.bad_value(
            option,
            path,
            f"{link} is a symbolic link (to {os.readlink(link)}), and this tool never writes through a link",
            "remove the link, or give an output directory that is a plain folder",
        )


def first_link(path: Path, below: Path) -> Path | None:
    """The first part of ``path`` below ``below`` that is a symbolic link (``path`` itself included)."""
    try:
        parts = path.relative_to(below).parts
    except ValueError:
        return None if path.resolve().is_relative_to(below.resolve()) else path
    current = below
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


def parse_model_code(raw: Mapping[str, str], base_dir: Path | None) -> ModelCode:
    """``path/to/file.py[:Name]`` from model-code or its alias model-class, the file confined like every
    other path (it is imported and run)."""
    given = [name for name in (MODEL_CODE, MODEL_CODE_ALIAS) if raw[name]]
    if len(given) == 2 and raw[MODEL_CODE] != raw[MODEL_CODE_ALIAS]:
        raise UserError(
            f'--model-code "{raw[MODEL_CODE]}" and --model-class "{raw[MODEL_CODE_ALIAS]}" differ',
            "give one of them: model-class is model-code's first name",
        )
    if not given:
        return ModelCode("")
    code = ModelCode(raw[given[0]], given[0])
    file_part, name = code.split()
    if base_dir is None or not file_part:
        return code  # malformed: the backend explains the form
    confined = str(parse_path(code.option, file_part, base_dir))
    return ModelCode(f"{confined}:{name}" if name else confined, code.option)


def _split_named(option: str, value: str) -> list[tuple[str | None, str]]:
    """``a:x;b:y`` -> [(a, x), (b, y)]; a single ``x`` -> [(None, x)].

    A name that is not plain (a DataFrame column such as ``unit price`` or ``g;h``) is written as a
    JSON string: ``"g;h":1x1;"i\\nj":1x1``.
    """
    items: list[tuple[str | None, str]] = []
    position = 0
    while position < len(value):
        start = len(value) - len(value[position:].lstrip())
        if value.startswith('"', start):
            item, end = _quoted_item(option, value, start)
            items.append(item)
        else:
            end = _next_separator(value, position)
            part = value[position:end].strip()
            if ":" in part:
                items.append(_plain_item(option, value, part))
            elif part:
                items.append((None, part))
        position = end + 1
    if len(items) > 1 and any(name is None for name, _ in items):
        raise UserError.bad_value(
            option, value, "several values but not all are named", "write name:value pairs separated by ;"
        )
    counts = Counter(n for n, _ in items if n is not None)
    duplicates = sorted(n for n, count in counts.items() if count > 1)
    if duplicates:
        raise UserError.bad_value(option, value, f"input {duplicates[0]} is given twice", "give each input once")
    return items


def _next_separator(value: str, position: int) -> int:
    found = value.find(";", position)
    return len(value) if found < 0 else found


def _plain_item(option: str, value: str, part: str) -> tuple[str, str]:
    name, _, spec = part.rpartition(":")  # the last colon: a plain name may hold colons
    name = name.strip()
    if not _INPUT_NAME.match(name):
        raise UserError.bad_value(
            option,
            value,
            f'"{name}" is not an input name',
            'write name:value pairs separated by ; (a name with other characters in JSON quotes: "g;h":1x1)',
        )
    return name, spec.strip()


def _quoted_item(option: str, value: str, start: int) -> tuple[tuple[str, str], int]:
    """The JSON-quoted name at ``value[start]`` and what follows its ``:``; and where that ends."""
    name, after = _json_string(option, value, start)
    rest = value[after:].lstrip()
    if not rest.startswith(":"):
        raise UserError.bad_value(option, value, f"no : after the quoted name {json.dumps(name)}", 'write "name":value')
    spec_start = len(value) - len(rest) + 1
    end = _next_separator(value, spec_start)
    return (name, value[spec_start:end].strip()), end


def _json_string(option: str, value: str, start: int) -> tuple[str, int]:
    try:
        name, after = json.JSONDecoder().raw_decode(value, start)
    except json.JSONDecodeError as exc:
        raise UserError.bad_value(
            option,
            value,
            f"the quoted name at character {start + 1} is not a JSON string ({exc.msg})",
            'quote it as JSON: "g;h", with \\" and \\\\ inside',
        ) from None
    if not isinstance(name, str):
        raise UserError.bad_value(option, value, "a quoted name must be a string", 'write "name":value')
    return name, after


SINGLE_INPUT = ""
"""Key used when a shape or dtype is given without an input name (it applies to all inputs)."""


def parse_input_shapes(value: str) -> dict[str, tuple[Dim, ...]]:
    shapes: dict[str, tuple[Dim, ...]] = {}
    for name, spec in _split_named("input-shapes", value):
        if not spec:
            raise UserError.bad_value(
                "input-shapes", value, f"input {name} has no shape", "write a shape such as 1x3x224x224"
            )
        dims: list[Dim] = []
        # "1x3x224x224"; a dimension name that contains an x needs commas: "batch,max_x,4".
        for token in spec.split(",") if "," in spec else spec.replace("×", "x").split("x"):
            token = token.strip()
            size = ascii_int(token)
            if size is not None and size > 0 and token[0] not in "+-":
                dims.append(size)
            elif _DIM_NAME.match(token):
                dims.append(token)
            else:
                raise UserError.bad_value(
                    "input-shapes", value, f'"{token}" is not a dimension', "use an integer or a name such as batch"
                )
        shapes[name or SINGLE_INPUT] = tuple(dims)
    return shapes


def parse_input_dtypes(value: str) -> dict[str, str]:
    dtypes: dict[str, str] = {}
    for name, spec in _split_named("input-dtypes", value):
        dtype = spec.lower()
        if dtype not in DTYPES:
            raise UserError.bad_value(
                "input-dtypes", value, f'"{spec}" is not a dtype', f"use one of {', '.join(DTYPES)}"
            )
        dtypes[name or SINGLE_INPUT] = dtype
    return dtypes
