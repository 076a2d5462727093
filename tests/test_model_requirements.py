"""--requirements: the packages a --model-class file imports, installed before the conversion.

pip runs for real, with PIP_NO_INDEX set so that nothing is downloaded and the shared
environment is never changed: a conflict is found by the resolver before anything is installed,
and an already installed package is installed as "already satisfied".
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path

import pytest

from converter.errors import UserError
from converter.github.inputs import read_inputs
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.pytorch import ModelFiles
from tests.fixtures.wheels import make_wheel

NUMPY = md.version("numpy")
HOW = "list packages as name==version, or as a wheel, sdist or folder inside the repository"


@pytest.fixture(autouse=True)
def no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)


def write_requirements(folder: Path, text: str) -> Path:
    path = folder / "reqs.txt"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "--index-url https://example.com/simple",
            "line 2: --index-url is refused (pip would reach outside the index this run uses)",
        ),
        (
            "--extra-index-url=https://example.com/simple",
            "line 2: --extra-index-url is refused (pip would reach outside the index this run uses)",
        ),
        ("-e .", "line 2: -e is refused (pip would reach outside the index this run uses)"),
        ("-r other.txt", "line 2: -r is refused (pip would reach outside the index this run uses)"),
        ("tiny==1.0 --global-option=x", "line 2: --global-option is refused (only --hash=... may follow a package)"),
        (
            "tiny @ https://example.com/tiny-1.0-py3-none-any.whl",
            'line 2: "tiny @ https://example.com/tiny-1.0-py3-none-any.whl" is a URL',
        ),
        ("git+https://example.com/tiny.git", 'line 2: "git+https://example.com/tiny.git" is a URL'),
        ("tiny==${GITHUB_TOKEN}", 'line 2: "tiny==${GITHUB_TOKEN}" uses an environment variable'),
        ("tiny=1.0", 'line 2: "tiny=1.0" is not a requirement'),
    ],
)
def test_a_line_that_reaches_outside_is_refused(run_cli, unread_model: Path, line: str, problem: str) -> None:
    requirements = write_requirements(unread_model.parent, f"# packages of models/net.py\n{line}\n")
    result = run_cli("--model-path", str(unread_model), "--requirements", str(requirements))
    message = result.errors.strip()
    assert message.startswith(f'error: --requirements "{requirements}": reqs.txt {problem}'), message
    assert message.endswith(f"; {HOW}")
    assert_one_line_error(result, 2, message)
    assert result.written() == []


def test_a_wheel_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "models").mkdir(parents=True)
    (workspace / "models" / "weights.pt").write_bytes(b"weights")
    make_wheel(tmp_path, "tiny", [])
    write_requirements(workspace, "../tiny-1.0-py3-none-any.whl\n")
    inputs = {"model-path": "models/weights.pt", "requirements": "reqs.txt"}
    request, _ = read_inputs(workspace, inputs.get)
    from converter.packages import read_requirements

    with pytest.raises(UserError) as caught:
        read_requirements(request.requirements, workspace)
    assert caught.value.one_line() == (
        f'--requirements "{workspace.resolve() / "reqs.txt"}": reqs.txt line 1: '
        f'"../tiny-1.0-py3-none-any.whl" is outside the workspace {workspace.resolve()}; '
        "give a path inside the repository"
    )


def test_a_requirement_against_a_pinned_package_is_refused_naming_it(run_cli, unread_model: Path) -> None:
    requirements = write_requirements(unread_model.parent, "numpy<2\n")
    result = run_cli("--model-path", str(unread_model), "--requirements", str(requirements))
    assert_one_line_error(
        result,
        2,
        f'error: --requirements "{requirements}": reqs.txt: conflicts with numpy=={NUMPY}, pinned in this '
        "environment; require a version compatible with it, or leave numpy out",
    )
    assert result.written() == []


TENSORFLOW = md.version("tensorflow-cpu")


@pytest.mark.parametrize(
    ("wheel", "requires", "problem"),
    [
        (  # the conflict is the wheel's, one level down: pip's resolver names the pinned package
            "old_numpy_user",
            "numpy<2",
            f"conflicts with numpy=={NUMPY}, pinned in this environment; "
            "require a version compatible with it, or leave numpy out",
        ),
        (  # tensorflow-text requires "tensorflow", the full build of the tensorflow-cpu installed here: a
            # newer one would write another TensorFlow over the installed files, so it is held at its version
            "tf_user",
            "tensorflow>=99",
            f"conflicts with tensorflow=={TENSORFLOW}, pinned in this environment; "
            "require a version compatible with it, or leave tensorflow out",
        ),
        (  # onnxruntime-gpu would replace the onnxruntime that validates the export
            "gpu_user",
            "onnxruntime-gpu",
            "needs onnxruntime-gpu, another build of a package installed here, which would replace it; "
            "leave onnxruntime-gpu (and what requires it) out",
        ),
    ],
)
def test_a_dependency_this_environment_cannot_take_is_refused_naming_it(
    run_cli, unread_model: Path, monkeypatch: pytest.MonkeyPatch, wheel: str, requires: str, problem: str
) -> None:
    monkeypatch.chdir(unread_model.parent)  # the CLI's paths are relative to the working directory
    make_wheel(unread_model.parent, wheel, [requires])
    requirements = write_requirements(unread_model.parent, f"./{wheel}-1.0-py3-none-any.whl\n")
    result = run_cli("--model-path", str(unread_model), "--requirements", str(requirements))
    assert_one_line_error(result, 2, f'error: --requirements "{requirements}": reqs.txt: {problem}')


def test_outside_a_virtualenv_nothing_is_installed(
    run_cli, unread_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)
    requirements = write_requirements(unread_model.parent, "numpy\n")
    result = run_cli("--model-path", str(unread_model), "--requirements", str(requirements))
    assert_one_line_error(
        result,
        2,
        f'error: --requirements "{requirements}": this Python ({sys.prefix}) is not a virtual environment, and '
        "installing would change it; run onnx-convert from a virtualenv (python -m venv) or the container image",
    )


def test_requirements_are_installed_and_timed_and_the_repository_root_is_importable(
    run_cli, model_files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A class file in models/ imports the repository's own package; numpy is already satisfied."""
    repo = tmp_path / "repo"
    (repo / "mypackage").mkdir(parents=True)
    (repo / "mypackage" / "__init__.py").write_text("")
    (repo / "mypackage" / "layers.py").write_text(
        "import torch\n\n"
        "class MLP(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))\n\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n"
    )
    (repo / "models").mkdir()
    (repo / "models" / "net.py").write_text("from mypackage.layers import MLP\n")
    write_requirements(repo, "numpy  # already installed\n")
    monkeypatch.chdir(repo)
    result = run_cli(
        "--model-path", str(model_files["mlp.pt"]), "--model-class", "models/net.py:MLP",
        "--requirements", "reqs.txt", "--input-shapes", "batchx4",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = result.report("mlp")
    assert report["requirements"]["file"] == "reqs.txt"
    assert report["requirements"]["packages"] == []
    assert 0 < report["requirements"]["seconds"] <= report["timings"]["requirements"]
    assert f"| Requirements | `reqs.txt` in {report['requirements']['seconds']:.1f} s: nothing new |" in (
        result.markdown("mlp")
    )
    assert "mypackage" not in sys.path and str(repo) not in sys.path
