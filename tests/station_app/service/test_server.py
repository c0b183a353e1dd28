"""The workflow served on a real Unix socket: a real InspectionWorkflow (replay camera over a
synthetic frame, the lighting simulator on a pty, the bundled models on ONNX Runtime)
driven by WorkflowClient and by raw sockets that misbehave."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.camera import ReplayCamera
from station_app.errors import StationError
from station_app.service import CoreConnection, WorkflowClient, WorkflowServer, query_status
from station_app.service.protocol import (MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE,
                                          PROTOCOL_VERSION, CommandMessage, ErrorReply,
                                          EventMessage, Hello, Snapshot, StatusReply,
                                          StatusRequest, Welcome, decode_message,
                                          encode_message, read_frame, send_frame)
from station_app.workflow import (CommandIgnored, Confirm, ConfirmationSaved, InspectionWorkflow,
                                  ItemTyped, MemoryCaptureSink, SignIn, State, StateChanged,
                                  Trigger, VerdictReady)
from station_app.workflow.commands import Severity
from tests.station_app import test_workflow as workflow_parts
from tests.station_app.test_workflow import GatedExtractor, Recorder

# The workflow tests' fixtures build the real parts cheaply (models loaded once per module):
# a synthetic tray scene, its frame for a replay camera, the bundled models, the lights.
scene = workflow_parts.scene
frames = workflow_parts.frames
models = workflow_parts.models
simulator = workflow_parts.simulator
lights = workflow_parts.lights

ITEM = "ITEM-0042"


@dataclasses.dataclass
class Core:
    workflow: InspectionWorkflow
    server: WorkflowServer
    sink: MemoryCaptureSink
    recorder: Recorder              # what the workflow emitted, in process
    path: str


@pytest.fixture
def socket_dir(tmp_path_factory):
    # A short folder: Unix socket paths are limited to 107 bytes.
    return tmp_path_factory.mktemp("sock")


@pytest.fixture
def core(frames, models, lights, socket_dir):
    """``core(extractor=..., **server_options)`` -> a served workflow."""
    made = []

    def build(extractor=None, **server_options) -> Core:
        camera = ReplayCamera(frames["item"])
        camera.open()
        sink = MemoryCaptureSink()
        workflow = InspectionWorkflow(camera=camera, lights=lights,
                                      extractor=extractor or models[0], inspector=models[1],
                                      sink=sink)
        recorder = Recorder()
        workflow.subscribe(recorder)
        path = str(socket_dir / f"core{len(made)}.sock")
        server = WorkflowServer(workflow, path, **server_options).start()
        made.append((server, workflow, camera))
        return Core(workflow, server, sink, recorder, path)
    yield build
    for server, workflow, camera in made:
        server.close()
        workflow.close()
        camera.close()


@pytest.fixture
def clients():
    made = []

    def connect(path: str, **options) -> tuple[WorkflowClient, Recorder]:
        client = WorkflowClient(path, **options)
        recorder = Recorder()
        client.subscribe(recorder)
        made.append(client)
        return client, recorder
    yield connect
    for client in made:
        client.close()


def is_state(state: State):
    return lambda e: isinstance(e, StateChanged) and e.new is state


def connected(e) -> bool:
    return isinstance(e, CoreConnection) and e.connected


def after(seen: Recorder, mark: int, predicate):
    """The first event after the first ``mark`` events that matches."""
    seen.wait_for(lambda _: any(map(predicate, seen.events[mark:])))
    return next(e for e in seen.events[mark:] if predicate(e))


def wait_until(predicate, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def same_verdict(a: VerdictReady, b: VerdictReady) -> None:
    assert (a.capture_id, a.label, a.fused_score, a.likely_types, a.reason) == \
        (b.capture_id, b.label, b.fused_score, b.likely_types, b.reason)
    for name in ("heatmap", "tray_image", "item_crop", "reference_crop"):
        ours, theirs = getattr(a, name, None), getattr(b, name, None)
        if ours is None:
            assert theirs is None, name
        else:
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), name


# -- raw protocol, as a misbehaving or foreign client speaks it ------------------------------

class Raw:
    def __init__(self, path: str, hello: bool = True) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5.0)
        self.sock.connect(path)
        if hello:
            self.send(Hello(PROTOCOL_VERSION, "raw test client"))
            assert isinstance(self.next(), Welcome)

    def send(self, message: Any) -> None:
        send_frame(self.sock, encode_message(message))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def next(self) -> Any:
        body = read_frame(self.sock, MAX_SERVER_MESSAGE)
        return None if body is None else decode_message(body)

    def next_not_event(self) -> Any:
        """The next reply, skipping the snapshot and events."""
        while True:
            message = self.next()
            if not isinstance(message, (Snapshot, EventMessage)):
                return message

    def ended(self) -> bool:
        """True when the server closed the stream (after any replies still queued)."""
        try:
            while self.next() is not None:
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()


def body_frame(header: bytes) -> bytes:
    body = struct.pack(">I", len(header)) + header
    return struct.pack(">I", len(body)) + body


# -- a whole inspection through the socket ----------------------------------------------------

def test_a_client_drives_a_whole_inspection(core, clients):
    station = core()
    client, seen = clients(station.path, name="operator-ui")
    assert client.wait_connected(10)
    seen.wait_for(is_state(State.SIGNED_OUT))         # the snapshot of a fresh core
    assert client.state is State.SIGNED_OUT

    client.submit(SignIn("badge-7"))
    client.submit(ItemTyped(ITEM))
    seen.wait_for(is_state(State.WAITING_FOR_ITEM))
    client.submit(Trigger())
    verdict = seen.wait_for(lambda e: isinstance(e, VerdictReady))
    seen.wait_for(is_state(State.VERDICT_SHOWN))
    assert client.state is State.VERDICT_SHOWN
    same_verdict(verdict, station.recorder.of(VerdictReady)[0])
    assert verdict.tray_image.shape == (2048, 2048, 3) and verdict.tray_image.dtype == np.uint8
    assert verdict.heatmap.dtype == np.float32 and 0 <= verdict.heatmap.min() <= 1

    client.submit(Confirm(agree=True))
    saved = seen.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    seen.wait_for(lambda e: is_state(State.SIGNED_IN)(e) and e.old is State.CONFIRMED)
    assert saved.capture_id == verdict.capture_id
    assert station.sink.confirmations[verdict.capture_id].agree
    # The front end saw every event the workflow emitted, in order.
    remote = [e for e in seen.events if not isinstance(e, CoreConnection)][1:]   # snapshot
    local = station.recorder.events
    assert [type(e).__name__ for e in remote] == [type(e).__name__ for e in local]
    assert [e.new for e in remote if isinstance(e, StateChanged)] == \
        [e.new for e in local if isinstance(e, StateChanged)]


def test_a_client_connecting_mid_inspection_gets_the_verdict_on_screen(core, clients):
    station = core()
    first, seen_first = clients(station.path)
    assert first.wait_connected(10)
    for command in (SignIn("badge-1"), ItemTyped(ITEM), Trigger()):
        first.submit(command)
    seen_first.wait_for(is_state(State.VERDICT_SHOWN))

    second, seen_second = clients(station.path)      # e.g. the UI restarted
    verdict = seen_second.wait_for(lambda e: isinstance(e, VerdictReady))
    shown = seen_second.wait_for(is_state(State.VERDICT_SHOWN))
    up = next(e for e in seen_second.events if connected(e))
    assert up.message == f"connected to the station core at {station.path}"
    order = seen_second.events.index
    assert order(up) < order(verdict) < order(shown)
    assert shown.item_identifier == ITEM and "confirm" in shown.message
    same_verdict(verdict, station.recorder.of(VerdictReady)[0])

    second.submit(Confirm(agree=True))                # the restarted UI finishes the job
    for seen in (seen_first, seen_second):
        seen.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    assert station.sink.confirmations[verdict.capture_id].operator == "badge-1"


def test_a_late_listener_gets_the_same_catch_up(core, clients):
    station = core()
    client, seen = clients(station.path)
    assert client.wait_connected(10)
    client.submit(SignIn("badge-3"))
    seen.wait_for(is_state(State.SIGNED_IN))
    late = Recorder()
    client.subscribe(late)
    late.wait_for(is_state(State.SIGNED_IN))
    assert isinstance(late.events[0], CoreConnection) and late.events[0].connected
    assert len([e for e in late.events if isinstance(e, StateChanged)]) == 1


def test_a_client_killed_mid_inspection_does_not_disturb_it(core, clients, models):
    gated = GatedExtractor(models[0])
    station = core(extractor=gated)
    doomed = Raw(station.path)
    doomed.send(CommandMessage(SignIn("badge-9")))
    doomed.send(CommandMessage(ItemTyped(ITEM)))
    doomed.send(CommandMessage(Trigger()))
    station.recorder.wait_for(is_state(State.PROCESSING))
    # Killed: the socket goes away with replies unread, mid-inspection.
    doomed.sock.shutdown(socket.SHUT_RDWR)
    doomed.close()
    wait_until(lambda: station.server.client_count == 0)
    assert station.workflow.state is State.PROCESSING

    gated.gate.set()
    station.recorder.wait_for(is_state(State.VERDICT_SHOWN))
    other, seen = clients(station.path)
    verdict = seen.wait_for(lambda e: isinstance(e, VerdictReady))
    other.submit(Confirm(agree=True))
    seen.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    assert station.sink.confirmations[verdict.capture_id].agree
    assert [e.new for e in station.recorder.of(StateChanged)][-2:] == [State.CONFIRMED,
                                                                       State.SIGNED_IN]


CHILD_UI = """
import sys, time
from station_app.service import WorkflowClient
from station_app.workflow import ItemTyped, SignIn, StateChanged, Trigger
client = WorkflowClient(sys.argv[1], name="doomed ui")
client.subscribe(lambda e: print(type(e).__name__, getattr(e, "new", ""), flush=True))
assert client.wait_connected(10)
for command in (SignIn("badge-k"), ItemTyped(sys.argv[2]), Trigger()):
    client.submit(command)
time.sleep(60)
"""


def test_a_ui_process_killed_mid_inspection_does_not_disturb_it(core, clients, models):
    gated = GatedExtractor(models[0])
    station = core(extractor=gated)
    child = subprocess.Popen([sys.executable, "-c", CHILD_UI, station.path, ITEM],
                             cwd=Path(__file__).resolve().parents[3], stdout=subprocess.PIPE,
                             text=True)
    try:
        seen_by_child = []
        while "StateChanged State.PROCESSING" not in seen_by_child:   # it follows the inspection
            line = child.stdout.readline()
            assert line, f"the UI process ended early: {seen_by_child}"
            seen_by_child.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    wait_until(lambda: station.server.client_count == 0)
    gated.gate.set()
    successor, seen = clients(station.path)            # the restarted UI
    verdict = seen.wait_for(lambda e: isinstance(e, VerdictReady))
    assert verdict.capture_id == station.recorder.of(VerdictReady)[0].capture_id
    successor.submit(Confirm(agree=False, severity=Severity.MAJOR,
                             defect_types=("penetration",)))
    seen.wait_for(lambda e: isinstance(e, ConfirmationSaved))
    confirmation = station.sink.confirmations[verdict.capture_id]
    assert (confirmation.operator, confirmation.severity) == ("badge-k", "major")


# -- misbehaving clients ----------------------------------------------------------------------

BAD_MESSAGES = [
    # (id, bytes of one whole frame, error code)
    ("bad json", body_frame(b'{"kind": "command", '), "bad_json"),
    ("not an object", body_frame(b'"hello"'), "bad_json"),
    ("unknown kind", body_frame(b'{"kind": "format_disk"}'), "unknown_type"),
    ("unknown command", body_frame(b'{"kind": "command", "id": 4, "command": '
                                   b'{"type": "OpenDoor", "fields": {}}}'), "unknown_type"),
    ("missing field", body_frame(b'{"kind": "command", "id": 5, "command": '
                                 b'{"type": "SignIn", "fields": {}}}'), "bad_message"),
    ("extra field", body_frame(b'{"kind": "command", "id": 6, "command": '
                               b'{"type": "Back", "fields": {"now": 1}}}'), "bad_message"),
    ("server-only kind", encode_message(Welcome(1)).tobytes(), "unexpected"),
    ("second hello", encode_message(Hello(PROTOCOL_VERSION)).tobytes(), "unexpected"),
    ("attachment from a client", body_frame(b'{"kind": "status", "attachments": '
                                            b'[{"dtype": "|u1", "shape": [1]}]}'), "bad_frame"),
    # Python's int limit and numpy's shape limits: ValueError, once fatal to the connection.
    ("5000-digit id", body_frame(b'{"kind": "status", "id": ' + b"9" * 5000 + b"}"),
     "bad_json"),
    ("shape past 2**31", body_frame(b'{"kind": "status", "attachments": [{"dtype": "|u1", '
                                    b'"shape": [0, 9223372036854775808]}]}  '), "bad_message"),
]


def test_bad_messages_get_an_error_reply_and_the_connection_keeps_serving(core, clients):
    station = core()
    watcher, seen = clients(station.path)
    assert watcher.wait_connected(10)
    raw = Raw(station.path)
    for name, frame, code in BAD_MESSAGES:
        raw.send_bytes(frame)
        reply = raw.next_not_event()
        assert isinstance(reply, ErrorReply) and reply.code == code, (name, reply)
    raw.send_bytes(BAD_MESSAGES[3][1])
    assert raw.next_not_event().id == 4            # the reply names the refused request
    raw.send(StatusRequest(77))                     # still serving this connection
    reply = raw.next_not_event()
    assert isinstance(reply, StatusReply) and reply.id == 77
    raw.send(CommandMessage(SignIn("badge-raw")))    # and its commands
    seen.wait_for(is_state(State.SIGNED_IN))
    raw.close()


FATAL = [
    ("oversized length", struct.pack(">I", MAX_CLIENT_MESSAGE + 1) + b"x" * 64, "too_large"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), "too_large"),
    ("tiny length", struct.pack(">I", 1) + b"{", "bad_frame"),
]


@pytest.mark.parametrize("data, code", [case[1:] for case in FATAL],
                         ids=[case[0] for case in FATAL])
def test_lost_framing_closes_only_that_connection(core, clients, data, code):
    station = core()
    watcher, seen = clients(station.path)
    assert watcher.wait_connected(10)
    raw = Raw(station.path)
    raw.send_bytes(data)
    reply = raw.next_not_event()
    assert isinstance(reply, ErrorReply) and reply.code == code
    assert raw.ended()
    raw.close()
    watcher.submit(SignIn("badge-ok"))               # the core serves the others on
    seen.wait_for(is_state(State.SIGNED_IN))
    wait_until(lambda: station.server.client_count == 1)


@pytest.mark.parametrize("first, code", [
    (encode_message(Hello(PROTOCOL_VERSION + 1, "future ui")).tobytes(), "version"),
    (encode_message(StatusRequest(1)).tobytes(), "unexpected"),
    (b"GET / HTTP/1.1\r\nHost: station\r\n\r\n", "too_large"),
    (body_frame(b"{not json"), "bad_json"),
], ids=["wrong version", "no hello", "http", "bad json"])
def test_a_connection_must_start_with_a_hello_of_our_version(core, first, code):
    station = core()
    raw = Raw(station.path, hello=False)
    raw.send_bytes(first)
    reply = raw.next()
    assert isinstance(reply, ErrorReply) and reply.code == code
    if code == "version":
        assert f"speaks protocol version {PROTOCOL_VERSION}, the client " \
               f"{PROTOCOL_VERSION + 1}" in reply.message
    assert raw.ended()
    raw.close()


def test_a_silent_connection_is_closed_after_the_hello_timeout(core):
    station = core(hello_timeout_s=0.3)
    raw = Raw(station.path, hello=False)
    reply = raw.next()
    assert isinstance(reply, ErrorReply) and reply.code == "hello_timeout"
    assert raw.ended()


def test_a_client_that_stops_reading_is_dropped_and_the_workflow_never_waits(core, clients):
    station = core(queue_messages=8)
    sleeper = Raw(station.path)                       # says hello, then never reads again
    driver, seen = clients(station.path)
    assert driver.wait_connected(10)
    for command in (SignIn("badge-2"), ItemTyped(ITEM), Trigger()):
        driver.submit(command)
    seen.wait_for(is_state(State.VERDICT_SHOWN))       # 12 MB the sleeper never takes
    for count in range(1, 13):                        # more events than its queue holds,
        driver.submit(Trigger())                      # paced so the reader keeps up
        wait_until(lambda: len(seen.of(CommandIgnored)) == count)
        assert station.workflow.wait_until_idle(1)
    wait_until(lambda: station.server.client_count == 1)
    assert driver.connected and [e for e in seen.events if isinstance(e, CoreConnection)] == \
        [CoreConnection(False, f"connecting to the station core at {station.path}"),
         CoreConnection(True, f"connected to the station core at {station.path}")]
    assert station.workflow.state is State.VERDICT_SHOWN
    sleeper.close()


def test_a_command_too_large_to_send_is_ignored_with_a_reason(core, clients):
    station = core()
    client, seen = clients(station.path)
    assert client.wait_connected(10)
    client.submit(SignIn("x" * MAX_CLIENT_MESSAGE))
    ignored = seen.wait_for(lambda e: isinstance(e, CommandIgnored))
    assert ignored.command == "SignIn" and "cannot send it" in ignored.reason
    assert "limit is 65536" in ignored.reason
    client.submit(SignIn("badge-after"))             # the connection is still fine
    seen.wait_for(is_state(State.SIGNED_IN))


class Trickle:
    """Sends ``frame`` but its last byte, one byte every 0.2 s, from a thread of its own:
    every single read on the server gets data long before any per-read timeout."""

    def __init__(self, raw: Raw, frame: bytes) -> None:
        self.raw, self.frame = raw, frame
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        for byte in self.frame[:-1]:
            if self.stop.wait(0.2):
                return
            with contextlib.suppress(OSError):
                self.raw.sock.send(bytes([byte]))

    def __enter__(self) -> Trickle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(2)


def test_a_client_trickling_its_hello_is_cut_off_at_the_hello_timeout(core):
    """One byte now and then resets no per-read timeout: the whole frame has a deadline."""
    station = core(max_clients=1, hello_timeout_s=0.5, stall_timeout_s=0.5)
    raw = Raw(station.path, hello=False)
    frame = encode_message(Hello(PROTOCOL_VERSION, "slow loris")).tobytes()
    with Trickle(raw, frame) as trickle:               # the whole hello would take 14 s
        reply = raw.next()
        took = time.monotonic() - trickle.started
    assert isinstance(reply, ErrorReply) and reply.code == "stalled", reply
    assert "not complete within 0.5 s" in reply.message and took < 3.0, took
    wait_until(lambda: station.server.client_count == 0, limit_s=3.0)
    raw.close()


def test_a_client_trickling_a_command_is_cut_off_at_the_stall_timeout(core):
    station = core(stall_timeout_s=0.5)
    raw = Raw(station.path)
    assert isinstance(raw.next(), Snapshot)
    frame = encode_message(CommandMessage(SignIn("badge-slow"), 9)).tobytes()
    with Trickle(raw, frame) as trickle:
        reply = raw.next()
        took = time.monotonic() - trickle.started
    assert isinstance(reply, ErrorReply) and reply.code == "stalled", reply
    assert "not complete within 0.5 s" in reply.message and took < 3.0, took
    assert station.workflow.state is State.SIGNED_OUT   # the command never arrived whole
    raw.close()


def test_a_draining_server_refuses_commands_but_still_answers_status(core, clients):
    station = core()
    client, seen = clients(station.path)
    assert client.wait_connected(10)
    station.server.drain("the station core is stopping (systemctl stop)")
    client.submit(SignIn("badge-late"))
    ignored = seen.wait_for(lambda e: isinstance(e, CommandIgnored))
    assert ignored.command == "SignIn" and "stopping (systemctl stop)" in ignored.reason
    raw = Raw(station.path)
    raw.send(CommandMessage(SignIn("badge-raw"), 12))
    reply = raw.next_not_event()
    assert isinstance(reply, ErrorReply) and (reply.code, reply.id) == ("stopping", 12)
    raw.send(StatusRequest(13))
    assert raw.next_not_event().id == 13
    raw.close()
    assert station.workflow.wait_until_idle(5)
    assert station.recorder.of(StateChanged) == []     # the workflow got nothing


def test_a_socket_path_under_a_file_names_the_folder(core, tmp_path):
    station = core()
    blocker = tmp_path / "run"
    blocker.write_text("a file where the socket folder should be")
    for path in (blocker / "core.sock", blocker / "station" / "core.sock"):
        with pytest.raises(StationError) as caught:
            WorkflowServer(station.workflow, path).start()
        assert str(path.parent) in str(caught.value)
        assert "service.socket_path" in str(caught.value)


def test_too_many_clients_are_refused_with_a_reason(core):
    station = core(max_clients=1)
    first = Raw(station.path)
    second = Raw(station.path, hello=False)
    reply = second.next()
    assert isinstance(reply, ErrorReply) and reply.code == "too_many_clients"
    first.close()
    second.close()


# -- status, socket file, reconnection --------------------------------------------------------

def test_status_is_answered_from_info(core, clients):
    station = core(info=lambda: {"camera": "ok", "disk_free_gb": 42.5, "since": time.gmtime(0)})
    client, _ = clients(station.path)
    assert client.wait_connected(10)
    status = client.request_status()
    assert status["camera"] == "ok" and status["disk_free_gb"] == 42.5
    assert isinstance(status["since"], list)           # a struct_time: a tuple, sent as a list
    assert (status["protocol_version"], status["workflow_state"], status["clients"]) == \
        (PROTOCOL_VERSION, "signed_out", 1)
    once = query_status(station.path)                  # a short, event-free connection
    assert once["camera"] == "ok" and once["clients"] == 2


def test_a_failing_info_still_answers_status(core):
    def broken() -> dict:
        raise OSError("camera gone")
    station = core(info=broken)
    status = query_status(station.path)
    assert status["info_error"] == "OSError: camera gone" and status["clients"] == 1


def test_query_status_without_a_core_names_the_cause(socket_dir):
    with pytest.raises(StationError, match="not reachable .* is the service running"):
        query_status(socket_dir / "nobody.sock")


def test_the_socket_file_is_private_replaced_when_stale_and_removed_on_close(core, socket_dir):
    stale = socket_dir / "core0.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))                         # a core that died without cleaning up
    leftover.close()
    station = core()
    assert station.path == str(stale)
    mode = os.stat(stale).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    assert query_status(stale)["clients"] == 1

    with pytest.raises(StationError, match="another station core already serves"):
        WorkflowServer(station.workflow, stale).start()
    plain = socket_dir / "plain.sock"
    plain.write_text("not a socket")
    with pytest.raises(StationError, match="exists and is not a socket"):
        WorkflowServer(station.workflow, plain).start()
    with pytest.raises(StationError, match="Unix sockets allow 107"):
        WorkflowServer(station.workflow, socket_dir / ("x" * 120)).start()

    station.server.close()
    assert not stale.exists()
    assert station.workflow.state is State.SIGNED_OUT   # the workflow runs on


def test_the_client_reconnects_when_the_core_restarts(core, clients):
    station = core()
    client, seen = clients(station.path, reconnect_min_s=0.05, reconnect_max_s=0.2)
    assert client.wait_connected(10)
    client.submit(SignIn("badge-5"))
    seen.wait_for(is_state(State.SIGNED_IN))

    mark = len(seen.events)
    station.server.close()                             # the core's server goes away
    lost = after(seen, mark, lambda e: isinstance(e, CoreConnection) and not e.connected)
    assert "reconnecting" in lost.message
    wait_until(lambda: not client.connected)
    client.submit(ItemTyped(ITEM))                     # not queued: said so, at once
    ignored = seen.wait_for(lambda e: isinstance(e, CommandIgnored))
    assert ignored.command == "ItemTyped" and "not connected" in ignored.reason
    assert client.state is State.SIGNED_IN             # the last known state

    mark = len(seen.events)
    restarted = WorkflowServer(station.workflow, station.path).start()
    try:
        assert client.wait_connected(10)
        after(seen, mark, connected)
        caught_up = after(seen, mark, lambda e: isinstance(e, StateChanged))
        assert caught_up.new is State.SIGNED_IN        # the snapshot of the restarted server
        client.submit(ItemTyped(ITEM))
        seen.wait_for(is_state(State.WAITING_FOR_ITEM))
    finally:
        restarted.close()
    with pytest.raises(StationError, match="not connected"):
        wait_until(lambda: not client.connected)
        client.request_status()


def test_a_client_started_before_the_core_connects_when_it_comes(core, clients, socket_dir):
    path = str(socket_dir / "core0.sock")
    client, seen = clients(path, reconnect_min_s=0.05, reconnect_max_s=0.2)
    waiting = seen.wait_for(lambda e: isinstance(e, CoreConnection))
    assert not waiting.connected and client.state is None
    with pytest.raises(TypeError, match="not a workflow command"):
        client.submit("SignIn")
    station = core()
    assert station.path == path and client.wait_connected(10)
    seen.wait_for(is_state(State.SIGNED_OUT))
    assert client.request_status()["clients"] == 1
