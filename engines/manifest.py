"""Model manifests: the YAML that ships next to every ONNX file (DESIGN.md §3 "Models").

A manifest says what a model is (name, version, task), which exact file it describes
(sha256), how to feed it (input names, shapes, normalisation, colour order), what comes
out (output names and meaning), what it was trained on and how well it measured.

``verify_model`` is the start-up gate: a model whose file is missing, corrupt, or whose
sha256 differs from its manifest is refused with a ``ModelError`` naming the path and
the reason, before any runtime touches it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from engines.files import write_atomic

MANIFEST_SUFFIX = ".yaml"
SUPPORTED_DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")
IMAGE_LAYOUTS = ("NCHW",)
COLOUR_ORDERS = ("RGB", "BGR", "GRAY")

Dim = int | str
"""A tensor dimension: a fixed size, or a symbol such as ``"N"`` for a dynamic batch."""


class ModelError(Exception):
    """A model that must not be run: the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class InputSpec:
    """One model input and, for images, how pixels become the tensor."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"
    layout: str = "NCHW"
    size: tuple[int, int] | None = None          # (height, width) the image is resized to
    mean: tuple[float, ...] | None = None        # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...] | None = None
    colour_order: str | None = None              # channel order of the tensor


@dataclass(frozen=True)
class OutputSpec:
    """One model output and what its numbers mean."""

    name: str
    shape: tuple[Dim, ...]
    meaning: str
    dtype: str = "float32"


@dataclass(frozen=True)
class TrainingData:
    description: str
    dataset_id: str


@dataclass(frozen=True)
class ModelManifest:
    """What an ONNX file is; loaded from ``<name>.yaml`` next to it."""

    name: str
    version: str
    onnx: str                                    # file name, relative to the manifest
    sha256: str
    task: str                                    # segmenter | scorer | reference | ...
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    training_data: TrainingData
    metrics: Mapping[str, float] = field(default_factory=dict)
    created: str = ""
    notes: str = ""

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(f"model {self.name!r} has no input {name!r}")

    def output(self, name: str) -> OutputSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(f"model {self.name!r} has no output {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data in manifest-file order, for YAML."""
        data = asdict(self)
        data["inputs"] = [_drop_none({**item, "shape": list(item["shape"])})
                          for item in data["inputs"]]
        for item in data["inputs"]:
            for key in ("size", "mean", "std"):
                if key in item:
                    item[key] = list(item[key])
        data["outputs"] = [{**item, "shape": list(item["shape"])} for item in data["outputs"]]
        data["metrics"] = {str(k): float(v) for k, v in self.metrics.items()}
        return data


# --------------------------------------------------------------------------- files

def manifest_path_for(onnx_path: str | os.PathLike[str]) -> Path:
    """The manifest that belongs to an ONNX file: same folder, same stem, ``.yaml``."""
    return Path(onnx_path).with_suffix(MANIFEST_SUFFIX)


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large models do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: str | os.PathLike[str]) -> ModelManifest:
    """Read and validate a manifest; errors name the field, the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "manifest file missing")
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelError(path, f"manifest is not readable YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(path, "manifest must be a YAML mapping")
    return _ManifestReader(path, data, node).read()


def write_manifest(manifest: ModelManifest, path: str | os.PathLike[str]) -> Path:
    """Write a manifest atomically (a crash leaves the old file or the new, never half)."""
    path = Path(path)
    text = yaml.dump(manifest.to_dict(), Dumper=_ManifestDumper, sort_keys=False,
                     allow_unicode=True)
    _write_atomic(path, text.encode("utf-8"))
    return path


def verify_model(onnx_path: str | os.PathLike[str],
                 manifest: ModelManifest | str | os.PathLike[str] | None = None,
                 ) -> ModelManifest:
    """Refuse a model that must not run; return its manifest when it may.

    Checks, cheapest first: the file exists, the manifest loads and names this file,
    the sha256 matches, ``onnx.load`` and ``onnx.checker`` accept it, and its graph
    inputs/outputs are the ones the manifest describes.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(onnx_path, "model file missing")
    if not isinstance(manifest, ModelManifest):
        manifest = load_manifest(manifest if manifest is not None
                                 else manifest_path_for(onnx_path))
    if manifest.onnx != onnx_path.name:
        raise ModelError(onnx_path, f"manifest {manifest.name!r} describes file "
                                    f"{manifest.onnx!r}, not {onnx_path.name!r}")
    actual = sha256_file(onnx_path)
    if actual != manifest.sha256:
        raise ModelError(onnx_path, f"sha256 mismatch: manifest says {manifest.sha256}, "
                                    f"file has {actual}")
    _check_onnx(onnx_path, manifest)
    return manifest


def _check_onnx(onnx_path: Path, manifest: ModelManifest) -> None:
    import onnx  # deferred: only start-up checks need it

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... on bad bytes
        raise ModelError(onnx_path, f"corrupt ONNX: onnx.load failed ({exc})") from exc
    try:
        onnx.checker.check_model(str(onnx_path))
    except Exception as exc:
        raise ModelError(onnx_path, f"corrupt ONNX: onnx.checker rejected it ({exc})") from exc

    initialisers = {init.name for init in model.graph.initializer}
    graph_inputs = {v.name: v for v in model.graph.input if v.name not in initialisers}
    graph_outputs = {v.name: v for v in model.graph.output}
    for kind, declared, found in (("inputs", manifest.inputs, graph_inputs),
                                  ("outputs", manifest.outputs, graph_outputs)):
        names = [spec.name for spec in declared]
        if sorted(names) != sorted(found):
            raise ModelError(onnx_path, f"ONNX {kind} {sorted(found)} do not match the "
                                        f"manifest's {sorted(names)}")
        for spec in declared:
            onnx_dims = _onnx_dims(found[spec.name])
            if onnx_dims is not None and not _dims_compatible(onnx_dims, spec.shape):
                raise ModelError(onnx_path, f"ONNX {kind[:-1]} {spec.name!r} has shape "
                                            f"{list(onnx_dims)}, manifest says {list(spec.shape)}")


def _onnx_dims(value_info: Any) -> tuple[Dim, ...] | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                 for d in tensor_type.shape.dim)


def _dims_compatible(onnx_dims: Sequence[Dim], manifest_dims: Sequence[Dim]) -> bool:
    """Same rank, and equal wherever both sides give a fixed size."""
    if len(onnx_dims) != len(manifest_dims):
        return False
    return all(not (isinstance(a, int) and isinstance(b, int)) or a == b
               for a, b in zip(onnx_dims, manifest_dims))


def _write_atomic(path: Path, payload: bytes) -> None:
    write_atomic(path, payload)


class _ManifestDumper(yaml.SafeDumper):
    """Short lists of numbers/symbols (shapes, mean, std) on one line: ``[N, 3, 256, 256]``."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(item, (int, float, str)) for item in data) and len(data) <= 8
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_ManifestDumper.add_representer(list, _represent_list)


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


# --------------------------------------------------------------------------- validation

class _ManifestReader:
    """Turns parsed YAML into a ``ModelManifest``, naming field and line on any error."""

    def __init__(self, path: Path, data: dict[str, Any], root: yaml.Node | None):
        self.path = path
        self.data = data
        self.root = root

    def read(self) -> ModelManifest:
        d = self.data
        training = self.mapping(d, "training_data")
        return ModelManifest(
            name=self.text(d, "name"),
            version=self.text(d, "version"),
            onnx=self.text(d, "onnx"),
            sha256=self.sha(d, "sha256"),
            task=self.text(d, "task"),
            inputs=tuple(self.input_spec(item, i)
                         for i, item in enumerate(self.items(d, "inputs"))),
            outputs=tuple(self.output_spec(item, i)
                          for i, item in enumerate(self.items(d, "outputs"))),
            training_data=TrainingData(
                description=self.text(training, "description", ("training_data",)),
                dataset_id=self.text(training, "dataset_id", ("training_data",)),
            ),
            metrics=self.metrics(d),
            created=self.timestamp(d, "created"),
            notes=str(d.get("notes") or ""),
        )

    # -- sections

    def input_spec(self, item: dict[str, Any], index: int) -> InputSpec:
        where = ("inputs", index)
        layout = self.text(item, "layout", where)
        image = layout in IMAGE_LAYOUTS
        spec = InputSpec(
            name=self.text(item, "name", where),
            shape=self.shape(item, where),
            dtype=self.dtype(item, where),
            layout=layout,
            size=self.numbers(item, "size", where, int, 2) if image or "size" in item else None,
            mean=self.numbers(item, "mean", where, float) if image or "mean" in item else None,
            std=self.numbers(item, "std", where, float) if image or "std" in item else None,
            colour_order=(self.choice(item, "colour_order", COLOUR_ORDERS, where)
                          if image or "colour_order" in item else None),
        )
        if image:
            channels = spec.shape[1] if len(spec.shape) == 4 else None
            if len(spec.shape) != 4:
                self.fail(where + ("shape",), "an NCHW input needs a 4-dimensional shape")
            if isinstance(channels, int) and not (len(spec.mean) == len(spec.std) == channels):
                self.fail(where + ("mean",), f"mean and std need {channels} values "
                                             f"(one per channel)")
            if any(s <= 0 for s in spec.std):
                self.fail(where + ("std",), "std values must be positive")
        return spec

    def output_spec(self, item: dict[str, Any], index: int) -> OutputSpec:
        where = ("outputs", index)
        return OutputSpec(name=self.text(item, "name", where), shape=self.shape(item, where),
                          meaning=self.text(item, "meaning", where),
                          dtype=self.dtype(item, where) if "dtype" in item else "float32")

    def metrics(self, d: dict[str, Any]) -> dict[str, float]:
        raw = d.get("metrics") or {}
        if not isinstance(raw, dict):
            self.fail(("metrics",), "must be a mapping of metric name to number")
        out = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(("metrics", key), f"must be a number, got {value!r}")
            out[str(key)] = float(value)
        return out

    # -- typed fields

    def require(self, mapping: dict[str, Any], key: str, where: tuple = ()) -> Any:
        if key not in mapping or mapping[key] is None:
            self.fail(where + (key,), "field missing", at=where)
        return mapping[key]

    def text(self, mapping: dict[str, Any], key: str, where: tuple = ()) -> str:
        value = self.require(mapping, key, where)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) \
                or not str(value).strip():
            self.fail(where + (key,), f"must be non-empty text, got {value!r}")
        return str(value)

    def sha(self, mapping: dict[str, Any], key: str) -> str:
        value = self.text(mapping, key).lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            self.fail((key,), "must be 64 hexadecimal characters")
        return value

    def mapping(self, mapping: dict[str, Any], key: str) -> dict[str, Any]:
        value = self.require(mapping, key)
        if not isinstance(value, dict):
            self.fail((key,), "must be a mapping")
        return value

    def items(self, mapping: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = self.require(mapping, key)
        if not isinstance(value, list) or not value or \
                not all(isinstance(item, dict) for item in value):
            self.fail((key,), "must be a non-empty list of mappings")
        names = [item.get("name") for item in value]
        if len(set(map(str, names))) != len(names):
            self.fail((key,), f"names must be unique, got {names}")
        return value

    def shape(self, item: dict[str, Any], where: tuple) -> tuple[Dim, ...]:
        value = self.require(item, "shape", where)
        ok = isinstance(value, list) and value and all(
            (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            or (isinstance(d, str) and d.strip()) for d in value)
        if not ok:
            self.fail(where + ("shape",), "must be a list of positive sizes or symbols "
                                          f"such as N, got {value!r}")
        return tuple(value)

    def dtype(self, item: dict[str, Any], where: tuple) -> str:
        return self.choice(item, "dtype", SUPPORTED_DTYPES, where)

    def choice(self, item: dict[str, Any], key: str, allowed: Sequence[str],
               where: tuple) -> str:
        value = self.text(item, key, where)
        if value not in allowed:
            self.fail(where + (key,), f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def numbers(self, item: dict[str, Any], key: str, where: tuple, kind: type,
                count: int | None = None) -> tuple:
        value = self.require(item, key, where)
        ok = isinstance(value, list) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            and (kind is float or float(v).is_integer()) for v in value)
        if not ok or (count is not None and len(value) != count):
            size = f"{count} " if count else ""
            self.fail(where + (key,), f"must be a list of {size}numbers, got {value!r}")
        return tuple(kind(v) for v in value)

    def timestamp(self, mapping: dict[str, Any], key: str) -> str:
        value = mapping.get(key)
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value.isoformat()
        return "" if value is None else str(value)

    # -- errors

    def fail(self, field_path: tuple, reason: str, at: tuple | None = None) -> None:
        dotted = _dotted(field_path)
        line = _line_of(self.root, field_path if at is None else at)
        where = f" (line {line})" if line else ""
        raise ModelError(self.path, f"manifest field {dotted!r}: {reason}{where}")


def _dotted(field_path: Sequence[Any]) -> str:
    text = ""
    for part in field_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(node: yaml.Node | None, field_path: Sequence[Any]) -> int | None:
    """1-based line of the deepest node along ``field_path`` that the YAML contains."""
    line = None
    for part in field_path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1   # the "key:" line, even for block values
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    if line is None and node is not None:
        line = node.start_mark.line + 1
    return line
