"""The training caches on disk: written whole, and safe to share between runs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from training.image_cache import save_arrays

WRITES = 40


def _write_repeatedly(path: str, start) -> None:
    arrays = {"images": np.arange(2_000_000, dtype=np.uint8).reshape(2000, 1000)}
    start.wait(60)                   # both writers begin together, so their writes overlap
    for _ in range(WRITES):
        save_arrays(Path(path), **arrays)


def test_two_runs_writing_one_cache_file_at_once_both_succeed(tmp_path):
    """Two seeds of an ensemble sharing ``--cache`` and started together write the same
    file: neither may fail nor leave a torn file."""
    path = tmp_path / "cache" / "trunk-64-abc.npz"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [context.Process(target=_write_repeatedly, args=(str(path), start))
               for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
    assert [writer.exitcode for writer in writers] == [0, 0]
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["images"].ravel(),
                                      np.arange(2_000_000, dtype=np.uint8))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "images-64.npz"
    save_arrays(path, images=np.zeros(3, np.uint8))

    def interrupted(file, **arrays):
        Path(file).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr("training.image_cache.np.savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_arrays(path, images=np.ones(3, np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    with np.load(path) as stored:
        np.testing.assert_array_equal(stored["images"], np.zeros(3, np.uint8))
