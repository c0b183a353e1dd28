"""Writing files so that a reader (or a crash) sees the old content or the new, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

DEFAULT_MODE = 0o644  # readable by the station's service user; mkstemp alone gives 0600


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` only when the block ends cleanly.

    The file keeps its previous permissions; a new one gets ``mode`` (default 0644).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if mode is None:
            mode = target.stat().st_mode & 0o777 if target.exists() else DEFAULT_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str, mode: int | None = None) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename."""
    with atomic_output(path, mode) as stream:
        stream.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
