"""The station profile: everything calibration measured, versioned, never rewritten.

A :class:`StationProfile` holds the camera settings (with the matching pylon ``.pfs``),
the lighting level, the tray geometry, the photometric correction, the decision
thresholds with their provenance, the wizard's step records, and who saved it when.

A :class:`ProfileStore` is a folder of numbered versions::

    profiles/
      v0001.yaml   v0001.pfs     one version: the profile and its camera settings file
      v0002.yaml   v0002.pfs
      current      "v0002": the version the station uses

Every change is a new version; a rollback copies an old version into a new one, so the
history is never rewritten and every capture's recorded ``profile_version`` still
names the settings it was taken with. Every file is written atomically (write beside,
fsync, rename), and a version exists only once its YAML is in place, so a crash leaves
the store as it was before the save or after it. Loading validates every field; errors
name the file, the line and the field (``v0003.yaml:12: tray.corners: ...``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fcntl
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from calibration.photometry import FlatField
from calibration.thresholds import ThresholdProvenance
from engines.files import write_atomic
from engines.tray_geometry import TRAY_SIZE, TrayGeometry

FORMAT = 1
CURRENT_POINTER = "current"
_VERSION_FILE = re.compile(r"v(\d{4,})\.yaml")
_VERSION_LABEL = re.compile(r"v?(\d+)")
CORNERS_SOURCES = ("automatic", "adjusted")
STEP_STATUSES = ("passed", "accepted", "skipped")
LIGHTING_MODES = ("continuous", "strobe")
# A bad ``current`` pointer is repaired by any save, so a rollback repairs it.
REPAIR_HINT = ("repair it by rolling back to a listed version: `station-app profile list`, "
               "then `station-app profile rollback VERSION`")


class ProfileError(ValueError):
    """A profile or profile store that cannot be used; the message names file and field."""


class ProfileConflict(ProfileError):
    """Another version became current after the caller read the one it built on: saving
    would silently undo that version. ``current`` is the version now current (None:
    none, or the pointer cannot be read)."""

    def __init__(self, message: str, current: int | None) -> None:
        super().__init__(message)
        self.current = current


_UNCHECKED = object()


class _FieldError(ValueError):
    """Raised while building a section: which field (dotted, relative) and what is wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field_name = field_name
        self.message = message


def version_label(version: int) -> str:
    """``3`` -> ``"v0003"``: the name recorded on captures and used for file names."""
    return f"v{version:04d}"


def parse_version(version: int | str) -> int:
    """``3``, ``"3"``, ``"v0003"`` -> 3."""
    if isinstance(version, bool):
        raise ProfileError(f"not a profile version: {version!r}")
    if isinstance(version, int):
        number = version
    else:
        match = _VERSION_LABEL.fullmatch(str(version).strip())
        if not match:
            raise ProfileError(f"not a profile version: {version!r}; write it as 3 or v0003")
        number = int(match.group(1))
    if number < 1:
        raise ProfileError(f"profile versions start at 1, got {version!r}")
    return number


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _finite(name: str, value: float, low: float | None = None, high: float | None = None,
            *, low_open: bool = False) -> None:
    if not math.isfinite(value):
        raise _FieldError(name, f"must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise _FieldError(name, f"must be {'above' if low_open else 'at least'} {low:g}, "
                                f"got {value:g}")
    if high is not None and value > high:
        raise _FieldError(name, f"must be at most {high:g}, got {value:g}")


# ------------------------------------------------------------------------ sections


@dataclass(frozen=True)
class CameraProfile:
    """Camera settings calibration chose; ``settings_file`` is the ``.pfs`` beside the
    profile (set by the store), loaded into the camera before the other settings."""

    exposure_us: float
    gain_db: float = 0.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pixel_format: str = ""
    serial: str = ""
    settings_file: str = ""
    focus_sharpness: float | None = None

    def __post_init__(self) -> None:
        _finite("exposure_us", self.exposure_us, 0, low_open=True)
        _finite("gain_db", self.gain_db, 0)
        for gain in self.white_balance:
            _finite("white_balance", gain, 0, low_open=True)
        if self.settings_file and (Path(self.settings_file).name != self.settings_file
                                   or not self.settings_file.endswith(".pfs")):
            raise _FieldError("settings_file", f"must be the name of a .pfs file beside the "
                                               f"profile, got {self.settings_file!r}")
        if self.focus_sharpness is not None:
            _finite("focus_sharpness", self.focus_sharpness, 0)


@dataclass(frozen=True)
class LightingProfile:
    """The LED level the photometry was measured at."""

    brightness_percent: float
    mode: str = "continuous"
    channels: tuple[int, ...] = ()
    pulse_width_us: int = 0
    pulse_delay_us: int = 0

    def __post_init__(self) -> None:
        _finite("brightness_percent", self.brightness_percent, 0, 100)
        if self.mode not in LIGHTING_MODES:
            raise _FieldError("mode", f"must be one of {', '.join(LIGHTING_MODES)}, "
                                      f"got {self.mode!r}")
        if any(channel < 1 for channel in self.channels):
            raise _FieldError("channels", f"controller outputs start at 1, got "
                                          f"{list(self.channels)}")
        for name in ("pulse_width_us", "pulse_delay_us"):
            if getattr(self, name) < 0:
                raise _FieldError(name, f"must be zero or more, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrayProfile:
    """Where the tray is in the frame (see ``engines.tray_geometry`` for the corner
    convention) and what one pixel measures. ``homography`` is derived from the corners;
    it is written for readers of the file and checked against the corners on load."""

    corners: tuple[tuple[float, float], ...]
    frame_size: tuple[int, int]
    size: int = TRAY_SIZE
    corners_source: str = "automatic"
    tray_size_mm: tuple[float, float] | None = None
    mm_per_frame_pixel: float | None = None
    mm_per_tray_pixel: tuple[float, float] | None = None
    reprojection_error_px: float | None = None
    homography: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        try:
            geometry = TrayGeometry.from_array(self.corners, self.size)
        except ValueError as error:
            raise _FieldError("corners", str(error)) from None
        object.__setattr__(self, "corners", geometry.corners)
        if min(self.frame_size) < 1 or len(self.frame_size) != 2:
            raise _FieldError("frame_size", f"must be [width, height] in pixels, got "
                                            f"{list(self.frame_size)}")
        if self.size < 16:
            raise _FieldError("size", f"must be at least 16 pixels, got {self.size}")
        if self.corners_source not in CORNERS_SOURCES:
            raise _FieldError("corners_source", f"must be one of {', '.join(CORNERS_SOURCES)}"
                                                f", got {self.corners_source!r}")
        for name in ("mm_per_frame_pixel", "reprojection_error_px"):
            if getattr(self, name) is not None:
                _finite(name, getattr(self, name), 0)
        for name in ("tray_size_mm", "mm_per_tray_pixel"):
            for value in getattr(self, name) or ():
                _finite(name, value, 0, low_open=True)
        derived = geometry.homography
        if self.homography is not None:
            given = np.asarray(self.homography, dtype=np.float64)
            if given.shape != (3, 3) or not np.allclose(given / given[2, 2],
                                                        derived / derived[2, 2],
                                                        rtol=1e-6, atol=1e-9):
                raise _FieldError("homography", "does not match the corners; it is derived "
                                                "from them: delete it or recalibrate")
        object.__setattr__(self, "homography", tuple(map(tuple, derived.tolist())))

    def geometry(self) -> TrayGeometry:
        return TrayGeometry.from_array(self.corners, self.size)


@dataclass(frozen=True)
class PhotometryProfile:
    """The grey-card reading (level as a fraction of full scale, colour cast in percent)
    and the flat-field correction from the empty tray."""

    grey_level: float | None = None
    grey_cast_percent: float | None = None
    flat_field: FlatField | None = None

    def __post_init__(self) -> None:
        if self.grey_level is not None:
            _finite("grey_level", self.grey_level, 0, 1)
        if self.grey_cast_percent is not None:
            _finite("grey_cast_percent", self.grey_cast_percent, 0)


@dataclass(frozen=True)
class ThresholdsProfile:
    """Verdict thresholds: OK below ``ok_below``, DAMAGED above ``damaged_above``, REVIEW
    between; ``provenance`` says which data, models, date and method chose them."""

    ok_below: float
    damaged_above: float
    provenance: ThresholdProvenance | None = None

    def __post_init__(self) -> None:
        _finite("ok_below", self.ok_below, 0, 1)
        _finite("damaged_above", self.damaged_above, 0, 1)
        if self.ok_below > self.damaged_above:
            raise _FieldError("ok_below", f"({self.ok_below:g}) must not be above "
                                          f"damaged_above ({self.damaged_above:g})")

    def as_tuple(self) -> tuple[float, float]:
        return self.ok_below, self.damaged_above


@dataclass(frozen=True)
class StepRecord:
    """What one wizard step measured, and why a failed step was accepted or skipped."""

    id: str
    status: str
    criterion: str = ""
    summary: str = ""
    reason: str = ""
    measured_at: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STEP_STATUSES:
            raise _FieldError("status", f"must be one of {', '.join(STEP_STATUSES)}, "
                                        f"got {self.status!r}")
        if self.status != "passed" and not self.reason.strip():
            raise _FieldError("reason", f"a step {self.status} without passing needs the "
                                        f"technician's reason")


@dataclass(frozen=True)
class StationProfile:
    """One station profile. ``version``, ``created``, ``author``, ``note`` and
    ``based_on`` are set by :meth:`ProfileStore.save_new_version`; a section that was
    never calibrated is None."""

    format: int = FORMAT
    version: int = 0
    created: str = ""
    author: str = ""
    note: str = ""
    based_on: int | None = None
    station_id: str = ""
    camera: CameraProfile | None = None
    lighting: LightingProfile | None = None
    tray: TrayProfile | None = None
    photometry: PhotometryProfile | None = None
    thresholds: ThresholdsProfile | None = None
    steps: tuple[StepRecord, ...] = ()

    def __post_init__(self) -> None:
        if self.format != FORMAT:
            raise _FieldError("format", f"this station reads profile format {FORMAT}, the "
                                        f"file is format {self.format}")
        if self.version < 0:
            raise _FieldError("version", f"must be 0 (unsaved) or more, got {self.version}")

    @property
    def label(self) -> str:
        """``v0003``; ``unsaved`` before the store numbered it."""
        return version_label(self.version) if self.version else "unsaved"

    def replace(self, **changes: Any) -> StationProfile:
        return dataclasses.replace(self, **changes)

    def to_yaml(self) -> str:
        return profile_to_yaml(self)


# ------------------------------------------------------------------ YAML <-> dataclasses


class _LineLoader(yaml.SafeLoader):
    """Safe loading that remembers the line of every mapping key, for error messages."""


class _Located(dict):
    """A mapping from the file, with ``lines[key]`` = 1-based line of the key."""

    lines: dict[Any, int]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Located:
    loader.flatten_mapping(node)
    mapping = _Located()
    mapping.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {mapping.lines[key]})",
                key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


class _Problem(Exception):
    def __init__(self, where: str, line: int | None, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.line = line


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _convert(hint: Any, value: Any, where: str, line: int | None) -> Any:
    """A YAML value as the dataclass field type ``hint`` says, strictly."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where, line)
    if hint is Any:
        return _plain(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _Problem(where, line, f"expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Problem(where, line, f"expected a whole number, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Problem(where, line, f"expected a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if isinstance(value, (_dt.datetime, _dt.date)):
            return value.isoformat()
        if not isinstance(value, str):
            raise _Problem(where, line, f"expected text, got {_describe(value)}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list):
            raise _Problem(where, line, f"expected a list, got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise _Problem(where, line, f"expected a list of {len(args)} items, got "
                                            f"{len(value)}")
            item_types = list(args)
        return tuple(_convert(item_type, item, f"{where}[{index}]", line)
                     for index, (item_type, item) in enumerate(zip(item_types, value)))
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise _Problem(where, line, f"expected a mapping, got {_describe(value)}")
        key_type, value_type = typing.get_args(hint)
        return {str(key): _convert(value_type, item, f"{where}.{key}",
                                   getattr(value, "lines", {}).get(key, line))
                for key, item in value.items()}
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, line)
    raise TypeError(f"profile field type {hint} is not supported")  # a programming error


def _build(cls: type, value: Any, where: str, line: int | None) -> Any:
    if not isinstance(value, dict):
        raise _Problem(where, line, f"expected a mapping, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    lines = getattr(value, "lines", {})
    prefix = f"{where}." if where else ""
    for key in value:
        if key not in names:
            raise _Problem(f"{prefix}{key}", lines.get(key, line),
                           f"unknown key; allowed: {', '.join(names)}")
    arguments = {}
    for cls_field in fields(cls):
        if cls_field.name not in value:
            required = (cls_field.default is dataclasses.MISSING
                        and cls_field.default_factory is dataclasses.MISSING)
            if required:
                raise _Problem(f"{prefix}{cls_field.name}", line, "is missing")
            continue
        arguments[cls_field.name] = _convert(hints[cls_field.name], value[cls_field.name],
                                             f"{prefix}{cls_field.name}",
                                             lines.get(cls_field.name, line))
    try:
        return cls(**arguments)
    except _FieldError as error:
        raise _Problem(f"{prefix}{error.field_name}", lines.get(error.field_name, line),
                       error.message) from None
    except ValueError as error:
        raise _Problem(where or cls.__name__, line, str(error)) from None


def _plain(value: Any) -> Any:
    """Dataclasses, tuples, mappings and numpy values as the plain types YAML writes."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


class _ProfileDumper(yaml.SafeDumper):
    """Block mappings, but lists of numbers on one line ([x, y], gains, matrix rows)."""


def _represent_list(dumper: yaml.SafeDumper, items: list) -> yaml.Node:
    numbers = all(isinstance(item, (int, float)) and not isinstance(item, bool)
                  for item in items)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items,
                                     flow_style=bool(items) and numbers)


_ProfileDumper.add_representer(list, _represent_list)


def profile_to_yaml(profile: StationProfile) -> str:
    """The profile as YAML text that :func:`profile_from_yaml` reads back equal."""
    header = (f"# Station calibration profile {profile.label}"
              f"{' of ' + profile.station_id if profile.station_id else ''}.\n"
              "# Written by the calibration wizard / `station-app`; do not edit: every change\n"
              "# is saved as a new version (see `station-app profile list`).\n")
    body = yaml.dump(_plain(profile), Dumper=_ProfileDumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True, width=100)
    return header + body


def profile_from_yaml(text: str | bytes, source: str = "<profile>") -> StationProfile:
    """Parse and validate a profile; ProfileError names ``source``, the line and the field."""
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ProfileError(f"{where}: not a valid profile YAML: "
                           f"{error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ProfileError(f"{source}: not a readable YAML file: {error}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: a station profile must be a mapping of sections, got "
                           f"{_describe(data)}")
    try:
        return _build(StationProfile, data, "", 1)
    except _Problem as problem:
        where = f"{source}:{problem.line}" if problem.line else source
        raise ProfileError(f"{where}: {problem.where or 'profile'}: {problem}") from None


def load_profile(path: str | os.PathLike[str]) -> StationProfile:
    """A profile file, validated (see :func:`profile_from_yaml`)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ProfileError(f"{path}: cannot be read: {error.strerror or error}") from None
    return profile_from_yaml(text, str(path))


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class ProfileVersion:
    """One saved version as ``ProfileStore.versions`` lists it; ``problem`` is set (and
    the other fields may be empty) when its file cannot be loaded."""

    version: int
    path: Path
    created: str = ""
    author: str = ""
    note: str = ""
    based_on: int | None = None
    current: bool = False
    problem: str = ""

    @property
    def label(self) -> str:
        return version_label(self.version)


def _check_author(author: str) -> str:
    author = (author or "").strip()
    if not author or "\n" in author or len(author) > 80:
        raise ProfileError(f"the author must be a name of 1 to 80 characters on one line, "
                           f"got {author!r}")
    return author


class ProfileStore:
    """A folder of numbered profile versions and the ``current`` pointer (see module doc)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ProfileStore({str(self.root)!r})"

    # ------------------------------------------------------------------ reading

    def path(self, version: int | str) -> Path:
        return self.root / f"{version_label(parse_version(version))}.yaml"

    def _numbers(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(match.group(1)) for entry in self.root.iterdir()
                      if (match := _VERSION_FILE.fullmatch(entry.name)))

    def latest_version(self) -> int | None:
        numbers = self._numbers()
        return numbers[-1] if numbers else None

    def current_version(self) -> int | None:
        """The version the pointer names; the latest when there is no pointer (a save
        interrupted between its YAML and the pointer); None for an empty store."""
        pointer = self.root / CURRENT_POINTER
        try:
            text = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return self.latest_version()
        except OSError as error:
            raise ProfileError(f"{pointer}: cannot be read: {error.strerror or error}") from None
        try:
            number = parse_version(text)
        except ProfileError:
            raise ProfileError(f"{pointer}: expected a version such as v0003, got {text!r}; "
                               f"{REPAIR_HINT}") from None
        if not self.path(number).exists():
            raise ProfileError(f"{pointer}: names {version_label(number)}, but "
                               f"{self.path(number).name} does not exist; {REPAIR_HINT}")
        return number

    def get(self, version: int | str) -> StationProfile:
        """One version, validated, including that its ``.pfs`` is present."""
        number = parse_version(version)
        path = self.path(number)
        if not path.exists():
            listed = ", ".join(version_label(n) for n in self._numbers()) or "none"
            raise ProfileError(f"{path}: no profile {version_label(number)} in {self.root} "
                               f"(versions: {listed})")
        profile = load_profile(path)
        if profile.version != number:
            raise ProfileError(f"{path}: version: says {profile.version} but the file name "
                               f"says {number}")
        camera = profile.camera
        if camera is not None and camera.settings_file \
                and not (self.root / camera.settings_file).is_file():
            raise ProfileError(f"{path}: camera.settings_file: {camera.settings_file} is "
                               f"missing beside the profile")
        return profile

    def current(self) -> StationProfile | None:
        """The profile in use, or None when nothing was calibrated yet."""
        number = self.current_version()
        return None if number is None else self.get(number)

    def settings_file(self, version: int | str) -> Path | None:
        """The camera's ``.pfs`` of a version, or None when it has none."""
        camera = self.get(version).camera
        return self.root / camera.settings_file if camera and camera.settings_file else None

    def versions(self) -> list[ProfileVersion]:
        """Every version, oldest first, with who saved it, when and why; a version whose
        file does not load is listed with its ``problem``."""
        try:
            current = self.current_version()
        except ProfileError:
            current = None
        listed = []
        for number in self._numbers():
            path = self.path(number)
            try:
                profile = self.get(number)
            except ProfileError as error:
                listed.append(ProfileVersion(number, path, current=number == current,
                                             problem=str(error)))
                continue
            listed.append(ProfileVersion(number, path, profile.created, profile.author,
                                         profile.note, profile.based_on, number == current))
        return listed

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (the wizard, a replay fitting thresholds, the CLI)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def save_new_version(self, profile: StationProfile, author: str, note: str = "", *,
                         camera_settings_file: str | os.PathLike[str] | None = None,
                         based_on: int | None = None,
                         created: str | None = None,
                         expected_current: Any = _UNCHECKED) -> ProfileVersion:
        """Save ``profile`` as the next version and make it current.

        ``camera_settings_file`` is a ``.pfs`` the camera just saved; it is copied beside
        the profile. Without it, a ``.pfs`` the profile already names (an earlier
        version's) is copied, so every version is complete on its own. ``based_on``
        defaults to the version that was current. With ``expected_current`` (a version,
        or None for an empty store), the save is refused with :class:`ProfileConflict`
        when another version is current by then (checked under the store's lock).
        """
        with self._locked():
            if expected_current is not _UNCHECKED:
                self._check_current(expected_current)
            return self._save_locked(profile, author, note, camera_settings_file, based_on,
                                     created)

    def _check_current(self, expected: int | None) -> None:
        try:
            current = self.current_version()
        except ProfileError as error:
            raise ProfileConflict(f"the current version cannot be read ({error}); nothing "
                                  f"was saved", None) from None
        if current != expected:
            now = version_label(current) if current is not None else "no version"
            was = version_label(expected) if expected is not None else "no version"
            raise ProfileConflict(f"{now} is current, but this profile was built on {was}; "
                                  f"nothing was saved", current)

    def _save_locked(self, profile: StationProfile, author: str, note: str,
                     camera_settings_file: str | os.PathLike[str] | None,
                     based_on: int | None, created: str | None) -> ProfileVersion:
        author = _check_author(author)
        note = (note or "").strip()
        try:
            previous = self.current_version()
        except ProfileError:   # a bad pointer: this save rewrites it, so it is the repair
            previous = None
            note = (f"{note}; " if note else "") + "repaired the current pointer"
        number = (self.latest_version() or 0) + 1
        label = version_label(number)
        source = self._settings_source(profile, camera_settings_file)
        camera = profile.camera
        if source is not None:
            write_atomic(self.root / f"{label}.pfs", source.read_bytes())
            camera = dataclasses.replace(camera, settings_file=f"{label}.pfs")
        stamped = dataclasses.replace(
            profile, version=number, created=created or utc_now(), author=author,
            note=note, based_on=previous if based_on is None else based_on, camera=camera)
        text = profile_to_yaml(stamped)
        profile_from_yaml(text, f"{label}.yaml")  # never write what would not load
        write_atomic(self.path(number), text)  # from here on the version exists
        write_atomic(self.root / CURRENT_POINTER, label + "\n")
        return ProfileVersion(number, self.path(number), stamped.created, author, note,
                              stamped.based_on, current=True)

    def _settings_source(self, profile: StationProfile,
                         given: str | os.PathLike[str] | None) -> Path | None:
        if given is not None:
            path = Path(given)
            if profile.camera is None:
                raise ProfileError(f"camera settings file {path} given, but the profile has "
                                   f"no camera section to record it in")
            if path.suffix.lower() != ".pfs" or not path.is_file():
                raise ProfileError(f"camera settings file {path} is not an existing .pfs file")
            return path
        if profile.camera is not None and profile.camera.settings_file:
            path = self.root / profile.camera.settings_file
            if not path.is_file():
                raise ProfileError(f"camera.settings_file: {path} does not exist; give the "
                                   f"camera's .pfs with camera_settings_file")
            return path
        return None

    def rollback(self, version: int | str, author: str, note: str = "") -> ProfileVersion:
        """Make an earlier version current again by saving a copy of it as a new version
        (its ``.pfs`` included); the versions in between stay in the history."""
        number = parse_version(version)
        old = self.get(number)
        note = (note or "").strip()
        text = f"rollback to {version_label(number)}" + (f": {note}" if note else "")
        return self.save_new_version(old, author, text, based_on=number)

    def update_current(self, author: str, note: str, **sections: Any) -> ProfileVersion:
        """A new version equal to the current one (or an empty profile) with some
        sections replaced, e.g. ``thresholds=ThresholdsProfile(...)``."""
        with self._locked():
            base = self.current() or StationProfile()
            return self._save_locked(base.replace(**sections), author, note, None, None, None)
