"""The technician PIN that keeps associates out of the calibration wizard.

Stored as a salted scrypt hash with its cost parameters (so they can be raised later
without invalidating existing PINs), compared in constant time. Repeated wrong PINs lock
the wizard for a while; the failure count and the lock live in the same small JSON file,
so restarting the station does not reset them. The file is written atomically, readable
by its owner only, and guarded by a lock file against two processes counting at once.

A forgotten PIN is reset by someone who may delete the file (the station's admin).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from engines.files import write_atomic

FORMAT = 1
PIN_PATTERN = re.compile(r"\d{4,12}")
FILE_MODE = 0o600


class PinError(Exception):
    """Base class: the PIN cannot be used for what was asked."""


class PinNotSet(PinError):
    """No PIN has been set yet."""


class InvalidPin(PinError):
    """A new PIN that does not follow the rules (4 to 12 digits)."""


class PinRejected(PinError):
    """A wrong PIN; ``remaining`` attempts before the lock."""

    def __init__(self, message: str, remaining: int) -> None:
        super().__init__(message)
        self.remaining = remaining


class PinLocked(PinError):
    """Too many wrong PINs; ``until`` is the Unix time the lock ends."""

    def __init__(self, until: float, now: float) -> None:
        minutes = max(1, round((until - now) / 60))
        when = _dt.datetime.fromtimestamp(until).strftime("%H:%M")
        super().__init__(f"too many wrong PINs: calibration is locked until {when} "
                         f"(about {minutes} min)")
        self.until = until
        self.seconds_left = max(0.0, until - now)


@dataclass(frozen=True)
class ScryptParameters:
    """scrypt cost: n (CPU/memory, a power of two), r (block size), p (parallelism)."""

    n: int = 2 ** 14
    r: int = 8
    p: int = 1
    length: int = 32
    salt_bytes: int = 16

    def hash(self, pin: str, salt: bytes) -> bytes:
        return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=self.n, r=self.r, p=self.p,
                              maxmem=256 * self.n * self.r + 2 ** 20, dklen=self.length)


@dataclass(frozen=True)
class PinCheck:
    """The outcome of a correct PIN (a wrong one raises PinRejected or PinLocked)."""

    accepted: bool
    failures_before: int


@dataclass(frozen=True)
class PinStatus:
    is_set: bool
    failures: int
    locked_until: float | None
    set_at: str = ""


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _damage(data: dict[str, Any]) -> str:
    """What is wrong with a PIN file's fields ("" when nothing): a hand-edited or
    half-corrupted file must give a message, not a traceback at the next PIN."""
    for name in ("n", "r", "p", "length"):
        if not _whole(data[name]) or data[name] < 1:
            return f"{name} must be a positive whole number, got {data[name]!r}"
    if data["n"] & (data["n"] - 1):
        return f"n must be a power of two, got {data['n']}"
    for name in ("salt", "hash"):
        try:
            if not isinstance(data[name], str) or not base64.b64decode(data[name],
                                                                        validate=True):
                raise ValueError
        except ValueError:
            return f"{name} must be base64 text, got {data[name]!r}"
    failures = data.get("failures", 0)
    if not _whole(failures) or failures < 0:
        return f"failures must be a whole number of 0 or more, got {failures!r}"
    until = data.get("locked_until")
    if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))
                              or until != until):
        return f"locked_until must be a time or null, got {until!r}"
    if not isinstance(data.get("set_at", ""), str):
        return f"set_at must be text, got {data['set_at']!r}"
    return ""


def check_new_pin(pin: str) -> str:
    if not isinstance(pin, str) or not PIN_PATTERN.fullmatch(pin):
        raise InvalidPin("a technician PIN is 4 to 12 digits")
    return pin


class PinStore:
    """The PIN file: set, change, verify with lockout (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], max_failures: int = 5,
                 lockout_minutes: float = 15.0, *, clock: Callable[[], float] = time.time,
                 parameters: ScryptParameters = ScryptParameters()) -> None:
        if max_failures < 1 or lockout_minutes <= 0:
            raise ValueError("max_failures must be at least 1 and lockout_minutes positive")
        self.path = Path(path)
        self.max_failures = max_failures
        self.lockout_seconds = lockout_minutes * 60.0
        self.clock = clock
        self.parameters = parameters

    # ------------------------------------------------------------------ file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise PinError(f"{self.path}: the PIN file cannot be read ({error}); delete it "
                           f"and set the PIN again with `station-app profile set-pin`") from None
        required = {"format", "algorithm", "n", "r", "p", "length", "salt", "hash"}
        if not isinstance(data, dict) or not required <= set(data) \
                or data["algorithm"] != "scrypt" or data["format"] != FORMAT:
            raise PinError(f"{self.path}: not a PIN file this station understands; delete it "
                           f"and set the PIN again with `station-app profile set-pin`")
        problem = _damage(data)
        if problem:
            raise PinError(f"{self.path}: the PIN file is damaged ({problem}): delete it and "
                           f"set the PIN again with `station-app profile set-pin`")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        write_atomic(self.path, json.dumps(data, indent=2) + "\n", mode=FILE_MODE)

    def _hash_matches(self, data: dict[str, Any], pin: str) -> bool:
        parameters = ScryptParameters(int(data["n"]), int(data["r"]), int(data["p"]),
                                      int(data["length"]))
        salt = base64.b64decode(data["salt"])
        expected = base64.b64decode(data["hash"])
        return hmac.compare_digest(parameters.hash(pin, salt), expected)

    def _lock_state(self, data: dict[str, Any], now: float) -> float | None:
        """The lock's end, or None; an expired lock clears the failure count. A lock
        reaching further than one lockout (the clock was set back) is cut to one."""
        until = data.get("locked_until")
        if until is None:
            return None
        until = min(float(until), now + self.lockout_seconds)
        if now >= until:
            data["locked_until"] = None
            data["failures"] = 0
            return None
        data["locked_until"] = until
        return until

    # ------------------------------------------------------------------ public

    def is_set(self) -> bool:
        return self._read() is not None

    def status(self) -> PinStatus:
        data = self._read()
        if data is None:
            return PinStatus(False, 0, None)
        state = dict(data)
        until = self._lock_state(state, self.clock())
        return PinStatus(True, int(state.get("failures", 0)), until,
                         str(state.get("set_at", "")))

    def verify(self, pin: str) -> PinCheck:
        """Accept the right PIN; raise PinRejected (with attempts left), PinLocked (also
        for the right PIN while locked) or PinNotSet."""
        with self._locked():
            return self._verify_locked(pin)

    def _verify_locked(self, pin: str) -> PinCheck:
        data = self._read()
        if data is None:
            raise PinNotSet("no technician PIN is set: run `station-app profile set-pin`")
        now = self.clock()
        before = json.dumps(data, sort_keys=True)
        until = self._lock_state(data, now)
        if until is not None:
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)
            raise PinLocked(until, now)
        failures = int(data.get("failures", 0))
        if self._hash_matches(data, str(pin)):
            data.update(failures=0, locked_until=None)
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)
            return PinCheck(True, failures)
        failures += 1
        data["failures"] = failures
        if failures >= self.max_failures:
            data["locked_until"] = now + self.lockout_seconds
            self._write(data)
            raise PinLocked(data["locked_until"], now)
        self._write(data)
        remaining = self.max_failures - failures
        raise PinRejected(f"wrong PIN; {remaining} attempt{'s' if remaining > 1 else ''} "
                          f"left before calibration locks for "
                          f"{self.lockout_seconds / 60:g} min", remaining)

    def set_pin(self, new_pin: str, current_pin: str | None = None) -> None:
        """Set the PIN; changing an existing one needs the current PIN (which counts
        towards the lockout like any attempt)."""
        check_new_pin(new_pin)
        salt = secrets.token_bytes(self.parameters.salt_bytes)
        data = {"format": FORMAT, "algorithm": "scrypt", "n": self.parameters.n,
                "r": self.parameters.r, "p": self.parameters.p,
                "length": self.parameters.length,
                "salt": base64.b64encode(salt).decode("ascii"),
                "hash": base64.b64encode(self.parameters.hash(new_pin, salt)).decode("ascii"),
                "set_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "failures": 0, "locked_until": None}
        # Checked under the lock: two first-time set-pin runs must not both "set" it.
        with self._locked():
            if self._read() is not None:
                if current_pin is None:
                    raise PinRejected("a PIN is already set: give the current PIN to change "
                                      "it", self.max_failures)
                self._verify_locked(current_pin)
            self._write(data)
