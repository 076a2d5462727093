"""`make screenshots`: real reports rendered as GitHub shows a job summary, for the README and CI.

Trains three small scikit-learn models, converts them with the CLI (one passes, one is held to a
tolerance it cannot meet, one has no ONNX equivalent), and writes the first 1280x800 of each summary
(and of their index) to docs/images/. It then checks the mismatch's first screen: the verdict, the
worst output, its |diff|, the value allowed there, the over-by factor and a passing tolerance must
all be above 800 px; it exits 1 when one is not, so CI shows a broken layout.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from converter.batch import BatchIndex, IndexRow  # noqa: E402
from converter.cli import main as cli  # noqa: E402
from converter.github.outputs import JOB_SUMMARY_LIMIT  # noqa: E402
from converter.markdown.numbers import ceil_sig, sig  # noqa: E402
from converter.report import Report  # noqa: E402
from tools import github_render  # noqa: E402

SHOTS = {"pass": "iris", "mismatch": "diabetes", "error": "embedding"}


def train(models: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.manifold import LocallyLinearEmbedding

    models.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=1000).fit(x, y), models / "iris.skops")
    sio.dump(LocallyLinearEmbedding().fit(x), models / "embedding.skops")
    x, y = load_diabetes(return_X_y=True)
    sio.dump(GradientBoostingRegressor(random_state=0).fit(x, y), models / "diabetes.skops")


def convert(work: Path) -> dict[str, Report]:
    """Each model converted as a user would, from the repository's root (relative paths in the report)."""
    os.chdir(work)
    options = {"iris": [], "diabetes": ["--atol", "1e-5", "--rtol", "1e-8"], "embedding": []}
    for stem, extra in options.items():
        cli(["--model-path", f"models/{stem}.skops", "--output-dir", "onnx-models", "--quiet", *extra])
    return {stem: Report.from_json((work / "onnx-models" / f"{stem}.report.json").read_text()) for stem in options}


def first_screen_problems(report: Report) -> list[str]:
    """What a mismatch's first 800 px lack, as Chromium lays the summary out."""
    assert report.validation is not None
    worst = report.validation.worst_verdict()
    atol, _ = report.validation.passing_tolerance()
    assert worst is not None and atol is not None
    wanted = {
        "the verdict": "from the original, up to",
        "the worst output": "Worst output",
        "its |diff|": sig(worst.worst_diff),
        "the value allowed": sig(worst.worst_allowed),
        "the over-by factor": f"over by {sig(worst.max_ratio)}×",
        "a passing tolerance": f"atol {ceil_sig(atol)}",
    }
    boxes = github_render.positions(report.to_markdown(limit=JOB_SUMMARY_LIMIT))
    problems = []
    for what, text in wanted.items():
        tops = [b["bottom"] for b in boxes if text in b["text"] and b["tag"] in ("h2", "strong", "p")]
        if not tops:
            problems.append(f"{what} ({text}) is not in the summary")
        elif min(tops) > github_render.HEIGHT:
            problems.append(f"{what} ({text}) ends at {min(tops):.0f} px, below the first {github_render.HEIGHT} px")
    return problems


def main(argv: list[str]) -> int:
    out = (Path(argv[0]) if argv else ROOT / "docs" / "images").resolve()
    with tempfile.TemporaryDirectory(prefix="screenshots-") as folder:
        work = Path(folder)
        train(work / "models")
        reports = convert(work)
        for shot, stem in SHOTS.items():
            png = github_render.screenshot(
                reports[stem].to_markdown(limit=JOB_SUMMARY_LIMIT), out / f"summary-{shot}.png"
            )
            print(f"wrote {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")
        index = BatchIndex([IndexRow.from_report(stem, report) for stem, report in reports.items()])
        png = github_render.screenshot(index.to_markdown(), out / "summary-index.png")
        print(f"wrote {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")
        problems = first_screen_problems(reports["diabetes"])
    for problem in problems:
        print(f"error: the mismatch summary's first screen: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
