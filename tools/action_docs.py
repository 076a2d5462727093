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


# Inputs that belong to one feature with a page of its own: in README's block one comment above the
# group says what it is for and where each is described, so that the README stays short (issue 18:
# under 1,500 words); docs/action.md describes every input.
INPUT_GROUPS = {
    "baseline": "Compare with the last release and gate on it; sign the file (docs/release.md).",
    "variants": "Optimised, fp16 and int8 variants of the file, each validated (docs/variants.md).",
    "model-code": "Model code, imported (runs): file.py:Class (PyTorch), file.py (Keras); alias model-class; "
    "requirements: the packages it imports, installed first.",
}
GROUPED = {
    "baseline": "baseline",
    "baseline-optional": "baseline",
    "allow-interface-change": "baseline",
    "max-drift": "baseline",
    "max-size-increase": "baseline",
    "max-latency-increase": "baseline",
    "sign": "baseline",
    "variants": "variants",
    "variant-tolerance": "variants",
    "pick": "variants",
    "require-variants": "variants",
    "model-code": "model-code",
    "model-class": "model-code",
    "requirements": "model-code",
}
OUTPUT_GROUPS = {
    "baseline": "with `baseline:` ([docs/release.md](docs/release.md))",
    "variants": "with `variants:` ([docs/variants.md](docs/variants.md))",
}
GROUPED_OUTPUTS = {
    "interface-changed": "baseline",
    "breaking-changes": "baseline",
    "best-variant-path": "variants",
    "variants-passed": "variants",
}


def inputs_yaml(action: dict[str, Any]) -> str:
    """Every input as the `with:` block of a step: its description (or its group's) as a comment,
    then its default."""
    lines = ["```yaml", "- uses: org/onnx-convert-action@v1", "  with:"]
    previous = None
    for name, spec in action["inputs"].items():
        group = GROUPED.get(name)
        if group is None:
            lines += [f"    # {line}" for line in textwrap.wrap(spec["description"], WIDTH - 6)]
        elif group != previous:
            lines += [f"    # {line}" for line in textwrap.wrap(INPUT_GROUPS[group], WIDTH - 6)]
        previous = group
        if spec.get("required"):
            lines.append(f"    {name}: models/model.skops  # required")
        else:
            lines.append(f"    {name}: {_yaml_value(str(spec.get('default', '')))}")
    lines.append("```")
    return "\n".join(lines)


def _yaml_value(value: str) -> str:
    return yaml.safe_dump(value, default_style=None).removesuffix("\n...\n").strip() if value else "''"


def outputs_list(action: dict[str, Any]) -> str:
    """Each output and its description; a group of outputs on one line, named after its feature."""
    lines, done = [], set()
    for name, spec in action["outputs"].items():
        group = GROUPED_OUTPUTS.get(name)
        if group is None:
            lines.append(f"- `{name}`: {spec['description']}")
        elif group not in done:
            done.add(group)
            names = ", ".join(f"`{n}`" for n, g in GROUPED_OUTPUTS.items() if g == group)
            lines.append(f"- {names}: {OUTPUT_GROUPS[group]}")
    return "\n".join(lines)


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
