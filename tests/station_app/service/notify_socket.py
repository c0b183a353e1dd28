"""The systemd side of sd_notify, for tests: a real Unix datagram socket that records
every message the core sends, with the time it arrived."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path


class NotifyListener:
    """Binds ``NOTIFY_SOCKET`` (a path, or an abstract name when ``abstract``) and keeps
    every datagram as (arrival time.monotonic(), {KEY: VALUE})."""

    def __init__(self, path: Path | None = None, *, abstract: str | None = None) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self._socket.bind(b"\0" + abstract.encode())
            self.env_value = "@" + abstract
        else:
            assert path is not None
            self._socket.bind(os.fspath(path))
            self.env_value = os.fspath(path)
        self._socket.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._receive, daemon=True, name="notify-listener")
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._socket.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self._changed:
                self.messages.append((time.monotonic(), fields))
                self._changed.notify_all()

    def environment(self, **extra: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.env_value, **extra}

    def wait_for(self, predicate, timeout_s: float = 10.0, since: int = 0):
        """The first message from index ``since`` on that ``predicate`` accepts, with its
        index and arrival time; AssertionError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for index in range(since, len(self.messages)):
                    at, fields = self.messages[index]
                    if predicate(fields):
                        return index, at, fields
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching notification within {timeout_s} s; "
                                         f"got {[m for _, m in self.messages]}")
                self._changed.wait(remaining)

    def snapshot(self) -> list[tuple[float, dict[str, str]]]:
        with self._changed:
            return list(self.messages)

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=2.0)
        self._socket.close()
