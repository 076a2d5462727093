"""Fan-out across runners: the strategy.matrix a manifest becomes, and the artifact each job uploads.

`mode: plan` (or ``onnx-convert plan``) prints one matrix job per model; each job converts one
entry (`select`) and uploads `<name>-onnx`; `mode: merge` looks for exactly those artifacts.
"""

from __future__ import annotations

from converter.errors import UserError
from converter.manifest import Entry

# https://docs.github.com/en/actions/using-jobs/using-a-matrix-for-your-jobs: "A matrix will generate
# a maximum of 256 jobs per workflow run."
MAX_MATRIX_JOBS = 256


def artifact_name(stem: str) -> str:
    """The artifact of one model (a matrix job's, or a single conversion's): ``<stem>-onnx``."""
    return f"{stem}-onnx"


def plan(entries: list[Entry], model_path: str) -> dict[str, list[dict[str, str]]]:
    """A GitHub Actions matrix: one job per model (`strategy.matrix: ${{ fromJSON(...) }}`).

    GitHub refuses a matrix of more than 256 jobs. More models are refused here rather than cut
    or split: a cut would silently skip models, and a second matrix needs a second job that the
    workflow would have to declare in advance.
    """
    if len(entries) > MAX_MATRIX_JOBS:
        raise UserError(
            f'--model-path "{model_path}" lists {len(entries)} models, and a GitHub Actions matrix runs at most '
            f"{MAX_MATRIX_JOBS} jobs",
            f"split the models into manifests of at most {MAX_MATRIX_JOBS} (a plan job and a matrix for each), "
            "or convert them in one job (model-path without mode plan)",
        )
    return {"include": [{"name": e.name, "model": e.model} for e in entries]}
