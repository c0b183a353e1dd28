"""Reference memory banks and their on-disk cache.

A reference's bank is the set of unit patch vectors of its item region under every pose
augmentation. Embedding a reference costs one trunk pass per augmentation, so a bank is
computed once per reference image and kept as ``.npz`` under a key of everything that
changes it: the reference's pixels and mask, the scorer model's sha256 and the patch
settings. A new model, other settings or an edited image give a new key; stale files are
never read back.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engines.reference.patches import (AUGMENTATIONS, PatchEmbedder, PatchSettings,
                                       embed_grids)

BANK_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReferenceBank:
    """Unit patch vectors (M×C float32) of one reference image; ``transform_index`` (M,)
    says which augmentation each came from (0 = as captured)."""

    vectors: np.ndarray
    transform_index: np.ndarray

    def as_captured(self) -> np.ndarray:
        return self.vectors[self.transform_index == 0]


def build_bank(embedder: PatchEmbedder, image: np.ndarray, mask: np.ndarray,
               settings: PatchSettings) -> ReferenceBank:
    grids = embed_grids(embedder, image, mask, settings, AUGMENTATIONS[settings.augmentation])
    vectors = [grid.valid_vectors() for grid in grids]
    index = np.concatenate([np.full(len(v), i, np.int16) for i, v in enumerate(vectors)])
    return ReferenceBank(np.concatenate(vectors).astype(np.float32), index)


def content_identity(*arrays: np.ndarray) -> str:
    """sha256 over arrays' shapes and bytes: identifies a reference by its pixels."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode() + str(array.dtype).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def file_identity(*paths: str | os.PathLike[str], reduction: int = 1) -> str:
    """sha256 over files' bytes: cheaper than decoding, for references stored as files.

    ``reduction``: the files are decoded at 1/reduction of their size (offline scoring,
    ``REFERENCE_READ_REDUCTION``). It is part of the identity, so a bank built from a
    half-size read never stands in for the station's full-size one in a shared cache."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    if reduction != 1:
        digest.update(f"decoded at 1/{reduction}".encode())
    return digest.hexdigest()


# Offline scoring (the fusion fit, evaluation, replay) decodes references at half size: their
# item crops are embedded at 320 px or less, so the full 2048² tray adds only decoding time.
REFERENCE_READ_REDUCTION = 2


def default_reference_cache_dir() -> Path:
    """Banks are derived data, so they live in the user's cache, not in the repository."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "damage-station" / "reference-banks"


class ReferenceFeatureCache:
    """Banks on disk under ``directory``, keyed by (reference identity, model sha, settings).

    ``model_sha256`` is the scorer ONNX's sha256 (from its manifest): features of one
    model must never be compared with another's.
    """

    def __init__(self, directory: str | os.PathLike[str], model_sha256: str,
                 settings: PatchSettings) -> None:
        self.directory = Path(directory)
        self.model_sha256 = model_sha256
        self.settings = settings
        self.computed = 0   # banks embedded (not read back) by this instance

    def key(self, reference_identity: str) -> str:
        text = (f"v{BANK_FORMAT_VERSION};{reference_identity};model={self.model_sha256};"
                f"{self.settings.key_text()}")
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, reference_identity: str) -> Path:
        key = self.key(reference_identity)
        return self.directory / key[:2] / f"{key}.npz"

    def load(self, reference_identity: str) -> ReferenceBank | None:
        """The cached bank, or None when absent or unreadable (then it is recomputed)."""
        path = self.path(reference_identity)
        try:
            with np.load(path, allow_pickle=False) as data:
                return ReferenceBank(data["vectors"].astype(np.float32),
                                     data["transform_index"].astype(np.int16))
        except (OSError, KeyError, ValueError):
            return None

    def bank(self, reference_identity: str, embedder: PatchEmbedder,
             load_images: Callable[[], tuple[np.ndarray, np.ndarray]]) -> ReferenceBank:
        """Read the bank back, or load the reference (tray image, item mask), embed it once
        and store it. Vectors are stored as float16; a fresh bank is rounded the same way so
        the first and every later query see identical numbers."""
        cached = self.load(reference_identity)
        if cached is not None:
            return cached
        image, mask = load_images()
        built = build_bank(embedder, image, mask, self.settings)
        bank = ReferenceBank(built.vectors.astype(np.float16).astype(np.float32),
                             built.transform_index)
        self.computed += 1
        self._store(self.path(reference_identity), bank)
        return bank

    @staticmethod
    def _store(path: Path, bank: ReferenceBank) -> None:
        """Atomic write: a crash leaves either the old state or a whole file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, vectors=bank.vectors.astype(np.float16),
                         transform_index=bank.transform_index)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
