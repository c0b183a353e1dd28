"""Station configuration: one YAML file, every field validated before start-up.

Each setting is declared once, as a field of a frozen dataclass whose metadata holds
its constraints (range, choices, pattern, list length...). One generic validator walks
the YAML node tree rather than the loaded dict, so every problem is reported with the
file and line it came from, and all problems are raised together in one ConfigError.

The packaged ``default_config.yaml`` is the single source of default values and their
documentation; a user file (a path argument, else ``$STATION_CONFIG``) overrides it
key by key.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import os
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from station_app.errors import StationError

ENVIRONMENT_VARIABLE = "STATION_CONFIG"
DEFAULT_CONFIG_RESOURCE = "default_config.yaml"

STANDARD_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
# Largest sensor dimension a supported camera has; bounds the region of interest.
MAX_SENSOR_PIXELS = 8192


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Constraint:
    """What a field accepts beyond its type; read by the one generic validator.

    For list fields, ``minimum``, ``maximum`` and ``choices`` apply to each item.
    """

    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    pattern: str = ""
    pattern_hint: str = ""
    suffixes: tuple[str, ...] = ()
    min_items: int | None = None
    max_items: int | None = None
    unique_items: bool = False
    # Path fields: an empty value means this folder under data.root.
    empty_means_under_root: str = ""


_CONSTRAINT = "constraint"


def setting(**constraints: Any) -> Any:
    """A dataclass field carrying its Constraint; defaults live in default_config.yaml."""
    return field(metadata={_CONSTRAINT: Constraint(**constraints)})


def _constraint_of(section_field: dataclasses.Field) -> Constraint:
    return section_field.metadata.get(_CONSTRAINT, Constraint())


@dataclass(frozen=True)
class StationIdentity:
    """Who this station is; recorded with every capture."""

    id: str = setting(pattern=r"[A-Za-z0-9_-]{1,32}",
                      pattern_hint="use 1 to 32 letters, digits, '_' or '-'")
    name: str = setting(pattern=r"[^\n]{1,80}", pattern_hint="use 1 to 80 characters on one line")


@dataclass(frozen=True)
class DataSettings:
    """Where captures, data sets and caches are written, and how long they are kept."""

    root: Path = setting()
    captures: Path = setting(empty_means_under_root="captures")
    datasets: Path = setting(empty_means_under_root="datasets")
    min_free_gb: float = setting(minimum=0.1, maximum=10000, unit="GB")
    retention_days: int = setting(minimum=0, maximum=3650, unit="days; 0 keeps forever")
    gallery_size: int = setting(minimum=1, maximum=20, unit="reference images per item")


@dataclass(frozen=True)
class CameraSettings:
    """The top-down camera: which one, its region of interest, exposure and triggering."""

    driver: str = setting(choices=("basler", "emulated", "replay"))
    serial: str = setting(pattern=r"[A-Za-z0-9_-]{0,32}",
                          pattern_hint="use the serial number printed on the camera, "
                                       "or \"\" for the first camera found")
    pixel_format: str = setting(choices=("RGB8Packed", "BayerRG8", "BayerBG8", "Mono8"))
    width: int = setting(minimum=64, maximum=MAX_SENSOR_PIXELS, unit="pixels")
    height: int = setting(minimum=64, maximum=MAX_SENSOR_PIXELS, unit="pixels")
    offset_x: int = setting(minimum=0, maximum=MAX_SENSOR_PIXELS - 64, unit="pixels")
    offset_y: int = setting(minimum=0, maximum=MAX_SENSOR_PIXELS - 64, unit="pixels")
    exposure_us: float = setting(minimum=20, maximum=1_000_000, unit="microseconds")
    gain_db: float = setting(minimum=0, maximum=24, unit="dB")
    white_balance: tuple[float, ...] = setting(minimum=0.1, maximum=8.0, min_items=3, max_items=3,
                                               unit="gain for red, green, blue")
    trigger: str = setting(choices=("software", "hardware"))
    grab_timeout_ms: int = setting(minimum=10, maximum=60000, unit="milliseconds")
    settings_file: Path | None = setting(suffixes=(".pfs",))
    image_source: Path | None = setting()


@dataclass(frozen=True)
class LightingSettings:
    """The LED controller: how to reach it, which channels, and continuous or strobed light."""

    driver: str = setting(choices=("serial", "simulated"))
    port: str = setting()
    baudrate: int = setting(choices=STANDARD_BAUDRATES, unit="baud")
    timeout_s: float = setting(minimum=0.01, maximum=10, unit="seconds")
    channels: tuple[int, ...] = setting(minimum=1, maximum=8, min_items=1, max_items=8,
                                        unique_items=True, unit="controller output")
    brightness_percent: float = setting(minimum=0, maximum=100, unit="percent")
    mode: str = setting(choices=("continuous", "strobe"))
    pulse_width_us: int = setting(minimum=1, maximum=100_000, unit="microseconds")
    pulse_delay_us: int = setting(minimum=0, maximum=100_000, unit="microseconds")


@dataclass(frozen=True)
class ScannerSettings:
    """The barcode scanner and which codes count as item identifiers."""

    driver: str = setting(choices=("serial", "simulated", "keyboard"))
    port: str = setting()
    baudrate: int = setting(choices=STANDARD_BAUDRATES, unit="baud")
    min_length: int = setting(minimum=1, maximum=64, unit="characters")
    max_length: int = setting(minimum=1, maximum=128, unit="characters")
    check_digit: str = setting(choices=("auto", "ean_upc", "off"))


_MODEL_NAME = dict(pattern=r"[A-Za-z0-9_.-]{1,64}",
                   pattern_hint="use a model name of 1 to 64 letters, digits, '.', '_' or '-'")


@dataclass(frozen=True)
class ModelSettings:
    """Which models score captures, on which runtime, and where built engines are cached."""

    dir: Path | None = setting()
    runtime: str = setting(choices=("auto", "tensorrt", "onnxruntime"))
    threads: int = setting(minimum=0, maximum=64, unit="CPU threads; 0 = one per core")
    segmenter: str = setting(**_MODEL_NAME)
    scorer: str = setting(**_MODEL_NAME)
    engine_cache: Path = setting(empty_means_under_root="engine-cache")
    score_resolution: int = setting(choices=(256, 384, 512, 768, 1024), unit="pixels")
    score_views: int = setting(choices=(1, 2, 4), unit="mirrored looks per tray")
    item_scorer: str = setting(pattern=r"[A-Za-z0-9_.-]{0,64}",
                               pattern_hint="use a model name of up to 64 letters, digits, '.', "
                                            "'_' or '-', or \"\" to score the tray alone")
    item_score_views: int = setting(choices=(1, 2, 4), unit="mirrored looks per item crop")
    item_score_resolution: int = setting(choices=(384, 448, 512, 576, 640, 704, 768, 1024),
                                         unit="pixels")
    item_score_second_resolution: int = setting(
        choices=(0, 384, 448, 512, 576, 640, 704, 768, 832, 896, 1024),
        unit="pixels; one more look at the item crop at this size, 0 = none")


@dataclass(frozen=True)
class ThresholdSettings:
    """Decision thresholds on the fused damage score: OK below, DAMAGED above, REVIEW between."""

    ok_below: float = setting(minimum=0, maximum=1, unit="fused score")
    damaged_above: float = setting(minimum=0, maximum=1, unit="fused score")


@dataclass(frozen=True)
class CalibrationSettings:
    """Where calibration profiles and the technician PIN live, and the tray's real size."""

    profile_dir: Path = setting(empty_means_under_root="profiles")
    pin_file: Path = setting(empty_means_under_root="technician-pin.json")
    pin_max_failures: int = setting(minimum=1, maximum=20, unit="wrong PINs in a row")
    pin_lockout_minutes: float = setting(minimum=1, maximum=1440, unit="minutes")
    tray_width_mm: float = setting(minimum=10, maximum=5000, unit="millimetres")
    tray_height_mm: float = setting(minimum=10, maximum=5000, unit="millimetres")


@dataclass(frozen=True)
class UiSettings:
    """How the operator screen looks and behaves."""

    fullscreen: bool = setting()
    show_heatmap: bool = setting()
    heatmap_opacity: float = setting(minimum=0, maximum=1)
    font_scale: float = setting(minimum=0.5, maximum=3)
    language: str = setting(choices=("en", "de", "fr", "es", "pl"))
    touch: bool = setting()
    pedal_key: str = setting(pattern=r"((Ctrl|Alt|Shift|Meta)\+){0,3}[A-Za-z0-9]{0,12}",
                             pattern_hint="name one key as Qt does, e.g. F12, B or Ctrl+P; "
                                          "\"\" for no pedal")


@dataclass(frozen=True)
class ServiceSettings:
    """The station core as a service: where front ends connect, how often it checks itself."""

    socket_path: Path = setting(empty_means_under_root="station.sock")
    tick_s: float = setting(minimum=0.05, maximum=10, unit="seconds")
    health_grace_s: float = setting(minimum=0, maximum=3600, unit="seconds")


@dataclass(frozen=True)
class AutoTriggerSettings:
    """Automatic capture: live view while waiting for the item, capture once it lies still."""

    enabled: bool = setting()
    interval_s: float = setting(minimum=0.05, maximum=5, unit="seconds between live-view frames")
    still_frames: int = setting(minimum=1, maximum=50, unit="live-view frames")
    presence_fraction: float = setting(minimum=0.0001, maximum=0.5, unit="share of pixels")
    change_level: float = setting(minimum=1, maximum=128, unit="grey levels")
    motion_fraction: float = setting(minimum=0.0001, maximum=0.5, unit="share of pixels")


@dataclass(frozen=True)
class ConfigSource:
    """Where a configuration came from, for logs, ``config show`` and error messages."""

    path: str
    origin: str  # "argument", "STATION_CONFIG" or "packaged default"

    def __str__(self) -> str:
        return f"{self.path} ({self.origin})"


@dataclass(frozen=True)
class StationConfig:
    """The whole validated station configuration, one attribute per YAML section."""

    station: StationIdentity
    data: DataSettings
    camera: CameraSettings
    lighting: LightingSettings
    scanner: ScannerSettings
    models: ModelSettings
    thresholds: ThresholdSettings
    calibration: CalibrationSettings
    ui: UiSettings
    service: ServiceSettings
    auto_trigger: AutoTriggerSettings
    source: ConfigSource = field(default=ConfigSource("", "constructed"), compare=False)


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(StationConfig)
    return {f.name: hints[f.name] for f in fields(StationConfig) if f.name != "source"}


SECTIONS: dict[str, type] = _section_types()


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration, and where it was written."""

    file: str
    line: int | None
    key: str  # dotted, e.g. "camera.exposure_us"; "" when not about one key
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(StationError):
    """The configuration cannot be used; the message lists every problem, one per line."""

    def __init__(self, summary: str, problems: typing.Sequence[ConfigProblem] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join([summary, *map(str, self.problems)]))


# --------------------------------------------------------------------------- reading YAML


@dataclass(frozen=True)
class _Document:
    name: str  # as shown in messages
    directory: Path  # relative paths in this document start here
    is_default: bool


@dataclass(frozen=True)
class _Entry:
    """One key's value node, and the document it was written in."""

    key: ScalarNode
    value: Node
    document: _Document

    @property
    def line(self) -> int:
        return self.key.start_mark.line + 1


def _closest(word: str, candidates: typing.Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'? " if matches else ""


def _unique_pairs(node: MappingNode, document: _Document, prefix: str,
                  problems: list[ConfigProblem]) -> Iterator[tuple[ScalarNode, Node]]:
    first_lines: dict[str, int] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if not isinstance(key, ScalarNode):
            problems.append(ConfigProblem(document.name, line, prefix,
                                          "keys must be plain names, not lists or mappings"))
            continue
        dotted = f"{prefix}.{key.value}" if prefix else key.value
        if key.value in first_lines:
            problems.append(ConfigProblem(document.name, line, dotted,
                                          f"duplicate key; first given on line "
                                          f"{first_lines[key.value]}"))
            continue
        first_lines[key.value] = line
        yield key, value


def _unknown_key(document: _Document, key: ScalarNode, prefix: str,
                 allowed: typing.Sequence[str]) -> ConfigProblem:
    where = f"in {prefix}" if prefix else "at the top level"
    dotted = f"{prefix}.{key.value}" if prefix else key.value
    return ConfigProblem(document.name, key.start_mark.line + 1, dotted,
                         f"unknown key; {_closest(key.value, allowed)}"
                         f"allowed keys {where}: {', '.join(allowed)}")


def _read_entries(text: bytes | str, document: _Document,
                  problems: list[ConfigProblem]) -> dict[str, dict[str, _Entry]]:
    """Section -> key -> entry for one YAML document; problems are appended, not raised."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = f"YAML syntax error: {error.problem or error.context}"
        if error.context and error.problem and error.context_mark is not None:
            message += f" ({error.context} started on line {error.context_mark.line + 1})"
        problems.append(ConfigProblem(document.name, mark.line + 1 if mark else None, "",
                                      message, mark.column + 1 if mark else None))
        return {}
    except yaml.YAMLError as error:  # e.g. bytes that are not UTF-8 text
        problems.append(ConfigProblem(document.name, None, "",
                                      f"not a readable YAML file: {error}".replace("\n", " ")))
        return {}
    if root is None:
        return {}
    if not isinstance(root, MappingNode):
        problems.append(ConfigProblem(document.name, root.start_mark.line + 1, "",
                                      f"expected a mapping of sections "
                                      f"({', '.join(SECTIONS)}), got {_describe_node(root)}"))
        return {}

    sections: dict[str, dict[str, _Entry]] = {}
    for section_key, section_node in _unique_pairs(root, document, "", problems):
        name = section_key.value
        if name not in SECTIONS:
            problems.append(_unknown_key(document, section_key, "", list(SECTIONS)))
            continue
        entries = sections.setdefault(name, {})
        if _is_null(section_node):
            continue  # an empty section keeps every default
        if not isinstance(section_node, MappingNode):
            problems.append(ConfigProblem(document.name, section_key.start_mark.line + 1, name,
                                          f"expected a mapping of keys, "
                                          f"got {_describe_node(section_node)}"))
            continue
        allowed = [f.name for f in fields(SECTIONS[name])]
        for key, value in _unique_pairs(section_node, document, name, problems):
            if key.value not in allowed:
                problems.append(_unknown_key(document, key, name, allowed))
                continue
            entries[key.value] = _Entry(key, value, document)
    return sections


# --------------------------------------------------------------------------- converting values


class _Invalid(Exception):
    """A value a field does not accept; ``node`` narrows the line to one list item."""

    def __init__(self, message: str, node: Node | None = None, item: int | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.item = item


@dataclass
class _Context:
    directory: Path
    environment: Mapping[str, str]
    data_root: Path | None


_TAG = "tag:yaml.org,2002:"
# YAML 1.1 reads 0100 as octal 64 and 1:30 as 90; neither is what a station file means.
_SURPRISING_INTEGER = re.compile(r"[-+]?0[0-7_]+|.*:.*")
_PLAIN_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][-+]?\d+)?")
_ENVIRONMENT_REFERENCE = re.compile(r"\$(\w+)|\$\{([^}]*)\}")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


def _describe_node(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = node.tag.removeprefix(_TAG)
    if kind == "null":
        return "no value"
    if kind == "str":
        return f'the text "{node.value}"'
    if kind == "bool":
        return node.value
    if kind in ("int", "float"):
        return f"the number {node.value}"
    return f"{kind} {node.value}"


def _show(value: Any) -> str:
    """A value the way the YAML file would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, Path)):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_show, value)) + "]"
    return str(value)


def _expect(node: Node, expected: str) -> _Invalid:
    return _Invalid(f"expected {expected}, got {_describe_node(node)}", node)


def _scalar(node: Node, expected: str) -> ScalarNode:
    if not isinstance(node, ScalarNode) or _is_null(node):
        raise _expect(node, expected)
    return node


def _read_bool(node: Node, context: _Context) -> bool:
    # YAML 1.1 also reads yes/no/on/off as booleans; only true and false are unambiguous.
    scalar = _scalar(node, "true or false")
    if scalar.tag != _TAG + "bool" or scalar.value.lower() not in ("true", "false"):
        raise _expect(node, "true or false")
    return scalar.value.lower() == "true"


def _read_number(node: Node, expected: str) -> int | float:
    scalar = _scalar(node, expected)
    if scalar.tag in (_TAG + "int", _TAG + "float"):
        if _SURPRISING_INTEGER.fullmatch(scalar.value):
            raise _Invalid(f"{scalar.value} is ambiguous in YAML (octal or base 60); "
                           f"write a plain decimal number", node)
        value = SafeConstructor().construct_object(scalar)
    elif scalar.style is None and _PLAIN_NUMBER.fullmatch(scalar.value):
        value = float(scalar.value.replace("_", ""))  # 1e6: a number, though YAML 1.1 disagrees
    else:
        raise _expect(node, expected)
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"expected {expected}, got {scalar.value}", node)
    return value


def _read_int(node: Node, context: _Context) -> int:
    value = _read_number(node, "a whole number")
    if not isinstance(value, int):
        raise _expect(node, "a whole number")
    return value


def _read_float(node: Node, context: _Context) -> float:
    return float(_read_number(node, "a number"))


def _read_text(node: Node, context: _Context) -> str:
    # Text as written: a camera serial 40012345 stays "40012345", not an integer.
    return _scalar(node, 'text (write "" for none)').value


def _expand_environment(text: str, environment: Mapping[str, str], node: Node) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in environment:
            raise _Invalid(f"environment variable {name} is not set", node)
        return environment[name]

    text = _ENVIRONMENT_REFERENCE.sub(substitute, text)
    if text == "~" or text.startswith("~/"):
        home = environment.get("HOME") or os.path.expanduser("~")
        return home + text[1:]
    return os.path.expanduser(text)


def _read_path(node: Node, context: _Context) -> Path | None:
    """An absolute path: ``~`` and ``$VARIABLES`` expanded, relative to the file's folder."""
    text = _scalar(node, 'a path (write "" for none)').value
    if not text:
        return None
    expanded = Path(_expand_environment(text, context.environment, node))
    return Path(os.path.normpath(context.directory / expanded))


_READERS: dict[Any, Callable[[Node, _Context], Any]] = {
    bool: _read_bool,
    int: _read_int,
    float: _read_float,
    str: _read_text,
    Path: _read_path,
    Path | None: _read_path,
}


def _range_text(rule: Constraint) -> str:
    low, high = rule.minimum, rule.maximum
    if low is not None and high is not None:
        return f"{_show(low)} to {_show(high)}"
    return f"{_show(low)} or more" if low is not None else f"{_show(high)} or less"


def _check_value(value: Any, rule: Constraint, node: Node) -> None:
    """Raises _Invalid when a single value breaks its rule; the message says what is allowed."""
    unit = f" ({rule.unit})" if rule.unit else ""
    if rule.choices and value not in rule.choices:
        allowed = ", ".join(map(str, rule.choices))
        hint = _closest(str(value), map(str, rule.choices)) if isinstance(value, str) else ""
        raise _Invalid(f"{_show(value)} is not allowed; {hint}allowed: {allowed}{unit}", node)
    too_low = rule.minimum is not None and value < rule.minimum
    too_high = rule.maximum is not None and value > rule.maximum
    if too_low or too_high:
        raise _Invalid(f"{_show(value)} is out of range; allowed {_range_text(rule)}{unit}", node)
    if rule.pattern and not re.fullmatch(rule.pattern, value):
        raise _Invalid(f"{_show(value)} is not allowed; {rule.pattern_hint}", node)
    if rule.suffixes and value is not None and value.suffix.lower() not in rule.suffixes:
        raise _Invalid(f"{_show(value)} is not allowed; expected a "
                       f"{' or '.join(rule.suffixes)} file", node)


def _read_list(node: Node, item_type: type, rule: Constraint, context: _Context) -> tuple:
    kind = "whole numbers" if item_type is int else "numbers"
    if not isinstance(node, SequenceNode):
        raise _expect(node, f"a list of {kind}")
    count = len(node.value)
    low, high = rule.min_items, rule.max_items
    if (low is not None and count < low) or (high is not None and count > high):
        allowed = f"exactly {low}" if low == high else f"{low} to {high}"
        raise _Invalid(f"has {count} items; allowed {allowed} items"
                       f"{f' ({rule.unit})' if rule.unit else ''}")
    items = []
    for index, item_node in enumerate(node.value):
        try:
            item = _READERS[item_type](item_node, context)
            _check_value(item, rule, item_node)
        except _Invalid as invalid:
            invalid.item = index
            raise
        if rule.unique_items and item in items:
            raise _Invalid(f"{_show(item)} is listed twice; each item may appear once",
                           item_node, index)
        items.append(item)
    return tuple(items)


def _read_setting(hint: Any, rule: Constraint, node: Node, context: _Context) -> Any:
    if typing.get_origin(hint) is tuple:
        return _read_list(node, typing.get_args(hint)[0], rule, context)
    value = _READERS[hint](node, context)
    if value is None and rule.empty_means_under_root:
        return context.data_root / rule.empty_means_under_root if context.data_root else None
    if value is None and hint is Path:
        raise _Invalid("must not be empty; expected a path")
    _check_value(value, rule, node)
    return value


def _build_section(name: str, section_type: type, entries: Mapping[str, _Entry],
                   environment: Mapping[str, str], data_root: Path | None,
                   default_name: str, problems: list[ConfigProblem]) -> Any:
    hints = typing.get_type_hints(section_type)
    values: dict[str, Any] = {}
    for section_field in fields(section_type):
        dotted = f"{name}.{section_field.name}"
        entry = entries.get(section_field.name)
        if entry is None:
            problems.append(ConfigProblem(default_name, None, dotted,
                                          "has no value; the packaged default must set it"))
            continue
        # Inside the data section, empty data paths fall back under the root just read.
        root = values.get("root") if name == "data" else data_root
        context = _Context(entry.document.directory, environment, root)
        try:
            values[section_field.name] = _read_setting(hints[section_field.name],
                                                       _constraint_of(section_field),
                                                       entry.value, context)
        except _Invalid as invalid:
            where = f"{dotted}[{invalid.item}]" if invalid.item is not None else dotted
            line = invalid.node.start_mark.line + 1 if invalid.item is not None else entry.line
            problems.append(ConfigProblem(entry.document.name, line, where, str(invalid)))
    if len(values) != len(fields(section_type)):
        return None
    return section_type(**values)


# --------------------------------------------------------------------------- cross-field rules

_Finding = tuple[tuple[str, ...], str]  # the keys involved (the one to blame first), message


def _thresholds_ordered(config: StationConfig) -> Iterator[_Finding]:
    thresholds = config.thresholds
    if thresholds.ok_below > thresholds.damaged_above:
        yield (("thresholds.ok_below", "thresholds.damaged_above"),
               f"thresholds.ok_below ({_show(thresholds.ok_below)}) is above "
               f"thresholds.damaged_above ({_show(thresholds.damaged_above)}); allowed "
               f"ok_below <= damaged_above (scores between them go to REVIEW)")


def _region_fits_sensor(config: StationConfig) -> Iterator[_Finding]:
    camera = config.camera
    for axis, offset, size in (("x", camera.offset_x, camera.width),
                               ("y", camera.offset_y, camera.height)):
        size_name = "width" if axis == "x" else "height"
        if offset + size > MAX_SENSOR_PIXELS:
            yield ((f"camera.offset_{axis}", f"camera.{size_name}"),
                   f"camera.offset_{axis} + camera.{size_name} = {offset + size} pixels is "
                   f"beyond any supported sensor; allowed up to {MAX_SENSOR_PIXELS}")


def _bayer_region_even(config: StationConfig) -> Iterator[_Finding]:
    camera = config.camera
    if not camera.pixel_format.startswith("Bayer"):
        return
    for name in ("width", "height", "offset_x", "offset_y"):
        value = getattr(camera, name)
        if value % 2:
            yield ((f"camera.{name}", "camera.pixel_format"),
                   f"camera.{name} is {value}, an odd number; camera.pixel_format "
                   f"{camera.pixel_format} needs an even region of interest so the colour "
                   f"pattern keeps its phase")


def _port_given_for_serial(config: StationConfig) -> Iterator[_Finding]:
    for name in ("lighting", "scanner"):
        section = getattr(config, name)
        if section.driver == "serial" and not section.port.strip():
            yield ((f"{name}.port", f"{name}.driver"),
                   f'{name}.port is empty but {name}.driver is "serial"; give the serial device, '
                   f"e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")


def _scanner_lengths_ordered(config: StationConfig) -> Iterator[_Finding]:
    scanner = config.scanner
    if scanner.min_length > scanner.max_length:
        yield (("scanner.min_length", "scanner.max_length"),
               f"scanner.min_length ({scanner.min_length}) is above scanner.max_length "
               f"({scanner.max_length}); allowed min_length <= max_length")


def _strobe_within_exposure(config: StationConfig) -> Iterator[_Finding]:
    lighting, camera = config.lighting, config.camera
    end = lighting.pulse_delay_us + lighting.pulse_width_us
    if lighting.mode == "strobe" and end > camera.exposure_us:
        yield (("lighting.pulse_width_us", "lighting.pulse_delay_us", "camera.exposure_us"),
               f"the strobe pulse (lighting.pulse_delay_us + lighting.pulse_width_us) ends "
               f"{end} us after the trigger, after camera.exposure_us "
               f"({_show(camera.exposure_us)} us); the pulse must end within the exposure")


def _replay_has_source(config: StationConfig) -> Iterator[_Finding]:
    if config.camera.driver == "replay" and config.camera.image_source is None:
        yield (("camera.image_source", "camera.driver"),
               'camera.image_source is empty but camera.driver is "replay"; '
               "give a folder or file of frames")


# A Unix socket address holds at most 107 bytes of path (108 with the terminating NUL).
MAX_SOCKET_PATH_BYTES = 107


def _socket_path_fits(config: StationConfig) -> Iterator[_Finding]:
    path = config.service.socket_path
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        yield (("service.socket_path", "data.root"),
               f"service.socket_path {_show(path)} is {len(os.fsencode(path))} bytes long; a "
               f"Unix socket path may have at most {MAX_SOCKET_PATH_BYTES}: set a shorter "
               f"service.socket_path, e.g. /run/inspection-station/core.sock")


CROSS_FIELD_RULES: tuple[Callable[[StationConfig], Iterator[_Finding]], ...] = (
    _thresholds_ordered,
    _region_fits_sensor,
    _bayer_region_even,
    _port_given_for_serial,
    _scanner_lengths_ordered,
    _strobe_within_exposure,
    _replay_has_source,
    _socket_path_fits,
)


def _cross_field_problems(config: StationConfig,
                          entries: Mapping[str, Mapping[str, _Entry]]) -> list[ConfigProblem]:
    """Blames the first involved key the user set, so the line points at their edit."""
    problems = []
    for rule in CROSS_FIELD_RULES:
        for keys, message in rule(config):
            located = [entries[key.split(".")[0]][key.split(".")[1]] for key in keys]
            user_set = [index for index, entry in enumerate(located)
                        if not entry.document.is_default]
            blamed = user_set[0] if user_set else 0
            entry = located[blamed]
            others = [f"{key} on line {located[index].line}" for index, key in enumerate(keys)
                      if index != blamed and located[index].document is entry.document]
            suffix = f" (see {', '.join(others)})" if others else ""
            problems.append(ConfigProblem(entry.document.name, entry.line, keys[blamed],
                                          message + suffix))
    return problems


# --------------------------------------------------------------------------- loading


def _packaged_default() -> tuple[bytes, _Document]:
    resource = importlib.resources.files("station_app") / DEFAULT_CONFIG_RESOURCE
    name = str(resource)
    return resource.read_bytes(), _Document(name, Path(name).parent, is_default=True)


def _read_user_file(path: Path, origin: str) -> bytes:
    given_by = f" (given by {origin})" if origin == ENVIRONMENT_VARIABLE else ""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        reason = "does not exist"
    except IsADirectoryError:
        reason = "is a directory; expected a YAML file"
    except PermissionError:
        reason = "cannot be read: permission denied"
    except OSError as error:
        reason = f"cannot be read: {error.strerror or error}"
    raise ConfigError(f"configuration file {path}{given_by} {reason}")


def _user_file(path: str | os.PathLike[str] | None,
               environment: Mapping[str, str]) -> tuple[Path, str] | None:
    """The file that overrides the defaults, and what named it."""
    if path is not None:
        return Path(os.path.expanduser(os.fspath(path))), "argument"
    named = environment.get(ENVIRONMENT_VARIABLE)
    return (Path(os.path.expanduser(named)), ENVIRONMENT_VARIABLE) if named else None


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> StationConfig:
    """The validated configuration: ``path``, else ``$STATION_CONFIG``, over the packaged default.

    ``env`` defaults to ``os.environ``; it also supplies ``$VARIABLES`` and ``~`` in paths.
    Raises ConfigError listing every problem found, each with file, line and key.
    """
    environment = os.environ if env is None else env
    default_text, default_document = _packaged_default()
    problems: list[ConfigProblem] = []
    entries = _read_entries(default_text, default_document, problems)
    source = ConfigSource(default_document.name, "packaged default")

    user_file = _user_file(path, environment)
    if user_file is not None:
        user_path, origin = user_file
        text = _read_user_file(user_path, origin)
        document = _Document(os.fspath(user_path), user_path.absolute().parent, is_default=False)
        for section, overrides in _read_entries(text, document, problems).items():
            entries.setdefault(section, {}).update(overrides)
        source = ConfigSource(os.fspath(user_path), origin)

    sections: dict[str, Any] = {}
    for name, section_type in SECTIONS.items():
        data_root = getattr(sections.get("data"), "root", None)
        sections[name] = _build_section(name, section_type, entries.get(name, {}), environment,
                                        data_root, default_document.name, problems)
    if not problems:  # cross-field rules need every field valid
        config = StationConfig(**sections, source=source)
        problems = _cross_field_problems(config, entries)
        if not problems:
            return config
    problems.sort(key=lambda problem: (problem.file, problem.line or 0))
    count = f"{len(problems)} error{'s' if len(problems) > 1 else ''}"
    raise ConfigError(f"invalid configuration {source.path}: {count}", problems)


# --------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def to_dict(config: StationConfig) -> dict[str, dict[str, Any]]:
    """Sections of plain YAML values (paths as text, "" for none), in schema order."""
    return {name: {f.name: _plain(getattr(getattr(config, name), f.name))
                   for f in fields(SECTIONS[name])}
            for name in SECTIONS}


class _SectionDumper(yaml.SafeDumper):
    """Block-style sections with lists on one line, as in default_config.yaml."""


_SectionDumper.add_representer(
    list, lambda dumper, items: dumper.represent_sequence("tag:yaml.org,2002:seq", items,
                                                          flow_style=True))


def to_yaml(config: StationConfig) -> str:
    """The configuration as YAML that load_config reads back to an equal configuration.

    Paths are written resolved (absolute), so the text does not depend on where it is saved.
    """
    header = ("# Damage-inspection station configuration, resolved\n"
              f"# loaded from {config.source}\n")
    return header + yaml.dump(to_dict(config), Dumper=_SectionDumper, sort_keys=False,
                              default_flow_style=False, allow_unicode=True, width=100)
