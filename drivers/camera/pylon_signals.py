"""pylon times its blocking waits with SIGALRM; keep its handler in place.

Measured with pypylon 26.9 (strace): on first use ``libpylonbase`` installs a SIGALRM
handler and arms a POSIX timer (``timer_create``, SIGEV_SIGNAL with SIGALRM) for each
timed wait (``WaitForFrameTriggerReady``, ``RetrieveResult``). When anyone replaces that
handler afterwards (``signal.signal(SIGALRM, …)``; the default ``signal`` method of
pytest-timeout, which also resets it to SIG_DFL after each test), a wait that times out
never returns (Python handler) or kills the process (SIG_DFL).

So the driver remembers pylon's handler after a wait and, before each wait, puts it back
if it was replaced (logging a warning). Python's ``signal.getsignal`` cannot see this
(it reports Python's own bookkeeping), hence ``sigaction`` through ctypes. The struct is
saved and restored as opaque bytes; only its first field, the handler address (first in
glibc's layout on every Linux ABI but MIPS), is compared, because glibc leaves stack
bytes in the unused part of the signal mask. Elsewhere than Linux this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys

log = logging.getLogger(__name__)

_ACTION_BYTES = 512  # larger than struct sigaction on every Linux ABI
_HANDLER_BYTES = ctypes.sizeof(ctypes.c_void_p)
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_pylon_action: bytes | None = None


def _current_action() -> ctypes.Array | None:
    if _libc is None:
        return None
    action = ctypes.create_string_buffer(_ACTION_BYTES)
    if _libc.sigaction(signal.SIGALRM, None, action) != 0:
        return None
    return action


def note_pylon_handler() -> None:
    """Call after a pylon wait returned: the SIGALRM action now is pylon's (first time only)."""
    global _pylon_action
    if _pylon_action is None:
        action = _current_action()
        if action is not None:
            _pylon_action = action.raw


def ensure_pylon_handler() -> bool:
    """Before a pylon wait: reinstall pylon's SIGALRM action if replaced; True if it was."""
    if _pylon_action is None or _libc is None:
        return False
    current = _current_action()
    if current is None or current.raw[:_HANDLER_BYTES] == _pylon_action[:_HANDLER_BYTES]:
        return False
    saved = ctypes.create_string_buffer(_pylon_action, _ACTION_BYTES)
    if _libc.sigaction(signal.SIGALRM, saved, None) != 0:
        return False
    log.warning(
        "SIGALRM handler was replaced after pylon installed its own; restored pylon's "
        "(pylon times its waits with SIGALRM; avoid signal.alarm and pytest-timeout's "
        "signal method in processes that grab with pylon)"
    )
    return True
