"""The training caches on disk: written whole, and safe to share between runs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from training.image_cache import save_arrays

WRITES = 30


def _write_repeatedly(path: str) -> None:
    arrays = {"images": np.arange(200_000, dtype=np.uint8).reshape(200, 1000)}
    for _ in range(WRITES):
        save_arrays(Path(path), **arrays)


def test_two_runs_writing_one_cache_file_at_once_both_succeed(tmp_path):
    """Two seeds of an ensemble sharing ``--cache`` and started together write the same
    file: neither may fail nor leave a torn file."""
    path = tmp_path / "cache" / "trunk-64-abc.npz"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_repeatedly, args=(str(path),)) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["images"].ravel(), np.arange(200_000, dtype=np.uint8))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
