"""--model-code: the user's Python file that holds a model's code, imported by path.

PyTorch names a class or factory in it (``path/to/model.py:Name``) for a state_dict; Keras imports
it (``path/to/layers.py``) so that the custom layers and functions it registers with
``keras.saving.register_keras_serializable`` are known when the ``.keras`` file loads. Importing
the file runs it, and whatever it imports: that is what the option is for. In the action the path
is confined to the workspace like every other path (``request.parse_model_code``). The packages it
imports are the user's to install (the ``requirements`` option, when the image has it).

``--model-class`` is the option's first name, kept as an alias: errors name the one the user gave.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from converter.errors import UserError, shorten

OPTION = "model-code"
ALIAS = "model-class"  # the name it had when only PyTorch took it


@dataclass(frozen=True)
class ModelCode:
    """The option's value, split: the file, the name in it (PyTorch), and the option it came by."""

    text: str  # as given (confined to the workspace in the action)
    option: str = OPTION

    @property
    def given(self) -> bool:
        return bool(self.text)

    def split(self) -> tuple[str, str]:
        """(file, name): ``a/b.py:Name`` -> (``a/b.py``, ``Name``); ``a/b.py`` -> (``a/b.py``, "")."""
        file_part, sep, name = self.text.rpartition(":")
        return (file_part, name) if sep else (self.text, "")

    def bad(self, problem: str, fix: str) -> UserError:
        return UserError.bad_value(self.option, self.text, problem, fix)


def import_file(code: ModelCode, file_part: str) -> ModuleType:
    """Import ``file_part`` (a .py file) under a name that is the same for the same file everywhere."""
    path = Path(file_part).expanduser()
    if not path.is_file():
        raise code.bad(
            f"no such file {file_part}", "give the .py file that defines the model (relative to the working directory)"
        )
    if path.suffix != ".py":
        raise code.bad("not a .py file", "give the Python file that defines the model's code, e.g. models/net.py")
    module_name = module_name_for(path)
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise UserError(
            f'--{code.option} "{code.text}": importing {path.name} failed: {type(exc).__name__}: {shorten(exc, 200)}',
            "fix the error in that file, or install what it imports (--requirements)",
        ) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def module_name_for(path: Path) -> str:
    """The name the file is imported under: the same for the same file, in every process and folder.

    It ends up in the ONNX file (node metadata names each node's module class), so it may not
    depend on hash() (randomised per process) or on where the file is.
    """
    stem = re.sub(r"\W", "_", path.stem)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"_onnx_convert_model_class_{stem}_{digest}"


def defined_here(module: ModuleType) -> dict[str, object]:
    """The public classes and functions the file itself defines (not those it imports)."""
    return {
        name: value
        for name, value in vars(module).items()
        if callable(value) and getattr(value, "__module__", None) == module.__name__ and not name.startswith("_")
    }
