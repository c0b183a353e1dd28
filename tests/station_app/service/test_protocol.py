"""The core<->front-end wire format: every command and event round-trips, and every way a
frame can be wrong is refused with a ProtocolError naming what was wrong."""

from __future__ import annotations

import dataclasses
import enum
import json
import socket
import struct
import threading
import typing
from typing import Any, Literal

import numpy as np
import pytest

from station_app.errors import StationError
from station_app.service.protocol import (CLIENT_KINDS, COMMAND_TYPES, EVENT_TYPES,
                                          MAX_CLIENT_MESSAGE, PROTOCOL_VERSION, CommandMessage,
                                          ErrorReply, EventMessage, FramingError, Hello,
                                          IdleTimeout, ProtocolError, Snapshot, StatusReply,
                                          StatusRequest, Welcome, decode_message,
                                          encode_message, read_frame, send_frame)
from station_app.workflow import (CommandIgnored, Confirm, Fault, ItemRejected, SignIn, State,
                                  StateChanged, Tick, Trigger, TriggerSource, VerdictReady)
from station_app.workflow.commands import PUBLIC_COMMANDS, Severity
from station_app.workflow.events import Event

RNG = np.random.default_rng(7)


# -- samples of every class, from its type hints (a new field is covered at once) -----------

def sample(tp: Any, variant: int = 0) -> Any:
    """A value of type ``tp``; ``variant`` 1 picks the other arm of optionals, other
    enum members and literal values, non-default numbers."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, __import__("types").UnionType):
        arms = [arm for arm in typing.get_args(tp) if arm is not type(None)]
        return None if variant == 1 and len(arms) < len(typing.get_args(tp)) else sample(arms[0])
    if origin is Literal:
        return typing.get_args(tp)[variant % len(typing.get_args(tp))]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(sample(args[0], variant) for _ in range(2 - variant))
        return tuple(sample(arg, variant) for arg in args)
    if origin is dict:
        return {"grab": 41.5, "segmentation": 120.25} if variant == 0 else {}
    if tp is np.ndarray:
        return RNG.random((48, 64), dtype=np.float32)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        members = list(tp)
        return members[variant % len(members)]
    if tp is bool:
        return variant == 0
    if tp is int:
        return 3 + variant
    if tp is float:
        return 0.625 if variant == 0 else -1e-9
    if tp is str:
        return "text ü 🙂" if variant == 0 else ""
    raise AssertionError(f"no sample for {tp}")


def instance(cls: type, variant: int = 0) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: sample(hints[f.name], variant) for f in dataclasses.fields(cls)})


def same(a: Any, b: Any) -> bool:
    """Deep equality that compares arrays by dtype, shape and content."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name))
                                          for f in dataclasses.fields(a))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b
    return type(a) is type(b) and a == b


def roundtrip(message: Any, max_size: int = 32 * 1024 * 1024) -> Any:
    wire = encode_message(message, max_size).tobytes()
    (length,) = struct.unpack(">I", wire[:4])
    assert length == len(wire) - 4
    return decode_message(bytearray(wire[4:]))


def test_the_registries_hold_every_public_command_and_event():
    assert set(COMMAND_TYPES.values()) == set(PUBLIC_COMMANDS)
    assert set(EVENT_TYPES.values()) == set(typing.get_args(Event))


@pytest.mark.parametrize("variant", [0, 1])
@pytest.mark.parametrize("cls", PUBLIC_COMMANDS, ids=lambda c: c.__name__)
def test_every_command_round_trips(cls, variant):
    command = instance(cls, variant)
    decoded = roundtrip(CommandMessage(command, 41))
    assert isinstance(decoded, CommandMessage) and decoded.id == 41
    assert same(decoded.command, command), (decoded.command, command)


@pytest.mark.parametrize("variant", [0, 1])
@pytest.mark.parametrize("cls", typing.get_args(Event), ids=lambda c: c.__name__)
def test_every_event_round_trips(cls, variant):
    event = instance(cls, variant)
    decoded = roundtrip(EventMessage(event))
    assert isinstance(decoded, EventMessage)
    assert same(decoded.event, event), (decoded.event, event)


def test_a_real_sized_verdict_keeps_its_arrays_exactly():
    tray = RNG.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    heatmap = RNG.random((64, 64), dtype=np.float32)
    verdict = VerdictReady("cap-1", "DAMAGED", np.float32(0.91), ("penetration",), "why",
                           heatmap, tray, {"grab": 12.0, "odd": float("nan")})
    frame = encode_message(EventMessage(verdict))
    assert frame.size < 13 * 1024 * 1024           # raw bytes: no base64, no JSON arrays
    decoded = roundtrip(EventMessage(verdict)).event
    assert same(decoded, dataclasses.replace(verdict, fused_score=float(np.float32(0.91))))
    assert decoded.tray_image.flags.writeable and decoded.heatmap.dtype == np.float32
    assert decoded.timings_ms["odd"] != decoded.timings_ms["odd"]     # NaN survives


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=">i4").reshape(3, 4),        # big-endian
    np.zeros((0, 5), np.float64),                      # empty
    np.array([True, False, True]),                     # bool
    np.arange(24, dtype=np.uint16).reshape(2, 3, 4)[:, ::2],   # not contiguous
    np.array(3.5, np.float32),                         # zero dimensions
], ids=["big-endian", "empty", "bool", "strided", "scalar"])
def test_arrays_of_any_numeric_kind_round_trip(array):
    event = instance(VerdictReady)
    event = dataclasses.replace(event, heatmap=array, tray_image=np.full((3, 3, 3), 7, np.uint8))
    decoded = roundtrip(EventMessage(event)).event
    assert same(decoded.heatmap, array)


def test_protocol_messages_round_trip():
    verdict = instance(VerdictReady)
    change = StateChanged(State.PROCESSING, State.VERDICT_SHOWN, "OK: confirm", "ITEM-1")
    for message in [Hello(PROTOCOL_VERSION, "operator-ui"), Hello(7, subscribe=False),
                    Welcome(PROTOCOL_VERSION), Snapshot(change, verdict), Snapshot(change),
                    StatusRequest(9), StatusReply({"camera": {"ok": True, "fps": 2.5},
                                                   "disk_free_gb": 120, "notes": ["a", None]}, 9),
                    ErrorReply("bad_json", "header is not valid JSON", None)]:
        assert same(roundtrip(message), message), message


def test_the_header_is_plain_json_a_script_can_write():
    wire = encode_message(CommandMessage(Confirm(False, Severity.MAJOR, ("spillage",)), 5))
    header = json.loads(wire.tobytes()[8:])
    assert header == {"kind": "command", "id": 5, "command": {
        "type": "Confirm", "fields": {"agree": False, "severity": "major",
                                      "defect_types": ["spillage"]}}}
    # Fields with defaults may be left out by hand-written senders.
    body = _body({"kind": "command", "command": {"type": "Trigger", "fields": {}}})
    assert decode_message(body).command == Trigger(TriggerSource.BUTTON)


# -- malformed messages: one table ----------------------------------------------------------

def _body(header: Any, tail: bytes = b"", raw: bytes | None = None) -> bytearray:
    text = raw if raw is not None else json.dumps(header).encode()
    return bytearray(struct.pack(">I", len(text)) + text + tail)


def _padded(header: Any) -> bytearray:
    """A body whose (empty) attachments start, aligned, exactly where it ends."""
    length = len(json.dumps(header).encode())
    return _body(header, b"\0" * (-(4 + length) % 8))


def _command(name: str, fields: Any) -> dict:
    return {"kind": "command", "id": 3, "command": {"type": name, "fields": fields}}


def _verdict_header(**attachment: Any) -> dict:
    fields = {"capture_id": "c", "label": "OK", "fused_score": 0.1, "likely_types": [],
              "reason": "", "heatmap": {"$array": 0}, "tray_image": {"$array": 0},
              "timings_ms": {}}
    return {"kind": "event", "event": {"type": "VerdictReady", "fields": fields},
            "attachments": [{"dtype": "<f4", "shape": [2, 2], **attachment}]}


NESTED = b'{"kind": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

MALFORMED = [
    # (id, body, code, words in the message)
    ("empty body", bytearray(), "bad_frame", "shorter than"),
    ("header past end", bytearray(struct.pack(">I", 99) + b"{}"), "bad_frame", "runs past"),
    ("not utf-8", _body(None, raw=b'{"kind": "\xff\xfe"}'), "bad_json", "not UTF-8"),
    ("bad json", _body(None, raw=b'{"kind": "command",'), "bad_json", "not valid JSON"),
    ("json list", _body([1, 2]), "bad_json", "must be a JSON object"),
    ("duplicate key", _body(None, raw=b'{"kind": "status", "kind": "hello"}'), "bad_json",
     "repeats the key 'kind'"),
    ("NaN literal", _body(None, raw=b'{"kind": "status", "id": NaN}'), "bad_json", "NaN"),
    ("nested deeply", _body(None, raw=NESTED), "bad_json", "nested too deeply"),
    ("no kind", _body({"id": 1}), "unknown_type", "unknown message kind None"),
    ("unknown kind", _body({"kind": "reboot"}), "unknown_type", "'reboot'"),
    ("unknown command", _body(_command("SelfDestruct", {})), "unknown_type",
     "unknown type 'SelfDestruct'"),
    ("event type as command", _body(_command("StateChanged", {})), "unknown_type",
     "expected one of Back"),
    ("missing field", _body(_command("SignIn", {})), "bad_message", "missing field(s) ['badge']"),
    ("extra field", _body(_command("SignIn", {"badge": "b", "pin": 1234})), "bad_message",
     "unknown field(s) ['pin']"),
    ("wrong type", _body(_command("SignIn", {"badge": 5})), "bad_message",
     "command.command(SignIn).badge: expected text, got a number"),
    ("bool as text", _body(_command("Confirm", {"agree": "yes"})), "bad_message",
     "expected true or false"),
    ("number as bool", _body(_command("Confirm", {"agree": 1})), "bad_message",
     "expected true or false"),
    ("bad enum", _body(_command("Trigger", {"source": "telepathy"})), "bad_message",
     "one of ['button', 'pedal', 'auto']"),
    ("tuple as text", _body(_command("Confirm", {"agree": True, "defect_types": "spillage"})),
     "bad_message", "expected a list"),
    ("text as number", _body(_command("Tick", {"now": "soon"})), "bad_message",
     "expected a number"),
    ("fields not object", _body(_command("Back", [])), "bad_message", "fields must be an object"),
    ("no fields key", _body({"kind": "command", "command": {"type": "Back"}}), "bad_message",
     '{"type": ..., "fields": {...}}'),
    ("missing id type", _body({"kind": "status", "id": "7"}), "bad_message",
     "expected a whole number"),
    ("extra envelope key", _body({"kind": "status", "id": 7, "urgent": True}), "bad_message",
     "unknown field(s) ['urgent']"),
    ("object dtype", _body(_verdict_header(dtype="|O"), b"\0" * 8), "bad_message",
     "not a plain number type"),
    ("text dtype", _body(_verdict_header(dtype="<U4"), b"\0" * 64), "bad_message",
     "not a plain number type"),
    ("record dtype", _body(_verdict_header(dtype="(2,)f4"), b"\0" * 32), "bad_message",
     "not a plain number type"),
    ("unknown dtype", _body(_verdict_header(dtype="<q9"), b"\0" * 16), "bad_message",
     "unknown dtype"),
    ("negative shape", _body(_verdict_header(shape=[-2, 2]), b"\0" * 16), "bad_message",
     "non-negative whole numbers"),
    # Python's int limit and numpy's shape limits raise ValueError, never a ProtocolError
    # of their own: a peer could kill a reader thread with them.
    ("5000-digit number", _body(None, raw=b'{"kind": "status", "id": ' + b"9" * 5000 + b"}"),
     "bad_json", "not valid JSON"),
    ("side past 2**31", _padded(_verdict_header(shape=[0, 2**63])), "bad_message",
     "each at most 2147483647"),
    ("too many elements", _padded(_verdict_header(shape=[0] + [2**31 - 1] * 7)), "bad_message",
     "cannot be read"),
    ("array past end", _body(_verdict_header(shape=[200, 200]), b"\0" * 16), "bad_frame",
     "runs past the end"),
    ("bytes after arrays", _body(_verdict_header(), b"\0" * 64), "bad_frame",
     "unexplained byte(s)"),
    ("too many arrays", _body({"kind": "status", "attachments": [
        {"dtype": "|u1", "shape": [0]}] * 17}), "too_large", "17 attachments"),
    ("array ref out of range", _body({**_verdict_header(), "attachments": []}),
     "bad_message", "array reference 0 but the message has 0"),
    ("array ref on text", _body(_command("SignIn", {"badge": {"$array": 0}})),
     "bad_message", "expected text"),
]


@pytest.mark.parametrize("body, code, words", [case[1:] for case in MALFORMED],
                         ids=[case[0] for case in MALFORMED])
def test_malformed_messages_are_refused_with_a_clear_reason(body, code, words):
    with pytest.raises(ProtocolError) as caught:
        decode_message(body)
    assert caught.value.code == code, caught.value
    assert words in str(caught.value), str(caught.value)
    assert not caught.value.fatal           # the frame was whole: the stream is in step
    assert isinstance(caught.value, StationError)


def test_an_error_names_the_request_it_refuses():
    with pytest.raises(ProtocolError) as caught:
        decode_message(_body(_command("SignIn", {"badge": 5})))
    assert caught.value.request_id == 3


def test_a_server_only_message_is_refused_from_a_client():
    body = encode_message(Welcome(PROTOCOL_VERSION)).tobytes()[4:]
    with pytest.raises(ProtocolError, match="'welcome' message is not accepted here") as caught:
        decode_message(bytearray(body), CLIENT_KINDS)
    assert caught.value.code == "unexpected"


@pytest.mark.parametrize("message, words", [
    (CommandMessage(SignIn("x" * MAX_CLIENT_MESSAGE)), "limit is 65536"),
    (EventMessage(StateChanged(State.SIGNED_IN, "signed_out", "")), "expected a State"),
    (EventMessage(Fault("lights", "m", "janitor")), "not one of ['associate', 'technician']"),
    (EventMessage(ItemRejected("c", (("code",),), "m")), "expected 2 items"),
    (EventMessage(CommandIgnored("Trigger", State.SIGNED_IN, 42)), "expected text"),
    (CommandMessage(Tick(True)), "expected a number"),
    (EventMessage(dataclasses.replace(instance(VerdictReady),
                                      heatmap=np.array(["a"], dtype=object))),
     "numeric numpy array"),
], ids=["too large", "enum", "literal", "pair", "text", "bool as float", "object array"])
def test_what_cannot_be_sent_is_refused_at_the_sender(message, words):
    with pytest.raises(ProtocolError, match=words.replace("[", r"\[").replace("(", r"\(")):
        encode_message(message, MAX_CLIENT_MESSAGE)


# -- framing on a real socket pair ------------------------------------------------------------

def _frame(message: Any) -> bytes:
    return encode_message(message).tobytes()


FRAMING = [
    # (id, bytes the peer sends before closing, error code or None for a clean end)
    ("clean end", b"", None),
    ("oversized length", struct.pack(">I", MAX_CLIENT_MESSAGE + 1) + b"{}", "too_large"),
    ("garbage bytes", b"GET / HTTP/1.1\r\nHost: core\r\n\r\n", "too_large"),
    ("length below header", struct.pack(">I", 2) + b"{}", "bad_frame"),
    ("truncated length", b"\x00\x00", "truncated"),
    ("truncated body", _frame(StatusRequest(1))[:-3], "truncated"),
]


@pytest.mark.parametrize("sent, code", [case[1:] for case in FRAMING],
                         ids=[case[0] for case in FRAMING])
def test_broken_framing_is_a_framing_error(sent, code):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(2.0)
        theirs.sendall(sent)
        theirs.shutdown(socket.SHUT_WR)
        if code is None:
            assert read_frame(ours, MAX_CLIENT_MESSAGE) is None
            return
        with pytest.raises(FramingError) as caught:
            read_frame(ours, MAX_CLIENT_MESSAGE)
        assert caught.value.code == code and caught.value.fatal


def test_a_sender_that_stalls_mid_frame_is_a_framing_error():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.2)
        theirs.sendall(_frame(StatusRequest(1))[:10])
        with pytest.raises(FramingError, match="stopped after 6 of") as caught:
            read_frame(ours, MAX_CLIENT_MESSAGE)
        assert caught.value.code == "stalled"


def test_waiting_for_a_frame_to_start_is_not_an_error():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.05)
        with pytest.raises(IdleTimeout):
            read_frame(ours, MAX_CLIENT_MESSAGE, wait_s=0.2)
        stop = threading.Event()
        threading.Timer(0.2, stop.set).start()
        assert read_frame(ours, MAX_CLIENT_MESSAGE, stop=stop.is_set) is None


def test_frames_follow_each_other_and_a_big_one_arrives_whole():
    ours, theirs = socket.socketpair()
    verdict = dataclasses.replace(instance(VerdictReady),
                                  tray_image=RNG.integers(0, 256, (2048, 2048, 3), np.uint8))
    with ours, theirs:
        ours.settimeout(5.0)
        sender = threading.Thread(target=lambda: [send_frame(theirs, encode_message(m)) for m in
                                                  (StatusRequest(1), EventMessage(verdict),
                                                   ErrorReply("x", "y"))])
        sender.start()
        received = [decode_message(read_frame(ours, 32 * 1024 * 1024)) for _ in range(3)]
        sender.join()
    assert received[0] == StatusRequest(1) and received[2] == ErrorReply("x", "y")
    assert same(received[1].event, verdict)
