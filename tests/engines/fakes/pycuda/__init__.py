"""FAKE ``pycuda`` package for tests: NOT pycuda, and no CUDA anywhere.

Only ``pycuda.driver`` (see ``driver.py``) and ``pycuda.autoinit`` exist. The tests put
these into ``sys.modules`` with ``tests.engines.fakes.install_fake_gpu``; nothing in the
station imports this folder.
"""

IS_FAKE = True
VERSION = (0, 0, 0)
