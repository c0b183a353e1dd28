"""The wire protocol between the station core and its front ends, on a local stream socket.

One message is one frame::

    u32 big-endian  body length (bytes that follow; at most the reader's limit)
    u32 big-endian  header length
    header          UTF-8 JSON object: {"kind": ..., <fields of the message>}
    attachments     raw array bytes, each starting at a multiple of 8 from the body start

Why raw arrays, not JPEG/PNG: a verdict carries the 2048² tray image (12 MB of uint8) and
a float heatmap on the scorer grid. On a local socket the whole verdict reaches a client's
listener in about 4 ms (measured on the 2-core development machine), while a JPEG round
trip of the tray costs about 9 ms to encode on the core plus 10 ms to decode in the UI
and changes the pixels, and a PNG of the heatmap would quantise it. Raw bytes with dtype
and shape keep the front end's picture exactly the core's, need nothing but numpy to
read, and let the core send the arrays it already holds without copying them (the
workflow's thread spends about 0.1 ms per event on the server).

Commands and events are not described by hand: :func:`encode_value` / :func:`decode_value`
walk the dataclass fields and their type hints (str, bool, int, float, enums, Literal,
optional, tuples, dicts, numpy arrays, nested dataclasses), so a field added to a command
or an event is on the wire at once and is checked on the way in. A dataclass value is
``{"type": ClassName, "fields": {...}}``; an array field is ``{"$array": index}`` into the
header's ``attachments`` table (``{"dtype": "<f4", "shape": [h, w]}``).

Every way a frame can be wrong raises :class:`ProtocolError` naming what was wrong.
:class:`FramingError` (its subclass) means the byte stream can no longer be split into
frames (oversized or impossible length, truncated frame, stalled sender): the reader
must close that connection. Any other ProtocolError leaves the stream in step, so a
server answers it with an :class:`ErrorReply` and keeps serving.

Versioning: :data:`PROTOCOL_VERSION` is sent in the client's :class:`Hello` and the
server's :class:`Welcome`; a server speaks exactly one version and refuses a hello with
another. Any change an older peer could not read (a new message kind, command, event or
field, a removed field, a changed meaning) increases the version.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import socket
import struct
import time
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np

from station_app.errors import StationError
from station_app.workflow.commands import PUBLIC_COMMANDS, Command
from station_app.workflow.events import Event, StateChanged, VerdictReady
from station_app.workflow.states import State

PROTOCOL_VERSION = 1

MAX_CLIENT_MESSAGE = 64 * 1024
"""Largest frame a front end may send to the core (hello, commands, status requests)."""
MAX_SERVER_MESSAGE = 32 * 1024 * 1024
"""Largest frame the core sends (an event with the 12 MB tray image fits with room)."""
MAX_HEADER = 1024 * 1024
"""Largest JSON header in any frame."""
MAX_ATTACHMENTS = 16
MAX_ARRAY_DIMENSIONS = 8
MAX_ARRAY_SIDE = 2**31 - 1     # per dimension; numpy refuses absurd shapes with ValueError
ALIGNMENT = 8
ARRAY_KINDS = "biuf"          # bool, signed, unsigned, float: no objects, strings or records

_U32 = struct.Struct(">I")


class ProtocolError(StationError):
    """A message that breaks the protocol. ``code`` is sent back in the error reply."""

    fatal = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.request_id: int | None = None


class FramingError(ProtocolError):
    """The stream cannot be split into frames any more: close the connection."""

    fatal = True


# -- messages ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hello:
    """First message of a front end. ``subscribe`` False: status queries only, no events."""

    version: int
    client: str = ""
    subscribe: bool = True


@dataclass(frozen=True)
class Welcome:
    """The core's answer to an accepted hello."""

    version: int
    server: str = "station-core"


@dataclass(frozen=True)
class Snapshot:
    """Sent after the welcome to a subscribing front end: what the screen must show now.

    ``state_change`` is the last state change the core made (``old == new`` when it has
    made none since it started serving); ``verdict`` is the verdict on screen (the state
    is VERDICT_SHOWN, or about to be), else None."""

    state_change: StateChanged
    verdict: VerdictReady | None = None

    @property
    def state(self) -> State:
        return self.state_change.new


@dataclass(frozen=True)
class EventMessage:
    event: Event


@dataclass(frozen=True)
class CommandMessage:
    """A workflow command; ``id`` (chosen by the sender) comes back in an error reply."""

    command: Command
    id: int | None = None


@dataclass(frozen=True)
class StatusRequest:
    id: int | None = None


@dataclass(frozen=True)
class StatusReply:
    status: dict[str, Any]
    id: int | None = None


@dataclass(frozen=True)
class ErrorReply:
    """A refused message: ``code`` for programs, ``message`` for people."""

    code: str
    message: str
    id: int | None = None


Message = Union[Hello, Welcome, Snapshot, EventMessage, CommandMessage, StatusRequest,
                StatusReply, ErrorReply]

MESSAGE_KINDS: dict[str, type] = {
    "hello": Hello, "welcome": Welcome, "snapshot": Snapshot, "event": EventMessage,
    "command": CommandMessage, "status": StatusRequest, "status_reply": StatusReply,
    "error": ErrorReply,
}
_KIND_OF = {cls: kind for kind, cls in MESSAGE_KINDS.items()}
CLIENT_KINDS = frozenset({"hello", "command", "status"})
SERVER_KINDS = frozenset({"welcome", "snapshot", "event", "status_reply", "error"})

COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in PUBLIC_COMMANDS}
EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in typing.get_args(Event)}


# -- values <-> JSON, from type hints -------------------------------------------------------

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = _hints_cache[cls] = typing.get_type_hints(cls)
    return hints


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _bad(path: str, message: str) -> ProtocolError:
    return ProtocolError("bad_message", f"{path}: {message}")


def _dataclass_arms(tp: Any) -> dict[str, type] | None:
    """The dataclasses a type allows, by name (None when it allows none)."""
    arms = typing.get_args(tp) if _is_union(tp) else (tp,)
    found = {arm.__name__: arm for arm in arms
             if isinstance(arm, type) and dataclasses.is_dataclass(arm)}
    return found or None


class _Arrays:
    """The attachments of one message while it is encoded or decoded."""

    def __init__(self, body: bytearray | memoryview | None = None,
                 table: list[tuple[np.dtype, tuple[int, ...], int]] | None = None) -> None:
        self.outgoing: list[np.ndarray] = []
        self.body = body
        self.table = table or []

    def add(self, array: np.ndarray) -> dict[str, int]:
        if len(self.outgoing) >= MAX_ATTACHMENTS:
            raise ProtocolError("too_large", f"more than {MAX_ATTACHMENTS} arrays in one message")
        # Not np.ascontiguousarray: it turns a 0-d array into a 1-d one.
        self.outgoing.append(array if array.flags.c_contiguous else array.copy(order="C"))
        return {"$array": len(self.outgoing) - 1}

    def get(self, index: int, path: str) -> np.ndarray:
        if not 0 <= index < len(self.table):
            raise _bad(path, f"array reference {index} but the message has {len(self.table)} "
                             "attachment(s)")
        dtype, shape, offset = self.table[index]
        count = math.prod(shape)
        try:
            return np.frombuffer(self.body, dtype=dtype, count=count,
                                 offset=offset).reshape(shape)
        except ValueError as error:   # numpy's own limits (e.g. too many elements)
            raise _bad(path, f"attachment {index} ({dtype.str} {list(shape)}) cannot be "
                             f"read: {error}") from None


def encode_value(value: Any, tp: Any, arrays: _Arrays, path: str = "value") -> Any:
    """``value`` (of type ``tp``) as JSON data; arrays go to ``arrays``."""
    if tp is Any:
        return _json_safe(value, path)
    if _is_union(tp):
        arms = typing.get_args(tp)
        if value is None:
            if type(None) in arms:
                return None
            raise _bad(path, f"None is not a {_describe(tp)}")
        classes = _dataclass_arms(tp)
        if classes and dataclasses.is_dataclass(value):
            if type(value).__name__ not in classes:
                raise _bad(path, f"{type(value).__name__} is not one of {sorted(classes)}")
            return encode_value(value, type(value), arrays, path)
        others = [arm for arm in arms if arm is not type(None)]
        if len(others) == 1:
            return encode_value(value, others[0], arrays, path)
        raise _bad(path, f"cannot encode {type(value).__name__} as {_describe(tp)}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise _bad(path, f"{value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (tuple, list)):
            raise _bad(path, f"expected a sequence, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return [encode_value(item, args[0], arrays, f"{path}[{i}]")
                    for i, item in enumerate(value)]
        if len(value) != len(args):
            raise _bad(path, f"expected {len(args)} items, got {len(value)}")
        return [encode_value(item, arg, arrays, f"{path}[{i}]")
                for i, (item, arg) in enumerate(zip(value, args))]
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _bad(path, f"expected a dict, got {type(value).__name__}")
        return {encode_value(k, key_type, arrays, f"{path} key"):
                encode_value(v, value_type, arrays, f"{path}[{k!r}]") for k, v in value.items()}
    if tp is np.ndarray:
        if not isinstance(value, np.ndarray) or value.dtype.kind not in ARRAY_KINDS:
            raise _bad(path, f"expected a numeric numpy array, got {type(value).__name__} "
                             f"{getattr(value, 'dtype', '')}".rstrip())
        return arrays.add(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if not isinstance(value, tp):
            raise _bad(path, f"expected a {tp.__name__}, got {value!r}")
        return value.value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if type(value) is not tp:
            raise _bad(path, f"expected a {tp.__name__}, got {type(value).__name__}")
        hints = _hints(tp)
        return {"type": tp.__name__,
                "fields": {f.name: encode_value(getattr(value, f.name), hints[f.name], arrays,
                                                f"{path}.{f.name}")
                           for f in dataclasses.fields(tp)}}
    if tp is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise _bad(path, f"expected true or false, got {value!r}")
        return bool(value)
    if tp is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise _bad(path, f"expected a whole number, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                         np.floating)):
            raise _bad(path, f"expected a number, got {value!r}")
        number = float(value)
        if math.isfinite(number):
            return number
        return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    if tp is str:
        if not isinstance(value, str):
            raise _bad(path, f"expected text, got {value!r}")
        return str(value)
    raise _bad(path, f"no wire form for type {_describe(tp)}")


def decode_value(data: Any, tp: Any, arrays: _Arrays, path: str = "value") -> Any:
    """JSON ``data`` checked against ``tp`` and turned into its Python value."""
    if tp is Any:
        return data
    if _is_union(tp):
        arms = typing.get_args(tp)
        if data is None:
            if type(None) in arms:
                return None
            raise _bad(path, f"null is not allowed here (expected {_describe(tp)})")
        classes = _dataclass_arms(tp)
        others = [arm for arm in arms if arm is not type(None)]
        if classes and len(classes) == len(others):
            return _decode_dataclass(data, classes, arrays, path)
        if len(others) == 1:
            return decode_value(data, others[0], arrays, path)
        raise _bad(path, f"no wire form for type {_describe(tp)}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if not isinstance(data, str) or data not in allowed:
            raise _bad(path, f"{data!r} is not one of {list(allowed)}")
        return data
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(data, list):
            raise _bad(path, f"expected a list, got {_json_type(data)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode_value(item, args[0], arrays, f"{path}[{i}]")
                         for i, item in enumerate(data))
        if len(data) != len(args):
            raise _bad(path, f"expected a list of {len(args)}, got {len(data)} items")
        return tuple(decode_value(item, arg, arrays, f"{path}[{i}]")
                     for i, (item, arg) in enumerate(zip(data, args)))
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if not isinstance(data, dict):
            raise _bad(path, f"expected an object, got {_json_type(data)}")
        return {decode_value(k, key_type, arrays, f"{path} key"):
                decode_value(v, value_type, arrays, f"{path}[{k!r}]") for k, v in data.items()}
    if tp is np.ndarray:
        if (not isinstance(data, dict) or set(data) != {"$array"}
                or type(data["$array"]) is not int):
            raise _bad(path, 'expected an array reference {"$array": index}')
        return arrays.get(data["$array"], path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(data)
        except (ValueError, TypeError):
            allowed = [member.value for member in tp]
            raise _bad(path, f"{data!r} is not a {tp.__name__} (one of {allowed})") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_dataclass(data, {tp.__name__: tp}, arrays, path)
    if tp is bool:
        if type(data) is not bool:
            raise _bad(path, f"expected true or false, got {_json_type(data)}")
        return data
    if tp is int:
        if type(data) is not int:
            raise _bad(path, f"expected a whole number, got {_json_type(data)}")
        return data
    if tp is float:
        if type(data) in (int, float):
            return float(data)
        if isinstance(data, str) and data in _NON_FINITE:
            return _NON_FINITE[data]
        raise _bad(path, f"expected a number, got {_json_type(data)}")
    if tp is str:
        if type(data) is not str:
            raise _bad(path, f"expected text, got {_json_type(data)}")
        return data
    raise _bad(path, f"no wire form for type {_describe(tp)}")


def _decode_dataclass(data: Any, classes: dict[str, type], arrays: _Arrays, path: str) -> Any:
    if not isinstance(data, dict) or set(data) != {"type", "fields"}:
        raise _bad(path, 'expected {"type": ..., "fields": {...}}')
    name, values = data["type"], data["fields"]
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ProtocolError("unknown_type", f"{path}: unknown type {name!r}; expected one of "
                                            f"{', '.join(sorted(classes))}")
    return _construct(cls, values, arrays, f"{path}({name})")


def _construct(cls: type, values: Any, arrays: _Arrays, path: str) -> Any:
    """``cls`` from its field values: unknown fields and missing required ones refused."""
    if not isinstance(values, dict):
        raise _bad(path, f"fields must be an object, got {_json_type(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise _bad(path, f"unknown field(s) {unknown}; {cls.__name__} has "
                         f"{sorted(fields) or 'no fields'}")
    missing = sorted(name for name, f in fields.items() if name not in values
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise _bad(path, f"missing field(s) {missing} of {cls.__name__}")
    hints = _hints(cls)
    return cls(**{name: decode_value(value, hints[name], arrays, f"{path}.{name}")
                  for name, value in values.items()})


def _json_type(data: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(data), type(data).__name__)


def _json_safe(value: Any, path: str, depth: int = 0) -> Any:
    """Free-form data (a status dict) as JSON: containers kept, other objects as text."""
    if depth > 32:
        raise _bad(path, "nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, dict):
        return {str(k): _json_safe(v, path, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, path, depth + 1) for v in value]
    if isinstance(value, enum.Enum):
        return _json_safe(value.value, path, depth + 1)
    return str(value)


# -- frames ---------------------------------------------------------------------------------

@dataclass
class Frame:
    """One encoded message: ``parts`` joined are the bytes on the wire. Arrays are not
    copied; the parts point at them."""

    parts: list[bytes | memoryview] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(part) if isinstance(part, bytes) else part.nbytes for part in self.parts)

    def tobytes(self) -> bytes:
        return b"".join(bytes(part) for part in self.parts)


def _padding(position: int) -> int:
    return -position % ALIGNMENT


def encode_message(message: Message, max_size: int = MAX_SERVER_MESSAGE) -> Frame:
    """The frame for ``message``; ProtocolError when it is not encodable or too large."""
    cls = type(message)
    kind = _KIND_OF.get(cls)
    if kind is None:
        raise ProtocolError("bad_message", f"not a protocol message: {message!r}")
    arrays = _Arrays()
    hints = _hints(cls)
    header: dict[str, Any] = {"kind": kind}
    for f in dataclasses.fields(cls):
        header[f.name] = encode_value(getattr(message, f.name), hints[f.name], arrays, f.name)
    if arrays.outgoing:
        header["attachments"] = [{"dtype": a.dtype.str, "shape": list(a.shape)}
                                 for a in arrays.outgoing]
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
    if len(header_bytes) > MAX_HEADER:
        raise ProtocolError("too_large", f"{kind} header of {len(header_bytes)} bytes; the "
                                         f"limit is {MAX_HEADER}")
    position = 4 + len(header_bytes)
    tail: list[bytes | memoryview] = []
    for array in arrays.outgoing:
        pad = _padding(position)
        if pad:
            tail.append(bytes(pad))
        view = memoryview(array).cast("B") if array.nbytes else memoryview(b"")
        tail.append(view)
        position += pad + array.nbytes
    if position > max_size:
        raise ProtocolError("too_large", f"{kind} message of {position} bytes; the limit is "
                                         f"{max_size}")
    first = _U32.pack(position) + _U32.pack(len(header_bytes)) + header_bytes
    return Frame([first, *tail])


def decode_message(body: bytes | bytearray, allowed: frozenset[str] | None = None) -> Message:
    """The message in one frame's body (the bytes after the length prefix).

    ``allowed`` limits the kinds accepted (a server takes only what clients may send).
    Arrays in the result are views of ``body`` (writable when ``body`` is a bytearray)."""
    if len(body) < 4:
        raise ProtocolError("bad_frame", f"frame body of {len(body)} bytes is shorter than its "
                                         "4-byte header length")
    (header_length,) = _U32.unpack_from(body, 0)
    if header_length > len(body) - 4:
        raise ProtocolError("bad_frame", f"header length {header_length} runs past the end of "
                                         f"the {len(body)}-byte frame")
    if header_length > MAX_HEADER:
        raise ProtocolError("too_large", f"header of {header_length} bytes; the limit is "
                                         f"{MAX_HEADER}")
    header = _parse_header(bytes(body[4:4 + header_length]))
    kind = header.pop("kind", None)
    if not isinstance(kind, str) or kind not in MESSAGE_KINDS:
        raise ProtocolError("unknown_type", f"unknown message kind {kind!r}; expected one of "
                                            f"{', '.join(sorted(allowed or MESSAGE_KINDS))}")
    if allowed is not None and kind not in allowed:
        raise ProtocolError("unexpected", f"a {kind!r} message is not accepted here; expected "
                                          f"one of {', '.join(sorted(allowed))}")
    request_id = header.get("id")
    try:
        table = _attachment_table(header.pop("attachments", None), len(body),
                                  4 + header_length)
        arrays = _Arrays(body if isinstance(body, (bytearray, memoryview)) else bytearray(body),
                         table)
        return _construct(MESSAGE_KINDS[kind], header, arrays, kind)
    except ProtocolError as error:
        # The sender's id, when readable, so the error reply names the request it refuses.
        error.request_id = request_id if type(request_id) is int else None
        raise


def _parse_header(raw: bytes) -> dict[str, Any]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            seen: set[str] = set()
            duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore
            raise ProtocolError("bad_json", f"header repeats the key {duplicate!r}")
        return result

    def no_constant(name: str) -> Any:
        raise ProtocolError("bad_json", f"header holds {name}, which is not JSON; non-finite "
                                        'numbers are sent as "NaN", "Infinity", "-Infinity"')
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError("bad_json", f"header is not UTF-8 ({error})") from None
    try:
        header = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except ProtocolError:
        raise
    except ValueError as error:   # JSONDecodeError, or an integer past Python's digit limit
        raise ProtocolError("bad_json", f"header is not valid JSON ({error})") from None
    except RecursionError:
        raise ProtocolError("bad_json", "header JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad_json", f"header must be a JSON object, got {_json_type(header)}")
    return header


def _attachment_table(entries: Any, body_length: int,
                      position: int) -> list[tuple[np.dtype, tuple[int, ...], int]]:
    """(dtype, shape, offset) of each attachment; the frame must end where the last one does."""
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _bad("attachments", f"expected a list, got {_json_type(entries)}")
    if len(entries) > MAX_ATTACHMENTS:
        raise ProtocolError("too_large", f"{len(entries)} attachments; the limit is "
                                         f"{MAX_ATTACHMENTS}")
    table = []
    for index, entry in enumerate(entries):
        where = f"attachments[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape"}:
            raise _bad(where, 'expected {"dtype": ..., "shape": [...]}')
        dtype = _array_dtype(entry["dtype"], where)
        shape = entry["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMENSIONS
                or not all(type(n) is int and 0 <= n <= MAX_ARRAY_SIDE for n in shape)):
            raise _bad(where, f"shape must be a list of at most {MAX_ARRAY_DIMENSIONS} "
                              f"non-negative whole numbers (each at most {MAX_ARRAY_SIDE}), "
                              f"got {shape!r}")
        position += _padding(position)
        nbytes = math.prod(shape) * dtype.itemsize
        if position + nbytes > body_length:
            raise ProtocolError("bad_frame", f"{where} ({dtype.str} {shape}, {nbytes} bytes) "
                                             f"runs past the end of the {body_length}-byte frame")
        table.append((dtype, tuple(shape), position))
        position += nbytes
    if position != body_length:
        raise ProtocolError("bad_frame", f"{body_length - position} unexplained byte(s) after "
                                         "the header and attachments")
    return table


def _array_dtype(text: Any, where: str) -> np.dtype:
    if not isinstance(text, str) or len(text) > 8:
        raise _bad(where, f"dtype must be a short numpy type string such as '<f4', got {text!r}")
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        raise _bad(where, f"unknown dtype {text!r}") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.shape != ():
        raise _bad(where, f"dtype {text!r} is not a plain number type (bool, int, uint, float)")
    return dtype


# -- sockets -------------------------------------------------------------------------------

class IdleTimeout(Exception):
    """No frame started within the wait; the stream is still in step."""


def read_frame(sock: socket.socket, max_size: int, *, wait_s: float | None = None,
               stop: typing.Callable[[], bool] = lambda: False,
               frame_timeout_s: float | None = None) -> bytearray | None:
    """The body of the next frame, or None when the peer closed between frames (or
    ``stop()`` became true while waiting). The socket's own timeout bounds each wait;
    a frame that stops arriving part-way raises FramingError. ``wait_s`` bounds the wait
    for a frame to start (IdleTimeout); None waits until data, EOF or ``stop()``.

    ``frame_timeout_s`` bounds the whole frame from its first byte (checked after each
    read, so it may run over by one socket timeout): a sender trickling a byte now and
    then would otherwise hold the reader for ever. A server sets it for its clients'
    small frames; a client reading the core's big events leaves it None."""
    waited = 0.0
    deadline: float | None = None
    prefix = bytearray(4)
    view = memoryview(prefix)
    got = 0

    def check_deadline(length: int | None) -> None:
        if deadline is not None and time.monotonic() > deadline:
            total = f"{length} bytes of a message" if length is not None else \
                "the 4 length bytes"
            raise FramingError("stalled", f"message not complete within "
                                          f"{frame_timeout_s:g} s (got {got} of {total})")
    while got < 4:
        try:
            count = sock.recv_into(view[got:])
        except TimeoutError:
            if got:
                raise FramingError("stalled", f"sender stopped after {got} of the 4 length "
                                              "bytes") from None
            waited += sock.gettimeout() or 0.0
            if stop():
                return None
            if wait_s is not None and waited >= wait_s:
                raise IdleTimeout(f"no message within {wait_s:.0f} s") from None
            continue
        if count == 0:
            if got:
                raise FramingError("truncated", f"connection closed after {got} of the 4 "
                                                "length bytes")
            return None
        if deadline is None and frame_timeout_s is not None:
            deadline = time.monotonic() + frame_timeout_s
        got += count
        if got < 4:
            check_deadline(None)
    (length,) = _U32.unpack(prefix)
    if length > max_size:
        raise FramingError("too_large", f"message of {length} bytes declared; the limit is "
                                        f"{max_size} bytes")
    if length < 4:
        raise FramingError("bad_frame", f"message length {length} is shorter than the 4-byte "
                                        "header length")
    body = bytearray(length)
    view = memoryview(body)
    got = 0
    while got < length:
        try:
            count = sock.recv_into(view[got:])
        except TimeoutError:
            raise FramingError("stalled", f"sender stopped after {got} of {length} bytes of a "
                                          "message") from None
        if count == 0:
            raise FramingError("truncated", f"connection closed after {got} of {length} bytes "
                                            "of a message")
        got += count
        if got < length:
            check_deadline(length)
    return body


def send_frame(sock: socket.socket, frame: Frame) -> None:
    for part in frame.parts:
        sock.sendall(part)
