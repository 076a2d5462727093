"""Find and read the baseline: the last release's ``.report.json``, and its ``.onnx`` when it is beside it.

The baseline comes from outside (a release download, or a folder in the repository), so it is read
as hostile: its size is bounded before it is parsed, every field used is type-checked, the
``.onnx`` must have the sha256 its report records and pass the ONNX checker, and a problem is one
exit-2 line that names the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converter.errors import UserError, shorten
from converter.onnx_file import sha256_of

MAX_REPORT_BYTES = 32 * 1024 * 1024  # a report of 3,000 outputs takes 3 MB
REPORT_SUFFIX = ".report.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Dim = int | str | None
STATS = ("max_abs_diff", "p99_abs_diff", "max_rel_diff", "p99_rel_diff")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[Dim, ...]
    dtype: str

    def text(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} [{dims}]"


@dataclass(frozen=True)
class Interface:
    inputs: list[Tensor]
    outputs: list[Tensor]
    opsets: dict[str, int]
    ir_version: int


@dataclass
class Baseline:
    report_path: Path
    onnx_path: Path | None  # None: no .onnx beside the report (interface, numbers and size only)
    interface: Interface
    bytes: int
    release: str  # git ref or commit of the run that made it, when its report says
    validation: dict[str, dict[str, float]] = field(default_factory=dict)  # output -> worst statistics


def locate_report(path: Path, names: list[str], optional: bool) -> Path:
    """The report for a model named one of ``names``: ``path`` itself, or found in the folder ``path``.

    In a folder: ``<name>/`` holding one ``*.report.json`` (a downloaded output folder), or
    ``<name>.report.json`` (release assets). A folder without a match is an error, unless
    ``optional`` (a model new in this release): then the first path looked for is returned.
    """
    if not path.is_dir():
        return path
    looked = []
    for name in dict.fromkeys(names):
        reports = sorted((path / name).glob(f"*{REPORT_SUFFIX}")) if (path / name).is_dir() else []
        if len(reports) == 1:
            return reports[0]
        looked += [f"{name}/*{REPORT_SUFFIX}", f"{name}{REPORT_SUFFIX}"]
        if (path / f"{name}{REPORT_SUFFIX}").is_file():
            return path / f"{name}{REPORT_SUFFIX}"
    if optional:
        return path / f"{names[0]}{REPORT_SUFFIX}"
    raise UserError(
        f'--baseline "{path}": no report for model {names[0]} in the folder (looked for {", ".join(looked)})',
        "put the last release's report there, or set --baseline-optional true when the model is new",
    )


def read_baseline(path: Path, optional: bool) -> Baseline | None:
    """The baseline at ``path`` (a report); None when it does not exist and ``optional``."""
    if not path.exists():
        if optional:
            return None
        raise UserError(
            f'--baseline "{path}": no such file or directory',
            "give the last release's .report.json, or set --baseline-optional true for the first release",
        )
    data = _load_json(path)
    onnx = _get(path, data, "onnx", dict, "it records no ONNX file (the conversion failed)")
    interface = Interface(
        inputs=_tensors(path, onnx, "inputs"),
        outputs=_tensors(path, onnx, "outputs"),
        opsets=_opsets(path, onnx),
        ir_version=_get(path, onnx, "ir_version", int),
    )
    size = _get(path, onnx, "bytes", int)
    onnx_path = _onnx_beside(path, onnx)
    return Baseline(path, onnx_path, interface, size, _release(data), _validation(data))


# -- the report --------------------------------------------------------------------------------


def _bad(path: Path, problem: str) -> UserError:
    return UserError(
        f'--baseline "{path}": {problem}', "give the .report.json that onnx-convert wrote for the last release"
    )


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _bad(path, "is not a file")
    size = path.stat().st_size
    if size > MAX_REPORT_BYTES:
        raise _bad(path, f"is {size:,} bytes; a report takes at most {MAX_REPORT_BYTES:,}")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _bad(path, f"is not JSON ({shorten(exc, 120)})") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror})") from None
    if not isinstance(data, dict) or "model" not in data or "schema_version" not in data:
        raise _bad(path, "is not a report of onnx-convert")
    return data


def _get(path: Path, data: dict[str, Any], key: str, kind: type, missing: str = "") -> Any:
    value = data.get(key)
    # bool is an int to isinstance; no field read here is a bool
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad(path, missing or f"its field {key} is missing or not {kind.__name__}")
    return value


def _tensors(path: Path, onnx: dict[str, Any], key: str) -> list[Tensor]:
    tensors = []
    for item in _get(path, onnx, key, list):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("dtype"), str)
            and isinstance(item.get("shape"), list)
            and all(d is None or (isinstance(d, int | str) and not isinstance(d, bool)) for d in item["shape"])
        ):
            raise _bad(path, f"onnx.{key} holds an entry that is not a name, shape and dtype")
        tensors.append(Tensor(item["name"], tuple(item["shape"]), item["dtype"]))
    return tensors


def _opsets(path: Path, onnx: dict[str, Any]) -> dict[str, int]:
    opsets = onnx.get("opsets")
    if not isinstance(opsets, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in opsets.items()
    ):
        raise _bad(path, "its field opsets is missing or not a map of domain to version")
    return dict(opsets)


def _release(data: dict[str, Any]) -> str:
    git = (data.get("provenance") or {}).get("git") if isinstance(data.get("provenance"), dict) else None
    if not isinstance(git, dict):
        return ""
    ref, commit = git.get("ref"), git.get("commit")
    if isinstance(ref, str) and ref:
        return ref
    return commit[:12] if isinstance(commit, str) else ""


def _validation(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per output, the worst of each statistic over the validation batches (best label agreement is min)."""
    worst: dict[str, dict[str, float]] = {}
    validation = data.get("validation")
    batches = validation.get("batches") if isinstance(validation, dict) else None
    for batch in batches if isinstance(batches, list) else []:
        outputs = batch.get("outputs") if isinstance(batch, dict) else None
        for out in outputs if isinstance(outputs, list) else []:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                continue
            stats = worst.setdefault(out["name"], {})
            agreement = out.get("label_agreement")
            if isinstance(agreement, int | float) and not isinstance(agreement, bool):
                stats["label_agreement"] = min(stats.get("label_agreement", 1.0), float(agreement))
                continue
            for key in STATS:
                if _number(out.get(key)):
                    stats[key] = max(stats.get(key, 0.0), float(out[key]))
    return worst


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- the .onnx beside it -------------------------------------------------------------------------


def _onnx_beside(report: Path, onnx: dict[str, Any]) -> Path | None:
    """The report's .onnx in the report's folder (by the name it records, or the report's stem),
    checked: the sha256 the report records, its other files beside it, the ONNX checker."""
    recorded = onnx.get("path") if isinstance(onnx.get("path"), str) else ""
    stem = report.name[: -len(REPORT_SUFFIX)] if report.name.endswith(REPORT_SUFFIX) else report.stem
    names = [Path(recorded).name, f"{stem}.onnx"] if recorded else [f"{stem}.onnx"]
    found = next((report.parent / n for n in dict.fromkeys(names) if n and (report.parent / n).is_file()), None)
    if found is None:
        return None
    expected = _get(report, onnx, "sha256", str)
    if not _SHA256.match(expected):
        raise _bad(report, "its onnx.sha256 is not a sha256")
    actual = sha256_of(found)
    if actual != expected:
        raise UserError(
            f'--baseline "{report}": {found.name} beside it has sha256 {actual}, and the report records {expected}',
            "download the .onnx and the report of the same release",
        )
    listed = onnx.get("files")
    files: list[object] = listed if isinstance(listed, list) else []
    missing = [Path(f).name for f in files[1:] if isinstance(f, str) and not (report.parent / Path(f).name).is_file()]
    if missing:
        raise UserError(
            f'--baseline "{report}": {found.name} needs {", ".join(missing)} beside it, and it is not there',
            "download every file of the release's model (the report lists them under onnx.files)",
        )
    _check(report, found)
    return found


def _check(report: Path, onnx_path: Path) -> None:
    import onnx

    try:  # also refuses external data that points outside the file's folder
        onnx.checker.check_model(str(onnx_path))
    except (onnx.checker.ValidationError, ValueError, OSError) as exc:
        raise UserError(
            f'--baseline "{report}": {onnx_path.name} fails the ONNX checker ({shorten(exc, 200)})',
            "download the .onnx of the last release again",
        ) from None
