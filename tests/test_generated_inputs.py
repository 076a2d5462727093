"""Generated inputs a model accepts and that exercise it (issue 15, item 3): padded 0/1 masks,
every integer input below the table IT indexes (found in the graph, or in a run of a module),
positions and token types as a tokenizer gives them, and the report saying how each was made.

The PyTorch models are transformers' own (BERT, OPT, ALBERT) from small configs, as .pt2 and as
state_dict + --model-class factory; OPT takes its positions from the mask's cumulative sum.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from converter.frameworks.base import TensorSpec
from converter.input_roles import PADDING, padded_mask, plan_for
from converter.inputs import generate_inputs, validation_rows
from tests.fixtures.cli import assert_passed
from tests.fixtures.tiers import model_fixture

FACTORIES = Path(__file__).parent / "fixtures" / "transformers_models.py"
IDS_MASK_TYPES = "input_ids:batchxseq;attention_mask:batchxseq;token_type_ids:batchxseq"
INT64 = "input_ids:int64;attention_mask:int64;token_type_ids:int64"


# -- the generation, without a model ------------------------------------------------------------


@pytest.mark.parametrize(
    ("shapes", "requested", "rows"),
    [
        ([("batch", 3, 224, 224)], None, 6),  # 150,528 elements a row: 6 rows fit in 2^20
        ([("batch", 3, 384, 384)], None, 2),  # never under 2 rows
        ([("batch", "seq"), ("batch", "seq")], None, 16),  # token ids and mask at 32 positions
        ([("batch", 3, 224, 224)], 16, 16),  # as asked
        ([(1, 3, 224, 224)], None, 16),  # no batch axis: the rows are the model's
    ],
)
def test_auto_validation_rows_keep_a_batch_under_a_million_elements(
    shapes: list[tuple[Any, ...]], requested: int | None, rows: int
) -> None:
    specs = [TensorSpec(f"in{i}", shape, "float32") for i, shape in enumerate(shapes)]
    assert validation_rows(specs, requested) == rows


def test_mask_pads_half_the_rows_on_the_right_and_keeps_the_first_position() -> None:
    mask = padded_mask((8, 32), np.random.default_rng(0))
    lengths = mask.sum(axis=1)
    assert set(np.unique(mask)) == {0, 1}
    assert (mask[:, 0] == 1).all()
    assert sorted(lengths < 32) == [False] * 4 + [True] * 4  # half the rows padded, none fully
    for row, length in zip(mask, lengths, strict=True):  # right padding: ones, then zeros
        assert row.tolist() == [1] * length + [0] * (32 - length)


def test_inputs_named_like_a_tokenizers_get_their_roles() -> None:
    specs = [
        TensorSpec("input_ids", ("batch", "seq"), "int64", high=30522),
        TensorSpec("attention_mask", ("batch", "seq"), "bool"),
        TensorSpec("token_type_ids", ("batch", "seq"), "int64"),
        TensorSpec("position_ids", ("batch", "seq"), "int64", high=512),
        TensorSpec("padding_mask", ("batch", "seq"), "float32"),
    ]
    inputs = generate_inputs(specs, 6, seed=0, other_size=16)
    assert [plan_for(s).role for s in specs] == ["ids", "mask", "token_types", "positions", "mask"]
    assert inputs["attention_mask"].dtype == np.bool_ and not inputs["attention_mask"].all()
    assert set(np.unique(inputs["padding_mask"])) == {0.0, 1.0}
    assert inputs["position_ids"].tolist() == [list(range(16))] * 6
    types, real = inputs["token_type_ids"], inputs["attention_mask"]
    assert (types[:, 0] == 0).all() and (types == 1).any()
    assert (types[~real] == 0).all()  # padded positions hold type 0, as a tokenizer writes them
    assert all((np.diff(row[keep]) >= 0).all() for row, keep in zip(types, real, strict=True))  # 0 then 1
    assert inputs["input_ids"].max() > 1000  # the whole vocabulary, not the smallest table


def test_a_bound_from_the_graph_wins_over_the_name() -> None:
    spec = TensorSpec("segment_ids", ("batch", "seq"), "int64", high=1, bound="the 1-row table it indexes (graph)")
    assert generate_inputs([spec], 4, seed=0)["segment_ids"].max() == 0
    assert plan_for(spec).to_dict() == {
        "name": "segment_ids",
        "dtype": "int64",
        "role": "token_types",
        "range": [0, 1],
        "bound": "the 1-row table it indexes (graph)",
    }


# -- transformers models ---------------------------------------------------------------------------


@model_fixture(scope="module")
def hf(torch: ModuleType) -> ModuleType:
    pytest.importorskip("transformers", reason="transformers is a bench dependency (requirements/bench.txt)")
    from tests.fixtures import transformers_models

    return transformers_models


def _save(hf: ModuleType, torch: ModuleType, name: str, fmt: str, directory: Path) -> list[str]:
    """The model as .pt2 (kwargs, batch and sequence dynamic) or as a state_dict; the CLI arguments."""
    torch.manual_seed(0)
    model = hf.build(name)
    inputs = hf.CONFIGS[name][3]
    if fmt == "state_dict":
        torch.save(model.state_dict(), directory / f"{name}.pt")
        types = ";".join(f"{n}:batchxseq" for n in inputs), ";".join(f"{n}:int64" for n in inputs)
        return ["--model-path", str(directory / f"{name}.pt"), "--model-class", f"{FACTORIES}:build_{name}"] + [
            item for pair in zip(("--input-shapes", "--input-dtypes"), types, strict=True) for item in pair
        ]
    kwargs = {n: torch.randint(0, 2, (4, 8)) for n in inputs}
    dims = {n: {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", max=hf.MAX_POSITIONS)} for n in inputs}
    with torch.no_grad():
        program = torch.export.export(model, (), kwargs=kwargs, dynamic_shapes=dims)
    torch.export.save(program, str(directory / f"{name}.pt2"))
    return ["--model-path", str(directory / f"{name}.pt2")]


def test_opt_state_dict_gets_a_padded_mask_and_reproduces(
    run_cli, hf: ModuleType, torch: ModuleType, tmp_path: Path
) -> None:
    # A mask of 0..99 made OPT's positions (the mask's cumulative sum) overflow its table:
    # "IndexError: index out of range in self" in the reference run.
    report = assert_passed(run_cli(*_save(hf, torch, "opt", "state_dict", tmp_path)), "opt")
    assert report["inputs"] == [
        {
            "name": "input_ids",
            "dtype": "int64",
            "role": "ids",
            "range": [0, 1000],
            "bound": "the 1,000-row table it indexes (seen in a run)",
        },
        {"name": "attention_mask", "dtype": "int64", "role": "mask", "padding": PADDING},
    ]


def test_opt_program_reproduces_with_padded_rows(run_cli, hf: ModuleType, torch: ModuleType, tmp_path: Path) -> None:
    report = assert_passed(run_cli(*_save(hf, torch, "opt", "pt2", tmp_path)), "opt")
    assert report["inputs"][0]["bound"] == "the 1,000-row table it indexes (graph)"
    assert report["inputs"][1]["role"] == "mask"


def test_albert_program_ids_span_the_vocabulary_not_the_token_type_table(
    run_cli, hf: ModuleType, torch: ModuleType, tmp_path: Path
) -> None:
    # One bound for every input was the smallest table: input_ids of 0 and 1 only.
    result = run_cli(*_save(hf, torch, "albert", "pt2", tmp_path))
    report = assert_passed(result, "albert")
    assert [(i["name"], i["role"], i.get("range"), i.get("bound")) for i in report["inputs"]] == [
        ("input_ids", "ids", [0, 1000], "the 1,000-row table it indexes (graph)"),
        ("attention_mask", "mask", None, None),
        ("token_type_ids", "token_types", [0, 2], "the 2-row table it indexes (graph)"),
    ]
    assert (
        "- `input_ids` int64: ids in \\[0, 1000) (the 1,000-row table it indexes (graph))\n"
        f"- `attention_mask` int64: mask, {PADDING}\n"
        "- `token_type_ids` int64: token types in \\[0, 2) (the 2-row table it indexes (graph))\n"
    ) in result.markdown("albert")


def test_bert_state_dict_ids_are_bounded_by_their_own_table_found_in_a_run(
    run_cli, hf: ModuleType, torch: ModuleType, tmp_path: Path
) -> None:
    report = assert_passed(run_cli(*_save(hf, torch, "bert", "state_dict", tmp_path)), "bert")
    ranges = {i["name"]: (i["role"], i.get("range")) for i in report["inputs"]}
    assert ranges == {
        "input_ids": ("ids", [0, 1000]),
        "attention_mask": ("mask", None),
        "token_type_ids": ("token_types", [0, 2]),
    }


def test_torchscript_ids_are_bounded_by_their_own_table_read_from_the_graph(
    run_cli, torch: ModuleType, tmp_path: Path
) -> None:
    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.words = torch.nn.Embedding(1000, 8)
            self.types = torch.nn.Embedding(2, 8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            hidden = self.words(input_ids.view(input_ids.shape)) + self.types(token_type_ids)
            return self.head(hidden)

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tagger().eval()), str(tmp_path / "tagger.pt"))
    shapes = "input_ids:batchxseq;token_type_ids:batchxseq"
    result = run_cli("--model-path", str(tmp_path / "tagger.pt"), "--input-shapes", shapes, "--input-dtypes", "int64")
    report = assert_passed(result, "tagger")
    assert [(i["name"], i["range"], i["bound"]) for i in report["inputs"]] == [
        ("input_ids", [0, 1000], "the 1,000-row table it indexes (graph)"),
        ("token_type_ids", [0, 2], "the 2-row table it indexes (graph)"),
    ]
