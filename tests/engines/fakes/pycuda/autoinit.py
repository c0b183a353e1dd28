"""FAKE ``pycuda.autoinit`` for tests: makes the fake device 0 context current.

The station does not use autoinit (it manages the primary context itself); this exists
so that code written the usual pycuda way also runs against the fakes.
"""

import sys

_driver = sys.modules["pycuda.driver"]
_driver.init()
device = _driver.Device(0)
context = device.retain_primary_context()
context.push()
