"""The pins agree: requirements/constraints.in, the constraints.txt compiled from it, and the hashed
requirements file of each install (make requirements), without asking PyPI.

make requirements-check recompiles them all (it asks PyPI); these checks read the files only.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
TORCH_WHEEL = Path("/opt/container-sandbox/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


def pins(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, sha256 hashes) of each ``name==version`` entry of a requirements file."""
    entries: dict[str, tuple[str, frozenset[str]]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if match := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            name = canonicalize_name(match[1])
            entries[name] = (match[2], frozenset())
        elif hashed := re.match(r"\s+--hash=sha256:([0-9a-f]{64})", line):
            version, hashes = entries[name]
            entries[name] = (version, hashes | {hashed[1]})
    return entries


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(text).name) for text in requirements}


def listed(path: Path) -> set[str]:
    """The packages a .in file names (comments and blank lines left out)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return names([line for line in lines if line])


# Each install: what it must hold (pyproject.toml's dependencies, its extras, the tools of the .in files).
CORE = names(PROJECT["dependencies"])
ALL_EXTRAS = set().union(*(names(packages) for packages in EXTRAS.values()))
DEV = listed(REQUIREMENTS / "dev.in")
INSTALLS = {
    "core": CORE,
    "sklearn": CORE | names(EXTRAS["sklearn"]),
    "pytorch": CORE | names(EXTRAS["pytorch"]),
    "tensorflow": CORE | names(EXTRAS["tensorflow"]),
    "full": CORE | ALL_EXTRAS,
    "dev": CORE | ALL_EXTRAS | DEV,
    "bench": CORE | ALL_EXTRAS | DEV | listed(REQUIREMENTS / "bench.in"),
}
LOCKED = pins(REQUIREMENTS / "constraints.txt")


def test_constraints_txt_holds_every_version_of_constraints_in() -> None:
    chosen = pins(REQUIREMENTS / "constraints.in")
    assert {name: LOCKED.get(name, ("missing", frozenset()))[0] for name in chosen} == {
        name: version for name, (version, _) in chosen.items()
    }


def test_constraints_in_pins_every_package_the_project_names() -> None:
    assert INSTALLS["bench"] - set(pins(REQUIREMENTS / "constraints.in")) == set()


@pytest.mark.parametrize("install", INSTALLS)
def test_an_install_holds_its_packages_at_the_versions_of_constraints_txt_each_with_a_hash(install: str) -> None:
    entries = pins(REQUIREMENTS / f"{install}.txt")

    assert INSTALLS[install] - set(entries) == set()
    assert {name: version for name, (version, _) in entries.items()} == {
        name: LOCKED[name][0] for name in entries if name in LOCKED
    }
    assert [name for name, (_, hashes) in entries.items() if not hashes] == []


@pytest.mark.parametrize("install", ["pytorch", "full", "dev", "bench"])
def test_torch_is_the_cpu_build_with_only_its_wheels_hash(install: str) -> None:
    version, hashes = pins(REQUIREMENTS / f"{install}.txt")["torch"]

    assert version.endswith("+cpu")  # no release on PyPI has it: PyPI's torch is the CUDA build
    assert len(hashes) == 1
    if TORCH_WHEEL.is_file():  # the wheel the image build copies into docker/wheels/
        assert hashes == {_sha256(TORCH_WHEEL)}


@functools.cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_image_installs_every_package_with_require_hashes() -> None:
    script = (ROOT / "docker" / "install-deps.sh").read_text()
    installs = [line for line in script.splitlines() if line.strip().startswith("pip install")]
    assert installs and all("--require-hashes" in line for line in installs), installs
