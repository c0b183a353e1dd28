"""Photometry: exposure and white balance on a grey card, flat field from an empty tray.

Grey card (wizard step 2): the card is found in the frame (or a region is given), and its
central part is read: the mean level against a target, clipped pixels per channel, and
the colour cast. The cast gives new white-balance gains (green stays 1) and the level a
new exposure; the wizard applies them to the camera and measures again until the card is
neutral and at the target level, so the pass criterion is checked on a real frame, not
on the arithmetic.

Flat field (wizard step 3): the empty tray's brightness is fitted with a smooth 2-D
polynomial (robust to dust and scuffs), normalised to 1 at the tray's centre. Its
inverse is the correction gain map; the fitted fall-off from the centre to the tray's
corners is what the technician sees. The polynomial's few coefficients are what the
station profile stores: resolution-independent and smooth by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from engines.tray_detection import order_corners

CHANNELS = ("red", "green", "blue")


class GreyCardNotFound(RuntimeError):
    """No grey-card-like rectangle in the frame; give its region instead."""


def _full_scale(frame: np.ndarray) -> float:
    return float(np.iinfo(frame.dtype).max) if np.issubdtype(frame.dtype, np.integer) else 1.0


def _check_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame (height x width x 3), got shape {frame.shape}")
    return frame


def _gray(frame: np.ndarray) -> np.ndarray:
    """Luminance as float32 in the frame's own units."""
    if frame.ndim == 2:
        return frame.astype(np.float32)
    return cv2.cvtColor(frame.astype(np.float32), cv2.COLOR_RGB2GRAY)


def as_quad(region: object, frame_shape: tuple[int, ...]) -> np.ndarray:
    """A region as four (x, y) corners in frame pixels.

    ``region`` is four points (a quad, e.g. tray or card corners) or a rectangle
    ``(x, y, width, height)``; None is the whole frame.
    """
    height, width = frame_shape[:2]
    if region is None:
        return np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64) - 0.5
    array = np.asarray(region, dtype=np.float64)
    if array.shape == (4,):
        x, y, w, h = array
        if w <= 0 or h <= 0:
            raise ValueError(f"rectangle (x, y, width, height) needs a positive size, got "
                             f"{array.tolist()}")
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64) - 0.5
    if array.shape != (4, 2) or not np.isfinite(array).all():
        raise ValueError(f"a region is four (x, y) corners or (x, y, width, height), got "
                         f"{array.tolist()}")
    return array


def inset_quad(quad: np.ndarray, fraction: float) -> np.ndarray:
    """The quad with every side moved inwards by ``fraction`` of the quad's size, in its
    own perspective (the quad is a rectangle seen at an angle: the tray, the card)."""
    quad = np.asarray(quad, np.float64)
    if not 0 <= fraction < 0.5:
        raise ValueError(f"inset must be a fraction in [0, 0.5), got {fraction}")
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    transform = cv2.getPerspectiveTransform(square, quad.astype(np.float32))
    inner = square * (1 - 2 * fraction) + fraction
    return cv2.perspectiveTransform(inner.reshape(-1, 1, 2).astype(np.float64),
                                    transform).reshape(4, 2)


def quad_mask(shape: tuple[int, int], quad: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie inside ``quad`` (frame pixels x scale)."""
    mask = np.zeros(shape, np.uint8)
    points = np.round(((np.asarray(quad) + 0.5) * scale - 0.5) * 16).astype(np.int32)
    cv2.fillConvexPoly(mask, points, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


# ------------------------------------------------------------------------ grey card


@dataclass(frozen=True)
class GreyCardCriteria:
    """Pass criteria for the grey card; levels are fractions of full scale."""

    target_level: float = 0.45
    level_tolerance: float = 0.05
    max_clipped_fraction: float = 0.001
    neutral_tolerance: float = 0.03  # largest channel deviation from the card's mean

    def describe(self) -> str:
        return (f"card mean {self.target_level:.0%} ± {self.level_tolerance:.0%} of full "
                f"scale; no channel clipped on more than {self.max_clipped_fraction:.1%} of "
                f"the card; every channel within ±{self.neutral_tolerance:.0%} of the card's "
                f"mean (neutral grey)")


@dataclass(frozen=True)
class GreyCardMeasurement:
    """The card as this frame shows it, and what to set to correct it.

    ``white_balance`` is the full set of gains to give the camera (its current gains
    times the correction; green 1). ``suggested_exposure_us`` brings the card to the
    target level (None when the current exposure was not given).
    """

    card_corners: tuple[tuple[float, float], ...]
    found_automatically: bool
    pixels: int
    channel_means: tuple[float, float, float]
    level: float
    clipped_fraction: tuple[float, float, float]
    cast_percent: tuple[float, float, float]
    white_balance: tuple[float, float, float]
    suggested_exposure_us: float | None
    criteria: GreyCardCriteria
    failures: tuple[str, ...] = field(default=())

    @property
    def max_cast_percent(self) -> float:
        return float(max(abs(c) for c in self.cast_percent))

    @property
    def level_ok(self) -> bool:
        return abs(self.level - self.criteria.target_level) <= self.criteria.level_tolerance

    @property
    def clipped_channels(self) -> tuple[str, ...]:
        return tuple(name for name, fraction in zip(CHANNELS, self.clipped_fraction)
                     if fraction > self.criteria.max_clipped_fraction)

    @property
    def neutral(self) -> bool:
        return self.max_cast_percent <= 100 * self.criteria.neutral_tolerance

    @property
    def passed(self) -> bool:
        return not self.failures


def find_grey_card(frame: np.ndarray, working_width: int = 640) -> np.ndarray:
    """The grey card's corners in frame pixels: the largest uniform, rectangular patch
    covering 0.2 % to 25 % of the frame. Raises GreyCardNotFound."""
    frame = _check_rgb(frame)
    gray = _gray(frame)
    scale = min(1.0, working_width / gray.shape[1])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    mean = cv2.blur(small, (7, 7))
    variance = np.maximum(cv2.blur(small * small, (7, 7)) - mean * mean, 0)
    full = _full_scale(frame)
    uniform = (np.sqrt(variance) <= np.maximum(0.015 * mean, 0.004 * full)) \
        & (mean > 0.03 * full) & (mean < 0.97 * full)
    mask = cv2.morphologyEx(uniform.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    area_total = float(small.shape[0] * small.shape[1])
    best, best_score = None, 0.0
    for label in range(1, count):
        area = float(stats[label, cv2.CC_STAT_AREA])  # pixels: holes do not count
        if not 0.002 * area_total <= area <= 0.25 * area_total:
            continue
        ys, xs = np.nonzero(labels == label)
        rect = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
        (_, _), (w, h), _ = rect
        if min(w, h) < 4 or max(w, h) / min(w, h) > 4:
            continue
        rectangularity = area / (w * h)
        if rectangularity < 0.85:
            continue
        if area * rectangularity > best_score:
            best, best_score = rect, area * rectangularity
    if best is None:
        raise GreyCardNotFound("no grey card found: put the grey card flat in the middle of "
                               "the tray, fully in view, or mark its region by hand")
    box = cv2.boxPoints(best).astype(np.float64)
    return order_corners((box + 0.5) / scale - 0.5)


def measure_grey_card(frame: np.ndarray, region: object = None, *,
                      exposure_us: float | None = None,
                      white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0),
                      criteria: GreyCardCriteria = GreyCardCriteria(),
                      inner_fraction: float = 0.6) -> GreyCardMeasurement:
    """Read the grey card in ``frame`` (taken with ``exposure_us`` and ``white_balance``).

    ``region`` is the card (four corners or x, y, width, height); None finds it. Only the
    central ``inner_fraction`` of the card is read, clear of its edges and shadow.
    """
    frame = _check_rgb(frame)
    found = region is None
    corners = find_grey_card(frame) if found else as_quad(region, frame.shape)
    inner = inset_quad(corners, (1.0 - inner_fraction) / 2)
    x0, y0 = np.floor(inner.min(axis=0)).astype(int)
    x1, y1 = np.ceil(inner.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, frame.shape[1]), min(y1, frame.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 3:
        raise ValueError(f"the grey card region {corners.tolist()} lies outside the frame or "
                         f"is too small")
    patch = frame[y0:y1, x0:x1]
    mask = quad_mask(patch.shape[:2], inner - [x0, y0])
    pixels = patch[mask].astype(np.float64)
    if len(pixels) < 25:
        raise ValueError(f"the grey card region covers only {len(pixels)} pixels; give a "
                         f"larger region or move the camera closer")
    full = _full_scale(frame)
    means = pixels.mean(axis=0)
    level = float(means.mean() / full)
    clipped = ((pixels >= full) | (pixels <= 0)).mean(axis=0)
    if means.min() <= 0:
        cast = np.full(3, 100.0)
        correction = np.ones(3)
    else:
        cast = 100 * (means / means.mean() - 1)
        correction = means[1] / means
    gains = np.asarray(white_balance, np.float64) * correction
    gains = gains / gains[1]
    suggested = None
    if exposure_us is not None and level > 0:
        suggested = exposure_us * criteria.target_level / level
        if clipped.max() > criteria.max_clipped_fraction and (pixels >= full).any():
            suggested = min(suggested, exposure_us * 0.5)  # the mean under-reads a clipped card
    measurement = GreyCardMeasurement(
        card_corners=tuple(map(tuple, corners.tolist())), found_automatically=found,
        pixels=int(len(pixels)), channel_means=tuple(float(m) for m in means), level=level,
        clipped_fraction=tuple(float(c) for c in clipped),
        cast_percent=tuple(float(c) for c in cast),
        white_balance=tuple(float(g) for g in gains),
        suggested_exposure_us=None if suggested is None else float(suggested),
        criteria=criteria)
    failures = []
    if not measurement.level_ok:
        direction = "bright" if level > criteria.target_level else "dark"
        hint = f"; set exposure to {suggested:.0f} us" if suggested else ""
        failures.append(f"card too {direction}: {level:.1%} of full scale, target "
                        f"{criteria.target_level:.0%} ± {criteria.level_tolerance:.0%}{hint}")
    if measurement.clipped_channels:
        failures.append(f"clipped on the card: {', '.join(measurement.clipped_channels)}; "
                        f"lower the exposure or the light")
    if not measurement.neutral:
        failures.append(f"card not neutral: channel deviations "
                        f"{', '.join(f'{c:+.1f} %' for c in cast)} (allowed ±"
                        f"{criteria.neutral_tolerance:.0%}); apply white balance "
                        f"{', '.join(f'{g:.3f}' for g in gains)} and measure again")
    return GreyCardMeasurement(**{**measurement.__dict__, "failures": tuple(failures)})


# ------------------------------------------------------------------------ flat field


def _terms(degree: int) -> list[tuple[int, int]]:
    return [(i, total - i) for total in range(degree + 1) for i in range(total, -1, -1)]


def _design(u: np.ndarray, v: np.ndarray, degree: int) -> np.ndarray:
    return np.stack([u ** i * v ** j for i, j in _terms(degree)], axis=-1)


def _normalised(x: np.ndarray, y: np.ndarray, width: int, height: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Frame pixel coordinates -> [-1, 1] across the frame (pixel centres)."""
    return (x + 0.5) / width * 2 - 1, (y + 0.5) / height * 2 - 1


@dataclass(frozen=True)
class FlatField:
    """The lighting's relative brightness over the frame, 1 at the tray's centre.

    ``coefficients`` of a polynomial of total ``degree`` in normalised frame coordinates
    (u, v in [-1, 1]); the correction multiplies each pixel by 1 / brightness.
    ``frame_size`` is (width, height) it was measured at: frames of another aspect (a
    changed region of interest) are refused.
    """

    degree: int
    coefficients: tuple[float, ...]
    frame_size: tuple[int, int]
    falloff_percent: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.degree <= 8:
            raise ValueError(f"flat field degree must be 0 to 8, got {self.degree}")
        expected = len(_terms(self.degree))
        if len(self.coefficients) != expected:
            raise ValueError(f"flat field of degree {self.degree} needs {expected} "
                             f"coefficients, got {len(self.coefficients)}")
        if not all(math.isfinite(c) for c in self.coefficients):
            raise ValueError("flat field coefficients must be finite numbers")
        if len(self.frame_size) != 2 or min(self.frame_size) < 1:
            raise ValueError(f"flat field frame_size must be [width, height], got "
                             f"{list(self.frame_size)}")
        object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))
        object.__setattr__(self, "frame_size", tuple(int(s) for s in self.frame_size))

    def brightness_at(self, x: np.ndarray, y: np.ndarray,
                      frame_size: tuple[int, int] | None = None) -> np.ndarray:
        """Relative brightness at frame pixel coordinates (1 = the tray's centre)."""
        width, height = frame_size or self.frame_size
        u, v = _normalised(np.asarray(x, np.float64), np.asarray(y, np.float64), width, height)
        return _design(u, v, self.degree) @ np.asarray(self.coefficients)

    def brightness(self, shape: tuple[int, int]) -> np.ndarray:
        """Relative brightness map (height x width, float32) for a frame of this shape."""
        return _brightness_map(self, (int(shape[0]), int(shape[1]))).copy()

    def gain_map(self, shape: tuple[int, int]) -> np.ndarray:
        """Correction gains (height x width, float32): 1 at the centre, > 1 where dimmer."""
        return 1.0 / np.maximum(_brightness_map(self, (int(shape[0]), int(shape[1]))), 0.05)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The frame with the lighting fall-off removed, in its own dtype (clipped)."""
        frame = np.asarray(frame)
        gain = self.gain_map(frame.shape[:2])
        corrected = frame.astype(np.float32) * (gain[..., None] if frame.ndim == 3 else gain)
        if np.issubdtype(frame.dtype, np.integer):
            info = np.iinfo(frame.dtype)
            return np.clip(np.rint(corrected), info.min, info.max).astype(frame.dtype)
        return corrected.astype(frame.dtype)


@functools.lru_cache(maxsize=4)
def _brightness_map(flat: FlatField, shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    measured_w, measured_h = flat.frame_size
    if abs(width / height - measured_w / measured_h) > 0.01 * measured_w / measured_h:
        raise ValueError(f"the flat field was measured on {measured_w}x{measured_h} frames; "
                         f"this frame is {width}x{height}: measure lighting uniformity again")
    # Smooth by construction: evaluate on a coarse grid and interpolate up.
    step = max(1, min(height, width) // 256)
    ys = np.arange(step / 2 - 0.5, height, step)
    xs = np.arange(step / 2 - 0.5, width, step)
    grid_x, grid_y = np.meshgrid(xs, ys)
    coarse = flat.brightness_at(grid_x, grid_y, (width, height)).astype(np.float32)
    if step == 1:
        result = coarse
    else:
        result = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    result.setflags(write=False)
    return result


@dataclass(frozen=True)
class FlatFieldCriteria:
    """Pass criteria for lighting uniformity (percent of the centre level)."""

    max_falloff_percent: float = 30.0
    max_residual_percent: float = 3.0
    min_level: float = 0.15
    max_level: float = 0.92
    max_clipped_fraction: float = 0.001

    def describe(self) -> str:
        return (f"fall-off from the tray centre to every corner at most "
                f"{self.max_falloff_percent:g} %; brightness not explained by the smooth "
                f"fit (dirt, objects) at most {self.max_residual_percent:g} % RMS; centre "
                f"level {self.min_level:.0%} to {self.max_level:.0%} of full scale with no "
                f"clipping")


@dataclass(frozen=True)
class FlatFieldMeasurement:
    """The fitted flat field, and what it says about the lighting.

    ``corner_falloff_percent`` is (top-left, top-right, bottom-right, bottom-left) of the
    measured region; ``preview`` is the relative brightness on a small grid for display.
    """

    flat_field: FlatField
    region: tuple[tuple[float, float], ...]
    centre: tuple[float, float]
    centre_level: float
    corner_falloff_percent: tuple[float, float, float, float]
    residual_percent: float
    clipped_fraction: float
    criteria: FlatFieldCriteria
    preview: np.ndarray = field(repr=False, compare=False)
    failures: tuple[str, ...] = ()

    @property
    def falloff_percent(self) -> float:
        return float(max(self.corner_falloff_percent))

    @property
    def mean_falloff_percent(self) -> float:
        return float(np.mean(self.corner_falloff_percent))

    @property
    def passed(self) -> bool:
        return not self.failures


def _robust_fit(design: np.ndarray, values: np.ndarray, iterations: int = 4
                ) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(len(values), bool)
    coefficients = np.zeros(design.shape[1])
    for _ in range(iterations):
        coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        residual = values - design @ coefficients
        sigma = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep])))
        new_keep = np.abs(residual) <= max(3 * sigma, 1e-9)
        if new_keep.sum() < design.shape[1] * 4 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return coefficients, keep


def measure_flat_field(frame: np.ndarray, region: object = None, *, degree: int = 4,
                       inset: float = 0.1, working_width: int = 320,
                       criteria: FlatFieldCriteria = FlatFieldCriteria()
                       ) -> FlatFieldMeasurement:
    """Fit the lighting over ``region`` of an empty-tray frame.

    ``region`` is the tray (four corners, e.g. from tray detection, or x, y, width,
    height); None uses the whole frame. Its sides move in by ``inset`` of its size to keep
    the rim and the walls' shade out; the fall-off is reported at the inset corners.
    """
    frame = _check_rgb(frame)
    height, width = frame.shape[:2]
    full = _full_scale(frame)
    quad = inset_quad(as_quad(region, frame.shape), inset)
    gray = _gray(frame)
    scale = min(1.0, working_width / width)
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    mask = quad_mask(small.shape, quad, scale)
    if mask.sum() < 200:
        raise ValueError(f"the region {np.round(quad, 1).tolist()} covers too little of the "
                         f"frame to measure the lighting")
    rows, cols = np.nonzero(mask)
    # Working pixel centres back in frame coordinates.
    x = (cols + 0.5) / scale - 0.5
    y = (rows + 0.5) / scale - 0.5
    values = small[rows, cols].astype(np.float64)
    u, v = _normalised(x, y, width, height)
    design = _design(u, v, degree)
    coefficients, _ = _robust_fit(design, values)
    centre = quad.mean(axis=0)
    cu, cv = _normalised(centre[:1], centre[1:], width, height)
    centre_value = float((_design(cu, cv, degree) @ coefficients)[0])
    if centre_value <= 0:
        raise ValueError("the frame is black where the tray should be: switch the light on "
                         "and check the lens cap")
    flat = FlatField(degree, tuple(coefficients / centre_value), (width, height))
    corners = flat.brightness_at(quad[:, 0], quad[:, 1])
    falloff = tuple(float(100 * (1 - c)) for c in corners)
    flat = FlatField(degree, flat.coefficients, (width, height), float(max(falloff)))
    fitted = design @ coefficients
    residual = float(100 * np.sqrt(np.mean((values / np.maximum(fitted, 1e-9) - 1) ** 2)))
    stride = max(1, int(round(1 / scale)) // 2)
    sampled = frame[::stride, ::stride]
    sampled_mask = quad_mask(sampled.shape[:2], quad, 1 / stride)
    clipped = float((sampled[sampled_mask] >= full).any(axis=-1).mean())
    preview_width = 64
    preview_height = max(1, round(preview_width * height / width))
    preview_x, preview_y = np.meshgrid((np.arange(preview_width) + 0.5) * width / preview_width,
                                       (np.arange(preview_height) + 0.5) * height / preview_height)
    preview = flat.brightness_at(preview_x - 0.5, preview_y - 0.5)
    level = centre_value / full
    failures = []
    if max(falloff) > criteria.max_falloff_percent:
        worst = ("top-left", "top-right", "bottom-right", "bottom-left")[int(np.argmax(falloff))]
        failures.append(f"fall-off {max(falloff):.1f} % at the {worst} corner exceeds "
                        f"{criteria.max_falloff_percent:g} %: check that every LED panel is "
                        f"lit and aimed at the tray")
    if residual > criteria.max_residual_percent:
        failures.append(f"uneven beyond the smooth fall-off ({residual:.1f} % RMS, allowed "
                        f"{criteria.max_residual_percent:g} %): empty and clean the tray, "
                        f"look for shadows or reflections")
    if not criteria.min_level <= level <= criteria.max_level:
        failures.append(f"centre level {level:.0%} of full scale is outside "
                        f"{criteria.min_level:.0%} to {criteria.max_level:.0%}: redo the "
                        f"exposure step")
    if clipped > criteria.max_clipped_fraction:
        failures.append(f"{clipped:.1%} of the tray is clipped: lower the exposure or the light")
    return FlatFieldMeasurement(
        flat_field=flat, region=tuple(map(tuple, quad.tolist())),
        centre=(float(centre[0]), float(centre[1])), centre_level=float(level),
        corner_falloff_percent=falloff, residual_percent=residual, clipped_fraction=clipped,
        criteria=criteria, preview=preview.astype(np.float32), failures=tuple(failures))
