"""The interface diff: every input and output, the opsets and the IR version, each change classified.

A change is ``breaking`` when a client written for the baseline fails, or silently gets something
else; ``compatible`` when it keeps working. The rules, with the reason each change records (the
table in docs/release.md is this one):

- input or output renamed (paired by position), removed: breaking (clients feed and read by name);
- input added: breaking (onnxruntime requires every graph input);
- output added after the existing ones: compatible; before them: breaking (positions move);
- outputs reordered: breaking (a client that unpacks ``session.run(None, ...)`` gets them swapped);
  inputs reordered: compatible (inputs are always fed by name);
- dtype changed, rank changed: breaking;
- an axis fixed -> dynamic: compatible; dynamic -> fixed, or a fixed size changed: breaking;
  a dynamic axis's name is not compared (no runtime effect; exporters make them up);
- opset (per domain) or IR version raised, a domain added: breaking (the serving runtime must
  load it); lowered or dropped: compatible.
"""

from __future__ import annotations

from converter.baseline.result import BREAKING, COMPATIBLE, InterfaceChange
from converter.baseline.source import Interface, Tensor

_BY_NAME = "clients feed inputs and read outputs by name"


def diff_interface(baseline: Interface, current: Interface) -> list[InterfaceChange]:
    """Every change from ``baseline`` to ``current``: inputs, then outputs, then versions."""
    changes = _diff_tensors("input", baseline.inputs, current.inputs)
    changes += _diff_tensors("output", baseline.outputs, current.outputs)
    return changes + _diff_versions(baseline, current)


def pair_tensors(baseline: list[Tensor], current: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """(baseline, current) pairs: by name, then a name that is gone and a new one at the same position."""
    names = {t.name for t in current}
    old_names = {t.name for t in baseline}
    by_name = {t.name: t for t in current}
    pairs = [(b, by_name[b.name]) for b in baseline if b.name in names]
    for index, old in enumerate(baseline):
        new = current[index] if index < len(current) else None
        if old.name not in names and new is not None and new.name not in old_names:
            pairs.append((old, new))
    return pairs


def _diff_tensors(kind: str, baseline: list[Tensor], current: list[Tensor]) -> list[InterfaceChange]:
    pairs = pair_tensors(baseline, current)
    paired_old = {b.name for b, _ in pairs}
    paired_new = {c.name for _, c in pairs}
    changes = []
    for old, new in pairs:
        if old.name != new.name:
            changes.append(
                InterfaceChange(
                    kind, old.name, "renamed", old.text(), new.text(), BREAKING, f"renamed to {new.name}: {_BY_NAME}"
                )
            )
        changes += _diff_tensor(kind, old, new)
    for old in baseline:
        if old.name not in paired_old:
            changes.append(InterfaceChange(kind, old.name, "removed", old.text(), "", BREAKING, f"removed: {_BY_NAME}"))
    kept = len(baseline)
    for index, new in enumerate(current):
        if new.name not in paired_new:
            changes.append(_added(kind, new, after_existing=index >= kept))
    return changes + _order(kind, baseline, current, pairs)


def _added(kind: str, tensor: Tensor, after_existing: bool) -> InterfaceChange:
    if kind == "input":
        severity, reason = BREAKING, "added: onnxruntime requires every input, and clients do not feed it"
    elif after_existing:
        severity, reason = COMPATIBLE, "added after the existing outputs: clients that read theirs still get them"
    else:
        severity, reason = BREAKING, "added before existing outputs: their positions move"
    return InterfaceChange(kind, tensor.name, "added", "", tensor.text(), severity, reason)


def _order(
    kind: str, baseline: list[Tensor], current: list[Tensor], pairs: list[tuple[Tensor, Tensor]]
) -> list[InterfaceChange]:
    position = {t.name: i for i, t in enumerate(current)}
    before = [c.name for _, c in sorted(pairs, key=lambda p: baseline.index(p[0]))]
    after = sorted(before, key=position.__getitem__)
    if before == after:
        return []
    if kind == "input":
        severity, reason = COMPATIBLE, "inputs are fed by name"
    else:
        severity, reason = BREAKING, "a client that unpacks session.run(None, ...) gets them swapped"
    return [
        InterfaceChange(
            kind, "", "order", ", ".join(before), ", ".join(after), severity, f"{kind}s reordered: {reason}"
        )
    ]


def _diff_tensor(kind: str, old: Tensor, new: Tensor) -> list[InterfaceChange]:
    if old.dtype != new.dtype:
        reason = (
            "onnxruntime refuses the dtype clients feed"
            if kind == "input"
            else "clients get another dtype (a typed buffer or a cast breaks)"
        )
        return [InterfaceChange(kind, old.name, "dtype", old.dtype, new.dtype, BREAKING, f"dtype changed: {reason}")]
    if len(old.shape) != len(new.shape):
        return [InterfaceChange(kind, old.name, "rank", old.text(), new.text(), BREAKING, "rank changed")]
    changes = []
    for axis, (was, now) in enumerate(zip(old.shape, new.shape, strict=True)):
        change = _axis_change(kind, was, now)
        if change is not None:
            severity, reason = change
            changes.append(
                InterfaceChange(kind, old.name, "axis", _dim(was), _dim(now), severity, f"axis {axis}: {reason}")
            )
    return changes


def _axis_change(kind: str, was: int | str | None, now: int | str | None) -> tuple[str, str] | None:
    fixed_was, fixed_now = isinstance(was, int), isinstance(now, int)
    if fixed_was and fixed_now:
        return None if was == now else (BREAKING, f"size {was} -> {now}")
    if fixed_was:
        return COMPATIBLE, f"fixed at {was}, now dynamic: every size that worked still works"
    if fixed_now:
        who = (
            "clients that send another size fail" if kind == "input" else "clients that send another size get this one"
        )
        return BREAKING, f"dynamic, now fixed at {now}: {who}"
    return None  # both dynamic: their names have no runtime effect, and exporters make them up (torch: s77)


def _diff_versions(baseline: Interface, current: Interface) -> list[InterfaceChange]:
    changes = []
    for domain in sorted(set(baseline.opsets) | set(current.opsets)):
        was, now = baseline.opsets.get(domain), current.opsets.get(domain)
        if was == now:
            continue
        label = f"opset {domain}"
        if was is None or (now is not None and now > was):
            severity = BREAKING
            reason = f"the serving runtime must load {domain} opset {now}; pin --opset to keep the baseline's"
        else:
            severity, reason = COMPATIBLE, "runtimes that loaded the baseline load this file"
        changes.append(InterfaceChange("model", label, "opset", _version(was), _version(now), severity, reason))
    if baseline.ir_version != current.ir_version:
        raised = current.ir_version > baseline.ir_version
        changes.append(
            InterfaceChange(
                "model",
                "IR version",
                "ir_version",
                str(baseline.ir_version),
                str(current.ir_version),
                BREAKING if raised else COMPATIBLE,
                f"the serving runtime must load IR version {current.ir_version}"
                if raised
                else "runtimes that loaded the baseline load this file",
            )
        )
    return changes


def _dim(dim: int | str | None) -> str:
    if dim is None:
        return "dynamic"
    return str(dim) if isinstance(dim, int) else f"dynamic ({dim})"


def _version(version: int | None) -> str:
    return "-" if version is None else str(version)
