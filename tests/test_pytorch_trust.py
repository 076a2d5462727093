"""PyTorch files run nothing from the file without --allow-unsafe-load, and no archive inflates unbounded.

Each hostile file is a real archive that torch saved, with one payload put where torch would run it.
A payload creates a marker file if it runs: the tests assert it does not exist, and that the run
stopped with one line (exit 2). The last tests of each group show the payloads are live: torch runs
them when the user allows it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from converter.archives import FREE_INFLATED_BYTES, MAX_INFLATE_RATIO
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.pytorch import TRUSTED, model_class

pytestmark = pytest.mark.converts

UNSAFE_HINT = (
    "save the program with plain tensors (torch.export.save pickles tensor subclasses and Python objects), "
    "or pass --allow-unsafe-load true if you trust the file"
)
CODE_HINT = (
    "export and save the model again with torch.export, without it, or pass --allow-unsafe-load true if you trust "
    "the file"
)
SAFE_FORMATS = "save it as a torch.export program (.pt2), or as a state_dict (.pt or .safetensors) with --model-class"
WEIGHTS_CONFIG = "data/weights/model_weights_config.json"
CONSTANTS_CONFIG = "data/constants/model_constants_config.json"


@pytest.fixture
def ph(pytorch_hostile: ModuleType) -> ModuleType:
    """tests/fixtures/pytorch_hostile.py, under the short name the tests use."""
    return pytorch_hostile


@pytest.fixture
def pm(pytorch_models: ModuleType) -> ModuleType:
    """tests/fixtures/pytorch_models.py, under the short name the tests use."""
    return pytorch_models


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory, pytorch_hostile: ModuleType) -> Path:
    return pytorch_hostile.save_program(tmp_path_factory.mktemp("trust") / "program.pt2")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "payload-ran"


def assert_refused(result, marker: Path, message: str) -> None:
    assert not marker.exists(), "the payload ran"
    assert_one_line_error(result, 2, message)


# -- .pt2: pickles ----------------------------------------------------------------------------------


def test_pt2_sample_inputs_are_never_read(run_cli, program: Path, tmp_path: Path, marker: Path, ph) -> None:
    # torch.export.load unpickled data/sample_inputs with weights_only=False (after weights_only=True
    # failed); the conversion makes its own inputs, so the member is not read at all.
    def change(name: str, data: bytes) -> dict[str, bytes]:
        return {name: ph.payload(marker) if name == "data/sample_inputs/model.pt" else data}

    hostile = ph.rewrite(program, tmp_path / "sample_inputs.pt2", change)
    result = run_cli("--model-path", str(hostile))
    assert not marker.exists(), "the payload ran"
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("PASS sample_inputs.pt2 (pytorch/exported_program)")


@pytest.mark.parametrize(
    ("kind", "config", "member", "fqn", "new_member"),
    [
        ("weight", WEIGHTS_CONFIG, "data/weights/weight_1", "linear.bias", ""),
        ("constant", CONSTANTS_CONFIG, "data/constants/tensor_0", "offset", ""),
        # Read by pickle.loads and by the TorchScript unpickler, whatever use_pickle says.
        ("constant", CONSTANTS_CONFIG, "data/constants/tensor_0", "offset", "data/constants/opaque_obj_0"),
        ("constant", CONSTANTS_CONFIG, "data/constants/tensor_0", "offset", "data/constants/custom_obj_0"),
    ],
)
def test_pt2_pickled_member_is_refused_unread(
    run_cli,
    program: Path,
    tmp_path: Path,
    marker: Path,
    kind: str,
    config: str,
    member: str,
    fqn: str,
    new_member: str,
    ph,
) -> None:
    change = ph.pickled_payload(config, member, fqn, marker, new_member)
    hostile = ph.rewrite(program, tmp_path / f"{kind}.pt2", change)
    result = run_cli("--model-path", str(hostile))
    assert_refused(
        result,
        marker,
        f"error: {kind}.pt2 holds a pickled {kind} {fqn!r} ({new_member or member!r}), and unpickling it runs any "
        f"code it contains; {UNSAFE_HINT}",
    )


def test_pt2_legacy_pickled_weights_are_refused_unread(
    run_cli, program: Path, tmp_path: Path, marker: Path, ph
) -> None:
    # torch reads data/weights/model.pt, when present, instead of the weights config.
    hostile = ph.rewrite(program, tmp_path / "legacy.pt2", ph.add_member("data/weights/model.pt", ph.payload(marker)))
    result = run_cli("--model-path", str(hostile))
    assert_refused(
        result,
        marker,
        "error: legacy.pt2 holds its weights as one pickle (data/weights/model.pt), and unpickling it runs any code "
        f"it contains; {UNSAFE_HINT}",
    )


def test_pt2_pickled_weight_runs_only_with_allow_unsafe_load(
    run_cli, program: Path, tmp_path: Path, marker: Path, ph
) -> None:
    change = ph.pickled_payload(WEIGHTS_CONFIG, "data/weights/weight_1", "linear.bias", marker)
    hostile = ph.rewrite(program, tmp_path / "weight.pt2", change)
    run_cli("--model-path", str(hostile), *TRUSTED)
    assert marker.exists(), "torch.export.load did not run the payload: the refusal tests above prove nothing"


# -- .pt2: what torch evaluates in the program's JSON -------------------------------------------------


def _first_expression(document: dict) -> dict:
    stack: list = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "expr_str" in item:
                return item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    raise AssertionError("the program has no shape expression")


def test_pt2_shape_expression_is_never_evaluated(run_cli, program: Path, tmp_path: Path, marker: Path, ph) -> None:
    # torch parses expr_str with sympy.sympify, which is eval.
    code = f"__import__('os').system('touch {marker}') or Symbol('s77', positive=True, integer=True)"

    def edit(document: dict) -> None:
        _first_expression(document)["expr_str"] = code

    hostile = ph.rewrite(program, tmp_path / "expression.pt2", ph.program_json(edit))
    result = run_cli("--model-path", str(hostile))
    assert_refused(
        result,
        marker,
        f"error: expression.pt2: the shape expression {code[:80]!r} is not one torch.export writes, and torch runs it "
        f"as Python; {CODE_HINT}",
    )


def test_pt2_guard_is_never_run(run_cli, program: Path, tmp_path: Path, marker: Path, ph) -> None:
    # torch pastes guards into Python source and execs it in program.module(): the reference run.
    guard = f"__import__('os').system('touch {marker}') == 0"
    hostile = ph.rewrite(program, tmp_path / "guard.pt2", ph.program_json(lambda d: d.update(guards_code=[guard])))
    result = run_cli("--model-path", str(hostile))
    assert_refused(
        result,
        marker,
        f"error: guard.pt2: the guard {guard[:80]!r} is not one torch.export writes, and torch runs it as Python; {CODE_HINT}",
    )


def test_pt2_input_name_is_never_written_into_python(run_cli, program: Path, tmp_path: Path, marker: Path, ph) -> None:
    # torch.export._unlift copies the graph and FX writes the placeholders into "def forward(self, ...)":
    # this name becomes a default value, evaluated when program.module() is built.
    name = f"x=torch.__dict__[__import__('os').system('touch {marker}')]"

    def edit(document: dict) -> None:
        renamed = ph.rename(document, "x", name)
        document.clear()
        document.update(renamed)

    hostile = ph.rewrite(program, tmp_path / "name.pt2", ph.program_json(edit))
    result = run_cli("--model-path", str(hostile))
    assert_refused(
        result,
        marker,
        f"error: name.pt2: the name {repr(name)[:77]}... is not an identifier, and FX writes it into Python source; "
        f"{CODE_HINT}",
    )
    run_cli("--model-path", str(hostile), *TRUSTED)
    assert marker.exists(), "torch did not run the name: the refusal above proves nothing"


def test_pt2_keyword_input_name_is_never_written_into_python(
    run_cli, tmp_path: Path, marker: Path, ph, pm, torch
) -> None:
    # Without forward_arg_names, torch names forward's parameters after the keys of in_spec's kwargs.
    torch.export.save(
        torch.export.export(pm.MLP().eval(), (), {"x": torch.randn(2, 4)}), str(tmp_path / "keywords.pt2")
    )
    key = f"x=__import__('os').system('touch {marker}')"

    def edit(document: dict) -> None:
        for entry in document["graph_module"]["module_call_graph"]:
            if entry["signature"]:
                entry["signature"]["forward_arg_names"] = None
                entry["signature"]["in_spec"] = ph.rename_spec_key(entry["signature"]["in_spec"], "x", key)

    hostile = ph.rewrite(tmp_path / "keywords.pt2", tmp_path / "key.pt2", ph.program_json(edit))
    result = run_cli("--model-path", str(hostile), "--dynamic-batch", "false")
    assert_refused(
        result,
        marker,
        f"error: key.pt2: the input or output key {repr(key)[:77]}... could be written into Python source; {CODE_HINT}",
    )


def test_pt2_operator_that_writes_a_file_is_refused(run_cli, program: Path, tmp_path: Path, marker: Path, ph) -> None:
    # torch's verifier accepts any registered operator: aten.from_file(shared=True) maps a file, and
    # an in-place add writes to it.
    victim = tmp_path / "victim.bin"
    victim.write_bytes(bytes(16))
    mapped = {
        "target": "torch.ops.aten.from_file.default",
        "inputs": [
            {"name": "filename", "arg": {"as_string": str(victim)}, "kind": 1},
            {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
            {"name": "size", "arg": {"as_int": 3}, "kind": 1},
            {"name": "dtype", "arg": {"as_scalar_type": 7}, "kind": 2},
        ],
    }

    def edit(document: dict) -> None:
        ph.replace_node(document, "torch.ops.aten.mul.Tensor", mapped)
        ph.replace_node(document, "torch.ops.aten.add.Tensor", {"target": "torch.ops.aten.add_.Tensor"})

    hostile = ph.rewrite(program, tmp_path / "writer.pt2", ph.program_json(edit))
    result = run_cli("--model-path", str(hostile))
    assert victim.read_bytes() == bytes(16), "the program wrote to the file"
    assert_one_line_error(
        result,
        2,
        "error: writer.pt2: the operator 'torch.ops.aten.from_file.default' is not one this tool runs: it is not a "
        f"tensor operation of aten, or it reaches files, the log or Python; {CODE_HINT}",
    )
    run_cli("--model-path", str(hostile), *TRUSTED)
    assert victim.read_bytes() != bytes(16), "torch did not run the operator: the refusal above proves nothing"


def test_pt2_with_guards_expressions_and_control_flow_still_converts(run_cli, tmp_path: Path, pm, torch) -> None:
    torch.manual_seed(0)
    batch, other = torch.export.Dim("batch", min=3, max=1024), torch.export.Dim("other")
    program = torch.export.export(
        pm.ShapeGuarded().eval(), (torch.randn(6, 4), torch.randn(5, 4)), dynamic_shapes=({0: batch}, {0: other})
    )
    assert program._guards_code, "the program has no guard: the test would not exercise the guard check"
    torch.export.save(program, str(tmp_path / "guarded.pt2"))
    result = run_cli("--model-path", str(tmp_path / "guarded.pt2"))
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("PASS guarded.pt2 (pytorch/exported_program)")


# -- TorchScript -------------------------------------------------------------------------------------


def test_torchscript_runs_its_code_so_it_needs_consent(run_cli, tmp_path: Path, ph, torch) -> None:
    victim = tmp_path / "victim.bin"
    victim.write_bytes(bytes(16))
    torch.jit.save(torch.jit.script(ph.FileWriter(victim)), str(tmp_path / "writer.pt"))
    result = run_cli("--model-path", str(tmp_path / "writer.pt"), "--input-shapes", "batchx3")
    assert victim.read_bytes() == bytes(16), "the TorchScript code ran"
    assert_one_line_error(
        result,
        2,
        "error: writer.pt is a TorchScript archive: converting it runs the TorchScript code it carries, which can "
        f"read and write files (torch.from_file), and PyTorch does not sandbox it; {SAFE_FORMATS}; or pass "
        "--allow-unsafe-load true if you trust the file",
    )
    run_cli("--model-path", str(tmp_path / "writer.pt"), "--input-shapes", "batchx3", *TRUSTED)
    assert victim.read_bytes() != bytes(16), "the TorchScript code did not run: the refusal above proves nothing"


def test_torchscript_unpickler_refuses_python_globals_even_when_trusted(
    run_cli, tmp_path: Path, marker: Path, ph, pm, torch
) -> None:
    # torch.jit.load reads constants.pkl with TorchScript's own unpickler: tensors, containers and
    # the archive's TorchScript classes only.
    torch.jit.save(torch.jit.script(pm.MLP().eval()), str(tmp_path / "mlp.pt"))

    def change(name: str, data: bytes) -> dict[str, bytes]:
        return {name: ph.payload(marker) if name == "constants.pkl" else data}

    hostile = ph.rewrite(tmp_path / "mlp.pt", tmp_path / "constants.pt", change)
    result = run_cli("--model-path", str(hostile), "--input-shapes", "batchx4", *TRUSTED)
    assert not marker.exists(), "the payload ran"
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == (
        "error: constants.pt could not be loaded by torch.jit.load (Unknown type name 'posix.system':); "
        "save it again with torch.jit.save"
    )


# -- torch.save files ------------------------------------------------------------------------------


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    ("payload", "what"),
    [("Payload", "a pickled posix.system"), ("ExecPayload", "a pickle of more than tensors")],
    ids=["os.system", "builtins.exec"],
)
def test_torch_save_file_is_loaded_weights_only(
    run_cli, tmp_path: Path, marker: Path, zipped: bool, payload: str, what: str, ph, torch
) -> None:
    # builtins.exec passes detection (builtins is a module weights-only files use); torch.load(weights_only=True) is the gate.
    path = tmp_path / "weights.pt"
    torch.save({"weight": getattr(ph, payload)(marker)}, path, _use_new_zipfile_serialization=zipped)
    result = run_cli("--model-path", str(path), "--model-class", model_class("MLP"), "--input-shapes", "batchx4")
    assert_refused(
        result,
        marker,
        f"error: weights.pt is {what}, and unpickling it runs any code it contains; {SAFE_FORMATS}; "
        "or pass --allow-unsafe-load true if you trust the file",
    )


# -- zip bombs -------------------------------------------------------------------------------------


def _build(kind: str, path: Path, ph: ModuleType, pm: ModuleType, torch: ModuleType) -> Path:
    if kind == "pt2":
        return ph.save_program(path)
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(pm.MLP().eval()), str(path))
    else:
        torch.save(pm.MLP().state_dict(), path)
    return path


@pytest.mark.parametrize("kind", ["pt2", "torchscript", "state_dict"])
def test_zip_bomb_is_refused_before_torch_reads_it(run_cli, tmp_path: Path, kind: str, ph, pm, torch) -> None:
    name = f"{kind}.pt2" if kind == "pt2" else f"{kind}.pt"
    bomb = ph.zip_bomb(_build(kind, tmp_path / "model.zip", ph, pm, torch), tmp_path / name)
    with zipfile.ZipFile(bomb) as archive:
        inflated = sum(info.file_size for info in archive.infolist())
        padding = next(info for info in archive.infolist() if info.filename.endswith("/padding"))
    compressed = bomb.stat().st_size
    assert inflated > FREE_INFLATED_BYTES + MAX_INFLATE_RATIO * compressed, "not a bomb by the tool's own bound"
    extra = ["--model-class", model_class("MLP")] if kind == "state_dict" else []
    result = run_cli("--model-path", str(bomb), *extra, *TRUSTED, "--input-shapes", "batchx4")
    assert_one_line_error(
        result,
        2,
        f"error: --model-path: {name} would inflate from {compressed:,} to {inflated:,} bytes "
        f"({padding.filename!r} alone to {padding.file_size:,}); this tool reads at most 64 MiB plus 100x the file's "
        "size from an archive, so it looks like a zip bomb; save the model again with its framework (weights do not "
        "compress that well)",
    )
