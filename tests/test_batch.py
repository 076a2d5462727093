"""Many models in one run: manifests, globs, plan/select/merge, and isolation of failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converter.batch import BatchIndex, IndexRow
from converter.errors import UserError
from converter.github.outputs import JOB_SUMMARY_LIMIT
from converter.manifest import load_entries
from converter.markdown.index import CUT_NOTE_BYTES
from tests.fixtures.runner import markdown_html
from tests.fixtures.sklearn import dataset
from tests.fixtures.tiers import model_fixture

MODEL_FILES = ("models/a/model.skops", "models/b/model.skops", "models/centroid.skops")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with three model files, for manifests that are read, planned or refused: the
    model files themselves are never read."""
    root = tmp_path_factory.mktemp("repo")
    for name in MODEL_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"never read: a manifest is parsed without opening its models")
    return root


@model_fixture(scope="module")
def model_repo(tmp_path_factory: pytest.TempPathFactory, iris_skops: Path) -> Path:
    """The same repository with real models: two that convert, and one that cannot."""
    import skops.io as sio
    from sklearn.cluster import KMeans
    from sklearn.manifold import LocallyLinearEmbedding

    root = tmp_path_factory.mktemp("model-repo")
    (root / "models" / "a").mkdir(parents=True)
    (root / "models" / "b").mkdir(parents=True)
    x, _ = dataset("iris")
    (root / "models" / "a" / "model.skops").write_bytes(iris_skops.read_bytes())
    sio.dump(KMeans(3, n_init=2, random_state=0).fit(x), root / "models" / "b" / "model.skops")
    sio.dump(LocallyLinearEmbedding().fit(x), root / "models" / "centroid.skops")  # no ONNX equivalent
    return root


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


MANIFEST = """\
defaults:
  rtol: 1e-3
models:
  - name: iris-a
    model-path: models/a/model.skops
  - name: clusters-b
    model-path: models/b/model.skops
    atol: 1e-2
"""


def test_manifest_entries_take_defaults_and_their_own_options(repo: Path) -> None:
    entries = load_entries({"model-path": str(write(repo / "onnx-models.yml", MANIFEST)), "output-dir": "out"})
    assert [e.name for e in entries] == ["iris-a", "clusters-b"]
    assert entries[0].request.model_path == repo / "models" / "a" / "model.skops"
    assert entries[0].request.rtol == 1e-3 and entries[0].request.atol == 1e-3
    assert entries[1].request.atol == 1e-2
    # each model writes into its own folder, so equal stems (model.skops) cannot collide
    assert entries[0].request.output_dir == Path("out/iris-a")
    assert entries[1].request.output_dir == Path("out/clusters-b")


def test_model_class_files_are_relative_to_the_manifest(repo: Path) -> None:
    (repo / "nested").mkdir(exist_ok=True)
    manifest = write(
        repo / "nested" / "m.yml",
        "models:\n  - model-path: ../models/a/model.skops\n    model-class: nets/net.py:Net\n",
    )
    [entry] = load_entries({"model-path": str(manifest)})
    assert entry.request.model_code.text == f"{repo / 'nested' / 'nets' / 'net.py'}:Net"
    assert entry.request.model_path == repo / "nested" / ".." / "models" / "a" / "model.skops"


def test_json_manifest_is_the_same_schema(repo: Path) -> None:
    manifest = {"models": [{"model-path": "models/a/model.skops", "name": "iris"}]}
    entries = load_entries({"model-path": str(write(repo / "m.json", json.dumps(manifest, indent=2)))})
    assert [(e.name, e.source) for e in entries] == [("iris", "m.json:3")]


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "models:\n  - model-path: models/a/model.skops\n    tolerance: 1\n",
            'bad.yml:3: unknown key "tolerance"',
        ),
        (
            "models:\n  - model-path: models/a/model.skops\n  - model-path: models/missing.skops\n",
            'bad.yml:3 (missing): --model-path "',
        ),
        (
            "models:\n  - name: x\n    model-path: models/a/model.skops\n  - name: x\n    model-path: models/b/model.skops\n",
            "two models are named x (bad.yml:2, bad.yml:4)",
        ),
        ("models:\n  - name: x\n", "bad.yml:2: the entry has no model-path"),
        ("defaults:\n  rtol: -1\nmodels:\n  - model-path: models/a/model.skops\n", 'bad.yml:4 (model): --rtol "-1"'),
        ("model:\n  - model-path: a\n", 'bad.yml:1: unknown key "model"'),
        ("models: [\n", "bad.yml:2: not valid YAML or JSON"),
        ("models:\n  - name: 'a/b'\n    model-path: models/a/model.skops\n", 'bad.yml:2: name "a/b" is not valid'),
    ],
)
def test_bad_manifests_are_refused_before_any_conversion(repo: Path, text: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_entries({"model-path": str(write(repo / "bad.yml", text))})
    assert err.value.one_line().startswith(message)


def test_glob_converts_every_match_and_refuses_an_empty_one(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    entries = load_entries({"model-path": "models/**/*.skops"})
    assert sorted(e.model for e in entries) == ["models/a/model.skops", "models/b/model.skops", "models/centroid.skops"]
    with pytest.raises(UserError, match=r'--model-path "models/\*.keras": the pattern matches no file'):
        load_entries({"model-path": "models/*.keras"})


def test_a_glob_with_equal_stems_names_models_by_path(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    entries = load_entries({"model-path": "models/*/model.skops"})
    assert [e.name for e in entries] == ["models-a-model", "models-b-model"]


def test_a_model_name_and_its_file_stem_follow_one_rule(
    run_cli, iris_skops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The glob's entry name and the files the model writes in its folder are named alike: ASCII only.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "modèle iris.skops").write_bytes(iris_skops.read_bytes())
    result = run_cli("--model-path", "models/*.skops", "--output-dir", "out")
    assert result.code == 0, result.stdout + result.stderr
    [entry] = load_entries({"model-path": "models/*.skops"})
    assert entry.name == "mod_le_iris"
    assert sorted(p.name for p in (tmp_path / "out" / "mod_le_iris").iterdir()) == [
        "mod_le_iris.onnx",
        "mod_le_iris.report.json",
        "mod_le_iris.report.md",
    ]


def test_batch_run_isolates_a_failing_model_and_exits_1(
    model_repo: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_repo)
    result = run_cli("--model-path", "models/**/*.skops", "--output-dir", "batch-out")
    assert result.code == 1
    verdicts = {line.split()[1]: line.split()[0] for line in result.stdout.splitlines() if line[:4] in ("PASS", "FAIL")}
    assert verdicts == {"models-a-model": "PASS", "models-b-model": "PASS", "models-centroid": "FAIL"}
    index = BatchIndex.from_json((model_repo / "batch-out" / "index.json").read_text())
    by_name = {row.name: row for row in index.rows}
    assert by_name["models-centroid"].status == "error"
    assert "LocallyLinearEmbedding cannot be converted to ONNX" in by_name["models-centroid"].error
    markdown = (model_repo / "batch-out" / "index.md").read_text()
    assert markdown.startswith("## ❌ 1 of 3 models failed")
    assert "| Model | Result | Max \\|diff\\| | Tolerance | Over by | ONNX file | Time |" in markdown


def test_plan_select_merge_round_trip(model_repo: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model_repo)
    write(model_repo / "onnx-models.yml", MANIFEST)
    planned = run_cli("plan", "--model-path", "onnx-models.yml")
    assert planned.code == 0
    matrix = json.loads(planned.stdout)
    assert matrix == {
        "include": [
            {"name": "iris-a", "model": "models/a/model.skops"},
            {"name": "clusters-b", "model": "models/b/model.skops"},
        ]
    }
    # one "job" per matrix entry, each converting only its model
    for job in matrix["include"]:
        done = run_cli("--model-path", "onnx-models.yml", "--select", job["name"], "--output-dir", "fan-out")
        assert done.code == 0, done.errors
        assert (model_repo / "fan-out" / job["name"] / "model.onnx").is_file()
    merged = run_cli("merge", "--output-dir", "fan-out")
    assert merged.code == 0, merged.errors
    index = BatchIndex.from_json((model_repo / "fan-out" / "index.json").read_text())
    assert [(r.name, r.passed, r.framework) for r in index.rows] == [
        ("clusters-b", True, "sklearn"),
        ("iris-a", True, "sklearn"),
    ]
    assert index.rows[0].opset and index.rows[0].onnx_bytes and index.rows[0].max_abs_diff is not None


def test_select_that_names_no_entry_is_refused(repo: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    write(repo / "onnx-models.yml", MANIFEST)
    result = run_cli("--model-path", "onnx-models.yml", "--select", "resnet")
    assert result.code == 2
    assert result.errors == 'error: --select "resnet": no model has that name; use one of iris-a, clusters-b\n'
    assert result.written() == []


def test_merge_without_reports_is_refused(run_cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("merge", "--output-dir", str(tmp_path / "empty"))
    assert result.code == 2
    assert "holds no *.report.json" in result.errors


def test_index_rows_show_hostile_names_and_errors_as_text() -> None:
    row = IndexRow(
        name="a|b`c",
        model="models/x.skops",
        passed=False,
        status="error",
        framework="sklearn",
        error="cannot read m\n::warning::x <script>alert(1)</script> | [a](http://e.example)",
    )
    markdown = BatchIndex([row]).to_markdown()
    [line] = [line for line in markdown.splitlines() if line.startswith("| ``a")]
    assert line == (
        "| ``a\\|b`c`` (sklearn) | ❌ error: cannot read m\\\\n::warning::x "
        "&lt;script&gt;alert(1)&lt;/script&gt; &#124; \\[a\\](http://e.example) | — | — | — | — | 0.0 s |"
    )
    html, raw = markdown_html(markdown)
    assert raw == [] and "<script" not in html and "<a " not in html
    assert "<details><summary>❌ a|b`c: error</summary>" in html  # the folded verdict's title is text


def _failed(number: int) -> IndexRow:
    error = f"models/m{number}.skops is not a model this tool can read: no scikit-learn estimator in it; check the file"
    return IndexRow(name=f"m{number}", model=f"models/m{number}.skops", passed=False, status="error", error=error)


def _passed(number: int) -> IndexRow:
    return IndexRow(name=f"p{number}", model=f"models/p{number}.skops", passed=True, status="passed", opset=17)


def test_an_index_of_ten_thousand_failures_stays_under_the_job_summary_limit() -> None:
    index = BatchIndex([_passed(0), *[_failed(i) for i in range(10_000)]])

    markdown = index.to_markdown(limit=JOB_SUMMARY_LIMIT)

    assert len(markdown.encode()) <= JOB_SUMMARY_LIMIT
    shown = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert all("❌ error" in line for line in shown)  # failures first
    assert (
        f"\n_{10_001 - len(shown):,} of 10,001 models not shown ({10_000 - len(shown):,} failed, 1 passed), to keep "
        "this under GitHub's job summary limit; failures are listed first, and index.json has every model._\n"
    ) in markdown
    assert len(BatchIndex.from_json(index.to_json()).rows) == 10_001


def test_a_cut_index_lists_failures_before_passes_and_counts_what_it_left_out() -> None:
    rows = [_passed(i) if i % 5 else _failed(i) for i in range(1, 21)]  # m5, m10, m15, m20 among 16 passes
    full = BatchIndex(rows).to_markdown().splitlines()
    head = "\n".join(full[: full.index("|---|---|---:|---|---:|---|---:|") + 1])
    fitting = [_failed(i) for i in (5, 10, 15, 20)] + [_passed(1), _passed(2)]
    limit = len(head.encode()) + CUT_NOTE_BYTES + sum(len(row.to_markdown().encode()) + 1 for row in fitting)

    markdown = BatchIndex(rows).to_markdown(limit=limit)

    names = [line.split("`")[1] for line in markdown.splitlines() if line.startswith("| `")]
    assert names == ["m5", "m10", "m15", "m20", "p1", "p2"]
    assert (
        "_14 of 20 models not shown (0 failed, 14 passed), to keep this under GitHub's job summary limit; "
        "failures are listed first, and index.json has every model._"
    ) in markdown.splitlines()
    assert len(markdown.encode()) <= limit


def test_a_long_error_is_cut_in_the_index_and_kept_whole_in_the_json() -> None:
    row = IndexRow(name="m", model="m.skops", passed=False, status="error", error="x" * 5000)
    assert len(row.to_markdown()) < 400
    assert BatchIndex.from_json(BatchIndex([row]).to_json()).rows[0].error == "x" * 5000


def _manifest_of(count: int) -> str:
    return "models:\n" + "".join(f"  - name: m{i}\n    model-path: models/a/model.skops\n" for i in range(count))


def test_plan_refuses_more_models_than_a_github_matrix_runs(repo: Path, run_cli, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    write(repo / "big.yml", _manifest_of(257))

    result = run_cli("plan", "--model-path", "big.yml")

    assert result.code == 2
    assert result.stdout == ""
    assert result.errors == (
        'error: --model-path "big.yml" lists 257 models, and a GitHub Actions matrix runs at most 256 jobs; '
        "split the models into manifests of at most 256 (a plan job and a matrix for each), or convert them "
        "in one job (model-path without mode plan)\n"
    )


def test_plan_of_256_models_is_one_matrix(repo: Path, run_cli, monkeypatch) -> None:
    monkeypatch.chdir(repo)
    write(repo / "full.yml", _manifest_of(256))

    result = run_cli("plan", "--model-path", "full.yml")

    assert result.code == 0, result.errors
    assert len(json.loads(result.stdout)["include"]) == 256
