"""ONNX export and manifest writing shared by every model we train."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from engines.manifest import (InputSpec, ModelManifest, OutputSpec, TrainingData, sha256_file,
                              write_manifest)

OPSET = 17
# Weight tensors at least this large are stored as float16 by ``store_large_weights_as_float16``.
# Above the frozen trunk's largest (112×672 = 75,264 in stage 5): the trunk's generic
# features, which the reference banks are built from, stay exactly float32.
LARGE_WEIGHT_ELEMENTS = 100_000


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path,
                input_name: str, output_names: Sequence[str]) -> Path:
    """Export with a dynamic batch dimension into one self-contained file."""
    model = model.eval().cpu()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.onnx")
    dynamic = {input_name: {0: "N"}, **{name: {0: "N"} for name in output_names}}
    with torch.no_grad():
        torch.onnx.export(model, example.cpu(), str(temporary), input_names=[input_name],
                          output_names=list(output_names), dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    temporary.replace(path)
    return path


def write_model_manifest(onnx_path: Path, *, name: str, version: str, task: str,
                         inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec],
                         training_description: str, dataset_id: str,
                         metrics: Mapping[str, float], notes: str = "") -> ModelManifest:
    manifest = ModelManifest(
        name=name, version=version, onnx=onnx_path.name, sha256=sha256_file(onnx_path),
        task=task, inputs=tuple(inputs), outputs=tuple(outputs),
        training_data=TrainingData(description=training_description, dataset_id=dataset_id),
        metrics={key: float(value) for key, value in metrics.items()},
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        notes=notes)
    write_manifest(manifest, onnx_path.with_suffix(".yaml"))
    return manifest


def store_large_weights_as_float16(path: Path, min_elements: int = LARGE_WEIGHT_ELEMENTS) -> int:
    """Store the large float32 weights of an ONNX file as float16, each followed by a Cast
    back to float32: the file nearly halves, compute stays float32 (ONNX Runtime folds
    the casts at load). Small tensors (biases, the early layers) keep full precision.
    Returns how many tensors were converted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    kept, casts, converted = [], [], 0
    for tensor in graph.initializer:
        if tensor.data_type != TensorProto.FLOAT or np.prod(tensor.dims) < min_elements:
            kept.append(tensor)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16),
                                       f"{tensor.name}.float16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                      name=f"{tensor.name}.to_float32"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    temporary = path.with_suffix(".tmp.onnx")
    onnx.save(model, str(temporary))
    temporary.replace(path)
    return converted


def fold_pads_into_convs(path: Path) -> int:
    """Fold every zero ``Pad`` with constant pads that feeds only a ``Conv`` into that
    Conv's own ``pads``, in place. Returns how many were folded.

    The TensorFlow "same" padding of the trunk (``_SamePadConv``) exports as a Pad before
    each strided or depthwise convolution. ONNX Runtime's CPU convolutions work in a
    blocked channel layout that a Pad cannot keep, so each Pad cost a copy plus a layout
    change out and back: about 40 % of the scorers' time on 2 cores. A Conv pads with zeros
    itself, so the folded network computes the same function (outputs equal to float
    rounding). Pads whose amounts depend on the input's shape, other modes and non-zero
    fill values are left alone.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {output.name for output in graph.output}
    candidates = []
    for pad in graph.node:
        if pad.op_type != "Pad" or len(pad.input) > 3:          # an ``axes`` input: skip
            continue
        mode = next((a.s.decode() for a in pad.attribute if a.name == "mode"), "constant")
        users = consumers.get(pad.output[0], [])
        if (mode != "constant" or pad.output[0] in graph_outputs or len(users) != 1
                or users[0].op_type != "Conv" or users[0].input[0] != pad.output[0]
                or _attribute(users[0], "auto_pad", b"NOTSET") != b"NOTSET"):
            continue
        candidates.append((pad, users[0]))
    wanted = {name for pad, _ in candidates for name in pad.input[1:3] if name}
    values = _constant_values(model, wanted)
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


def _attribute(node, name: str, default):
    from onnx import helper
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _constant_values(model, names: set[str]) -> dict[str, np.ndarray]:
    """The values of the tensors in ``names`` that do not depend on a graph input
    (initializers, or computed from constants only), evaluated with ONNX's reference
    evaluator; the others are absent from the result."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    inputs = {tensor.name for tensor in graph.input} - set(initializers)
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
            name = stack.pop()
            node = producers.get(name)
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


def _remove_dead_nodes(graph) -> None:
    """Drop nodes whose outputs nothing uses, then initializers nothing reads."""
    outputs = {output.name for output in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if not any(o in used for o in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
