"""Fold the "same" padding of exported scorers into their convolutions, manifests kept true.

    .venv/bin/python -m training.fold_pads runs/scorer/scorer.onnx runs/item0/item_scorer.onnx

The trunk's TensorFlow "same" padding (``training.efficientnet_lite._SamePadConv``) exports
as a ``Pad`` before each strided or depthwise convolution. ONNX Runtime's CPU convolutions
work in a blocked channel layout that a Pad cannot keep, so each Pad cost a copy plus a
layout change out and back: 40 % of the item scorer's time on 2 cores. A Conv pads with
zeros itself, so folding the amounts into it leaves the same function (outputs equal to
float rounding). The export folds (``training.scorer.export``); this command folds files
exported before. It needs only onnx and numpy, not torch.

A fusion fitted on the old file names its sha256, so the station warns until it is
re-fitted (the warning prints the command); cached reference banks, keyed by the scorer's
sha256, are rebuilt the first time each item is seen again.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from engines.manifest import (ModelError, load_manifest, manifest_path_for, sha256_file,
                              write_manifest)

NOTE = "Pads folded into the convolutions (training.fold_pads)."


def fold_pads_into_convs(path: Path) -> int:
    """Fold every zero ``Pad`` with constant amounts that feeds only a ``Conv``'s data
    input into that Conv's own ``pads``, in place. Returns how many were folded.

    Left alone: amounts that depend on the input (a graph input, overridable initializers
    included), other modes, a non-zero fill, padding of the batch or channel axes, the
    opset < 11 form (amounts as an attribute), and models with control flow (subgraphs).
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    if any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in graph.node for attribute in node.attribute):
        return 0
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}
    candidates = []
    for pad in graph.node:
        if pad.op_type != "Pad" or not 2 <= len(pad.input) <= 3:
            continue
        mode = next((a.s.decode() for a in pad.attribute if a.name == "mode"), "constant")
        users = consumers.get(pad.output[0], [])
        if (mode != "constant" or pad.output[0] in graph_outputs or len(users) != 1
                or users[0].op_type != "Conv" or users[0].input[0] != pad.output[0]
                or pad.output[0] in users[0].input[1:]
                or _attribute(users[0], "auto_pad", b"NOTSET") != b"NOTSET"):
            continue
        candidates.append((pad, users[0]))
    values = _constant_values(model, {name for pad, _ in candidates
                                      for name in pad.input[1:] if name})
    folded = 0
    for pad, conv in candidates:
        pads = values.get(pad.input[1])
        fill = values.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else 0
        if (pads is None or fill is None or np.any(np.asarray(fill) != 0) or pads.shape != (8,)
                or np.any(pads < 0) or np.any(pads[[0, 1, 4, 5]] != 0)):
            continue
        old = list(_attribute(conv, "pads", [0, 0, 0, 0]))
        added = [int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7])]   # top left bottom right
        for attribute in [a for a in conv.attribute if a.name == "pads"]:
            conv.attribute.remove(attribute)
        conv.attribute.append(helper.make_attribute(
            "pads", [a + b for a, b in zip(old, added)]))
        conv.input[0] = pad.input[0]
        graph.node.remove(pad)
        folded += 1
    if folded:
        _remove_dead_nodes(graph)
        onnx.checker.check_model(model)
        temporary = path.with_suffix(".tmp.onnx")
        onnx.save(model, str(temporary))
        temporary.replace(path)
    return folded


class Folded(NamedTuple):
    pads: int                 # Pads folded into convolutions
    resumed: bool = False     # an interrupted earlier run was finished


def fold_model(onnx_path: Path) -> Folded:
    """Fold ``onnx_path`` and bring its manifest up to date.

    The manifest is written first and the folded file renamed over the old one after it, so
    an interruption leaves a manifest that names the folded file's sha256: running the
    command again finishes the job (it refuses any other mismatch)."""
    manifest_path = manifest_path_for(onnx_path)
    manifest = load_manifest(manifest_path)
    described = manifest.sha256 == sha256_file(onnx_path)
    folded_copy = onnx_path.with_suffix(".folding.onnx")
    shutil.copyfile(onnx_path, folded_copy)
    try:
        if not described:
            if _folds_to(folded_copy, manifest.sha256):     # an interrupted earlier run
                folded_copy.replace(onnx_path)
                return Folded(0, resumed=True)
            raise ModelError(onnx_path, f"does not match the sha256 in {manifest_path}; fold "
                                        "only the file its manifest describes")
        folded = fold_pads_into_convs(folded_copy)
        new_sha = sha256_file(folded_copy)
        if folded:
            notes = (manifest.notes if NOTE in manifest.notes
                     else f"{manifest.notes} {NOTE}".strip())
            write_manifest(dataclasses.replace(manifest, sha256=new_sha, notes=notes),
                           manifest_path)
            folded_copy.replace(onnx_path)
        return Folded(folded)
    finally:
        folded_copy.unlink(missing_ok=True)


def _folds_to(path: Path, sha256: str) -> bool:
    """Whether folding ``path`` (in place) gives the file with this sha256."""
    try:
        return fold_pads_into_convs(path) > 0 and sha256_file(path) == sha256
    except Exception:         # unreadable or invalid: it is not the folded file either
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: fold each model named; 1 on the first that cannot be folded."""
    from google.protobuf.message import DecodeError
    from onnx.checker import ValidationError

    parser = argparse.ArgumentParser(prog="python -m training.fold_pads",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path, nargs="+", help="ONNX files with a manifest")
    args = parser.parse_args(argv)
    for path in args.models:
        try:
            folded = fold_model(path)
        except ModelError as error:
            print(error, file=sys.stderr)
            return 1
        except (OSError, DecodeError, ValidationError) as error:
            print(f"{path}: not folded ({type(error).__name__}: {error}); the file and its "
                  "manifest are unchanged", file=sys.stderr)
            return 1
        print(f"{path}: " + ("finished an interrupted fold" if folded.resumed
                             else f"{folded.pads} pads folded" if folded.pads
                             else "nothing to fold"))
    return 0


def _attribute(node: Any, name: str, default: Any) -> Any:
    from onnx import helper
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _constant_values(model: Any, names: set[str]) -> dict[str, np.ndarray]:
    """The values of the tensors in ``names`` that do not depend on a graph input
    (initializers that are not also inputs, or tensors computed from those only),
    evaluated with ONNX's reference evaluator; the others are absent from the result."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    inputs = {tensor.name for tensor in graph.input}   # an initializer listed here may be fed
    initializers = {tensor.name: tensor for tensor in graph.initializer
                    if tensor.name not in inputs}
    producers = {output: node for node in graph.node for output in node.output}
    constant: dict[str, bool] = {}

    def is_constant(name: str) -> bool:
        stack = [name]
        while stack:                   # depth first, without recursion (graphs are deep)
            current = stack[-1]
            if current in constant:
                stack.pop()
            elif current in initializers or current == "":
                constant[current] = True
            elif current in inputs or current not in producers:
                constant[current] = False
            else:
                pending = [i for i in producers[current].input if i not in constant]
                if pending:
                    stack.extend(pending)
                else:
                    constant[current] = all(constant[i] for i in producers[current].input)
        return constant[name]

    computed = sorted(name for name in names if name not in initializers and is_constant(name))
    values = {name: numpy_helper.to_array(initializers[name])
              for name in names if name in initializers}
    if computed:
        needed, stack = set(), list(computed)
        while stack:
            node = producers.get(stack.pop())
            if node is not None and id(node) not in needed:
                needed.add(id(node))
                stack.extend(node.input)
        nodes = [node for node in graph.node if id(node) in needed]
        used = {name for node in nodes for name in node.input}
        subgraph = helper.make_graph(
            nodes, "constants", [], [helper.make_tensor_value_info(name, 0, None)
                                     for name in computed],
            [initializers[name] for name in used if name in initializers])
        evaluator = ReferenceEvaluator(helper.make_model(
            subgraph, opset_imports=list(model.opset_import)))
        values.update(zip(computed, evaluator.run(None, {})))
    return {name: np.asarray(value) for name, value in values.items()}


def _remove_dead_nodes(graph: Any) -> None:
    """Drop nodes whose outputs nothing uses, then the initializers nothing reads (and
    their graph-input entries, which would otherwise become required inputs)."""
    outputs = {output.name for output in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if not any(o in used for o in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | outputs
    unused = {tensor.name for tensor in graph.initializer if tensor.name not in used}
    for tensor in [t for t in graph.initializer if t.name in unused]:
        graph.initializer.remove(tensor)
    for value in [v for v in graph.input if v.name in unused]:
        graph.input.remove(value)


if __name__ == "__main__":
    sys.exit(main())
