"""Many models in one run: a manifest (onnx-models.yml / .json) or a glob names them.

```yaml
defaults:            # any option, applied to every model
  rtol: 1e-3
models:
  - name: iris       # optional; default: the file's stem
    model-path: models/iris.skops
  - model-path: models/net.pt
    input-shapes: 1x3x32x32
```

Everything is checked before the first conversion: unknown keys (with their line), missing
files, duplicate names, a glob that matches nothing, a --select that names no entry.
Paths in a manifest are relative to the manifest's directory.
"""

from __future__ import annotations

import glob
import itertools
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from converter.baseline.source import locate_report
from converter.errors import UserError
from converter.naming import file_stem
from converter.request import OPTION_NAMES, ConversionRequest, Option

# Options of a many-model run (not of one conversion); the action has the same inputs.
BATCH_OPTIONS: tuple[Option, ...] = (
    Option("select", "", "With a manifest or glob: convert only the model of this name (one matrix job)."),
)

MANIFEST_SUFFIXES = (".yml", ".yaml", ".json")
GLOB_CHARS = re.compile(r"[*?\[]")
MAX_NAMES_SHOWN = 20  # an error that lists the names of the models (an annotation of 10,000 names helps no one)
MAX_MANIFEST_BYTES = 16 * 1024**2  # 10,000 entries of 200 characters take 2 MB
# A glob is read lazily and refused past this many matches: a committed link loop (models/loop -> .)
# makes models/**/*.skops match every model once per level of the loop, hundreds of times.
MAX_GLOB_MATCHES = 10_000
PATH_OPTIONS = ("model-path", "sample-data", "output-dir", "baseline", "requirements")
# Artifact names may not hold these (GitHub's rule); entry names become artifact names.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Entry:
    """One model of a batch: its name and its parsed request."""

    name: str
    request: ConversionRequest
    source: str  # where it was defined, e.g. "onnx-models.yml:12"
    model: str  # the model path as written in the manifest or found by the glob


def is_batch(model_path: str, base_dir: Path | None = None) -> bool:
    """True when --model-path names a manifest or a glob rather than one model (relative to ``base_dir``)."""
    if is_glob(model_path, base_dir):
        return True
    if not model_path.lower().endswith(MANIFEST_SUFFIXES):
        return False
    # A model can be a .json too (XGBoost's): whatever a backend recognises is a model, not a manifest.
    from converter.frameworks import detect

    return detect(_path(model_path, base_dir)) is None


def is_glob(model_path: str, base_dir: Path | None = None) -> bool:
    """True when ``model_path`` holds ``*``, ``?`` or ``[`` and names no file or directory that exists:
    a file called ``models/[v2].skops`` is a model, not a pattern that matches ``models/v.skops``."""
    if not GLOB_CHARS.search(model_path):
        return False
    path = _path(model_path, base_dir)
    return not (path.is_file() or path.is_dir())


def _path(model_path: str, base_dir: Path | None) -> Path:
    path = Path(model_path).expanduser()
    return base_dir / path if base_dir is not None else path


def load_entries(values: dict[str, str | None], base_dir: Path | None = None, select: str = "") -> list[Entry]:
    """The entries named by ``values["model-path"]`` (a manifest or a glob), every one validated."""
    model_path = str(values.get("model-path") or "")
    shared = {k: v for k, v in values.items() if k != "model-path" and v not in (None, "")}
    if is_glob(model_path, base_dir):
        entries = _from_glob(model_path, shared, base_dir)
    else:
        entries = _from_manifest(model_path, shared, base_dir)
    if not entries:
        raise UserError(f'--model-path "{model_path}" lists no models', "add at least one model")
    names = [e.name for e in entries]
    for name, count in Counter(names).items():
        if count > 1:
            where = ", ".join(e.source for e in entries if e.name == name)
            raise UserError(f"two models are named {name} ({where})", "give each model a unique name")
    if select:
        chosen = [e for e in entries if e.name == select]
        if not chosen:
            shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (
                f" ... ({len(names):,} in all)" if len(names) > MAX_NAMES_SHOWN else ""
            )
            raise UserError(f'--select "{select}": no model has that name', f"use one of {shown}")
        return chosen
    return entries


def _from_glob(pattern: str, shared: dict[str, Any], base_dir: Path | None) -> list[Entry]:
    root = base_dir.resolve() if base_dir else Path.cwd()
    matches = sorted(itertools.islice(glob.iglob(pattern, root_dir=root, recursive=True), MAX_GLOB_MATCHES + 1))
    if len(matches) > MAX_GLOB_MATCHES:
        raise UserError(
            f'--model-path "{pattern}": the pattern matches more than {MAX_GLOB_MATCHES:,} files',
            "narrow the pattern, or list the models in a manifest (a symbolic link to a folder above makes ** "
            "match the same files again at every level)",
        )
    if not matches:
        raise UserError(
            f'--model-path "{pattern}": the pattern matches no file',
            "check the pattern (it is relative to the working directory)",
        )
    matches = _distinct(matches, root)
    stems = [file_stem(Path(m)) for m in matches]
    # models/a/model.pt and models/b/model.pt: name them by path so the names stay unique
    by_path = len(set(stems)) < len(stems)
    entries = []
    for match, stem in zip(matches, stems, strict=True):
        values = {**shared, "model-path": match}
        request = ConversionRequest.from_mapping(values, base_dir)
        name = file_stem(Path(str(Path(match).with_suffix("")).replace("/", "-"))) if by_path else stem
        entries.append(Entry(name=name, request=_in_subdir(request, name), source=match, model=match))
    return entries


def _distinct(matches: list[str], root: Path) -> list[str]:
    """One match per file, by its shortest path: through a link to a folder, a glob reaches the same
    files again (models/current -> v3), at every level of a loop (models/loop -> .)."""
    seen: set[Path] = set()
    kept = []
    for match in sorted(matches, key=lambda m: (len(Path(m).parts), m)):
        real = (root / match).resolve()
        if real not in seen:
            seen.add(real)
            kept.append(match)
    return sorted(kept)


def _from_manifest(path_text: str, shared: dict[str, Any], base_dir: Path | None) -> list[Entry]:
    from converter.request import parse_path

    path = parse_path("model-path", path_text, base_dir, must_exist=True)
    node = _compose(path)
    if isinstance(node, yaml.SequenceNode):
        defaults_node, models_node = None, node
    elif isinstance(node, yaml.MappingNode):
        parts = {_key(path, key): (key, value) for key, value in node.value}
        for key, (key_node, _) in parts.items():
            if key not in ("defaults", "models"):
                raise UserError(
                    f'{path.name}:{key_node.start_mark.line + 1}: unknown key "{key}"',
                    "a manifest has defaults (optional) and models",
                )
        if "models" not in parts:
            raise UserError(f"{path.name} has no models list", "add models: with one entry per model")
        defaults_node = parts.get("defaults", (None, None))[1]
        models_node = parts["models"][1]
    else:
        raise UserError(f"{path.name} is not a manifest", "write a models: list (see docs/cli.md)")
    if not isinstance(models_node, yaml.SequenceNode):
        raise UserError(
            f"{path.name}:{models_node.start_mark.line + 1}: models must be a list", "write one - entry per model"
        )
    defaults = _options(path, defaults_node, allow_name=False) if defaults_node is not None else {}
    manifest_dir = path.parent
    entries = []
    for item in models_node.value:
        line = item.start_mark.line + 1
        options = _options(path, item, allow_name=True)
        if "model-path" not in options:
            raise UserError(f"{path.name}:{line}: the entry has no model-path", "give model-path for every model")
        values = {**shared, **defaults, **options}
        model = values["model-path"]
        name = values.pop("name", None) or file_stem(Path(model))
        if not _NAME.match(name):
            raise UserError(
                f'{path.name}:{line}: name "{name}" is not valid',
                "use letters, digits, dot, dash and underscore (it names the artifact)",
            )
        for option in PATH_OPTIONS:
            if option in values and option in {**defaults, **options}:
                values[option] = _relative_to(manifest_dir, values[option], base_dir)
        for option in ("model-code", "model-class"):  # the file relative to the manifest, ":Name" kept
            if values.get(option) and option in {**defaults, **options}:
                file_part, sep, class_name = values[option].rpartition(":")
                file_part = file_part if sep else values[option]
                values[option] = _relative_to(manifest_dir, file_part, base_dir) + (f":{class_name}" if sep else "")
        try:
            request = ConversionRequest.from_mapping(values, base_dir)
        except UserError as exc:
            raise UserError(f"{path.name}:{line} ({name}): {exc.message}", exc.hint) from None
        entries.append(Entry(name=name, request=_in_subdir(request, name), source=f"{path.name}:{line}", model=model))
    return entries


def _compose(path: Path) -> yaml.Node:
    """The manifest's YAML nodes. Composed, never constructed: an alias is the node it names, so a
    "billion laughs" of nested aliases is never expanded (and no value holds more than a scalar)."""
    if not path.is_file():
        raise UserError(f"{path.name} is a folder, not a manifest", "give a manifest file, or a model file")
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise UserError(
            f"{path.name} is {size:,} bytes, more than the {MAX_MANIFEST_BYTES // 1024**2} MiB a manifest may take",
            "list fewer models per manifest",
        )
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})", "save it as UTF-8"
        ) from None
    except RecursionError:
        raise UserError(
            f"{path.name} nests lists or mappings too deeply to read", "a manifest is two levels deep"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(
            f"{path.name}{where}: not valid YAML or JSON ({getattr(exc, 'problem', exc)})", "fix the syntax"
        ) from None
    if node is None:
        raise UserError(f"{path.name} is empty", "add a models: list")
    return node


def _options(path: Path, node: yaml.Node, allow_name: bool) -> dict[str, str]:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise UserError(f"{path.name}:{line}: expected option: value pairs", "write each model as a mapping of options")
    allowed = set(OPTION_NAMES) | ({"name"} if allow_name else set())
    options: dict[str, str] = {}
    for key_node, value_node in node.value:
        key = _key(path, key_node)
        if key not in allowed:
            raise UserError(
                f'{path.name}:{key_node.start_mark.line + 1}: unknown key "{key}"',
                f"the keys are {', '.join(sorted(allowed))}",
            )
        if not isinstance(value_node, yaml.ScalarNode):
            raise UserError(
                f"{path.name}:{key_node.start_mark.line + 1}: {key} must be a single value", "write it as text"
            )
        options[key] = str(value_node.value)
    return options


def _key(path: Path, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):  # YAML allows a list or a mapping as a key: ? [a, b]
        raise UserError(f"{path.name}:{node.start_mark.line + 1}: a key must be a name", "write option: value")
    return str(node.value)


def _relative_to(manifest_dir: Path, value: str, base_dir: Path | None) -> str:
    path = Path(value)
    if path.is_absolute():
        return value
    joined = manifest_dir / path
    if base_dir is not None:
        # keep it relative to the workspace so that parse_path confines it there
        try:
            return str(joined.resolve().relative_to(base_dir.resolve()))
        except ValueError:
            return str(joined)
    return str(joined)


def _in_subdir(request: ConversionRequest, name: str) -> ConversionRequest:
    """Each model of a batch writes into <output-dir>/<name>/, so equal file stems cannot collide;
    a baseline folder gives each model its own report, matched by name (checked here, before any conversion).

    The name comes from the repository: that folder may not be a symbolic link, even where the
    user's own output dir may be one (the CLI's).
    """
    output_dir = request.output_dir / name
    baseline = request.baseline
    if baseline.path is not None and baseline.path.is_dir():
        found = locate_report(baseline.path, [name, file_stem(request.model_path)], baseline.optional)
        baseline = replace(baseline, path=found)
    updated = replace(
        request,
        output_dir=output_dir,
        baseline=baseline,
        raw={**request.raw, "output-dir": str(output_dir)},
        link_free_below=request.link_free_below or request.output_dir,
    )
    updated.check_output_dir()  # now, so that a run stops before its first model; and again when written
    return updated
