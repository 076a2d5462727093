"""Names from the repository (files, tensors, manifest entries) and messages are text where they are
shown: in the markdown reports never markup (no HTML, no broken table, no link, no code span they
can close), in the CLI's output never a workflow command (the action's is in test_github_action)."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.escape import markdown_block, markdown_code, markdown_text, printable, table_cell
from converter.report import ModelInfo, OnnxInfo, Report
from tests.fixtures.runner import markdown_html, read_as_runner

HOSTILE = "m\n::warning::x <script>alert(1)</script> | `t` [a](http://e.example) ![i](http://e.example/i.png) # *b*"
# A file name cannot hold "/", and "[", "*" or "?" make --model-path a glob: the same without them.
HOSTILE_FILE = "m\n::warning::x <script>alert(1)<img src=x onerror=alert(1)> | `t` # _b_.skops"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("iris.skops", "iris.skops"),
        # the escape's backslash is itself escaped: GitHub shows a\nb
        ("a\nb\rc\td\x1be\u2028f\u202eg", "a\\\\nb\\\\rc\\\\td\\\\x1be\\\\u2028f\\\\u202eg"),
        ("<script>&amp;", "&lt;script&gt;&amp;amp;"),
        ("a|b", "a&#124;b"),
        (
            "`x` *y* _z_ [l](u) ![i](u) ~s~ #h $m$ \\",
            "\\`x\\` \\*y\\* \\_z\\_ \\[l\\](u) \\!\\[i\\](u) \\~s\\~ \\#h \\$m\\$ \\\\",
        ),
    ],
)
def test_markdown_text_shows_every_character_and_makes_no_markup(text: str, escaped: str) -> None:
    assert markdown_text(text) == escaped


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("input", "`input`"),
        ("a`b", "``a`b``"),
        ("``x", "``` ``x ```"),
        ("<b>|\n", "`<b>|\\n`"),
        ("", "` `"),
    ],
)
def test_markdown_code_has_a_fence_no_content_can_close(text: str, escaped: str) -> None:
    assert markdown_code(text) == escaped


def test_a_fenced_block_cannot_be_closed_by_its_content() -> None:
    assert markdown_block("a\n```\n<script>", "sh") == "````sh\na\n```\n<script>\n````"
    html, raw = markdown_html(markdown_block("a\n```\n<script>", "sh") + "\n\nafter")
    assert raw == [] and "&lt;script&gt;" in html and "<p>after</p>" in html


def test_printable_is_one_line_without_a_command_marker() -> None:
    assert printable("a\n::warning::b\r##[error]c%0A") == "a\\n::warning::b\\r##\\x5berror]c%0A"


def test_hostile_values_in_a_table_keep_its_columns_and_make_no_html() -> None:
    cells = [markdown_code(HOSTILE), markdown_text(HOSTILE)]
    table = "| a | b |\n|---|---|\n| " + " | ".join(table_cell(c) for c in cells) + " |\n"
    html, raw = markdown_html(table)
    assert raw == []
    assert html.count("<td>") == 2
    assert "<script" not in html and "<a " not in html and "<img" not in html and "<em>" not in html
    assert "<code>m\\n::warning::x &lt;script&gt;alert(1)&lt;/script&gt; | `t`" in html


def test_a_hostile_model_file_name_is_text_in_the_markdown_report(tmp_path: Path, run_cli, iris_skops: Path) -> None:
    model = tmp_path / HOSTILE_FILE
    model.write_bytes(iris_skops.read_bytes())

    result = run_cli("--model-path", str(model))

    assert result.code == 0, result.errors
    [name] = [p.name for p in result.output_dir.glob("*.report.md")]
    markdown = (result.output_dir / name).read_text()
    assert markdown.splitlines()[0].startswith(
        "## ✅ m\\\\n::warning::x &lt;script&gt;alert(1)&lt;img src=x onerror=alert(1)&gt; &#124; \\`t\\` "
        "\\# \\_b\\_.skops → "
    )
    assert (
        f"| File | ``{tmp_path}/m\\n::warning::x <script>alert(1)<img src=x onerror=alert(1)> \\| `t` # _b_.skops`` |"
        in markdown
    )
    html, raw = markdown_html(markdown)
    assert raw == []
    assert "<script" not in html and "<img" not in html and "<a " not in html and "<em>" not in html
    assert "<h2>" in html and html.count("<h2>") == 1  # the name cannot start a heading of its own


def test_hostile_tensor_names_and_messages_are_text_in_every_section() -> None:
    onnx = OnnxInfo(
        path="out/m.onnx",
        sha256="0" * 64,
        bytes=1,
        opset=17,
        opsets={"": 17},
        ir_version=8,
        inputs=[{"name": HOSTILE, "shape": [HOSTILE, 3], "dtype": "float32"}],
        outputs=[{"name": "<b>y</b>", "shape": [None], "dtype": "float32"}],
        operators={},
        exporter="x <i>",
        export_path="route | <u>",
        fallback_reason=HOSTILE,
        files=["out/m.onnx", "out/<x>|.data"],
    )
    report = Report(
        passed=False,
        status="error",
        model=ModelInfo(HOSTILE, "pytorch", "torchscript", HOSTILE, "0" * 64, 1),
        onnx=onnx,
        error=HOSTILE,
        warnings=[HOSTILE],
        versions={"torch": "<i>2</i>"},
        command=f"onnx-convert --model-path '{HOSTILE}'",
    )

    markdown = report.to_markdown()

    html, raw = markdown_html(markdown)
    assert raw == []
    for element in ("<script", "<img", "<a ", "<em>", "<b>", "<i>", "<u>", "<strong>b"):
        assert element not in html
    text = markdown_text(HOSTILE)
    assert f"**Error:** {text}\n" in markdown
    assert f"> ⚠️ {text}\n" in markdown
    assert f"| Class / exporter | {text} | x &lt;i&gt; (route &#124; &lt;u&gt;) |" in markdown
    assert (
        "| Inputs |  | ``m\\n::warning::x <script>alert(1)</script> \\| `t` [a](http://e.example) "
        "![i](http://e.example/i.png) # *b*`` " + text + "x3 float32 |"
    ) in markdown
    assert "| Files |  | `out/m.onnx`, `out/<x>\\|.data` |" in markdown
    assert "python" not in markdown and "| Outputs |  | `<b>y</b>` ? float32 |" in markdown
    assert "torch &lt;i&gt;2&lt;/i&gt;" in markdown
    assert "```sh\nonnx-convert \\\n  --model-path 'm\n::warning::x <script>" in markdown


@pytest.mark.parametrize("glob", [False, True], ids=["one model", "a glob"])
def test_the_cli_prints_hostile_names_on_lines_that_hold_no_workflow_command(
    tmp_path: Path, run_cli, iris_skops: Path, monkeypatch: pytest.MonkeyPatch, glob: bool
) -> None:
    # Under `docker run` in a workflow step, the runner reads the CLI's output for commands.
    (tmp_path / "m\n::warning::injected\r::error::x.skops").write_bytes(iris_skops.read_bytes())
    monkeypatch.chdir(tmp_path)

    result = run_cli("--model-path", "*.skops" if glob else "m\n::warning::injected\r::error::x.skops")

    assert result.code == 0, result.errors
    for output in (result.stdout, result.stderr):
        runner = read_as_runner(output)
        assert runner.commands == [] and runner.ignored == []
    assert "m\\n::warning::injected\\r::error::x.skops: sklearn model (skops)\n" in result.stderr
