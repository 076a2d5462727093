"""``--requirements``: the packages a ``--model-code`` file imports, installed before the conversion.

Installing runs code (pip runs the build backend of an sdist, and the installed packages run when
the class file imports them), exactly as ``--model-code`` does. What this module guarantees is
narrower: every package already in the environment stays at its version (each installed
distribution is a pip constraint ``name==version``, so torch, onnx, onnxruntime and every pin of
the image are never replaced: a conflict is exit 2 naming the package), pip reaches only the index
the environment is configured with (no option lines, no URLs, no ``${VAR}``), local wheels, sdists
and project folders must lie inside the workspace, and nothing is installed outside a virtualenv.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from converter.errors import UserError, shorten

MAX_FILE_BYTES = 64 * 1024  # a requirements file is a few lines; this bounds what is read
PIP_TIMEOUT_S = 900
_OPTIONS_SPLIT = re.compile(r"\s+(?=-)")  # "pkg==1.0 --hash=sha256:..." -> requirement, options
_PATH_LIKE = re.compile(r"^[./~\\]|[/\\]|\.(whl|zip|tar\.gz|tgz)$", re.IGNORECASE)
_CONSTRAINT_CONFLICT = re.compile(r"The user requested \(constraint\) ([A-Za-z0-9._-]+)(==\S+|<0)")
# Other builds of an installed package under another distribution name: installing one would write
# over the installed files. A build of the same code is held at the installed version (tensorflow-text
# requires "tensorflow", which tensorflow-cpu is); a different runtime is refused ("<0": no version).
_SAME_CODE = {"tensorflow-cpu": ("tensorflow",), "tensorflow": ("tensorflow-cpu",), "xgboost-cpu": ("xgboost",)}
_OTHER_RUNTIME = {
    "tensorflow-cpu": ("tensorflow-gpu", "tensorflow-intel", "tf-nightly", "tf-nightly-cpu"),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "ort-nightly"),
}
_installed: dict[str, Installed] = {}  # one install per file content and process (many models share it)


@dataclass(frozen=True)
class Installed:
    """What ``--requirements`` did, for the report."""

    file: str
    seconds: float
    packages: list[str] = field(default_factory=list)  # "name version", installed or changed by it


def install_requirements(path: Path, workspace: Path | None) -> Installed:
    """Install the requirements file at ``path`` into this environment, every installed package pinned."""
    _check_virtualenv(path)
    lines = read_requirements(path, workspace)
    key = "\n".join(lines)
    if key not in _installed:
        _installed[key] = _pip_install(path, lines)
    return _installed[key]


def read_requirements(path: Path, workspace: Path | None) -> list[str]:
    """The file's requirements, checked line by line; local paths made absolute (relative to the workspace)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise _bad(path, 0, f"is {path.stat().st_size:,} bytes", f"keep it under {MAX_FILE_BYTES:,} bytes")
    text = path.read_text(encoding="utf-8", errors="replace").replace("\\\n", " ")
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if line:
            lines.append(_checked_line(path, number, line, workspace))
    return lines


def _checked_line(path: Path, number: int, line: str, workspace: Path | None) -> str:
    how = "list packages as name==version, or as a wheel, sdist or folder inside the repository"
    if "$" in line:  # pip expands ${VAR} in requirements files: an environment variable could leave in a URL
        raise _bad(path, number, f'"{line}" uses an environment variable', how)
    requirement, *options = _OPTIONS_SPLIT.split(line)
    if requirement.startswith("-"):
        option = requirement.split("=")[0].split()[0]
        raise _bad(path, number, f"{option} is refused (pip would reach outside the index this run uses)", how)
    for option in options:
        if not option.startswith("--hash="):
            raise _bad(path, number, f"{option.split('=')[0]} is refused (only --hash=... may follow a package)", how)
    if "://" in requirement or re.search(r"\s@\s|^[^@\s]+\s*@", requirement):
        raise _bad(path, number, f'"{requirement}" is a URL', how)
    if _PATH_LIKE.search(requirement):
        return _local_path(path, number, requirement, workspace)
    try:
        Requirement(requirement)
    except InvalidRequirement as exc:
        raise _bad(path, number, f'"{requirement}" is not a requirement ({exc})', how) from None
    return " ".join([requirement, *options])


def _local_path(path: Path, number: int, requirement: str, workspace: Path | None) -> str:
    """A wheel, sdist or project folder: relative to the workspace (the working directory for the CLI), inside it."""
    base = (workspace or Path.cwd()).resolve()
    local = (base / Path(requirement).expanduser()).resolve()
    if workspace is not None and local != base and base not in local.parents:
        raise _bad(
            path, number, f'"{requirement}" is outside the workspace {base}', "give a path inside the repository"
        )
    if not local.exists():
        raise _bad(
            path, number, f'"{requirement}": no such file or directory', "give the path relative to the repository root"
        )
    return str(local)


def _pip_install(path: Path, lines: list[str]) -> Installed:
    before = _pins()
    with tempfile.TemporaryDirectory(prefix="onnx-convert-requirements-") as folder:
        constraints, requirements = Path(folder) / "constraints.txt", Path(folder) / "requirements.txt"
        constraints.write_text("".join(f"{line}\n" for line in constraint_lines(before)))
        requirements.write_text("".join(f"{line}\n" for line in lines))
        command = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        command += ["-c", str(constraints), "-r", str(requirements)]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise _bad(path, 0, f"pip did not finish in {PIP_TIMEOUT_S} s", "list fewer or smaller packages") from None
        seconds = round(time.perf_counter() - start, 3)
    if done.returncode != 0:
        raise _pip_failure(path, done.stdout + done.stderr)
    after = _pins()
    changed = [f"{name} {version}" for name, version in sorted(after.items()) if before.get(name) != version]
    return Installed(path.name, seconds, changed)


def _pip_failure(path: Path, output: str) -> UserError:
    pinned = _CONSTRAINT_CONFLICT.findall(output)  # pip's resolver names each constraint in the conflict
    if pinned and pinned[0][1] == "<0":
        name = pinned[0][0]
        return _bad(
            path,
            0,
            f"needs {name}, another build of a package installed here, which would replace it",
            f"leave {name} (and what requires it) out",
        )
    if pinned:
        name, version = pinned[0]
        return _bad(
            path,
            0,
            f"conflicts with {name}{version}, pinned in this environment",
            f"require a version compatible with it, or leave {name} out",
        )
    errors = [line.removeprefix("ERROR: ") for line in output.splitlines() if line.startswith("ERROR:")]
    return _bad(path, 0, f"pip failed: {shorten(errors[0] if errors else output.strip()[-300:])}", "fix the file")


def constraint_lines(pins: dict[str, str]) -> list[str]:
    """pip constraints that keep every installed distribution, and the files it owns, as they are."""
    held = dict(pins)
    for name, version in pins.items():
        for alias in _SAME_CODE.get(name, ()):
            held.setdefault(alias, version)
    refused = {alias for name in pins for alias in _OTHER_RUNTIME.get(name, ()) if alias not in pins}
    return sorted([f"{name}=={version}" for name, version in held.items()] + [f"{name}<0" for name in refused])


def _pins() -> dict[str, str]:
    """Every distribution installed in this environment, by canonical name."""
    pins: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:  # the first on sys.path is the one imported (a later copy is shadowed)
            pins.setdefault(canonicalize_name(name), dist.version)
    return pins


def _check_virtualenv(path: Path) -> None:
    if sys.prefix == sys.base_prefix:  # the system's or a distribution's Python: not ours to change
        raise UserError(
            f'--requirements "{path}": this Python ({sys.prefix}) is not a virtual environment, '
            "and installing would change it",
            "run onnx-convert from a virtualenv (python -m venv) or the container image",
        )


def _bad(path: Path, line: int, what: str, how: str) -> UserError:
    where = f"{path.name} line {line}" if line else path.name
    return UserError(f'--requirements "{path}": {where}: {what}', how)
