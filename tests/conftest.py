"""Test-session environment: set before any test module imports pypylon or Qt."""

import os

# pypylon reads PYLON_CAMEMU only when first imported; Qt aborts with no display.
os.environ.setdefault("PYLON_CAMEMU", "2")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
