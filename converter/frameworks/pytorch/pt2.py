"""Load a torch.export program (.pt2) without running anything from the file.

``torch.export.load`` (torch 2.13, torch/export/pt2_archive/_package.py) unpickles with
``weights_only=False``: weights and constants saved with ``use_pickle`` (tensor subclasses), the
legacy ``data/weights/model.pt``, custom and opaque objects (``torch._C._pickle_load_obj``,
``pickle.loads``), and ``data/sample_inputs/`` (``deserialize_torch_artifact`` falls back to
``weights_only=False``). A payload in any of them ran before this tool could refuse the file.

This loader reads the archive with torch's own readers, in torch's order, except that it
- refuses every member torch would unpickle: they hold tensor subclasses or Python objects,
  which a weights-only unpickler refuses too;
- never reads the sample inputs (the conversion makes its own), AOTInductor libraries or extra files;
- checks the program's JSON for what torch would evaluate (pt2_code) before torch parses it.

With --allow-unsafe-load the file is trusted and ``torch.export.load`` reads it as torch would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from converter.errors import UserError, shorten
from converter.frameworks.pytorch.pt2_code import check_program

MODEL = "model"  # torch.export.save writes one program, under this name
UNSAFE_HINT = (
    "save the program with plain tensors (torch.export.save pickles tensor subclasses and Python objects), "
    "or pass --allow-unsafe-load true if you trust the file"
)


def load_program(torch: Any, path: Path, allow_unsafe: bool) -> Any:
    """The ExportedProgram in ``path``; without ``allow_unsafe`` nothing in the file is unpickled or evaluated."""
    if allow_unsafe:
        return torch.export.load(str(path))
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _bytes_to_dataclass
    from torch.export.pt2_archive import _package, constants

    with _package.PT2ArchiveReader(str(path)) as reader:
        version = reader.read_string(constants.ARCHIVE_VERSION_PATH)
        if version != constants.ARCHIVE_VERSION_VALUE:
            raise ValueError(f"archive version {version!r}, not {constants.ARCHIVE_VERSION_VALUE!r}")
        names = set(reader.get_file_names())
        program_file = constants.MODELS_FILENAME_FORMAT.format(MODEL)
        if program_file not in names:
            raise ValueError(f"no {program_file} in the archive")
        program_json = reader.read_bytes(program_file)
        check_program(json.loads(program_json), path.name)
        _refuse_pickled_members(_package, constants, reader, names, path.name)
        serialized = _bytes_to_dataclass(schema.ExportedProgram, program_json)
        state_dict = _package._load_state_dict(reader, MODEL)
        program_constants = _package._load_constants(reader, MODEL)
    # No sample inputs (None): torch would unpickle them, and the conversion makes its own.
    return ExportedProgramDeserializer().deserialize(serialized, state_dict, program_constants, None)


def _refuse_pickled_members(package: Any, constants: Any, reader: Any, names: set[str], file_name: str) -> None:
    """Refuse (exit 2) a member that torch's _load_state_dict or _load_constants would unpickle."""
    for folder, what in ((constants.WEIGHTS_DIR, "weights"), (constants.CONSTANTS_DIR, "constants")):
        legacy = f"{folder}{MODEL}.pt"
        if legacy in names:  # read by torch.load, falling back to weights_only=False
            raise UserError(
                f"{file_name} holds its {what} as one pickle ({legacy}), and unpickling it runs any code it contains",
                UNSAFE_HINT,
            )
    weights = constants.WEIGHTS_CONFIG_FILENAME_FORMAT.format(MODEL)
    if weights in names:
        for fqn, meta in package._load_payload_config(reader, weights).config.items():
            if meta.use_pickle:
                raise _pickled(file_name, "weight", fqn, constants.WEIGHTS_DIR + meta.path_name)
    tensors = constants.CONSTANTS_CONFIG_FILENAME_FORMAT.format(MODEL)
    if tensors in names:
        for fqn, meta in package._load_payload_config(reader, tensors).config.items():
            # torch picks the reader by the name's prefix: tensor_ (use_pickle decides), custom_obj_, opaque_obj_.
            if meta.use_pickle or not meta.path_name.startswith(constants.TENSOR_CONSTANT_FILENAME_PREFIX):
                raise _pickled(file_name, "constant", fqn, constants.CONSTANTS_DIR + meta.path_name)


def _pickled(file_name: str, kind: str, fqn: str, member: str) -> UserError:
    return UserError(
        f"{file_name} holds a pickled {kind} {shorten(repr(fqn), 80)} ({shorten(repr(member), 80)}), "
        "and unpickling it runs any code it contains",
        UNSAFE_HINT,
    )
