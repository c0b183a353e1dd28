"""Atomic writes: all or nothing, and readable by the station's service user."""

import os
import stat

import pytest

from engines.files import atomic_output, write_atomic


def test_new_file_is_world_readable_and_complete(tmp_path):
    path = write_atomic(tmp_path / "sub" / "a.yaml", "x: 1\n")
    assert path.read_text() == "x: 1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_existing_mode_is_kept(tmp_path):
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o600)
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_failure_leaves_the_old_content_and_no_temporary(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as stream:
            stream.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.bin"]
