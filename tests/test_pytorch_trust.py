"""PyTorch files run nothing from the file without --allow-unsafe-load, and no archive inflates unbounded.

Each hostile file is a real archive that torch saved, with one payload put where torch would run it.
A payload creates a marker file if it runs: the tests assert it does not exist, and that the run
stopped with one line (exit 2). The last tests of each group show the payloads are live: torch runs
them when the user allows it.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
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
SAFE_FORMATS = (
    "save it as TorchScript (torch.jit.save), as a torch.export program (.pt2), "
    "or as a state_dict (.pt or .safetensors) with --model-code"
)
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


def test_pt2_bitwise_operators_are_aten_ops_and_other_dunders_are_not() -> None:
    # OPT's and Llama's masks combine with &: torch.ops.aten.__and__.Tensor was refused as a dunder.
    from converter.frameworks.pytorch.pt2_code import Refused, check_operator

    for target in ("torch.ops.aten.__and__.Tensor", "torch.ops.aten.__or__.Scalar", "torch.ops.aten.__ixor__.Tensor"):
        check_operator(target)
    for target in (
        "torch.ops.aten.__and__.__class__",
        "torch.ops.aten.__getattribute__.default",
        "torch.ops.aten.__and__",
    ):
        with pytest.raises(Refused):
            check_operator(target)


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

REACHES_FILES = "an operator that reaches files, the log or Python"
TS_HINT = (
    "save the model without it, as a torch.export program (.pt2) or a state_dict (.pt or .safetensors) with "
    "--model-code, or pass --allow-unsafe-load true if you trust the file"
)


def _where(archive: Path, text: str) -> str:
    """``member:line`` of the code member of the archive where ``text`` first appears."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            code = opened.read(info).decode("latin-1")
            if info.filename.lower().endswith(".py") and text in code:
                return f"{info.filename.split('/', 1)[1]}:{code[: code.index(text)].count(chr(10)) + 1}"
    raise AssertionError(f"no code member holds {text!r}")


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_that_only_computes_converts_without_the_flag(run_cli, tmp_path: Path, how: str, pm, torch) -> None:
    # Submodules, BatchNorm, a loop, a branch on a value, and a __setstate__ torch.jit.load runs.
    model = pm.trained("checked")
    program = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.randn(4, 4))
    assert program.scale._c._has_method("__setstate__"), "no __setstate__: the test would not exercise it"
    torch.jit.save(program, str(tmp_path / f"{how}.pt"))
    result = run_cli("--model-path", str(tmp_path / f"{how}.pt"), "--input-shapes", "batchx4")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"PASS {how}.pt (pytorch/torchscript)")


def test_quantized_torchscript_converts_without_the_flag_and_builds_no_packed_weights(
    run_cli, tmp_path: Path, ph, pm, torch
) -> None:
    # torch's own quantized modules: ops.quantized.* and torch.classes.quantized.*PackedParamsBase, let through.
    path = tmp_path / "quantized.pt"
    torch.jit.save(torch.jit.script(pm.quantized_cnn()), str(path))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3x8x8", "--atol", "0.1")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("PASS quantized.pt (pytorch/torchscript)")
    # Their C++ objects come from the pickles (through __setstate__), never from the code.
    packed = "__torch__.torch.classes.quantized.LinearPackedParamsBase"
    edit = ph.edit_code(
        "_packed_params0 = _packed_params._packed_params", f"_packed_params0 = {packed}.__new__({packed})"
    )
    built = ph.rewrite(path, tmp_path / "built.pt", edit)
    result = run_cli(
        "--model-path", str(built), "--input-shapes", "batchx3x8x8", "--output-dir", str(tmp_path / "built")
    )
    assert_one_line_error(
        result,
        2,
        f"error: built.pt: {_where(built, '__new__')} uses '{packed}' other than as a type (its objects come from "
        f"pickles); {TS_HINT}",
    )


@pytest.mark.parametrize(
    ("case", "program", "edit", "construct", "live"),
    [
        ("forward", "FileWriter", None, f"calls 'torch.from_file', {REACHES_FILES}", True),
        ("setstate", "SetstateWriter", None, f"calls 'torch.from_file', {REACHES_FILES}", True),
        (
            "ops",
            "FileWriter",
            ("torch.from_file(", "ops.aten.from_file("),
            f"calls 'ops.aten.from_file', {REACHES_FILES}",
            True,
        ),
        # No denied operator takes a `self` in torch 2.13, so torch cannot compile this one yet: refused by name all the same.
        (
            "method",
            "FileWriter",
            ("torch.from_file(victim, ", "(victim).from_file("),
            f"calls the method 'from_file', {REACHES_FILES}",
            False,
        ),
    ],
    ids=["forward", "setstate", "ops", "method"],
)
def test_torchscript_that_writes_a_file_is_refused_before_it_runs(
    run_cli,
    tmp_path: Path,
    case: str,
    program: str,
    edit: tuple[str, str] | None,
    construct: str,
    live: bool,
    ph,
    torch,
) -> None:
    # torch.from_file(path, shared=True) maps the file; an in-place add writes to it. A __setstate__ runs in torch.jit.load.
    victim = tmp_path / "victim.bin"
    victim.write_bytes(bytes(16))
    path = tmp_path / f"{case}.pt"
    torch.jit.save(torch.jit.script(getattr(ph, program)(victim)), str(path if edit is None else tmp_path / "saved.pt"))
    if edit is not None:
        ph.rewrite(tmp_path / "saved.pt", path, ph.edit_code(*edit))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3")
    assert victim.read_bytes() == bytes(16), "the TorchScript code ran"
    assert_one_line_error(result, 2, f"error: {case}.pt: {_where(path, 'from_file(')} {construct}; {TS_HINT}")
    run_cli("--model-path", str(path), "--input-shapes", "batchx3", *TRUSTED)
    assert (victim.read_bytes() != bytes(16)) == live, "torch.jit.load did not do what the refusal assumes"


def test_torchscript_code_member_named_in_capitals_is_checked(run_cli, tmp_path: Path, ph, torch) -> None:
    # torch's archive reader finds code/__torch__/tests/fixtures/pytorch_hostile.py under any case, .PY too:
    # the member is checked, and what names it under another case names nothing the archive defines.
    victim = tmp_path / "victim.bin"
    victim.write_bytes(bytes(16))
    torch.jit.save(torch.jit.script(ph.FileWriter(victim)), str(tmp_path / "saved.pt"))
    path = ph.rewrite(tmp_path / "saved.pt", tmp_path / "capitals.pt", ph.rename_members("hostile.py", "HOSTILE.PY"))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3")
    assert victim.read_bytes() == bytes(16), "the TorchScript code ran"
    where = _where(path, "self: __torch__")
    assert where.startswith("code/__torch__/tests/fixtures/pytorch_HOSTILE.PY:")
    assert_one_line_error(
        result,
        2,
        f"error: capitals.pt: {where} uses '__torch__.tests.fixtures.pytorch_hostile.FileWriter', which the archive "
        f"does not define; {TS_HINT}",
    )
    run_cli("--model-path", str(path), "--input-shapes", "batchx3", *TRUSTED)
    assert victim.read_bytes() != bytes(16), "torch did not read the member: the refusal above proves nothing"


@pytest.mark.parametrize(
    ("how", "edit", "construct"),
    [
        (
            "as-saved",
            None,
            "calls 'ops.onnx_convert_test.touch', an operator outside aten, prim and quantized (a custom op library this tool does not run)",
        ),
        # TorchScript binds namespaces to variables, and getattr() reads them: the same operator, past a check of chains.
        (
            "bound",
            ("_0 = ops.", "namespace = ops\n    _0 = namespace."),
            "uses 'ops' as a value, not to name an operator or class",
        ),
        (
            "getattr",
            ("ops.onnx_convert_test", 'getattr(ops, "onnx_convert_test")'),
            "uses 'ops' as a value, not to name an operator or class",
        ),
    ],
    ids=["as-saved", "bound", "getattr"],
)
def test_torchscript_custom_operator_is_refused(
    run_cli, tmp_path: Path, marker: Path, how: str, edit: tuple[str, str] | None, construct: str, ph, torch
) -> None:
    # ops.<namespace>.<op> calls any registered operator: an op library's code, here one that creates a file.
    ph.register_touch_op()
    path = tmp_path / f"{how}.pt"
    torch.jit.save(torch.jit.script(ph.CustomOpUser(marker)), str(path if edit is None else tmp_path / "saved.pt"))
    if edit is not None:
        ph.rewrite(tmp_path / "saved.pt", path, ph.edit_code(*edit))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3")
    assert_refused(result, marker, f"error: {how}.pt: {_where(path, 'ops')} {construct}; {TS_HINT}")
    run_cli("--model-path", str(path), "--input-shapes", "batchx3", *TRUSTED)
    assert marker.exists(), "the custom operator did not run: the refusal above proves nothing"


@pytest.mark.parametrize("declared", [False, True], ids=["as-saved", "declared-in-the-archive"])
def test_torchscript_custom_class_is_refused(run_cli, tmp_path: Path, declared: bool, ph, torch) -> None:
    # torch.classes are C++ classes registered by libraries; their methods are not in the file. A class
    # of the same name in the archive's code changes nothing: torch looks the C++ classes up first.
    path = tmp_path / "custom_class.pt"
    torch.jit.save(torch.jit.script(ph.CustomClassUser()), str(path if not declared else tmp_path / "saved.pt"))
    if declared:
        member = "code/__torch__/torch/classes/profiling.py"  # torch.jit.save writes it empty
        ph.rewrite(tmp_path / "saved.pt", path, ph.replace_member(member, b"class _ScriptProfile:\n  pass\n"))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3")
    assert_one_line_error(
        result,
        2,
        f"error: custom_class.pt: {_where(path, 'torch.classes')} uses "
        f"'__torch__.torch.classes.profiling._ScriptProfile', a custom C++ class (torch.classes) not in the file; "
        f"{TS_HINT}",
    )
    assert torch.equal(torch.jit.load(str(path))(torch.ones(3)), torch.full((3,), 2.0)), "torch did not run the class"


def test_torchscript_flatbuffer_behind_a_zip_is_refused(run_cli, tmp_path: Path, ph, pm, torch) -> None:
    # torch.jit.load reads a file with PTMF at byte 4 as a flatbuffer module, whatever zip follows it.
    victim = tmp_path / "victim.bin"
    victim.write_bytes(bytes(16))
    torch.jit.save(torch.jit.script(pm.MLP().eval()), str(tmp_path / "decoy.pt"))
    path = ph.flatbuffer_polyglot(ph.FileWriter(victim), tmp_path / "decoy.pt", tmp_path / "polyglot.pt")
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx3")
    assert victim.read_bytes() == bytes(16), "the flatbuffer's code ran"
    assert_one_line_error(
        result,
        2,
        "error: polyglot.pt: the file is a TorchScript flatbuffer (mobile) module, whose code this tool does not "
        f"read; {TS_HINT}",
    )
    run_cli("--model-path", str(path), "--input-shapes", "batchx3", *TRUSTED)
    assert victim.read_bytes() != bytes(16), "torch.jit.load did not run the flatbuffer: the refusal proves nothing"


def test_torchscript_sparse_tensor_is_refused(run_cli, tmp_path: Path, ph, torch) -> None:
    # TorchScript's unpickler rebuilds sparse tensors with _sparse_coo_tensor_unsafe: an index past the end
    # makes to_dense() write out of bounds.
    torch.jit.save(torch.jit.script(ph.SparseBuffer()), str(tmp_path / "saved.pt"))
    path = ph.rewrite(tmp_path / "saved.pt", tmp_path / "sparse.pt", ph.sparse_index(10**6))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx4")
    assert_one_line_error(
        result,
        2,
        "error: sparse.pt: data.pkl holds a sparse tensor, which TorchScript's unpickler builds without checking its "
        f"indices (out-of-bounds memory writes) (torch._utils._rebuild_sparse_tensor); {TS_HINT}",
    )
    assert int(torch.jit.load(str(path)).sparse._indices().max()) == 10**6, "torch checked the indices after all"


@pytest.mark.parametrize("member", ["constants.pkl", "data.pkl"])
@pytest.mark.parametrize(
    ("payload", "name"), [("Payload", "posix.system"), ("ExecPayload", "__builtin__.exec")], ids=["os.system", "exec"]
)
def test_torchscript_pickle_naming_python_is_refused_and_torch_refuses_it_too(
    run_cli, tmp_path: Path, marker: Path, member: str, payload: str, name: str, ph, pm, torch
) -> None:
    # torch.jit.load reads both pickles with TorchScript's own unpickler: tensors, containers and the
    # archive's classes only. Checked before it, and refused by it when trusted.
    torch.jit.save(torch.jit.script(pm.MLP().eval()), str(tmp_path / "mlp.pt"))
    data = pickle.dumps(getattr(ph, payload)(marker), protocol=2)
    path = ph.rewrite(tmp_path / "mlp.pt", tmp_path / "pickled.pt", ph.replace_member(member, data))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx4")
    assert_refused(
        result,
        marker,
        f"error: pickled.pt: {member} names '{name}', not a class TorchScript's unpickler rebuilds here; {TS_HINT}",
    )
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx4", *TRUSTED)
    assert not marker.exists(), "the payload ran"
    assert result.code == 2
    assert result.stderr.splitlines()[-1] == (
        f"error: pickled.pt could not be loaded by torch.jit.load (Unknown type name '{name}':); "
        "save it again with torch.jit.save"
    )


@pytest.mark.parametrize(
    ("old", "new", "at", "construct"),
    [
        # TorchScript reads "# type:" comments as annotations; Python skips every comment.
        ("bias)\n", "bias)  # type: (Tensor) -> Tensor\n", "#", "holds a comment, which torch.jit.save never writes"),
        # Python reads a lone carriage return as a line break; TorchScript as a blank.
        (
            "bias = self.bias\n",
            "bias = self.bias\r",
            "\r",
            "holds the character '\\r', which torch.jit.save never writes",
        ),
        (
            "    return torch.linear",
            "    print(input)\n    return torch.linear",
            "print",
            "names 'print', which writes to the log",
        ),
        ("torch.linear(input", "open(input", "open", "uses the name 'open', which is not one TorchScript code uses"),
        (
            "class Linear",
            "import os\nclass Linear",
            "import",
            "holds Python syntax torch.jit.save never writes (Import)",
        ),
        # TorchScript resolves a type written as a string by name, a C++ class (torch.classes) too.
        (
            "weight = self.weight",
            'weight = annotate("__torch__.torch.classes.profiling.SourceRef", self.weight)',
            "annotate",
            "writes the type '__torch__.torch.classes.profiling.SourceRef' as a string, which TorchScript looks up by "
            "name (C++ classes too)",
        ),
    ],
    ids=["comment", "carriage-return", "print", "unknown-name", "import", "string-type"],
)
def test_torchscript_code_outside_what_torch_writes_is_refused(
    run_cli, tmp_path: Path, old: str, new: str, at: str, construct: str, ph, pm, torch
) -> None:
    torch.jit.save(torch.jit.script(pm.MLP().eval()), str(tmp_path / "mlp.pt"))
    path = ph.rewrite(tmp_path / "mlp.pt", tmp_path / "edited.pt", ph.edit_code(old, new))
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx4")
    assert_one_line_error(result, 2, f"error: edited.pt: {_where(path, at)} {construct}; {TS_HINT}")


def test_torchscript_code_beyond_the_bound_is_refused_before_it_is_parsed(
    run_cli, tmp_path: Path, ph, pm, torch
) -> None:
    # Python's syntax tree takes ~55 times the text in memory; code compresses 100-fold in a zip.
    torch.jit.save(torch.jit.script(pm.MLP().eval()), str(tmp_path / "mlp.pt"))
    padding = ("x = 1" + " " * 95 + "\n") * 44_000  # 4.4 MB
    path = ph.rewrite(tmp_path / "mlp.pt", tmp_path / "big.pt", ph.edit_code("class MLP", padding + "class MLP"))
    member = _where(path, "class MLP").split(":")[0]
    result = run_cli("--model-path", str(path), "--input-shapes", "batchx4")
    assert_one_line_error(result, 2, f"error: big.pt: {member} holds more than 4 MiB of code; {TS_HINT}")


def test_torchscript_warning_text_stays_out_of_the_log(tmp_path: Path, ph, torch) -> None:
    # torch.warn is let through (torch's own F.softmax calls it); its text, here a workflow command,
    # must not reach the runner's log. A process of its own: C++ writes to file descriptors 1 and 2.
    path = tmp_path / "warner.pt"
    torch.jit.save(torch.jit.script(ph.Warner("\n::warning::INJECTED")), str(path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "converter",
            "--model-path",
            str(path),
            "--input-shapes",
            "batchx3",
            "--output-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("PASS warner.pt (pytorch/torchscript)"), done.stdout
    assert "INJECTED" not in done.stdout + done.stderr


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
