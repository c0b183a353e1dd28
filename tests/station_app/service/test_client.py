"""WorkflowClient against a core that sends what no real core would: a hand-written core on
a real Unix socket (the real server never sends these frames, so it cannot stand in)."""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest

from station_app.service import CoreConnection, WorkflowClient
from station_app.service.protocol import (MAX_CLIENT_MESSAGE, PROTOCOL_VERSION, EventMessage,
                                          Snapshot, Welcome, encode_message, read_frame)
from station_app.workflow import State, StateChanged
from tests.station_app.test_workflow import Recorder


def body_frame(header: bytes, tail: bytes = b"") -> bytes:
    body = struct.pack(">I", len(header)) + header + tail
    return struct.pack(">I", len(body)) + body


def huge_shape_verdict() -> bytes:
    """A VerdictReady whose (empty) arrays have the shape [0, 2**63]: numpy raises
    ValueError reshaping it."""
    fields = {"capture_id": "c", "label": "OK", "fused_score": 0.1, "likely_types": [],
              "reason": "", "heatmap": {"$array": 0}, "tray_image": {"$array": 0},
              "timings_ms": {}}
    header = json.dumps({"kind": "event", "event": {"type": "VerdictReady", "fields": fields},
                         "attachments": [{"dtype": "|u1", "shape": [0, 2**63]}]}).encode()
    return body_frame(header, b"\0" * (-(4 + len(header)) % 8))


class ScriptedCore:
    """Accepts connections; the n-th one (from 0) gets ``scripts[n]`` after the hello, then
    stays open until the test ends."""

    def __init__(self, path: str, scripts: list[list[bytes]]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen()
        self.scripts = scripts
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(sock)
            sock.settimeout(5.0)
            read_frame(sock, MAX_CLIENT_MESSAGE)                 # the hello
            index = min(len(self.connections) - 1, len(self.scripts) - 1)
            for frame in self.scripts[index]:
                sock.sendall(frame)

    def close(self) -> None:
        self.listener.close()
        for sock in self.connections:
            sock.close()


@pytest.fixture
def path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sock") / "core.sock")


def test_unreadable_messages_from_the_core_never_stop_the_client(path):
    welcome = encode_message(Welcome(PROTOCOL_VERSION)).tobytes()
    snapshot = encode_message(Snapshot(StateChanged(State.SIGNED_OUT, State.SIGNED_OUT, "",
                                                    None))).tobytes()
    signed_in = encode_message(EventMessage(StateChanged(State.SIGNED_OUT, State.SIGNED_IN,
                                                         "Signed in.", None))).tobytes()
    core = ScriptedCore(path, [
        # 1st connection: a welcome whose version has 5000 digits (Python's int limit).
        [body_frame(b'{"kind":"welcome","version":' + b"9" * 5000 + b"}")],
        # 2nd: a proper start, an event numpy cannot shape, then a good event.
        [welcome, snapshot, huge_shape_verdict(), signed_in],
    ])
    seen = Recorder()
    client = WorkflowClient(path, reconnect_min_s=0.05, reconnect_max_s=0.1)
    client.subscribe(seen)
    try:
        broken = seen.wait_for(lambda e: isinstance(e, CoreConnection) and not e.connected
                               and "broke off" in e.message)
        assert "not valid JSON" in broken.message
        assert client.wait_connected(10), "the connection thread died"
        change = seen.wait_for(lambda e: isinstance(e, StateChanged)
                               and e.new is State.SIGNED_IN)
        assert change.message == "Signed in."            # the bad event was skipped
        assert client._connection.is_alive() and client.connected
    finally:
        client.close()
        core.close()
