"""FAKE ``pycuda.driver`` for tests. There is no CUDA here: this is NOT pycuda.

It keeps "device memory" in Python bytearrays addressed by fake pointers, and checks
what a real driver would make fail or silently slow: an async copy from pageable host
memory, a copy past the end of an allocation, an operation with no current context,
a freed allocation used again. Every call is recorded in ``calls`` so tests can count
allocations and see which stream was used.

Load a fresh copy per test with ``tests.engines.fakes.install_fake_gpu``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

IS_FAKE = True
DEVICE_COUNT = 1
GPU_NAME = "NVIDIA FakeGPU 9000 (test fake)"
COMPUTE_CAPABILITY = (8, 9)

calls: list[tuple[str, Any]] = []
initialised = False
_memory: dict[int, bytearray] = {}
_pinned: list[np.ndarray] = []
_context_stack: list["Context"] = []
_addresses = itertools.count(0x7F0000000000, 0x100000)
_stream_handles = itertools.count(0x5000)
stream_handles: set[int] = set()


class Error(Exception):
    """Stands in for ``pycuda.driver.Error``."""


def init(flags: int = 0) -> None:
    global initialised
    initialised = True
    calls.append(("init", flags))


class Device:
    def __init__(self, ordinal: int):
        if not initialised:
            raise Error("cuInit has not been called")
        if not 0 <= ordinal < DEVICE_COUNT:
            raise Error(f"invalid device ordinal {ordinal}")
        self.ordinal = ordinal

    @staticmethod
    def count() -> int:
        if not initialised:
            raise Error("cuInit has not been called")
        return DEVICE_COUNT

    def name(self) -> str:
        return GPU_NAME

    def compute_capability(self) -> tuple[int, int]:
        return COMPUTE_CAPABILITY

    def retain_primary_context(self) -> "Context":
        calls.append(("retain_primary_context", self.ordinal))
        return Context(self)


class Context:
    def __init__(self, device: Device):
        self.device = device
        self.detached = False

    def push(self) -> None:
        if self.detached:
            raise Error("context was detached")
        _context_stack.append(self)

    @staticmethod
    def pop() -> None:
        if not _context_stack:
            raise Error("no context to pop")
        _context_stack.pop()

    @staticmethod
    def get_current() -> "Context | None":
        return _context_stack[-1] if _context_stack else None

    def detach(self) -> None:
        self.detached = True
        calls.append(("detach", self.device.ordinal))


def require_context(what: str) -> None:
    if not _context_stack:
        raise Error(f"{what}: no current CUDA context")


class DeviceAllocation:
    def __init__(self, address: int, nbytes: int):
        self.address, self.nbytes, self.freed = address, nbytes, False

    def __int__(self) -> int:
        if self.freed:
            raise Error("use of freed device memory")
        return self.address

    __index__ = __int__

    def free(self) -> None:
        if not self.freed:
            _memory.pop(self.address)
            self.freed = True
            calls.append(("free", self.address))


def mem_alloc(nbytes: int) -> DeviceAllocation:
    require_context("mem_alloc")
    address = next(_addresses)
    _memory[address] = bytearray(int(nbytes))
    calls.append(("mem_alloc", int(nbytes)))
    return DeviceAllocation(address, int(nbytes))


def pagelocked_empty(shape: Any, dtype: Any, order: str = "C", mem_flags: int = 0) -> np.ndarray:
    array = np.empty(shape, dtype=dtype, order=order)
    _pinned.append(array)
    calls.append(("pagelocked_empty", (tuple(np.atleast_1d(shape)), np.dtype(dtype).name)))
    return array


def is_pagelocked(array: np.ndarray) -> bool:
    return any(np.shares_memory(array, pinned) for pinned in _pinned)


class Stream:
    def __init__(self, flags: int = 0):
        require_context("Stream")
        self.handle = next(_stream_handles)
        self.synchronize_calls = 0
        stream_handles.add(self.handle)
        calls.append(("stream", self.handle))

    def synchronize(self) -> None:
        self.synchronize_calls += 1
        calls.append(("synchronize", self.handle))


def device_buffer(address: int) -> bytearray:
    """The fake device memory starting at ``address`` (for the fake tensorrt)."""
    if address not in _memory:
        raise Error(f"address {address:#x} is not the start of a live allocation")
    return _memory[address]


def _check_async(what: str, host: np.ndarray, stream: Any) -> None:
    require_context(what)
    if not isinstance(stream, Stream):
        raise Error(f"{what}: expected a Stream, got {stream!r}")
    if not isinstance(host, np.ndarray) or not host.flags.c_contiguous:
        raise Error(f"{what}: host side must be a contiguous numpy array")
    if not is_pagelocked(host):
        raise Error(f"{what}: host memory is not page-locked (async copy would be synchronous)")


def memcpy_htod_async(dest: Any, src: np.ndarray, stream: Any = None) -> None:
    _check_async("memcpy_htod_async", src, stream)
    buffer = device_buffer(int(dest))
    if src.nbytes > len(buffer):
        raise Error(f"memcpy_htod_async: {src.nbytes} bytes into a {len(buffer)}-byte allocation")
    buffer[:src.nbytes] = src.tobytes()
    calls.append(("memcpy_htod_async", (src.nbytes, stream.handle)))


def memcpy_dtoh_async(dest: np.ndarray, src: Any, stream: Any = None) -> None:
    _check_async("memcpy_dtoh_async", dest, stream)
    buffer = device_buffer(int(src))
    if dest.nbytes > len(buffer):
        raise Error(f"memcpy_dtoh_async: {dest.nbytes} bytes from a {len(buffer)}-byte allocation")
    dest.reshape(-1).view(np.uint8)[:] = np.frombuffer(bytes(buffer[:dest.nbytes]), np.uint8)
    calls.append(("memcpy_dtoh_async", (dest.nbytes, stream.handle)))


def call_count(name: str) -> int:
    return sum(1 for call, _ in calls if call == name)
