"""Test-session environment: set before any test module imports pypylon or Qt."""

import atexit
import os
import shutil
import tempfile

# pypylon reads PYLON_CAMEMU only when first imported; Qt aborts with no display.
os.environ.setdefault("PYLON_CAMEMU", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Commands run with their defaults (evaluate, replay) keep reference banks and TensorRT
# engines in the user's cache: tests must neither fill nor reuse the developer's.
_cache = tempfile.mkdtemp(prefix="station-tests-cache-")
os.environ["XDG_CACHE_HOME"] = _cache
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
