"""The action's inputs and outputs in the docs, generated from action.yml: `make docs` writes them,
tests/test_action_yml.py checks that they are current.

README.md gets every input in one commented YAML block (what a user copies) and the outputs;
docs/action.md gets the same as tables. Each block sits between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 100  # README's code blocks stay readable without a scrollbar


def load_action(root: Path = ROOT) -> dict[str, Any]:
    return yaml.safe_load((root / "action.yml").read_text(encoding="utf-8"))


def inputs_yaml(action: dict[str, Any]) -> str:
    """Every input as the `with:` block of a step: its description as a comment, then its default."""
    lines = ["```yaml", "- uses: org/onnx-convert-action@v1", "  with:"]
    for name, spec in action["inputs"].items():
        for line in textwrap.wrap(spec["description"], WIDTH - 6):
            lines.append(f"    # {line}")
        if spec.get("required"):
            lines.append(f"    {name}: models/model.skops  # required")
        else:
            lines.append(f"    {name}: {_yaml_value(str(spec.get('default', '')))}")
    lines.append("```")
    return "\n".join(lines)


def _yaml_value(value: str) -> str:
    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip() if value else "''"


def outputs_list(action: dict[str, Any]) -> str:
    return "\n".join(f"- `{name}`: {spec['description']}" for name, spec in action["outputs"].items())


def inputs_table(action: dict[str, Any]) -> str:
    rows = ["| input | default | meaning |", "|---|---|---|"]
    for name, spec in action["inputs"].items():
        default = "(required)" if spec["required"] else (f"`{spec['default']}`" if spec["default"] else "")
        rows.append(f"| `{name}` | {default} | {spec['description'].replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def outputs_table(action: dict[str, Any]) -> str:
    rows = ["| output | meaning |", "|---|---|"]
    rows += [
        f"| `{name}` | {spec['description'].replace('|', chr(92) + '|')} |" for name, spec in action["outputs"].items()
    ]
    return "\n".join(rows)


BLOCKS = {
    "README.md": {"action-inputs-yaml": inputs_yaml, "action-outputs-list": outputs_list},
    "docs/action.md": {"action-inputs": inputs_table, "action-outputs": outputs_table},
}


def generated(text: str, blocks: dict[str, Any], action: dict[str, Any]) -> str:
    """``text`` with each marked block replaced by its generated content."""
    for marker, make in blocks.items():
        pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- {marker}:start --> ... <!-- {marker}:end --> block")
        text = pattern.sub(lambda m, make=make: m.group(1) + make(action) + "\n" + m.group(2), text)
    return text


def main(root: Path = ROOT) -> int:
    action = load_action(root)
    for name, blocks in BLOCKS.items():
        path = root / name
        text = path.read_text(encoding="utf-8")
        new = generated(text, blocks, action)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"updated {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
