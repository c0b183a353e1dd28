"""The calibration wizard as plain logic: steps, results, redo, accept, summary, save.

The Qt wizard (``ui``) shows one step per screen and calls into this module; nothing here
knows a widget exists, so every step is tested on synthetic frames.

Each step has an ``id``, a ``title``, ``instructions`` and a ``criterion`` (shown before
measuring), and ``measure(inputs) -> StepResult`` (values, pass criterion, passed,
details saying what to fix, overlay shapes to draw on the frame). Measuring again is the
redo; the latest result counts. The wizard does not advance past a failed step unless
the technician accepts it with a reason, or skips the step with a reason (the profile
then keeps that section from the version it started from); both reasons are recorded in
the profile. ``save()`` writes a new profile version with the author.

Steps and their inputs:

1. ``focus``      ``measure(frame)``; live: call it for every frame, the tracker keeps the best.
2. ``exposure``   ``measure(GreyCardInput(frame, exposure_us, white_balance, gain_db, region))``;
                  a failed result proposes ``measurement.white_balance`` and
                  ``measurement.suggested_exposure_us``: set them on the camera, grab, measure.
3. ``uniformity`` ``measure(frame)`` of the empty tray, or ``FlatFieldInput(frame, region)``.
4. ``tray``       ``detect(frame)`` for corners to show; ``measure(TrayInput(frame, corners))``
                  with the corners the technician confirmed or dragged (None: detected).
5. ``thresholds`` ``measure(ThresholdInput(validation_scores, method))``; methods in
                  ``METHOD_CHOICES``.
6. summary        ``summary()`` then ``save(author, note, camera_settings_file)``.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from calibration.focus import FocusError, FocusTracker, Method, sharpness
from calibration.metrics import MetricError
from calibration.photometry import (FlatFieldCriteria, GreyCardCriteria, GreyCardNotFound,
                                    as_quad, measure_flat_field, measure_grey_card)
from calibration.pin import PinStore
from calibration.profile import (CameraProfile, LightingProfile, PhotometryProfile,
                                 ProfileConflict, ProfileStore, ProfileVersion, StationProfile,
                                 StepRecord, utc_now, version_label)
from calibration.threshold_step import (DEFAULT_METHOD, METHOD_CHOICES, ThresholdCriteria,
                                        ValidationScores, choose_thresholds)
from calibration.tray_calibration import (TrayCriteria, TrayNotFound, calibrate_tray,
                                          detect_corners)

__all__ = ["Overlay", "OverlayShape", "StepResult", "StepState", "CalibrationStep",
           "FocusStep", "ExposureStep", "UniformityStep", "TrayStep", "ThresholdStep",
           "GreyCardInput", "FlatFieldInput", "TrayInput", "ThresholdInput",
           "CalibrationWizard", "WizardSummary", "SummaryRow", "StepNotDone",
           "open_wizard", "default_steps", "METHOD_CHOICES"]


class StepNotDone(RuntimeError):
    """The wizard cannot go on: a step failed (and was not accepted) or was not measured."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class OverlayShape:
    """Something to draw on the frame, in frame pixel coordinates.

    ``kind`` is "polygon" (closed), "points" or "polyline"; ``ok`` colours it (True pass,
    False fail, None neutral); ``editable`` points may be dragged by the technician (the
    tray corners, in order top-left, top-right, bottom-right, bottom-left).
    """

    kind: str
    points: tuple[tuple[float, float], ...]
    label: str = ""
    ok: bool | None = None
    editable: bool = False


@dataclass(frozen=True)
class Overlay:
    """Shapes to draw, and optionally a small map to show in false colour over the frame
    (the relative lighting, 1 = tray centre), covering the whole frame when stretched."""

    shapes: tuple[OverlayShape, ...] = ()
    image: np.ndarray | None = field(default=None, compare=False, repr=False)
    image_label: str = ""


def _polygon(points: Any, label: str = "", ok: bool | None = None,
             editable: bool = False) -> OverlayShape:
    return OverlayShape("polygon", tuple((float(x), float(y)) for x, y in np.asarray(points)),
                        label, ok, editable)


@dataclass(frozen=True)
class StepResult:
    """One measurement of one step.

    ``values``: named numbers to display (units in the name); ``details``: what failed and
    how to fix it, or notes; ``measurement``: the typed object behind it
    (FocusReading, GreyCardMeasurement, FlatFieldMeasurement, TrayCalibration,
    ThresholdFit) for screens that want more.
    """

    step_id: str
    passed: bool
    criterion: str
    values: Mapping[str, Any]
    details: tuple[str, ...] = ()
    overlay: Overlay = Overlay()
    measurement: Any = field(default=None, compare=False, repr=False)
    measured_at: str = ""

    def summary(self) -> str:
        shown = ", ".join(f"{name} {_show(value)}" for name, value in self.values.items())
        return f"{'PASS' if self.passed else 'FAIL'}: {shown}"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    plain = {}
    for name, value in values.items():
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, tuple):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        plain[name] = value
    return plain


class StepState(enum.Enum):
    PENDING = "pending"      # not measured yet (or redo asked)
    PASSED = "passed"
    FAILED = "failed"        # measured, failed, not accepted: blocks the wizard
    ACCEPTED = "accepted"    # failed, accepted by the technician with a reason
    SKIPPED = "skipped"      # not measured; the profile keeps this section as it was


# --------------------------------------------------------------------------- steps


class CalibrationStep(abc.ABC):
    """One wizard step: measure (repeatable), accept a failure or skip with a reason,
    and put its result into a profile."""

    id: ClassVar[str]
    title: ClassVar[str]
    instructions: ClassVar[str]
    # Errors that mean "this frame cannot be measured": shown as a failed result.
    expected_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self) -> None:
        self.result: StepResult | None = None
        self.reason = ""
        self.attempts = 0
        self._skipped = False
        self._accepted = False

    @property
    def state(self) -> StepState:
        if self._skipped:
            return StepState.SKIPPED
        if self.result is None:
            return StepState.PENDING
        if self.result.passed:
            return StepState.PASSED
        return StepState.ACCEPTED if self._accepted else StepState.FAILED

    @property
    def done(self) -> bool:
        """True when the wizard may go past this step."""
        return self.state in (StepState.PASSED, StepState.ACCEPTED, StepState.SKIPPED)

    @abc.abstractmethod
    def criterion(self) -> str:
        """The pass criterion, in words, shown before and after measuring."""

    def measure(self, inputs: Any) -> StepResult:
        """Measure (again); the new result replaces the last, and clears accept/skip.

        A frame that cannot be measured (too dark, no card found...) gives a failed
        result whose details say why; programming errors still raise.
        """
        try:
            result = self._do_measure(inputs)
        except self.expected_errors as error:
            result = StepResult(self.id, False, self.criterion(), {}, (str(error),))
        self.attempts += 1
        self.result = dataclasses.replace(result, measured_at=utc_now())
        self._skipped = self._accepted = False
        self.reason = ""
        return self.result

    def redo(self) -> None:
        """Forget the result (and any acceptance) to measure from scratch."""
        self.result = None
        self._skipped = self._accepted = False
        self.reason = ""

    def accept(self, reason: str) -> None:
        """Go on despite a failed result; the reason is recorded in the profile."""
        if self.result is None:
            raise StepNotDone(f"{self.title}: measure before accepting the result")
        if self.result.passed:
            return
        if self.result.measurement is None:
            why = "; ".join(self.result.details)
            raise StepNotDone(f"{self.title}: nothing was measured ({why}): redo it, or skip "
                              f"the step with a reason")
        self.reason = _reason(reason)
        self._accepted = True

    def skip(self, reason: str) -> None:
        """Leave this section as it is in the profile the wizard started from."""
        self.reason = _reason(reason)
        self.result = None
        self._skipped = True
        self._accepted = False

    def apply(self, profile: StationProfile) -> StationProfile:
        """The profile with this step's result in it (unchanged when skipped)."""
        if self.state in (StepState.PASSED, StepState.ACCEPTED):
            return self._do_apply(profile, self.result)
        return profile

    def record(self) -> StepRecord | None:
        state = self.state
        if state in (StepState.PENDING, StepState.FAILED):
            return None
        if state is StepState.SKIPPED:
            return StepRecord(self.id, "skipped", self.criterion(), "skipped", self.reason)
        assert self.result is not None
        return StepRecord(self.id, state.value, self.result.criterion, self.result.summary(),
                          self.reason, self.result.measured_at,
                          _plain_values(self.result.values))

    @abc.abstractmethod
    def _do_measure(self, inputs: Any) -> StepResult: ...

    @abc.abstractmethod
    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile: ...


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise ValueError("give a reason (at least 3 characters); it is recorded in the profile")
    return reason


def _frame_of(inputs: Any) -> np.ndarray:
    """An RGB array from an array or a drivers.camera Frame."""
    frame = getattr(inputs, "rgb", inputs)
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (height x width x 3), got shape {frame.shape}")
    return frame


def _camera(profile: StationProfile) -> CameraProfile:
    return profile.camera or CameraProfile(exposure_us=10_000.0)


def central_region(shape: Sequence[int], fraction: float = 0.6) -> np.ndarray:
    """The frame's central rectangle, as corners: where the tray is when nothing else says."""
    height, width = shape[:2]
    w, h = width * fraction, height * fraction
    return as_quad(((width - w) / 2, (height - h) / 2, w, h), (height, width))


class FocusStep(CalibrationStep):
    expected_errors = (FocusError,)
    id = "focus"
    title = "Camera connection and focus"
    instructions = ("Put a printed page flat in the empty tray. Turn the focus ring slowly "
                    "through the sharpest point and back until the bar is near its best, "
                    "then lock the ring.")

    def __init__(self, region: Any = None, method: Method = "laplacian",
                 pass_fraction: float = 0.9, min_readings: int = 3) -> None:
        super().__init__()
        self.region = region
        self.method = method
        self.tracker = FocusTracker(pass_fraction, min_readings)

    def criterion(self) -> str:
        return self.tracker.criterion()

    def redo(self) -> None:
        super().redo()
        self.tracker.reset()

    def _do_measure(self, inputs: Any) -> StepResult:
        frame = _frame_of(inputs)
        region = self.region if self.region is not None else central_region(frame.shape)
        value = sharpness(frame, region, self.method)
        reading = self.tracker.update(value)
        if reading.passed:
            details: tuple[str, ...] = ()
        elif reading.readings < self.tracker.min_readings:
            details = ("keep turning the focus ring; the best value is still being found",)
        elif not self.tracker.turned:
            details = (f"the sharpness has not changed enough to show the ring was turned "
                       f"(lowest {self.tracker.lowest / self.tracker.best:.0%} of the best; "
                       f"needs {self.tracker.dip_fraction:.0%} or below): turn the focus ring "
                       f"through the sharpest point and back",)
        else:
            details = (f"sharpness at {reading.relative:.0%} of the best seen: keep turning "
                       f"the ring towards the sharpest point",)
        return StepResult(self.id, reading.passed, self.criterion(),
                          {"sharpness": reading.value, "best": reading.best,
                           "relative_percent": 100 * reading.relative,
                           "readings": reading.readings},
                          details, Overlay((_polygon(as_quad(region, frame.shape), "focus region",
                                                     reading.passed),)), reading)

    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile:
        camera = dataclasses.replace(_camera(profile), focus_sharpness=result.measurement.best)
        return profile.replace(camera=camera)


@dataclass(frozen=True)
class GreyCardInput:
    """A frame of the grey card and the camera settings it was taken with."""

    frame: Any
    exposure_us: float
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gain_db: float = 0.0
    region: Any = None  # the card (corners or x, y, w, h); None: found automatically


class ExposureStep(CalibrationStep):
    expected_errors = (GreyCardNotFound, ValueError)
    id = "exposure"
    title = "Exposure and white balance"
    instructions = ("Put the grey reference card flat in the middle of the tray. Measure; if "
                    "it fails, apply the proposed exposure and white balance and measure "
                    "again.")

    def __init__(self, criteria: GreyCardCriteria = GreyCardCriteria()) -> None:
        super().__init__()
        self.criteria = criteria

    def criterion(self) -> str:
        return self.criteria.describe()

    def _do_measure(self, inputs: GreyCardInput) -> StepResult:
        frame = _frame_of(inputs.frame)
        card = measure_grey_card(frame, inputs.region, exposure_us=inputs.exposure_us,
                                 white_balance=tuple(inputs.white_balance),
                                 criteria=self.criteria)
        values = {"exposure_us": float(inputs.exposure_us), "gain_db": float(inputs.gain_db),
                  "white_balance": tuple(float(g) for g in inputs.white_balance),
                  "level_percent": 100 * card.level,
                  "target_percent": 100 * self.criteria.target_level,
                  "cast_percent": tuple(round(c, 2) for c in card.cast_percent),
                  "clipped_channels": ", ".join(card.clipped_channels) or "none",
                  "proposed_white_balance": tuple(round(g, 4) for g in card.white_balance),
                  "proposed_exposure_us": None if card.suggested_exposure_us is None
                  else round(card.suggested_exposure_us, 1)}
        shapes = (_polygon(card.card_corners, "grey card", card.passed),)
        return StepResult(self.id, card.passed, self.criterion(), values, card.failures,
                          Overlay(shapes), card)

    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile:
        card, values = result.measurement, result.values
        camera = dataclasses.replace(_camera(profile), exposure_us=values["exposure_us"],
                                     gain_db=values["gain_db"],
                                     white_balance=values["white_balance"])
        photometry = profile.photometry or PhotometryProfile()
        photometry = dataclasses.replace(photometry, grey_level=card.level,
                                         grey_cast_percent=card.max_cast_percent)
        return profile.replace(camera=camera, photometry=photometry)


@dataclass(frozen=True)
class FlatFieldInput:
    """A frame of the empty tray; ``region`` the tray (corners); None: detected."""

    frame: Any
    region: Any = None


class UniformityStep(CalibrationStep):
    expected_errors = (ValueError,)
    id = "uniformity"
    title = "Lighting uniformity"
    instructions = ("Empty and clean the tray, close the enclosure, and measure. The "
                    "correction for the fall-off towards the corners is stored.")

    def __init__(self, fallback_region: Any = None,
                 criteria: FlatFieldCriteria = FlatFieldCriteria()) -> None:
        super().__init__()
        self.fallback_region = fallback_region
        self.criteria = criteria

    def criterion(self) -> str:
        return self.criteria.describe()

    def _do_measure(self, inputs: Any) -> StepResult:
        if isinstance(inputs, FlatFieldInput):
            frame, region = _frame_of(inputs.frame), inputs.region
        else:
            frame, region = _frame_of(inputs), None
        notes = []
        if region is None:
            try:
                region = detect_corners(frame)
            except TrayNotFound:
                region = self.fallback_region
                notes.append("tray not found in this frame: measured over "
                             + ("the calibrated tray outline" if region is not None
                                else "the whole frame"))
        flat = measure_flat_field(frame, region, criteria=self.criteria)
        labels = ("top-left", "top-right", "bottom-right", "bottom-left")
        shapes = [_polygon(flat.region, "measured region", flat.passed)]
        shapes += [OverlayShape("points", (corner,), f"{label} -{falloff:.1f} %",
                                falloff <= self.criteria.max_falloff_percent)
                   for corner, label, falloff in zip(flat.region, labels,
                                                     flat.corner_falloff_percent)]
        values = {"falloff_percent": flat.falloff_percent,
                  "mean_falloff_percent": flat.mean_falloff_percent,
                  "corner_falloff_percent": tuple(round(f, 2)
                                                  for f in flat.corner_falloff_percent),
                  "residual_percent": flat.residual_percent,
                  "centre_level_percent": 100 * flat.centre_level}
        return StepResult(self.id, flat.passed, self.criterion(), values,
                          flat.failures + tuple(notes),
                          Overlay(tuple(shapes), flat.preview,
                                  "relative brightness (1 = tray centre)"), flat)

    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile:
        photometry = profile.photometry or PhotometryProfile()
        photometry = dataclasses.replace(photometry, flat_field=result.measurement.flat_field)
        return profile.replace(photometry=photometry)


@dataclass(frozen=True)
class TrayInput:
    """A frame of the empty tray and the corners to check (None: detect them)."""

    frame: Any
    corners: Any = None


class TrayStep(CalibrationStep):
    id = "tray"
    title = "Tray geometry"
    instructions = ("Put the empty tray in its stop. Check the detected corners on the "
                    "outer edge of the tray; drag any that are off, then confirm.")

    def __init__(self, tray_size_mm: tuple[float, float] | None = None,
                 criteria: TrayCriteria = TrayCriteria()) -> None:
        super().__init__()
        self.tray_size_mm = tray_size_mm
        self.criteria = criteria

    def criterion(self) -> str:
        return self.criteria.describe()

    def detect(self, frame: Any) -> tuple[tuple[float, float], ...]:
        """Detected corners for the technician to confirm or drag (raises TrayNotFound)."""
        return tuple(map(tuple, detect_corners(_frame_of(frame)).tolist()))

    def _do_measure(self, inputs: TrayInput) -> StepResult:
        frame = _frame_of(inputs.frame)
        try:
            calibration = calibrate_tray(frame, inputs.corners,
                                         tray_size_mm=self.tray_size_mm, criteria=self.criteria)
        except TrayNotFound as error:
            return StepResult(self.id, False, self.criterion(), {},
                              (f"{error}; or place the four corners by hand",))
        except ValueError as error:  # corners that do not form a tray outline
            return StepResult(self.id, False, self.criterion(), {},
                              (f"the corners do not form a tray outline: {error}",))
        reprojection = calibration.reprojection
        values = {"reprojection_rms_px": reprojection.rms_px,
                  "reprojection_max_px": reprojection.max_px,
                  "reprojection_rms_tray_px": reprojection.rms_tray_px,
                  "rim_found_percent": 100 * reprojection.found_fraction,
                  "corners_source": calibration.corners_source}
        if calibration.mm_per_frame_pixel is not None:
            values["mm_per_frame_pixel"] = calibration.mm_per_frame_pixel
            values["mm_per_tray_pixel"] = tuple(round(v, 5)
                                                for v in calibration.mm_per_tray_pixel)
        shapes = [_polygon(calibration.geometry.corners, "tray outline", calibration.passed,
                           editable=True)]
        if len(reprojection.edge_points):
            shapes.append(OverlayShape("points", tuple(map(tuple, reprojection.edge_points
                                                           .tolist())), "rim edge found"))
        return StepResult(self.id, calibration.passed, self.criterion(), values,
                          calibration.failures, Overlay(tuple(shapes)), calibration)

    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile:
        return profile.replace(tray=result.measurement.to_profile())


@dataclass(frozen=True)
class ThresholdInput:
    """A validation run's scores and the method the technician picked."""

    validation: ValidationScores
    method: str = DEFAULT_METHOD


class ThresholdStep(CalibrationStep):
    expected_errors = (MetricError,)
    id = "thresholds"
    title = "Decision thresholds"
    instructions = ("Pick how cautious the station should be. The thresholds are fitted on "
                    "a validation run (replay) and the expected recall is shown.")

    def __init__(self, criteria: ThresholdCriteria = ThresholdCriteria()) -> None:
        super().__init__()
        self.criteria = criteria
        self.method = DEFAULT_METHOD

    def criterion(self) -> str:
        return self.criteria.describe(self.method)

    def _do_measure(self, inputs: ThresholdInput) -> StepResult:
        self.method = inputs.method
        fit = choose_thresholds(inputs.validation, inputs.method, criteria=self.criteria)
        values = {"ok_below": fit.ok_below, "damaged_above": fit.damaged_above,
                  "expected_recall_percent": 100 * fit.expected_recall,
                  "expected_fpr_percent": 100 * fit.expected_fpr,
                  "review_percent": 100 * fit.review_fraction,
                  "good_captures": fit.good, "defective_captures": fit.defective}
        return StepResult(self.id, fit.passed, self.criterion(), values,
                          fit.failures + tuple(fit.chosen.notes), Overlay(), fit)

    def _do_apply(self, profile: StationProfile, result: StepResult) -> StationProfile:
        return profile.replace(thresholds=result.measurement.to_profile())


def default_steps(base: StationProfile | None = None,
                  tray_size_mm: tuple[float, float] | None = None) -> list[CalibrationStep]:
    """The five measuring steps, using what ``base`` knows (the tray outline for the
    focus region and as the uniformity fallback, the tray size)."""
    tray = base.tray if base is not None else None
    corners = tray.corners if tray is not None else None
    size = tray_size_mm or (tray.tray_size_mm if tray is not None else None)
    return [FocusStep(region=corners), ExposureStep(), UniformityStep(fallback_region=corners),
            TrayStep(tray_size_mm=size), ThresholdStep()]


# --------------------------------------------------------------------------- the wizard


@dataclass(frozen=True)
class SummaryRow:
    step_id: str
    title: str
    state: StepState
    criterion: str
    summary: str
    reason: str


@dataclass(frozen=True)
class WizardSummary:
    """Step 6: every step's outcome; ``ready`` when the profile can be saved."""

    rows: tuple[SummaryRow, ...]
    base_version: str
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems


class CalibrationWizard:
    """The step sequence over a profile store (see module doc).

    ``base`` is the profile the wizard starts from (default: the store's current one);
    skipped steps keep its sections. ``camera`` and ``lighting`` are the settings in use
    while calibrating (the camera's and controller's state); they replace the base's and
    the steps then refine them.
    """

    def __init__(self, store: ProfileStore, *, station_id: str = "",
                 camera: CameraProfile | None = None, lighting: LightingProfile | None = None,
                 tray_size_mm: tuple[float, float] | None = None,
                 steps: Sequence[CalibrationStep] | None = None,
                 base: StationProfile | None = None) -> None:
        self.store = store
        self.base = base if base is not None else store.current()
        # The version the wizard builds on: saving refuses when another became current.
        self.base_version: int | None = self.base.version if self.base is not None else None
        self.station_id = station_id or (self.base.station_id if self.base else "")
        self.camera = camera
        self.lighting = lighting
        self.steps: tuple[CalibrationStep, ...] = tuple(
            steps if steps is not None else default_steps(self.base, tray_size_mm))
        if len({step.id for step in self.steps}) != len(self.steps):
            raise ValueError("wizard step ids must be unique")
        self.index = 0

    # ------------------------------------------------------------------ navigation

    @property
    def at_summary(self) -> bool:
        return self.index == len(self.steps)

    @property
    def step(self) -> CalibrationStep | None:
        """The current step; None on the summary screen."""
        return None if self.at_summary else self.steps[self.index]

    def get(self, step_id: str) -> CalibrationStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"no wizard step {step_id!r}; steps: "
                       f"{', '.join(step.id for step in self.steps)}")

    def _current(self) -> CalibrationStep:
        if self.step is None:
            raise StepNotDone("on the summary: go back to a step to measure it")
        return self.step

    def measure(self, inputs: Any) -> StepResult:
        return self._current().measure(inputs)

    def accept(self, reason: str) -> None:
        self._current().accept(reason)

    def skip(self, reason: str) -> None:
        self._current().skip(reason)

    def redo(self) -> None:
        self._current().redo()

    def can_advance(self) -> bool:
        return self.step is not None and self.step.done

    def advance(self) -> CalibrationStep | None:
        """Next step (None: the summary). Refused while the current step is not done."""
        step = self._current()
        if not step.done:
            what = ("failed: redo it, or accept the result with a reason"
                    if step.state is StepState.FAILED else "not measured yet (or skip it "
                                                           "with a reason)")
            raise StepNotDone(f"{step.title}: {what}")
        self.index += 1
        return self.step

    def back(self) -> CalibrationStep:
        if self.index == 0:
            raise StepNotDone("already at the first step")
        self.index -= 1
        return self.steps[self.index]

    def go_to(self, step_id: str) -> CalibrationStep:
        """Jump back to an earlier step (to redo it); forward only over done steps."""
        target = self.steps.index(self.get(step_id))
        blocking = [s for s in self.steps[:target] if not s.done]
        if blocking:
            raise StepNotDone(f"{blocking[0].title} is not done yet")
        self.index = target
        return self.steps[target]

    # ------------------------------------------------------------------ summary, save

    def summary(self) -> WizardSummary:
        rows, problems = [], []
        for step in self.steps:
            state = step.state
            if state is StepState.SKIPPED:
                summary = "skipped: kept from " + (self.base.label if self.base else
                                                   "nothing (not calibrated)")
            elif step.result is not None:
                summary = step.result.summary()
            else:
                summary = "not measured"
            rows.append(SummaryRow(step.id, step.title, state, step.criterion(), summary,
                                   step.reason))
            if not step.done:
                what = ("failed and not accepted" if state is StepState.FAILED
                        else "not measured")
                problems.append(f"{step.title}: {what}")
        return WizardSummary(tuple(rows), self.base.label if self.base else "none",
                             tuple(problems))

    def build_profile(self) -> StationProfile:
        """The profile ``save`` would write (unsaved: version 0)."""
        profile = self.base or StationProfile()
        profile = profile.replace(version=0, created="", author="", note="", based_on=None,
                                  station_id=self.station_id, steps=())
        if self.camera is not None:
            profile = profile.replace(camera=self.camera)
        if self.lighting is not None:
            profile = profile.replace(lighting=self.lighting)
        for step in self.steps:
            profile = step.apply(profile)
        records = tuple(record for step in self.steps if (record := step.record()) is not None)
        return profile.replace(steps=records)

    def save(self, author: str, note: str = "", *,
             camera_settings_file: Any = None) -> ProfileVersion:
        """Write the new profile version (and make it current). ``camera_settings_file``
        is the ``.pfs`` the camera saved with the calibrated settings."""
        summary = self.summary()
        if not summary.ready:
            raise StepNotDone("cannot save: " + "; ".join(summary.problems))
        note = note or "calibration wizard: " + ", ".join(
            f"{row.step_id} {row.state.value}" for row in summary.rows)
        # An unsaved base (given by the caller, version 0) is not in the store to compare.
        check = ({} if self.base is not None and not self.base_version
                 else {"expected_current": self.base_version})
        try:
            return self.store.save_new_version(self.build_profile(), author, note,
                                               camera_settings_file=camera_settings_file,
                                               based_on=self.base_version or None, **check)
        except ProfileConflict as conflict:
            now = (f"version {version_label(conflict.current)} was saved"
                   if conflict.current is not None else f"the profile store changed "
                                                        f"({conflict})")
            started = self.base.label if self.base is not None else "no profile"
            raise ProfileConflict(f"{now} while the wizard was open (it started from "
                                  f"{started}); nothing was saved: reopen the wizard to "
                                  f"calibrate from the current version",
                                  conflict.current) from None


def open_wizard(pin_store: PinStore, pin: str, store: ProfileStore,
                **options: Any) -> CalibrationWizard:
    """The wizard, behind the technician PIN: raises PinRejected, PinLocked or PinNotSet
    (calibration.pin) before anything else happens."""
    pin_store.verify(pin)
    return CalibrationWizard(store, **options)
