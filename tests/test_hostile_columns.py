"""DataFrame column names from the repository: the ONNX inputs keep them, and nothing they hold breaks a shell.

skl2onnx makes every input name a C identifier ("unit price" -> "unit_price"), so a ColumnTransformer
fitted on such columns failed validation (the file expected other inputs than the model was fed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from converter.request import parse_input_dtypes, parse_input_shapes
from tests.fixtures.runner import markdown_html
from tests.fixtures.sklearn import lazy

pytestmark = pytest.mark.converts
sklearn, sio, pd = lazy("sklearn"), lazy("skops.io"), lazy("pandas")
NUMERIC = ["unit price", "c.d", "e:f", "g;h", "i\nj", "ü€", "<script>alert(1)</script>", "1st", "k|l", "m,n", ' "q" ']
COLOUR = "colour `code`"


def _fit(tmp_path: Path, numeric: list[str], name: str = "columns.skops") -> tuple[Path, Any]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({column: rng.normal(size=60) for column in numeric})
    frame[COLOUR] = np.array(["red", "green", "blue"])[np.arange(60) % 3]
    preprocessing = sklearn.preprocessing
    columns = sklearn.compose.ColumnTransformer(
        [("num", preprocessing.StandardScaler(), numeric), ("cat", preprocessing.OneHotEncoder(), [COLOUR])]
    )
    model = sklearn.pipeline.Pipeline([("columns", columns), ("model", sklearn.linear_model.LogisticRegression())])
    model.fit(frame, (frame[numeric[0]] > 0).astype(int))
    sio.dump(model, tmp_path / name)
    return tmp_path / name, frame


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return _fit(tmp_path_factory.mktemp("columns"), NUMERIC)


def test_the_onnx_inputs_are_the_column_names_as_they_are(run_cli, hostile) -> None:
    result = run_cli("--model-path", str(hostile[0]))

    assert result.code == 0, result.stdout + result.stderr
    model = onnx.load(result.output_dir / "columns.onnx")
    assert [i.name for i in model.graph.input] == [*NUMERIC, COLOUR]
    assert result.report("columns")["warnings"] == []


def test_the_summary_shows_the_names_as_text(run_cli, hostile) -> None:
    result = run_cli("--model-path", str(hostile[0]))

    html, raw = markdown_html(result.markdown("columns"))
    assert raw == []  # no HTML from a column name
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in html
    assert "<code>i\\nj</code>" in html and "<code>k|l</code>" in html
    assert "<code>colour `code`</code>" in html


def test_a_csv_whose_header_holds_the_names_feeds_those_columns(run_cli, hostile, tmp_path: Path) -> None:
    path, frame = hostile
    frame.head(12).to_csv(tmp_path / "rows.csv", index=False)  # quotes the names with , " and a newline

    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.csv"))

    assert result.code == 0, result.stdout + result.stderr
    assert result.report("columns")["validation"]["input_source"] == "rows.csv"


def test_input_shapes_and_dtypes_name_such_columns_in_json_quotes(run_cli, hostile) -> None:
    assert parse_input_shapes('"g;h":batchx1;"i\\nj":batchx1;e:f:batchx1') == {
        "g;h": ("batch", 1),
        "i\nj": ("batch", 1),
        "e:f": ("batch", 1),
    }
    assert parse_input_dtypes('"colour `code`":string') == {COLOUR: "string"}

    result = run_cli("--model-path", str(hostile[0]), "--input-shapes", '"g;h":nx1;"unit price":nx1')

    assert result.code == 0, result.stdout + result.stderr


def test_a_column_named_like_an_output_is_the_input_name_input_and_the_report_says_so(run_cli, tmp_path) -> None:
    path, _ = _fit(tmp_path, ["label", "probabilities", "x"], "outputs.skops")

    result = run_cli("--model-path", str(path))

    assert result.code == 0, result.stdout + result.stderr
    model = onnx.load(result.output_dir / "outputs.onnx")
    assert [i.name for i in model.graph.input] == ["label_input", "probabilities_input", "x", COLOUR]
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    assert result.report("outputs")["warnings"] == [
        "column 'label' is the ONNX input 'label_input': an output of the model has that name",
        "column 'probabilities' is the ONNX input 'probabilities_input': an output of the model has that name",
    ]


def test_a_column_without_a_name_is_one_error_line(run_cli, tmp_path) -> None:
    path, _ = _fit(tmp_path, ["", "x"], "unnamed.skops")

    result = run_cli("--model-path", str(path))

    assert result.code == 1
    assert result.errors == (
        "error: Pipeline(ColumnTransformer, LogisticRegression) takes a DataFrame column whose name is empty, and an "
        "ONNX input needs a name; give the column a name before fitting\n"
    )


def test_a_header_of_names_that_read_as_numbers_is_still_the_header(run_cli, tmp_path) -> None:
    path, frame = _fit(tmp_path, ["1", "2.5"], "numbers.skops")
    frame[["1", "2.5", COLOUR]].head(8).to_csv(tmp_path / "rows.csv", index=False)

    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.csv"))

    assert result.code == 0, result.stdout + result.stderr
    assert result.report("numbers")["validation"]["batch_sizes"][0] == 8
