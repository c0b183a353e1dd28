"""The station assembled: devices, models, capture store, sink and inspection workflow.

One place wires the parts together, so the headless demo, the operator window and the
service core run the same station. :func:`open_station` opens everything in order and,
when a part fails, closes what it had opened and raises a :class:`StationError` naming
the part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from station_app.config import StationConfig
from station_app.errors import StationError

log = logging.getLogger("station_app.station")

UNCALIBRATED = "uncalibrated: tray detected on the first frame"
TRAY_DETECTED = "tray detected on the first frame"


@dataclass
class Station:
    """Everything a running station holds; :meth:`close` releases all of it, in reverse."""

    config: StationConfig
    workflow: Any                         # station_app.workflow.InspectionWorkflow
    devices: Any                          # station_app.hardware.StationDevices
    store: Any                            # station_app.store.CaptureStore
    model_versions: dict[str, str]
    runtime: str                          # the inference runtime in use, for the status bar
    profile_version: str                  # calibration profile recorded on every capture
    thresholds: tuple[float, float]       # (ok_below, damaged_above) in use
    profile: Any = None                   # calibration.profile.StationProfile in use, if any
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def lighting_simulator(self) -> Any:
        """The lighting simulator when lights are simulated (the demo's fault injection)."""
        return self.devices.lighting.simulator if self.devices.lighting else None

    @property
    def scanner_simulator(self) -> Any:
        scanner = self.devices.scanner
        return scanner.simulator if scanner is not None else None

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_station(config: StationConfig, frames: Path | None = None,
                 store_root: Path | None = None, *, geometry: Any = None,
                 profile_version: str = "", thresholds: tuple[float, float] | None = None,
                 start_scanner: bool = True) -> Station:
    """Open the station described by ``config``.

    ``frames`` feed an emulated or replay camera (None: the configured source).
    ``store_root`` overrides ``data.captures``.

    The current version of the profile store (``calibration.profile_dir``) supplies the
    camera settings, the tray geometry, the verdict thresholds and the version label
    recorded on every capture. ``geometry``, ``thresholds`` and ``profile_version``
    override it; with neither, the tray is detected on the first frame (and every capture
    says so) and the configured thresholds apply. With ``start_scanner`` the scanner's
    codes go straight to the workflow.
    """
    from drivers.scanner.codes import CheckDigitMode, CodeRules
    from engines.item_extraction import ItemExtractor
    from engines.segmentation import ItemSegmenter
    from engines.tray_detection import TrayNotFound, detect_tray
    from station_app.hardware import StationDevices, open_camera, open_lighting, open_scanner
    from station_app.models import open_model
    from station_app.replay.setup import open_replay_models
    from station_app.store import CaptureStore
    from station_app.store.workflow_sink import StoreCaptureSink
    from station_app.workflow import InspectionWorkflow, ItemScanned
    from station_app.workflow.auto_trigger import AutoTriggerSettings

    closers: list[Callable[[], None]] = []

    def close_all() -> None:
        while closers:
            with contextlib.suppress(Exception):
                closers.pop()()

    try:
        profile_store, profile = _current_profile(config)
        profile_tray = None           # the profile's tray, when its geometry is used
        profile_thresholds = False    # the profile's thresholds are used
        if profile is not None:
            log.info("calibration profile %s (%s, by %s)", profile.label, profile.created,
                     profile.author or "unknown")
            if geometry is None and profile.tray is not None:
                geometry = profile.tray.geometry()
                profile_tray = profile.tray
            if thresholds is None and profile.thresholds is not None:
                thresholds = profile.thresholds.as_tuple()
                profile_thresholds = True
            profile_version = profile_version or profile.label
        log.info("loading models (%s, runtime %s)", config.models.scorer, config.models.runtime)
        decision = None
        if thresholds is not None:
            from engines.verdict import DecisionThresholds
            decision = DecisionThresholds(*thresholds)
        replay = open_replay_models(config, cache_dir=config.data.root / "reference-cache",
                                    thresholds=decision)
        segmenter_session = open_model(config.models, config.models.segmenter)
        model_versions = {name: str(info.get("version", ""))
                          for name, info in replay.info["models"].items()}
        model_versions["segmenter"] = str(segmenter_session.manifest.version)
        runtime = str(replay.info["models"]["scorer"].get("runtime", "") or segmenter_session.name)
        if profile_thresholds:
            _warn_if_models_changed(profile, model_versions)

        camera = open_camera(config.camera, frames)
        closers.append(camera.close)
        if profile is not None and profile.camera is not None:
            _apply_camera_profile(camera, profile, profile_store)
        devices = StationDevices(camera=camera, lighting=None)  # type: ignore[arg-type]
        devices.lighting = open_lighting(lighting_settings(config, profile))
        closers.append(devices.lighting.close)
        devices.scanner = open_scanner(config.scanner)
        if devices.scanner is not None:
            scanner = devices.scanner
            closers.append(scanner.close)
            closers.append(lambda: scanner.scanner.close())

        if profile_tray is not None:
            _check_frame_size(camera, profile, config.camera.grab_timeout_ms)
        if geometry is None:
            first = camera.grab(config.camera.grab_timeout_ms)
            try:
                geometry = detect_tray(first.rgb)
            except TrayNotFound as error:
                raise StationError(f"tray not found in the first frame ({error}); calibrate "
                                   "the tray geometry with `station-app calibrate`") from error
            log.warning("tray geometry detected on the first frame, not read from a "
                        "calibration profile; run `station-app calibrate`")
            profile_version = (f"{profile_version}; {TRAY_DETECTED}" if profile_version
                               else UNCALIBRATED)
        extractor = ItemExtractor(geometry, ItemSegmenter(segmenter_session))

        store = CaptureStore(store_root or config.data.captures, config.data.min_free_gb,
                             config.data.gallery_size)
        closers.append(store.close)
        sink = StoreCaptureSink(store, model_versions=model_versions,
                                calibration_profile_version=profile_version)
        rules = CodeRules(min_length=config.scanner.min_length,
                          max_length=config.scanner.max_length,
                          check_digit=CheckDigitMode(config.scanner.check_digit))

        def references(item: str):
            return [reference.reference_image() for reference in store.gallery.references(item)]

        workflow = InspectionWorkflow.from_devices(
            devices, extractor=extractor, inspector=replay.inspector, sink=sink,
            station_id=config.station.id, grab_timeout_ms=config.camera.grab_timeout_ms,
            code_rules=rules, references=references,
            auto_trigger=(AutoTriggerSettings(**dataclasses.asdict(config.auto_trigger))
                          if config.auto_trigger.enabled else None))
        closers.append(workflow.close)

        _warm_up(replay.inspector, extractor)
        if start_scanner and devices.scanner is not None:
            devices.scanner.scanner.open()
            devices.scanner.scanner.start(
                lambda scanned: workflow.submit(ItemScanned(scanned.code)))
    except BaseException:
        close_all()
        raise
    used = thresholds or (config.thresholds.ok_below, config.thresholds.damaged_above)
    return Station(config=config, workflow=workflow, devices=devices, store=store,
                   model_versions=model_versions, runtime=runtime,
                   profile_version=profile_version, thresholds=used, profile=profile,
                   _closers=closers)


def _warm_up(inspector: Any, extractor: Any) -> dict[str, float]:
    """Run every model at its serving shape before the first item (see
    ``engines.runtime.base.WARM_UP_RUNS``); milliseconds per model, also logged."""
    timings = inspector.warm_up(segmenter=extractor.segmenter if extractor else None)
    log.info("models warmed up in %.0f ms (%s)", sum(timings.values()),
             ", ".join(f"{name} {ms:.0f}" for name, ms in timings.items()))
    return timings


def _current_profile(config: StationConfig) -> tuple[Any, Any]:
    """(store, its current profile or None); a broken store stops the station."""
    from calibration.profile import REPAIR_HINT, ProfileError, ProfileStore

    store = ProfileStore(config.calibration.profile_dir)
    try:
        return store, store.current()
    except ProfileError as error:
        raise StationError(f"calibration profile: {error}"
                           + ("" if REPAIR_HINT in str(error) else f"; {REPAIR_HINT}, or "
                              f"recalibrate with `station-app calibrate`")) from error


def _apply_camera_profile(camera: Any, profile: Any, store: Any) -> None:
    """The profile's .pfs, then its exposure, gain and white balance, on the open camera."""
    from drivers.camera import CameraError

    settings = profile.camera
    try:
        if settings.settings_file:
            camera.load_settings(store.root / settings.settings_file)
        camera.apply(camera.settings().replace(
            exposure_us=settings.exposure_us, gain_db=settings.gain_db,
            white_balance=tuple(settings.white_balance)))
    except (CameraError, ValueError) as error:
        raise StationError(f"camera: cannot apply calibration profile {profile.label}: "
                           f"{error}") from error


def _check_frame_size(camera: Any, profile: Any, grab_timeout_ms: int) -> None:
    """The profile's tray corners are frame pixels: they only mean something in frames of
    the size they were measured in (a changed ROI, binning or camera moves them)."""
    from drivers.camera import CameraError
    from drivers.errors import DriverError

    try:
        frame = camera.grab(grab_timeout_ms)
    except (CameraError, DriverError, OSError) as error:
        raise StationError(f"camera: no frame to check calibration profile {profile.label}'s "
                           f"tray geometry against: {error}") from error
    height, width = frame.rgb.shape[:2]
    expected = tuple(profile.tray.frame_size)
    if (width, height) != expected:
        raise StationError(
            f"calibration profile {profile.label}: tray.frame_size is {expected[0]}x"
            f"{expected[1]} but the camera delivers {width}x{height} frames, so the tray "
            f"corners do not fit: recalibrate the tray step with `station-app calibrate` "
            f"(or restore the camera's size and region)")


def _warn_if_models_changed(profile: Any, loaded: dict[str, str]) -> None:
    """Thresholds fitted on other model versions still run (a station must not stop for
    it), but their expected rates no longer hold: say so where the technician looks."""
    provenance = profile.thresholds.provenance
    if provenance is None:
        return
    changed = [f"{name} {version} (loaded: {loaded.get(name, 'none')})"
               for name, version in sorted(provenance.model_versions.items())
               if str(loaded.get(name)) != str(version)]
    if changed:
        log.warning("calibration profile %s: the thresholds were fitted with other model "
                    "versions: %s; refit them (threshold step of `station-app calibrate`, or "
                    "`station-app replay --fit-thresholds`)", profile.label, ", ".join(changed))


def lighting_settings(config: StationConfig, profile: Any) -> Any:
    """The configured lighting with the profile's level: the photometry (white balance,
    flat field, thresholds) was measured at that level, so the station lights at it."""
    import dataclasses

    lighting = profile.lighting if profile is not None else None
    if lighting is None:
        return config.lighting
    changes: dict[str, Any] = {"brightness_percent": lighting.brightness_percent,
                               "mode": lighting.mode}
    if lighting.channels:
        changes["channels"] = tuple(lighting.channels)
    if lighting.mode == "strobe":
        changes.update(pulse_width_us=lighting.pulse_width_us,
                       pulse_delay_us=lighting.pulse_delay_us)
    if changes["brightness_percent"] != config.lighting.brightness_percent:
        log.info("lighting at the profile's %.1f %% (configured %.1f %%)",
                 lighting.brightness_percent, config.lighting.brightness_percent)
    return dataclasses.replace(config.lighting, **changes)
