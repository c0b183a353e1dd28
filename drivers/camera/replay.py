"""A camera that serves stored pictures: a folder of images, one file, or a Kaputt data set.

For demos and offline work the rest of the station cannot tell it from a real camera: the
same settings (exposure and gain only go into the metadata; region, white balance and
Mono8 change the pixels as a camera would), the same frames, the same errors.

Data sets: ``query-{split}.parquet`` under the root, frames from the ``frame`` column
(full camera frames, which synthetic sets add) where present, else ``query_image`` (the
2048² tray crop); paths are relative to the root.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from drivers.camera import convert
from drivers.camera.base import Camera, CameraInfo, CameraSettings, Frame
from drivers.camera.errors import CameraError, GrabTimeout, SettingRejected

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
REPLAY_PIXEL_FORMATS = ("RGB8Packed", "Mono8")
REPLAY_LINES = ("Line1",)
FRAME_COLUMNS = ("frame", "query_image")  # first present and non-empty wins
SPLITS = ("train", "validation", "test")


def find_images(source: str | Path, split: str | None = None) -> list[Path]:
    """The pictures a replay camera would serve from `source`, in serving order."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise CameraError(f"replay camera: {source} is neither a folder nor an image file")
    tables = sorted(source.glob("query-*.parquet"))
    if tables:
        return _data_set_images(source, tables, split)
    images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise CameraError(f"replay camera: no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
    return images


def _data_set_images(root: Path, tables: list[Path], split: str | None) -> list[Path]:
    import pyarrow.parquet as pq  # only data-set replay needs it

    if split is not None:
        tables = [t for t in tables if t.name == f"query-{split}.parquet"]
        if not tables:
            raise CameraError(f"replay camera: data set {root} has no query-{split}.parquet")
    else:  # train, validation, test in that order, then any other split by name
        order = {name: i for i, name in enumerate(SPLITS)}
        tables.sort(key=lambda t: (order.get(_split_of(t), len(SPLITS)), t.name))
    images: list[Path] = []
    for table_path in tables:
        table = pq.read_table(table_path)
        columns = [c for c in FRAME_COLUMNS if c in table.column_names]
        if not columns:
            raise CameraError(
                f"replay camera: {table_path} has none of the columns {', '.join(FRAME_COLUMNS)}"
            )
        rows = zip(*(table.column(c).to_pylist() for c in columns))
        for row in rows:
            relative = next((value for value in row if value), None)
            if relative:
                images.append(root / relative)
    if not images:
        raise CameraError(f"replay camera: data set {root} lists no images")
    return images


def _split_of(table: Path) -> str:
    match = re.fullmatch(r"query-(.+)\.parquet", table.name)
    return match.group(1) if match else ""


class ReplayCamera(Camera):
    """Serves `source` frame by frame; `cycle` starts over at the end, else `GrabTimeout`."""

    def __init__(
        self,
        source: str | Path,
        *,
        split: str | None = None,
        cycle: bool = True,
        serial: str = "replay-0",
    ) -> None:
        super().__init__()
        self._source = Path(source)
        self._split = split
        self._cycle = cycle
        self._serial = serial
        self._images: list[Path] = []
        self._position = 0
        self._settings = CameraSettings(pixel_format="RGB8Packed")
        self._edges = threading.Semaphore(0)

    @property
    def images(self) -> list[Path]:
        """The files this camera serves, in order (known once open)."""
        return list(self._images)

    @property
    def position(self) -> int:
        """Index of the file the next frame comes from."""
        return self._position

    def rewind(self) -> None:
        self._position = 0

    # -- hooks -------------------------------------------------------------------------

    def _do_open(self) -> None:
        self._images = find_images(self._source, self._split)
        self._position = 0

    def _do_close(self) -> None:
        self._images = []

    def _do_info(self) -> CameraInfo:
        return CameraInfo(
            serial=self._serial, model="Replay", device_class="Replay", vendor="station",
            user_name=str(self._source),
        )

    def _name(self) -> str:
        return f"replay {self._serial}"

    def _do_apply(self, settings: CameraSettings) -> None:
        if settings.pixel_format not in REPLAY_PIXEL_FORMATS:
            raise SettingRejected(
                f"camera {self._name()} has no pixel format {settings.pixel_format!r}; "
                f"it offers {', '.join(REPLAY_PIXEL_FORMATS)}"
            )
        self._settings = settings

    def _do_read_settings(self) -> CameraSettings:
        return self._settings

    def _do_save_settings(self, path: Path) -> None:
        """The settings in pylon's feature-file syntax (name, tab, value), so tools agree."""
        s = self._settings
        lines = [
            "# Replay camera settings (pylon feature-file syntax)",
            f"ExposureTime\t{s.exposure_us!r}",
            f"Gain\t{s.gain_db!r}",
            f"PixelFormat\t{s.pixel_format}",
            f"Width\t{s.width if s.width is not None else 0}",
            f"Height\t{s.height if s.height is not None else 0}",
            f"OffsetX\t{s.offset_x}",
            f"OffsetY\t{s.offset_y}",
            *(f"BalanceRatio\t{{BalanceRatioSelector={channel}}}\t{gain!r}"
              for channel, gain in zip(("Red", "Green", "Blue"), s.white_balance)),
        ]
        partial = path.with_name(path.name + ".partial")
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial.replace(path)

    def _do_load_settings(self, path: Path) -> None:
        values: dict[str, str] = {}
        balance: dict[str, float] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            try:
                if parts[0] == "BalanceRatio" and len(parts) == 3:
                    balance[parts[1].strip("{}").split("=")[1]] = float(parts[2])
                elif len(parts) == 2:
                    values[parts[0]] = parts[1]
                else:
                    raise ValueError("expected 'name<TAB>value'")
            except (ValueError, IndexError) as error:
                raise SettingRejected(f"{path}:{number}: cannot read {line!r}: {error}") from error
        red, green, blue = (balance.get(c, 1.0) for c in ("Red", "Green", "Blue"))
        try:
            settings = CameraSettings(
                exposure_us=float(values.get("ExposureTime", self._settings.exposure_us)),
                gain_db=float(values.get("Gain", self._settings.gain_db)),
                pixel_format=values.get("PixelFormat", self._settings.pixel_format),
                width=int(values.get("Width", 0)) or None,
                height=int(values.get("Height", 0)) or None,
                offset_x=int(values.get("OffsetX", 0)),
                offset_y=int(values.get("OffsetY", 0)),
                white_balance=(red, green, blue),
            )
        except ValueError as error:
            raise SettingRejected(f"{path}: {error}") from error
        self._do_apply(settings)

    def _do_grab(self, timeout_ms: int) -> Frame:
        return self._next_frame()

    def _do_arm_hardware_trigger(self, line: str, activation: str) -> None:
        if line not in REPLAY_LINES:
            raise SettingRejected(f"camera {self._name()} cannot trigger from {line!r}")
        self._edges = threading.Semaphore(0)

    def _do_wait_hardware_frame(self, timeout_ms: int) -> Frame:
        if not self._edges.acquire(timeout=timeout_ms / 1000):
            raise GrabTimeout(f"camera {self._name()}: no trigger edge within {timeout_ms} ms")
        return self._next_frame()

    def _do_disarm_hardware_trigger(self) -> None:
        self._edges = threading.Semaphore(0)

    def simulate_line_edge(self) -> None:
        """An edge on the trigger line (a foot pedal); safe to call from any thread."""
        if not self.hardware_trigger_armed:
            raise CameraError(f"camera {self._name()}: simulated line edge while not armed")
        self._edges.release()

    # -- frames ------------------------------------------------------------------------

    def _next_frame(self) -> Frame:
        if self._position >= len(self._images):
            if not self._cycle:
                raise GrabTimeout(
                    f"camera {self._name()}: all {len(self._images)} images were served "
                    "(replay without cycling)"
                )
            self._position = 0
        path = self._images[self._position]
        self._position += 1
        rgb = self._render(_read_rgb(path))
        return Frame(
            rgb=rgb,
            serial=self._serial,
            frame_number=self._next_frame_number(),
            host_timestamp_ns=time.monotonic_ns(),
            exposure_us=self._settings.exposure_us,
            gain_db=self._settings.gain_db,
            pixel_format=self._settings.pixel_format,
            extra={"source_path": str(path)},
        )

    def _render(self, rgb: np.ndarray) -> np.ndarray:
        """Region, then Mono8 or white balance, as the camera would have done."""
        s = self._settings
        height, width = rgb.shape[:2]
        if s.offset_x >= width or s.offset_y >= height:
            raise SettingRejected(
                f"camera {self._name()}: offset ({s.offset_x}, {s.offset_y}) lies outside "
                f"the {width}x{height} image"
            )
        bottom = height if s.height is None else min(s.offset_y + s.height, height)
        right = width if s.width is None else min(s.offset_x + s.width, width)
        rgb = np.ascontiguousarray(rgb[s.offset_y:bottom, s.offset_x:right])
        if s.pixel_format == "Mono8":
            return convert.to_rgb(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), "Mono8")
        return convert.apply_white_balance(rgb, s.white_balance, in_place=True)


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CameraError(f"replay camera: cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
