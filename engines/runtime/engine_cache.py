"""On-disk cache of TensorRT engines, each file carrying the metadata it was built under.

An engine is only valid for the ONNX it came from, the TensorRT version that built it,
the GPU it was tuned on and the build flags. All of these form the cache key (and so
the file name), and all are written again in a checksummed header at the front of the
file, so a renamed, copied, truncated or bit-flipped engine is recognised and rebuilt
rather than handed to TensorRT::

    MAGIC (8 bytes) | header length (uint32 LE) | header (UTF-8 JSON) | serialized engine

The header holds its own sha256 (over the header without that field) and the sha256
and size of the serialized engine behind it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from engines.files import write_atomic

MAGIC = b"DSTRTENG"
FORMAT_VERSION = 1
_HEADER_LENGTH = struct.Struct("<I")
_MAX_HEADER_BYTES = 1 << 20
ENGINE_SUFFIX = ".engine"


class CorruptEngine(ValueError):
    """An engine file whose bytes cannot be trusted; the message says what is wrong."""


@dataclass(frozen=True)
class BuildFlags:
    """Builder settings that change the engine, so they are part of its key."""

    fp16: bool                 # TensorRT 10: BuilderFlag.FP16 set
    strongly_typed: bool       # network created STRONGLY_TYPED (always on TensorRT 11)
    min_batch: int
    opt_batch: int
    max_batch: int
    workspace_mib: int


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; equal keys mean an interchangeable engine."""

    model_name: str
    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str    # "8.9"
    flags: BuildFlags

    def identity(self) -> dict[str, Any]:
        """The fields that decide validity (the model name is only a label)."""
        data = asdict(self)
        data.pop("model_name")
        return data

    def digest(self) -> str:
        return hashlib.sha256(_canonical_json(self.identity())).hexdigest()

    def file_name(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model_name).strip("._") or "model"
        return f"{slug}-{self.digest()[:16]}{ENGINE_SUFFIX}"


@dataclass(frozen=True)
class CacheLookup:
    """A usable engine (``engine``) or why there is none (``reason``)."""

    path: Path
    engine: bytes | None = None
    header: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def hit(self) -> bool:
        return self.engine is not None


# --------------------------------------------------------------------------- file format

def encode_engine_file(key: EngineKey, engine: bytes,
                       created: str | None = None) -> bytes:
    """Header + engine bytes, ready to write."""
    header = {
        "format_version": FORMAT_VERSION,
        "model_name": key.model_name,
        **key.identity(),
        "created": created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "engine_size": len(engine),
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
    }
    header["header_sha256"] = hashlib.sha256(_canonical_json(header)).hexdigest()
    header_bytes = _canonical_json(header)
    return MAGIC + _HEADER_LENGTH.pack(len(header_bytes)) + header_bytes + bytes(engine)


def decode_engine_file(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(header, engine bytes), or ``CorruptEngine`` saying why the bytes are not trusted."""
    prefix = len(MAGIC) + _HEADER_LENGTH.size
    if len(data) < prefix:
        raise CorruptEngine(f"truncated: {len(data)} bytes, shorter than the header prefix")
    if data[:len(MAGIC)] != MAGIC:
        raise CorruptEngine("bad magic: not an engine file of this station")
    (header_length,) = _HEADER_LENGTH.unpack_from(data, len(MAGIC))
    if header_length > _MAX_HEADER_BYTES or prefix + header_length > len(data):
        raise CorruptEngine(f"truncated or damaged header (length field {header_length})")
    try:
        header = json.loads(data[prefix:prefix + header_length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptEngine(f"header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or "header_sha256" not in header:
        raise CorruptEngine("header has no checksum")
    claimed = header.pop("header_sha256")
    if hashlib.sha256(_canonical_json(header)).hexdigest() != claimed:
        raise CorruptEngine("header checksum mismatch")
    header["header_sha256"] = claimed
    if header.get("format_version") != FORMAT_VERSION:
        raise CorruptEngine(f"unknown format version {header.get('format_version')!r}")
    engine = data[prefix + header_length:]
    if len(engine) != header.get("engine_size"):
        raise CorruptEngine(f"truncated: engine has {len(engine)} bytes, header says "
                            f"{header.get('engine_size')}")
    if hashlib.sha256(engine).hexdigest() != header.get("engine_sha256"):
        raise CorruptEngine("engine checksum mismatch")
    return header, engine


def read_engine_header(path: Path) -> dict[str, Any] | None:
    """The header of a valid engine file, or None; reads the whole file to check it."""
    try:
        return decode_engine_file(path.read_bytes())[0]
    except (OSError, CorruptEngine):
        return None


# --------------------------------------------------------------------------- cache

class EngineCache:
    """A folder of engine files plus the TensorRT timing cache that speeds rebuilds."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)

    def path_for(self, key: EngineKey) -> Path:
        return self.directory / key.file_name()

    def lookup(self, key: EngineKey) -> CacheLookup:
        """The cached engine for ``key`` if it can be trusted, else the rebuild reason."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return CacheLookup(path, reason=self._why_missing(key))
        except OSError as exc:
            return CacheLookup(path, reason=f"unreadable: {exc}")
        try:
            header, engine = decode_engine_file(data)
        except CorruptEngine as exc:
            return CacheLookup(path, reason=f"corrupt: {exc}")
        mismatch = _mismatch(header, key)
        if mismatch:
            return CacheLookup(path, header=header, reason=mismatch)
        return CacheLookup(path, engine=engine, header=header)

    def store(self, key: EngineKey, engine: bytes) -> Path:
        """Write atomically: readers see the old file or the complete new one."""
        path = self.path_for(key)
        _write_atomic(path, encode_engine_file(key, engine))
        return path

    def discard(self, key: EngineKey) -> None:
        """Remove an engine that must not be used again (corrupt, stale, undeserializable)."""
        self.path_for(key).unlink(missing_ok=True)

    @contextlib.contextmanager
    def build_lock(self, key: EngineKey) -> Iterator[None]:
        """Hold while building, so two processes starting together build only once."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_path = self.path_for(key).with_suffix(".lock")
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # -- timing cache: tactic timings, valid per TensorRT version and GPU

    def timing_cache_path(self, trt_version: str, gpu_name: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{trt_version}-{gpu_name}")
        return self.directory / f"timing-{slug}.cache"

    def load_timing_cache(self, trt_version: str, gpu_name: str) -> bytes:
        try:
            return self.timing_cache_path(trt_version, gpu_name).read_bytes()
        except OSError:
            return b""

    def save_timing_cache(self, trt_version: str, gpu_name: str, data: bytes) -> Path:
        path = self.timing_cache_path(trt_version, gpu_name)
        _write_atomic(path, bytes(data))
        return path

    def _why_missing(self, key: EngineKey) -> str:
        """Explain a miss by the same model's other engines (an ONNX update, a new GPU...)."""
        stem = key.file_name().rsplit("-", 1)[0]
        for other in sorted(self.directory.glob(f"{stem}-*{ENGINE_SUFFIX}")):
            header = read_engine_header(other)
            if header is None or header.get("model_name") != key.model_name:
                continue
            mismatch = _mismatch(header, key)
            if mismatch:
                return f"{mismatch} (cached {other.name})"
        return "missing: no cached engine for this ONNX, TensorRT version, GPU and flags"


def _mismatch(header: dict[str, Any], key: EngineKey) -> str | None:
    """Why an engine built under ``header`` must not serve ``key``; None if it may."""
    want = key.identity()
    if header.get("onnx_sha256") != want["onnx_sha256"]:
        return (f"stale: ONNX changed (engine built from sha256 "
                f"{str(header.get('onnx_sha256'))[:12]}…, model is {key.onnx_sha256[:12]}…)")
    if header.get("trt_version") != want["trt_version"]:
        return (f"mismatch: built with TensorRT {header.get('trt_version')}, "
                f"this is {key.trt_version}")
    if (header.get("gpu_name"), header.get("compute_capability")) != \
            (want["gpu_name"], want["compute_capability"]):
        return (f"mismatch: built for GPU {header.get('gpu_name')} "
                f"(sm {header.get('compute_capability')}), this is {key.gpu_name} "
                f"(sm {key.compute_capability})")
    if header.get("flags") != want["flags"]:
        return f"mismatch: built with flags {header.get('flags')}, wanted {want['flags']}"
    return None


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _write_atomic(path: Path, payload: bytes) -> None:
    write_atomic(path, payload)